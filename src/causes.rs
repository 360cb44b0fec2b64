//! One way to show an error with its causes, for logs, parked-item reports, the preview
//! page and the command line: `message: cause: cause`.
//!
//! Consumes any `std::error::Error` (an `anyhow::Error` through `&*error`); produces text.
//! A cause is left out when it is empty or when the error before it already says it
//! (libraries often repeat their source's message: ldap3's `I/O error: connection refused`
//! above the `connection refused` it wraps). Never fails.

use std::error::Error;

/// The error and each of its causes worth showing, outermost first.
pub fn list(error: &dyn Error) -> Vec<String> {
    let mut texts = vec![error.to_string()];
    let mut previous = texts[0].clone();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !previous.contains(&text) {
            texts.push(text.clone());
        }
        previous = text;
        next = cause.source();
    }
    texts
}

/// The error and its causes on one line, joined with `: `.
pub fn line(error: &dyn Error) -> String {
    list(error).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Wrapped {
        text: &'static str,
        #[source]
        source: Option<Box<Wrapped>>,
    }

    fn chain(texts: &[&'static str]) -> Wrapped {
        let mut error: Option<Wrapped> = None;
        for text in texts.iter().rev() {
            error = Some(Wrapped { text, source: error.map(Box::new) });
        }
        error.expect("at least one text")
    }

    #[test]
    fn causes_follow_the_error_outermost_first() {
        let e = chain(&["x.ldif: cannot read directory file", "no such file"]);
        assert_eq!(list(&e), ["x.ldif: cannot read directory file", "no such file"]);
        assert_eq!(line(&e), "x.ldif: cannot read directory file: no such file");
    }

    #[test]
    fn a_repeated_or_empty_cause_is_left_out() {
        let e = chain(&["ldap://dc1: cannot connect", "I/O error: connection refused", "connection refused", "", "os error 111"]);
        assert_eq!(line(&e), "ldap://dc1: cannot connect: I/O error: connection refused: os error 111");
    }

    #[test]
    fn an_anyhow_error_shows_its_context_and_source() {
        let e = anyhow::Error::new(std::io::Error::other("disk full")).context("out/a.eml: cannot write");
        assert_eq!(line(&*e), "out/a.eml: cannot write: disk full");
    }
}
