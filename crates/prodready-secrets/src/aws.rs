//! AWS Secrets Manager. `get` always names the stage it wants (`AWSCURRENT` by default) rather than relying
//! on the service's default; `put` reads the current value first and writes nothing when it is equal. The
//! SDK fills in a random `ClientRequestToken` and reuses it across its own retries, so a retried put cannot
//! create a second version. Error messages are built from the error code, message and HTTP status only:
//! the SDK's full error context can hold a response body, and a response body can hold a value.

use std::time::Duration;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use secrecy::{ExposeSecret as _, SecretString};

use crate::store::{
    CURRENT, Delete, PREVIOUS, PutOutcome, Secret, SecretMeta, SecretSource, SecretStore, Version,
    VersionMeta, check_name, check_value,
};
use crate::{Error, Result};

/// How to reach Secrets Manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// A custom endpoint (moto, LocalStack); overrides the SDK configuration's.
    pub endpoint: Option<String>,
    /// A region; overrides the SDK configuration's.
    pub region: Option<String>,
    /// Attempts per request (the SDK's standard retry mode: exponential backoff with jitter on
    /// throttling, 5xx, timeouts and connection errors); 0 means the SDK default (3).
    pub max_attempts: u32,
}

/// AWS Secrets Manager.
#[derive(Debug, Clone)]
pub struct AwsStore {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsStore {
    /// A store from an SDK configuration (credentials, region, endpoint) and overrides.
    pub fn new(sdk: &aws_config::SdkConfig, options: &AwsOptions) -> Self {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(sdk);
        if options.max_attempts > 0 {
            config = config.retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(options.max_attempts)
                    .with_initial_backoff(Duration::from_millis(200)),
            );
        }
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        if let Some(region) = &options.region {
            config = config.region(aws_config::Region::new(region.clone()));
        }
        Self::from_client(aws_sdk_secretsmanager::Client::from_conf(config.build()))
    }

