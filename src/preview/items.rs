//! What the page can show: the built-in samples, the header files in the watched drop folder
//! and the files uploaded on the page, each named by an id (`sample/<name>`, `file/<name>`,
//! `upload/<n>`), and the view of one rendered through the current templates.
//!
//! Consumes ids from the page; produces events and JSON views. An id is only ever looked up
//! in these lists: a `file/` id names an entry of the drop folder's listing, never a path
//! built from what the page sent, so nothing outside the template and drop folders is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::event::Event;
use crate::intake::Parsed;
use crate::pipeline::{Error as PipelineError, Pipeline, Prepared};
use crate::render::{RenderError, TemplateProblem};

/// Where an event comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Sample(&'static str),
    /// A header file in the drop folder (parsed again at each view, so edits show).
    File(PathBuf),
    /// An uploaded file, parsed in memory when it arrived.
    Upload {
        name: String,
        event: Box<Event>,
    },
}

/// The entries of the drop folder: regular files directly in it, by file name.
pub(crate) fn list_drop_folder(dir: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let header = !name.starts_with('.') && (name.ends_with(".txt") || name.ends_with(".xml"));
            header.then(|| (name, e.path()))
        })
        .collect()
}

/// The event of a source, enriched, with the path that names it in errors.
pub(crate) fn event_of(pipeline: &Pipeline, source: &Source) -> Result<(Event, PathBuf), String> {
    match source {
        Source::Sample(name) => {
            let sample = crate::samples::by_name(name).ok_or_else(|| format!("no built-in sample `{name}`"))?;
            Ok((sample.event, PathBuf::from(format!("sample:{name}"))))
        }
        Source::File(path) => match pipeline.parse_file(path) {
            Ok(Parsed::Event(event)) => Ok((*event, path.clone())),
            Ok(Parsed::Skipped(message_type)) => Err(format!("{}: skipped: {message_type} is not a notification", file_name(path))),
            Err(e) => Err(chain(&e)),
        },
        Source::Upload { name, event } => Ok(((**event).clone(), PathBuf::from(format!("upload:{name}")))),
    }
}

/// The parts of a successful rendering the page shows.
pub(crate) fn rendered_view(prepared: &Prepared) -> Value {
    let event = &prepared.event;
    json!({
        "subject": prepared.rendered.subject,
        "text": prepared.rendered.text,
        "locale": prepared.rendered.locale,
        "headers": headers(prepared.message.headers().to_string().as_bytes()),
        "attachments": event.attachment.iter().map(|a| json!({
            "file_name": a.file_name, "content_type": a.content_type, "size_bytes": a.size_bytes,
        })).collect::<Vec<_>>(),
        "trace": trace(event),
    })
}

/// How the caller (and target) were normalized and looked up, and for whom the mail is.
pub fn trace(event: &Event) -> Value {
    json!({
        "caller": event.caller,
        "target": event.target,
        "recipient": event.recipient,
        "kind": event.kind,
        "message_type": event.message_type,
        "call_id": event.call_id,
    })
}

/// A template problem as the page shows it.
pub(crate) fn problem_json(p: &TemplateProblem) -> Value {
    json!({ "file": p.file, "line": p.line, "col": p.col, "message": p.message, "excerpt": p.excerpt, "text": p.to_string() })
}

/// The error of a failed preparation: a located template problem when there is one. When
/// the kind has no complete template folder because a file of it (or a shared one) did not
/// load, that located load problem is the error, not the knock-on "no complete folder".
pub(crate) fn error_json(error: &PipelineError, load_problems: &[TemplateProblem]) -> Value {
    let problem = match error {
        PipelineError::Render { source, .. } => match source.as_ref() {
            RenderError::NoTemplates { kind, .. } => cause_of_missing_folder(kind.as_str(), load_problems),
            other => other.problem(),
        },
        _ => None,
    };
    match problem {
        Some(p) => problem_json(p),
        None => json!({ "text": chain(error) }),
    }
}

/// The load problem that left `kind` without a complete folder: one in the kind's own
/// folder, else one in a shared file (`_layouts/`, `_partials/`, `_i18n/`).
fn cause_of_missing_folder<'a>(kind: &str, load_problems: &'a [TemplateProblem]) -> Option<&'a TemplateProblem> {
    let own = format!("{kind}/");
    load_problems.iter().find(|p| p.file.starts_with(&own)).or_else(|| load_problems.iter().find(|p| p.file.starts_with('_')))
}

/// The top-level header fields of a formatted message (or of its header block alone: the
/// preview passes only the headers, so a voice mail's audio is never encoded for it), unfolded, in order.
pub fn headers(formatted: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(formatted);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    out
}

/// An error with its causes, `a: b: c`.
pub(crate) use crate::causes::line as chain;

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded_in_order() {
        let raw = b"From: a@b.c\r\nSubject: =?utf-8?b?QQ==?=\r\n =?utf-8?b?Qg==?=\r\nTo: d@e.f\r\n\r\nbody: not a header\r\n";
        assert_eq!(
            headers(raw),
            vec![
                ("From".to_owned(), "a@b.c".to_owned()),
                ("Subject".to_owned(), "=?utf-8?b?QQ==?= =?utf-8?b?Qg==?=".to_owned()),
                ("To".to_owned(), "d@e.f".to_owned()),
            ]
        );
    }

    #[test]
    fn drop_folder_lists_header_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        std::fs::write(dir.path().join("b.xml"), "x").unwrap();
        std::fs::write(dir.path().join("a.wav"), "x").unwrap();
        std::fs::write(dir.path().join(".hidden.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
        let names: Vec<String> = list_drop_folder(dir.path()).into_keys().collect();
        assert_eq!(names, ["a.txt", "b.xml"]);
    }
}
