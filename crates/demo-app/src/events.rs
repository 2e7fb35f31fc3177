//! The observability stream: one JSON object per line on stdout.

use std::io::Write;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use serde_json::Value;

/// Where the app's events go.
#[derive(Clone)]
pub struct EventSink {
    emit: Arc<dyn Fn(Value) + Send + Sync>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

impl EventSink {
    /// JSON lines on stdout, flushed per line (write errors, e.g. a closed pipe, are ignored).
    pub fn stdout() -> EventSink {
        EventSink::from_fn(move |v| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        })
    }

    /// Events into a channel (tests, embedding).
    pub fn channel() -> (EventSink, Receiver<Value>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (
            EventSink::from_fn(move |v| {
                let _ = tx.send(v);
            }),
            rx,
        )
    }

    /// Events to a function.
    pub fn from_fn(f: impl Fn(Value) + Send + Sync + 'static) -> EventSink {
        EventSink { emit: Arc::new(f) }
    }

    /// Emit one event.
    pub fn emit(&self, event: Value) {
        (self.emit)(event)
    }
}
