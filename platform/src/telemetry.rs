//! One `tracing` subscriber per process, writing log lines filtered by `RUST_LOG` (default
//! `info`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exporting the spans from `info`
//! up over OTLP/gRPC.
//!
//! Without the endpoint no exporter, no OpenTelemetry layer and no propagation is built: the
//! programs cost what they did before tracing existed. With it, every span (the gateway's
//! `http`, each service's `grpc`, `consume`, `publish`, `commit` and the spans within) goes
//! to the collector in batches, and log lines carry the `trace_id` and `span_id` they were
//! written in. How context crosses the hops is [`crate::trace_context`].
//!
//! The all-in-one `stack` runs five programs under the one subscriber a process has, so the
//! resource's `service.name` is that of the process (`OTEL_SERVICE_NAME`, or the program's
//! name: `stack`), and the spans where each program's work begins carry `service.name` of
//! the program as a span attribute too (see [`in_program`]).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Level;
use tracing::dispatcher::WeakDispatch;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::ConfigError;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected `text` or `json`".to_owned()),
        }
    }
}

/// Where and what to export: the `OTEL_*` variables of the OpenTelemetry specification that
/// the programs honour.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceExport {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's OTLP/gRPC address (`http://host:4317`).
    pub endpoint: String,
    /// `OTEL_SERVICE_NAME`, or the program's name.
    pub service_name: String,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampling: Sampling,
}

/// Which traces are recorded: a share of those the program starts (`ratio`, 1 for all), and,
/// when `parent_based`, exactly those the caller recorded for the traces it continues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub parent_based: bool,
    pub ratio: f64,
}

impl Default for Sampling {
    /// The specification's default, `parentbased_always_on`.
    fn default() -> Self {
        Self {
            parent_based: true,
            ratio: 1.0,
        }
    }
}

impl TraceExport {
    pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    pub const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    pub const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    pub const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

    /// Reads the variables; `None` (export nothing) when no endpoint is set.
    pub fn from_env(program: &str) -> Result<Option<Self>, ConfigError> {
        Self::from_vars(program, crate::config::optional)
    }

    /// As [`Self::from_env`], with the variables `var` answers.
    pub fn from_vars(
        program: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(endpoint) = var(Self::ENDPOINT).filter(|value| !value.trim().is_empty()) else {
            return Ok(None);
        };
        let ratio = match var(Self::SAMPLER_ARG) {
            None => 1.0,
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .ok_or_else(|| {
                    ConfigError::new(Self::SAMPLER_ARG, "must be a ratio between 0 and 1")
                })?,
        };
        let sampling = match var(Self::SAMPLER).as_deref().map(str::trim) {
            None | Some("" | "parentbased_always_on") => Sampling::default(),
            Some("always_on") => Sampling {
                parent_based: false,
                ratio: 1.0,
            },
            Some("always_off") => Sampling {
                parent_based: false,
                ratio: 0.0,
            },
            Some("parentbased_always_off") => Sampling {
                parent_based: true,
                ratio: 0.0,
            },
            Some("traceidratio") => Sampling {
                parent_based: false,
                ratio,
            },
            Some("parentbased_traceidratio") => Sampling {
                parent_based: true,
                ratio,
            },
            Some(_) => {
                return Err(ConfigError::new(
                    Self::SAMPLER,
                    "must be always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };
        let service_name = var(Self::SERVICE_NAME)
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| program.to_owned());
        Ok(Some(Self {
            endpoint,
            service_name,
            sampling,
        }))
    }

    /// The tracer provider exporting in batches to the endpoint. Must run inside a Tokio
    /// runtime: the exporter's gRPC channel lives on it.
    fn provider(&self) -> anyhow::Result<SdkTracerProvider> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone())
            .build()?;
        let ratio = Sampler::TraceIdRatioBased(self.sampling.ratio);
        let sampler = if self.sampling.parent_based {
            Sampler::ParentBased(Box::new(ratio))
        } else {
            ratio
        };
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(self.service_name.clone())
                    .build(),
            )
            .build())
    }
}

