//! Input events: one JSON object per line, as the node forwards them from the participant who
//! holds control.
//!
//! ```text
//! {"type":"pointer","x":0.25,"y":0.5,"buttons":1}
//! {"type":"key","key":"ArrowLeft","down":true}
//! {"type":"touch","x":0.8,"y":0.1}
//! ```
//!
//! `x` and `y` are normalised to the video frame (0..1, left/top is 0; values outside are
//! clamped when applied). Unknown extra fields are ignored; a line that is not one of these
//! objects is an error that the app reports and skips.

use std::io::{BufRead, ErrorKind};

use serde::{Deserialize, Serialize};

/// Longest input line accepted, in bytes; longer lines are skipped whole.
pub const MAX_LINE_LEN: usize = 4096;
/// Longest key name accepted.
pub const MAX_KEY_LEN: usize = 64;

/// One input event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum InputEvent {
    /// The pointer (mouse) moved or its buttons changed. `buttons` is the DOM bit mask.
    Pointer {
        x: f64,
        y: f64,
        #[serde(default)]
        buttons: u32,
    },
    /// A key went down or up. `key` is the DOM `KeyboardEvent.key` value.
    Key { key: String, down: bool },
    /// A touch at a point.
    Touch { x: f64, y: f64 },
}

/// Parse one input line. Empty (all-whitespace) lines give `Ok(None)`.
pub fn parse_line(line: &str) -> Result<Option<InputEvent>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let event: InputEvent =
        serde_json::from_str(line).map_err(|e| format!("not an input event: {e}"))?;
    match &event {
        InputEvent::Pointer { x, y, .. } | InputEvent::Touch { x, y } => {
            if !x.is_finite() || !y.is_finite() {
                return Err("x and y must be finite numbers".into());
            }
        }
        InputEvent::Key { key, .. } => {
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(format!("key must be 1 to {MAX_KEY_LEN} bytes long"));
            }
        }
    }
    Ok(Some(event))
}

/// What reading one line gave.
#[derive(Debug, Clone, PartialEq)]
pub enum LineResult {
    /// A valid event.
    Event(InputEvent),
    /// A line that was not valid: the error and (the start of) the line.
    Rejected { error: String, line: String },
}

/// Reads input lines with a bound on their length; calls `on_line` for each non-empty line
/// until end of input (Ok) or a read error (Err). `on_line` returning false stops early.
pub fn read_lines(
    mut reader: impl BufRead,
    mut on_line: impl FnMut(LineResult) -> bool,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let (mut too_long, mut any, mut newline) = (false, false, false);
        // Read one line, keeping at most MAX_LINE_LEN bytes of it.
        loop {
            let available = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break; // end of input
            }
            any = true;
            let (chunk, consumed) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    newline = true;
                    (&available[..i], i + 1)
                }
                None => (available, available.len()),
            };
            let room = MAX_LINE_LEN.saturating_sub(buf.len());
            if chunk.len() > room {
                too_long = true;
            }
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            reader.consume(consumed);
            if newline {
                break;
            }
        }
        if !any {
            return Ok(());
        }
        let eof = !newline;
        let text = String::from_utf8_lossy(&buf);
        let result = if too_long {
            Some(LineResult::Rejected {
                error: format!("line longer than {MAX_LINE_LEN} bytes"),
                line: excerpt(&text),
            })
        } else {
            match parse_line(&text) {
                Ok(Some(event)) => Some(LineResult::Event(event)),
                Ok(None) => None,
                Err(error) => Some(LineResult::Rejected {
                    error,
                    line: excerpt(&text),
                }),
            }
        };
        if let Some(result) = result {
            if !on_line(result) {
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
    }
}

/// The first 120 characters of a line, for reports.
fn excerpt(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_lines() {
        assert_eq!(
            parse_line(r#"{"type":"pointer","x":0.25,"y":0.5,"buttons":1}"#).unwrap(),
            Some(InputEvent::Pointer {
                x: 0.25,
                y: 0.5,
                buttons: 1
            })
        );
        assert_eq!(
            parse_line(r#" {"type":"pointer","x":1,"y":0} "#).unwrap(),
            Some(InputEvent::Pointer {
                x: 1.0,
                y: 0.0,
                buttons: 0
            }),
            "buttons default to 0, integers are numbers"
        );
        assert_eq!(
            parse_line(r#"{"type":"key","key":"ArrowLeft","down":true}"#).unwrap(),
            Some(InputEvent::Key {
                key: "ArrowLeft".into(),
                down: true
            })
        );
        assert_eq!(
            parse_line(r#"{"type":"touch","x":0.8,"y":0.1,"id":3}"#).unwrap(),
            Some(InputEvent::Touch { x: 0.8, y: 0.1 }),
            "unknown fields are ignored"
        );
        assert_eq!(parse_line("   ").unwrap(), None);
    }

    #[test]
    fn bad_lines() {
        for line in [
            "not json",
            "{}",
            r#"{"type":"pointer","x":0.5}"#,
            r#"{"type":"pointer","x":"a","y":0.5}"#,
            r#"{"type":"wheel","dx":1}"#,
            r#"{"type":"key","key":"","down":true}"#,
            r#"{"type":"key","key":"a"}"#,
            r#"[1,2,3]"#,
            r#"{"type":"pointer","x":1e999,"y":0}"#,
        ] {
            assert!(parse_line(line).is_err(), "{line} should be rejected");
        }
    }

    #[test]
    fn reads_lines_skipping_bad_and_long_ones() {
        let long = format!(
            r#"{{"type":"key","key":"{}","down":true}}"#,
            "x".repeat(10_000)
        );
        let text = format!(
            "{}\n\nbad\n{long}\n{}",
            r#"{"type":"touch","x":0.1,"y":0.2}"#, r#"{"type":"key","key":"a","down":false}"#
        );
        let mut got = vec![];
        read_lines(
            std::io::BufReader::with_capacity(64, text.as_bytes()),
            |r| {
                got.push(r);
                true
            },
        )
        .unwrap();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            got[0],
            LineResult::Event(InputEvent::Touch { x: 0.1, y: 0.2 })
        );
        assert!(matches!(&got[1], LineResult::Rejected { line, .. } if line == "bad"));
        assert!(
            matches!(&got[2], LineResult::Rejected { error, line } if error.contains("longer") && line.len() < 200)
        );
        assert_eq!(
            got[3],
            LineResult::Event(InputEvent::Key {
                key: "a".into(),
                down: false
            }),
            "the last line needs no newline"
        );
    }
}
