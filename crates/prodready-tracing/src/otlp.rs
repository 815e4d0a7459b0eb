//! OTLP over http/protobuf: a span exporter that writes the `ExportTraceServiceRequest` straight from
//! the SDK's spans into the request body.
//!
//! opentelemetry-otlp converts each batch into the generated protobuf structs first (a `String` for
//! every attribute key and value, a `Vec` for every id) and then encodes them: on a service's hot path
//! that conversion cost more than the span itself (bench/RESULTS.md). Here each field is written once,
//! in the order and form prost writes it (tests compare the bytes with opentelemetry-proto's encoding of
//! the same spans), and only the body is allocated.

use std::future::Future;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::options::{Compression, Exporter, Options, Tls};
use crate::transport::Transport;
use crate::{Error, Result};

/// Sends spans to an OTLP/HTTP collector (`application/x-protobuf`) with a blocking client on the
/// batch processor's thread, retrying as the protocol says within the export timeout.
#[derive(Debug)]
pub struct OtlpHttpExporter {
    transport: Transport,
    compression: Compression,
    /// `ResourceSpans.resource`, encoded once when the provider sets the resource, and its schema URL.
    resource: Vec<u8>,
    schema_url: String,
}

impl OtlpHttpExporter {
    /// `endpoint`: the full traces URL (`http://127.0.0.1:4318/v1/traces`); `headers` go with every
    /// request (their values are never shown in errors).
    pub fn new(endpoint: &str, headers: &[(String, String)], timeout: Duration) -> Result<Self> {
        Self::build(endpoint, headers, timeout, &Tls::default(), Compression::None)
    }

    /// The exporter `options` describe (which must name OTLP): its endpoint (`/v1/traces` added to a
    /// bare base URL), headers, timeout, compression and TLS files.
    pub fn from_options(options: &Options) -> Result<Self> {
        let Exporter::Otlp { endpoint, headers, .. } = &options.exporter else {
            return Err(Error::Invalid("not an OTLP exporter".to_owned()));
        };
        let endpoint = crate::options::otlp_traces_url(endpoint);
        Self::build(&endpoint, headers, options.export_timeout, &options.tls, options.compression)
    }

    fn build(
        endpoint: &str,
        headers: &[(String, String)],
        timeout: Duration,
        tls: &Tls,
        compression: Compression,
    ) -> Result<Self> {
        let transport = Transport::new(endpoint, headers, timeout, tls, "OTLP")?;
        Ok(Self {
            transport,
            compression,
            resource: encode_resource(&Resource::builder_empty().build()),
            schema_url: String::new(),
        })
    }

    fn send(&self, batch: &[SpanData]) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let body = encode_request(&self.resource, &self.schema_url, batch);
        let answer = match self.compression {
            Compression::Gzip => self.transport.post("application/x-protobuf", Some("gzip"), gzip(&body)?)?,
            Compression::None => self.transport.post("application/x-protobuf", None, body)?,
        };
        // A partial success: spans the collector dropped are an error (they are lost, and `flush` and
        // `ping` should say so); a message alone is the protocol's warning.
        match rejected(&answer) {
            Some((count, message)) if count > 0 => {
                let count = usize::try_from(count).unwrap_or(usize::MAX).min(batch.len());
                Err(OTelSdkError::InternalFailure(format!(
                    "the collector rejected {count} of {} spans{}",
                    batch.len(),
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                )))
            }
            Some((_, message)) if !message.is_empty() => {
                tracing::warn!(target: "prodready_tracing", message, "the collector took the spans with a warning");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl SpanExporter for OtlpHttpExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.send(&batch))
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        self.transport.shut_down()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = encode_resource(resource);
        self.schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }
}

fn gzip(body: &[u8]) -> Result<Vec<u8>, OTelSdkError> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
}

/// A protobuf writer: fields are written in place and a nested message's length is patched in after
/// it (a byte is reserved; the rare message of 128 bytes or more moves over to make room).
struct Writer {
    buf: Vec<u8>,
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    /// A `bytes` or `string` field, left out when empty (proto3's default).
    fn bytes(&mut self, field: u32, value: &[u8]) {
        if !value.is_empty() {
            self.bytes_always(field, value);
        }
    }

    /// A `bytes` or `string` member of a `oneof`: written even when empty.
    fn bytes_always(&mut self, field: u32, value: &[u8]) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A `uint32`, `int32` or enum field, left out when zero.
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.key(field, FIXED32);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A nested message, written by `body`.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.key(field, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        if len < 0x80 {
            self.buf[at] = len as u8;
        } else {
            let mut prefix = Writer { buf: Vec::with_capacity(10) };
            prefix.varint(len as u64);
            self.buf.splice(at..=at, prefix.buf);
        }
    }

