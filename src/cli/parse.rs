//! `callnote parse [--directory SRC] [--region CC] FILE...`: one line of JSON (the template
//! context, docs/template-context.md) per input; skipped types go to stderr as `PATH: skipped: <type>`,
//! and so does each problem found while loading a directory file (`PATH: warning: …`).

use std::path::PathBuf;

use super::{Status, common};
use crate::config::Config;
use crate::intake::Parsed;
use crate::pipeline::Pipeline;

#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
    /// Header files or OCS UserNotification XML files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(mut config: Config, args: ParseArgs) -> anyhow::Result<Status> {
    args.lookup.apply(&mut config)?;
    let directory = common::open_directory_with_warnings(&config)?;
    let pipeline = Pipeline::new(config, crate::render::Templates::builtin(), directory, None);
    let mut status = Status::Ok;
    for path in &args.files {
        match pipeline.parse_file(path) {
            Ok(Parsed::Event(event)) => {
                let mut line = serde_json::to_vec(&event)?;
                line.push(b'\n');
                common::write_stdout(&line);
            }
            Ok(Parsed::Skipped(message_type)) => eprintln!("{}: skipped: {message_type}", path.display()),
            Err(e) => {
                common::report_failure(e);
                status = Status::SomeInputsFailed;
            }
        }
    }
    Ok(status)
}
