//! The safe XML reading shared by intake's XML readers (OCS `UserNotification`, the
//! `TranscriptionData` preview): quick-xml events reduced to what they need, with a DTD
//! refused and never expanded, and text, CDATA and references decoded into plain text.
//!
//! Consumes a `quick_xml::Reader` over a string; produces [`Piece`]s with the byte offset
//! where each starts, or an [`XmlError`]. Only the five predefined entities and character
//! references exist; any other `&name;` is an error, as is a `<!DOCTYPE …>`. Declarations,
//! processing instructions and comments are skipped. Work is linear in the input.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// One step of an XML document, as intake's readers see it.
#[derive(Debug)]
pub(crate) enum Piece<'x> {
    Start(BytesStart<'x>),
    /// A self-closing element (`<Break … />`).
    Empty(BytesStart<'x>),
    /// An end tag; quick-xml has checked that it matches the open element.
    End,
    /// Decoded character data (text, CDATA, or one resolved reference).
    Text(Cow<'x, str>),
    Eof,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum XmlError {
    #[error("malformed XML")]
    Malformed(#[source] quick_xml::Error),
    #[error("DTD not allowed")]
    Dtd,
    #[error("undefined entity `&{0};`")]
    UndefinedEntity(String),
}

/// The next piece of `reader` and the byte offset where it starts.
pub(crate) fn next_piece<'x>(reader: &mut Reader<&'x [u8]>) -> Result<(u64, Piece<'x>), (u64, XmlError)> {
    loop {
        let at = reader.buffer_position();
        let malformed = |e: quick_xml::Error| (at, XmlError::Malformed(e));
        let event = reader.read_event().map_err(|e| (reader.error_position(), XmlError::Malformed(e)))?;
        let piece = match event {
            Event::Start(e) => Piece::Start(e),
            Event::Empty(e) => Piece::Empty(e),
            Event::End(_) => Piece::End,
            Event::Text(t) => Piece::Text(t.decode().map_err(|e| malformed(e.into()))?),
            Event::CData(t) => Piece::Text(t.decode().map_err(|e| malformed(e.into()))?),
            Event::GeneralRef(r) => Piece::Text(Cow::Owned(reference(&r).map_err(|e| (at, e))?)),
            Event::DocType(_) => return Err((at, XmlError::Dtd)),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => Piece::Eof,
        };
        return Ok((at, piece));
    }
}

/// `&name;` or `&#n;`: only the predefined entities and character references exist.
fn reference(r: &BytesRef<'_>) -> Result<String, XmlError> {
    if let Some(c) = r.resolve_char_ref().map_err(XmlError::Malformed)? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| XmlError::Malformed(e.into()))?;
    match resolve_predefined_entity(&name) {
        Some(s) => Ok(s.to_owned()),
        None => Err(XmlError::UndefinedEntity(name.into_owned())),
    }
}
