//! `callnote relay [--once]`: the long-running service of CONTRACT §4 over the configured
//! spool. Builds the pipeline and the transport exactly as `send-test` does, opens the
//! spool (its lock, its journal), then runs passes: `--once` runs a single pass (resume
//! `work/`, claim everything present, attempt what is due) and exits; without it, passes
//! repeat on the rescan interval or when a deferred item falls due, until SIGTERM or
//! Ctrl-C, which stop claiming and let the items in flight finish.
//!
//! Exit status: 0 when the pass(es) delivered or skipped everything, 1 when an item was
//! parked, deferred or hit a spool error, 2 for configuration problems.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::Config;
use crate::pipeline::Pipeline;
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
    let directory = common::open_directory(&config)?;
    let templates = common::load_templates(&config, args.templates.as_deref())?;
    let settings = config.spool.clone();
    let mode = config.spool_mode;
    let pipeline = Arc::new(Pipeline::new(config, templates, directory, None));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let relay = Relay::open(
            pipeline,
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
        let stop = Arc::new(AtomicBool::new(false));
        if args.once {
            let report = relay.pass(Some(&stop)).await?;
            print_report(&report);
            return Ok(if report.all_good() {
                Status::Ok
            } else {
                Status::SomeInputsFailed
            });
        }
        watch_signals(stop.clone())?;
        let mut worst = Status::Ok;
        while !stop.load(Ordering::SeqCst) {
            let report = relay.pass(Some(&stop)).await?;
            if report != PassReport::default() {
                tracing::info!(?report, "pass done");
            }
            if !report.all_good() {
                worst = Status::SomeInputsFailed;
            }
            let until_due = relay
                .next_due()
                .map(|due| due.duration_since(jiff::Timestamp::now()).unsigned_abs())
                .unwrap_or(settings.rescan);
            let wait = until_due.min(settings.rescan).max(Duration::from_millis(50));
            let deadline = tokio::time::Instant::now() + wait;
            while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100).min(wait)).await;
            }
        }
        Ok(worst)
    })
}

/// Sets `stop` on SIGTERM or Ctrl-C.
fn watch_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing the items in flight");
        stop.store(true, Ordering::SeqCst);
    });
    Ok(())
}

fn print_report(r: &PassReport) {
    eprintln!(
        "relay: {} delivered ({} sent again after a crash), {} skipped, {} parked, {} deferred, {} not due, {} spool errors",
        r.delivered, r.resent, r.skipped, r.parked, r.deferred, r.waiting, r.errors
    );
}
