//! W3C trace context and baggage across an HTTP hop.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[cfg(test)]
pub(crate) fn propagator() -> TextMapCompositePropagator {
    propagator_for(crate::Propagators::default())
}

/// The composite of the propagators `which` turns on (none: one that injects and extracts nothing).
pub(crate) fn propagator_for(which: crate::Propagators) -> TextMapCompositePropagator {
    let mut all: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> = Vec::new();
    if which.trace_context {
        all.push(Box::new(TraceContextPropagator::new()));
    }
    if which.baggage {
        all.push(Box::new(BaggagePropagator::new()));
    }
    TextMapCompositePropagator::new(all)
}

struct Headers<'a>(&'a mut http::HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

struct ReadHeaders<'a>(&'a http::HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`, `baggage`) into outgoing headers,
/// e.g. of a reqwest request: `client.get(url).headers(headers)`. Uses the propagator [`crate::init`]
/// installed (W3C trace context and baggage); does nothing before it.
pub fn inject(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Headers(headers)));
}

/// The context incoming headers carry (empty when they carry none).
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&ReadHeaders(headers)))
}

/// The W3C trace context (`traceparent`, `tracestate`) and `baggage` of incoming headers, when they
/// carry a valid `traceparent` or a `baggage` header: what [`crate::layer::ServerLayer`] reads on every
/// request, straight onto an empty context (no lock on the global propagator, no copy of the current
/// context). The `traceparent` is read as W3C Trace Context level 1 writes it (see [`traceparent`]);
/// `tracestate` and `baggage`, when present, by the SDK's own parsers.
#[cfg(feature = "tower")]
pub(crate) fn extract_w3c(headers: &http::HeaderMap) -> Option<Context> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceState};
    const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
    const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
    const BAGGAGE: http::HeaderName = http::HeaderName::from_static("baggage");
    let parent = headers.get(TRACEPARENT).and_then(|v| traceparent(v.as_bytes()));
    let cx = match parent {
        Some((trace_id, span_id, flags)) => {
            let state = headers
                .get(TRACESTATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<TraceState>().ok())
                .unwrap_or_default();
            let remote = SpanContext::new(trace_id, span_id, flags, true, state);
            Context::new().with_remote_span_context(remote)
        }
        None => Context::new(),
    };
    match headers.contains_key(BAGGAGE) {
        true => Some(BaggagePropagator::new().extract_with_context(&cx, &ReadHeaders(headers))),
        false => parent.is_some().then_some(cx),
    }
}

/// A `traceparent` value as W3C Trace Context level 1 defines it: `VERSION-TRACEID-PARENTID-FLAGS`,
/// lowercase hex of exactly 2, 32, 16 and 2 digits; version `ff` is invalid; version `00` has nothing
/// after the flags, a later version may continue after a `-`; all-zero ids are invalid. The flags keep
/// the sampled bit alone (the others are unknown to level 1). Stricter than the SDK's propagator, which
/// takes ids of any length up to the maximum (`00-abc-...`), an uppercase or `+`-signed version, and
/// a trailing `-` after version `00`.
#[cfg(feature = "tower")]
fn traceparent(
    value: &[u8],
) -> Option<(opentelemetry::trace::TraceId, opentelemetry::trace::SpanId, opentelemetry::trace::TraceFlags)> {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
    fn hex(digits: &[u8]) -> Option<u128> {
        digits.iter().try_fold(0u128, |n, &d| {
            let digit = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                _ => return None,
            };
            Some(n << 4 | u128::from(digit))
        })
    }
    let value = value.trim_ascii();
    let (head, rest) = value.split_at_checked(55)?;
    let version = hex(&head[0..2])?;
    let continues = match rest.first() {
        None => true,
        Some(b'-') => version != 0,
        Some(_) => false,
    };
    if version == 0xff || !continues || head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return None;
    }
    let trace_id = hex(&head[3..35])?;
    let span_id = u64::try_from(hex(&head[36..52])?).ok()?;
    let flags = u8::try_from(hex(&head[53..55])?).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some((TraceId::from(trace_id), SpanId::from(span_id), TraceFlags::new(flags) & TraceFlags::SAMPLED))
}

/// The trace id of the current span, when it is sampled (for exemplars: the metrics crate's RED layer
/// takes this function).
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    (sc.is_valid() && sc.is_sampled()).then(|| sc.trace_id().to_string())
}

#[cfg(all(test, feature = "tower"))]
mod tests {
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;

    /// The server layer's extraction gives what the composite W3C propagator gives on an empty context:
    /// the same span context (ids, flags, remote, trace state) and the same baggage, or nothing when
    /// the `traceparent` is missing or invalid and there is no baggage.
    #[track_caller]
    fn check(headers: &[(&'static str, &str)]) {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(http::HeaderName::from_static(name), http::HeaderValue::from_str(value).unwrap());
        }
        let reference =
            super::propagator().extract_with_context(&super::Context::new(), &super::ReadHeaders(&map));
        let ours = super::extract_w3c(&map);
        let expected = reference.span().span_context().clone();
        let has_baggage = map.contains_key("baggage");
        match ours {
            None => assert!(
                !expected.is_valid() && !has_baggage,
                "{headers:?}: valid {expected:?} or baggage, extracted nothing"
            ),
            Some(cx) => {
                assert!(expected.is_valid() || has_baggage, "{headers:?}: extracted from nothing");
                assert_eq!(cx.span().span_context(), &expected, "{headers:?}");
                let baggage = |cx: &super::Context| {
                    let mut pairs: Vec<String> =
                        cx.baggage().iter().map(|(k, (v, _))| format!("{k}={v}")).collect();
                    pairs.sort();
                    pairs
                };
                assert_eq!(baggage(&cx), baggage(&reference), "{headers:?}");
            }
        }
    }

    #[test]
    fn w3c_extraction_matches_the_propagators() {
        const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        check(&[]);
        check(&[("traceparent", PARENT)]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")]);
        check(&[("traceparent", PARENT), ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")]);
        check(&[("traceparent", PARENT), ("baggage", "user=alice,tenant=42;prop=x")]);
        check(&[("baggage", "user=alice")]);
        check(&[("traceparent", "garbage"), ("baggage", "user=alice")]);
        check(&[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")]);
        check(&[("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
        check(&[("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")]);
        check(&[("traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")]);
        check(&[("traceparent", "garbage")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09")]);
        check(&[("traceparent", " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ")]);
        check(&[("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
        check(&[("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01")]);
        check(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01")]);
        check(&[("traceparent", "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff")]);
    }

    /// Where the SDK's propagator is looser than the W3C grammar, the layer follows the grammar: these
    /// the SDK takes and the layer ignores (the request starts a new trace).
    #[test]
    fn traceparents_outside_the_w3c_grammar_are_ignored() {
        for value in [
            "00-abc-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        ] {
            let mut map = http::HeaderMap::new();
            map.insert("traceparent", http::HeaderValue::from_static(value));
            assert!(super::extract_w3c(&map).is_none(), "{value}");
        }
        let mut map = http::HeaderMap::new();
        map.insert("traceparent", http::HeaderValue::from_static("00-abc-00f067aa0ba902b7-01"));
        let sdk = super::propagator().extract_with_context(&super::Context::new(), &super::ReadHeaders(&map));
        assert!(sdk.span().span_context().is_valid(), "the SDK became strict: fold these into check()");
    }
}
