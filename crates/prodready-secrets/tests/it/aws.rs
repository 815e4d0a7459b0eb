//! Secrets Manager failure paths: throttling is retried and transient, and the caching client serves the
//! last value while the service is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prodready_secrets::{
    AwsOptions, AwsStore, CacheOptions, CachingClient, ExposeSecret as _, SecretSource as _,
    SecretStore as _, SecretString, Version,
};

/// Answers every request as Secrets Manager does when it throttles (JSON protocol, HTTP 400).
async fn throttling_endpoint() -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = {
        let seen = seen.clone();
        axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                axum::http::Response::builder()
                    .status(400)
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amzn-errortype", "ThrottlingException")
                    .body(axum::body::Body::from(
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                    ))
                    .unwrap()
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_then_reported_as_transient() {
    let (endpoint, seen) = throttling_endpoint().await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("t", "t", None, None, "test"))
        .load()
        .await;
    let store = AwsStore::new(&sdk, &AwsOptions { endpoint: Some(endpoint), region: None, max_attempts: 3 });
    let err = store.get("svc/key", &Version::Current).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 3, "the SDK should try three times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caching_client_serves_the_last_value_while_secrets_manager_is_down() {
    let moto = crate::moto();
    let store = crate::aws_store(&moto.endpoint()).await;
    store.put("svc/db-password", &SecretString::from("before-outage".to_owned())).await.unwrap();
    let cache = CachingClient::new(store, CacheOptions { ttl: Duration::ZERO, ..CacheOptions::default() });
    assert_eq!(cache.get("svc/db-password").await.unwrap().expose_secret(), "before-outage");
    drop(moto); // the service is gone: connections are refused
    assert_eq!(cache.get("svc/db-password").await.unwrap().expose_secret(), "before-outage");
    assert_eq!(cache.stats().stale_served, 1);
    // A secret never fetched has nothing to fall back on.
    assert!(cache.get("svc/other").await.unwrap_err().is_transient());
    // refresh never serves stale.
    assert!(cache.refresh("svc/db-password").await.is_err());
}
