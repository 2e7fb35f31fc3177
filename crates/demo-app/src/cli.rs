//! `orbita demo-app`: the command line. Every flag can also come from the environment the node
//! sets (`ORBITA_WHIP_URL`, `ORBITA_WHIP_TOKEN`, ...); a flag wins over its variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::app::{run_app, AppConfig, StopFlag, StopReason};
use crate::events::EventSink;

/// Arguments of `orbita demo-app`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// The WHIP endpoint to publish to (http://...).
    #[arg(long, env = "ORBITA_WHIP_URL", value_name = "URL")]
    pub whip_url: String,
    /// Bearer token for the WHIP endpoint.
    #[arg(
        long,
        env = "ORBITA_WHIP_TOKEN",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true,
        value_name = "TOKEN"
    )]
    pub whip_token: String,
    /// The session's code (reported in the `started` event and the stream id).
    #[arg(long, env = "ORBITA_SESSION_CODE", value_name = "CODE")]
    pub session_code: Option<String>,
    /// Frame width in pixels (even).
    #[arg(long, env = "ORBITA_APP_WIDTH", default_value_t = 640)]
    pub width: u32,
    /// Frame height in pixels (even).
    #[arg(long, env = "ORBITA_APP_HEIGHT", default_value_t = 360)]
    pub height: u32,
    /// Frames per second.
    #[arg(long, env = "ORBITA_APP_FPS", default_value_t = 15)]
    pub fps: u32,
    /// Target video bitrate in kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 600)]
    pub bitrate: u32,
    /// Seconds between regular keyframes (requested keyframes come on top).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub keyframe_interval: f64,
    /// Do not keep a second ffmpeg process ready: requested keyframes then wait for an
    /// encoder process to start.
    #[arg(long)]
    pub no_spare_encoder: bool,
    /// Local address of the UDP socket (the ICE host candidate).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,
    /// The ffmpeg to encode with (default: `ffmpeg` on the PATH).
    #[arg(long, env = "ORBITA_FFMPEG", value_name = "PATH")]
    pub ffmpeg: Option<PathBuf>,
    /// Milliseconds between `stats` events.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,
    /// Seconds to wait for the media connection after the WHIP answer.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub connect_timeout: u64,
}

impl DemoArgs {
    /// The [`AppConfig`] these arguments describe.
    pub fn config(&self) -> AppConfig {
        let keyframe_interval = (self.keyframe_interval * f64::from(self.fps)).round();
        AppConfig {
            whip_url: self.whip_url.clone(),
            whip_token: self.whip_token.clone(),
            session_code: self.session_code.clone().filter(|c| !c.is_empty()),
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate,
            keyframe_interval: if keyframe_interval.is_finite() {
                keyframe_interval.clamp(1.0, 10_000.0) as u32
            } else {
                self.fps.saturating_mul(2)
            },
            spare_encoder: !self.no_spare_encoder,
            bind_ip: self.bind_ip,
            ffmpeg: self.ffmpeg.clone().filter(|p| !p.as_os_str().is_empty()),
            stats_interval: Duration::from_millis(self.stats_interval_ms.max(50)),
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
        }
    }
}

/// Run the demo app (input on stdin, events on stdout, logs on stderr) until stdin closes or
/// SIGTERM/SIGINT; an error when publishing fails. Runs on its own thread, so it can be awaited
/// from the `orbita` binary's tokio runtime.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("demo-app".into())
        .spawn(move || {
            let _ = tx.send(run_blocking(args));
        })?;
    rx.await
        .map_err(|_| anyhow::anyhow!("the demo app thread panicked"))?
}

/// [`run`] without async: blocks the calling thread.
pub fn run_blocking(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.config();
    config.validate()?;
    let stop = install_signal_handlers();
    let reason = run_app(config, std::io::stdin(), EventSink::stdout(), stop)?;
    tracing::info!(
        "demo app stopped: {}",
        match reason {
            StopReason::InputClosed => "stdin closed",
            StopReason::Stopped => "signal",
        }
    );
    Ok(())
}

static STOP: OnceLock<StopFlag> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if let Some(flag) = STOP.get() {
        flag.store(true, Ordering::SeqCst);
    }
}

/// SIGTERM and SIGINT set the returned flag (the app then unpublishes and exits cleanly).
fn install_signal_handlers() -> StopFlag {
    let flag = STOP
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    flag.store(false, Ordering::SeqCst);
    // SAFETY: the handler only performs an atomic store through an already-initialised
    // OnceLock; sigaction with a zeroed mask and SA_RESTART is a plain registration.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in [libc::SIGTERM, libc::SIGINT] {
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!("cannot install the handler for signal {sig}");
            }
        }
    }
    flag
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    #[test]
    fn flags_and_defaults() {
        // Environment variables are process-wide; this test only uses flags (the env names
        // are checked by clap's debug assertions and by the process tests).
        let a = Cli::try_parse_from(["orbita", "--whip-url", "http://h:1/whip/1"])
            .unwrap()
            .demo;
        let c = a.config();
        assert_eq!((c.width, c.height, c.fps), (640, 360, 15));
        assert_eq!(c.keyframe_interval, 30);
        assert_eq!(c.bind_ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.whip_token, "");
        c.validate().unwrap();

        let a = Cli::try_parse_from([
            "orbita",
            "--whip-url",
            "http://h:1/whip/1",
            "--whip-token",
            "t0k",
            "--width",
            "320",
            "--height",
            "180",
            "--fps",
            "10",
            "--keyframe-interval",
            "1",
            "--session-code",
            "4821",
        ])
        .unwrap()
        .demo;
        let c = a.config();
        assert_eq!(
            (c.width, c.height, c.fps, c.keyframe_interval),
            (320, 180, 10, 10)
        );
        assert_eq!(c.whip_token, "t0k");
        assert_eq!(c.session_code.as_deref(), Some("4821"));

        let mut odd = c.clone();
        odd.width = 321;
        assert!(odd.validate().is_err());
    }

    #[test]
    fn run_reports_bad_settings() {
        let a = Cli::try_parse_from(["orbita", "--whip-url", "http://h:1/w", "--fps", "0"])
            .unwrap()
            .demo;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(run(a)).expect_err("fps 0 is refused");
        assert!(err.to_string().contains("fps"), "{err}");
    }
}