/// The process's telemetry once installed: flush it with [`Telemetry::shutdown`] before
/// exiting, or the last spans are lost.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an exporter was built and installed).
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered, and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocks until the batch is out: off the async threads.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the global subscriber, reading `OTEL_*` for `program` (see [`TraceExport`]).
/// Must run inside a Tokio runtime when the endpoint is set.
pub fn init(format: LogFormat, program: &str) -> anyhow::Result<Telemetry> {
    install(format, TraceExport::from_env(program)?.as_ref())
}

/// Installs the global subscriber, exporting spans as `export` says, if given. Calling it
/// again (the all-in-one runner starts several programs in one process) keeps the first one,
/// and builds no second exporter.
pub fn install(format: LogFormat, export: Option<&TraceExport>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = export.map(TraceExport::provider).transpose()?;
    let exporting = provider.is_some();
    let spans = provider.as_ref().map(span_layer);
    let subscriber = SubscriberCell::default();
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            // Colours would have to be cut around the appended ids: none while exporting.
            .with_ansi(!exporting)
            .map_event_format(|inner| WithTraceIds::new(inner, false, &subscriber))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .map_event_format(|inner| WithTraceIds::new(inner, true, &subscriber))
            .boxed(),
    };
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(spans)
            .with(lines.with_filter(filter)),
    );
    let _ = subscriber.set(dispatch.downgrade());
    let installed = tracing::dispatcher::set_global_default(dispatch);
    match (installed, provider) {
        (Ok(()), provider) => {
            if exporting {
                crate::trace_context::enable();
            }
            Ok(Telemetry { provider })
        }
        // Another program of this process installed the subscriber first.
        (Err(_), Some(unused)) => {
            let _ = unused.shutdown();
            Ok(Telemetry::default())
        }
        (Err(_), None) => Ok(Telemetry::default()),
    }
}

/// The layer exporting spans to `provider`.
fn span_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    // Spans are exported from `info` up whatever `RUST_LOG` says: a deployment that logs
    // only warnings (as the benchmark does) still traces its requests. Only the platform's
    // own spans are exported (`http`, `grpc`, `commit`, `publish`, `consume`, opened in the
    // workspace's crates): a dependency (h2, hyper, tonic, tower, sqlx, lapin) that opened
    // an `info` span would otherwise add a span, and its export, to every request. The
    // filter is decided once per call site, so it costs nothing per span. Of the log events,
    // only warnings and errors become span events (an error marks its span failed), from
    // any crate; the others are in the logs, which carry the trace and span ids.
    //
    // What the layer records besides the spans' own fields is switched off, each for a cost
    // paid on every span or every entry (counted with callgrind, docs/benchmarks.md):
    // - code locations, threads, busy/idle times, and the `target` attribute (the module
    //   path): attributes to build, encode and send for every span, of little use when the
    //   span's name and `service.name` say where it comes from;
    // - context activation: by default the layer makes a span's context the current
    //   OpenTelemetry context each time the span is entered, and a request's spans are
    //   entered and left at every poll of their futures (about a dozen times per balance
    //   read). The context is needed only where a request leaves the process (the outgoing
    //   `traceparent`) and for log lines, which look it up from the span instead
    //   ([`crate::trace_context::context_of_current_span`]).
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_context_activation(false)
        .with_filter(filter_fn(|metadata| {
            if metadata.is_span() {
                *metadata.level() <= Level::INFO && is_ours(metadata.target())
            } else {
                *metadata.level() <= Level::WARN
            }
        }))
}

/// The crates of the workspace, whose spans are exported: a span's target is the module path
/// it was opened in (`gateway`, `platform::grpc`, `wallet_service::…`).
const OUR_CRATES: [&str; 8] = [
    "gateway",
    "platform",
    "auth_service",
    "wallet_service",
    "statement_service",
    "order_service",
    "web",
    "stack",
];

fn is_ours(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or_default();
    OUR_CRATES.contains(&krate)
}

/// The subscriber, once built: log lines find their span's trace through it.
type SubscriberCell = Arc<OnceLock<WeakDispatch>>;

