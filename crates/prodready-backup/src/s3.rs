//! The S3 store: `s3://BUCKET/PREFIX/<id>/<object>`. Objects stream up as multipart uploads (one part in
//! flight per object, part size growing so 10,000 parts always suffice); an upload that does not finish
//! is aborted; the SDK retries 5xx, SlowDown, timeouts and resets with exponential backoff and jitter.
//!
//! The store's methods are synchronous (the backup pipeline calls them from blocking threads); they drive
//! the async SDK on the runtime the store was opened in.

use std::future::Future;
use std::io::Read;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};

use crate::{Error, Result};

/// The first part size; it doubles every 1,000 parts (S3 allows 10,000 parts of 5 MiB to 5 GiB).
const FIRST_PART: usize = 8 * 1024 * 1024;

/// The size of part `index` (0-based): 8 MiB for the first 1,000 parts, doubling every 1,000 up to 4 GiB,
/// so that 10,000 parts hold about 8 TiB, more than S3's 5 TiB object limit.
pub(crate) fn part_size(index: usize) -> usize {
    FIRST_PART << (index / 1000).min(9)
}

/// How many parts an object of `size` bytes takes, and the largest part.
#[cfg(test)]
fn parts_for(size: u64) -> (usize, usize) {
    let (mut count, mut covered, mut largest) = (0usize, 0u64, 0usize);
    while covered < size {
        let part = part_size(count);
        covered += part as u64;
        largest = part;
        count += 1;
    }
    (count, largest)
}

/// How to reach S3.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// A custom endpoint (MinIO, moto); overrides the SDK configuration's.
    pub endpoint: Option<String>,
    /// Path-style addressing; `None` means path-style whenever a custom endpoint is set.
    pub path_style: Option<bool>,
    /// Attempts per request (the SDK's standard retry mode, exponential backoff with jitter).
    pub max_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    handle: tokio::runtime::Handle,
}

/// A listed key and its last-modified time (Unix seconds).
type Key = (String, Option<i64>);

fn err(path: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Store {
        path: path.to_owned(),
        source: format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)).into(),
    }
}

