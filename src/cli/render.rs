//! `callnote render [--directory SRC] [--templates DIR] --out DIR FILE...`: one RFC 5322
//! message per input, written to `DIR/<call_id>.eml` (the call id made safe for a file name),
//! or all to stdout with `--out -`. One bad input does not stop the others. Ends with a
//! summary line on stderr (`render: N written, N skipped, N failed`); on a terminal a long
//! run shows a progress bar.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::output::{self, InputOutcome, RunSummary};
use super::{Status, common};
use crate::config::Config;
use crate::pipeline::{Outcome, Pipeline};

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
    #[arg(long, value_name = "DIR", help = common::TEMPLATES_HELP)]
    pub templates: Option<PathBuf>,
    /// Output folder (created if missing), or `-` for stdout.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Date for events that carry no time of their own (RFC 3339); default SOURCE_DATE_EPOCH, else now.
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
    let to_stdout = args.out == Path::new("-");
    if !to_stdout {
        std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create output folder", args.out.display()))?;
    }
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
        let bytes = prepared.message.formatted();
        if to_stdout {
            common::write_stdout(&bytes);
        } else {
            let target = args.out.join(format!("{}.eml", prepared.event.safe_call_id()));
            if let Err(e) = write_atomically(&target, &bytes) {
                summary.note(&output::error_line(&e));
                summary.record(InputOutcome::Failed);
                continue;
            }
        }
        summary.record(InputOutcome::Written);
    }
    let status = if summary.failed() > 0 { Status::SomeInputsFailed } else { Status::Ok };
    summary.finish();
    Ok(status)
}

/// Writes `bytes` to a temporary sibling, then renames it over `target`: a reader never
/// sees half a message.
fn write_atomically(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = target.with_extension("eml.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, target).with_context(|| format!("{}: cannot rename into place", target.display()))
}
