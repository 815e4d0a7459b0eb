//! The encrypted file: key handling, tampering, locking.

use std::os::unix::fs::PermissionsExt as _;

use prodready_secrets::{
    Error, ExposeSecret as _, FileStore, Key, PutOutcome, SecretSource as _, SecretStore as _, SecretString,
    Version,
};

fn value(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn first_use_creates_the_store_and_a_0600_key_and_the_file_holds_no_plaintext() {
    let (dir, store) = crate::file_store();
    assert!(store.list("").await.unwrap().is_empty());
    assert!(!dir.path().join("secrets.key").exists(), "a read created the key");
    store.put("app/password", &value("plain-text-password")).await.unwrap();
    assert_eq!(mode(&dir.path().join("secrets.key")), 0o600);
    assert_eq!(mode(&dir.path().join("secrets.enc")), 0o600);
    let raw = std::fs::read_to_string(dir.path().join("secrets.enc")).unwrap();
    assert!(raw.contains("app/password"));
    assert!(!raw.contains("plain-text-password"));
    assert_eq!(
        store.get("app/password", &Version::Current).await.unwrap().value.expose_secret(),
        "plain-text-password"
    );
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_refused_with_the_chmod_fix() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("v")).await.unwrap();
    let key = dir.path().join("secrets.key");
    for bad in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(bad)).unwrap();
        let err = store.get("app/a", &Version::Current).await.unwrap_err();
        assert!(matches!(err, Error::KeyPermissions { .. }), "{err}");
        assert!(err.to_string().contains(&format!("chmod 600 {}", key.display())), "{err}");
        assert!(store.put("app/b", &value("w")).await.is_err());
    }
}

#[tokio::test]
async fn a_wrong_key_gives_one_clear_error_and_writes_nothing() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("v")).await.unwrap();
    let path = dir.path().join("secrets.enc");
    let before = std::fs::read(&path).unwrap();
    let wrong = FileStore::new(
        &path,
        Key::Hex { source: "$PRODREADY_SECRETS_KEY".into(), hex: value(&"ab".repeat(32)) },
    );
    for err in [
        wrong.put("app/b", &value("w")).await.unwrap_err(),
        wrong.get("app/a", &Version::Current).await.unwrap_err(),
        wrong.delete("app/a", prodready_secrets::Delete::Now).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::WrongKey { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "$PRODREADY_SECRETS_KEY is not the key of {}: the store cannot be decrypted with it; nothing was written",
                path.display()
            )
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn a_malformed_key_is_refused_without_quoting_it() {
    let (dir, _) = crate::file_store();
    for (key, reason) in [("zz".repeat(32), "not hex digits"), ("abcd".to_owned(), "4 characters long")] {
        let store =
            FileStore::new(dir.path().join("s.enc"), Key::Hex { source: "$K".into(), hex: value(&key) });
        let err = store.put("a", &value("v")).await.unwrap_err().to_string();
        assert!(err.contains(reason), "{err}");
        assert!(!err.contains(&key), "{err}");
    }
}

#[tokio::test]
async fn a_store_without_its_key_file_is_not_silently_rekeyed() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("v")).await.unwrap();
    std::fs::remove_file(dir.path().join("secrets.key")).unwrap();
    let err = store.put("app/b", &value("w")).await.unwrap_err();
    assert!(matches!(err, Error::KeyMissing { .. }), "{err}");
    assert!(!dir.path().join("secrets.key").exists());
}

#[tokio::test]
async fn an_entry_moved_to_another_name_fails_authentication() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("value-a")).await.unwrap();
    store.put("app/b", &value("value-b")).await.unwrap();
    let path = dir.path().join("secrets.enc");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let sealed_a = doc["secrets"]["app/a"]["versions"][0]["sealed"].clone();
    doc["secrets"]["app/b"]["versions"][0]["sealed"] = sealed_a;
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = store.get("app/b", &Version::Current).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("secret `app/b`"), "{err}");
    assert!(!err.to_string().contains("value-a"));
    assert_eq!(store.get("app/a", &Version::Current).await.unwrap().value.expose_secret(), "value-a");
}

