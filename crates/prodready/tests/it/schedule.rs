use prodready::schedule::{Job, crontab_command, on_calendar, render};

/// Converts `cron` and checks systemd accepts each expression (`systemd-analyze calendar`) and that each
/// one comes (a timer whose expressions never elapse would never run the job).
fn check(cron: &str, expected: &[&str]) {
    let calendars = on_calendar(cron).unwrap_or_else(|e| panic!("{cron}: {e}"));
    assert_eq!(calendars, expected, "{cron}");
    for calendar in &calendars {
        let out = std::process::Command::new("systemd-analyze")
            .args(["calendar", calendar])
            .output()
            .unwrap_or_else(|e| {
                panic!("systemd-analyze is missing ({e}): install it with `apt-get install systemd`")
            });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{calendar}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("Next elapse:") && !stdout.contains("never"), "{calendar}: {stdout}");
    }
}

#[test]
fn cron_expressions_become_systemd_calendars() {
    check("17 2 * * *", &["*-*-* 02:17:00"]);
    check("47 3 * * 0", &["Sun *-*-* 03:47:00"]);
    check("0 4 * * 1,3,5", &["Mon,Wed,Fri *-*-* 04:00:00"]);
    check("30 1 1 * *", &["*-*-01 01:30:00"]);
    check("0 */6 * * *", &["*-*-* 00/6:00:00"]);
    check("15 2 * 1,7 *", &["*-01,07-* 02:15:00"]);
    check("0 0 29 2 *", &["*-02-29 00:00:00"]);
    // Steps on days and months count from 1, as cron's do.
    check("0 3 */2 * *", &["*-*-01/2 03:00:00"]);
    check("0 3 1 */3 *", &["*-01/3-01 03:00:00"]);
    // Day of month and day of week both restricted: cron runs on either, so the timer has both.
    check("0 2 1,15 * 1", &["Mon *-*-* 02:00:00", "*-*-01,15 02:00:00"]);
    check("0 0 31 2 1", &["Mon *-02-* 00:00:00"]);
    // A day of month written with `*` keeps cron's "both" rule.
    check("0 2 */2 * 1", &["Mon *-*-01/2 02:00:00"]);
}

#[test]
fn unsupported_cron_is_refused_with_the_fix() {
    for bad in ["17 2 * *", "61 2 * * *", "0 2 * * 9", "@daily", "0 0 0 * *", "0 0 1 13 *"] {
        let err = on_calendar(bad).unwrap_err().to_string();
        assert!(err.contains("write five fields like `17 2 * * *`"), "{bad}: {err}");
    }
    // Schedules that never fire are refused, not installed.
    for (never, why) in [
        ("*/0 2 * * *", "minute step 0 never fires"),
        ("0 0 31 2 *", "day 31 of month 2 never comes"),
        ("0 0 30,31 2 *", "never comes"),
        ("0 0 31 4,6,9,11 *", "never comes"),
    ] {
        let err = on_calendar(never).unwrap_err().to_string();
        assert!(err.contains(why), "{never}: {err}");
    }
}

/// Paths with spaces, `%`, `$`, quotes and `;` reach the command intact, under cron's shell and under
/// systemd, and systemd accepts the units without a complaint.
#[test]
fn units_and_crontab_lines_quote_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("bin dir 100% $HOME; x");
    std::fs::create_dir_all(&odd).unwrap();
    // A stand-in for the binary that prints its arguments, one per line.
    let binary = odd.join("prodready");
    std::fs::write(&binary, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&binary).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!("{}/it's \"conf\" %d $USER \\.toml", odd.display());
    let argv = |args: &[&str]| -> Vec<String> {
        let mut v = vec![binary.display().to_string(), "--config".to_owned(), config.clone()];
        v.extend(args.iter().map(|a| (*a).to_owned()));
        v
    };
    let jobs = [
        Job { name: "run", cron: "17 2 * * *".into(), command: argv(&["backup", "run"]) },
        Job { name: "verify", cron: "47 3 * * 0".into(), command: argv(&["backup", "verify", "latest"]) },
    ];
    let text = render(&jobs, "postgres").unwrap();
    assert!(text.contains("OnCalendar=Sun *-*-* 03:47:00\nPersistent=true"), "{text}");
    assert!(text.contains("User=postgres\n"), "{text}");
    assert!(
        text.ends_with("systemctl enable --now prodready-backup-run.timer prodready-backup-verify.timer\n"),
        "{text}"
    );

    // cron: `\%` becomes `%`, then /bin/sh runs the line.
    let line = text.lines().find(|l| l.starts_with("17 2 * * * ")).unwrap();
    let command = line.trim_start_matches("17 2 * * * ").replace("\\%", "%");
    assert_eq!(command.replace("\\%", "%"), crontab_command(&jobs[0].command).replace("\\%", "%"));
    let out = std::process::Command::new("/bin/sh").args(["-c", &command]).output().unwrap();
    let got: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(got, jobs[0].command[1..], "{line}");

    // systemd: the units verify cleanly.
    let units = tempfile::tempdir().unwrap();
    for block in text.split("\n# /etc/systemd/system/").skip(1) {
        let (name, body) = block.split_once('\n').unwrap();
        let body = body.split("\n# enable").next().unwrap();
        std::fs::write(units.path().join(name), body).unwrap();
    }
    let files: Vec<_> = std::fs::read_dir(units.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 4);
    let out = std::process::Command::new("systemd-analyze").arg("verify").args(&files).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A binary path systemd cannot run is refused with the fix.
    let quoted = Job { name: "run", cron: "17 2 * * *".into(), command: vec!["/opt/it's/prodready".into()] };
    let err = render(&[quoted], "postgres").unwrap_err().to_string();
    assert!(err.contains("pass --binary"), "{err}");
}
