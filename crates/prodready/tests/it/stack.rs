//! `prodready stack generate`: every file is accepted by the tool that reads it (promtool, amtool, the
//! Compose schema) or by a typed parse (Loki, Grafana provisioning), no credential is written, and the
//! parts that run here (Prometheus, Alertmanager, `logs ship`, the Loki receiver) come up from the
//! generated files, scrape their targets and deliver an alert.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use prodready_test_support::{
    Alertmanager, LokiReceiver, PagerDutyReceiver, Prometheus, SmtpSink, free_port, peer_bin, peers_dir,
    slack_receiver,
};
use serde::Deserialize;

use crate::{prodready, stderr};

const SMTP_PASSWORD: &str = "smtp-pw-2b9e61";
const ROUTING_KEY: &str = "rk-77c0e4a1";

fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Where the stack's alerts go: Slack's webhook, the SMTP relay and PagerDuty's Events API.
struct Receivers<'a> {
    slack: &'a str,
    smarthost: &'a str,
    /// `None` for PagerDuty's own address.
    pagerduty: Option<&'a str>,
    /// The SMTP password and the routing key as secrets in the store (by name), rather than as files.
    from_store: bool,
}

/// A configuration with services to scrape, email and PagerDuty, and a 45-day log retention.
fn configure(dir: &Path, to: &Receivers<'_>, scrape: &str) {
    let slack_url = to.slack;
    let webhook = secret(dir, "slack-webhook", &format!("{slack_url}\n"));
    let (password, key) = if to.from_store {
        crate::put_secret(dir, "prod/alerts/smtp", SMTP_PASSWORD);
        crate::put_secret(dir, "prod/alerts/pagerduty", ROUTING_KEY);
        (
            "password_secret = \"prod/alerts/smtp\"".to_owned(),
            "routing_key_secret = \"prod/alerts/pagerduty\"".to_owned(),
        )
    } else {
        let password = secret(dir, "smtp-password", SMTP_PASSWORD);
        let key = secret(dir, "pagerduty-key", ROUTING_KEY);
        (
            format!("password_file = \"{}\"", password.display()),
            format!("routing_key_file = \"{}\"", key.display()),
        )
    };
    let config = format!(
        "[logging]\nretention = \"45d\"\n[logging.ship]\npaths = [\"{logs}/*.log*\"]\n\
         [alerts]\nscrape_interval = \"1s\"\n\
         [alerts.slack]\nwebhook_file = \"{webhook}\"\n\
         [alerts.email]\nto = [\"oncall@example.com\"]\nsmarthost = \"{smarthost}\"\nusername = \"alerts\"\n\
         {password}\nrequire_tls = {tls}\n\
         [alerts.pagerduty]\n{key}\n{pagerduty}\
         [stack.scrape]\n{scrape}\n",
        smarthost = to.smarthost,
        tls = !to.smarthost.starts_with("127.0.0.1:"),
        pagerduty = to.pagerduty.map(|url| format!("url = \"{url}\"\n")).unwrap_or_default(),
        logs = dir.join("logs").display(),
        webhook = webhook.display(),
    );
    std::fs::write(dir.join("prodready.toml"), config).unwrap();
}

