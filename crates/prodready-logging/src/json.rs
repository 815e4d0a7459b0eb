//! The JSON event format: one object per line with `timestamp`, `level`, `target`, the event's fields
//! (`message` among them), the fields of every enclosing span (the innermost wins; an event field beats
//! them all), `span` (the innermost span's name), and `trace_id`/`span_id` when an OpenTelemetry context
//! is present.
//!
//! Span fields are rendered to JSON once, when the span records them, and stored in the span's
//! extensions; an event only copies them. (`tracing-subscriber`'s JSON format re-parses them from a
//! string on every event.)

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// A span's fields, rendered: `(name, JSON value)`.
#[derive(Debug, Default)]
pub(crate) struct SpanFields(pub(crate) Vec<(&'static str, String)>);

/// Writes one JSON value per field.
pub(crate) struct JsonVisitor<'a> {
    pub(crate) fields: &'a mut Vec<(&'static str, String)>,
}

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: String) {
        let name = field.name();
        // `log` records arrive with `log.`-prefixed metadata fields: keep them out of the object.
        if name.starts_with("log.") {
            return;
        }
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let mut out = String::with_capacity(value.len() + 2);
        escape_into(&mut out, value);
        self.put(field, out);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, if value { "true".to_owned() } else { "false".to_owned() });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.put(field, value.to_string());
        } else {
            self.put(field, format!("\"{value}\""));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &prodready_stdx::error::chain(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

/// Appends `value` as a JSON string (quotes included).
pub(crate) fn escape_into(out: &mut String, value: &str) {
    out.push('"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

/// What an event carries besides its line: the ids that become Loki structured metadata.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Correlation {
    pub(crate) request_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
}

/// Renders `event` as one JSON object (no newline) into `out`.
pub(crate) fn render<S>(event: &Event<'_>, ctx: &Context<'_, S>, out: &mut String) -> Correlation
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    out.push_str("{\"timestamp\":\"");
    let _ = write!(out, "{}", humantime::format_rfc3339_micros(std::time::SystemTime::now()));
    out.push_str("\",\"level\":\"");
    out.push_str(meta.level().as_str());
    out.push_str("\",\"target\":");
    escape_into(out, meta.target());
    let mut fields: Vec<(&'static str, String)> = Vec::with_capacity(8);
    event.record(&mut JsonVisitor { fields: &mut fields });
    let mut correlation = Correlation::default();
    if let Some(scope) = ctx.event_scope(event) {
        let mut innermost = true;
        for span in scope {
            if innermost {
                out.push_str(",\"span\":");
                escape_into(out, span.name());
                innermost = false;
            }
            if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                for (name, value) in &span_fields.0 {
                    if !fields.iter().any(|(k, _)| k == name) {
                        fields.push((name, value.clone()));
                    }
                }
            }
        }
    }
    // tracing-opentelemetry activates a span's OpenTelemetry context while the span is entered, so the
    // current context covers both its spans and contexts set through the OpenTelemetry API.
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TraceContextExt as _;
        let cx = opentelemetry::Context::current();
        let span_context = cx.span().span_context().clone();
        if span_context.is_valid() {
            correlation.trace_id = Some(span_context.trace_id().to_string());
            correlation.span_id = Some(span_context.span_id().to_string());
        }
    }
    for (name, value) in &fields {
        out.push(',');
        escape_into(out, name);
        out.push(':');
        out.push_str(value);
        if *name == "request_id" {
            correlation.request_id = Some(value.trim_matches('"').to_owned());
        }
    }
    if let Some(trace_id) = &correlation.trace_id {
        out.push_str(",\"trace_id\":\"");
        out.push_str(trace_id);
        out.push_str("\",\"span_id\":\"");
        out.push_str(correlation.span_id.as_deref().unwrap_or_default());
        out.push('"');
    }
    out.push('}');
    correlation
}

/// Records span fields for [`render`]; shared by the JSON and Loki layers (whichever sees a span first).
pub(crate) fn record_span<S>(
    attrs: &tracing::span::Attributes<'_>,
    id: &tracing::span::Id,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    let mut extensions = span.extensions_mut();
    if extensions.get_mut::<SpanFields>().is_none() {
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor { fields: &mut fields.0 });
        extensions.insert(fields);
    }
}

pub(crate) fn record_values<S>(
    id: &tracing::span::Id,
    values: &tracing::span::Record<'_>,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    let mut extensions = span.extensions_mut();
    if let Some(fields) = extensions.get_mut::<SpanFields>() {
        values.record(&mut JsonVisitor { fields: &mut fields.0 });
    }
}

/// The JSON log layer: one line per event to a [`MakeWriter`] (stderr, stdout, a file, a test buffer).
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> std::fmt::Debug for JsonLayer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLayer").finish_non_exhaustive()
    }
}

impl<W> JsonLayer<W> {
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

thread_local! {
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> tracing_subscriber::Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        record_span(attrs, id, &ctx);
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        record_values(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        BUFFER.with(|buffer| {
            // A re-entrant event (logged while writing one) gets its own buffer.
            let mut fresh = String::new();
            let mut guard = buffer.try_borrow_mut();
            let out = match &mut guard {
                Ok(buf) => &mut **buf,
                Err(_) => &mut fresh,
            };
            out.clear();
            render(event, &ctx, out);
            out.push('\n');
            let _ = self.make_writer.make_writer_for(event.metadata()).write_all(out.as_bytes());
            if out.capacity() > 64 * 1024 {
                *out = String::new();
            }
        });
    }
}
