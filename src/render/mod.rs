//! Rendering: an enriched [`crate::Event`] -> [`Rendered`] {subject, text, html} through Tera 2
//! templates chosen by kind and the recipient's culture (with fallback).
//!
//! Consumes an `Event` (the context of docs/template-context.md) and a [`Templates`] set; produces the three
//! parts of a notification. The set is `templates/<kind>/<locale>/{subject.txt, body.txt,
//! body.html}` plus shared `_layouts/`, `_partials/` and `_i18n/<locale>.toml` word tables; the
//! built-in set is compiled into the binary and an admin folder is laid over it file by file
//! (see `templates/README.md`). Rendering never does I/O and never makes up a value: a template
//! that uses something the event lacks fails with a [`RenderError`] naming the template file,
//! line and column (Tera 2 is strict about undefined variables).

pub mod check;
pub mod context;
pub mod filters;
pub mod format;
pub mod locale;
mod problem;
pub mod settings;
pub mod templates;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::event::{Event, Kind};
use context::Extras;
pub use problem::TemplateProblem;
use templates::{Loaded, PARTS};

/// The partial that names a voice mail's attached recording.
const ATTACHMENT_NAME: &str = "_partials/attachment_name.txt";

/// The three rendered parts of one notification (and the recording's file name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The locale folder the templates came from (`fr`, `en`, …).
    pub locale: String,
    /// A voice mail recording's file name, without extension (`_partials/attachment_name.txt`:
    /// "Voice mail from Priya Raman (0:42)"); `None` for other kinds and when nothing is attached.
    pub attachment_name: Option<String>,
}

/// What rendering needs besides the event.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// Times are shown in this zone (`[templates] timezone`).
    pub timezone: jiff::tz::TimeZone,
    /// Culture used when the recipient has none (`[templates] default_locale`).
    pub default_locale: String,
}

/// Why an event could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed; the problem says where (file, line, column, excerpt).
    #[error("{0}")]
    Template(TemplateProblem),
    #[error("no complete template folder for kind `{kind}` (tried {tried})")]
    NoTemplates { kind: Kind, tried: String },
    #[error("call {call_id}: cannot build the template context: {message}")]
    Context { call_id: String, message: String },
}

impl RenderError {
    /// The located template problem, for the preview's error display.
    pub fn problem(&self) -> Option<&TemplateProblem> {
        match self {
            RenderError::Template(p) => Some(p),
            _ => None,
        }
    }
}

/// A loaded, compiled template set. Cheap to share (`Arc`), safe to use from many threads.
pub struct Templates {
    loaded: Loaded,
    /// What renders derive from cultures, remembered (see [`Memo`]).
    memo: std::sync::Mutex<Memo>,
}

/// Derived per culture rather than per event: fallback chains, and for each culture, folder
/// and default culture the merged word table and the filters' reader. Merging and converting
/// word tables is the costliest part of a render, and a mail server sees a handful of
/// cultures. Cultures come from the input, so each table is emptied when it reaches
/// [`MEMO_MAX`] entries.
#[derive(Default)]
struct Memo {
    /// `fallback_chain(culture, default)`, by `culture` `\0` `default`.
    chains: HashMap<String, Arc<[String]>>,
    /// Word tables merged along a chain, by the chain's names joined with `|`.
    words: HashMap<String, context::Words>,
    /// By culture `\0` folder `\0` default culture.
    readings: HashMap<String, Reading>,
}

/// Most entries a [`Memo`] table keeps.
const MEMO_MAX: usize = 1_024;

/// What a culture read in a template folder gives every render: the words and the reader.
#[derive(Clone)]
struct Reading {
    t: context::Words,
    reader: format::Reader,
}

/// `map[key]`, computed by `make` when missing; the map is emptied first when full.
fn remembered<V: Clone>(map: &mut HashMap<String, V>, key: String, make: impl FnOnce() -> V) -> V {
    if let Some(hit) = map.get(&key) {
        return hit.clone();
    }
    if map.len() >= MEMO_MAX {
        map.clear();
    }
    map.entry(key).or_insert_with(make).clone()
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("files", &self.loaded.sources.len()).field("folders", &self.loaded.folders).finish()
    }
}

impl Templates {
    /// The set compiled into the binary (`templates/` of the source tree).
    pub fn builtin() -> Templates {
        let (loaded, problems) = templates::load(templates::builtin_files());
        for problem in &problems {
            tracing::error!("built-in template problem: {problem}");
        }
        Templates { loaded, memo: Default::default() }
    }

