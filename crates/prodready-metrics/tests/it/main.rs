//! prodready-metrics against real peers: promtool checks the classic rendering, a real Pushgateway
//! receives pushes.

mod exposition;
mod output;

/// Fails unless `promtool check metrics` accepts `text` (the classic text format).
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(prodready_test_support::peer_bin("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- input:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
