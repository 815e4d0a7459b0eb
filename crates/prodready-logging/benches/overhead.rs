//! Per-event cost of our JSON layer against `tracing-subscriber`'s JSON format, both writing to a sink:
//! one event with 5 fields, outside any span and inside two nested spans with fields. Best of 7 runs of
//! 200,000 events each. `cargo bench -p prodready-logging --bench overhead` (run by `cargo xtask bench
//! logging`).

use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt as _;

const EVENTS: u32 = 200_000;
const RUNS: usize = 7;

fn events(in_spans: bool) {
    let run = || {
        for i in 0..EVENTS {
            tracing::info!(
                order_id = i,
                amount = 12.5,
                currency = "EUR",
                paid = true,
                customer = "c-42",
                "order paid"
            );
        }
    };
    if in_spans {
        let outer = tracing::info_span!(
            "request",
            request_id = "0f8fad5b-d9cb-469f-a165-70867728950e",
            route = "/orders/{id}"
        );
        let _outer = outer.enter();
        let inner = tracing::info_span!("db", table = "orders");
        let _inner = inner.enter();
        run();
    } else {
        run();
    }
}

fn best<S: tracing::Subscriber + Send + Sync + 'static>(make: impl Fn() -> S, in_spans: bool) -> Duration {
    (0..RUNS)
        .map(|_| {
            let subscriber = make();
            tracing::subscriber::with_default(subscriber, || {
                let start = Instant::now();
                events(in_spans);
                start.elapsed()
            })
        })
        .min()
        .unwrap_or_default()
}

#[allow(clippy::print_stdout)]
fn main() {
    println!("| case | tracing-subscriber JSON | prodready JSON | ratio | target |");
    println!("|---|---|---|---|---|");
    for (name, in_spans) in [("event, 5 fields", false), ("same, inside 2 spans with 3 fields", true)] {
        let plain = best(
            || {
                tracing_subscriber::registry()
                    .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::sink))
            },
            in_spans,
        );
        let ours = best(
            || tracing_subscriber::registry().with(prodready_logging::JsonLayer::new(std::io::sink)),
            in_spans,
        );
        let per = |d: Duration| d.as_nanos() as f64 / f64::from(EVENTS);
        println!(
            "| {name} | {:.0} ns/event | {:.0} ns/event | {:.2} | <= 1.5 |",
            per(plain),
            per(ours),
            per(ours) / per(plain)
        );
    }
}