    fn key_value(&mut self, field: u32, kv: &KeyValue) {
        self.message(field, |w| {
            w.string(1, kv.key.as_str());
            w.message(2, |w| w.any_value(&kv.value));
        });
    }

    fn attributes<'a>(&mut self, field: u32, attributes: impl IntoIterator<Item = &'a KeyValue>) {
        for kv in attributes {
            self.key_value(field, kv);
        }
    }

    /// `AnyValue`: a `oneof`, so the member is written even when it holds its default.
    fn any_value(&mut self, value: &Value) {
        match value {
            Value::Bool(b) => {
                self.key(2, VARINT);
                self.varint(u64::from(*b));
            }
            Value::I64(i) => {
                self.key(3, VARINT);
                self.varint(*i as u64);
            }
            Value::F64(f) => {
                self.key(4, FIXED64);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::String(s) => self.bytes_always(1, s.as_str().as_bytes()),
            Value::Array(array) => self.message(5, |w| match array {
                Array::Bool(values) => {
                    values.iter().for_each(|v| w.message(1, |w| w.any_value(&Value::Bool(*v))));
                }
                Array::I64(values) => {
                    values.iter().for_each(|v| w.message(1, |w| w.any_value(&Value::I64(*v))));
                }
                Array::F64(values) => {
                    values.iter().for_each(|v| w.message(1, |w| w.any_value(&Value::F64(*v))));
                }
                Array::String(values) => {
                    values.iter().for_each(|v| w.message(1, |w| w.bytes_always(1, v.as_str().as_bytes())));
                }
                // A kind of array newer than this code: its text.
                other => w.message(1, |w| w.bytes_always(1, other.to_string().as_bytes())),
            }),
            other => self.bytes_always(1, other.to_string().as_bytes()),
        }
    }

    fn scope(&mut self, scope: &InstrumentationScope) {
        self.message(1, |w| {
            w.string(1, scope.name());
            w.string(2, scope.version().unwrap_or_default());
            w.attributes(3, scope.attributes());
        });
    }

    fn span(&mut self, span: &SpanData) {
        self.message(2, |w| {
            let context = &span.span_context;
            w.bytes(1, &context.trace_id().to_bytes());
            w.bytes(2, &context.span_id().to_bytes());
            w.string(3, &context.trace_state().header());
            if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
                w.bytes(4, &span.parent_span_id.to_bytes());
            }
            w.string(5, &span.name);
            w.uint(6, kind(&span.span_kind));
            w.fixed64(7, nanos(span.start_time));
            w.fixed64(8, nanos(span.end_time));
            w.attributes(9, &span.attributes);
            w.uint(10, u64::from(span.dropped_attributes_count));
            for event in span.events.iter() {
                w.message(11, |w| {
                    w.fixed64(1, nanos(event.timestamp));
                    w.string(2, &event.name);
                    w.attributes(3, &event.attributes);
                    w.uint(4, u64::from(event.dropped_attributes_count));
                });
            }
            w.uint(12, u64::from(span.events.dropped_count));
            for link in span.links.iter() {
                w.message(13, |w| {
                    let context = &link.span_context;
                    w.bytes(1, &context.trace_id().to_bytes());
                    w.bytes(2, &context.span_id().to_bytes());
                    w.string(3, &context.trace_state().header());
                    w.attributes(4, &link.attributes);
                    w.uint(5, u64::from(link.dropped_attributes_count));
                    w.fixed32(6, flags(context.is_remote(), context.trace_flags().to_u8()));
                });
            }
            w.uint(14, u64::from(span.links.dropped_count));
            w.message(15, |w| {
                if let Status::Error { description } = &span.status {
                    w.string(2, description);
                }
                w.uint(3, status_code(&span.status));
            });
            w.fixed32(16, flags(span.parent_span_is_remote, span.span_context.trace_flags().to_u8()));
        });
    }
}

/// `SpanKind` in OTLP's numbering (0 is "unspecified", which the SDK never produces).
fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn status_code(status: &Status) -> u64 {
    match status {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error { .. } => 2,
    }
}

/// The W3C trace flags, and whether the parent was remote (with the bit saying that this is known).
fn flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(trace_flags) | HAS_IS_REMOTE | if parent_is_remote { IS_REMOTE } else { 0 }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `ResourceSpans.resource` (field 1), encoded.
fn encode_resource(resource: &Resource) -> Vec<u8> {
    let mut w = Writer { buf: Vec::new() };
    w.message(1, |w| {
        for (key, value) in resource.iter() {
            w.message(1, |w| {
                w.string(1, key.as_str());
                w.message(2, |w| w.any_value(value));
            });
        }
    });
    w.buf
}

