//! The pipeline: wires intake -> enrich -> render -> compose (-> deliver, in the relay and
//! `send-test`). The one module that knows every stage; commands and the relay call it so
//! that a test notification and a production one take exactly the same path.
//!
//! [`Error`] wraps each stage's error with the input path (and call id once known).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::compose::{self, ComposeError, ComposeSettings};
use crate::config::Config;
use crate::enrich::{self, directory::Directory};
use crate::event::Event;
use crate::intake::{self, IntakeError, IntakeOptions, Parsed};
use crate::render::{RenderError, RenderSettings, Rendered, Templates};

/// A failure anywhere in the pipeline, with where it happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("{}: call {call_id}: cannot render", path.display())]
    Render {
        path: PathBuf,
        call_id: String,
        #[source]
        source: RenderError,
    },
    #[error("{}: call {call_id}: cannot compose the message", path.display())]
    Compose {
        path: PathBuf,
        call_id: String,
        #[source]
        source: ComposeError,
    },
    #[error("{}: cannot read side file", path.display())]
    SideFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when retrying cannot help, so the input is parked at once: the input itself is
    /// at fault (it does not parse, it cannot be composed), or the cause can never heal
    /// ([`cannot_heal`]). Reading trouble (a file still locked) and render problems (the
    /// templates, which a reload can fix) are retried. The one rule the relay (both modes)
    /// and the commands follow; [`delivery_is_permanent`] is its delivery half.
    pub fn is_bad_input(&self) -> bool {
        let by_kind = match self {
            Error::Intake(e) => !e.is_transient(),
            Error::Compose { .. } => true,
            Error::Render { .. } | Error::SideFile { .. } => false,
        };
        by_kind || cannot_heal(self)
    }
}

/// True when a delivery failure cannot succeed on a retry: the transport says so (5xx, a
/// TLS or configuration problem), or its cause can never heal ([`cannot_heal`], e.g. an
/// output file name too long for the file system).
pub fn delivery_is_permanent(e: &crate::deliver::DeliveryError) -> bool {
    e.is_permanent() || cannot_heal(e)
}

/// True when an I/O error in `e`'s cause chain is one no retry can change: a file name too
/// long for the file system, a path through something that is not a folder, a folder
/// where a file must be. (A missing file, a full disk, a permission problem can heal.)
pub fn cannot_heal(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ErrorKind::InvalidFilename | ErrorKind::NotADirectory | ErrorKind::IsADirectory)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// One event turned into a ready-to-send message.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event: Event,
    pub rendered: Rendered,
    pub message: lettre::Message,
}

/// What a file became.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Recognised but not a notification: the MessageType as written.
    Skipped(String),
    Prepared(Box<Prepared>),
}

/// The configured stages. Cheap to share across threads (`Arc<Pipeline>`); the template set
/// can be swapped while running (the relay's reload).
pub struct Pipeline {
    config: Config,
    templates: RwLock<Arc<Templates>>,
    directory: Option<Arc<dyn Directory>>,
    intake_options: IntakeOptions,
    compose_settings: ComposeSettings,
}

impl Pipeline {
    pub fn new(config: Config, templates: Templates, directory: Option<Arc<dyn Directory>>, fixed_date: Option<jiff::Timestamp>) -> Pipeline {
        let intake_options = IntakeOptions { sent_time_zone: config.timezone.clone(), ..IntakeOptions::default() };
        let compose_settings = ComposeSettings { from: config.from.clone(), fixed_date };
        Pipeline { config, templates: RwLock::new(Arc::new(templates)), directory, intake_options, compose_settings }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The template set in use now.
    pub fn templates(&self) -> Arc<Templates> {
        self.templates.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the template set (the caller has checked the new one).
    pub fn replace_templates(&self, templates: Templates) {
        *self.templates.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(templates);
    }

    /// Reads and parses a file, then enriches the event (normalized numbers, directory).
    pub fn parse_file(&self, path: &Path) -> Result<Parsed, Error> {
        Ok(match intake::read_file(path, &self.intake_options)? {
            Parsed::Event(mut event) => {
                self.enrich(&mut event);
                Parsed::Event(event)
            }
            skipped => skipped,
        })
    }

    /// Normalizes and looks up every party of an event built elsewhere (samples, tests).
    pub fn enrich(&self, event: &mut Event) {
        enrich::enrich(event, &self.config.dialplan, self.directory.as_deref());
    }

    /// Parse, enrich, render and compose one file.
    pub fn prepare_file(&self, path: &Path) -> Result<Outcome, Error> {
        match self.parse_file(path)? {
            Parsed::Skipped(message_type) => Ok(Outcome::Skipped(message_type)),
            Parsed::Event(event) => Ok(Outcome::Prepared(Box::new(self.prepare_event(*event, path)?))),
        }
    }

    /// Render and compose an enriched event, reading its side file; `path` names the input
    /// in errors.
    pub fn prepare_event(&self, event: Event, path: &Path) -> Result<Prepared, Error> {
        let side_file = match &event.attachment {
            Some(att) => Some(std::fs::read(&att.path).map_err(|source| Error::SideFile { path: att.path.clone(), source })?),
            None => None,
        };
        self.prepare_event_with(event, path, side_file)
    }

    /// Render and compose an enriched event whose side file's bytes the caller supplies
    /// (`send-test` and the preview attach generated audio to sample events).
    pub fn prepare_event_with(&self, event: Event, path: &Path, side_file: Option<Vec<u8>>) -> Result<Prepared, Error> {
        let settings = RenderSettings { timezone: self.config.timezone.clone(), default_locale: self.config.default_locale.clone() };
        let rendered = self.templates().render(&event, &settings).map_err(|source| Error::Render {
            path: path.to_owned(),
            call_id: event.call_id.clone(),
            source,
        })?;
        let message = compose::compose(&event, &rendered, &self.compose_settings, side_file).map_err(|source| Error::Compose {
            path: path.to_owned(),
            call_id: event.call_id.clone(),
            source,
        })?;
        Ok(Prepared { event, rendered, message })
    }
}

impl Prepared {
    /// The message as a transport takes it, named by the call id.
    pub fn outgoing(&self) -> crate::deliver::Outgoing {
        crate::deliver::Outgoing::new(&self.message, &self.event.safe_call_id())
    }

    /// Hands the message to a transport: the last step of every path (relay, `send-test`).
    pub async fn deliver(&self, transport: &dyn crate::deliver::Deliver) -> Result<crate::deliver::Receipt, crate::deliver::DeliveryError> {
        transport.deliver(&self.outgoing()).await
    }
}
