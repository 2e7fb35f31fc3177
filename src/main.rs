//! `orbita`: the all-in-one server (`orbita serve`), the cluster roles (`orbita coordinator`,
//! `orbita node`), the test clients (`orbita bot`, `orbita load`), the demo app and
//! `orbita healthcheck`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orbita_server::logging::LogFormat;

/// Orbita: a self-hosted browser video platform (an SFU on str0m, rooms by join code).
#[derive(Debug, Parser)]
#[command(name = "orbita", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(Box<orbita_server::cluster::AllInOneArgs>),
    /// Join a room like a browser does, publish synthetic audio and video, and report what
    /// was received.
    Bot(orbita_bot::cli::BotArgs),
    /// Load a server with many light participants (rooms of publishers and subscribers) and
    /// report join times, what arrived, and the server's CPU, memory and forwarding cost.
    Load(orbita_load::cli::LoadArgs),
    /// Run the coordinator: the client WebSocket of the spec's verbs, the node link, the
    /// registry (servers.json files or a database) and placement (docs/coordinator.md).
    Coordinator(orbita_server::cluster::CoordinatorArgs),
    /// Run a session server (media node) that links to a coordinator, registers its apps and
    /// load, and starts sessions when asked.
    Node(Box<orbita_server::cluster::NodeArgs>),
    /// The demo streamed app: renders a scene that reacts to input, encodes VP8 with ffmpeg
    /// and publishes it by WHIP (docs/demo-app.md).
    DemoApp(orbita_demo_app::cli::DemoArgs),
    /// Administration on the server's database: `orbita admin create-user` (the first
    /// administrator, or any active account without sign-up and approval).
    Admin(orbita_server::cluster::AdminArgs),
    /// Check a health endpoint for a container health check (no curl needed): exit status 0
    /// when `GET URL` answers 200 within 5 s, else 1 with the reason on stderr.
    Healthcheck(orbita_server::healthcheck::HealthcheckArgs),
}

/// Log to stderr with `filter` (tracing `EnvFilter` syntax), else `RUST_LOG`, else `info`, as
/// text or JSON lines.
fn init_logging(filter: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    orbita_server::logging::init(filter, format)
}

/// Quiet by default (`warn`) unless `RUST_LOG` says otherwise.
fn quiet() -> Option<&'static str> {
    std::env::var_os("RUST_LOG").is_none().then_some("warn")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = orbita_server::Settings::from_args(args.serve.clone())?;
            init_logging(settings.log.as_deref(), settings.log_format)?;
            orbita_server::cluster::run_all_in_one(*args).await
        }
        Command::Bot(args) => {
            init_logging(None, LogFormat::Text)?;
            orbita_bot::cli::run(args).await
        }
        Command::Load(args) => {
            // Quiet by default: the progress line and the report are the output.
            init_logging(quiet(), LogFormat::Text)?;
            orbita_load::cli::run(args).await
        }
        Command::Coordinator(args) => {
            let format = orbita_server::cluster::coordinator::log_format(&args)?;
            init_logging(None, format)?;
            orbita_server::cluster::run_coordinator(args).await
        }
        Command::Node(args) => {
            let settings = orbita_server::Settings::from_args(args.serve.clone())?;
            init_logging(settings.log.as_deref(), settings.log_format)?;
            orbita_server::cluster::run_node(*args).await
        }
        Command::Admin(args) => {
            init_logging(quiet(), LogFormat::Text)?;
            orbita_server::cluster::run_admin(args).await
        }
        Command::DemoApp(args) => {
            init_logging(quiet(), LogFormat::Text)?;
            orbita_demo_app::cli::run(args).await
        }
        Command::Healthcheck(args) => orbita_server::healthcheck::run(args)
            .await
            .map_err(anyhow::Error::msg),
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