/// The `ExportTraceServiceRequest` for a batch: one `ResourceSpans`, one `ScopeSpans` per instrumentation
/// scope in the order the scopes first appear, each span under its scope.
fn encode_request(resource: &[u8], schema_url: &str, batch: &[SpanData]) -> Vec<u8> {
    // About what a span with a dozen attributes takes.
    let mut w = Writer { buf: Vec::with_capacity(resource.len() + batch.len() * 400 + 64) };
    // The scopes in the order they first appear, and which span goes under which.
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    let mut scope_of: Vec<usize> = Vec::with_capacity(batch.len());
    for span in batch {
        let scope = &span.instrumentation_scope;
        let index = scopes.iter().position(|s| *s == scope).unwrap_or_else(|| {
            scopes.push(scope);
            scopes.len() - 1
        });
        scope_of.push(index);
    }
    w.message(1, |w| {
        w.buf.extend_from_slice(resource);
        for (index, scope) in scopes.iter().enumerate() {
            w.message(2, |w| {
                w.scope(scope);
                for (span, _) in batch.iter().zip(&scope_of).filter(|(_, s)| **s == index) {
                    w.span(span);
                }
                w.string(3, scope.schema_url().unwrap_or_default());
            });
        }
        w.string(3, schema_url);
    });
    w.buf
}

/// A protobuf reader over a message's fields, for the little that is read from collectors' answers.
struct Reader<'a> {
    buf: &'a [u8],
}

enum Field<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first()?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// The next field's number and value; `None` at the end or on a malformed message.
    fn next(&mut self) -> Option<(u64, Field<'a>)> {
        let key = self.varint()?;
        let skip = |r: &mut Self, n: usize| {
            let (_, rest) = (n <= r.buf.len()).then(|| r.buf.split_at(n))?;
            r.buf = rest;
            Some(Field::Other)
        };
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => skip(self, 8)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok().filter(|&n| n <= self.buf.len())?;
                let (value, rest) = self.buf.split_at(len);
                self.buf = rest;
                Field::Len(value)
            }
            5 => skip(self, 4)?,
            _ => return None,
        };
        Some((key >> 3, field))
    }
}

/// From an `ExportTraceServiceResponse`: the spans the collector rejected and its message, when it
/// says anything (`partial_success`).
fn rejected(answer: &[u8]) -> Option<(i64, String)> {
    let mut response = Reader { buf: answer };
    while let Some((number, field)) = response.next() {
        if let (1, Field::Len(partial)) = (number, field) {
            let (mut count, mut message) = (0, String::new());
            let mut partial = Reader { buf: partial };
            while let Some((number, field)) = partial.next() {
                match (number, field) {
                    (1, Field::Varint(n)) => count = n as i64,
                    (2, Field::Len(text)) => {
                        message = String::from_utf8_lossy(text).chars().take(300).collect();
                    }
                    _ => {}
                }
            }
            return Some((count, message));
        }
    }
    None
}

