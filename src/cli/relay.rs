//! `callnote relay [--once]`: the long-running service of CONTRACT §4 over the configured
//! spool. Builds the pipeline and the transport exactly as `send-test` does, opens the
//! spool (its lock, its journal), then runs passes: `--once` runs a single pass (resume
//! `work/`, claim everything present, attempt what is due) and exits; without it,
//! [`crate::relay::service`] runs until SIGTERM or Ctrl-C (SIGHUP reloads templates).
//!
//! Exit status: 0 when the pass(es) delivered or skipped everything, 1 when an item was
//! parked, deferred or hit a spool error, 2 for configuration problems.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::relay::service::{self, ServiceOptions};
use crate::relay::{PassReport, Relay, RelayError};
use crate::spool::SystemClock;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Run one pass over the spool and exit.
    #[arg(long)]
    pub once: bool,
    /// Caller directory: an LDIF or CSV file, or an ldap:// / ldaps:// URL.
    #[arg(long, value_name = "SRC")]
    pub directory: Option<String>,
    /// Template folder replacing the built-in set.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

pub fn run(mut config: Config, args: RelayArgs) -> anyhow::Result<Status> {
    common::override_directory(&mut config, args.directory.as_deref())?;
    let dir = config
        .spool_dir
        .clone()
        .ok_or_else(|| UsageError("no [spool] dir in the configuration".into()))?;
    let delivery = config
        .delivery
        .clone()
        .ok_or_else(|| UsageError("no [delivery] in the configuration".into()))?;
    let transport = crate::deliver::from_settings(&delivery).context("step: configure delivery")?;
    let directory = common::open_directory_for_service(&config)?;
    let templates = common::load_templates(&config, args.templates.as_deref())?;
    let templates_dir = args.templates.clone().or(config.templates_dir.clone());
    let settings = config.spool.clone();
    let listen = config.server_listen;
    let mode = config.spool_mode;
    let pipeline = Arc::new(Pipeline::new(config, templates, directory, None));
    let relay_pipeline = pipeline.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let relay = Relay::open(
            relay_pipeline,
            Arc::from(transport),
            &dir,
            mode,
            &settings,
            Arc::new(SystemClock),
        )
        .map_err(|e| match e {
            e @ RelayError::TapNeedsStateDir { .. } => anyhow::Error::new(UsageError(e.to_string())),
            e => e.into(),
        })?;
        if args.once {
            let report = relay.pass(None).await?;
            print_report(&report);
            return Ok(if report.all_good() {
                Status::Ok
            } else {
                Status::SomeInputsFailed
            });
        }
        let options = ServiceOptions {
            dir,
            rescan: settings.rescan,
            templates_dir,
            pipeline,
            listen,
        };
        let all_good = service::serve(&relay, options).await?;
        Ok(if all_good { Status::Ok } else { Status::SomeInputsFailed })
    })
}

fn print_report(r: &PassReport) {
    eprintln!(
        "relay: {} delivered ({} sent again after a crash), {} skipped, {} parked, {} deferred, {} not due, {} spool errors",
        r.delivered, r.resent, r.skipped, r.parked, r.deferred, r.waiting, r.errors
    );
}
