//! `callnote check`: loads a template set and renders every kind/locale folder's three
//! templates against every built-in sample event of that kind, in strict mode (an undefined
//! variable is an error), collecting every problem as a [`TemplateProblem`]
//! (`FILE:LINE:COL: message`).
//!
//! Consumes a [`Templates`] set (or a folder, loaded leniently so that load and render
//! problems are reported together) and [`crate::samples`]; produces the problems, each once
//! (the first sample that shows it is named). Never fails and never panics: a problem is data.

use std::collections::BTreeSet;
use std::path::Path;

use super::templates::PARTS;
use super::{RenderError, RenderSettings, TemplateProblem, Templates};
use crate::event::Kind;
use crate::samples;

/// Every problem of a loaded template set.
pub fn check(templates: &Templates) -> Vec<TemplateProblem> {
    let settings = RenderSettings { timezone: jiff::tz::TimeZone::UTC, default_locale: "en-US".to_owned() };
    let samples = samples::all();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for kind in Kind::ALL {
        for lang in templates.locales(kind) {
            for sample in samples.iter().filter(|s| s.event.kind == kind) {
                let results = match templates.render_each(&sample.event, &settings, lang) {
                    Ok(results) => results,
                    Err(e) => {
                        let root = format!("{kind}/{lang}/{}", PARTS[0]);
                        record(&mut problems, &mut seen, to_problem(e, &root), &root, sample.name);
                        continue;
                    }
                };
                for (part, result) in PARTS.iter().zip(results) {
                    let root = format!("{kind}/{lang}/{part}");
                    match result {
                        Ok(text) if text.trim().is_empty() => {
                            let problem = TemplateProblem::file(&root, "renders as empty text");
                            record(&mut problems, &mut seen, problem, &root, sample.name);
                        }
                        Ok(_) => {}
                        Err(e) => record(&mut problems, &mut seen, to_problem(e, &root), &root, sample.name),
                    }
                }
            }
        }
    }
    problems
}

/// Loads `dir` over the built-in set and checks it: load problems, then render problems.
pub fn check_dir(dir: &Path) -> Vec<TemplateProblem> {
    let (templates, mut problems) = Templates::from_dir_lenient(dir);
    problems.extend(check(&templates));
    problems
}

fn to_problem(error: RenderError, root: &str) -> TemplateProblem {
    match error {
        RenderError::Template(problem) => problem,
        other => TemplateProblem::file(root, other.to_string()),
    }
}

/// Keeps the first occurrence of each (place, message), naming the sample and, when the
/// problem is in a shared file, the template that was being rendered.
fn record(problems: &mut Vec<TemplateProblem>, seen: &mut BTreeSet<String>, mut problem: TemplateProblem, root: &str, sample: &str) {
    if !seen.insert(problem.to_string()) {
        return;
    }
    problem.message = if problem.file == root {
        format!("{} (sample {sample})", problem.message)
    } else {
        format!("{} (rendering {root}, sample {sample})", problem.message)
    };
    problems.push(problem);
}
