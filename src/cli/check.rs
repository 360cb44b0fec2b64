//! `callnote check [--templates DIR]`: loads every template and renders each against every
//! built-in sample event in strict mode; prints every problem as `FILE:LINE:COL: message`
//! (load problems and render problems of the same folder together); exit 1 if any, 2 when
//! the folder itself cannot be read.

use std::path::PathBuf;

use super::{Status, common};
use crate::config::Config;
use crate::render::check;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[arg(long, value_name = "DIR", help = common::TEMPLATES_HELP)]
    pub templates: Option<PathBuf>,
}

pub fn run(config: Config, args: CheckArgs) -> anyhow::Result<Status> {
    let problems = match args.templates.or(config.templates_dir.clone()) {
        None => check::check(&crate::render::Templates::builtin()),
        Some(dir) => {
            common::check_templates_folder(&dir)?;
            check::check_dir(&dir)
        }
    };
    let text: String = problems.iter().map(|p| format!("{p}\n")).collect();
    common::write_stdout(text.as_bytes());
    if problems.is_empty() {
        eprintln!("ok: every template renders against every sample event");
        Ok(Status::Ok)
    } else {
        Ok(Status::SomeInputsFailed)
    }
}
