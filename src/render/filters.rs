//! The telephony filters templates use: `phone`, `phone_uri`, `duration`, `datetime`.
//!
//! Consumes template values (a party object from the context, a number, an RFC 3339 string)
//! and the reader's language, region and time zone, which [`Templates::render`] sets for the
//! current thread with [`enter`] for the duration of one render (Tera filters only see the
//! context, and a `jiff::tz::TimeZone` cannot travel through it). Produces plain strings
//! (autoescaped in HTML like any other value). A filter applied to something it cannot read
//! returns a `tera::Error`, which Tera reports at the filter's position; `null` gives `""`.
//! Number formatting for the reader goes through `crate::phone`, the only module
//! that may use the `phonenumber` crate.
//!
//! [`Templates::render`]: super::Templates::render

use std::cell::RefCell;

use jiff::tz::TimeZone;
use tera::{Kwargs, State, Tera, Value};

use super::format::{self, DateStyle, DurationStyle, Reader};

/// What the filters need to know about the reader for one render.
#[derive(Debug, Clone)]
pub struct FilterEnv {
    pub reader: Reader,
    pub timezone: TimeZone,
}

impl Default for FilterEnv {
    fn default() -> Self {
        FilterEnv { reader: Reader { language: "en".to_owned(), region: None }, timezone: TimeZone::UTC }
    }
}

thread_local! {
    static ENV: RefCell<Option<FilterEnv>> = const { RefCell::new(None) };
}

/// Restores the previous reader when dropped.
#[must_use = "the reader is reset when the guard is dropped"]
pub struct EnvGuard {
    previous: Option<FilterEnv>,
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ENV.with(|env| *env.borrow_mut() = previous);
    }
}

/// Sets the reader for filters run on this thread until the guard is dropped.
pub fn enter(env: FilterEnv) -> EnvGuard {
    let previous = ENV.with(|cell| cell.borrow_mut().replace(env));
    EnvGuard { previous }
}

fn with_env<R>(f: impl FnOnce(&FilterEnv) -> R) -> R {
    ENV.with(|cell| match cell.borrow().as_ref() {
        Some(env) => f(env),
        None => f(&FilterEnv::default()),
    })
}

/// Registers every filter of this module.
pub fn register(tera: &mut Tera) {
    tera.register_filter("phone", phone);
    tera.register_filter("phone_uri", phone_uri);
    tera.register_filter("duration", duration);
    tera.register_filter("datetime", datetime);
}

/// A non-empty string field of a party object (one key, looked up directly).
fn str_field<'v>(map: &'v Value, key: &'v str) -> Option<&'v str> {
    map.as_map()?.get(&tera::value::Key::Str(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads the `style` argument, one of `choices` (the first is the default).
fn style<T: Copy>(filter: &str, kwargs: &Kwargs, choices: &[(&str, T)]) -> tera::TeraResult<T> {
    let Some(name) = kwargs.get::<&str>("style")? else { return Ok(choices[0].1) };
    choices.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        tera::Error::message(format!("{filter}: unknown style `{name}` ({})", names.join(", ")))
    })
}

/// The value a filter was given: an error when undefined, `None` for `null`.
fn defined<'v>(filter: &str, value: &'v Value) -> tera::TeraResult<Option<&'v Value>> {
    if value.is_undefined() {
        return Err(tera::Error::message(format!("the value given to `{filter}` is undefined")));
    }
    Ok((!value.is_none()).then_some(value))
}

/// What `phone` and `phone_uri` accept.
enum Dialled<'v> {
    /// A bare number string.
    Number(&'v str),
    /// A party object (`caller`, `target`).
    Party(&'v Value),
}

fn dialled<'v>(filter: &str, value: &'v Value) -> tera::TeraResult<Option<Dialled<'v>>> {
    match defined(filter, value)? {
        None => Ok(None),
        Some(v) if v.is_map() => Ok(Some(Dialled::Party(v))),
        Some(v) => match v.as_str() {
            Some(number) => Ok(Some(Dialled::Number(number))),
            None => Err(tera::Error::message(format!("{filter}: expected a party or a string, got {}", v.name()))),
        },
    }
}

