//! `orbita`: the all-in-one server (`orbita serve`) and the test client (`orbita bot`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Orbita: a self-hosted browser video platform (an SFU on str0m, rooms by join code).
#[derive(Debug, Parser)]
#[command(name = "orbita", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(Box<orbita_server::ServeArgs>),
    /// Join a room like a browser does, publish synthetic audio and video, and report what
    /// was received.
    Bot(orbita_bot::cli::BotArgs),
}

/// Log to stderr with `filter` (tracing `EnvFilter` syntax), else `RUST_LOG`, else `info`.
fn init_logging(filter: Option<&str>) -> anyhow::Result<()> {
    let filter = match filter {
        Some(filter) => EnvFilter::try_new(filter)
            .map_err(|e| anyhow::anyhow!("invalid log filter `{filter}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = orbita_server::Settings::from_args(*args)?;
            init_logging(settings.log.as_deref())?;
            orbita_server::run_serve(settings).await
        }
        Command::Bot(args) => {
            init_logging(None)?;
            orbita_bot::cli::run(args).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orbita: {e:#}");
            ExitCode::FAILURE
        }
    }
}
