//! When a connection is due to be closed (sans-IO: every method takes `now`): the header-read
//! deadline while a request head is awaited, the idle deadline between requests, none while a
//! request is in flight.

use std::time::Duration;

use tokio::time::Instant;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The TLS handshake and request head did not arrive in time.
    HeaderRead,
    /// No request came on a keep-alive connection.
    Idle,
}

/// One connection's deadlines.
#[derive(Debug, Clone)]
pub struct ConnectionClock {
    header_read: Duration,
    idle: Duration,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request head is awaited: since the accept, or since the first byte after a pause.
    Head { since: Instant },
    /// Between requests, since the last response was sent.
    Idle { since: Instant },
    /// Requests in flight (their responses are not all sent).
    Busy { requests: usize },
    /// No longer watched (upgraded to a WebSocket, or closed).
    Done,
}

impl ConnectionClock {
    /// A connection accepted at `now`: its TLS handshake and first request head must arrive
    /// within `header_read`; later it may wait `idle` between requests.
    pub fn new(header_read: Duration, idle: Duration, now: Instant) -> ConnectionClock {
        ConnectionClock {
            header_read,
            idle,
            phase: Phase::Head { since: now },
        }
    }

    /// Bytes arrived at `now`. True when that brought the deadline forward (the first byte of
    /// a request after an idle pause starts the header-read deadline).
    pub fn on_read(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Idle { .. } => {
                self.phase = Phase::Head { since: now };
                true
            }
            Phase::Head { .. } | Phase::Busy { .. } | Phase::Done => false,
        }
    }

    /// A request head was read in full: no deadline while it is in flight.
    pub fn on_request(&mut self) {
        self.phase = match self.phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            Phase::Head { .. } | Phase::Idle { .. } => Phase::Busy { requests: 1 },
            Phase::Done => Phase::Done,
        };
    }

    /// A response was sent in full at `now` (or abandoned). True when the connection became
    /// idle (a deadline appeared).
    pub fn on_response_done(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Busy { requests } if requests > 1 => {
                self.phase = Phase::Busy {
                    requests: requests - 1,
                };
                false
            }
            Phase::Busy { .. } => {
                self.phase = Phase::Idle { since: now };
                true
            }
            Phase::Head { .. } | Phase::Idle { .. } | Phase::Done => false,
        }
    }

    /// The connection is no longer watched: no deadline from now on.
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// The next deadline, if any, and what it is for.
    pub fn deadline(&self) -> Option<(Instant, Expiry)> {
        match self.phase {
            Phase::Head { since } => Some((since + self.header_read, Expiry::HeaderRead)),
            Phase::Idle { since } => Some((since + self.idle, Expiry::Idle)),
            Phase::Busy { .. } | Phase::Done => None,
        }
    }

    /// The deadline that has passed at `now`, if one has.
    pub fn expired(&self, now: Instant) -> Option<Expiry> {
        self.deadline()
            .filter(|(at, _)| now >= *at)
            .map(|(_, expiry)| expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_silent_or_slow_head_expires_after_the_header_read_timeout_from_accept() {
        let t0 = Instant::now();
        let mut clock = ConnectionClock::new(HEAD, IDLE, t0);
        // Half a request line at 3 s changes nothing: the head is due 10 s after the accept.
        assert!(!clock.on_read(t0 + secs(3)));
        assert_eq!(clock.expired(t0 + secs(9)), None);
        assert_eq!(clock.expired(t0 + secs(10)), Some(Expiry::HeaderRead));
    }

    #[test]
    fn no_deadline_while_a_request_is_in_flight() {
        let t0 = Instant::now();
        let mut clock = ConnectionClock::new(HEAD, IDLE, t0);
        clock.on_request();
        assert_eq!(clock.deadline(), None);
        assert_eq!(clock.expired(t0 + secs(3600)), None);
        // Pipelined: two in flight, the first answered.
        clock.on_request();
        assert!(!clock.on_response_done(t0 + secs(1)));
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn keep_alive_idles_for_the_idle_timeout_then_a_new_head_has_the_header_timeout() {
        let t0 = Instant::now();
        let mut clock = ConnectionClock::new(HEAD, IDLE, t0);
        clock.on_request();
        assert!(clock.on_response_done(t0 + secs(1)));
        assert_eq!(clock.deadline(), Some((t0 + secs(61), Expiry::Idle)));
        assert_eq!(clock.expired(t0 + secs(60)), None);
        assert_eq!(clock.expired(t0 + secs(61)), Some(Expiry::Idle));
        // A first byte at 30 s: the rest of the head is due 10 s later, sooner than idle.
        assert!(clock.on_read(t0 + secs(30)));
        assert!(!clock.on_read(t0 + secs(31)));
        assert_eq!(clock.deadline(), Some((t0 + secs(40), Expiry::HeaderRead)));
        clock.on_request();
        assert!(clock.on_response_done(t0 + secs(41)));
        assert_eq!(clock.expired(t0 + secs(100)), None);
        assert_eq!(clock.expired(t0 + secs(101)), Some(Expiry::Idle));
    }

    #[test]
    fn a_finished_connection_has_no_deadline_and_ignores_reads() {
        let t0 = Instant::now();
        let mut clock = ConnectionClock::new(HEAD, IDLE, t0);
        clock.finish();
        assert!(!clock.on_read(t0 + secs(1)));
        clock.on_request();
        assert!(!clock.on_response_done(t0 + secs(2)));
        assert_eq!(clock.deadline(), None);
    }
}
