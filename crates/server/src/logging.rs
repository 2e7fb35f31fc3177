//! Logging: `tracing` events to standard error, as text for people or as JSON lines for log
//! collectors (the `log_format` setting), filtered by the `log` setting (`EnvFilter` syntax).

use serde::Deserialize;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's
    /// fields at the top level, and `span` (the current span's fields) when inside one.
    Json,
}

/// The filter: `filter` when given (an error names it when it does not parse), else
/// `RUST_LOG`, else `info`.
pub fn env_filter(filter: Option<&str>) -> anyhow::Result<EnvFilter> {
    Ok(match filter {
        Some(filter) => EnvFilter::try_new(filter)
            .map_err(|e| anyhow::anyhow!("invalid log filter `{filter}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    })
}

/// A subscriber writing events that pass `filter` to `writer` in `format`.
pub fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_ansi(false)
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Log to standard error for the rest of the process (`log` records of libraries too).
pub fn init(filter: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    subscriber(env_filter(filter)?, format, std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use clap::Parser;
    use parking_lot::Mutex;
    use serde_json::Value;

    use super::*;
    use crate::config::{FileSettings, ServeArgs, Settings};

    /// What a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log_some(format: LogFormat) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = subscriber(env_filter(Some("info")).unwrap(), format, move || {
            writer.clone()
        });
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(http_addr = "127.0.0.1:8080", "serving");
            tracing::debug!("filtered out");
            let span = tracing::info_span!("session", code = "1234");
            let _entered = span.enter();
            tracing::warn!(reason = "a \"quoted\"\nreason", "two\nlines");
        });
        let bytes = out.0.lock().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_format_writes_one_object_per_line() {
        let text = log_some(LogFormat::Json);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "serving");
        assert_eq!(lines[0]["http_addr"], "127.0.0.1:8080");
        assert_eq!(lines[0]["target"], module_path!());
        assert!(lines[0]["timestamp"].is_string(), "{}", lines[0]);
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "two\nlines");
        assert_eq!(lines[1]["reason"], "a \"quoted\"\nreason");
        assert_eq!(lines[1]["span"]["code"], "1234");
    }

    #[test]
    fn text_format_is_for_people() {
        let text = log_some(LogFormat::Text);
        let first = text.lines().next().unwrap();
        assert!(first.contains("INFO"), "{text}");
        assert!(first.contains("serving"), "{text}");
        assert!(serde_json::from_str::<Value>(first).is_err(), "{text}");
        assert!(!text.contains("filtered out"));
    }

    #[test]
    fn bad_filters_are_named() {
        let e = env_filter(Some("orbita=loud")).unwrap_err().to_string();
        assert!(e.contains("orbita=loud"), "{e}");
    }

    /// `log_format`: text by default; the file, the variable (as the flag: clap reads both)
    /// and the flag set it; other values are refused.
    #[test]
    fn log_format_setting() {
        let args = |flags: &[&str]| {
            ServeArgs::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
        };
        let resolve = |a, f| Settings::resolve(a, f).unwrap().log_format;
        assert_eq!(
            resolve(args(&[]).unwrap(), FileSettings::default()),
            LogFormat::Text
        );
        let file = FileSettings::parse("log_format = \"json\"").unwrap();
        assert_eq!(resolve(args(&[]).unwrap(), file.clone()), LogFormat::Json);
        assert_eq!(
            resolve(args(&["--log-format", "text"]).unwrap(), file),
            LogFormat::Text
        );
        assert_eq!(
            resolve(
                args(&["--log-format", "json"]).unwrap(),
                FileSettings::default()
            ),
            LogFormat::Json
        );
        assert!(args(&["--log-format", "xml"]).is_err());
        let e = FileSettings::parse("log_format = \"xml\"").unwrap_err();
        assert!(format!("{e:#}").contains("log_format"), "{e:#}");
    }

    /// `orbita coordinator`: the flag (or variable), else its file's `log_format`; the file's
    /// key does not disturb the other settings.
    #[test]
    fn coordinator_log_format() {
        use crate::cluster::coordinator::{log_format, CoordinatorArgs, CoordinatorConfig};
        let dir = std::env::temp_dir().join(format!("orbita-log-format-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("coordinator.toml");
        std::fs::write(&file, "log_format = \"json\"\ncluster_secret = \"s\"\n").unwrap();
        let mut args = CoordinatorArgs {
            config: Some(file.clone()),
            ..CoordinatorArgs::default()
        };
        assert_eq!(log_format(&args).unwrap(), LogFormat::Json);
        assert_eq!(
            CoordinatorConfig::resolve(args.clone())
                .unwrap()
                .settings
                .cluster_secret,
            "s"
        );
        args.log_format = Some(LogFormat::Text);
        assert_eq!(log_format(&args).unwrap(), LogFormat::Text);
        assert_eq!(
            log_format(&CoordinatorArgs::default()).unwrap(),
            LogFormat::Text
        );
        std::fs::write(&file, "log_format = \"yaml\"\n").unwrap();
        args.log_format = None;
        let e = log_format(&args).unwrap_err();
        assert!(format!("{e:#}").contains("log_format"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
