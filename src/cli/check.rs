//! `callnote check [--templates DIR]`: loads every template and renders each against every
//! built-in sample event in strict mode; prints every problem as `FILE:LINE:COL: message`.

use std::path::PathBuf;

use super::{Status, common};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Template folder to check (default: `[templates] dir`, else the built-in set).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

pub fn run(config: Config, args: CheckArgs) -> anyhow::Result<Status> {
    let dir = args.templates.or(config.templates_dir.clone());
    let templates = match &dir {
        None => crate::render::Templates::builtin(),
        Some(dir) => match crate::render::Templates::from_dir(dir) {
            Ok(t) => t,
            Err(problems) => {
                print_problems(&problems);
                return Ok(Status::SomeInputsFailed);
            }
        },
    };
    let problems = crate::render::check::check(&templates);
    print_problems(&problems);
    if problems.is_empty() {
        eprintln!("ok: every template renders against every sample event");
    }
    Ok(if problems.is_empty() { Status::Ok } else { Status::SomeInputsFailed })
}

fn print_problems(problems: &[impl std::fmt::Display]) {
    let text: String = problems.iter().map(|p| format!("{p}\n")).collect();
    common::write_stdout(text.as_bytes());
}
