//! Rendering: an enriched [`crate::Event`] -> [`Rendered`] {subject, text, html} through Tera 2
//! templates chosen by kind and the recipient's culture (with fallback).
//!
//! OWNER: render helper.

pub mod locale;

/// The three rendered parts of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The locale folder the templates came from (`fr`, `en`, …).
    pub locale: String,
}
