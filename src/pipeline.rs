//! The pipeline: wires intake -> enrich -> render -> compose (-> deliver, in the relay and
//! `send-test`). The one module that knows every stage; commands and the relay call it so
//! that a test notification and a production one take exactly the same path.
//!
//! [`Error`] wraps each stage's error with the input path (and call id once known).
//!
//! The side file is read here, once, from the handle intake opened and checked (never by
//! path), through a bounded reader that base64-encodes it block by block. A side file over
//! `[delivery] max_attachment_mb` (by its size at opening, or by what reading finds) is left
//! out: the event's `attachment_omitted` says why, the templates tell the recipient, and a
//! warning is logged. The notification itself still goes out.
//!
//! A voicemail's recording is encoded in the header's codec ([`audio`]: MP3, G.711 WAV) and
//! attached under a readable name (`_partials/attachment_name.txt`); a recording that cannot
//! be encoded is attached as it is, and the log says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::audio::{self, AudioError};
use crate::compose::{self, AttachmentBody, ComposeError, ComposeSettings};
use crate::config::Config;
use crate::enrich::{self, contacts::ContactBook, directory::Directory};
use crate::event::{Event, Kind, OmitReason, Recipient, RecognitionResult, SideHandle};
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
        /// Boxed: a template problem carries its excerpt, and every `Result` of the pipeline
        /// would otherwise be that large.
        #[source]
        source: Box<RenderError>,
    },
    #[error("{}: call {call_id}: cannot compose the message", path.display())]
    Compose {
        path: PathBuf,
        call_id: String,
        #[source]
        source: ComposeError,
    },
    #[error("{}: a digest of missed calls needs at least one call", path.display())]
    EmptyDigest { path: PathBuf },
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
            Error::Compose { .. } | Error::EmptyDigest { .. } => true,
            Error::Render { .. } | Error::SideFile { .. } => false,
        };
        by_kind || cannot_heal(self)
    }
}

/// True when a delivery failure cannot succeed on a retry: the transport says so (5xx, a
/// TLS or configuration problem), or its cause can never heal ([`cannot_heal`], e.g. an
/// output file name too long for the file system).
pub(crate) fn delivery_is_permanent(e: &crate::deliver::DeliveryError) -> bool {
    e.is_permanent() || cannot_heal(e)
}