/// Adds `trace_id` and `span_id` of the span an event is written in to its log line (a
/// field of the JSON object, or `key=value` at the end of a text line).
struct WithTraceIds<F> {
    inner: F,
    json: bool,
    /// While it handles an event the subscriber is not reachable as the current one
    /// (`tracing` hands out none inside its own calls), so the formatter keeps it here.
    subscriber: SubscriberCell,
}

impl<F> WithTraceIds<F> {
    fn new(inner: F, json: bool, subscriber: &SubscriberCell) -> Self {
        Self {
            inner,
            json,
            subscriber: subscriber.clone(),
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // The context of the entered span (or of its nearest exported parent).
        let context = self
            .subscriber
            .get()
            .and_then(WeakDispatch::upgrade)
            .and_then(|dispatch| crate::trace_context::context_of_current_span_in(&dispatch));
        let Some(context) = context else {
            return self.inner.format_event(ctx, writer, event);
        };
        let span = context.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let (trace_id, span_id) = (ids.trace_id(), ids.span_id());
        match (self.json, line.strip_prefix('{')) {
            (true, Some(rest)) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            _ => writeln!(
                writer,
                "{} trace_id={trace_id} span_id={span_id}",
                line.trim_end_matches('\n')
            ),
        }
    }
}

tokio::task_local! {
    /// The program whose work the current task does, in a process that runs several.
    static PROGRAM: &'static str;
}

/// Runs `work` as `program`'s: the spans where its work begins ([`program`]) name it.
pub async fn in_program<F: Future>(program: &'static str, work: F) -> F::Output {
    PROGRAM.scope(program, work).await
}

/// The name of the running executable (`wallet-service`, `stack`), the default
/// `OTEL_SERVICE_NAME`.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|path| {
            std::path::Path::new(&path)
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "platform".to_owned())
}