/// The message of a `google.rpc.Status` (an OTLP/HTTP error answer), when there is one.
pub(crate) fn status_message(answer: &[u8]) -> Option<String> {
    let mut status = Reader { buf: answer };
    while let Some((number, field)) = status.next() {
        if let (2, Field::Len(text)) = (number, field) {
            return std::str::from_utf8(text).ok().map(|t| t.chars().take(300).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message as _;

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        let state: TraceState = state.parse().expect("a trace state");
        SpanContext::new(TraceId::from(trace), SpanId::from(span), TraceFlags::SAMPLED, remote, state)
    }

    /// A span with every field the exporter writes set to something (or left at its default, where
    /// `full` is false).
    fn span(id: u64, scope: &InstrumentationScope, full: bool) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_765_000_000_123_456_789 + id);
        let mut events = SpanEvents::default();
        let mut links = SpanLinks::default();
        let mut attributes = vec![KeyValue::new("http.request.method", "GET")];
        if full {
            attributes.extend([
                KeyValue::new("empty", ""),
                KeyValue::new("yes", true),
                KeyValue::new("no", false),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("negative", -42_i64),
                KeyValue::new("pi", 3.25_f64),
                KeyValue::new("unicode", "päivää ✓"),
                KeyValue::new("long", "x".repeat(300)),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![0, 1, -1, i64::MAX]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, -1.5]))),
                KeyValue::new(
                    "strings",
                    Value::Array(Array::String(vec![StringValue::from(""), StringValue::from("b")])),
                ),
                KeyValue::new("none", Value::Array(Array::I64(Vec::new()))),
            ]);
            events.events.push(Event::new(
                "retry",
                start + Duration::from_micros(5),
                vec![KeyValue::new("attempt", 2_i64)],
                1,
            ));
            events.events.push(Event::new("", start, Vec::new(), 0));
            events.dropped_count = 3;
            links.links.push(Link::new(
                context(7, 8, true, "vendor=v1,other=x"),
                vec![KeyValue::new("why", "batch")],
                2,
            ));
            links.dropped_count = 4;
        }
        SpanData {
            span_context: context(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                id,
                false,
                if full { "k=v" } else { "" },
            ),
            parent_span_id: if full { SpanId::from(0x00f0_67aa_0ba9_02b7) } else { SpanId::INVALID },
            parent_span_is_remote: full,
            span_kind: [
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Internal,
                SpanKind::Producer,
                SpanKind::Consumer,
            ][id as usize % 5]
                .clone(),
            name: Cow::Owned(format!("GET /stock/{id}")),
            start_time: start,
            end_time: start + Duration::from_micros(1500),
            attributes,
            dropped_attributes_count: if full { 5 } else { 0 },
            events,
            links,
            status: match id % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(if full { "it broke" } else { "" }),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    /// Our body for `batch` is byte for byte what opentelemetry-otlp sends: opentelemetry-proto's
    /// conversion of the same spans, encoded by prost.
    #[track_caller]
    fn check_same_as_prost(resource: &Resource, batch: Vec<SpanData>) {
        // The resource as the provider hands it to the exporter.
        let mut exporter =
            super::OtlpHttpExporter::new("http://127.0.0.1:9/v1/traces", &[], Duration::from_secs(1))
                .expect("an exporter");
        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, resource);
        let ours = super::encode_request(&exporter.resource, &exporter.schema_url, &batch);
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                batch,
                &ResourceAttributesWithSchema::from(resource),
            ),
        };
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("our body decodes");
        assert_eq!(decoded, theirs, "decoded");
        assert_eq!(ours, theirs.encode_to_vec(), "bytes");
    }

    #[test]
    fn the_body_is_what_opentelemetry_proto_encodes() {
        let plain = InstrumentationScope::builder("plain").build();
        let versioned = InstrumentationScope::builder("versioned")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();
        let resource = Resource::builder_empty()
            .with_schema_url(
                [KeyValue::new("service.name", "orders")],
                "https://opentelemetry.io/schemas/1.30.0",
            )
            .with_attributes([KeyValue::new("process.pid", 4242_i64), KeyValue::new("host.name", "web-1")])
            .build();
        check_same_as_prost(&resource, vec![span(1, &plain, false)]);
        check_same_as_prost(&resource, vec![span(2, &versioned, true)]);
        // Scopes interleaved: one ScopeSpans each, in the order they first appear.
        let batch: Vec<SpanData> =
            (0..40).map(|i| span(i, if i % 3 == 0 { &versioned } else { &plain }, i % 2 == 0)).collect();
        check_same_as_prost(&resource, batch.clone());
        check_same_as_prost(&Resource::builder_empty().build(), batch);
        // A batch big enough for a length of three bytes at the top.
        let batch: Vec<SpanData> = (0..600).map(|i| span(i, &plain, true)).collect();
        check_same_as_prost(&resource, batch);
    }

    #[track_caller]
    fn check_rejected(answer: &[u8], expected: Option<(i64, &str)>) {
        assert_eq!(super::rejected(answer), expected.map(|(n, m)| (n, m.to_owned())));
    }

    #[test]
    fn partial_success_is_read_and_malformed_answers_are_nothing() {
        check_rejected(b"", None);
        // partial_success { rejected_spans: 3, error_message: "full" }
        check_rejected(&[0x0a, 0x08, 0x08, 0x03, 0x12, 0x04, b'f', b'u', b'l', b'l'], Some((3, "full")));
        check_rejected(&[0x0a, 0x00], Some((0, "")));
        // A length past the end, a truncated varint, an unknown wire type.
        check_rejected(&[0x0a, 0x09, 0x08], None);
        check_rejected(&[0x08, 0x80], None);
        check_rejected(&[0x0f], None);
    }

    #[test]
    fn a_status_answer_gives_its_message() {
        // code: 3, message: "bad span"
        let answer = [0x08, 0x03, 0x12, 0x08, b'b', b'a', b'd', b' ', b's', b'p', b'a', b'n'];
        assert_eq!(super::status_message(&answer).as_deref(), Some("bad span"));
        assert_eq!(super::status_message(b"\x08\x03"), None);
    }

    #[test]
    fn a_long_nested_message_gets_a_two_byte_length() {
        let mut w = super::Writer { buf: Vec::new() };
        w.message(1, |w| w.bytes(2, &[7; 200]));
        // key 1/LEN, length 203 (0xcb 0x01), then key 2/LEN, length 200 (0xc8 0x01).
        assert_eq!(&w.buf[..5], &[0x0a, 0xcb, 0x01, 0x12, 0xc8]);
        assert_eq!(w.buf.len(), 206);
    }
}
