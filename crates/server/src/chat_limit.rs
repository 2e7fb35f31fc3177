//! Per-participant chat limits: a chat message goes to everyone in the room, so one guest
//! flooding it would fill every other participant's signalling queue. Each participant may
//! send `chat_per_second` messages (bursts of `chat_burst`) and `chat_bytes_per_second` bytes
//! of text (bursts of [`CHAT_BYTES_BURST_SECS`] seconds' worth); beyond, its message is
//! dropped and only the sender is told (`rate_limited`). Separate from, and under, the
//! general `messages_per_second` of a connection. Sans-IO: the caller passes `now`.

use orbita_coordinator::logic::TokenBucket;
use orbita_coordinator::Millis;

/// The chat byte budget holds this many seconds of `chat_bytes_per_second` (its burst).
pub const CHAT_BYTES_BURST_SECS: u32 = 4;

/// One participant's chat budget.
#[derive(Debug, Clone)]
pub struct ChatLimiter {
    per_second: u32,
    bytes_per_second: u32,
    messages: TokenBucket,
    bytes: TokenBucket,
}

/// Why a chat message was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatRefused {
    /// More messages than `chat_per_second` (past the burst).
    TooMany {
        /// The setting, for the message.
        per_second: u32,
    },
    /// More text than `chat_bytes_per_second` (past the burst).
    TooMuchText {
        /// The setting, for the message.
        bytes_per_second: u32,
    },
}

impl std::fmt::Display for ChatRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatRefused::TooMany { per_second } => write!(
                f,
                "you are sending chat messages too fast (more than {per_second} a second); \
                 this message was not delivered"
            ),
            ChatRefused::TooMuchText { bytes_per_second } => write!(
                f,
                "you are sending too much chat text (more than {bytes_per_second} bytes a \
                 second); this message was not delivered"
            ),
        }
    }
}

impl ChatLimiter {
    /// A full budget at `now` (ms, any origin the caller keeps using).
    pub fn new(per_second: u32, burst: u32, bytes_per_second: u32, now: Millis) -> ChatLimiter {
        ChatLimiter {
            per_second,
            bytes_per_second,
            messages: TokenBucket::new(f64::from(per_second), f64::from(burst.max(1)), now),
            bytes: TokenBucket::new(
                f64::from(bytes_per_second),
                f64::from(bytes_per_second.saturating_mul(CHAT_BYTES_BURST_SECS)),
                now,
            ),
        }
    }

    /// Whether a chat message of `text_bytes` may go out at `now`; a refused message still
    /// spends a message token (a flood stays limited), never text bytes.
    pub fn admit(&mut self, text_bytes: usize, now: Millis) -> Result<(), ChatRefused> {
        self.messages.take(now).map_err(|_| ChatRefused::TooMany {
            per_second: self.per_second,
        })?;
        self.bytes
            .take_n(text_bytes as f64, now)
            .map_err(|_| ChatRefused::TooMuchText {
                bytes_per_second: self.bytes_per_second,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_in_virtual_time() {
        let mut chat = ChatLimiter::new(2, 10, 8192, 0);
        let sent = (0..100).filter(|_| chat.admit(10, 0).is_ok()).count();
        assert_eq!(sent, 10, "the burst");
        assert_eq!(
            chat.admit(10, 0),
            Err(ChatRefused::TooMany { per_second: 2 })
        );
        // A flood for 10 s (every 10 ms) gets 2 a second through, nothing more.
        let mut through = 0;
        for t in (10..=10_000).step_by(10) {
            through += usize::from(chat.admit(10, t).is_ok());
        }
        assert_eq!(through, 20);
        // After a quiet while the burst is back.
        let later = 60_000;
        assert_eq!((0..20).filter(|_| chat.admit(1, later).is_ok()).count(), 10);
    }

    #[test]
    fn text_bytes_are_limited_separately() {
        let mut chat = ChatLimiter::new(100, 100, 1024, 0);
        // The burst is four seconds' worth: four 1 KiB messages, then no more at once.
        for _ in 0..4 {
            chat.admit(1024, 0).unwrap();
        }
        let refused = chat.admit(1024, 0).unwrap_err();
        assert_eq!(
            refused,
            ChatRefused::TooMuchText {
                bytes_per_second: 1024
            }
        );
        assert!(refused.to_string().contains("not delivered"));
        // A second later one more fits; short messages keep flowing meanwhile.
        chat.admit(1024, 1000).unwrap();
        assert!(chat.admit(1024, 1000).is_err());
        // Larger than the whole burst never fits.
        assert!(chat.admit(5000, 100_000).is_err());
        chat.admit(10, 100_000).unwrap();
    }
}
