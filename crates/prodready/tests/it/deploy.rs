//! The daemon's deployment files (deploy/systemd, deploy/kubernetes): systemd accepts the unit without a
//! warning, and the manifest's replicas, ports, probes, configuration and grace period fit the daemon.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use prodready::config::{self, Config};
use prodready::deploy;
use prodready::env::Env;
use serde_yaml_ng::Value;

/// The daemon's own deadline after SIGTERM: running jobs get `shutdown_timeout`, then the ones it
/// cancels get their grace before SIGKILL. Whoever stops the daemon must wait longer.
fn daemon_stop_deadline() -> Duration {
    Config::default().daemon.shutdown_timeout + prodready_daemon::DEFAULT_KILL_GRACE
}

/// The `[Service]`-style directives of a unit, last value wins (comments and sections skipped).
fn directives(unit: &str) -> BTreeMap<&str, &str> {
    unit.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().unwrap_or_else(|e| {
        panic!("systemd-analyze is missing ({e}): install it with `apt-get install systemd`")
    })
}

#[test]
fn the_unit_runs_the_daemon_as_its_own_user_with_hardening_and_reload() {
    let unit = deploy::systemd_unit();
    let d = directives(&unit);
    let expected = [
        ("Type", "exec"),
        ("User", "prodready"),
        ("ExecStart", "/usr/local/bin/prodready daemon --config /etc/prodready/prodready.toml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("KillSignal", "SIGTERM"),
        ("KillMode", "mixed"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/prodready"),
        ("StateDirectory", "prodready"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("WantedBy", "multi-user.target"),
    ];
    for (key, value) in expected {
        assert_eq!(d.get(key).copied(), Some(value), "{key}=\n{unit}");
    }
    let stop: u64 = d["TimeoutStopSec"].parse().unwrap();
    assert!(Duration::from_secs(stop) > daemon_stop_deadline(), "TimeoutStopSec={stop}");

    // The data directory the daemon resolves under the unit's environment is the one it may write.
    let env_line = d["Environment"];
    let (var, value) = env_line.split_once('=').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready.toml");
    std::fs::write(&path, "").unwrap();
    let loaded =
        config::load(Some(&path), &Env::from_pairs([(var, value), ("HOME", "/nonexistent")])).unwrap();
    assert_eq!(loaded.config.general.data_dir.as_deref(), Some(Path::new(deploy::DATA_DIR)));
}

/// `systemd-analyze verify` accepts the unit with no warning at all. The binary is not installed here,
/// so the unit is verified with its ExecStart pointing at the binary under test: only that path differs.
#[test]
fn systemd_analyze_verifies_the_unit_without_a_warning() {
    let unit = deploy::systemd_unit();
    let binary = env!("CARGO_BIN_EXE_prodready");
    assert!(!binary.contains([' ', '"', '\'', '\\', '%', '$']), "an unusual binary path: {binary}");
    let local = unit.replace(&format!("ExecStart={} ", deploy::BINARY), &format!("ExecStart={binary} "));
    assert_ne!(local, unit);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready-daemon.service");
    std::fs::write(&path, &local).unwrap();
    let out = systemd_analyze(&["verify", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "systemd-analyze verify: {stderr}\n{local}");

    // The committed unit differs only in the binary's path, which is all systemd complains about.
    std::fs::write(&path, &unit).unwrap();
    let out = systemd_analyze(&["verify", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let others: Vec<&str> = stderr.lines().filter(|l| !l.contains(deploy::BINARY)).collect();
    assert!(others.is_empty(), "systemd-analyze verify: {stderr}");

    // And the hardening holds up in systemd's own exposure assessment: at most 2.0 of 10 (`--threshold`
    // counts in tenths).
    let out = systemd_analyze(&["security", "--offline=true", "--threshold=20", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "systemd-analyze security: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The documents of a multi-document YAML file, by kind.
fn manifests(text: &str) -> BTreeMap<String, Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| {
            let value = <Value as serde::Deserialize>::deserialize(doc).unwrap();
            (value["kind"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("{what}: not a string: {value:?}"))
}

#[test]
fn the_kubernetes_manifest_runs_two_replicas_probed_and_scraped_on_the_daemon_port() {
    let text = deploy::kubernetes();
    let docs = manifests(&text);
    assert_eq!(
        docs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
    );
    let port = Config::default().daemon.listen.port();
    assert_eq!(port, 9187);

    let deployment = &docs["Deployment"];
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["metadata"]["name"], "prodready-daemon");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2));
    let pod_labels = &spec["template"]["metadata"]["labels"];
    for (key, value) in spec["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&pod_labels[key], value, "the selector matches the pods");
    }
    let pod = &spec["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(Duration::from_secs(grace) > daemon_stop_deadline(), "terminationGracePeriodSeconds: {grace}");

    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().map(|a| str_of(a, "arg")).collect();
    assert_eq!(args, ["daemon", "--config", "/etc/prodready/prodready.toml"]);
    let ports = container["ports"].as_sequence().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["containerPort"].as_u64(), Some(u64::from(port)));
    // A probe names the port by name or number; either way it is the daemon's.
    let probe_port = |probe: &Value| match &probe["httpGet"]["port"] {
        Value::String(name) => {
            let found = ports.iter().find(|p| p["name"].as_str() == Some(name)).expect("a named port");
            found["containerPort"].as_u64().unwrap()
        }
        number => number.as_u64().unwrap(),
    };
    let liveness = &container["livenessProbe"];
    assert_eq!(liveness["httpGet"]["path"], "/healthz");
    assert_eq!(probe_port(liveness), u64::from(port));
    let readiness = &container["readinessProbe"];
    assert_eq!(readiness["httpGet"]["path"], "/readyz");
    assert_eq!(probe_port(readiness), u64::from(port));

    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string().as_str());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    // The ConfigMap is mounted where --config points, and the database URL comes from a Secret.
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/prodready")
        .expect("the configuration is mounted");
    let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(volume["configMap"]["name"], docs["ConfigMap"]["metadata"]["name"]);
    assert_eq!(mount["readOnly"].as_bool(), Some(true));
    let env = container["env"].as_sequence().unwrap();
    let database = env.iter().find(|e| e["name"] == "DATABASE_URL").expect("DATABASE_URL");
    assert!(database["valueFrom"]["secretKeyRef"].is_mapping(), "{database:?}");

    // The configuration the pods read is valid, listens on the pod's address at the probed port, and
    // keeps the daemon's state on the mounted data volume.
    let toml_text = str_of(&docs["ConfigMap"]["data"]["prodready.toml"], "prodready.toml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready.toml");
    std::fs::write(&path, toml_text).unwrap();
    let loaded = config::load(Some(&path), &Env::from_pairs([("DATABASE_URL", "postgres://db/app")]))
        .unwrap_or_else(|e| panic!("the ConfigMap's prodready.toml: {e}"));
    let listen = loaded.config.daemon.listen;
    assert!(listen.ip().is_unspecified(), "the probes reach the pod's address, not loopback: {listen}");
    assert_eq!(listen.port(), port);
    let data_dir = loaded.config.general.data_dir.unwrap();
    assert!(
        container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| data_dir.starts_with(str_of(&m["mountPath"], "mountPath"))
                && m["readOnly"].as_bool() != Some(true)),
        "{} is not on a writable volume",
        data_dir.display()
    );

    // A disruption never takes both replicas; the Service reaches the metrics port.
    let budget = &docs["PodDisruptionBudget"]["spec"];
    assert_eq!(budget["minAvailable"].as_u64(), Some(1));
    assert_eq!(budget["selector"], spec["selector"]);
    let service = &docs["Service"]["spec"];
    for (key, value) in service["selector"].as_mapping().unwrap() {
        assert_eq!(&pod_labels[key], value, "the Service selects the pods");
    }
    let service_port = &service["ports"][0];
    assert_eq!(service_port["port"].as_u64(), Some(u64::from(port)));
    assert_eq!(service_port["targetPort"], "metrics");
}

/// A `prodready daemon` replica started the way the Deployment starts its container; killed if the test
/// ends early.
struct Replica {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Replica {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_probe(&self, path: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while prodready_test_support::http_status(self.port, path) != Some(200) {
            assert!(std::time::Instant::now() < deadline, "{path} never answered 200:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `yaml` block of docs/monitoring.md's daemon section: the scrape job operators copy.
fn documented_scrape_config() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/monitoring.md")).unwrap();
    let section =
        doc.split("## The scheduler daemon").nth(1).expect("docs/monitoring.md has the daemon section");
    let block = section.split("```yaml\n").nth(1).expect("a yaml block").split("```").next().unwrap();
    block.to_owned()
}

fn label<'a>(sample: &'a serde_json::Value, name: &str) -> &'a str {
    sample["metric"][name].as_str().unwrap_or("")
}

fn value(sample: &serde_json::Value) -> &str {
    sample["value"][1].as_str().unwrap()
}

/// Two replicas started from the manifest's container arguments and ConfigMap answer the probes and
/// elect one leader; the plain scrape job docs/monitoring.md documents (no `honor_labels`) gives the alert
/// pack's expressions the labels they group by (the scrape job as `job`, the scheduled job's name as
/// `daemon_job`), so a failing job shows up in ProdreadyDaemonJobFailing's expression and nothing else
/// does; and a replica stopped with SIGTERM exits 0 within the grace period while the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_from_the_manifest_elect_a_leader_and_the_documented_scrape_feeds_the_alerts() {
    let db = prodready_test_support::TestDb::create().await;
    let docs = manifests(&deploy::kubernetes());
    let pod = &docs["Deployment"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
    let config_map = str_of(&docs["ConfigMap"]["data"]["prodready.toml"], "prodready.toml");
    let env_names: Vec<&str> =
        container["env"].as_sequence().unwrap().iter().map(|e| str_of(&e["name"], "env name")).collect();
    assert_eq!(env_names, ["DATABASE_URL"]);

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Two jobs on a fast schedule: a backup that succeeds, and one of a database that does not exist.
    let jobs = "\n[[daemon.jobs]]\nname = \"nightly-backup\"\nrun = \"backup-run\"\nschedule = \"*/5 * * * * *\"\n\
                \n[[daemon.jobs]]\nname = \"broken-backup\"\nrun = \"backup-run\"\nschedule = \"*/3 * * * * *\"\n\
                database = \"prodready_no_such_database\"\n";
    let start = |name: &str| {
        let port = prodready_test_support::free_port();
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        // What differs on this machine: the port, each pod's data volume, and a shared local store in
        // place of the S3 bucket.
        let mut text = config_map.to_owned();
        for (from, to) in [
            (format!("\"0.0.0.0:{}\"", deploy::port()), format!("\"0.0.0.0:{port}\"")),
            (format!("\"{}\"", deploy::DATA_DIR), format!("\"{}\"", home.join("data").display())),
            ("\"s3://my-backups/prod\"".to_owned(), format!("\"{}\"", store.display())),
        ] {
            assert!(text.contains(&from), "{from} is not in the ConfigMap:\n{config_map}");
            text = text.replace(&from, &to);
        }
        text.push_str(jobs);
        let config = home.join("prodready.toml");
        std::fs::write(&config, text).unwrap();
        let args: Vec<String> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| str_of(a, "arg").replace(deploy::CONFIG_FILE, config.to_str().unwrap()))
            .collect();
        let log = home.join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_prodready"))
            .args(&args)
            .current_dir(&home)
            .env_clear()
            .envs(crate::coverage_env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("DATABASE_URL", db.url())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prodready daemon");
        Replica { child, port, log }
    };
    let replicas = [start("pod-a"), start("pod-b")];
    for replica in &replicas {
        replica.wait_for_probe("/healthz");
        replica.wait_for_probe("/readyz");
    }

    let targets: Vec<String> = replicas.iter().map(|r| format!("'127.0.0.1:{}'", r.port)).collect();
    let scrape = documented_scrape_config()
        .replace("'daemon-1.internal:9187', 'daemon-2.internal:9187'", &targets.join(", "));
    assert!(scrape.contains(&targets[0]), "{scrape}");
    assert!(!scrape.contains("honor_labels"), "{scrape}");
    let prometheus = prodready_test_support::Prometheus::start_with(|_| {
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{scrape}")
    });
    let alerts = prodready_metrics_alerts::pack::alerts(&Default::default());
    let expr = |name: &str| alerts.iter().find(|a| a.name == name).unwrap().expr.clone();

    // One leader between the two, under the scrape job's name.
    prometheus
        .query_until("max by (job) (prodready_daemon_leader)", "one leader", |s| {
            s.len() == 1 && label(&s[0], "job") == "prodready-daemon" && value(&s[0]) == "1"
        })
        .await;
    prometheus
        .query_until("count(prodready_daemon_leader)", "both replicas scraped", |s| {
            s.len() == 1 && value(&s[0]) == "2"
        })
        .await;
    // The per-job series are labelled with the scheduled job, on both replicas, under the scrape job.
    prometheus
        .query_until(
            "count by (job, daemon_job) (prodready_daemon_job_interval_seconds)",
            "the jobs' series",
            |s| {
                let mut jobs: Vec<(&str, &str, &str)> =
                    s.iter().map(|s| (label(s, "job"), label(s, "daemon_job"), value(s))).collect();
                jobs.sort_unstable();
                jobs == [
                    ("prodready-daemon", "broken-backup", "2"),
                    ("prodready-daemon", "nightly-backup", "2"),
                ]
            },
        )
        .await;
    assert!(prometheus.query(r#"{exported_job!=""}"#).await.is_empty());

    // The broken job fails, the good one succeeds: only the broken one is in JobFailing's expression.
    prometheus
        .query_until(&expr("ProdreadyDaemonJobFailing"), "the broken job failing", |s| {
            s.len() == 1 && label(&s[0], "daemon_job") == "broken-backup"
        })
        .await;
    prometheus
        .query_until("prodready_daemon_job_last_success_timestamp_seconds", "a successful backup", |s| {
            !s.is_empty()
                && s.iter().all(|s| {
                    label(s, "job") == "prodready-daemon" && label(s, "daemon_job") == "nightly-backup"
                })
        })
        .await;
    for quiet in ["ProdreadyDaemonNoLeader", "ProdreadyDaemonJobOverdue"] {
        let samples = prometheus.query(&expr(quiet)).await;
        assert!(samples.is_empty(), "{quiet}: {samples:?}");
    }

    // SIGTERM to the leader: it exits 0 within the grace period and the standby takes over.
    let leader = prometheus.query("prodready_daemon_leader == 1").await;
    assert_eq!(leader.len(), 1, "{leader:?}");
    let leader_port: u16 = label(&leader[0], "instance").rsplit(':').next().unwrap().parse().unwrap();
    let [a, b] = replicas;
    let (mut stopping, standby) = if a.port == leader_port { (a, b) } else { (b, a) };
    assert_eq!(stopping.port, leader_port);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(stopping.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + grace;
    let status = loop {
        if let Some(status) = stopping.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no exit within {grace:?}:\n{}", stopping.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", stopping.log());
    prometheus
        .query_until(
            &format!(r#"prodready_daemon_leader{{instance="127.0.0.1:{}"}} == 1"#, standby.port),
            "the standby taking over",
            |s| s.len() == 1,
        )
        .await;
    let samples = prometheus.query(&expr("ProdreadyDaemonNoLeader")).await;
    assert!(samples.is_empty(), "{samples:?}");
}
