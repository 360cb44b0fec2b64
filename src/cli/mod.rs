//! The command line (docs/cli.md): raw flags (clap) -> validated settings -> one function per
//! subcommand, each in its own file. Exit status: 0 all good, 1 some inputs failed (the
//! others were still processed), 2 usage or configuration error (a bad flag, configuration
//! file, directory file or template folder). Errors are printed to stderr one per line with
//! their causes, each cause once ([`output::error_line`]).

mod check;
mod common;
mod contacts_check;
mod directory_check;
mod output;
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
    /// Watch the spool folder and deliver each header file exactly once (docs/relay.md).
    Relay(relay::RelayArgs),
    /// The relay's delivery journal: list open and parked items, show one call, retry one.
    Queue(queue::QueueArgs),
    /// Bind to the directory, count entries and phone values, list values that do not read
    /// under the dial plan and numbers shared by several people.
    DirectoryCheck(directory_check::DirectoryCheckArgs),
    /// Read each recipient's own contacts (export file, CardDAV address book) and print
    /// whether each source answered and how many contacts it holds.
    ContactsCheck(contacts_check::ContactsCheckArgs),
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
pub(crate) struct UsageError(pub String);

/// A configuration problem that keeps its own message and causes (an unreadable directory
/// file, a templates folder that does not load): exit status 2, printed as the error it wraps.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigProblem(pub anyhow::Error);

impl ConfigProblem {
    /// Marks `error` as a configuration problem.
    pub(crate) fn wrap(error: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(ConfigProblem(error.into()))
    }
}

/// True when the error (or one of its causes) is a usage or configuration problem.
/// `downcast_ref` also finds one attached as context, which `chain()` shows only as text.
fn is_config_problem(error: &anyhow::Error) -> bool {
    error.downcast_ref::<UsageError>().is_some()
        || error.downcast_ref::<ConfigProblem>().is_some()
        || error.chain().any(|c| c.is::<UsageError>() || c.is::<ConfigProblem>() || c.is::<crate::config::ConfigError>())
}

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
    output::end_quietly_on_closed_stdout();
    common::init_logging(cli.log_json);
    crate::deliver::install_crypto_provider();
    match run(cli) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::SomeInputsFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", output::error_line(&e));
            ExitCode::from(if is_config_problem(&e) { 2 } else { 1 })
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
        Command::ContactsCheck(args) => contacts_check::run(config, args),
        Command::Preview(args) => preview::run(config, args),
    }
}
