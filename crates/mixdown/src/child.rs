//! One ffmpeg or ffprobe child process: niced, in its own process group (killed whole),
//! killed at a deadline or when the job is cancelled, stderr's tail kept for the error,
//! stdout read line by line (ffprobe's answer). Waits without polling: a thread blocks in
//! `waitid(WNOWAIT)` (the child is reaped only after a kill, so its pid cannot be reused by
//! then) while the caller waits on the first of exit, cancel and deadline.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver};

/// The longest stdout line handed on (ffprobe's are under 200 bytes); longer ones are dropped.
const MAX_STDOUT_LINE: u64 = 4096;

/// Takes each line of a child's stdout, without its newline.
pub type LineHandler<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// How a child is run.
#[derive(Debug, Clone)]
pub struct ChildLimits {
    /// Added to the child's nice value (`nice -n`), 0 for none.
    pub niceness: i32,
    /// The child is killed at this instant.
    pub deadline: Instant,
    /// Bytes of stderr kept (its end).
    pub stderr_tail_bytes: usize,
}

/// Why a child did not succeed. Each carries the end of its stderr.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("{program}: cannot start: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It exited with an error, or a signal killed it.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: PathBuf,
        /// How it ended, in words.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// It ran past its deadline and was killed.
    #[error("{program} killed after {seconds} s (the job's time limit): {stderr}")]
    TimedOut {
        /// The program.
        program: PathBuf,
        /// How long it ran.
        seconds: u64,
        /// The end of its stderr.
        stderr: String,
    },
    /// The job was cancelled (shutdown) and the child killed.
    #[error("{program} killed: the job was cancelled")]
    Cancelled {
        /// The program.
        program: PathBuf,
    },
}

/// Runs `program args`, handing each stdout line (without its newline) to `stdout` when
/// given (else stdout is discarded). Returns when the child has exited (or was killed) and
/// its pipes are read to the end. `cancel` kills it when it receives or disconnects.
pub fn run(
    program: &Path,
    args: &[OsString],
    limits: &ChildLimits,
    cancel: &Receiver<()>,
    stdout: Option<LineHandler<'_>>,
) -> Result<(), ChildError> {
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(if stdout.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        // Its own group: a kill reaches anything it started.
        .process_group(0);
    let niceness = limits.niceness;
    // SAFETY: between fork and exec only async-signal-safe system calls (nice, prctl); their
    // failures are ignored (a child at the server's priority still does its job).
    unsafe {
        command.pre_exec(move || {
            if niceness != 0 {
                libc::nice(niceness);
            }
            // Die with the thread that started it, should the server die without a kill.
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| ChildError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let pid = child.id() as libc::pid_t;
    let child_stdout = child.stdout.take();
    let child_stderr = child.stderr.take();
    let (exited_tx, exited) = bounded::<()>(1);

    enum End {
        Exited,
        TimedOut,
        Cancelled,
    }
    let (end, status, stderr) = thread::scope(|scope| {
        let tail = scope.spawn(|| match child_stderr {
            Some(stderr) => read_tail(stderr, limits.stderr_tail_bytes),
            None => String::new(),
        });
        if let (Some(out), Some(handler)) = (child_stdout, stdout) {
            scope.spawn(move || read_lines(out, handler));
        }
        scope.spawn(move || {
            wait_exited(pid);
            let _ = exited_tx.send(());
        });
        let timeout = limits.deadline.saturating_duration_since(Instant::now());
        let end = select! {
            recv(exited) -> _ => End::Exited,
            recv(cancel) -> _ => End::Cancelled,
            default(timeout) => End::TimedOut,
        };
        if !matches!(end, End::Exited) {
            // SAFETY: kill(2) on the child's process group; the child is not reaped yet (only
            // `child.wait` below reaps it), so the group id is still its own.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let status = child.wait();
        (end, status, tail.join().unwrap_or_default())
    });

    let program = program.to_owned();
    match end {
        End::Cancelled => Err(ChildError::Cancelled { program }),
        End::TimedOut => Err(ChildError::TimedOut {
            program,
            seconds: started.elapsed().as_secs(),
            stderr,
        }),
        End::Exited => match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(ChildError::Failed {
                program,
                status: describe(status),
                stderr,
            }),
            Err(e) => Err(ChildError::Failed {
                program,
                status: format!("wait: {e}"),
                stderr,
            }),
        },
    }
}

/// Blocks until the child `pid` has exited, without reaping it.
fn wait_exited(pid: libc::pid_t) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child, WNOWAIT: it stays a zombie for `Child::wait`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Reads a pipe to its end, keeping its last `limit` bytes, from a line's start when it
/// was cut, as text.
fn read_tail(mut pipe: impl Read, limit: usize) -> String {
    let limit = limit.max(64);
    let mut kept: Vec<u8> = Vec::with_capacity(limit.min(64 * 1024));
    let mut cut = false;
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                    cut = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
        cut = true;
    }
    let mut start = 0;
    if cut {
        if let Some(newline) = kept.iter().position(|&b| b == b'\n') {
            start = newline + 1;
        }
    }
    let text = String::from_utf8_lossy(&kept[start..]);
    let text = text.trim();
    if cut {
        format!("...{text}")
    } else {
        text.to_owned()
    }
}

/// Hands each line of a pipe to `handler`; lines longer than [`MAX_STDOUT_LINE`] are dropped.
fn read_lines(pipe: impl Read, handler: LineHandler<'_>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_STDOUT_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with(b"\n") && line.len() as u64 == MAX_STDOUT_LINE => {
                // Too long: the rest of it is skipped.
                if reader.skip_until(b'\n').is_err() {
                    return;
                }
            }
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                handler(text);
            }
        }
    }
}