impl S3Store {
    /// Opens `s3://BUCKET[/PREFIX]`. Must be called inside a tokio runtime (multi-threaded).
    pub fn new(sdk: &aws_config::SdkConfig, location: &str, options: &S3Options) -> Result<Self> {
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| Error::Invalid(format!("{location}: an S3 store is s3://BUCKET/PREFIX")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Invalid(format!(
                "{location}: the bucket name is missing (s3://BUCKET/PREFIX)"
            )));
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Invalid("an S3 store must be opened inside a tokio runtime".to_owned()))?;
        let mut config = aws_sdk_s3::config::Builder::from(sdk).retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(options.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(200)),
        );
        let endpoint = options.endpoint.clone().or_else(|| sdk.endpoint_url().map(str::to_owned));
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        config = config.force_path_style(options.path_style.unwrap_or(endpoint.is_some()));
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            handle,
        })
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(future))
    }

    pub fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn base(&self) -> String {
        if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) }
    }

    fn key(&self, id: &str, name: &str) -> String {
        format!("{}{id}/{name}", self.base())
    }

    /// Every key under `prefix`, with its last-modified time.
    fn list(&self, prefix: &str) -> Result<Vec<Key>> {
        Ok(self.list_pages(prefix, None)?.0)
    }

    /// One listing of `prefix`, every page: the keys with their last-modified times and, with a
    /// `delimiter`, the common prefixes (the "directories" right under `prefix`) instead of what is in them.
    fn list_pages(&self, prefix: &str, delimiter: Option<&str>) -> Result<(Vec<Key>, Vec<String>)> {
        self.run(async {
            let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_delimiter(delimiter.map(str::to_owned))
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| err(&self.location(), e))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| Some((o.key()?.to_owned(), o.last_modified().map(|t| t.secs())))),
                );
                prefixes.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)));
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                    _ => return Ok((keys, prefixes)),
                }
            }
        })
    }

    /// The top-level "directories" under the prefix, listed with a delimiter: one entry per backup (and
    /// one for the WAL archive), not one per object, so a store holding months of WAL and many backups'
    /// parts is listed in a request or two.
    pub fn ids(&self) -> Result<Vec<String>> {
        let base = self.base();
        let (_, prefixes) = self.list_pages(&base, Some("/"))?;
        let mut ids: Vec<String> = prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(&base)?.strip_suffix('/'))
            .filter(|id| !id.is_empty() && !id.starts_with('.'))
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    pub fn objects(&self, id: &str) -> Result<Vec<String>> {
        let prefix = self.key(id, "");
        let mut names: Vec<String> = self
            .list(&prefix)?
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every object under `id/dir` (the whole of `id` when `dir` is empty), named relative to `id`.
    pub fn list_under(&self, id: &str, dir: &str) -> Result<Vec<crate::store::Listed>> {
        let base = self.key(id, "");
        let prefix = if dir.is_empty() { base.clone() } else { format!("{base}{dir}/") };
        Ok(self
            .list(&prefix)?
            .into_iter()
            .filter_map(|(key, modified_unix)| {
                Some(crate::store::Listed { name: key.strip_prefix(&base)?.to_owned(), modified_unix })
            })
            .collect())
    }

    pub fn exists(&self, id: &str, name: &str) -> Result<bool> {
        let key = self.key(id, name);
        match self.run(async { self.client.head_object().bucket(&self.bucket).key(&key).send().await }) {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found) =>
            {
                Ok(false)
            }
            Err(e) => Err(err(&key, e)),
        }
    }

    pub fn idle_for(&self, id: &str) -> Option<Duration> {
        // An upload in progress under this id is activity: its bytes show in no listing until it completes.
        let prefix = self.key(id, "");
        let uploads = self
            .run(async {
                self.client.list_multipart_uploads().bucket(&self.bucket).prefix(&prefix).send().await
            })
            .ok()?;
        if !uploads.uploads().is_empty() {
            return Some(Duration::ZERO);
        }
        let newest = self.list(&prefix).ok()?.into_iter().filter_map(|(_, t)| t).max()?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(now.saturating_sub(u64::try_from(newest).unwrap_or(0))))
    }

    pub fn open_object(&self, id: &str, name: &str) -> Result<Box<dyn Read + Send>> {
        let key = self.key(id, name);
        let output = self
            .run(async { self.client.get_object().bucket(&self.bucket).key(&key).send().await })
            .map_err(|e| err(&key, e))?;
        let reader = output.body.into_async_read();
        let bridge = tokio_util::io::SyncIoBridge::new_with_handle(reader, self.handle.clone());
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, Blocking(bridge))))
    }

    pub fn put(&self, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let key = self.key(id, name);
        let body = ByteStream::from(bytes.to_vec());
        self.run(async {
            self.client.put_object().bucket(&self.bucket).key(&key).if_none_match("*").body(body).send().await
        })
        .map(drop)
        .map_err(|e| err(&key, e))
    }

    pub fn delete(&self, id: &str, name: &str) -> Result<()> {
        let key = self.key(id, name);
        self.run(async { self.client.delete_object().bucket(&self.bucket).key(&key).send().await })
            .map(drop)
            .map_err(|e| err(&key, e))
    }

    pub fn delete_backup(&self, id: &str) -> Result<()> {
        let keys: Vec<String> = self.list(&self.key(id, ""))?.into_iter().map(|(k, _)| k).collect();
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().map_err(|e| err(k, e)))
                .collect::<Result<_>>()?;
            let delete =
                Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|e| err(id, e))?;
            self.run(async { self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await })
                .map_err(|e| err(id, e))?;
        }
        Ok(())
    }

    pub fn abort_incomplete_uploads(&self, older_than: Duration) -> Result<usize> {
        let cutoff = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let cutoff = i64::try_from(cutoff.saturating_sub(older_than.as_secs())).unwrap_or(0);
        // Every page of in-progress uploads under the prefix (S3 returns at most 1,000 per page).
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .run(async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(self.base())
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                })
                .map_err(|e| err(&self.location(), e))?;
            uploads.extend(page.uploads().iter().cloned());
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if page.is_truncated() != Some(true) || key_marker.is_none() {
                break;
            }
        }
        let mut aborted = 0;
        for upload in &uploads {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else { continue };
            // Only uploads of backups (`<prefix>/<id>/...`, ids like 20261129T020000Z-1a2b), never another
            // application's in the same bucket.
            let id = key.strip_prefix(&self.base()).and_then(|rest| rest.split_once('/')).map(|(id, _)| id);
            if !id.is_some_and(is_backup_id) || upload.initiated().is_some_and(|t| t.secs() > cutoff) {
                continue;
            }
            self.run(async {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
            })
            .map_err(|e| err(key, e))?;
            aborted += 1;
        }
        Ok(aborted)
    }

    pub fn upload(&self, id: &str, name: &str) -> Upload {
        Upload {
            store: self.clone(),
            key: self.key(id, name),
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            done: false,
        }
    }
}

