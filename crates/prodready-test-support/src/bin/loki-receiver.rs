//! The Loki-compatible receiver as a process, for benchmarks: `loki-receiver [--port N] [--keep]`.
//! Prints its URL on stdout and serves until killed. `GET /stats` reports lines, distinct lines and
//! duplicates; by default it only counts (constant memory per distinct line).

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let keep = args.iter().any(|a| a == "--keep");
    let receiver = prodready_test_support::LokiReceiver::start_with(port, keep);
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", receiver.url());
    let _ = out.flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