/// The program whose work the current task does (see [`in_program`]), or `""`.
pub fn program() -> &'static str {
    PROGRAM.try_with(|program| *program).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `from_vars` reads for `program` from the variables `pairs`.
    fn read(program: &str, pairs: &[(&str, &str)]) -> Result<Option<TraceExport>, String> {
        TraceExport::from_vars(program, |key| {
            pairs
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| (*value).to_owned())
        })
        .map_err(|error| error.to_string())
    }

    /// Log output, kept for the test to read.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut captured) = self.0.lock() {
                captured.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines logged, in `json` or text, by an event in a span and one outside any.
    fn lines_logged(json: bool) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = SubscriberCell::default();
        let lines = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let lines = if json {
            lines
                .json()
                .flatten_event(true)
                .map_event_format(|inner| WithTraceIds::new(inner, true, &subscriber))
                .boxed()
        } else {
            lines
                .map_event_format(|inner| WithTraceIds::new(inner, false, &subscriber))
                .boxed()
        };
        // A provider without an exporter: spans get ids, and go nowhere. The layers are the
        // programs', with the log lines filtered as `RUST_LOG=warn` does: the `info` span is
        // exported, not logged, and a warning in it still carries its ids.
        let provider = SdkTracerProvider::builder().build();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(span_layer(&provider))
                .with(lines.with_filter(EnvFilter::new("warn"))),
        );
        let _ = subscriber.set(dispatch.downgrade());
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info_span!("work").in_scope(|| tracing::warn!("inside"));
            tracing::warn!("outside");
        });
        let bytes = captured
            .0
            .lock()
            .map(|bytes| bytes.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn is_hex(text: &str, len: usize) -> bool {
        text.len() == len && text.bytes().all(|byte| byte.is_ascii_hexdigit())
    }

    #[test]
    fn json_log_lines_carry_the_trace_and_span_ids() {
        let lines = lines_logged(true);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let inside: serde_json::Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(inside["message"], "inside", "{lines:?}");
        assert!(is_hex(inside["trace_id"].as_str().unwrap_or_default(), 32));
        assert!(is_hex(inside["span_id"].as_str().unwrap_or_default(), 16));
        let outside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap_or_default();
        assert_eq!(outside["message"], "outside");
        assert!(outside.get("trace_id").is_none());
    }

    #[test]
    fn text_log_lines_carry_the_trace_and_span_ids() {
        let lines = lines_logged(false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let field = |line: &str, key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&format!("{key}=")))
                .map(str::to_owned)
        };
        assert!(lines[0].contains("inside"));
        assert!(field(&lines[0], "trace_id").is_some_and(|id| is_hex(&id, 32)));
        assert!(field(&lines[0], "span_id").is_some_and(|id| is_hex(&id, 16)));
        assert!(!lines[1].contains("trace_id"), "{lines:?}");
    }

    /// The names of the spans exported to it, in the order they ended.
    #[derive(Debug, Clone, Default)]
    struct Exported(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Exported {
        fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> impl Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
            if let Ok(mut names) = self.0.lock() {
                names.extend(batch.into_iter().map(|span| span.name.into_owned()));
            }
            std::future::ready(Ok(()))
        }
    }

    #[test]
    fn only_the_platforms_own_spans_from_info_up_are_exported() {
        let exported = Exported::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exported.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(span_layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            // lapin opens an `info` span for each connection's I/O loop.
            tracing::info_span!(target: "lapin::io_loop", "io_loop").in_scope(|| {
                tracing::info_span!(target: "platform::grpc", "grpc").in_scope(|| {
                    tracing::info_span!(target: "h2::proto::streams", "stream").in_scope(|| {});
                    tracing::debug_span!(target: "platform::outbox", "detail").in_scope(|| {});
                });
            });
            tracing::info_span!(target: "gateway", "http").in_scope(|| {});
            tracing::info_span!(target: "gatewayish", "lookalike").in_scope(|| {});
        });
        let names = exported
            .0
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default();
        assert_eq!(names, ["grpc", "http"]);
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        let none = read("gateway", &[(TraceExport::SERVICE_NAME, "x")]);
        assert_eq!(none, Ok(None));
        let empty = read("gateway", &[(TraceExport::ENDPOINT, " ")]);
        assert_eq!(empty, Ok(None));
    }

    #[tokio::test]
    async fn installing_without_an_endpoint_builds_no_exporter() {
        let telemetry = install(LogFormat::Text, None).map_err(|error| error.to_string());
        assert!(telemetry.is_ok_and(|telemetry| !telemetry.is_exporting()));
        assert!(crate::trace_context::current().is_empty());
    }

    #[test]
    fn the_service_name_defaults_to_the_program() {
        let endpoint = (TraceExport::ENDPOINT, "http://127.0.0.1:4317");
        let export = read("wallet-service", &[endpoint]);
        assert_eq!(
            export,
            Ok(Some(TraceExport {
                endpoint: endpoint.1.to_owned(),
                service_name: "wallet-service".to_owned(),
                sampling: Sampling::default(),
            }))
        );
        let named = read(
            "wallet-service",
            &[endpoint, (TraceExport::SERVICE_NAME, "wallet-eu")],
        );
        assert!(named.is_ok_and(|export| export.is_some_and(|e| e.service_name == "wallet-eu")));
    }

    #[test]
    fn the_sampler_variables_are_honoured() {
        let endpoint = (TraceExport::ENDPOINT, "http://127.0.0.1:4317");
        let sampling = |sampler: &str, arg: &str| {
            read(
                "gateway",
                &[
                    endpoint,
                    (TraceExport::SAMPLER, sampler),
                    (TraceExport::SAMPLER_ARG, arg),
                ],
            )
            .map(|export| export.map(|export| export.sampling))
        };
        assert_eq!(
            sampling("parentbased_traceidratio", "0.25"),
            Ok(Some(Sampling {
                parent_based: true,
                ratio: 0.25
            }))
        );
        assert_eq!(
            sampling("always_off", "1"),
            Ok(Some(Sampling {
                parent_based: false,
                ratio: 0.0
            }))
        );
        assert!(sampling("parentbased_traceidratio", "2").is_err());
        assert!(sampling("sometimes", "1").is_err());
    }
}
