//! One behaviour suite (`round_trip`) for both stores: the local directory, and S3 on a real moto server,
//! directly and through a loopback proxy that answers 503 SlowDown to a share of requests.

use prodready_backup::catalog;
use prodready_backup::{S3Options, Store};
use prodready_test_support::{Moto, TestDb};

use crate::{fingerprints, options, quiet};

pub(crate) async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

pub(crate) async fn bucket(moto: &Moto, name: &str) -> aws_sdk_s3::Client {
    let config =
        aws_sdk_s3::config::Builder::from(&sdk(&moto.endpoint()).await).force_path_style(true).build();
    let client = aws_sdk_s3::Client::from_conf(config);
    client.create_bucket().bucket(name).send().await.unwrap();
    client
}

/// A table whose compressed COPY is well over one 8 MiB part, so uploads go multipart.
async fn database_with_big_table() -> TestDb {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, a text, b text);
             INSERT INTO t SELECT i, md5(random()::text), md5(random()::text) FROM generate_series(1, 500000) i;
             CREATE TABLE small (k text); INSERT INTO small VALUES ('x')",
        )
        .await
        .unwrap();
    db
}

async fn round_trip(store: &Store, db: &TestDb) {
    let manifest = prodready_backup::backup(store, &options(db), quiet()).await.unwrap();
    let big = manifest.tables.iter().find(|t| t.name == "t").unwrap();
    let part = manifest.object(&big.parts[0]).unwrap();
    assert!(
        part.size > 8 * 1024 * 1024,
        "the big table's object ({} bytes) should need a multipart upload",
        part.size
    );
    assert_eq!(catalog::list(store).unwrap().len(), 1);
    assert!(prodready_backup::verify_quick(store, &manifest).await.unwrap().ok);
    let verified =
        prodready_backup::verify(store, &manifest, &crate::verify_options(db.url())).await.unwrap();
    assert!(verified.ok, "{:?}", verified.problems);
    let target = TestDb::create().await;
    prodready_backup::restore(store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(fingerprints(db.url()).await, fingerprints(target.url()).await);
    assert_eq!(catalog::list(store).unwrap()[0].verify_ok, Some(true));
}

/// The edge-case database (partitions, every index kind, large objects, extension tables...) on S3:
/// verified with the skipped indexes named, restored with the same schema, data and sequences as on a
/// local store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_case_database_round_trips_on_s3() {
    let moto = Moto::start();
    bucket(&moto, "edge").await;
    let store = Store::s3(&sdk(&moto.endpoint()).await, "s3://edge/db", &S3Options::default()).unwrap();
    let source = TestDb::create().await;
    crate::edge_case_database(&source, 20_000).await;
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    assert_eq!(manifest.large_objects.count, 2);

    let verified =
        prodready_backup::verify(&store, &manifest, &crate::verify_options(source.url())).await.unwrap();
    assert!(verified.ok, "{:?}", verified.problems);
    let skipped = verified.checked.iter().find(|c| c.starts_with("amcheck skipped")).expect("skips listed");
    assert!(skipped.contains("app.users_profile_gin (gin index"), "{skipped}");

    let target = TestDb::create().await;
    prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(crate::schema_only(source.url()), crate::schema_only(target.url()));
    assert_eq!(fingerprints(source.url()).await, fingerprints(target.url()).await);
    assert_eq!(crate::sequences(source.url()).await, crate::sequences(target.url()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_passes_the_round_trip_on_moto() {
    let moto = Moto::start();
    let client = bucket(&moto, "backups").await;
    let store = Store::s3(
        &sdk(&moto.endpoint()).await,
        "s3://backups/prod/app",
        &S3Options { max_attempts: 3, ..S3Options::default() },
    )
    .unwrap();
    let db = database_with_big_table().await;
    round_trip(&store, &db).await;
    // Everything sits under the prefix, and nothing is left half-uploaded.
    let listed = client.list_objects_v2().bucket("backups").send().await.unwrap();
    assert!(listed.contents().iter().all(|o| o.key().unwrap().starts_with("prod/app/")));
    let uploads = client.list_multipart_uploads().bucket("backups").send().await.unwrap();
    assert!(uploads.uploads().is_empty());
    assert!(Store::s3(&sdk(&moto.endpoint()).await, "s3:///x", &S3Options::default()).is_err());
    // The ids are the directories right under the prefix (listed with a delimiter, one entry each): an
    // object at the prefix itself, one next to the prefix, and dot-directories are not backups.
    for key in ["prod/app/README", "prod/application/x/y", "prod/app/.tmp/z", "prod/app/extra/a/b/c"] {
        client.put_object().bucket("backups").key(key).body(Vec::new().into()).send().await.unwrap();
    }
    let backup = catalog::list(&store).unwrap()[0].id.clone();
    let mut expected = vec![backup, "extra".to_owned()];
    expected.sort();
    assert_eq!(store.ids().unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_of_requests_answered_503_still_yields_a_good_backup() {
    let moto = Moto::start();
    bucket(&moto, "flaky").await;
    // Every third request is answered 503 SlowDown by the proxy instead of moto.
    let slow_down = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let proxy = prodready_test_support::Proxy::intercepting(moto.endpoint(), move |n| {
        (n % 3 == 2).then(|| (503, slow_down.to_owned()))
    })
    .await;
    let store = Store::s3(
        &sdk(proxy.url()).await,
        "s3://flaky/backups",
        &S3Options { max_attempts: 6, ..S3Options::default() },
    )
    .unwrap();
    let db = database_with_big_table().await;
    round_trip(&store, &db).await;
    assert!(proxy.intercepted() > 5, "the proxy refused {} requests", proxy.intercepted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_store_passes_the_same_round_trip() {
    let (_dir, store) = crate::temp_store();
    let db = database_with_big_table().await;
    round_trip(&store, &db).await;
}

/// Objects are written with `If-None-Match: *`: a second writer of the same object fails instead of
/// overwriting it (moto, like S3, answers 412).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_object_is_never_overwritten() {
    let moto = Moto::start();
    let client = bucket(&moto, "append-only").await;
    let store = Store::s3(&sdk(&moto.endpoint()).await, "s3://append-only/p", &S3Options::default()).unwrap();
    store.write_atomic("20260101T000000Z-aaaa", "verify-1.json", b"first").unwrap();
    let again = store.write_atomic("20260101T000000Z-aaaa", "verify-1.json", b"second");
    assert!(again.is_err(), "{again:?}");
    let mut writer = store.create("20260101T000000Z-aaaa", "verify-1.json").unwrap();
    std::io::Write::write_all(&mut writer, b"third").unwrap();
    assert!(writer.finish().is_err());
    let kept = client
        .get_object()
        .bucket("append-only")
        .key("p/20260101T000000Z-aaaa/verify-1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.body.collect().await.unwrap().into_bytes().as_ref(), b"first");
}
