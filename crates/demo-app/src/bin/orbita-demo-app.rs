//! `orbita-demo-app`: the demo app as a program of its own, the same as `orbita demo-app`
//! (used by this crate's process tests, and handy where the full `orbita` binary is not).

use std::process::ExitCode;

use clap::Parser;
use orbita_demo_app::cli::{run_blocking, DemoArgs};
use tracing_subscriber::EnvFilter;

/// Render a pointer-driven scene, encode it as VP8 and publish it by WHIP; input as JSON lines
/// on stdin, events as JSON lines on stdout, logs on stderr.
#[derive(Debug, Parser)]
#[command(name = "orbita-demo-app", version, about)]
struct Cli {
    #[command(flatten)]
    args: DemoArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run_blocking(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orbita-demo-app: {e:#}");
            ExitCode::FAILURE
        }
    }
}
