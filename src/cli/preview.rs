//! `callnote preview [--listen 127.0.0.1:8025] [--allow-remote] [--templates DIR]
//! [--directory SRC] [--drop DIR]`: serves the template workbench of [`crate::preview`] until
//! interrupted. Prints the page's address on stdout. A non-loopback `--listen` needs
//! `--allow-remote` (the page can send mail); bad flags and a templates folder that cannot be
//! read are usage errors (exit 2).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::preview::{Limits, PreviewError, Server, Settings};
use crate::render::Templates;

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Address to serve the page on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025")]
    pub listen: SocketAddr,
    /// Allow a --listen address other than loopback (anyone who reaches it can send mail).
    #[arg(long)]
    pub allow_remote: bool,
    /// Template folder laid over the built-in set, file by file, and watched for changes
    /// (default: `[templates] dir`).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
    /// A folder whose header files (*.txt, *.xml) are listed and watched.
    #[arg(long, value_name = "DIR")]
    pub drop: Option<PathBuf>,
}

pub fn run(mut config: Config, args: PreviewArgs) -> anyhow::Result<Status> {
    args.lookup.apply(&mut config)?;
    // Whoever opens the preview sees every upload: a recipient's own contacts stay out.
    config.contacts = None;
    let directory = common::open_directory(&config)?;
    let templates_dir = args.templates.or_else(|| config.templates_dir.clone());
    if let Some(dir) = &templates_dir {
        common::check_templates_folder(dir)?;
    }
    let settings = Settings {
        listen: args.listen,
        allow_remote: args.allow_remote,
        templates_dir,
        drop_dir: args.drop,
        delivery: config.delivery.clone(),
        limits: Limits::default(),
    };
    // The preview loads the admin's folder itself, leniently: a broken file is shown on the
    // page instead of stopping the command.
    let pipeline = Pipeline::new(config, Templates::builtin(), directory, None);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(settings, pipeline, super::send_test::sample_side_file).await.map_err(|e| match e {
            PreviewError::Bind { .. } => anyhow::Error::new(e),
            other => anyhow::Error::new(UsageError(other.to_string())),
        })?;
        println!("callnote preview: http://{}/  (Ctrl-C to stop)", server.addr);
        tokio::select! {
            _ = server.serve() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(Status::Ok)
    })
}