    /// The built-in set with the files of `dir` laid over it (`--templates DIR`): a file of
    /// the folder replaces the built-in file of the same relative path; anything not in the
    /// folder stays built-in. Every problem found while loading is returned.
    pub fn from_dir(dir: &Path) -> Result<Templates, Vec<TemplateProblem>> {
        let (templates, problems) = Templates::from_dir_lenient(dir);
        if problems.is_empty() { Ok(templates) } else { Err(problems) }
    }

    /// Like [`Templates::from_dir`], but keeps whatever loads: files with problems (and the
    /// files that depend on them) are left out and reported. For `check` and the preview.
    pub fn from_dir_lenient(dir: &Path) -> (Templates, Vec<TemplateProblem>) {
        let (overlay, mut problems) = templates::read_dir(dir);
        let mut files = templates::builtin_files();
        files.extend(overlay);
        let (loaded, more) = templates::load(files);
        problems.extend(more);
        (Templates { loaded, memo: Default::default() }, problems)
    }

    /// The complete locale folders of `kind` (`["de", "en", …]`).
    pub fn locales(&self, kind: Kind) -> &[String] {
        self.loaded.folders.get(kind.as_str()).map_or(&[], Vec::as_slice)
    }

    /// Every file of the set with its text (relative path, `/`-separated).
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.loaded.sources.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// Renders the subject, text and HTML parts of `event` for its recipient: the template
    /// folder is the first of the recipient culture's fallback chain (`fr-CA`, `fr`, the
    /// default culture, `en`) that exists for the event's kind.
    pub fn render(&self, event: &Event, settings: &RenderSettings) -> Result<Rendered, RenderError> {
        let culture = culture_of(event, settings);
        let chain = self.chain(&culture, &settings.default_locale);
        let folder = chain
            .iter()
            .find_map(|c| self.locales(event.kind).iter().find(|f| f.eq_ignore_ascii_case(c)))
            .ok_or_else(|| RenderError::NoTemplates { kind: event.kind, tried: chain.join(", ") })?;
        self.render_in(event, settings, folder)
    }

    /// Renders `event` with the templates of locale folder `lang` (which must exist for the
    /// kind), whatever the recipient's culture: `check` and the preview use it.
    pub fn render_in(&self, event: &Event, settings: &RenderSettings, lang: &str) -> Result<Rendered, RenderError> {
        let (extras, env) = self.extras(event, settings, lang);
        let context = context::build(event, &extras)?;
        let _reader = filters::enter(env);
        let [subject, text, html] = self.render_parts(event, lang, &context);
        let attachment_name = self.attachment_name(event, &context);
        Ok(Rendered { subject: subject?, text: text?, html: html?, locale: lang.to_owned(), attachment_name })
    }

    /// Renders the three parts ([`PARTS`] order) separately, so that each one's problem is
    /// seen (`check`); the outer error is a context that cannot be built.
    pub(crate) fn render_each(
        &self,
        event: &Event,
        settings: &RenderSettings,
        lang: &str,
    ) -> Result<[Result<String, RenderError>; 3], RenderError> {
        let (extras, env) = self.extras(event, settings, lang);
        let context = context::build(event, &extras)?;
        let _reader = filters::enter(env);
        Ok(self.render_parts(event, lang, &context))
    }

    fn render_parts(&self, event: &Event, lang: &str, context: &tera::Context) -> [Result<String, RenderError>; 3] {
        let [subject, text, html] = PARTS.map(|part| self.render_part(&format!("{}/{lang}/{part}", event.kind), context));
        [subject.map(|s| one_line(&s)), text.map(|t| tidy_text(&t)), html.map(|h| tidy_html(&h))]
    }

    /// The recording's file name for a voice mail with its recording attached. A partial that
    /// fails (an admin's override) is logged and the side file keeps its own name.
    fn attachment_name(&self, event: &Event, context: &tera::Context) -> Option<String> {
        if event.kind != Kind::Voicemail || event.attachment.is_none() || event.attachment_omitted.is_some() {
            return None;
        }
        match self.render_part(ATTACHMENT_NAME, context) {
            Ok(name) => Some(one_line(&name)).filter(|n| !n.is_empty()),
            Err(e) => {
                tracing::warn!(call_id = %event.call_id, "{ATTACHMENT_NAME}: {e}: the recording keeps its own file name");
                None
            }
        }
    }

    /// The context `event` would be rendered with (for the preview).
    pub fn context_json(&self, event: &Event, settings: &RenderSettings, lang: &str) -> Result<serde_json::Value, RenderError> {
        context::to_json(event, &self.extras(event, settings, lang).0)
    }