    /// A store over a client the caller built.
    pub fn from_client(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// The secret's versions and their stages, refusing a secret scheduled for deletion.
    async fn stages(&self, name: &str) -> Result<Vec<(String, Vec<String>)>> {
        let described =
            self.client.describe_secret().secret_id(name).send().await.map_err(|e| match code(&e) {
                Some("ResourceNotFoundException") => Error::NotFound(name.to_owned()),
                _ => aws_error("DescribeSecret", name, e),
            })?;
        if let Some(date) = described.deleted_date() {
            return Err(Error::ScheduledForDeletion { name: name.to_owned(), purge_after: rfc3339(date) });
        }
        let mut versions: Vec<(String, Vec<String>)> = described
            .version_ids_to_stages()
            .into_iter()
            .flatten()
            .map(|(id, stages)| (id.clone(), stages.clone()))
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// Turns an `InvalidRequestException` about a secret scheduled for deletion into
    /// [`Error::ScheduledForDeletion`] with its date.
    async fn explain(&self, name: &str, err: Error) -> Error {
        let invalid = matches!(&err, Error::Aws { source, .. }
            if source.to_string().starts_with("InvalidRequestException"));
        if invalid && let Err(e @ Error::ScheduledForDeletion { .. }) = self.stages(name).await {
            return e;
        }
        err
    }
}

impl SecretSource for AwsStore {
    fn backend(&self) -> &'static str {
        "aws"
    }

    async fn get(&self, name: &str, version: &Version) -> Result<Secret> {
        check_name(name)?;
        let request = self.client.get_secret_value().secret_id(name);
        let request = match version {
            Version::Current => request.version_stage(CURRENT),
            Version::Stage(stage) => request.version_stage(stage),
            Version::Id(id) => request.version_id(id),
        };
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {
                // A missing version and a missing secret share the code: tell them apart.
                return Err(match (version, self.stages(name).await) {
                    (Version::Current, _) => Error::NotFound(name.to_owned()),
                    (_, Ok(_)) => {
                        Error::VersionNotFound { name: name.to_owned(), version: version.to_string() }
                    }
                    (_, Err(e)) => e,
                });
            }
            Err(e) => return Err(self.explain(name, aws_error("GetSecretValue", name, e)).await),
        };
        let Some(text) = out.secret_string() else {
            return Err(Error::Invalid(format!(
                "secret `{name}` holds binary data (SecretBinary); prodready reads text secrets only"
            )));
        };
        Ok(Secret {
            name: name.to_owned(),
            version_id: out.version_id().unwrap_or_default().to_owned(),
            stages: out.version_stages().to_vec(),
            value: SecretString::from(text.to_owned()),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretMeta>> {
        let mut secrets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = self.client.list_secrets().max_results(100).set_next_token(token.take());
            if !prefix.is_empty() {
                request =
                    request.filters(Filter::builder().key(FilterNameStringType::Name).values(prefix).build());
            }
            let page = request.send().await.map_err(|e| aws_error("ListSecrets", prefix, e))?;
            for entry in page.secret_list() {
                let Some(name) = entry.name() else { continue };
                // The name filter also matches words inside names: keep true prefixes only.
                if !name.starts_with(prefix) || entry.deleted_date().is_some() {
                    continue;
                }
                secrets.push(SecretMeta {
                    name: name.to_owned(),
                    created: entry.created_date().map(rfc3339),
                    changed: entry.last_changed_date().map(rfc3339),
                    versions: entry.secret_versions_to_stages().map(|v| v.len()),
                });
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(secrets)
    }
}

impl SecretStore for AwsStore {
    async fn put(&self, name: &str, value: &SecretString) -> Result<PutOutcome> {
        check_name(name)?;
        check_value(name, value)?;
        match self.get(name, &Version::Current).await {
            Ok(current) if current.value.expose_secret() == value.expose_secret() => {
                Ok(PutOutcome::Unchanged)
            }
            Ok(_) => {
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| aws_error("PutSecretValue", name, e))?;
                Ok(PutOutcome::Updated)
            }
            Err(Error::NotFound(_)) => {
                self.client
                    .create_secret()
                    .name(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| aws_error("CreateSecret", name, e))?;
                Ok(PutOutcome::Created)
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, name: &str, how: Delete) -> Result<()> {
        check_name(name)?;
        let how = how.check()?;
        // Secrets Manager accepts a forced delete of a secret that does not exist: look first, so a typo
        // is an error rather than a silent success. A secret already scheduled can still be deleted now.
        match self.stages(name).await {
            Ok(_) => {}
            Err(Error::ScheduledForDeletion { .. }) if how == Delete::Now => {}
            Err(e) => return Err(e),
        }
        let request = self.client.delete_secret().secret_id(name);
        let request = match how {
            Delete::Now => request.force_delete_without_recovery(true),
            Delete::After { days } => request.recovery_window_in_days(i64::from(days)),
        };
        request.send().await.map_err(|e| aws_error("DeleteSecret", name, e))?;
        Ok(())
    }

    async fn history(&self, name: &str) -> Result<Vec<VersionMeta>> {
        check_name(name)?;
        self.stages(name).await?;
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_secret_version_ids()
                .secret_id(name)
                .include_deprecated(true)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error("ListSecretVersionIds", name, e))?;
            for v in page.versions() {
                versions.push((
                    v.created_date().map(|d| (d.secs(), d.subsec_nanos())),
                    VersionMeta {
                        version_id: v.version_id().unwrap_or_default().to_owned(),
                        stages: v.version_stages().to_vec(),
                        created: v.created_date().map(rfc3339),
                    },
                ));
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        versions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.version_id.cmp(&b.1.version_id)));
        Ok(versions.into_iter().map(|(_, v)| v).collect())
    }

    async fn restore(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self.stages(name).await {
            Err(Error::ScheduledForDeletion { .. }) => {}
            Ok(_) => return Err(Error::NotScheduled(name.to_owned())),
            Err(e) => return Err(e),
        }
        self.client
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| aws_error("RestoreSecret", name, e))?;
        Ok(())
    }

    async fn rollback(&self, name: &str) -> Result<VersionMeta> {
        check_name(name)?;
        let versions = self.stages(name).await?;
        let with =
            |stage: &str| versions.iter().find(|(_, s)| s.iter().any(|x| x == stage)).map(|(id, _)| id);
        let (Some(current), Some(previous)) = (with(CURRENT), with(PREVIOUS)) else {
            return Err(Error::NoPreviousVersion(name.to_owned()));
        };
        // Moving AWSCURRENT makes Secrets Manager label the version it leaves AWSPREVIOUS.
        self.client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(CURRENT)
            .move_to_version_id(previous)
            .remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| aws_error("UpdateSecretVersionStage", name, e))?;
        let now = self.stages(name).await?;
        let stages = now.iter().find(|(id, _)| id == previous).map(|(_, s)| s.clone()).unwrap_or_default();
        Ok(VersionMeta { version_id: previous.clone(), stages, created: None })
    }
}

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

fn aws_error<E, R>(operation: &'static str, name: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let (transient, message) = match &err {
        SdkError::TimeoutError(_) => (true, "timed out".to_owned()),
        SdkError::DispatchFailure(failure) => {
            // Connection and timeout failures are worth retrying; a missing credential is not.
            let transient = failure.is_io() || failure.is_timeout();
            let what = if failure.is_user() {
                "could not sign or send the request"
            } else {
                "could not send the request"
            };
            (transient, format!("{what}: {}", source_chain(&err)))
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status();
            (true, format!("unreadable response (HTTP {status})"))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status();
            let code = service.err().code().unwrap_or("no error code");
            let transient = status >= 500
                || status == 429
                || matches!(code, "ThrottlingException" | "Throttling" | "TooManyRequestsException");
            let mut message = format!("{code} (HTTP {status})");
            if let Some(text) = service.err().message() {
                message.push_str(": ");
                message.push_str(text);
            }
            (transient, message)
        }
        _ => (false, "could not build the request".to_owned()),
    };
    Error::Aws { operation, name: name.to_owned(), transient, source: message.into() }
}

/// The HTTP status of a raw response, whatever the SDK's response type.
trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_secretsmanager::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The error's sources, without its `Debug` context.
/// The causes of an SDK error (its own text is only "dispatch failure").
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    err.source().map_or_else(|| err.to_string(), prodready_stdx::error::chain)
}

fn rfc3339(date: &DateTime) -> String {
    DateTime::from_secs(date.secs()).fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| date.secs().to_string())
}