/// A number (`+E164`) for the reader: national when it is in the reader's own country,
/// international otherwise (`phone` decides); the context's international form when
/// the number cannot be formatted.
fn for_reader(e164: &str, international: Option<&str>, region: Option<&str>) -> String {
    crate::phone::format_for_reader(e164, region).unwrap_or_else(|| international.unwrap_or(e164).to_owned())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NumberStyle {
    Auto,
    National,
    International,
    E164,
}

/// `{{ caller | phone }}`: the party's number as the reader should see it; its extension or
/// SIP address when it has no number; `""` for an anonymous party or `null`. A string is taken
/// as a number. `style`: `auto` (default), `national`, `international`, `e164`.
fn phone(value: Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    use NumberStyle::*;
    let style = style("phone", &kwargs, &[("auto", Auto), ("national", National), ("international", International), ("e164", E164)])?;
    let party = match dialled("phone", &value)? {
        None => return Ok(String::new()),
        Some(Dialled::Number(number)) => return Ok(number.to_owned()),
        Some(Dialled::Party(party)) => party,
    };
    let field = |key| str_field(party, key);
    Ok(match field("kind") {
        Some("anonymous") => String::new(),
        Some("sip") => field("sip").or(field("raw")).unwrap_or_default().to_owned(),
        Some("extension") => field("extension").or(field("raw")).unwrap_or_default().to_owned(),
        _ => match field("e164") {
            Some(e164) => {
                let number = match style {
                    National => field("national").unwrap_or(e164).to_owned(),
                    International => field("international").unwrap_or(e164).to_owned(),
                    E164 => e164.to_owned(),
                    Auto => with_env(|env| {
                        let region = env.reader.region.as_deref();
                        // Enrichment formatted the number already; format again only for a
                        // context made by hand (the preview's JSON editor).
                        match (field("national"), field("international")) {
                            (Some(national), Some(international)) => {
                                let domestic = crate::phone::is_domestic_for(e164, region);
                                (if domestic { national } else { international }).to_owned()
                            }
                            (_, international) => for_reader(e164, international, region),
                        }
                    }),
                };
                match field("extension") {
                    Some(ext) => format!("{number} x{ext}"),
                    None => number,
                }
            }
            None => field("raw").unwrap_or_default().to_owned(),
        },
    })
}

/// `{{ caller | phone_uri }}`: `tel:+12895550147`, `tel:+14255550101;ext=4101`, `tel:4567`,
/// `sip:kwame.mensah@contoso.com`; `""` for an anonymous party or `null`.
fn phone_uri(value: Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    let dialable = |s: &str| s.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect::<String>();
    let tel = |s: &str| {
        let digits = dialable(s);
        if digits.is_empty() { String::new() } else { format!("tel:{digits}") }
    };
    let party = match dialled("phone_uri", &value)? {
        None => return Ok(String::new()),
        Some(Dialled::Number(number)) => return Ok(tel(number)),
        Some(Dialled::Party(party)) => party,
    };
    let field = |key| str_field(party, key);
    Ok(match field("kind") {
        Some("anonymous") => String::new(),
        Some("sip") => field("sip").map(|s| format!("sip:{s}")).unwrap_or_default(),
        _ => match (field("e164"), field("extension")) {
            (Some(e164), Some(ext)) => format!("{};ext={}", tel(e164), dialable(ext)),
            (Some(e164), None) => tel(e164),
            (None, Some(ext)) => tel(ext),
            (None, None) => field("raw").map(tel).unwrap_or_default(),
        },
    })
}

/// `{{ duration_secs | duration }}`: `1 min 05 s` in the reader's language;
/// `style="clock"` gives `1:05`.
fn duration(value: Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let style = style("duration", &kwargs, &[("long", DurationStyle::Long), ("clock", DurationStyle::Clock)])?;
    let Some(value) = defined("duration", &value)? else { return Ok(String::new()) };
    let secs = value
        .as_u64()
        .ok_or_else(|| tera::Error::message(format!("duration: expected a whole number of seconds, got {}", value.name())))?;
    Ok(with_env(|env| format::duration(secs, &env.reader, style)))
}

/// `{{ time | datetime }}`: an RFC 3339 time in the configured zone and the reader's
/// language; `style` is `long` (default), `short` or `time`. With `same_day_as=T` (another
/// time, or `null`), `style="time"` gives the time of day only when both fall on the same
/// day in the zone, else the `short` date and time (a list of calls under the date of the
/// last one).
fn datetime(value: Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let mut style = style("datetime", &kwargs, &[("long", DateStyle::Long), ("short", DateStyle::Short), ("time", DateStyle::Time)])?;
    let Some(value) = defined("datetime", &value)? else { return Ok(String::new()) };
    let at = timestamp(value)?;
    let same_day_as: Option<&Value> = kwargs.get("same_day_as")?;
    let day = match same_day_as.filter(|d| !d.is_none()) {
        Some(d) => Some(timestamp(d)?),
        None => None,
    };
    Ok(with_env(|env| {
        if style == DateStyle::Time && same_day_as.is_some() && !day.is_some_and(|day| format::same_day(at, day, &env.timezone)) {
            style = DateStyle::Short;
        }
        format::datetime(at, &env.timezone, &env.reader, style)
    }))
}

/// An RFC 3339 time given to `datetime`.
fn timestamp(value: &Value) -> tera::TeraResult<jiff::Timestamp> {
    let text = value.as_str().ok_or_else(|| tera::Error::message(format!("datetime: expected an RFC 3339 time, got {}", value.name())))?;
    text.parse().map_err(|e| tera::Error::message(format!("datetime: `{text}` is not an RFC 3339 time: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, context: serde_json::Value) -> Result<String, String> {
        let mut tera = Tera::default();
        register(&mut tera);
        tera.add_raw_template("t.html", template).map_err(|e| e.to_string())?;
        let context = tera::Context::from_serialize(&context).map_err(|e| e.to_string())?;
        tera.render("t.html", &context).map_err(|e| e.to_string())
    }

    fn party(kind: &str, fields: serde_json::Value) -> serde_json::Value {
        let mut p = serde_json::json!({"kind": kind, "raw": null, "e164": null, "national": null,
            "international": null, "extension": null, "sip": null});
        if let (Some(p), Some(f)) = (p.as_object_mut(), fields.as_object()) {
            p.extend(f.clone());
        }
        p
    }

    #[test]
    fn phone_shows_number_extension_or_sip() {
        let number = party(
            "number",
            serde_json::json!({"raw": "+12895550147", "e164": "+12895550147",
            "national": "(289) 555-0147", "international": "+1 289-555-0147"}),
        );
        let ctx = serde_json::json!({"p": number});
        assert_eq!(render("{{ p | phone }}", ctx.clone()).unwrap(), "+1 289-555-0147");
        assert_eq!(render("{{ p | phone(style='national') }}", ctx.clone()).unwrap(), "(289) 555-0147");
        assert_eq!(render("{{ p | phone(style='e164') }}|{{ p | phone_uri }}", ctx.clone()).unwrap(), "+12895550147|tel:+12895550147");
        let err = render("{{ p | phone(style='fancy') }}", ctx).unwrap_err();
        assert!(err.contains("phone: unknown style `fancy` (auto, national, international, e164)"), "{err}");

        let ext = serde_json::json!({"p": party("extension", serde_json::json!({"raw": "4567", "extension": "4567"}))});
        assert_eq!(render("{{ p | phone }}|{{ p | phone_uri }}", ext).unwrap(), "4567|tel:4567");
        let line = serde_json::json!({"p": party("number", serde_json::json!({"e164": "+14255550101", "extension": "4101"}))});
        assert_eq!(render("{{ p | phone }}|{{ p | phone_uri }}", line).unwrap(), "+1 425-555-0101 x4101|tel:+14255550101;ext=4101");
        let sip = serde_json::json!({"p": party("sip", serde_json::json!({"raw": "kwame.mensah@contoso.com", "sip": "kwame.mensah@contoso.com"}))});
        assert_eq!(render("{{ p | phone }}|{{ p | phone_uri }}", sip).unwrap(), "kwame.mensah@contoso.com|sip:kwame.mensah@contoso.com");
        let anon = serde_json::json!({"p": party("anonymous", serde_json::json!({}))});
        assert_eq!(render("[{{ p | phone }}|{{ p | phone_uri }}]", anon).unwrap(), "[|]");
        let raw = serde_json::json!({"p": party("number", serde_json::json!({"raw": "Unavailable"}))});
        assert_eq!(render("[{{ p | phone }}|{{ p | phone_uri }}]", raw).unwrap(), "[Unavailable|]");
    }

    #[test]
    fn phone_uri_cannot_smuggle_markup_or_schemes() {
        let ctx = serde_json::json!({"p": party("number", serde_json::json!({"raw": "javascript:alert(1)\"><b>"}))});
        assert_eq!(
            render("<a href=\"{{ p | phone_uri }}\">{{ p | phone }}</a>", ctx).unwrap(),
            "<a href=\"tel:1\">javascript:alert(1)&quot;&gt;&lt;b&gt;</a>"
        );
    }

    #[test]
    fn filters_follow_the_reader_set_for_the_thread() {
        let ctx = serde_json::json!({"d": 1187, "t": "2011-02-11T01:29:39Z", "none": null});
        let _guard = enter(FilterEnv {
            reader: Reader { language: "de".to_owned(), region: Some("DE".to_owned()) },
            timezone: TimeZone::get("Europe/Berlin").unwrap(),
        });
        assert_eq!(
            render("{{ d | duration }} / {{ d | duration(style='clock') }} / {{ t | datetime }} / [{{ none | datetime }}{{ none | duration }}]", ctx).unwrap(),
            "19 Min. 47 Sek. / 19:47 / Freitag, 11. Februar 2011, 02:29 (CET) / []"
        );
    }

    #[test]
    fn the_time_of_day_only_on_the_same_day_as_another_time() {
        let ctx = serde_json::json!({"a": "2011-02-11T01:05:00Z", "b": "2011-02-11T01:29:39Z", "c": "2011-02-10T03:00:00Z", "none": null});
        let _guard = enter(FilterEnv {
            reader: Reader { language: "en".to_owned(), region: Some("US".to_owned()) },
            timezone: TimeZone::get("America/Toronto").unwrap(),
        });
        let shown = "{{ a | datetime(style='time', same_day_as=b) }} / {{ c | datetime(style='time', same_day_as=b) }} / \
                     {{ a | datetime(style='time', same_day_as=none) }} / {{ a | datetime(style='short', same_day_as=b) }}";
        // 01:05 UTC and 01:29 UTC on the 11th are both February 10 in Toronto; 03:00 UTC on the 10th is the 9th
        assert_eq!(render(shown, ctx.clone()).unwrap(), "8:05 PM / 2/9/2011 10:00 PM / 2/10/2011 8:05 PM / 2/10/2011 8:05 PM");
        let err = render("{{ a | datetime(style='time', same_day_as='soon') }}", ctx).unwrap_err();
        assert!(err.contains("datetime: `soon` is not an RFC 3339 time"), "{err}");
    }

    #[test]
    fn guard_restores_the_previous_reader() {
        let ctx = serde_json::json!({"d": 65});
        {
            let _outer = enter(FilterEnv { reader: Reader { language: "ja".to_owned(), region: None }, timezone: TimeZone::UTC });
            {
                let _inner = enter(FilterEnv { reader: Reader { language: "de".to_owned(), region: None }, timezone: TimeZone::UTC });
                assert_eq!(render("{{ d | duration }}", ctx.clone()).unwrap(), "1 Min. 05 Sek.");
            }
            assert_eq!(render("{{ d | duration }}", ctx.clone()).unwrap(), "1分05秒");
        }
        assert_eq!(render("{{ d | duration }}", ctx).unwrap(), "1 min 05 s");
    }

    #[test]
    fn bad_input_is_a_located_error() {
        let err = render("x\n{{ t | datetime }}", serde_json::json!({"t": "yesterday"})).unwrap_err();
        assert!(err.contains("datetime: `yesterday` is not an RFC 3339 time"), "{err}");
        assert!(err.contains("t.html:2:"), "{err}");
        let err = render("{{ d | duration }}", serde_json::json!({"d": "long"})).unwrap_err();
        assert!(err.contains("duration: expected a whole number of seconds, got string"), "{err}");
        let err = render("{{ missing | phone }}", serde_json::json!({})).unwrap_err();
        assert!(err.contains("the value given to `phone` is undefined"), "{err}");
    }
}
