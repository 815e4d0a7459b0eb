use prodready::schedule::{Job, on_calendar, render};

/// Converts `cron` and checks systemd accepts the result (`systemd-analyze calendar`).
fn check(cron: &str, expected: &str) {
    let calendar = on_calendar(cron).unwrap_or_else(|e| panic!("{cron}: {e}"));
    assert_eq!(calendar, expected, "{cron}");
    let out =
        std::process::Command::new("systemd-analyze").args(["calendar", &calendar]).output().unwrap_or_else(
            |e| panic!("systemd-analyze is missing ({e}): install it with `apt-get install systemd`"),
        );
    assert!(out.status.success(), "{calendar}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cron_expressions_become_systemd_calendars() {
    check("17 2 * * *", "*-*-* 02:17:00");
    check("47 3 * * 0", "Sun *-*-* 03:47:00");
    check("0 4 * * 1,3,5", "Mon,Wed,Fri *-*-* 04:00:00");
    check("30 1 1 * *", "*-*-01 01:30:00");
    check("0 */6 * * *", "*-*-* 00/6:00:00");
    check("15 2 * 1,7 *", "*-01,07-* 02:15:00");
}

#[test]
fn unsupported_cron_is_refused_with_the_fix() {
    for bad in ["17 2 * *", "61 2 * * *", "0 2 * * 9", "@daily"] {
        let err = on_calendar(bad).unwrap_err().to_string();
        assert!(err.contains("write five fields like `17 2 * * *`"), "{bad}: {err}");
    }
}

#[test]
fn units_and_crontab_lines_for_every_job() {
    let jobs = [
        Job { name: "run", cron: "17 2 * * *".into(), command: "/usr/local/bin/prodready backup run".into() },
        Job {
            name: "verify",
            cron: "47 3 * * 0".into(),
            command: "/usr/local/bin/prodready backup verify latest".into(),
        },
    ];
    let text = render(&jobs, "postgres").unwrap();
    assert!(text.contains("\n17 2 * * * /usr/local/bin/prodready backup run\n"), "{text}");
    assert!(text.contains("# /etc/systemd/system/prodready-backup-verify.timer\n[Unit]"), "{text}");
    assert!(text.contains("OnCalendar=Sun *-*-* 03:47:00\nPersistent=true"), "{text}");
    assert!(text.contains("ExecStart=/usr/local/bin/prodready backup run\n"), "{text}");
    assert!(text.contains("User=postgres\n"), "{text}");
    assert!(
        text.ends_with("systemctl enable --now prodready-backup-run.timer prodready-backup-verify.timer\n"),
        "{text}"
    );

    // systemd accepts the units as written.
    let dir = tempfile::tempdir().unwrap();
    for block in text.split("\n# /etc/systemd/system/").skip(1) {
        let (name, body) = block.split_once('\n').unwrap();
        let body = body.split("\n# enable").next().unwrap();
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let units: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(units.len(), 4);
    let out = std::process::Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    let complaints = String::from_utf8_lossy(&out.stderr);
    // Without a running systemd, verify still parses every unit; it may only complain that the binary
    // in ExecStart is absent on this machine.
    for line in complaints.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("/usr/local/bin/prodready")
                || line.contains("is not executable")
                || line.contains("Command"),
            "{complaints}"
        );
    }
}
