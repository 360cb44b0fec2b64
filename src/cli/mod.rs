//! The command line (CONTRACT §1): raw flags (clap) -> validated settings -> one function per
//! subcommand, each in its own file. Exit status: 0 all good, 1 some inputs failed (the
//! others were still processed), 2 usage or configuration error. Errors are printed to
//! stderr one per line with their cause chain (`{:#}`).

mod check;
mod common;
mod directory_check;
mod parse;
mod preview;
mod queue;
mod relay;
mod render;
mod send_test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turns Exchange UM / OCS / Lync call events into the notification emails people want to read.
#[derive(Debug, Parser)]
#[command(name = "callnote", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (TOML); flags given on the command line win over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print each input's template context as one line of JSON.
    Parse(parse::ParseArgs),
    /// Parse, enrich, render and compose; write one .eml per input.
    Render(render::RenderArgs),
    /// Load every template and render it against every built-in sample event.
    Check(check::CheckArgs),
    /// Send a realistic (or a real) notification to a mailbox through the production path.
    SendTest(send_test::SendTestArgs),
    /// Watch the spool folder and deliver each header file exactly once (CONTRACT §4).
    Relay(relay::RelayArgs),
    /// The relay's delivery journal: list open and parked items, show one call, retry one.
    Queue(queue::QueueArgs),
    /// Bind to the directory, count entries and phone values, list values that do not read
    /// under the dial plan and numbers shared by several people.
    DirectoryCheck(directory_check::DirectoryCheckArgs),
    /// Serve a local page showing samples and dropped-in files rendered through the current templates, live.
    Preview(preview::PreviewArgs),
}

/// How a command ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    SomeInputsFailed,
}

/// A usage or configuration problem: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs the binary and returns its exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    common::init_logging(cli.log_json);
    crate::deliver::install_crypto_provider();
    match run(cli) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::SomeInputsFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            // `downcast_ref` also finds a UsageError attached as context.
            let config_problem = e.downcast_ref::<UsageError>().is_some()
                || e.chain().any(|c| c.is::<UsageError>() || c.is::<crate::config::ConfigError>());
            ExitCode::from(if config_problem { 2 } else { 1 })
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    let config = common::load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Parse(args) => parse::run(config, args),
        Command::Render(args) => render::run(config, args),
        Command::Check(args) => check::run(config, args),
        Command::SendTest(args) => send_test::run(config, args),
        Command::Relay(args) => relay::run(config, cli.config.as_deref(), args),
        Command::Queue(args) => queue::run(config, args),
        Command::DirectoryCheck(args) => directory_check::run(config, args),
        Command::Preview(args) => preview::run(config, args),
    }
}
