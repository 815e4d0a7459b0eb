use std::time::Duration;

use prodready_metrics::prometheus_client::metrics::counter::Counter;
use prodready_metrics::prometheus_client::metrics::family::Family;
use prodready_metrics::prometheus_client::metrics::gauge::Gauge;
use prodready_metrics::prometheus_client::registry::Registry;
use prodready_metrics::push::{self, Group};

fn registry(database: &str) -> Registry {
    let mut registry = Registry::default();
    let last = Family::<Vec<(String, String)>, Gauge>::default();
    last.get_or_create(&vec![("database".to_owned(), database.to_owned())]).set(1_700_000_000);
    registry.register("example_last_success_timestamp_seconds", "Unix time of the last success", last);
    let runs = Counter::<u64>::default();
    runs.inc_by(3);
    registry.register("example_runs", "Runs so far", runs);
    registry
}

#[test]
fn the_textfile_is_classic_text_that_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.prom");
    prodready_metrics::textfile::write(&path, &registry("app")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    expect_test::expect![[r#"
        # HELP example_last_success_timestamp_seconds Unix time of the last success.
        # TYPE example_last_success_timestamp_seconds gauge
        example_last_success_timestamp_seconds{database="app"} 1700000000
        # HELP example_runs_total Runs so far.
        # TYPE example_runs_total counter
        example_runs_total 3
    "#]]
    .assert_eq(&text);
    crate::promtool_check_metrics(&text);
    let err =
        prodready_metrics::textfile::write(&dir.path().join("missing/x.prom"), &registry("app")).unwrap_err();
    assert!(err.to_string().starts_with("cannot write the metrics file "), "{err}");
}

#[tokio::test]
async fn pushes_land_in_their_group_even_with_awkward_label_values() {
    let pushgateway = prodready_test_support::Pushgateway::start();
    let group = Group::new("prodready-backup").label("database", "shop/eu west");
    push::push(&pushgateway.url(), &group, &registry("shop/eu west"), Duration::from_secs(10)).await.unwrap();
    let body = reqwest::get(format!("{}/metrics", pushgateway.url())).await.unwrap().text().await.unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with("example_runs_total{"))
        .unwrap_or_else(|| panic!("pushed counter missing:\n{body}"));
    assert!(
        line.contains(r#"database="shop/eu west""#) && line.contains(r#"job="prodready-backup""#),
        "{line}"
    );
    assert!(line.ends_with(" 3"), "{line}");

    // A refused push names the Pushgateway without its credentials.
    let port = prodready_test_support::free_port();
    let err = push::push(
        &format!("http://user:s3cr3t@127.0.0.1:{port}"),
        &group,
        &registry("x"),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!("pushgateway http://user:[REDACTED]@127.0.0.1:{port}: cannot push")),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "{err}");
}