/// A damaged current version blocks nothing but itself: `put` replaces it (saying so), the damaged one is
/// kept as the previous version, and the other secrets stay readable.
#[tokio::test]
async fn a_corrupted_current_version_can_be_overwritten_by_put() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("value-a")).await.unwrap();
    store.put("app/b", &value("value-b")).await.unwrap();
    let path = dir.path().join("secrets.enc");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let sealed = doc["secrets"]["app/b"]["versions"][0]["sealed"].as_str().unwrap().to_owned();
    // One flipped hex digit in the ciphertext (after the 24-byte nonce).
    let flipped: String = sealed
        .char_indices()
        .map(|(i, c)| if i == 60 { if c == '0' { '1' } else { '0' } } else { c })
        .collect();
    doc["secrets"]["app/b"]["versions"][0]["sealed"] = flipped.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(matches!(store.get("app/b", &Version::Current).await.unwrap_err(), Error::Corrupt { .. }));
    assert_eq!(store.put("app/b", &value("value-b2")).await.unwrap(), PutOutcome::Repaired);
    assert_eq!(store.get("app/b", &Version::Current).await.unwrap().value.expose_secret(), "value-b2");
    let history = store.history("app/b").await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].stages, ["AWSPREVIOUS"]);
    assert_eq!(store.get("app/a", &Version::Current).await.unwrap().value.expose_secret(), "value-a");
    // Putting the same value again is an ordinary no-op now.
    assert_eq!(store.put("app/b", &value("value-b2")).await.unwrap(), PutOutcome::Unchanged);
}

/// `put_all` writes the store once for the whole batch, and not at all when one entry is refused.
#[tokio::test]
async fn put_all_is_one_rewrite_and_all_or_nothing() {
    use std::os::unix::fs::MetadataExt as _;
    let (dir, store) = crate::file_store();
    store.put("app/seed", &value("s")).await.unwrap();
    let path = dir.path().join("secrets.enc");
    let inode = || std::fs::metadata(&path).unwrap().ino();
    let before = inode();
    let batch: Vec<(String, SecretString)> =
        (0..500).map(|i| (format!("app/k{i}"), value(&format!("v{i}")))).collect();
    let outcomes = store.put_all(&batch).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == PutOutcome::Created));
    assert_ne!(inode(), before, "the batch was not written");
    assert_eq!(store.list("app/").await.unwrap().len(), 501);
    // Each rewrite is a new file (atomic rename): one new inode, whatever the batch size.
    let mut bad = batch.clone();
    bad[250].1 = value("holds a NUL \0 byte");
    let written = inode();
    assert!(store.put_all(&bad).await.is_err());
    assert_eq!(inode(), written, "a refused batch wrote the store");
    let names: Vec<String> = vec!["app/k1".into(), "app/missing".into()];
    let current = store.get_current_all(&names).await.unwrap();
    assert_eq!(current[0].as_ref().unwrap().value.expose_secret(), "v1");
    assert!(matches!(current[1], Err(Error::NotFound(_))));
}

#[tokio::test]
async fn a_damaged_store_file_is_named() {
    let (dir, store) = crate::file_store();
    store.put("app/a", &value("v")).await.unwrap();
    std::fs::write(dir.path().join("secrets.enc"), b"{ not json").unwrap();
    let err = store.list("").await.unwrap_err().to_string();
    assert!(err.contains("secrets.enc") && err.contains("not a secrets store file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_from_two_handles_all_survive() {
    let (dir, _) = crate::file_store();
    let open = || FileStore::new(dir.path().join("secrets.enc"), Key::File(dir.path().join("secrets.key")));
    let (one, two) = (open(), open());
    let mut tasks = Vec::new();
    for i in 0..25 {
        let (one, two) = (one.clone(), two.clone());
        tasks
            .push(tokio::spawn(async move { one.put(&format!("one/{i}"), &value(&format!("1-{i}"))).await }));
        tasks
            .push(tokio::spawn(async move { two.put(&format!("two/{i}"), &value(&format!("2-{i}"))).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let store = open();
    assert_eq!(store.list("").await.unwrap().len(), 50);
    for i in 0..25 {
        assert_eq!(
            store.get(&format!("two/{i}"), &Version::Current).await.unwrap().value.expose_secret(),
            format!("2-{i}")
        );
    }
}

#[tokio::test]
async fn old_unlabelled_versions_are_pruned_but_current_and_previous_stay() {
    let (_dir, store) = crate::file_store();
    for i in 0..30 {
        store.put("app/rotating", &value(&format!("v{i}"))).await.unwrap();
    }
    let history = store.history("app/rotating").await.unwrap();
    assert_eq!(history.len(), 20);
    assert_eq!(history[0].stages, [prodready_secrets::CURRENT]);
    assert_eq!(history[1].stages, [prodready_secrets::PREVIOUS]);
}

#[tokio::test]
async fn the_environment_backend_reads_and_refuses_writes() {
    let store =
        prodready_secrets::Store::Env(prodready_secrets::EnvStore::new([("APP_TOKEN", "t"), ("OTHER", "o")]));
    assert_eq!(store.get("APP_TOKEN", &Version::Current).await.unwrap().value.expose_secret(), "t");
    let names: Vec<String> = store.list("APP_").await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["APP_TOKEN"]);
    let err = store.put("APP_TOKEN", &value("x")).await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(format!("{store:?}").contains("APP_TOKEN") && !format!("{store:?}").contains("\"t\""));
}
