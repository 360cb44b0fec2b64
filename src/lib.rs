//! # callnote
//!
//! Turns Exchange Unified Messaging events (voicemail and missed-call header files, OCS/Lync
//! `UserNotification` XML) into the notification emails people want to read.
//!
//! ```text
//!  header file / XML ──intake──▶ Event ──enrich──▶ Event (caller resolved)
//!        (bytes)                   │                    │
//!                                  │          directory (LDIF, CSV, LDAP) + dial plan
//!                                  ▼
//!                 ──render──▶ Rendered {subject, text, html}  (Tera templates, per kind+locale)
//!                 ──compose─▶ lettre::Message (multipart, attachment, UM headers)
//!                 ──deliver─▶ Receipt (SMTP, .eml folder, pickup folder)
//! ```
//!
//! Each stage is a module with its own error type; [`pipeline`] is the only module that
//! knows them all. Parsing, normalizing, rendering and composing are synchronous and pure;
//! directory sync, delivery and the relay are async (tokio).

pub mod allocator;
pub mod audio;
pub mod causes;
pub mod cli;
pub mod compose;
pub mod config;
pub mod deliver;
pub mod enrich;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod intake;
pub mod phone;
pub mod pipeline;
pub mod preview;
pub mod relay;
pub mod render;
pub mod samples;
pub mod settings;
pub mod spool;

pub use config::Config;
pub use event::{Event, Kind, Party, Recipient};
