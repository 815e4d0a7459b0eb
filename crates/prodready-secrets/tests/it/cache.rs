//! The caching client, driven by tokio's paused clock against a store that can be made to fail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prodready_secrets::{
    CacheOptions, CachingClient, Error, ExposeSecret as _, Result, Secret, SecretMeta, SecretSource,
    SecretString, Version,
};

/// An in-memory source that counts reads and fails on demand: the cache is under test here, not a store.
#[derive(Default)]
struct Source {
    values: Mutex<HashMap<String, String>>,
    fail: Mutex<Option<bool>>,
    reads: AtomicUsize,
}

impl Source {
    fn set(&self, name: &str, value: &str) {
        self.values.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }
    /// `Some(true)`: fail transiently; `Some(false)`: fail for good; `None`: answer.
    fn fail(&self, how: Option<bool>) {
        *self.fail.lock().unwrap() = how;
    }
}

impl SecretSource for Source {
    fn backend(&self) -> &'static str {
        "test"
    }

    async fn get(&self, name: &str, _version: &Version) -> Result<Secret> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        match *self.fail.lock().unwrap() {
            Some(true) => {
                return Err(Error::Io {
                    path: "store".into(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                });
            }
            Some(false) => return Err(Error::NotFound(name.to_owned())),
            None => {}
        }
        let value =
            self.values.lock().unwrap().get(name).cloned().ok_or_else(|| Error::NotFound(name.to_owned()))?;
        Ok(Secret {
            name: name.to_owned(),
            version_id: "v".into(),
            stages: vec![],
            value: SecretString::from(value),
        })
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<SecretMeta>> {
        Ok(Vec::new())
    }
}

fn client(options: CacheOptions) -> CachingClient<Source> {
    let source = Source::default();
    source.set("a", "a1");
    source.set("b", "b1");
    source.set("c", "c1");
    CachingClient::new(source, options)
}

async fn get(cache: &CachingClient<Source>, name: &str) -> String {
    cache.get(name).await.unwrap().expose_secret().to_owned()
}

fn reads(cache: &CachingClient<Source>) -> usize {
    cache.source().reads.load(Ordering::SeqCst)
}

const TTL: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn values_are_served_from_memory_until_the_ttl_passes() {
    let cache = client(CacheOptions { ttl: TTL, ..CacheOptions::default() });
    assert_eq!(get(&cache, "a").await, "a1");
    cache.source().set("a", "a2");
    tokio::time::advance(TTL - Duration::from_secs(1)).await;
    assert_eq!(get(&cache, "a").await, "a1");
    assert_eq!(reads(&cache), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(get(&cache, "a").await, "a2");
    assert_eq!(reads(&cache), 2);
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.stats().misses, 2);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_serves_the_stale_value_within_max_stale() {
    let max_stale = Duration::from_secs(600);
    let cache = client(CacheOptions { ttl: TTL, max_stale: Some(max_stale), ..CacheOptions::default() });
    assert_eq!(get(&cache, "a").await, "a1");
    cache.source().fail(Some(true));
    tokio::time::advance(TTL + Duration::from_secs(5)).await;
    assert_eq!(get(&cache, "a").await, "a1");
    assert_eq!(cache.stats().stale_served, 1);
    // Past TTL + max_stale the error comes through.
    tokio::time::advance(max_stale).await;
    assert!(cache.get("a").await.unwrap_err().is_transient());
    // Nothing cached: the error comes through at once.
    assert!(cache.get("b").await.is_err());
    // Recovered: fresh values again.
    cache.source().fail(None);
    cache.source().set("a", "a2");
    assert_eq!(get(&cache, "a").await, "a2");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_never_hidden_by_a_stale_value() {
    let cache = client(CacheOptions { ttl: TTL, ..CacheOptions::default() });
    assert_eq!(get(&cache, "a").await, "a1");
    cache.source().fail(Some(false));
    tokio::time::advance(TTL).await;
    assert!(matches!(cache.get("a").await, Err(Error::NotFound(_))));
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test(start_paused = true)]
async fn refresh_reads_now_and_keeps_the_old_value_on_failure() {
    let cache = client(CacheOptions { ttl: TTL, ..CacheOptions::default() });
    assert_eq!(get(&cache, "a").await, "a1");
    cache.source().set("a", "rotated");
    assert_eq!(cache.refresh("a").await.unwrap().expose_secret(), "rotated");
    assert_eq!(get(&cache, "a").await, "rotated");
    cache.source().fail(Some(true));
    assert!(cache.refresh("a").await.is_err());
    assert_eq!(get(&cache, "a").await, "rotated");
    cache.invalidate("a");
    assert!(cache.get("a").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_cache_holds_at_most_max_entries_dropping_the_least_recently_used() {
    let cache = client(CacheOptions { ttl: TTL, max_entries: 2, ..CacheOptions::default() });
    get(&cache, "a").await;
    tokio::time::advance(Duration::from_secs(1)).await;
    get(&cache, "b").await;
    tokio::time::advance(Duration::from_secs(1)).await;
    get(&cache, "a").await; // a is now more recent than b
    tokio::time::advance(Duration::from_secs(1)).await;
    get(&cache, "c").await; // evicts b
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().evictions, 1);
    let before = reads(&cache);
    get(&cache, "a").await;
    assert_eq!(reads(&cache), before, "a was evicted");
    get(&cache, "b").await;
    assert_eq!(reads(&cache), before + 1, "b was still cached");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_secret_is_forgotten_and_not_served_on_a_later_outage() {
    let cache = client(CacheOptions { ttl: TTL, ..CacheOptions::default() });
    assert_eq!(get(&cache, "a").await, "a1");
    cache.source().values.lock().unwrap().remove("a");
    tokio::time::advance(TTL).await;
    assert!(matches!(cache.get("a").await, Err(Error::NotFound(_))));
    cache.source().fail(Some(true));
    assert!(cache.get("a").await.unwrap_err().is_transient());
    assert_eq!(cache.stats().stale_served, 0);
}
