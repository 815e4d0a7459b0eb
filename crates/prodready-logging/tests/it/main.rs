//! prodready-logging against its peers: the Loki-compatible receiver (cross-checked with Python's
//! protobuf runtime), axum services and real files.

mod client;
mod format;
mod proto;
mod request;
mod ship;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// A `MakeWriter` that keeps what is written, for reading the JSON lines back.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line written so far, parsed.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

/// The peers' Python (with protobuf and cramjam), or a panic naming the install step.
pub fn python() -> std::path::PathBuf {
    let python = prodready_test_support::peers_dir().join("venv/bin/python");
    assert!(python.is_file(), "{} is missing; {}", python.display(), prodready_test_support::INSTALL_STEP);
    python
}

/// Runs the Python implementation of Loki's payload (`decode` or `encode`) on `input`.
pub fn loki_proto_py(mode: &str, input: &[u8]) -> Vec<u8> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/loki_proto.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "loki_proto.py {mode}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}
