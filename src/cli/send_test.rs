//! `callnote send-test --to ADDR [--kind KIND] [--caller NUMBER] [--locale LL-CC]
//! [--file HEADER] [--dry-run]`: builds a realistic event (or reads a real header file and
//! redirects it to ADDR), enriches it through the configured directory, renders, composes
//! and delivers it through the configured transport — the relay's own code path — then
//! prints the enrichment outcome and the delivery transcript.
//!
//! The test message is addressed to exactly ADDR (with the name the directory gives that
//! address, or none), dated now, carries a fresh Message-ID on every run (so Exchange does
//! not drop a second test as a duplicate) and the header `X-Callnote-Test: yes`; its body
//! is the notification as the recipient would get it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::{Config, DeliverySettings};
use crate::event::{Event, Kind, Party};
use crate::intake::Parsed;
use crate::pipeline::Pipeline;

#[derive(Debug, clap::Args)]
pub struct SendTestArgs {
    /// Mailbox that receives the test notification (exactly this address, named as the
    /// directory names it). Each run sends a new message (fresh Message-ID, dated now,
    /// marked `X-Callnote-Test: yes`).
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// Kind of event to build: voicemail, missed_call, call_forwarded, team_pickup,
    /// call_not_forwarded, fax.
    #[arg(long, value_name = "KIND", default_value = "missed_call")]
    pub kind: String,
    /// Who called: a number, extension or SIP address, looked up in the configured directory.
    #[arg(long, value_name = "NUMBER")]
    pub caller: Option<String>,
    /// Recipient language and region (e.g. fr-FR); default: the file's culture with --file
    /// (else the directory's language for --to), else `[templates] default_locale`.
    #[arg(long, value_name = "LL-CC")]
    pub locale: Option<String>,
    /// A real header file to send instead of a built event (redirected to --to).
    #[arg(long, value_name = "HEADER")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
    #[arg(long, value_name = "DIR", help = common::TEMPLATES_HELP)]
    pub templates: Option<PathBuf>,
    /// Write the .eml into this folder instead of sending it.
    #[arg(long, value_name = "DIR")]
    pub dry_run: Option<PathBuf>,
}

pub fn run(mut config: Config, args: SendTestArgs) -> anyhow::Result<Status> {
    args.lookup.apply(&mut config)?;
    // The test goes to --to, not to the header's recipient: their own contacts stay out.
    config.contacts = None;
    let to: lettre::Address = args.to.parse().map_err(|e| UsageError(format!("--to {}: not a mail address: {e}", args.to)))?;
    if let Some(locale) = &args.locale
        && !crate::render::locale::is_valid_culture(locale)
    {
        return Err(UsageError(format!("--locale {locale}: not a culture name like fr-FR")).into());
    }
    let delivery = match &args.dry_run {
        Some(dir) => DeliverySettings::Dir(dir.clone()),
        None => config.delivery.clone().ok_or_else(|| UsageError("no [delivery] in the configuration (or use --dry-run DIR)".into()))?,
    };
    // Configuration problems (missing password variable, CA file, folder) surface here,
    // before anything is built or sent.
    let transport = crate::deliver::from_settings(&delivery).context("step: configure delivery")?;

    let directory = common::open_directory(&config)?;
    let templates = common::load_templates(&config, args.templates.as_deref())?;
    let pipeline = Pipeline::new(config, templates, directory, None);

    let (mut event, source, side_file) = match &args.file {
        Some(path) => match pipeline.parse_file(path).context("step: parse")? {
            Parsed::Event(event) => (*event, path.clone(), None),
            Parsed::Skipped(message_type) => {
                return Err(UsageError(format!("{}: a {message_type} file is not a notification", path.display())).into());
            }
        },
        None => {
            let kind = Kind::from_name(&args.kind).ok_or_else(|| {
                UsageError(format!(
                    "--kind {}: not one of voicemail, missed_call, call_forwarded, team_pickup, call_not_forwarded, fax",
                    args.kind
                ))
            })?;
            let (mut event, side_file) = built_event(&pipeline, kind, args.caller.as_deref())?;
            event.recipient.culture = Some(pipeline.config().default_locale.clone());
            (event, PathBuf::from(format!("sample:{kind}")), side_file)
        }
    };
    if let Some(locale) = args.locale {
        event.recipient.culture = Some(locale);
    }
    pipeline.readdress(&mut event, &to);
    let prepared = pipeline.prepare_test(event, &source, side_file).context("step: render and compose")?;

    print!("{}", enrichment_summary(&prepared.event));
    println!("subject    {}", prepared.rendered.subject);
    println!("message id {}", prepared.message.headers().get_raw("Message-ID").unwrap_or_default());
    println!("transport  {}", transport.describe());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let result = prepared.deliver(transport.as_ref()).await;
        let _ = transport.close().await;
        result
    });
    match result {
        Ok(receipt) => {
            print!("{}", receipt.transcript());
            if receipt.refused.is_empty() { Ok(Status::Ok) } else { Ok(Status::SomeInputsFailed) }
        }
        Err(e) => {
            let kind = if e.is_transient() { "temporary" } else { "permanent" };
            Err(anyhow::Error::new(e).context(format!("step: deliver ({kind} failure)")))
        }
    }
}

