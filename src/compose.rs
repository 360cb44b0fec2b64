//! Compose: an [`Event`](crate::Event) and its [`Rendered`](crate::render::Rendered) parts -> a
//! `lettre::Message`.
