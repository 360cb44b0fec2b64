//! `callnote relay [--once]`: the long-running service of docs/relay.md over the configured
//! spool. Builds the pipeline and the transport exactly as `send-test` does, opens the
//! spool (its lock, its journal), then runs passes: `--once` runs a single pass (resume
//! `work/`, claim everything present, attempt what is due) and exits; without it,
//! [`crate::relay::service`] runs until SIGTERM or Ctrl-C. SIGHUP, or a change in the
//! template folder, rebuilds the stages from the configuration file and the templates;
//! the new set is used only if everything loads and the templates pass `check`.
//!
//! Exit status: `--once`: 0 when the pass delivered or skipped everything, 1 when an item
//! was parked, deferred or hit a spool error; the service: 0 after a clean stop. 2 for
//! configuration problems.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{Status, UsageError, common, output};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::relay::service::{self, ServiceOptions};
use crate::relay::{PassReport, Relay, RelayError, Stages};
use crate::spool::SystemClock;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Run one pass over the spool and exit.
    #[arg(long)]
    pub once: bool,
    /// Caller directory: an LDIF or CSV file, or an ldap:// / ldaps:// URL.
    #[arg(long, value_name = "SRC")]
    pub directory: Option<String>,
    #[arg(long, value_name = "DIR", help = common::TEMPLATES_HELP)]
    pub templates: Option<PathBuf>,
}

/// The configuration's stages: directory, templates (checked when `check`), pipeline and
/// transport. Used at start-up and for every reload.
fn build(config: Config, args_directory: Option<&str>, args_templates: Option<&Path>, check: bool) -> anyhow::Result<Stages> {
    let mut config = config;
    common::override_directory(&mut config, args_directory)?;
    let delivery = config.delivery.clone().ok_or_else(|| UsageError("no [delivery] in the configuration".into()))?;
    let transport = crate::deliver::from_settings(&delivery).context("step: configure delivery")?;
    if check && let Some(dir) = args_templates.or(config.templates_dir.as_deref()) {
        let problems = crate::render::check::check_dir(dir);
        if let Some(first) = problems.first() {
            anyhow::bail!("{}: {} template problem(s), the first: {first}", dir.display(), problems.len());
        }
    }
    let templates = common::load_templates(&config, args_templates)?;
    let directory = common::open_directory_for_service(&config)?;
    let pipeline = Arc::new(Pipeline::new(config, templates, directory, None));
    Ok(Stages { pipeline, transport: Arc::from(transport) })
}

pub fn run(config: Config, config_path: Option<&Path>, args: RelayArgs) -> anyhow::Result<Status> {
    let dir = config.spool.dir.clone().ok_or_else(|| UsageError("no [spool] dir in the configuration".into()))?;
    let (settings, mode, listen) = (config.spool.clone(), config.spool.mode, config.server_listen);
    let templates_dir = args.templates.clone().or(config.templates_dir.clone());
    let stages = build(config, args.directory.as_deref(), args.templates.as_deref(), false)?;

    let reload: service::Reload = {
        let (config_path, directory, templates) = (config_path.map(Path::to_owned), args.directory.clone(), args.templates.clone());
        let (dir, mode) = (dir.clone(), mode);
        Arc::new(move || {
            let config = common::load_config(config_path.as_deref()).map_err(|e| output::error_line(&e))?;
            if config.spool.dir.as_deref() != Some(dir.as_path()) || config.spool.mode != mode {
                tracing::warn!("[spool] dir and mode changes take effect at the next start");
            }
            build(config, directory.as_deref(), templates.as_deref(), true).map_err(|e| output::error_line(&e))
        })
    };

    let runtime = crate::relay::memory::tune(&mut tokio::runtime::Builder::new_multi_thread())
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let relay = Relay::open(stages.pipeline, stages.transport, &dir, mode, &settings, Arc::new(SystemClock)).map_err(|e| match e {
            e @ RelayError::TapNeedsStateDir { .. } => anyhow::Error::new(UsageError(e.to_string())),
            e => e.into(),
        })?;
        if args.once {
            let report = relay.pass(None).await;
            relay.close().await;
            let report = report?;
            print_report(&report);
            return Ok(if report.all_good() { Status::Ok } else { Status::SomeInputsFailed });
        }
        let options = ServiceOptions { dir, rescan: settings.rescan, templates_dir, reload: Some(reload), listen };
        let served = service::serve(&relay, options).await;
        relay.close().await;
        served?;
        Ok(Status::Ok)
    })
}

fn print_report(r: &PassReport) {
    eprintln!(
        "relay: {} delivered ({} sent again after a crash), {} skipped, {} parked, {} deferred, {} not due, {} spool errors, {} held for a digest or a voicemail",
        r.delivered, r.resent, r.skipped, r.parked, r.deferred, r.waiting, r.errors, r.held
    );
}
