//! W3C trace context and baggage across an HTTP hop.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub(crate) fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
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
/// carry a valid `traceparent` or a `baggage` header: what [`crate::layer::ServerLayer`] reads on every request. It is the
/// W3C propagators' own extraction, but straight onto an empty context: no lock on the global
/// propagator, no copy of the current context, and the baggage propagator only when there is a
/// `baggage` header.
#[cfg(feature = "tower")]
pub(crate) fn extract_w3c(headers: &http::HeaderMap) -> Option<Context> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    let headers = ReadHeaders(headers);
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &headers);
    match headers.0.contains_key("baggage") {
        true => Some(BaggagePropagator::new().extract_with_context(&cx, &headers)),
        false => cx.has_active_span().then_some(cx),
    }
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
    }
}
