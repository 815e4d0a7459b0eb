//! A page in a real browser: Debian's headless Chromium, driven by playwright-core through
//! `browser/check-page.mjs`, loads a URL, records console errors, requests to other origins (blocked, so a
//! check never leaves the machine) and failed requests, and takes a full-page screenshot.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{INSTALL_STEP, peers_dir};

/// Where Debian's chromium package installs the browser; the script launches this path.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The script bounds itself at 30 s; this is the backstop should Node itself hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a page did when loaded in Chromium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageReport {
    /// `document.title`.
    pub title: String,
    /// The HTTP status of the document, if it came over HTTP.
    pub status: Option<u16>,
    /// Console messages of type error, and uncaught exceptions as `uncaught: MESSAGE`.
    pub console_errors: Vec<String>,
    /// `METHOD URL` of every request (or `WEBSOCKET URL`) to another origin than the page's.
    pub external_requests: Vec<String>,
    /// `METHOD URL: REASON` of every same-origin request that failed or answered 400 or more.
    pub failed_requests: Vec<String>,
    /// `document.body.innerText` once the page loaded and the network went idle.
    pub text: String,
}

impl PageReport {
    /// Panics, with the whole report, unless the document answered 200 and the page logged no error,
    /// requested nothing from another origin and had no request fail.
    pub fn assert_clean(&self) {
        assert!(
            self.status == Some(200)
                && self.console_errors.is_empty()
                && self.external_requests.is_empty()
                && self.failed_requests.is_empty(),
            "the page is not clean: {self:#?}"
        );
    }
}

/// Loads `url` in headless Chromium, waits for the load event and an idle network, writes a full-page PNG
/// to `screenshot` and reports what happened. Blocks for up to a minute (usually about a second).
///
/// Panics with the install step when Chromium, Node.js or playwright-core is missing (a test whose peer is
/// missing fails, never passes), and with the script's message when the page cannot be loaded.
pub fn check_page(url: &str, screenshot: &Path) -> PageReport {
    let modules = peers_dir().join("node/node_modules");
    if !Path::new(CHROMIUM).is_file() {
        panic!("Chromium is missing ({CHROMIUM}): {INSTALL_STEP}");
    }
    if !modules.join("playwright-core/package.json").is_file() {
        panic!("playwright-core is missing (looked in {}): {INSTALL_STEP}", modules.display());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check-page.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(url)
        .arg(screenshot)
        .env("NODE_PATH", &modules)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run node: {e}; install Node.js 18 or later (Debian: `apt-get install nodejs`)")
        });
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("checking {url} in Chromium took over {} s", DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    if !status.success() {
        panic!("checking {url} in Chromium failed ({status}):\n{}", stderr.trim());
    }
    let report = parse(&stdout).unwrap_or_else(|e| panic!("{} printed {e}: {stdout}", script.display()));
    if !screenshot.metadata().is_ok_and(|m| m.len() > 0) {
        panic!("no screenshot at {} after checking {url}", screenshot.display());
    }
    report
}

/// [`check_page`] on tokio's blocking pool, for async tests whose server runs on the test's own runtime
/// (blocking that runtime's only thread would keep the page from ever being served).
pub async fn check_page_async(url: &str, screenshot: &Path) -> PageReport {
    let (url, screenshot) = (url.to_owned(), PathBuf::from(screenshot));
    tokio::task::spawn_blocking(move || check_page(&url, &screenshot))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn parse(stdout: &str) -> Result<PageReport, String> {
    let json: serde_json::Value = serde_json::from_str(stdout).map_err(|e| format!("no JSON ({e})"))?;
    let text = |key: &str| {
        json.get(key).and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| format!("no string `{key}`"))
    };
    let list = |key: &str| {
        json.get(key)
            .and_then(|v| v.as_array())
            .and_then(|items| items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| format!("no list of strings `{key}`"))
    };
    Ok(PageReport {
        title: text("title")?,
        status: json.get("status").and_then(|v| v.as_u64()).and_then(|s| u16::try_from(s).ok()),
        console_errors: list("console_errors")?,
        external_requests: list("external_requests")?,
        failed_requests: list("failed_requests")?,
        text: text("text")?,
    })
}
