//! The log on stderr: what `-v`, `-vv` and `HOP_LOG` show, the `log` crate's records (russh's)
//! bridged in, and the hard rule that no directive makes a library dump secrets.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Logs go to stderr. By default only hop's own warnings: the AWS SDK's are about things hop
/// reports itself, as one line with a hint. `-v` adds hop's progress and the SDK's warnings,
/// `-vv` everything at debug level, russh's own lines included; HOP_LOG takes an EnvFilter
/// directive. Whatever HOP_LOG says, the libraries in [`SECRET_TRACERS`] never log at trace
/// level (see [`no_secrets`]).
pub fn init(verbose: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match verbose {
        0 => "hop=warn",
        1 => "warn,hop=info",
        _ => "debug,hyper=info,hyper_util=info,rustls=info,h2=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOP_LOG").unwrap_or_else(|_| level.into());
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .fmt_fields(Fields)
        .finish()
        .with(tracing_subscriber::filter::filter_fn(|m| no_secrets(m.target(), *m.level())))
        .try_init();
    // `log` records become tracing events with their own targets, filtered like the others.
    // (By hand, not through tracing-subscriber's `tracing-log` feature: that one turns on
    // `log/std`, which rebuilds every crate that logs, the AWS SDK included.)
    static LOG_BRIDGE: std::sync::OnceLock<tracing_log::LogTracer> = std::sync::OnceLock::new();
    if installed.is_ok() && log::set_logger(LOG_BRIDGE.get_or_init(tracing_log::LogTracer::new)).is_ok() {
        use tracing_log::AsLog;
        log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
    }
}

/// Libraries whose trace-level events dump what crosses the wire: the AWS SDK logs whole
/// requests and responses (the Authorization and security-token headers, StartSession's
/// TokenValue), aws-sigv4 its canonical request, hyper/h2 headers, tungstenite websocket
/// frames (the data channel's token and session bytes), russh packets. Target prefixes.
const SECRET_TRACERS: &[&str] =
    &["aws_", "hyper", "h2", "rustls", "tungstenite", "tokio_tungstenite", "russh", "reqwest", "tower"];

/// Whether an event may be logged at all: nothing at trace level from [`SECRET_TRACERS`], so no
/// `HOP_LOG` directive can make a secret reach the log. Their debug lines stay.
fn no_secrets(target: &str, level: tracing::Level) -> bool {
    level != tracing::Level::TRACE || !SECRET_TRACERS.iter().any(|p| target.starts_with(p))
}

/// Fields as `message k=v …`, escaped for the terminal, without the `log.target`, `log.file`, … that bridged `log`
/// records carry (the event's target and level already say where it came from).
struct Fields;

impl<'w> FormatFields<'w> for Fields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter { writer: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldWriter<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for FieldWriter<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        // Warnings quote tags, servers' reasons and Session Manager's messages: escaped like
        // everything else hop prints, so a newline in one cannot forge a log line.
        let raw = format!("{value:?}");
        let text = crate::domain::display::escape(&raw);
        self.result = match field.name() {
            "message" => write!(self.writer, "{sep}{text}"),
            name => write!(self.writer, "{sep}{name}={text}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Level;

    /// What the subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_escape_what_they_quote() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::Fields)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let output = "bye\nWARN hop: forged line\u{9b}31m\u{202e}";
            tracing::warn!("Session Manager ended session s-1: {output}");
            tracing::warn!(reason = "a\rb", "plain");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            " WARN Session Manager ended session s-1: bye\\nWARN hop: forged line\\u{9b}31m\\u{202e}\n \
             WARN plain reason=\"a\\rb\"\n"
        );
    }

    #[test]
    fn no_directive_reaches_the_wire_dumps_at_trace() {
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
            "aws_sdk_ssm",
            "hyper_util::client",
            "h2::codec",
            "tungstenite::protocol",
            "russh::client",
        ] {
            assert!(!super::no_secrets(target, Level::TRACE), "{target}");
            assert!(super::no_secrets(target, Level::DEBUG), "{target}");
        }
        assert!(super::no_secrets("hop::adapters::ssm::channel", Level::TRACE));
    }
}
