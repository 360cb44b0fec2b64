//! Using callnote as a library: read one UM header file, resolve the caller against an LDIF
//! export, render the notification with the built-in templates and print what a user would
//! see.
//!
//! ```sh
//! cargo run --example render_one -- examples/spool/mc-legacy-blog-shape.txt examples/directory.ldif
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use callnote::config::Config;
use callnote::enrich::directory;
use callnote::pipeline::{Outcome, Pipeline};
use callnote::render::Templates;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let header = args.next().unwrap_or_else(|| "examples/spool/mc-legacy-blog-shape.txt".into());
    let ldif = args.next().unwrap_or_else(|| "examples/directory.ldif".into());

    let config = Config::default(); // US dial plan, en-US, the machine's time zone
    let index = directory::load_file(&ldif, &config.dialplan)?;
    let pipeline = Pipeline::new(config, Templates::builtin(), Some(Arc::new(index)), None);

    match pipeline.prepare_file(&header)? {
        Outcome::Skipped(message_type) => println!("{}: skipped ({message_type})", header.display()),
        Outcome::Prepared(prepared) => {
            let caller = &prepared.event.caller;
            println!(
                "caller:  {} -> {:?} {}",
                caller.raw.as_deref().unwrap_or("(anonymous)"),
                caller.status,
                caller.name.as_deref().unwrap_or("")
            );
            println!("to:      {}", prepared.event.recipient.address.as_deref().unwrap_or("?"));
            println!("subject: {}\n", prepared.rendered.subject);
            println!("{}", prepared.rendered.text);
            println!("({} bytes as .eml)", prepared.message.formatted().len());
        }
    }
    Ok(())
}
