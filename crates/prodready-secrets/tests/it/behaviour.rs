//! One behaviour suite, run against the encrypted file and against Secrets Manager on a real moto server.

use prodready_secrets::{
    CURRENT, Delete, Error, ExposeSecret as _, PREVIOUS, PutOutcome, SecretStore, SecretString, Version,
};

fn value(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

async fn read<S: SecretStore>(store: &S, name: &str, version: &Version) -> String {
    store.get(name, version).await.unwrap().value.expose_secret().to_owned()
}

/// Everything a store promises, in order. Names live under `prefix` so runs never meet.
async fn suite<S: SecretStore>(store: &S, prefix: &str) {
    let name = format!("{prefix}api-token");
    let other = format!("{prefix}database-url");

    // Empty to start with; a missing secret is NotFound.
    assert!(store.list(prefix).await.unwrap().is_empty());
    assert!(matches!(store.get(&name, &Version::Current).await, Err(Error::NotFound(n)) if n == name));

    // Create, then repeat: the second put writes nothing.
    assert_eq!(store.put(&name, &value("first-value-1")).await.unwrap(), PutOutcome::Created);
    assert_eq!(store.put(&name, &value("first-value-1")).await.unwrap(), PutOutcome::Unchanged);
    let first = store.get(&name, &Version::Current).await.unwrap();
    assert_eq!(first.value.expose_secret(), "first-value-1");
    assert_eq!(first.stages, [CURRENT]);
    assert_eq!(store.history(&name).await.unwrap().len(), 1);

    // A new value becomes AWSCURRENT; the old one AWSPREVIOUS, still readable by stage and by id.
    assert_eq!(store.put(&name, &value("second-value-2")).await.unwrap(), PutOutcome::Updated);
    assert_eq!(read(store, &name, &Version::Current).await, "second-value-2");
    assert_eq!(read(store, &name, &Version::Stage(PREVIOUS.into())).await, "first-value-1");
    assert_eq!(read(store, &name, &Version::Id(first.version_id.clone())).await, "first-value-1");
    let history = store.history(&name).await.unwrap();
    assert_eq!(history.len(), 2);
    let stages_of = |id: &str| history.iter().find(|v| v.version_id == id).unwrap().stages.clone();
    assert_eq!(stages_of(&first.version_id), [PREVIOUS]);
    assert!(history.iter().any(|v| v.stages == [CURRENT] && v.version_id != first.version_id));

    // Unknown versions are named as such.
    let missing = Version::Id("00000000-0000-4000-8000-000000000000".into());
    assert!(matches!(store.get(&name, &missing).await, Err(Error::VersionNotFound { .. })));
    let missing = Version::Stage("NOSUCHSTAGE".into());
    assert!(matches!(store.get(&name, &missing).await, Err(Error::VersionNotFound { .. })));

    // A second secret, and a listing that names both (and nothing outside the prefix).
    assert_eq!(store.put(&other, &value("postgres://u:p@db/app")).await.unwrap(), PutOutcome::Created);
    let listed: Vec<String> = store.list(prefix).await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(listed, [name.clone(), other.clone()]);
    assert!(store.list(&format!("{prefix}api-")).await.unwrap().iter().all(|m| m.name == name));
    let json = serde_json::to_string(&store.list(prefix).await.unwrap()).unwrap();
    assert!(!json.contains("value-"), "a listing leaked a value: {json}");

    // Rollback: AWSCURRENT back to the previous version, which becomes readable as current. (moto keeps a
    // default version that UpdateSecretVersionStage does not move, so the suite puts nothing after this.)
    let now = store.rollback(&name).await.unwrap();
    assert_eq!(now.version_id, first.version_id);
    assert_eq!(read(store, &name, &Version::Current).await, "first-value-1");
    assert_eq!(read(store, &name, &Version::Stage(PREVIOUS.into())).await, "second-value-2");
    // A secret with one version has nothing to roll back to.
    assert!(matches!(store.rollback(&other).await, Err(Error::NoPreviousVersion(_))));

    // Bad input: one clear error each.
    assert!(matches!(store.put("bad!name", &value("x")).await, Err(Error::Invalid(m)) if m.contains("`!`")));
    let big = value(&"x".repeat(65_537));
    assert!(matches!(store.put(&name, &big).await, Err(Error::TooLarge { size: 65_537, .. })));
    let nul = value("before\0after");
    assert!(matches!(store.put(&name, &nul).await, Err(Error::Invalid(m)) if m.contains("NUL byte")));
    assert!(matches!(store.delete(&name, Delete::After { days: 3 }).await, Err(Error::RecoveryWindow(3))));
    let ghost = format!("{prefix}ghost");
    assert!(matches!(store.delete(&ghost, Delete::Now).await, Err(Error::NotFound(_))));
    assert!(matches!(store.history(&ghost).await, Err(Error::NotFound(_))));

    // Delete with a recovery window: unreadable, unlisted, unwritable.
    store.delete(&name, Delete::After { days: 7 }).await.unwrap();
    assert!(matches!(store.get(&name, &Version::Current).await, Err(Error::ScheduledForDeletion { .. })));
    assert!(matches!(store.put(&name, &value("third")).await, Err(Error::ScheduledForDeletion { .. })));
    let listed: Vec<String> = store.list(prefix).await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(listed, [other.as_str()]);

    // Restore cancels the deletion, versions and all; restoring a live secret is an error.
    store.restore(&name).await.unwrap();
    assert_eq!(read(store, &name, &Version::Stage(PREVIOUS.into())).await, "second-value-2");
    assert!(matches!(store.restore(&name).await, Err(Error::NotScheduled(_))));
    assert!(matches!(store.restore(&ghost).await, Err(Error::NotFound(_))));
    store.delete(&name, Delete::After { days: 30 }).await.unwrap();

    // A scheduled deletion can be made immediate.
    store.delete(&name, Delete::Now).await.unwrap();
    assert!(matches!(store.get(&name, &Version::Current).await, Err(Error::NotFound(_))));

    // Delete at once: gone.
    store.delete(&other, Delete::Now).await.unwrap();
    assert!(matches!(store.get(&other, &Version::Current).await, Err(Error::NotFound(_))));
    assert!(store.list(prefix).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_store_keeps_every_promise() {
    let (_dir, store) = crate::file_store();
    suite(&store, "prod/app/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_on_moto_keeps_every_promise() {
    let moto = crate::moto();
    let store = crate::aws_store(&moto.endpoint()).await;
    suite(&store, "prod/app/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_manager_put_that_changes_nothing_makes_no_write_call() {
    let moto = crate::moto();
    let proxy = prodready_test_support::Proxy::start(moto.endpoint()).await;
    let store = crate::aws_store(proxy.url()).await;
    store.put("svc/key", &value("v1")).await.unwrap();
    assert_eq!(crate::writes(&proxy.take_operations()), ["CreateSecret"]);
    store.put("svc/key", &value("v1")).await.unwrap();
    let ops = proxy.take_operations();
    assert!(crate::writes(&ops).is_empty(), "an unchanged put wrote: {ops:?}");
    store.put("svc/key", &value("v2")).await.unwrap();
    assert_eq!(crate::writes(&proxy.take_operations()), ["PutSecretValue"]);
    // After a rollback, putting the value rolled away from is a real write, not an ignored replay.
    store.rollback("svc/key").await.unwrap();
    assert_eq!(crate::writes(&proxy.take_operations()), ["UpdateSecretVersionStage"]);
    assert_eq!(store.put("svc/key", &value("v2")).await.unwrap(), PutOutcome::Updated);
    assert_eq!(crate::writes(&proxy.take_operations()), ["PutSecretValue"]);
}

#[tokio::test]
async fn the_file_store_rolls_forward_again_after_a_rollback() {
    let (_dir, store) = crate::file_store();
    store.put("svc/key", &value("v1")).await.unwrap();
    store.put("svc/key", &value("v2")).await.unwrap();
    store.rollback("svc/key").await.unwrap();
    assert_eq!(store.put("svc/key", &value("v2")).await.unwrap(), PutOutcome::Updated);
    assert_eq!(read(&store, "svc/key", &Version::Current).await, "v2");
    assert_eq!(read(&store, "svc/key", &Version::Stage(PREVIOUS.into())).await, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_secrets_manager_is_a_transient_error_without_the_value() {
    let port = prodready_test_support::free_port();
    let store = crate::aws_store(&format!("http://127.0.0.1:{port}")).await;
    let err = store.put("svc/key", &value("do-not-print-me")).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("do-not-print-me"), "{shown}");
    assert!(shown.contains("svc/key"), "{shown}");
}
