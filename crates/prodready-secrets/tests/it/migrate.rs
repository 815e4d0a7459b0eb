//! `.env` migration and `load_env`, on the file store and on moto.

use prodready_secrets::migrate::{self, Action};
use prodready_secrets::{
    Error, ExposeSecret as _, LoadOptions, SecretStore, SecretString, Version, load_env, parse_dotenv,
};

const ENV_FILE: &str = r#"
# the app's settings
export DATABASE_URL="postgres://app:s3cr3t-db@db:5432/app"
API_TOKEN=tok-123456
MULTI_LINE='-----BEGIN KEY-----
abc
-----END KEY-----'
"#;

fn actions(plan: &migrate::Plan) -> Vec<(&str, Action)> {
    plan.items.iter().map(|i| (i.name.as_str(), i.action)).collect()
}

async fn migrate_twice<S: SecretStore>(store: &S) {
    let entries = parse_dotenv(".env", ENV_FILE).unwrap();
    let plan = migrate::plan(store, &entries, "prod/app/").await.unwrap();
    assert_eq!(
        actions(&plan),
        [
            ("prod/app/database-url", Action::Add),
            ("prod/app/api-token", Action::Add),
            ("prod/app/multi-line", Action::Add)
        ]
    );
    let applied = migrate::apply(store, &entries, &plan).await.unwrap();
    assert_eq!((applied.added, applied.changed, applied.unchanged, applied.writes), (3, 0, 0, 3));
    let url = store.get("prod/app/database-url", &Version::Current).await.unwrap();
    assert_eq!(url.value.expose_secret(), "postgres://app:s3cr3t-db@db:5432/app");

    // The second run: everything unchanged, nothing written.
    let plan = migrate::plan(store, &entries, "prod/app/").await.unwrap();
    assert_eq!(plan.count(Action::Unchanged), 3);
    let applied = migrate::apply(store, &entries, &plan).await.unwrap();
    assert_eq!((applied.added, applied.changed, applied.writes), (0, 0, 0));

    // One value changed in the file: one change.
    let edited = ENV_FILE.replace("tok-123456", "tok-654321");
    let entries = parse_dotenv(".env", &edited).unwrap();
    let plan = migrate::plan(store, &entries, "prod/app/").await.unwrap();
    assert_eq!(plan.count(Action::Change), 1);
    assert_eq!(plan.items[1].action, Action::Change);
    assert_eq!(migrate::apply(store, &entries, &plan).await.unwrap().writes, 1);
    // The plan itself never holds a value.
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("tok-") && !json.contains("s3cr3t"), "{json}");

    // load_env maps the names back.
    let env = load_env(store, &LoadOptions { prefix: "prod/app/".into(), only: vec![] }).await.unwrap();
    let vars: Vec<&str> = env.iter().map(|(var, _, _)| var).collect();
    assert_eq!(vars, ["API_TOKEN", "DATABASE_URL", "MULTI_LINE"]);
    assert_eq!(env.require("API_TOKEN").unwrap().expose_secret(), "tok-654321");
    assert!(!format!("{env:?}").contains("tok-"));
    let only = load_env(store, &LoadOptions { prefix: "prod/app/".into(), only: vec!["api-token".into()] })
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    let err = load_env(store, &LoadOptions { prefix: "prod/app/".into(), only: vec!["NOPE".into()] })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maps to NOPE"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_into_the_file_store_twice_changes_nothing_the_second_time() {
    let (dir, store) = crate::file_store();
    migrate_twice(&store).await;
    // The second run did not touch the file: same bytes after another run.
    let before = std::fs::read(dir.path().join("secrets.enc")).unwrap();
    let entries = parse_dotenv(".env", &ENV_FILE.replace("tok-123456", "tok-654321")).unwrap();
    let plan = migrate::plan(&store, &entries, "prod/app/").await.unwrap();
    migrate::apply(&store, &entries, &plan).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("secrets.enc")).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_into_secrets_manager_twice_makes_no_write_call_the_second_time() {
    let moto = crate::moto();
    let proxy = prodready_test_support::Proxy::start(moto.endpoint()).await;
    let store = crate::aws_store(proxy.url()).await;
    migrate_twice(&store).await;
    proxy.take_operations();
    let entries = parse_dotenv(".env", &ENV_FILE.replace("tok-123456", "tok-654321")).unwrap();
    let plan = migrate::plan(&store, &entries, "prod/app/").await.unwrap();
    assert_eq!(plan.count(Action::Unchanged), 3);
    migrate::apply(&store, &entries, &plan).await.unwrap();
    let ops = proxy.take_operations();
    assert!(!ops.is_empty(), "the proxy saw no request at all");
    assert!(crate::writes(&ops).is_empty(), "the unchanged run wrote: {ops:?}");
}

#[tokio::test]
async fn two_secrets_mapping_to_one_variable_are_refused() {
    let (_dir, store) = crate::file_store();
    store.put("app/db-url", &SecretString::from("a".to_owned())).await.unwrap();
    store.put("app/db_url", &SecretString::from("b".to_owned())).await.unwrap();
    let err = load_env(&store, &LoadOptions { prefix: "app/".into(), only: vec![] }).await.unwrap_err();
    assert!(matches!(&err, Error::Collision { var, .. } if var == "DB_URL"), "{err}");
    assert_eq!(
        err.to_string(),
        "secrets `app/db-url` and `app/db_url` both map to the environment variable DB_URL; rename one"
    );
}

#[tokio::test]
async fn two_keys_that_become_one_secret_are_refused() {
    let (_dir, store) = crate::file_store();
    for text in ["DB_URL=a\ndb_url=b\n", "db.url=a\ndb-url=b\n"] {
        let entries = parse_dotenv(".env", text).unwrap();
        let err = migrate::plan(&store, &entries, "p/").await.unwrap_err().to_string();
        assert!(err.contains("both become") && !err.contains("=a"), "{err}");
    }
}

#[test]
fn names_map_both_ways() {
    use prodready_secrets::{env_var_name, secret_name};
    for (name, prefix, var) in [
        ("prod/app/database-url", "prod/app/", "DATABASE_URL"),
        ("prod/app/stripe.key", "prod/app/", "STRIPE_KEY"),
        ("other/x", "prod/app/", "OTHER_X"),
        ("prod/app/2fa-seed", "prod/app/", "_2FA_SEED"),
    ] {
        assert_eq!(env_var_name(name, prefix), var, "{name}");
    }
    assert_eq!(secret_name("DATABASE_URL", "prod/app/"), "prod/app/database-url");
    assert_eq!(env_var_name(&secret_name("API_TOKEN", "p/"), "p/"), "API_TOKEN");
}