/// A realistic event of `kind`: a built-in sample whose caller (and the caller of each call
/// a digest lists) is replaced by `caller` and re-resolved through the configured directory.
fn built_event(pipeline: &Pipeline, kind: Kind, caller: Option<&str>) -> anyhow::Result<(Event, Option<Vec<u8>>)> {
    let sample = crate::samples::of_kind(kind).into_iter().next().with_context(|| format!("no built-in sample of kind {kind}"))?;
    let mut event = sample.event;
    if let Some(caller) = caller {
        event.caller = Party::from_raw(Some(caller.to_owned()));
        if let Some(target) = &mut event.target {
            *target = Party::from_raw(target.raw.clone());
        }
        pipeline.enrich(&mut event);
        // a digest's calls and a voice mail's earlier calls came from the same caller
        for call in event.calls.iter_mut().chain(event.earlier_attempts.iter_mut()) {
            call.caller = event.caller.clone();
        }
    }
    let side_file = sample_side_file(&event);
    if let (Some(att), Some(bytes)) = (&mut event.attachment, &side_file) {
        att.size_bytes = bytes.len() as u64;
    }
    Ok((event, side_file))
}

/// Made-up bytes for a sample's side file (silent audio, a blank fax page), none without
/// an attachment. Also used by the preview's "send test".
pub(crate) fn sample_side_file(event: &Event) -> Option<Vec<u8>> {
    event.attachment.as_ref().map(|att| match Path::new(&att.file_name).extension().and_then(|e| e.to_str()) {
        Some("tif") => tiny_tiff(),
        _ => silent_wav(event.duration_secs.unwrap_or(1).min(60)),
    })
}

/// What the directory made of the caller, for the admin reading the transcript.
fn enrichment_summary(event: &Event) -> String {
    let c = &event.caller;
    let mut out = format!("kind       {}\ncall id    {}\n", event.kind, event.call_id);
    out += &format!(
        "caller     {} -> {}{}{}\n",
        c.raw.as_deref().unwrap_or("(anonymous)"),
        serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        c.name.as_deref().map(|n| format!(", {n}")).unwrap_or_default(),
        c.matched_attribute.as_deref().map(|a| format!(" via {a}")).unwrap_or_default(),
    );
    for candidate in &c.candidates {
        out += &format!("candidate  {} ({})\n", candidate.display_name.as_deref().unwrap_or("?"), candidate.matched_attribute);
    }
    out += &format!(
        "recipient  {} {}\n",
        event.recipient.address.as_deref().unwrap_or("?"),
        event.recipient.culture.as_deref().unwrap_or("(default locale)")
    );
    out
}

/// `secs` seconds of 8 kHz 16-bit mono silence.
fn silent_wav(secs: u32) -> Vec<u8> {
    let data_len = 8_000 * 2 * secs;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    for chunk in [
        &b"RIFF"[..],
        &(36 + data_len).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &8_000u32.to_le_bytes(),
        &16_000u32.to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data_len.to_le_bytes(),
    ] {
        w.extend_from_slice(chunk);
    }
    w.resize(44 + data_len as usize, 0);
    w
}

/// A one-page 1×1 white bilevel TIFF.
fn tiny_tiff() -> Vec<u8> {
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32, u32); 8] = [
        (256, 3, 1, 1),
        (257, 3, 1, 1),
        (258, 3, 1, 1),
        (259, 3, 1, 1),
        (262, 3, 1, 0),
        (273, 4, 1, 8 + 2 + 8 * 12 + 4),
        (278, 3, 1, 1),
        (279, 4, 1, 1),
    ];
    t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, count, value) in entries {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.push(0);
    t
}
