//! [`CachingClient`]: a service's view of its secrets. Values are served from memory for a TTL, the cache
//! holds a bounded number of secrets (least recently used goes first), a value past its TTL is still
//! served when the store fails transiently (throttling, 5xx, timeouts), and `refresh` re-reads at once,
//! e.g. after a rotation. Time is `tokio::time`, so tests drive it with a paused clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::Result;
use crate::store::{SecretSource, Version};

/// Cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// How long a value is served without asking the store (default 5 minutes, as the AWS Secrets
    /// Manager Agent).
    pub ttl: Duration,
    /// Secrets kept at most (default 1,000).
    pub max_entries: usize,
    /// How long past its TTL a value may still be served while the store fails transiently; `None`
    /// means without limit (default 1 hour).
    pub max_stale: Option<Duration>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_entries: 1_000,
            max_stale: Some(Duration::from_secs(3_600)),
        }
    }
}

/// What the cache did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Values served past their TTL because the store failed transiently.
    pub stale_served: u64,
    pub evictions: u64,
}

struct Entry {
    value: SecretString,
    fetched: Instant,
    used: Instant,
    /// The ticket of the read that produced it: an older read finishing late never overwrites it.
    ticket: u64,
}

/// A caching reader over any store.
pub struct CachingClient<S> {
    source: S,
    options: CacheOptions,
    entries: Mutex<HashMap<String, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    evictions: AtomicU64,
    tickets: AtomicU64,
}

impl<S> std::fmt::Debug for CachingClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingClient").field("options", &self.options).finish_non_exhaustive()
    }
}

impl<S: SecretSource> CachingClient<S> {
    pub fn new(source: S, options: CacheOptions) -> Self {
        Self {
            source,
            options: CacheOptions { max_entries: options.max_entries.max(1), ..options },
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            tickets: AtomicU64::new(0),
        }
    }

    /// The store underneath.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The current value: from memory within the TTL, else from the store; past the TTL and within
    /// `max_stale`, the cached value when the store fails transiently.
    pub async fn get(&self, name: &str) -> Result<SecretString> {
        let now = Instant::now();
        let cached = {
            let mut entries = self.lock();
            entries.get_mut(name).map(|e| {
                e.used = now;
                (e.value.clone(), now.duration_since(e.fetched))
            })
        };
        if let Some((value, age)) = &cached
            && *age < self.options.ttl
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        match self.fetch(name).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_transient() => match cached {
                Some((value, age))
                    if self.options.max_stale.is_none_or(|max| age < self.options.ttl + max) =>
                {
                    self.stale_served.fetch_add(1, Ordering::Relaxed);
                    Ok(value)
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Reads the store now, whatever the TTL says, and caches the result. On a transient error the
    /// cached value (if any) stays; a secret that is gone (not found, scheduled for deletion) is dropped.
    pub async fn refresh(&self, name: &str) -> Result<SecretString> {
        self.fetch(name).await
    }

    /// Forgets one secret.
    pub fn invalidate(&self, name: &str) {
        self.lock().remove(name);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Secrets held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn fetch(&self, name: &str) -> Result<SecretString> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        let secret = match self.source.get(name, &Version::Current).await {
            Ok(secret) => secret,
            Err(e) => {
                // A secret that is gone must not come back as a stale value on a later outage.
                if matches!(e, crate::Error::NotFound(_) | crate::Error::ScheduledForDeletion { .. }) {
                    let mut entries = self.lock();
                    if entries.get(name).is_some_and(|entry| entry.ticket < ticket) {
                        entries.remove(name);
                    }
                }
                return Err(e);
            }
        };
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.get(name).is_some_and(|entry| entry.ticket > ticket) {
            return Ok(secret.value);
        }
        if !entries.contains_key(name) && entries.len() >= self.options.max_entries {
            let oldest = entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        entries
            .insert(name.to_owned(), Entry { value: secret.value.clone(), fetched: now, used: now, ticket });
        Ok(secret.value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent: every change is one call.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
