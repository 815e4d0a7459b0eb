//! prodready-secrets against its real backends: the encrypted file and AWS Secrets Manager on moto.

mod aws;
mod behaviour;
mod cache;
mod dotenv;
mod file;
mod migrate;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Forwards every request to `upstream` and records Secrets Manager operation names (`X-Amz-Target`).
pub struct RecordingProxy {
    pub url: String,
    operations: Arc<std::sync::Mutex<Vec<String>>>,
    pub requests: Arc<AtomicUsize>,
}

impl RecordingProxy {
    pub async fn start(upstream: String) -> Self {
        let operations = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::new();
        let app = {
            let (operations, requests) = (operations.clone(), requests.clone());
            axum::Router::new().fallback(move |request: axum::extract::Request| {
                let (http, upstream, operations, requests) =
                    (http.clone(), upstream.clone(), operations.clone(), requests.clone());
                async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    let (parts, body) = request.into_parts();
                    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
                        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
                        operations.lock().unwrap().push(op);
                    }
                    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
                    let mut forward = http.request(parts.method.clone(), url).body(body);
                    for (name, value) in &parts.headers {
                        if name != "host" && name != "content-length" {
                            forward = forward.header(name, value);
                        }
                    }
                    let answer = forward.send().await.unwrap();
                    let mut response = axum::http::Response::builder().status(answer.status().as_u16());
                    for (name, value) in answer.headers() {
                        if name != "transfer-encoding" && name != "content-length" {
                            response = response.header(name, value);
                        }
                    }
                    response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: format!("http://{addr}"), operations, requests }
    }

    /// Operations recorded so far, then forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().unwrap())
    }
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
