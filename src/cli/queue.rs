//! `callnote queue list | show CALL_ID | retry NAME`: the relay's delivery journal for
//! admins. `list` shows the items still open (queued, in an attempt, deferred with the last
//! SMTP reply and the next attempt), the parked files with their reason and, in `own` mode,
//! every other entry of the spool folder (`waiting` to be taken, or `unhandled`: what the
//! relay will park or leaves alone), so nothing in the folder goes unseen; `show` prints
//! every journal record of one call (queued, held, deferred, sent with the queue id, sent
//! inside a digest or replaced by a voicemail, then that mail's own records; failed with the
//! reason); `retry` puts a parked item back in the queue.
//!
//! Reads the journal without the relay's lock (safe while it runs); `retry` in `tap` mode
//! needs the relay stopped. Exit status 0, or 1 when `show` finds nothing.

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::{Config, SpoolMode};
use crate::spool::{State, queue};

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum QueueAction {
    /// Items in flight or deferred, parked files with their reason, and (own mode) whatever
    /// else is in the spool folder.
    List,
    /// Every journal record of one call.
    Show {
        #[arg(value_name = "CALL_ID")]
        call_id: String,
    },
    /// Put a parked item (its header's file name) back in the queue.
    Retry {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub fn run(config: Config, args: QueueArgs) -> anyhow::Result<Status> {
    let dir = config.spool.dir.clone().ok_or_else(|| UsageError("no [spool] dir in the configuration".into()))?;
    let state = match (config.spool.mode, &config.spool.state_dir) {
        (SpoolMode::Tap, None) => return Err(UsageError("spool.state_dir must be set in `tap` mode".into()).into()),
        _ => config.spool.state_dir_for(&dir),
    };
    let journal = state.join("journal.jsonl");
    let failed = match config.spool.mode {
        SpoolMode::Own => dir.join("failed"),
        SpoolMode::Tap => state.join("failed"),
    };
    let mut out = String::new();
    let status = match args.action {
        QueueAction::List => {
            for (item, s) in queue::open_items(&journal)? {
                // A tap ledger keeps what it sent or parked for good; that is history, not
                // queue (parked files are listed below, from their reports).
                let tap_history = matches!(
                    s.last,
                    State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } | State::Folded { .. } | State::Replaced { .. }
                );
                if config.spool.mode == SpoolMode::Tap && tap_history {
                    continue;
                }
                let what = match &s.last {
                    State::Claimed { .. } => "queued".to_owned(),
                    State::Attempt { .. } => "sending (or interrupted)".to_owned(),
                    State::Deferred { reason, next_at, .. } => format!("deferred until {next_at}: {reason}"),
                    State::Sent { queue_id, .. } => format!("sent (queue id {})", queue_id.as_deref().unwrap_or("?")),
                    State::Skipped { message_type } => format!("skipped ({message_type})"),
                    State::Failed { reason } => format!("parked: {reason}"),
                    State::Held { alone: true, .. } => "held for a voicemail that may replace it ([digest] hold_missed)".to_owned(),
                    State::Held { key, .. } => format!("held for the digest of {key}"),
                    State::Gathers { members } => format!("about to send, carrying {} held item(s)", members.len()),
                    State::Folded { into } => format!("sent in the digest of {into}"),
                    State::Replaced { by } => format!("replaced by the voicemail {by}"),
                    State::Done => continue,
                };
                let call = s.call_id.as_deref().unwrap_or("-");
                let what = what.replace('\n', "; ");
                out += &format!("{item}\tcall {call}\tattempts {}\t{what}\n", s.attempts);
            }
            for (name, reason) in queue::parked(&failed)? {
                out += &format!("parked\t{name}\t{reason}\n");
            }
            if config.spool.mode == SpoolMode::Own {
                for w in queue::waiting(&dir)? {
                    out += &format!("{}\t{}\t{}\n", w.label, w.name, w.what);
                }
            }
            Status::Ok
        }
        QueueAction::Show { call_id } => {
            let records = queue::history(&journal, &call_id)?;
            for r in &records {
                out += &serde_json::to_string(r).context("cannot print a journal record")?;
                out.push('\n');
            }
            if records.is_empty() {
                eprintln!("{call_id}: no journal record for this call");
                Status::SomeInputsFailed
            } else {
                Status::Ok
            }
        }
        QueueAction::Retry { name } => {
            match config.spool.mode {
                SpoolMode::Own => {
                    for path in queue::retry_own(&dir, &name)? {
                        out += &format!("queued again: {}\n", path.display());
                    }
                }
                SpoolMode::Tap => {
                    for key in queue::retry_tap(&state, &name, jiff::Timestamp::now())? {
                        out += &format!("ledger forgets: {key}\n");
                    }
                }
            }
            Status::Ok
        }
    };
    common::write_stdout(out.as_bytes());
    Ok(status)
}
