//! The job queue's decisions, sans-IO: which job runs next, when a failed one runs again,
//! when it is given up. Time is passed in (`now`), so the retry and backoff rules are tested
//! with a made-up clock; [`crate::Jobs`] does the IO (files, threads, ffmpeg).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often and how soon a failed job runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts at most (the first included).
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one...
    pub backoff_base: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
}

impl RetryPolicy {
    /// The wait before the attempt that follows failed attempt number `failed` (1-based).
    pub fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// What a worker should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Run this job; this is its attempt number `attempt` (1-based).
    Run {
        /// The recording's folder.
        dir: PathBuf,
        /// The attempt's number.
        attempt: u32,
    },
    /// Nothing is due before this instant (a failed job waits out its backoff).
    WaitUntil(Instant),
    /// Nothing is queued.
    Idle,
}

/// What becomes of a job after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// It succeeded.
    Done,
    /// It failed and is queued again, due at this instant.
    RetryAt(Instant),
    /// It failed its last allowed attempt.
    Failed,
}

/// The answer to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// It was queued already (nothing changed).
    AlreadyQueued,
    /// A worker runs it (nothing changed).
    AlreadyRunning,
    /// It has used up its attempts (an attempt cut short by a crash counts): not queued.
    Exhausted,
    /// The queue is full: not queued.
    Full,
}

#[derive(Debug)]
struct Waiting {
    dir: PathBuf,
    /// Attempts made so far.
    attempts: u32,
    not_before: Instant,
}

/// The queue: jobs waiting (first in, first out, each not before its due time) and jobs
/// running (with their attempt number).
#[derive(Debug)]
pub struct Queue {
    policy: RetryPolicy,
    max_waiting: usize,
    waiting: VecDeque<Waiting>,
    running: HashMap<PathBuf, u32>,
}