    fn extras(&self, event: &Event, settings: &RenderSettings, lang: &str) -> (Extras, filters::FilterEnv) {
        let culture = culture_of(event, settings);
        let Reading { t, reader } = self.reading(&culture, lang, &settings.default_locale);
        let tz = &settings.timezone;
        let timezone = match tz.iana_name() {
            Some(name) => name.to_owned(),
            None => tz.to_offset_info(event.time.unwrap_or(jiff::Timestamp::UNIX_EPOCH)).abbreviation().to_owned(),
        };
        let env = filters::FilterEnv { reader, timezone: tz.clone() };
        (Extras { locale: culture, lang: lang.to_owned(), timezone, t }, env)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`locale::fallback_chain`] of `culture`, remembered.
    fn chain(&self, culture: &str, default_locale: &str) -> Arc<[String]> {
        let key = format!("{culture}\0{default_locale}");
        remembered(&mut self.memo().chains, key, || locale::fallback_chain(Some(culture), default_locale).into())
    }

    /// The words and the reader for `culture` in folder `lang`, remembered. The words follow
    /// the folder's language; the culture refines them when it matches.
    fn reading(&self, culture: &str, lang: &str, default_locale: &str) -> Reading {
        let key = format!("{culture}\0{lang}\0{default_locale}");
        if let Some(hit) = self.memo().readings.get(&key) {
            return hit.clone();
        }
        let same_language = locale::language(culture) == locale::language(lang);
        let words_from = if same_language { culture } else { lang };
        let t = self.words_for(&self.chain(words_from, default_locale));
        let region =
            crate::phone::region_of_culture(culture).or_else(|| crate::phone::region_of_culture(default_locale)).map(str::to_owned);
        let reading = Reading { t, reader: format::Reader { language: locale::language_and_script(lang), region } };
        remembered(&mut self.memo().readings, key, || reading)
    }

    /// The word table for a fallback chain, merged once and then shared.
    fn words_for(&self, chain: &[String]) -> context::Words {
        remembered(&mut self.memo().words, chain.join("|"), || {
            let mut t = serde_json::Value::Object(serde_json::Map::new());
            for name in chain.iter().rev() {
                if let Some((_, table)) = self.loaded.strings.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    merge(&mut t, table);
                }
            }
            context::Words::new(t)
        })
    }

    fn render_part(&self, name: &str, context: &tera::Context) -> Result<String, RenderError> {
        templates::guarded(|| self.loaded.tera.render(name, context)).map_err(|e| {
            let problem = problem::from_tera(&e, name, &self.loaded.sources).into_iter().next();
            RenderError::Template(problem.unwrap_or_else(|| TemplateProblem::file(name, e.to_string())))
        })
    }
}

/// The recipient's culture when it is a valid name, else the configured default.
fn culture_of(event: &Event, settings: &RenderSettings) -> String {
    event.recipient.culture.as_deref().filter(|c| locale::is_valid_culture(c)).unwrap_or(&settings.default_locale).to_owned()
}

/// Lays `over`'s keys onto `base`, recursing into tables.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => merge(existing, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// A subject is one line: whitespace runs (newlines included) become one space.
fn one_line(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for word in subject.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Plain text: trailing spaces dropped, at most one blank line in a row, no blank lines at
/// either end, one final newline. Lets templates put tags on lines of their own.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() && blank_run > 0 {
            out.push('\n');
        }
        blank_run = 0;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// HTML: surrounding whitespace trimmed, blank lines dropped, one final newline.
fn tidy_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for line in html.lines().map(str::trim_end).filter(|l| !l.trim_start().is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Templates>();
        shareable::<RenderError>();
    }

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("  Missed call\n from  Priya\r\n"), "Missed call from Priya");
    }

    #[test]
    fn text_keeps_single_blank_lines_only() {
        assert_eq!(tidy_text("\n\nA  \n\n\n\nB\n  \nC\n\n"), "A\n\nB\n\nC\n");
        assert_eq!(tidy_text(""), "");
    }

    #[test]
    fn html_drops_blank_lines() {
        assert_eq!(tidy_html("\n<p>a</p>   \n   \n<p>b</p>"), "<p>a</p>\n<p>b</p>\n");
    }

    #[test]
    fn words_merge_deeply() {
        let mut base = serde_json::json!({"a": "1", "labels": {"work": "work", "home": "home"}});
        merge(&mut base, &serde_json::json!({"labels": {"work": "travail"}, "b": "2"}));
        assert_eq!(base, serde_json::json!({"a": "1", "b": "2", "labels": {"work": "travail", "home": "home"}}));
    }
}