/// `20261129T020000Z-1a2b`
fn is_backup_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && &b[15..17] == b"Z-"
        && b[17..].iter().all(u8::is_ascii_hexdigit)
}

/// One object going up. Small objects become one PUT; larger ones a multipart upload, aborted if the
/// upload is dropped before [`Upload::complete`].
pub struct Upload {
    store: S3Store,
    key: String,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    done: bool,
}

impl Upload {
    fn part_size(&self) -> usize {
        part_size(self.parts.len())
    }

    fn send_part(&mut self) -> std::io::Result<()> {
        let store = self.store.clone();
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = store
                    .run(async {
                        store
                            .client
                            .create_multipart_upload()
                            .bucket(&store.bucket)
                            .key(&self.key)
                            .send()
                            .await
                    })
                    .map_err(|e| std::io::Error::other(err(&self.key, e)))?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| std::io::Error::other("S3 returned no upload id"))?
                    .to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).map_err(std::io::Error::other)?;
        let body = ByteStream::from(std::mem::take(&mut self.buffer));
        let sent = store
            .run(async {
                store
                    .client
                    .upload_part()
                    .bucket(&store.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
            })
            .map_err(|e| std::io::Error::other(err(&self.key, e)))?;
        self.parts.push(
            CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag().map(str::to_owned)).build(),
        );
        Ok(())
    }

    pub fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= self.part_size() {
            self.send_part()?;
        }
        Ok(buf.len())
    }

    /// Sends what is left and makes the object visible.
    pub fn complete(mut self) -> Result<()> {
        let store = self.store.clone();
        if self.upload_id.is_none() {
            let body = ByteStream::from(std::mem::take(&mut self.buffer));
            store
                .run(async {
                    store
                        .client
                        .put_object()
                        .bucket(&store.bucket)
                        .key(&self.key)
                        .if_none_match("*")
                        .body(body)
                        .send()
                        .await
                })
                .map_err(|e| err(&self.key, e))?;
            self.done = true;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.send_part().map_err(|e| Error::Store { path: self.key.clone(), source: Box::new(e) })?;
        }
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let parts =
            CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        store
            .run(async {
                store
                    .client
                    .complete_multipart_upload()
                    .bucket(&store.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .multipart_upload(parts)
                    .if_none_match("*")
                    .send()
                    .await
            })
            .map_err(|e| err(&self.key, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let (false, Some(upload_id)) = (self.done, &self.upload_id) {
            let store = &self.store;
            let _ = store.run(async {
                store
                    .client
                    .abort_multipart_upload()
                    .bucket(&store.bucket)
                    .key(&self.key)
                    .upload_id(upload_id)
                    .send()
                    .await
            });
        }
    }
}

/// Reads a bridged async stream from any thread: a runtime worker steps aside (`block_in_place`) before
/// blocking on it.
struct Blocking<R>(R);

impl<R: Read> Read for Blocking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        tokio::task::block_in_place(|| self.0.read(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::parts_for;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    /// S3's rules: at most 10,000 parts, each from 5 MiB to 5 GiB (the last may be smaller).
    #[test]
    fn objects_up_to_s3s_limit_fit_in_10000_parts() {
        for (size, parts) in
            [(1, 1), (8 * MIB, 1), (8 * MIB + 1, 2), (5 * GIB + 1, 641), (5 * 1024 * GIB, 9_282)]
        {
            let (count, largest) = parts_for(size);
            assert_eq!(count, parts, "{size} bytes");
            assert!(count <= 10_000, "{size} bytes: {count} parts");
            assert!(
                largest as u64 <= 5 * GIB && largest as u64 >= 5 * MIB,
                "{size} bytes: parts of {largest}"
            );
        }
    }
}