/// True when an I/O error in `e`'s cause chain is one no retry can change: a file name too
/// long for the file system, a path through something that is not a folder, a folder
/// where a file must be. (A missing file, a full disk, a permission problem can heal.)
pub(crate) fn cannot_heal(e: &(dyn std::error::Error + 'static)) -> bool {
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

/// A side file read for the message, and what its audio became (a voicemail's recording;
/// `None` for any other side file).
struct Side {
    body: AttachmentBody,
    audio: Option<audio::Output>,
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
    /// The recipients' own contacts (`[contacts]`), opened with the pipeline.
    contacts: Option<Arc<dyn ContactBook>>,
    intake_options: IntakeOptions,
    compose_settings: ComposeSettings,
}

impl Pipeline {
    pub fn new(
        config: Config,
        templates: Templates,
        directory: Option<Arc<dyn Directory>>,
        fixed_date: Option<jiff::Timestamp>,
    ) -> Pipeline {
        let intake_options = IntakeOptions { sent_time_zone: config.timezone.clone(), low_confidence: config.transcript_low_confidence };
        let compose_settings = ComposeSettings { from: config.from.clone(), fixed_date };
        let contacts = config.contacts.as_ref().map(|settings| enrich::contacts::open(settings, &config.dialplan));
        Pipeline { config, templates: RwLock::new(Arc::new(templates)), directory, contacts, intake_options, compose_settings }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The template set in use now.
    pub fn templates(&self) -> Arc<Templates> {
        self.templates.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the template set (the caller has checked the new one).
    pub(crate) fn replace_templates(&self, templates: Templates) {
        *self.templates.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(templates);
    }

    /// Reads and parses a file, then enriches the event (normalized numbers, directory) and
    /// marks a side file over the attachment limit as left out. A voice mail preview that
    /// could not be read (or only in part) is logged as `PATH:LINE: TranscriptionData: …`.
    pub fn parse_file(&self, path: &Path) -> Result<Parsed, Error> {
        Ok(match intake::read_file(path, &self.intake_options)? {
            Parsed::Event(mut event) => {
                if let Some(problem) = event.transcript.as_ref().and_then(|t| t.problem.as_ref()) {
                    let unread = if event.transcript.as_ref().is_some_and(|t| t.result == RecognitionResult::Unreadable) {
                        "the notification goes out without a preview"
                    } else {
                        "the preview is shown"
                    };
                    tracing::warn!("{}:{}: TranscriptionData: {}; {unread}", path.display(), problem.line, problem.message);
                }
                self.enrich(&mut event);
                if event.attachment.as_ref().is_some_and(|att| att.size_bytes > self.config.max_attachment_bytes) {
                    event.attachment_omitted = Some(OmitReason::TooLarge);
                }
                Parsed::Event(event)
            }
            skipped => skipped,
        })
    }

    /// Normalizes and looks up every party of an event built elsewhere (samples, tests).
    pub fn enrich(&self, event: &mut Event) {
        enrich::enrich_with(event, &self.config.dialplan, self.directory.as_deref(), self.contacts.as_deref());
    }

    /// Addresses `event` to exactly `to` (a test message): the recipient becomes that
    /// mailbox, named as the directory names it or not at all; the event's culture stays.
    pub(crate) fn readdress(&self, event: &mut Event, to: &lettre::Address) {
        let culture = event.recipient.culture.take();
        event.recipient = Recipient { address: Some(to.to_string()), culture, ..Recipient::default() };
        if let Some(directory) = &self.directory {
            enrich::complete_recipient(&mut event.recipient, directory.as_ref());
        }
    }

    /// Render and compose a test message (`send-test`, the preview's "send test"): like
    /// [`Self::prepare_event`] (or [`Self::prepare_event_with`] when the side file's bytes
    /// are given), then marked as a test by [`compose::mark_as_test`].
    pub(crate) fn prepare_test(&self, event: Event, path: &Path, side_file: Option<Vec<u8>>) -> Result<Prepared, Error> {
        let mut prepared = match side_file {
            Some(bytes) => self.prepare_event_with(event, path, Some(bytes))?,
            None => self.prepare_event(event, path)?,
        };
        compose::mark_as_test(&mut prepared.message, &self.config.from);
        Ok(prepared)
    }

    /// Parse, enrich, render and compose one file.
    pub fn prepare_file(&self, path: &Path) -> Result<Outcome, Error> {
        match self.parse_file(path)? {
            Parsed::Skipped(message_type) => Ok(Outcome::Skipped(message_type)),
            Parsed::Event(event) => Ok(Outcome::Prepared(Box::new(self.prepare_event(*event, path)?))),
        }
    }

    /// Render and compose an enriched event, reading its side file through the handle intake
    /// opened (or, for an event without one, a handle opened and checked the same way);
    /// `path` names the input in errors.
    pub fn prepare_event(&self, mut event: Event, path: &Path) -> Result<Prepared, Error> {
        let side_file = self.read_side_file(&mut event, path)?;
        self.finish(event, path, side_file)
    }

    /// Render and compose the one mail for further missed calls of one caller: `events` are
    /// the parsed and enriched missed calls held, oldest first ([`Event::digest`] says what
    /// the mail is made of). There is no side file; `path` names the input in errors. No
    /// calls at all is bad input ([`Error::EmptyDigest`]).
    pub fn prepare_digest(&self, events: Vec<Event>, path: &Path) -> Result<Prepared, Error> {
        if events.is_empty() {
            return Err(Error::EmptyDigest { path: path.to_owned() });
        }
        self.finish(Event::digest(events), path, None)
    }

    /// Render and compose an enriched event whose side file's bytes the caller supplies
    /// (`send-test` and the preview attach generated audio to sample events).
    pub(crate) fn prepare_event_with(&self, mut event: Event, path: &Path, side_file: Option<Vec<u8>>) -> Result<Prepared, Error> {
        let limit = self.config.max_attachment_bytes;
        let side_file = match side_file {
            Some(bytes) if bytes.len() as u64 > limit => {
                self.omit_too_large(&mut event, path, bytes.len() as u64);
                None
            }
            other => other.map(|bytes| Side { body: AttachmentBody::from_bytes(&bytes), audio: None }),
        };
        self.finish(event, path, side_file)
    }

    /// The side file's content, encoded, or `None` when the event has none or it is left out.
    /// A voicemail's recording is first encoded in the codec the header (or `[delivery]
    /// voicemail_codec`) asks for. The event keeps no handle afterwards.
    fn read_side_file(&self, event: &mut Event, path: &Path) -> Result<Option<Side>, Error> {
        let limit = self.config.max_attachment_bytes;
        let Some(att) = event.attachment.as_mut() else { return Ok(None) };
        let handle = intake::side_handle(att, path)?;
        att.opened = None;
        let size = att.size_bytes;
        if size > limit || event.attachment_omitted.is_some() {
            self.omit_too_large(event, path, size);
            return Ok(None);
        }
        let read = match self.audio_output(event, path) {
            Some(output) => self.encode_recording(event, &handle, path, output)?,
            None => self.read_as_is(event, &handle, None)?,
        };
        if read.is_none() {
            // it grew past the limit since it was opened
            self.omit_too_large(event, path, size);
        }
        Ok(read)
    }

    /// What a voicemail's `.wav` becomes (logging a codec callnote has no encoder for);
    /// `None` for any other side file.
    fn audio_output(&self, event: &Event, path: &Path) -> Option<audio::Output> {
        let att = event.attachment.as_ref()?;
        if event.kind != Kind::Voicemail || !att.content_type.eq_ignore_ascii_case("audio/wav") {
            return None;
        }
        let (output, note) = audio::Output::for_codec(event.codec, self.config.voicemail_codec);
        if let Some(note) = note {
            tracing::info!(input = %path.display(), side_file = att.file_name, codec = ?event.codec, "{note}");
        }
        Some(output)
    }

    /// The recording encoded as `output`; as it is when it already is in that form or is not
    /// audio callnote can encode (logged, with why). `None` when it is over the limit.
    fn encode_recording(&self, event: &Event, handle: &SideHandle, path: &Path, output: audio::Output) -> Result<Option<Side>, Error> {
        let limit = self.config.max_attachment_bytes;
        let read_error = |source| Error::SideFile { path: event.attachment.as_ref().map(|a| a.path.clone()).unwrap_or_default(), source };
        match audio::encode(intake::ReadAt::new(handle.file()), limit, output) {
            Ok(audio::Encoded::Audio(bytes)) => Ok(Some(Side { body: AttachmentBody::from_bytes(&bytes), audio: Some(output) })),
            Ok(audio::Encoded::AsIs) => self.read_as_is(event, handle, Some(audio::Output::Wav)),
            Err(AudioError::TooLarge) => Ok(None),
            Err(AudioError::Io(source)) => Err(read_error(source)),
            Err(problem) => {
                let file = event.attachment.as_ref().map(|a| a.file_name.as_str()).unwrap_or_default();
                tracing::warn!(input = %path.display(), side_file = file, ?output, "recording not encoded: {problem}; it is attached as it is");
                self.read_as_is(event, handle, Some(audio::Output::Wav))
            }
        }
    }

    /// The side file's bytes as they are; `None` when over the limit.
    fn read_as_is(&self, event: &Event, handle: &SideHandle, audio: Option<audio::Output>) -> Result<Option<Side>, Error> {
        let Some(att) = event.attachment.as_ref() else { return Ok(None) };
        let body = AttachmentBody::read_from(intake::ReadAt::new(handle.file()), self.config.max_attachment_bytes, att.size_bytes)
            .map_err(|source| Error::SideFile { path: att.path.clone(), source })?;
        Ok(body.map(|body| Side { body, audio }))
    }

    /// Leaves the side file out, and says so in the log (the templates say so in the mail).
    /// `size` is its size when opened (below the limit when it grew while being read).
    fn omit_too_large(&self, event: &mut Event, path: &Path, size: u64) {
        let file = event.attachment.as_ref().map(|a| a.file_name.as_str()).unwrap_or_default();
        let limit = self.config.max_attachment_bytes;
        tracing::warn!(
            input = %path.display(), side_file = file, size, limit,
            "side file over [delivery] max_attachment_mb: the notification goes out without it, saying so"
        );
        event.attachment_omitted = Some(OmitReason::TooLarge);
    }

    /// Render, then compose with the side file's encoded content.
    fn finish(&self, event: Event, path: &Path, side_file: Option<Side>) -> Result<Prepared, Error> {
        let settings = RenderSettings { timezone: self.config.timezone.clone(), default_locale: self.config.default_locale.clone() };
        let rendered = self.templates().render(&event, &settings).map_err(|source| Error::Render {
            path: path.to_owned(),
            call_id: event.call_id.clone(),
            source: Box::new(source),
        })?;
        let side_file = side_file.map(|side| match side.audio {
            Some(output) => {
                // the readable name, else the side file's own base name, with the new extension
                let own = || event.attachment.as_ref().map(|a| a.file_name.rsplit_once('.').map_or(&*a.file_name, |(s, _)| s).to_owned());
                let stem = rendered.attachment_name.clone().or_else(own).unwrap_or_default();
                side.body.named(audio::file_name(&stem, output), output.content_type())
            }
            None => side.body,
        });
        let message = compose::compose(&event, &rendered, &self.compose_settings, side_file).map_err(|source| Error::Compose {
            path: path.to_owned(),
            call_id: event.call_id.clone(),
            source,
        })?;
        Ok(Prepared { event, rendered, message })
    }
}

impl Prepared {
    /// The message as a transport takes it, named by its notification (call id, recipient,
    /// kind: see [`compose::NotificationId::file_stem`]).
    pub fn outgoing(&self) -> crate::deliver::Outgoing {
        crate::deliver::Outgoing::new(&self.message, &compose::NotificationId::of(&self.event).file_stem())
    }

    /// Hands the message to a transport: the last step of every path (relay, `send-test`).
    pub async fn deliver(&self, transport: &dyn crate::deliver::Deliver) -> Result<crate::deliver::Receipt, crate::deliver::DeliveryError> {
        transport.deliver(&self.outgoing()).await
    }
}