/// A limit that is `timeout` from now.
pub fn deadline_in(timeout: Duration) -> Instant {
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::never;

    fn limits(timeout: Duration) -> ChildLimits {
        ChildLimits {
            niceness: 10,
            deadline: deadline_in(timeout),
            stderr_tail_bytes: 256,
        }
    }

    fn sh(script: &str) -> Vec<OsString> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn stdout_lines_and_success() {
        let mut lines = Vec::new();
        let mut handler = |line: &[u8]| lines.push(String::from_utf8_lossy(line).into_owned());
        run(
            Path::new("sh"),
            &sh("echo one; echo two; printf three"),
            &limits(Duration::from_secs(30)),
            &never(),
            Some(&mut handler),
        )
        .unwrap();
        assert_eq!(lines, ["one", "two", "three"]);
    }

    #[test]
    fn the_child_is_niced() {
        let mut lines = Vec::new();
        let mut handler = |line: &[u8]| lines.push(String::from_utf8_lossy(line).into_owned());
        // Field 19 of /proc/self/stat is the nice value.
        run(
            Path::new("sh"),
            &sh("cut -d' ' -f19 /proc/self/stat"),
            &limits(Duration::from_secs(30)),
            &never(),
            Some(&mut handler),
        )
        .unwrap();
        // SAFETY: getpriority reads our own nice value.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let expected = (ours + 10).min(19);
        assert_eq!(lines, [expected.to_string()]);
    }

    #[test]
    fn a_failure_carries_the_tail_of_stderr() {
        let err = run(
            Path::new("sh"),
            &sh(
                "i=0; while [ $i -lt 500 ]; do echo noise line $i >&2; i=$((i+1)); done; \
                 echo the real error >&2; exit 3",
            ),
            &limits(Duration::from_secs(30)),
            &never(),
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status 3"), "{text}");
        assert!(text.ends_with("the real error"), "{text}");
        assert!(text.len() < 400, "{text}");
        assert!(!text.contains("noise line 1\n"), "{text}");
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_with_its_group() {
        let started = Instant::now();
        // The shell's child (sleep) holds stderr open: only a kill of the group ends it.
        let err = run(
            Path::new("sh"),
            &sh("echo started >&2; sleep 600; echo never"),
            &limits(Duration::from_millis(300)),
            &never(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ChildError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("started"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn cancel_kills() {
        let (tx, rx) = bounded::<()>(0);
        drop(tx);
        let err = run(
            Path::new("sh"),
            &sh("sleep 600"),
            &limits(Duration::from_secs(600)),
            &rx,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ChildError::Cancelled { .. }), "{err}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run(
            Path::new("/nonexistent/ffmpeg"),
            &[],
            &limits(Duration::from_secs(1)),
            &never(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ChildError::Spawn { .. }), "{err}");
    }
}
