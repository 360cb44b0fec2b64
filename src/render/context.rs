//! The template context: the event's JSON (docs/template-context.md) plus the render extras (`locale`,
//! `lang`, `timezone`, `t`), and the list of variable paths that `templates/README.md`
//! documents (a test keeps the two in step).
//!
//! Consumes an [`Event`] and the chosen locale, zone and word table; produces JSON (for the
//! preview and the README test) and the `tera::Context`. Pure; the only failure is a value
//! Tera cannot take, reported as a [`RenderError::Context`].

use std::collections::BTreeSet;

use serde::Serialize;
use serde::ser::{Impossible, SerializeStruct, Serializer};
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
    let mut context = tera::Context::new();
    event.serialize(TopLevel(&mut context)).map_err(|e| RenderError::Context { call_id: event.call_id.clone(), message: e.0 })?;
    context.insert("locale", &extras.locale);
    context.insert("lang", &extras.lang);
    context.insert("timezone", &extras.timezone);
    context.insert_value("t", extras.t.tera.clone());
    Ok(context)
}

/// Serializes a struct's fields straight into a `tera::Context`, each under its field name
/// (`tera::Context::from_serialize` builds a map of the whole struct first, then copies every
/// key and value into the context). Only a struct is accepted at the top.
struct TopLevel<'c>(&'c mut tera::Context);

/// Why a value could not go into the context.
#[derive(Debug)]
struct ContextError(String);

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContextError {}

impl serde::ser::Error for ContextError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ContextError(msg.to_string())
    }
}

fn not_a_struct<T>() -> Result<T, ContextError> {
    Err(ContextError("the context must be built from a struct".to_owned()))
}

/// Every `serialize_*` of a non-struct value: refused.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ok, ContextError> { not_a_struct() })*
    };
}

impl<'c> Serializer for TopLevel<'c> {
    type Ok = ();
    type Error = ContextError;
    type SerializeSeq = Impossible<(), ContextError>;
    type SerializeTuple = Impossible<(), ContextError>;
    type SerializeTupleStruct = Impossible<(), ContextError>;
    type SerializeTupleVariant = Impossible<(), ContextError>;
    type SerializeMap = Impossible<(), ContextError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), ContextError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, ContextError> {
        Ok(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), ContextError> {
        not_a_struct()
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<(), ContextError> {
        not_a_struct()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<(), ContextError> {
        not_a_struct()
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

impl<'c> SerializeStruct for TopLevel<'c> {
    type Ok = ();
    type Error = ContextError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), ContextError> {
        let value = tera::Value::try_from_serializable(value).map_err(|e| ContextError(format!("{key}: {e}")))?;
        self.0.insert_value(key, value);
        Ok(())
    }

    fn end(self) -> Result<(), ContextError> {
        Ok(())
    }
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
    fn the_context_holds_what_tera_would_make_of_the_event() {
        let extras = Extras {
            locale: "fr-CA".into(),
            lang: "fr".into(),
            timezone: "America/Toronto".into(),
            t: Words::new(serde_json::json!({"from": "De"})),
        };
        for sample in crate::samples::all() {
            let mut expected = tera::Context::from_serialize(&sample.event).expect("an event serializes");
            expected.insert("locale", "fr-CA");
            expected.insert("lang", "fr");
            expected.insert("timezone", "America/Toronto");
            expected.insert_value("t", extras.t.tera.clone());
            assert_eq!(build(&sample.event, &extras).expect("built"), expected, "{}", sample.name);
        }
    }

    #[test]
    fn only_a_struct_makes_a_context() {
        let mut context = tera::Context::new();
        assert!(serde_json::json!({"a": 1}).serialize(TopLevel(&mut context)).is_err());
        assert!("text".serialize(TopLevel(&mut context)).is_err());
    }

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