impl Queue {
    /// An empty queue holding at most `max_waiting` waiting jobs.
    pub fn new(policy: RetryPolicy, max_waiting: usize) -> Queue {
        Queue {
            policy,
            max_waiting,
            waiting: VecDeque::new(),
            running: HashMap::new(),
        }
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Queues the job of `dir`, which made `attempts` attempts already, due now.
    pub fn push(&mut self, dir: PathBuf, attempts: u32, now: Instant) -> Pushed {
        if self.running.contains_key(&dir) {
            return Pushed::AlreadyRunning;
        }
        if self.waiting.iter().any(|w| w.dir == dir) {
            return Pushed::AlreadyQueued;
        }
        if attempts >= self.policy.max_attempts {
            return Pushed::Exhausted;
        }
        if self.waiting.len() >= self.max_waiting {
            return Pushed::Full;
        }
        self.waiting.push_back(Waiting {
            dir,
            attempts,
            not_before: now,
        });
        Pushed::Queued
    }

    /// The next job due at `now` (the one queued first), now running; else when one will be due.
    pub fn take(&mut self, now: Instant) -> Take {
        if let Some(at) = self.waiting.iter().position(|w| w.not_before <= now) {
            let Some(job) = self.waiting.remove(at) else {
                return Take::Idle;
            };
            let attempt = job.attempts + 1;
            self.running.insert(job.dir.clone(), attempt);
            return Take::Run {
                dir: job.dir,
                attempt,
            };
        }
        match self.waiting.iter().map(|w| w.not_before).min() {
            Some(due) => Take::WaitUntil(due),
            None => Take::Idle,
        }
    }

    /// Ends the running attempt of `dir`: `succeeded`, or failed and then queued again
    /// after its backoff, or given up after the last allowed attempt.
    pub fn finish(&mut self, dir: &Path, succeeded: bool, now: Instant) -> Finish {
        let attempt = self.running.remove(dir).unwrap_or(self.policy.max_attempts);
        if succeeded {
            return Finish::Done;
        }
        if attempt >= self.policy.max_attempts {
            return Finish::Failed;
        }
        let due = now + self.policy.backoff(attempt);
        // A retry is not refused for a full queue: the job held its place already.
        self.waiting.push_back(Waiting {
            dir: dir.to_owned(),
            attempts: attempt,
            not_before: due,
        });
        Finish::RetryAt(due)
    }

    /// Ends the running attempt of `dir` without counting it (cancelled at shutdown): the job
    /// is not queued again here (it stays in `job.json` for the next start's scan).
    pub fn abandon(&mut self, dir: &Path) {
        self.running.remove(dir);
    }

    /// Takes `dir` out of the waiting jobs (its `pending` could not be recorded).
    pub fn abandon_waiting(&mut self, dir: &Path) {
        self.waiting.retain(|w| w.dir != dir);
    }

    /// Whether `dir`'s job is running.
    pub fn is_running(&self, dir: &Path) -> bool {
        self.running.contains_key(dir)
    }

    /// Whether `dir` is queued or running.
    pub fn contains(&self, dir: &Path) -> bool {
        self.running.contains_key(dir) || self.waiting.iter().any(|w| w.dir == dir)
    }

    /// Jobs waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Jobs running.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff_base: 30 * S,
            backoff_max: 600 * S,
        }
    }

    fn run(take: Take) -> (PathBuf, u32) {
        match take {
            Take::Run { dir, attempt } => (dir, attempt),
            other => panic!("expected a job, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = policy();
        assert_eq!(p.backoff(1), 30 * S);
        assert_eq!(p.backoff(2), 60 * S);
        assert_eq!(p.backoff(3), 120 * S);
        assert_eq!(p.backoff(6), 600 * S);
        assert_eq!(p.backoff(u32::MAX), 600 * S);
    }

    #[test]
    fn a_failing_job_is_retried_after_its_backoff_then_given_up() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 10);
        let dir = PathBuf::from("/rec/a");
        assert_eq!(q.push(dir.clone(), 0, t0), Pushed::Queued);

        assert_eq!(run(q.take(t0)), (dir.clone(), 1));
        assert_eq!(q.take(t0), Take::Idle);
        let t1 = t0 + 5 * S;
        assert_eq!(q.finish(&dir, false, t1), Finish::RetryAt(t1 + 30 * S));

        // Not before its backoff is over.
        assert_eq!(q.take(t1 + 29 * S), Take::WaitUntil(t1 + 30 * S));
        assert_eq!(run(q.take(t1 + 30 * S)), (dir.clone(), 2));
        let t2 = t1 + 40 * S;
        assert_eq!(q.finish(&dir, false, t2), Finish::RetryAt(t2 + 60 * S));

        assert_eq!(q.take(t2 + 59 * S), Take::WaitUntil(t2 + 60 * S));
        assert_eq!(run(q.take(t2 + 60 * S)), (dir.clone(), 3));
        assert_eq!(q.finish(&dir, false, t2 + 70 * S), Finish::Failed);
        assert_eq!(q.take(t2 + 1000 * S), Take::Idle);
        assert!(!q.contains(&dir));
    }

    #[test]
    fn success_ends_it() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 10);
        let dir = PathBuf::from("/rec/a");
        q.push(dir.clone(), 0, t0);
        run(q.take(t0));
        assert_eq!(q.finish(&dir, false, t0), Finish::RetryAt(t0 + 30 * S));
        run(q.take(t0 + 30 * S));
        assert_eq!(q.finish(&dir, true, t0 + 31 * S), Finish::Done);
        assert_eq!(q.take(t0 + 1000 * S), Take::Idle);
    }

    #[test]
    fn a_job_waiting_out_its_backoff_lets_others_pass() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 10);
        let (a, b) = (PathBuf::from("/rec/a"), PathBuf::from("/rec/b"));
        q.push(a.clone(), 0, t0);
        run(q.take(t0));
        q.finish(&a, false, t0);
        q.push(b.clone(), 0, t0 + S);
        assert_eq!(run(q.take(t0 + S)), (b.clone(), 1));
        assert_eq!(q.take(t0 + S), Take::WaitUntil(t0 + 30 * S));
    }

    #[test]
    fn pushes_are_idempotent_and_bounded() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 2);
        let (a, b, c) = (
            PathBuf::from("/rec/a"),
            PathBuf::from("/rec/b"),
            PathBuf::from("/rec/c"),
        );
        assert_eq!(q.push(a.clone(), 0, t0), Pushed::Queued);
        assert_eq!(q.push(a.clone(), 0, t0), Pushed::AlreadyQueued);
        assert_eq!(q.push(b.clone(), 0, t0), Pushed::Queued);
        assert_eq!(q.push(c.clone(), 0, t0), Pushed::Full);
        run(q.take(t0));
        assert_eq!(q.push(a.clone(), 0, t0), Pushed::AlreadyRunning);
        assert_eq!(q.push(c.clone(), 0, t0), Pushed::Queued);
        assert_eq!((q.waiting(), q.running()), (2, 1));
    }

    #[test]
    fn attempts_cut_short_by_a_crash_count() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 10);
        // job.json said running, attempt 2 of 3: one more attempt.
        assert_eq!(q.push(PathBuf::from("/rec/a"), 2, t0), Pushed::Queued);
        assert_eq!(run(q.take(t0)).1, 3);
        // Running at attempt 3: none left.
        assert_eq!(q.push(PathBuf::from("/rec/b"), 3, t0), Pushed::Exhausted);
    }

    #[test]
    fn an_abandoned_attempt_frees_the_job() {
        let t0 = Instant::now();
        let mut q = Queue::new(policy(), 10);
        let a = PathBuf::from("/rec/a");
        q.push(a.clone(), 0, t0);
        run(q.take(t0));
        q.abandon(&a);
        assert!(!q.contains(&a));
        assert_eq!(q.push(a.clone(), 0, t0), Pushed::Queued);
    }
}
