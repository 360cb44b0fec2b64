//! [`TemplateProblem`]: one problem located in a template file (`FILE:LINE:COL: message`),
//! and the conversion of Tera's errors into problems.
//!
//! Consumes `tera::Error`s and the template sources; produces problems with a 1-based line,
//! a 1-based column (in characters) and an excerpt of the offending line. Tera's syntax and
//! rendering errors carry a span, which is used directly. Its load-time validation errors
//! (unknown filter, unknown template) only exist as report text (`--> FILE:LINE:COL`), which
//! is read back here; an error that names no place is put at line 1, column 1 of the file it
//! concerns. Never panics.

use std::collections::BTreeMap;

use tera::ErrorKind;

/// One problem in a template set, located in a template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// Path relative to the templates folder, `/`-separated (`missed_call/en/subject.txt`).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    /// The offending source line with a caret under the column, when the source is known.
    pub excerpt: Option<String>,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Template sources by file name, to quote excerpts from.
pub(crate) type Sources = BTreeMap<String, String>;

impl TemplateProblem {
    /// A problem at `line`:`col` of `file`, with an excerpt when the source is known.
    pub(crate) fn at(file: &str, line: usize, col: usize, message: impl Into<String>, sources: &Sources) -> TemplateProblem {
        let line = line.max(1);
        let col = col.max(1);
        let excerpt = sources.get(file).and_then(|source| excerpt(source, line, col));
        TemplateProblem { file: file.to_owned(), line, col, message: message.into(), excerpt }
    }

    /// A problem about a whole file (put at line 1, column 1; no excerpt).
    pub(crate) fn file(file: &str, message: impl Into<String>) -> TemplateProblem {
        TemplateProblem { file: file.to_owned(), line: 1, col: 1, message: message.into(), excerpt: None }
    }

    /// A problem at a byte offset of `source` (TOML errors).
    pub(crate) fn at_offset(file: &str, source: &str, offset: usize, message: impl Into<String>, sources: &Sources) -> TemplateProblem {
        let before = source.get(..offset.min(source.len())).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        TemplateProblem::at(file, line, col, message, sources)
    }

    /// The template a load-time problem says is missing (`unknown template `X``, `extends `X``):
    /// used to leave out the knock-on effects of a file that was itself rejected.
    pub(crate) fn missing_template(&self) -> Option<&str> {
        ["unknown template `", "extends `"].iter().find_map(|prefix| {
            let rest = self.message.strip_prefix(prefix)?;
            rest.split('`').next()
        })
    }
}

/// `  3 | {{ caller.nam }}` and a caret line under column `col`.
fn excerpt(source: &str, line: usize, col: usize) -> Option<String> {
    let text = source.split('\n').nth(line - 1)?.trim_end_matches('\r');
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let indent: String = text.chars().take(col - 1).map(blank_as_wide_as).collect();
    Some(format!("{number} | {text}\n{pad} | {indent}^"))
}

/// What goes under one character of the quoted line so that the caret lands under its
/// column on a terminal or in a monospace page: a tab stays a tab, a wide character (`不`)
/// takes two spaces, a combining mark none.
fn blank_as_wide_as(c: char) -> String {
    match c {
        '\t' => "\t".to_owned(),
        _ => " ".repeat(unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)),
    }
}

/// Lower-cases the first letter (Tera writes `Field ...`; our messages start in lower case).
fn lower_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Turns a Tera error into problems. `fallback` is the file the error is about when it names
/// none (the template being loaded or rendered).
pub(crate) fn from_tera(err: &tera::Error, fallback: &str, sources: &Sources) -> Vec<TemplateProblem> {
    match err.kind() {
        ErrorKind::SyntaxError(report) | ErrorKind::RenderingError(report) => {
            let file = if report.filename().is_empty() { fallback } else { report.filename() };
            let span = report.span();
            vec![TemplateProblem::at(file, span.start_line, span.start_col + 1, lower_first(report.message()), sources)]
        }
        ErrorKind::MissingParent { current, parent } => {
            vec![TemplateProblem::file(current, format!("extends `{parent}`, which does not exist or has errors"))]
        }
        ErrorKind::CircularExtend { tpl, inheritance_chain } => {
            vec![TemplateProblem::file(tpl, format!("circular extends: {}", inheritance_chain.join(" -> ")))]
        }
        ErrorKind::CircularInclude { tpl, include_chain } => {
            vec![TemplateProblem::file(tpl, format!("circular include: {}", include_chain.join(" -> ")))]
        }
        ErrorKind::TemplateNotFound(name) => {
            vec![TemplateProblem::file(fallback, format!("unknown template `{name}`"))]
        }
        ErrorKind::Msg(text) => from_reports(text, fallback, sources),
        _ => vec![TemplateProblem::file(fallback, lower_first(&err.to_string()))],
    }
}

