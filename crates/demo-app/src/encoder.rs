//! VP8 encoding with an `ffmpeg` (libvpx) child process.
//!
//! Raw I420 frames go to ffmpeg's stdin (`-f rawvideo -pix_fmt yuv420p`), IVF comes back on
//! its stdout and is parsed frame by frame. libvpx runs in real-time mode without lag, alt-ref
//! frames or frame dropping, so each frame in gives one frame out, immediately.
//!
//! **Keyframes on demand.** ffmpeg offers no way to ask a running encoder for a keyframe, so
//! [`Vp8Encoder::force_keyframe`] switches to a new ffmpeg process (a *generation*): the first
//! frame any encoder produces is a keyframe. With `spare` set, the next process is always
//! started ahead and waits (blocked on its input) for its first frame, so the switch costs no
//! process start. The old process gets end-of-input and exits; its
//! remaining output is passed on only until the new generation's first frame, so the stream
//! never goes back to frames that depend on the old keyframe. Besides that there is a regular
//! keyframe every `keyframe_interval` frames (`-g`).
//!
//! Threads per generation: one writes frames to stdin (from a small queue; a full queue drops
//! the frame, so a slow encoder never stalls the caller), one parses stdout, one forwards
//! ffmpeg's own error messages to the log.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::ivf::{is_vp8_keyframe, IvfReader};

/// Frames waiting for an encoder at most; more are dropped.
const QUEUE_FRAMES: usize = 3;

