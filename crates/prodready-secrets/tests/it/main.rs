//! prodready-secrets against its real backends: the encrypted file and AWS Secrets Manager on moto.

mod aws;
mod behaviour;
mod cache;
mod dotenv;
mod file;
mod migrate;

use prodready_secrets::{AwsOptions, AwsStore, FileStore, Key};
use prodready_test_support::Moto;

/// A file store with its key file in a fresh directory.
pub fn file_store() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("secrets.enc"), Key::File(dir.path().join("secrets.key")));
    (dir, store)
}

/// A Secrets Manager store on `endpoint` with dummy credentials.
pub async fn aws_store(endpoint: &str) -> AwsStore {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    AwsStore::new(&sdk, &AwsOptions { endpoint: Some(endpoint.to_owned()), region: None, max_attempts: 2 })
}

/// Starts moto.
pub fn moto() -> Moto {
    Moto::start()
}

/// Secrets Manager operations that change something.
pub fn writes(operations: &[String]) -> Vec<&String> {
    const WRITES: &[&str] = &[
        "CreateSecret",
        "PutSecretValue",
        "UpdateSecret",
        "UpdateSecretVersionStage",
        "DeleteSecret",
        "RestoreSecret",
        "TagResource",
    ];
    operations.iter().filter(|op| WRITES.contains(&op.as_str())).collect()
}