fn generate(dir: &Path) -> PathBuf {
    let out = prodready(dir, &[], &["stack", "generate", "--out", "stack"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir.join("stack")
}

fn tool(name: &str, args: &[&str], file: &Path) {
    let out = Command::new(peer_bin(name)).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Loki {
    auth_enabled: bool,
    server: serde_yaml_ng::Value,
    common: serde_yaml_ng::Value,
    schema_config: SchemaConfig,
    compactor: Compactor,
    limits_config: Limits,
}

#[derive(Deserialize)]
struct SchemaConfig {
    configs: Vec<PeriodConfig>,
}

#[derive(Deserialize)]
struct PeriodConfig {
    store: String,
    schema: String,
    index: Index,
}

#[derive(Deserialize)]
struct Index {
    period: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Compactor {
    working_directory: String,
    retention_enabled: bool,
    delete_request_store: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    retention_period: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Datasources {
    api_version: u8,
    datasources: Vec<Datasource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Datasource {
    name: String,
    uid: String,
    r#type: String,
    access: String,
    url: String,
    #[serde(default)]
    is_default: bool,
}

#[test]
fn the_generated_stack_passes_promtool_amtool_the_compose_schema_and_typed_parses() {
    let dir = tempfile::tempdir().unwrap();
    let receivers = Receivers {
        slack: "https://hooks.slack.com/services/T0/B0/wh-secret-61f0",
        smarthost: "smtp.example.com:587",
        pagerduty: None,
        from_store: false,
    };
    configure(dir.path(), &receivers, "api = [\"api:8080\", \"api-2:8080\"]");
    // A configured database brings the daemon and the database exporter into the stack.
    let mut config = std::fs::read_to_string(dir.path().join("prodready.toml")).unwrap();
    config.push_str("[database]\nurl = \"postgresql://app@db.internal:5432/app\"\n");
    std::fs::write(dir.path().join("prodready.toml"), config).unwrap();
    let stack = generate(dir.path());

    tool("promtool", &["check", "config"], &stack.join("prometheus/prometheus.yml"));
    let prometheus: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(stack.join("prometheus/prometheus.yml")).unwrap())
            .unwrap();
    let jobs: Vec<String> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| format!("{} {:?}", j["job_name"].as_str().unwrap(), j["static_configs"][0]["targets"]))
        .collect();
    for job in ["prodready-daemon", "prodready-db"] {
        assert!(jobs.iter().any(|j| j.starts_with(job)), "no {job} job in {jobs:?}");
    }
    tool("amtool", &["check-config"], &stack.join("alertmanager/alertmanager.yml"));

    // The Compose file against the Compose schema (docker-compose 1.29.2's, provisioned by `cargo xtask
    // peers`), with the venv's jsonschema.
    let schema = peers_dir().join("compose-spec.json");
    assert!(schema.is_file(), "{} is missing; run `cargo xtask peers`", schema.display());
    let check = "import json, sys, yaml, jsonschema\n\
                 jsonschema.validate(yaml.safe_load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n";
    let out = Command::new(peers_dir().join("venv/bin/python"))
        .args(["-c", check])
        .arg(stack.join("compose.yaml"))
        .arg(&schema)
        .output()
        .unwrap();
    assert!(out.status.success(), "compose.yaml: {}", String::from_utf8_lossy(&out.stderr));
    // And by a real Compose implementation: Debian's docker-compose (`cargo xtask peers` installs it).
    let out = Command::new("/usr/bin/docker-compose")
        .args(["--no-ansi", "--file"])
        .arg(stack.join("compose.yaml"))
        .args(["config", "--quiet"])
        .current_dir(&stack)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "docker-compose is missing ({e}): run `cargo xtask peers` (apt-get install docker-compose)"
            )
        });
    assert!(out.status.success(), "docker-compose config: {}", String::from_utf8_lossy(&out.stderr));
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(stack.join("compose.yaml")).unwrap()).unwrap();
    let services: Vec<&str> =
        compose["services"].as_mapping().unwrap().keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(
        services,
        ["alertmanager", "daemon", "db-exporter", "grafana", "logs-ship", "loki", "prometheus"]
    );
    for (service, command) in [
        ("daemon", "--config /etc/prodready/prodready.toml daemon --listen 0.0.0.0:9187"),
        ("db-exporter", "--config /etc/prodready/prodready.toml db exporter --listen 0.0.0.0:9188"),
    ] {
        let args: Vec<&str> = compose["services"][service]["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(args.join(" "), command);
        let volumes = format!("{:?}", compose["services"][service]["volumes"]);
        assert!(volumes.contains("./prodready.toml:/etc/prodready/prodready.toml:ro"), "{volumes}");
    }
    // The daemon gets its shutdown timeout and some to finish before the engine kills it.
    assert_eq!(compose["services"]["daemon"]["stop_grace_period"].as_str(), Some("70s"));
    let am_volumes = format!("{:?}", compose["services"]["alertmanager"]["volumes"]);
    for file in ["slack-webhook", "smtp-password", "pagerduty-key"] {
        assert!(am_volumes.contains(&format!("{file}:ro")), "{file} not mounted read-only: {am_volumes}");
    }

    let loki: Loki =
        serde_yaml_ng::from_str(&std::fs::read_to_string(stack.join("loki/loki.yml")).unwrap()).unwrap();
    assert!(!loki.auth_enabled && loki.server["http_listen_port"] == 3100 && loki.common.is_mapping());
    assert!(loki.compactor.retention_enabled && loki.compactor.delete_request_store == "filesystem");
    assert!(!loki.compactor.working_directory.is_empty());
    assert_eq!(loki.limits_config.retention_period, "1080h", "45 days");
    let period = &loki.schema_config.configs[0];
    assert_eq!(
        (period.store.as_str(), period.schema.as_str(), period.index.period.as_str()),
        ("tsdb", "v13", "24h")
    );

    let sources: Datasources = serde_yaml_ng::from_str(
        &std::fs::read_to_string(stack.join("grafana/provisioning/datasources/datasources.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(sources.api_version, 1);
    let summary: Vec<(&str, &str, &str, &str, &str, bool)> = sources
        .datasources
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.uid.as_str(),
                d.r#type.as_str(),
                d.access.as_str(),
                d.url.as_str(),
                d.is_default,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Prometheus", "prometheus", "prometheus", "proxy", "http://prometheus:9090", true),
            ("Loki", "loki", "loki", "proxy", "http://loki:3100", false),
        ]
    );
    for dashboard in ["service-red.json", "backups.json", "slo-burn.json"] {
        let text = std::fs::read_to_string(stack.join("grafana/dashboards").join(dashboard)).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }

    // No credential in any generated file.
    for entry in walk(&stack) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        for secret in [SMTP_PASSWORD, ROUTING_KEY, "wh-secret-61f0"] {
            assert!(!text.contains(secret), "{} holds a credential", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Rewrites the stack's service addresses to the loopback ports the test processes use.
fn on_loopback(text: &str, pairs: &[(&str, String)]) -> String {
    pairs.iter().fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
}

/// Prometheus, Alertmanager, the `logs ship` agent and the Loki receiver run from the generated files:
/// every live target is up, the agent ships a line, and InstanceDown for a dead target (critical) reaches
/// Slack, email and PagerDuty, each a receiver on loopback (nothing leaves the machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_comes_up_from_its_files_scrapes_and_delivers_an_alert() {
    let (slack, mut slack_messages) = slack_receiver().await;
    let smtp = SmtpSink::start();
    let pagerduty = PagerDutyReceiver::start();
    let loki = LokiReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let dead = free_port();
    let slack_url = format!("http://{slack}/hook");
    let smarthost = smtp.addr().to_string();
    let pagerduty_url = pagerduty.url();
    let receivers = Receivers {
        slack: &slack_url,
        smarthost: &smarthost,
        pagerduty: Some(&pagerduty_url),
        from_store: true,
    };
    configure(dir.path(), &receivers, &format!("payments = [\"127.0.0.1:{dead}\"]"));
    let stack = generate(dir.path());
    // The credentials taken from the store are in owner-only files of a git-ignored folder, named (not
    // quoted) by the generated configuration; no other generated file holds them.
    let secrets = stack.join("secrets");
    assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::read_to_string(secrets.join(".gitignore")).unwrap().lines().last(), Some("*"));
    for (file, value) in [("smtp-password", SMTP_PASSWORD), ("pagerduty-routing-key", ROUTING_KEY)] {
        let path = secrets.join(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), value);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let am = std::fs::read_to_string(stack.join("alertmanager/alertmanager.yml")).unwrap();
        assert!(am.contains(&path.display().to_string()), "{am}");
    }
    for entry in walk(&stack).into_iter().filter(|p| !p.starts_with(&secrets)) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(SMTP_PASSWORD) && !text.contains(ROUTING_KEY), "{}", entry.display());
    }

    // The agent as compose runs it, its addresses on loopback.
    let ship_port = free_port();
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(stack.join("compose.yaml")).unwrap()).unwrap();
    let args: Vec<String> = compose["services"]["logs-ship"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            on_loopback(
                a.as_str().unwrap(),
                &[
                    ("http://loki:3100", loki.url()),
                    (
                        "/var/lib/prodready/positions.json",
                        dir.path().join("positions.json").display().to_string(),
                    ),
                    ("0.0.0.0:9080", format!("127.0.0.1:{ship_port}")),
                ],
            )
        })
        .collect();
    std::fs::write(dir.path().join("logs/app.log"), "{\"level\":\"info\",\"message\":\"stack up\"}\n")
        .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(&args)
        .current_dir(dir.path())
        .env_clear()
        .envs(crate::coverage_env())
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Group and rule timings shortened for a test; everything else is the generated text.
    let am_config = std::fs::read_to_string(stack.join("alertmanager/alertmanager.yml"))
        .unwrap()
        .replace("group_wait: 30s", "group_wait: 1s");
    let am = Alertmanager::start(&am_config);
    let rules = stack.join("prometheus/rules/prodready.rules.yml");
    std::fs::write(&rules, std::fs::read_to_string(&rules).unwrap().replace("for: 2m", "for: 2s")).unwrap();
    let prometheus_yml = std::fs::read_to_string(stack.join("prometheus/prometheus.yml")).unwrap();
    let am_port = am.process.port();
    let rules_glob = stack.join("prometheus/rules/*.yml").display().to_string();
    let prometheus = Prometheus::start_with(|port| {
        on_loopback(
            &prometheus_yml,
            &[
                ("rules/*.yml", rules_glob),
                ("localhost:9090", format!("127.0.0.1:{port}")),
                ("alertmanager:9093", format!("127.0.0.1:{am_port}")),
                ("loki:3100", loki.url().trim_start_matches("http://").to_owned()),
                ("logs-ship:9080", format!("127.0.0.1:{ship_port}")),
            ],
        )
    });

    // Every live target is up (the Loki receiver serves /metrics as Loki does) and the dead one down.
    prometheus
        .query_until("up", "the stack's targets never came up", |samples| {
            let up = |job: &str| {
                samples
                    .iter()
                    .find(|s| s["metric"]["job"] == job)
                    .and_then(|s| s["value"][1].as_str())
                    .map(str::to_owned)
            };
            ["prometheus", "alertmanager", "loki", "logs-ship"].iter().all(|j| up(j).as_deref() == Some("1"))
                && up("payments").as_deref() == Some("0")
        })
        .await;
    assert!(prodready_test_support::wait_until(Duration::from_secs(30), || loki.line_count() >= 1));

    let message = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let message = slack_messages.recv().await.expect("the receiver stays up");
            let text = message.to_string();
            assert!(
                !text.contains("InstanceDown") || text.contains("payments"),
                "a live target is down: {text}"
            );
            if text.contains("InstanceDown") {
                return message;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no InstanceDown reached Slack; Alertmanager log:\n{}", am.process.log()));
    assert!(message.to_string().contains("#alerts-critical"), "{message}");
    // The same critical alert pages through PagerDuty with the routing key, and is mailed.
    assert!(
        prodready_test_support::wait_until(Duration::from_secs(30), || {
            pagerduty.events().iter().any(|e| e.to_string().contains("InstanceDown"))
                && smtp.mails().iter().any(|m| format!("{m:?}").contains("InstanceDown"))
        }),
        "email {:?} / PagerDuty {:?}; Alertmanager log:\n{}",
        smtp.mails(),
        pagerduty.events(),
        am.process.log()
    );
    let event = pagerduty.events().into_iter().find(|e| e.to_string().contains("InstanceDown")).unwrap();
    assert_eq!(event["routing_key"], ROUTING_KEY);
    assert_eq!(event["event_action"], "trigger");
    let _ = agent.kill();
    let _ = agent.wait();
}

#[test]
fn relative_paths_the_containers_would_mount_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (config, expected) in [
        ("[logging.ship]\npaths = [\"logs/*.log\"]\n", "[logging.ship] paths `logs/*.log` is relative"),
        (
            "[alerts.slack]\nwebhook_file = \"slack-webhook\"\n",
            "[alerts.slack] webhook_file `slack-webhook` is relative",
        ),
    ] {
        std::fs::write(dir.path().join("prodready.toml"), config).unwrap();
        let out = prodready(dir.path(), &[], &["stack", "generate", "--out", "stack"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert!(!dir.path().join("stack").exists());
    }
}