/// Find ffmpeg: `$ORBITA_FFMPEG` if set, else `ffmpeg` on the `PATH`.
pub fn locate_ffmpeg() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORBITA_FFMPEG").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "ORBITA_FFMPEG is {} but that is not an executable file",
            p.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("ffmpeg");
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    bail!(
        "ffmpeg not found: the demo app encodes VP8 with ffmpeg (libvpx). Install it \
         (Debian/Ubuntu: apt-get install ffmpeg) or set ORBITA_FFMPEG to its path"
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Encoder settings.
#[derive(Debug, Clone)]
pub struct EncoderSettings {
    pub ffmpeg: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames between regular keyframes (ffmpeg `-g`).
    pub keyframe_interval: u32,
    /// Keep a second ffmpeg process started and idle, so a forced keyframe does not wait for
    /// a process start (100 ms to 1 s, depending on the machine's load).
    pub spare: bool,
}

impl EncoderSettings {
    /// The ffmpeg arguments.
    pub fn ffmpeg_args(&self) -> Vec<String> {
        let s = |v: &str| v.to_string();
        vec![
            s("-hide_banner"),
            s("-loglevel"),
            s("error"),
            s("-f"),
            s("rawvideo"),
            s("-pix_fmt"),
            s("yuv420p"),
            s("-s"),
            format!("{}x{}", self.width, self.height),
            s("-r"),
            self.fps.to_string(),
            s("-i"),
            s("-"),
            s("-an"),
            s("-c:v"),
            s("libvpx"),
            s("-deadline"),
            s("realtime"),
            s("-cpu-used"),
            s("8"),
            s("-lag-in-frames"),
            s("0"),
            s("-error-resilient"),
            s("1"),
            s("-auto-alt-ref"),
            s("0"),
            s("-g"),
            self.keyframe_interval.max(1).to_string(),
            s("-b:v"),
            format!("{}k", self.bitrate_kbps),
            s("-threads"),
            s("1"),
            s("-fps_mode"),
            s("passthrough"),
            s("-flush_packets"),
            s("1"),
            s("-f"),
            s("ivf"),
            s("-"),
        ]
    }
}

/// One encoded frame.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The encoder generation that made it.
    pub generation: u64,
    /// The number the caller gave the raw frame.
    pub frame: u64,
    /// When the caller submitted the raw frame.
    pub captured: Instant,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// What the encoder threads report.
#[derive(Debug)]
pub enum EncoderEvent {
    Frame(EncodedFrame),
    /// A generation's output ended: cleanly (`None`) or with an error.
    Ended {
        generation: u64,
        error: Option<String>,
    },
}

/// A raw frame on its way to ffmpeg: number, submit time, I420 bytes.
type RawFrame = (u64, Instant, Arc<Vec<u8>>);

struct Generation {
    id: u64,
    child: Child,
    frames: Option<Sender<RawFrame>>,
}

/// The encoder: see the module documentation.
pub struct Vp8Encoder {
    settings: EncoderSettings,
    events_tx: Sender<EncoderEvent>,
    events_rx: Receiver<EncoderEvent>,
    current: Generation,
    /// A started process waiting for its first frame, promoted by `force_keyframe`.
    spare: Option<Generation>,
    retired: Vec<Generation>,
    next_id: u64,
    /// The newest generation whose output has been passed on.
    emitted_generation: u64,
    dropped: u64,
}

impl Vp8Encoder {
    /// Start the first encoder process.
    pub fn start(settings: EncoderSettings) -> anyhow::Result<Vp8Encoder> {
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let current = spawn(&settings, 1, events_tx.clone())?;
        let spare = if settings.spare {
            Some(spawn(&settings, 2, events_tx.clone())?)
        } else {
            None
        };
        Ok(Vp8Encoder {
            settings,
            events_tx,
            events_rx,
            current,
            retired: vec![],
            next_id: if spare.is_some() { 3 } else { 2 },
            spare,
            emitted_generation: 1,
            dropped: 0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Where encoded frames and ends arrive; pass each to [`Vp8Encoder::accept`].
    pub fn events(&self) -> &Receiver<EncoderEvent> {
        &self.events_rx
    }

    /// Raw frames dropped because the encoder was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The current generation (1 for the first process).
    pub fn generation(&self) -> u64 {
        self.current.id
    }

    /// Queue one I420 frame. Returns false if it was dropped (encoder behind).
    pub fn submit(&mut self, frame: u64, captured: Instant, i420: Arc<Vec<u8>>) -> bool {
        let Some(tx) = &self.current.frames else {
            self.dropped += 1;
            return false;
        };
        match tx.try_send((frame, captured, i420)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                false
            }
        }
    }

    /// Make the next submitted frame a keyframe: start a new encoder process and retire the
    /// current one.
    pub fn force_keyframe(&mut self) -> anyhow::Result<()> {
        let fresh = match self.spare.take() {
            Some(spare) => spare,
            None => self.spawn_next()?,
        };
        let mut old = std::mem::replace(&mut self.current, fresh);
        old.frames = None; // end of input: ffmpeg flushes and exits
        self.retired.push(old);
        self.reap();
        if self.settings.spare {
            self.spare = Some(self.spawn_next()?);
        }
        Ok(())
    }

    fn spawn_next(&mut self) -> anyhow::Result<Generation> {
        let g = spawn(&self.settings, self.next_id, self.events_tx.clone())?;
        self.next_id += 1;
        Ok(g)
    }

    /// Filter an event from [`Vp8Encoder::events`]: the frames to send, in order. Output of a
    /// retired generation is dropped once a newer one has produced a frame. Fails if the
    /// current generation ended (ffmpeg exited or wrote garbage).
    pub fn accept(&mut self, event: EncoderEvent) -> anyhow::Result<Option<EncodedFrame>> {
        match event {
            EncoderEvent::Frame(f) => {
                if f.generation < self.emitted_generation {
                    return Ok(None);
                }
                self.emitted_generation = f.generation;
                Ok(Some(f))
            }
            EncoderEvent::Ended { generation, error } => {
                self.reap();
                if generation == self.current.id
                    || self.spare.as_ref().is_some_and(|g| g.id == generation)
                {
                    let status = self.current.child.try_wait().ok().flatten();
                    bail!(
                        "the VP8 encoder (ffmpeg) stopped{}{}",
                        error.map(|e| format!(": {e}")).unwrap_or_default(),
                        status.map(|s| format!(" ({s})")).unwrap_or_default()
                    );
                }
                Ok(None)
            }
        }
    }

    /// Wait for exited retired processes.
    fn reap(&mut self) {
        self.retired
            .retain_mut(|g| !matches!(g.child.try_wait(), Ok(Some(_)) | Err(_)));
    }

    /// Stop every encoder process.
    pub fn stop(&mut self) {
        self.current.frames = None;
        let spare = self.spare.iter_mut();
        for g in self
            .retired
            .iter_mut()
            .chain(std::iter::once(&mut self.current))
            .chain(spare)
        {
            let _ = g.child.kill();
            let _ = g.child.wait();
        }
        self.retired.clear();
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(
    settings: &EncoderSettings,
    id: u64,
    events: Sender<EncoderEvent>,
) -> anyhow::Result<Generation> {
    let mut child = Command::new(&settings.ffmpeg)
        .args(settings.ffmpeg_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", settings.ffmpeg.display()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (frames_tx, frames_rx) = crossbeam_channel::bounded::<RawFrame>(QUEUE_FRAMES);
    // Frame numbers in the order they went in; the encoder keeps that order.
    let order: Arc<Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
    let expected_len = crate::scene::I420Frame::len_for(settings.width, settings.height);

    let order_w = order.clone();
    std::thread::Builder::new()
        .name(format!("vp8-in-{id}"))
        .spawn(move || {
            for (frame, captured, data) in frames_rx {
                if data.len() != expected_len {
                    tracing::error!("raw frame of {} bytes, expected {expected_len}", data.len());
                    break;
                }
                order_w
                    .lock()
                    .expect("order lock")
                    .push_back((frame, captured));
                if stdin.write_all(&data).and_then(|_| stdin.flush()).is_err() {
                    break;
                }
            }
            // Dropping stdin ends the input; ffmpeg flushes and exits.
        })
        .context("spawning the encoder input thread")?;

    let (width, height) = (settings.width, settings.height);
    std::thread::Builder::new()
        .name(format!("vp8-out-{id}"))
        .spawn(move || {
            let error = read_output(stdout, id, width, height, &order, &events).err();
            let _ = events.send(EncoderEvent::Ended {
                generation: id,
                error: error.map(|e| format!("{e:#}")),
            });
        })
        .context("spawning the encoder output thread")?;

    std::thread::Builder::new()
        .name(format!("vp8-log-{id}"))
        .spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::warn!("ffmpeg: {line}");
            }
        })
        .context("spawning the encoder log thread")?;

    tracing::debug!("VP8 encoder generation {id} started (pid {})", child.id());
    Ok(Generation {
        id,
        child,
        frames: Some(frames_tx),
    })
}

fn read_output(
    stdout: impl std::io::Read,
    id: u64,
    width: u32,
    height: u32,
    order: &Mutex<VecDeque<(u64, Instant)>>,
    events: &Sender<EncoderEvent>,
) -> anyhow::Result<()> {
    let mut reader = match IvfReader::new(BufReader::new(stdout)) {
        Ok(r) => r,
        // No output at all: ffmpeg exited before the first frame (e.g. retired right away).
        Err(e) if is_eof(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    let h = reader.header().clone();
    if &h.fourcc != b"VP80" || u32::from(h.width) != width || u32::from(h.height) != height {
        bail!(
            "unexpected encoder output: {:?} {}x{}",
            String::from_utf8_lossy(&h.fourcc),
            h.width,
            h.height
        );
    }
    while let Some(f) = reader.next_frame()? {
        let (frame, captured) = order
            .lock()
            .expect("order lock")
            .pop_front()
            .unwrap_or((u64::MAX, Instant::now()));
        let out = EncodedFrame {
            generation: id,
            frame,
            captured,
            keyframe: is_vp8_keyframe(&f.data),
            data: f.data,
        };
        if events.send(EncoderEvent::Frame(out)).is_err() {
            break;
        }
    }
    Ok(())
}

fn is_eof(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
    })
}
