//! `orbita load`: run a load scenario from the command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::{LoadConfig, VideoLayer};

/// Arguments of `orbita load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Another kind of load instead of rooms of participants.
    #[command(subcommand)]
    pub mode: Option<LoadMode>,
    /// The server's signalling WebSocket URL (rooms are made and /metrics read on the same
    /// host and port).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Join these rooms (comma separated codes) instead of creating --rooms new ones.
    #[arg(long, value_delimiter = ',', value_name = "CODE,...")]
    pub codes: Vec<String>,
    /// Rooms to create.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Publishers per room (audio and video unless told otherwise).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribers (receive only) per room.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// The video layer publishers send (with simulcast: it and the layers below it).
    #[arg(long, value_enum, default_value = "720p")]
    pub video: VideoLayer,
    /// Send video as one stream instead of simulcast.
    #[arg(long)]
    pub no_simulcast: bool,
    /// Publishers send no video.
    #[arg(long)]
    pub no_video: bool,
    /// Publishers send no audio.
    #[arg(long, conflicts_with = "audio_only")]
    pub no_audio: bool,
    /// Publishers send audio only (same as --no-video).
    #[arg(long)]
    pub audio_only: bool,
    /// What subscribers ask for: auto, 640x480, 1280x720, ... ("none": send nothing).
    #[arg(long, value_name = "WxH|auto|none", default_value = "auto")]
    pub max_quality: String,
    /// Joins per second (0: everyone at once). Publishers join first.
    #[arg(long, value_name = "PER_SEC", default_value_t = 50.0)]
    pub ramp: f64,
    /// Seconds to wait after the joins before measuring.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub settle: f64,
    /// Seconds to measure.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds after the last join starts that participants may take to get media.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub join_timeout: f64,
    /// Process id of a local server: its CPU time, memory, threads and UDP drops are read
    /// from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Write the report as JSON to this file ("-": standard output, instead of the table).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Media threads of the load generator (each an epoll loop over many participants).
    #[arg(long, default_value_t = 1)]
    pub media_threads: usize,
    /// Local address of the participants' UDP sockets.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Connect every participant only through the TURN relay the server gives at join (the
    /// first turn: URL over UDP in `joined.ice_servers`), like browsers with
    /// iceTransportPolicy "relay": one allocation per connection.
    #[arg(long, env = "ORBITA_RELAY_ONLY", value_parser = clap::builder::FalseyValueParser::new())]
    pub relay_only: bool,
}

/// Loads other than rooms of participants (`orbita load MODE ...`).
#[derive(clap::Subcommand, Debug, Clone)]
pub enum LoadMode {
    /// Load a coordinator (`orbita coordinator`): link many fake nodes, fill it with live
    /// sessions, then measure CREATE_SESSION and join-by-code requests per second and latency.
    Coordinator(crate::coordinator::CoordinatorLoadArgs),
}

impl LoadArgs {
    /// The [`LoadConfig`] these arguments describe.
    pub fn config(&self) -> anyhow::Result<LoadConfig> {
        let secs = |v: f64, name: &str| {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "--{name} must be a number of seconds >= 0"
            );
            Ok(Duration::from_secs_f64(v))
        };
        anyhow::ensure!(
            self.ramp.is_finite() && self.ramp >= 0.0,
            "--ramp must be >= 0"
        );
        let max_quality = match self.max_quality.as_str() {
            "none" | "" => None,
            q => {
                anyhow::ensure!(
                    orbita_protocol::MaxQuality::parse(q).is_some(),
                    "--max-quality {q:?} is not auto, none or WIDTHxHEIGHT"
                );
                Some(q.to_string())
            }
        };
        Ok(LoadConfig {
            url: self.url.clone(),
            codes: self.codes.clone(),
            rooms: self.rooms,
            publishers: self.publishers,
            subscribers: self.subscribers,
            audio: !self.no_audio,
            video: !self.no_video && !self.audio_only,
            simulcast: !self.no_simulcast,
            video_layer: self.video,
            max_quality,
            ramp_per_s: self.ramp,
            settle: secs(self.settle, "settle")?,
            duration: secs(self.duration, "duration")?,
            join_timeout: secs(self.join_timeout, "join-timeout")?,
            media_threads: self.media_threads.max(1),
            bind_ip: self.bind_ip,
            server_pid: self.server_pid,
            relay_only: self.relay_only,
            progress: !self.quiet,
        })
    }
}

/// Run the scenario, print the table (stdout) and write the JSON.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    if let Some(LoadMode::Coordinator(c)) = args.mode {
        return crate::coordinator::run_cli(c).await;
    }
    let config = args.config()?;
    let report = crate::run(config).await?;
    let json = serde_json::to_string_pretty(&report)?;
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
            print!("{}", report.table());
        }
        None => print!("{}", report.table()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn defaults_and_flags() {
        let c = Cli::parse_from(["orbita"]).load.config().unwrap();
        assert_eq!((c.rooms, c.publishers, c.subscribers), (1, 1, 10));
        assert!(c.audio && c.video && c.simulcast);
        assert_eq!(c.video_layer, VideoLayer::P720);
        assert_eq!(c.max_quality.as_deref(), Some("auto"));

        let c = Cli::parse_from([
            "orbita",
            "--rooms",
            "2",
            "--publishers",
            "10",
            "--subscribers",
            "30",
            "--audio-only",
            "--ramp",
            "0",
            "--duration",
            "5",
            "--video",
            "360p",
            "--no-simulcast",
            "--server-pid",
            "42",
            "--max-quality",
            "640x480",
            "--codes",
            "1234,5678",
            "--relay-only",
        ])
        .load
        .config()
        .unwrap();
        assert!(c.audio && !c.video && !c.simulcast);
        assert_eq!(c.video_layer, VideoLayer::P360);
        assert_eq!(c.ramp_per_s, 0.0);
        assert_eq!(c.duration, Duration::from_secs(5));
        assert_eq!(c.server_pid, Some(42));
        assert_eq!(c.codes, ["1234", "5678"]);
        assert!(c.relay_only);
        assert!(Cli::parse_from(["orbita", "--max-quality", "big"])
            .load
            .config()
            .is_err());
        assert!(Cli::try_parse_from(["orbita", "--no-audio", "--audio-only"]).is_err());
    }
}