/// Reads Tera's report text: blocks of `error: MESSAGE` followed by ` --> FILE:LINE:COL`.
/// Text without any report is one problem, placed in the first template it names in
/// backquotes, else in `fallback`.
fn from_reports(text: &str, fallback: &str, sources: &Sources) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    let mut message: Option<&str> = None;
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("error: ") {
            message = Some(m);
        } else if let (Some(m), Some(locus)) = (message, line.trim_start().strip_prefix("--> ")) {
            let mut parts = locus.rsplitn(3, ':');
            let (col, row, file) = (parts.next(), parts.next(), parts.next());
            if let (Some(file), Some(Ok(row)), Some(Ok(col))) = (file, row.map(str::parse), col.map(str::parse)) {
                problems.push(TemplateProblem::at(file, row, col, lower_first(m), sources));
            }
            message = None;
        }
    }
    if problems.is_empty() {
        let named = text.split('`').skip(1).step_by(2).find(|name| sources.contains_key(*name));
        problems.push(TemplateProblem::file(named.unwrap_or(fallback), lower_first(text.trim())));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Sources {
        files.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
    }

    #[test]
    fn load_errors_are_read_from_the_reports() {
        let files = [("a/x.txt", "line1\n  {{ x | nofilter }}"), ("b.txt", "{% include \"nope.txt\" %}")];
        let mut tera = tera::Tera::default();
        let err = tera.add_raw_templates(files).unwrap_err();
        let problems = from_tera(&err, "?", &sources(&files));
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].to_string(), "a/x.txt:2:10: unknown filter `nofilter`");
        assert_eq!(problems[0].excerpt.as_deref(), Some("2 |   {{ x | nofilter }}\n  |          ^"));
        assert_eq!(problems[1].to_string(), "b.txt:1:12: unknown template `nope.txt`");
        assert_eq!(problems[1].missing_template(), Some("nope.txt"));
    }

    #[test]
    fn syntax_and_rendering_errors_use_their_spans() {
        let files = [("c.txt", "ok\n {% if %}")];
        let err = tera::Tera::default().add_raw_templates(files).unwrap_err();
        let problems = from_tera(&err, "?", &sources(&files));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().starts_with("c.txt:2:8: found `%}` but expected one of"), "{}", problems[0]);

        let files = [("d.txt", "a\n\n  {{ caller.nam }}"), ("e.txt", "x{% include \"d.txt\" %}")];
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(files).unwrap();
        let ctx = tera::Context::from_serialize(&serde_json::json!({"caller": {"name": "x"}})).unwrap();
        let err = tera.render("e.txt", &ctx).unwrap_err();
        let problems = from_tera(&err, "e.txt", &sources(&files));
        assert_eq!(problems[0].to_string(), "d.txt:3:13: field `nam` is not defined. Available fields: name");
        assert_eq!(problems[0].excerpt.as_deref(), Some("3 |   {{ caller.nam }}\n  |             ^"));
    }

    #[test]
    fn structured_kinds_name_their_file() {
        let files = [("f.txt", "{% extends \"zz.txt\" %}")];
        let err = tera::Tera::default().add_raw_templates(files).unwrap_err();
        let problems = from_tera(&err, "?", &sources(&files));
        assert_eq!(problems[0].to_string(), "f.txt:1:1: extends `zz.txt`, which does not exist or has errors");
        assert_eq!(problems[0].missing_template(), Some("zz.txt"));
    }

    #[test]
    fn offsets_become_line_and_column() {
        let src = "a = 1\nbé = \"x\n";
        let p = TemplateProblem::at_offset("_i18n/fr.toml", src, 12, "bad", &sources(&[("_i18n/fr.toml", src)]));
        assert_eq!(p.to_string(), "_i18n/fr.toml:2:6: bad");
        assert_eq!(p.excerpt.as_deref(), Some("2 | bé = \"x\n  |      ^"));
    }

    #[test]
    fn the_caret_sits_under_its_column_after_wide_and_combining_characters() {
        let files = [("ja.txt", "不在着信：{{ x | nofilter }}"), ("fr.txt", "Appele\u{301} {{ x | nofilter }}")];
        let err = tera::Tera::default().add_raw_templates(files).unwrap_err();
        let problems = from_tera(&err, "?", &sources(&files));
        let excerpt = |file: &str| problems.iter().find(|p| p.file == file).and_then(|p| p.excerpt.clone());
        // Five wide characters (two columns each) and `{{ x | ` before the filter.
        let under_ja = " ".repeat(10 + 7);
        assert_eq!(excerpt("ja.txt"), Some(format!("1 | 不在着信：{{{{ x | nofilter }}}}\n  | {under_ja}^")));
        // `e` and a combining accent make one column.
        let under_fr = " ".repeat(7 + 7);
        assert_eq!(excerpt("fr.txt"), Some(format!("1 | Appele\u{301} {{{{ x | nofilter }}}}\n  | {under_fr}^")));
    }
}
