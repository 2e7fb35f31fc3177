//! `orbita bot`: join a room from the command line and report what was received.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::stats::BotStats;
use crate::{Bot, BotOptions};

/// Arguments of `orbita bot`.
#[derive(clap::Args, Debug, Clone)]
pub struct BotArgs {
    /// The server's signalling WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// The room's join code.
    #[arg(long)]
    pub code: String,
    /// Display name in the room.
    #[arg(long, default_value = "bot")]
    pub name: String,
    /// Do not publish audio.
    #[arg(long)]
    pub no_audio: bool,
    /// Do not publish video.
    #[arg(long)]
    pub no_video: bool,
    /// Send video as one 1280x720 stream instead of three simulcast layers.
    #[arg(long)]
    pub no_simulcast: bool,
    /// Most the bot wants to receive: 640x480, 1280x720, 1920x1080, 3840x2160, WxH or auto.
    #[arg(long, value_name = "WxH|auto")]
    pub max_quality: Option<String>,
    /// How long to stay, in seconds; 0 stays until Ctrl-C.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// Print the final report as JSON (progress lines go to stderr either way).
    #[arg(long)]
    pub json: bool,
    /// Local address for the bot's UDP sockets (its ICE host candidates).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,
    /// Reach the server only through the TURN relay it gives at join (the first turn: URL
    /// over UDP in `joined.ice_servers`), like a browser with iceTransportPolicy "relay";
    /// fails if there is none or it refuses.
    #[arg(long, env = "ORBITA_RELAY_ONLY", value_parser = clap::builder::FalseyValueParser::new())]
    pub relay_only: bool,
    /// The room's host key (from `POST /api/rooms`): join as the call's agent.
    #[arg(long, env = "ORBITA_HOST_KEY", value_name = "KEY")]
    pub key: Option<String>,
    /// Publish the Opus packets of this Ogg Opus file (20 ms frames, looped) instead of the
    /// built-in 440 Hz tone.
    #[arg(long, value_name = "FILE")]
    pub audio_file: Option<std::path::PathBuf>,
    /// The consent text accepted (`consent_id` of `GET /api/branding`), where guests must
    /// accept one.
    #[arg(long, value_name = "ID")]
    pub consent: Option<String>,
}

impl BotArgs {
    /// The [`BotOptions`] these arguments describe.
    pub fn options(&self) -> BotOptions {
        BotOptions {
            url: self.url.clone(),
            code: self.code.clone(),
            name: self.name.clone(),
            publish_audio: !self.no_audio,
            publish_video: !self.no_video,
            simulcast: !self.no_simulcast,
            max_quality: self.max_quality.clone(),
            bind_ip: self.bind_ip,
            relay_only: self.relay_only,
            key: self.key.clone(),
            audio_file: self.audio_file.clone(),
            consent: self.consent.clone(),
        }
    }
}

/// Join, print a progress line every second, leave after `--duration` (or Ctrl-C, or when
/// the server ends the session) and print the report on standard output.
pub async fn run(args: BotArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut report = Vec::new();
    run_to(args, &mut report).await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&report)?;
    Ok(stdout.flush()?)
}

/// [`run`], writing the report (JSON with `--json`, else text) to `out`; returns what it says.
pub async fn run_to(args: BotArgs, out: &mut impl std::io::Write) -> anyhow::Result<BotStats> {
    let mut bot = Bot::join(args.options()).await?;
    eprintln!(
        "joined room {} as {} ({:?})",
        bot.code(),
        bot.participant_id(),
        bot.name()
    );
    let deadline = (args.duration > 0).then(|| Instant::now() + Duration::from_secs(args.duration));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let stats = bot.stats();
                eprintln!("{}", stats.progress_line());
                if !stats.running || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
            _ = &mut ctrl_c => {
                eprintln!("interrupted, leaving");
                break;
            }
        }
    }
    let stats = bot.leave().await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        write!(out, "{}", stats.report())?;
    }
    out.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bot: BotArgs,
    }

    #[test]
    fn defaults_and_flags() {
        let a = Cli::parse_from(["orbita", "--code", "4821"]).bot;
        assert_eq!(a.url, "ws://127.0.0.1:8080/ws");
        assert_eq!((a.name.as_str(), a.duration, a.json), ("bot", 10, false));
        let o = a.options();
        assert!(o.publish_audio && o.publish_video && o.simulcast);
        assert!(!o.relay_only || std::env::var_os("ORBITA_RELAY_ONLY").is_some());

        let a = Cli::parse_from([
            "orbita",
            "--code",
            "1",
            "--no-audio",
            "--no-simulcast",
            "--max-quality",
            "640x480",
            "--duration",
            "0",
            "--json",
            "--relay-only",
        ])
        .bot;
        let o = a.options();
        assert!(o.relay_only);
        assert!(!o.publish_audio && o.publish_video && !o.simulcast);
        assert_eq!(o.max_quality.as_deref(), Some("640x480"));
        assert_eq!(a.duration, 0);
        assert!(a.json);
        assert!(
            Cli::try_parse_from(["orbita"]).is_err(),
            "--code is required"
        );
    }
}
