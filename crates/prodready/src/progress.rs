//! Progress on stderr for long work; nothing at all when stderr is not a terminal, `NO_COLOR` is set to a
//! non-empty value (no-color.org) or `TERM=dumb` (the bar redraws itself with escape codes).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static ALLOWED: AtomicBool = AtomicBool::new(true);

/// Whether bars may draw at all, from the environment (set once, before any command runs).
pub(crate) fn configure(env: &crate::env::Env) {
    // no-color.org: only a non-empty `NO_COLOR` counts (`Env::get` also reads an empty value as unset).
    let no_color = env.get(crate::env::NO_COLOR).is_some_and(|v| !v.is_empty());
    let off = no_color || env.get(crate::env::TERM) == Some("dumb");
    ALLOWED.store(!off, Ordering::Relaxed);
}

/// A progress bar that exists only on a terminal.
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar counting `total` units of `what`.
    pub(crate) fn units(what: &str, total: u64) -> Self {
        Self::with(total, &format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"))
    }

    /// A bar counting bytes (its length set later by `set_length`).
    pub(crate) fn bytes(what: &str) -> Self {
        Self::with(
            0,
            &format!("{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{msg}}"),
        )
    }

    fn with(total: u64, template: &str) -> Self {
        let bar = (ALLOWED.load(Ordering::Relaxed) && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar }
    }

    pub(crate) fn set_length(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(n);
        }
    }

    pub(crate) fn set_position(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(n);
        }
    }

    pub(crate) fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub(crate) fn message(&self, msg: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl prodready_checklist::Observer for Bar {
    fn started(&self, meta: &prodready_checklist::Meta) {
        self.message(meta.id.clone());
    }

    fn finished(&self, result: &prodready_checklist::CheckResult) {
        self.inc(1);
        self.message(format!("{} {}", result.meta.id, result.status));
    }
}

impl prodready_backup::Progress for Bar {
    fn planned(&self, _units: usize, bytes: u64) {
        self.set_length(bytes);
    }

    fn bytes(&self, n: u64) {
        self.inc(n);
    }

    fn done(&self, what: &str) {
        self.message(what.to_owned());
    }
}

impl prodready_scan::secrets::Progress for Bar {
    fn scanned(&self, bytes: u64) {
        self.inc(bytes);
    }
}
