//! `callnote render [--directory SRC] [--templates DIR] [--date TIME] --out DIR FILE...`:
//! one RFC 5322 message per input, written to `DIR/<call id>-<recipient>-<kind>.eml` (each
//! part made safe for a file name), or all to stdout with `--out -`. One bad input does not
//! stop the others. Ends with a summary line on stderr (`render: N written, N skipped, N
//! failed`); on a terminal a long run shows a progress bar.
//!
//! Files are written like the `.eml` folder delivery writes them (the same code): whole or
//! not at all, a rerun replaces a message's own file, and a different message whose name
//! collides gets `~2`, `~3`, … instead of overwriting (the clash is reported on stderr).
//! Each file is synced before it gets its name; the folder, which makes the names durable,
//! is synced once before the command ends (a failure there fails the run).

use std::path::{Path, PathBuf};

use super::output::{self, InputOutcome, RunSummary};
use super::{Status, common};
use crate::config::Config;
use crate::deliver::DeliveryError;
use crate::deliver::eml_dir::EmlDirTransport;
use crate::pipeline::{Outcome, Pipeline};

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
    #[arg(long, value_name = "DIR", help = common::TEMPLATES_HELP)]
    pub templates: Option<PathBuf>,
    /// Output folder (created if missing), or `-` for stdout. Each message is written to
    /// `<call id>-<recipient>-<kind>.eml`; a different message already holding that name is
    /// kept and the new one gets `~2`, `~3`, ….
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The messages' Date header (RFC 3339), for reproducible output; default
    /// SOURCE_DATE_EPOCH, else now. The call time stays in the body and X-Callnote-Call-Time.
    #[arg(long, value_name = "TIME")]
    pub date: Option<String>,
    /// Header files or OCS UserNotification XML files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(mut config: Config, args: RenderArgs) -> anyhow::Result<Status> {
    args.lookup.apply(&mut config)?;
    let directory = common::open_directory(&config)?;
    let templates = common::load_templates(&config, args.templates.as_deref())?;
    let fixed_date = common::fixed_date(args.date.as_deref())?;
    let outbox = match args.out == Path::new("-") {
        true => None,
        false => Some(EmlDirTransport::new(&args.out).and_then(|t| t.open_for_run()).map_err(|e| match e {
            DeliveryError::Config { message, .. } => anyhow::anyhow!("--out: {message}"),
            other => other.into(),
        })?),
    };
    let pipeline = Pipeline::new(config, templates, directory, fixed_date);
    let mut summary = RunSummary::new("render", args.files.len());
    for path in &args.files {
        let prepared = match pipeline.prepare_file(path) {
            Ok(Outcome::Prepared(prepared)) => prepared,
            Ok(Outcome::Skipped(message_type)) => {
                summary.note(&format!("{}: skipped: {message_type}", path.display()));
                summary.record(InputOutcome::Skipped);
                continue;
            }
            Err(e) => {
                summary.note(&output::error_line(&e.into()));
                summary.record(InputOutcome::Failed);
                continue;
            }
        };
        let Some(outbox) = &outbox else {
            common::write_stdout(&prepared.message.formatted());
            summary.record(InputOutcome::Written);
            continue;
        };
        let mail = prepared.outgoing();
        match outbox.write(&mail.stem, &mail.bytes) {
            Ok(written) if written.file_stem().is_some_and(|s| *s != *mail.stem) => {
                summary.note(&format!("{}: written to {}: {}.eml holds a different message", path.display(), written.display(), mail.stem))
            }
            Ok(_) => {}
            Err(e) => {
                let error = anyhow::Error::new(e).context(format!("{}: cannot write the message", path.display()));
                summary.note(&output::error_line(&error));
                summary.record(InputOutcome::Failed);
                continue;
            }
        }
        summary.record(InputOutcome::Written);
    }
    // The messages' names become durable here, all at once (each file's bytes were synced
    // before it got its name).
    let unsynced = outbox.as_ref().and_then(|outbox| outbox.sync().err());
    if let Some(e) = &unsynced {
        summary.note(&format!("{}: cannot sync the folder, so the messages written may not survive a crash: {e}", args.out.display()));
    }
    let status = if summary.failed() > 0 || unsynced.is_some() { Status::SomeInputsFailed } else { Status::Ok };
    summary.finish();
    Ok(status)
}
