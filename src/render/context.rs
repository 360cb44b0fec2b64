//! The template context: the event's JSON (docs/template-context.md) plus the render extras (`locale`,
//! `lang`, `timezone`, `t`), and the list of variable paths that `templates/README.md`
//! documents (a test keeps the two in step).
//!
//! Consumes an [`Event`] and the chosen locale, zone and word table; produces JSON (for the
//! preview and the README test) and the `tera::Context`. Pure; the only failure is a value
//! Tera cannot take, reported as a [`RenderError::Context`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::RenderError;
use crate::event::Event;

/// What a render adds to the event's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Extras {
    /// The culture the mail is written for (`fr-CA`): the recipient's, else the default.
    pub locale: String,
    /// The template folder in use (`fr`).
    pub lang: String,
    /// The zone times are shown in (`America/Toronto`).
    pub timezone: String,
    /// The words of `_i18n/<lang>.toml`, merged along the fallback chain.
    pub t: Words,
}

/// A merged word table, kept both as JSON (preview, docs) and as a Tera value (render);
/// cloning is cheap (shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Words {
    pub json: std::sync::Arc<Value>,
    tera: tera::Value,
}

impl Words {
    pub fn new(json: Value) -> Words {
        let tera = tera::Value::from_serializable(&json);
        Words { json: std::sync::Arc::new(json), tera }
    }
}

/// The whole context as JSON: the event, then the extras at the top level.
pub fn to_json(event: &Event, extras: &Extras) -> Result<Value, RenderError> {
    let mut value =
        serde_json::to_value(event).map_err(|e| RenderError::Context { call_id: event.call_id.clone(), message: e.to_string() })?;
    if let Value::Object(map) = &mut value {
        map.insert("locale".into(), Value::String(extras.locale.clone()));
        map.insert("lang".into(), Value::String(extras.lang.clone()));
        map.insert("timezone".into(), Value::String(extras.timezone.clone()));
        map.insert("t".into(), (*extras.t.json).clone());
    }
    Ok(value)
}

/// The Tera context for `event`: the same content as [`to_json`], built without the JSON
/// detour (the event serializes straight into Tera values; the word table is shared).
pub fn build(event: &Event, extras: &Extras) -> Result<tera::Context, RenderError> {
    let mut context = tera::Context::from_serialize(event)
        .map_err(|e| RenderError::Context { call_id: event.call_id.clone(), message: e.to_string() })?;
    context.insert("locale", &extras.locale);
    context.insert("lang", &extras.lang);
    context.insert("timezone", &extras.timezone);
    context.insert_value("t", extras.t.tera.clone());
    Ok(context)
}

/// Objects whose keys are data, not variables: documented as a whole, not descended into.
pub const OPAQUE: [&str; 6] = [
    "fields",
    "t",
    "caller.person.attributes",
    "target.person.attributes",
    "calls[].caller.person.attributes",
    "earlier_attempts[].caller.person.attributes",
];

/// Every variable path in a context (`caller`, `caller.person.title`,
/// `caller.candidates[].label`): each object and array, each leaf, and the objects listed in
/// [`OPAQUE`] without their keys. A field whose parent is `null` here does not appear, so run
/// it over several contexts and merge to see every variable.
pub fn variable_paths(context: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    collect(context, "", &mut paths);
    paths
}

fn collect(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    if !path.is_empty() {
        out.insert(path.to_owned());
    }
    match value {
        Value::Object(map) if !OPAQUE.contains(&path) => {
            for (key, child) in map {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                collect(child, &child_path, out);
            }
        }
        Value::Array(items) => {
            for map in items.iter().filter_map(Value::as_object) {
                for (key, child) in map {
                    collect(child, &format!("{path}[].{key}"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_descend_into_objects_and_arrays_of_objects_only() {
        let ctx = serde_json::json!({
            "kind": "fax",
            "fields": {"CallerId": "+1"},
            "t": {"labels": {"work": "work"}},
            "caller": {"person": {"title": "x", "attributes": {"mail": ["a"]}}, "candidates": [{"label": "work"}, {"mail": null}]},
            "target": null,
            "list": ["a", "b"]
        });
        let paths: Vec<String> = variable_paths(&ctx).into_iter().collect();
        assert_eq!(
            paths,
            [
                "caller",
                "caller.candidates",
                "caller.candidates[].label",
                "caller.candidates[].mail",
                "caller.person",
                "caller.person.attributes",
                "caller.person.title",
                "fields",
                "kind",
                "list",
                "t",
                "target",
            ]
        );
    }
}
