//! The store: aws-sdk-s3 on a small tokio runtime owned by this plugin, with the calls the
//! sink makes (check the bucket, put, multipart upload) and what their failures mean.
//!
//! Throttling, 5xx answers, timeouts and refused connections are retried inside the SDK
//! with exponential backoff (`s3.part.retries`, `s3.retry.backoff.ms`); what still fails
//! is a *retriable* [`StoreError`] (the worker redelivers the batch) and anything else
//! (no such bucket, access denied, bad credentials) a permanent one that fails the task.
//!
//! Requests ask for checksums only when S3 requires them: the SDK's default trailing
//! checksums break many S3-compatible stores.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tributary_plugin_sdk::ConnectError;

use crate::config::StoreSettings;

/// The plugin's one runtime, shared by its tasks: one worker thread drives every
/// request (they are network-bound), sized for a 2-core machine.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-sink-io")
            .enable_all()
            .build()
            .expect("a one-thread tokio runtime")
    })
}

/// A failed store call: what was being done, and whether trying again may help.
#[derive(Debug)]
pub struct StoreError {
    pub retriable: bool,
    pub message: String,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for ConnectError {
    fn from(e: StoreError) -> ConnectError {
        if e.retriable {
            ConnectError::retriable(e.message)
        } else {
            ConnectError::new(e.message)
        }
    }
}

/// One bucket of one store.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    bucket: String,
    endpoint: String,
}

impl Store {
    /// A client for the settings (no request is made).
    pub fn new(s: &StoreSettings) -> Store {
        let rt = runtime();
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(s.region.clone()));
        if let Some((id, secret)) = &s.credentials {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "tributary-s3-sink-config",
            ));
        }
        let shared = rt.block_on(loader.load());
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(s.retries + 1)
                    .with_initial_backoff(s.retry_backoff)
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            )
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &s.endpoint {
            b = b.endpoint_url(url).force_path_style(s.path_style);
        }
        Store {
            client: Client::from_conf(b.build()),
            bucket: s.bucket.clone(),
            endpoint: s
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS S3 in {}", s.region)),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Answer a failed call: retriable or not, with what to do.
    fn error<E>(
        &self,
        what: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_owned);
        let (retriable, hint) = match (&e, status, code.as_deref()) {
            (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => (
                true,
                format!("is the store at {} reachable?", self.endpoint),
            ),
            (_, _, Some("NoSuchBucket" | "NotFound")) | (_, Some(404), _) => (
                false,
                format!(
                    "bucket {} does not exist at {}: create it, or fix s3.bucket.name / s3.region / store.url",
                    self.bucket, self.endpoint
                ),
            ),
            (
                _,
                _,
                Some(
                    "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "InvalidToken"
                    | "ExpiredToken",
                ),
            )
            | (_, Some(401 | 403), _) => (
                false,
                format!(
                    "access to bucket {} denied: check aws.access.key.id / aws.secret.access.key (or the AWS credential chain) and the bucket's policy",
                    self.bucket
                ),
            ),
            (_, Some(s), _) if s == 429 || s >= 500 => (
                true,
                "the store is throttling or failing; retried with backoff".to_owned(),
            ),
            (_, _, Some("SlowDown" | "RequestTimeout" | "InternalError")) => {
                (true, "retried with backoff".to_owned())
            }
            (SdkError::ResponseError(_), _, _) => (true, "an unreadable answer".to_owned()),
            _ => (false, "see the cause above".to_owned()),
        };
        let cause = match e {
            SdkError::ServiceError(s) => {
                let err = s.err();
                format!(
                    "{} ({}): {}",
                    err.code().unwrap_or("error"),
                    status.map(|s| s.to_string()).unwrap_or_default(),
                    err.message().unwrap_or("no message")
                )
            }
            other => {
                let mut m = other.to_string();
                let mut src = std::error::Error::source(&other);
                while let Some(s) = src {
                    m.push_str(": ");
                    m.push_str(&s.to_string());
                    src = s.source();
                }
                m
            }
        };
        StoreError {
            retriable,
            message: format!("{what}: {cause}; {hint}"),
        }
    }

    /// Check the bucket exists and is ours to write.
    pub fn check_bucket(&self) -> Result<(), StoreError> {
        runtime()
            .block_on(self.client.head_bucket().bucket(&self.bucket).send())
            .map(|_| ())
            .map_err(|e| self.error(&format!("checking bucket {}", self.bucket), e))
    }

    /// One object in one request.
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        runtime()
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| self.error(&format!("uploading s3://{}/{key}", self.bucket), e))
    }

    pub fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        let out = runtime()
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .map_err(|e| {
                self.error(
                    &format!(
                        "starting the multipart upload of s3://{}/{key}",
                        self.bucket
                    ),
                    e,
                )
            })?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError {
                retriable: true,
                message: format!("the store gave no upload id for s3://{}/{key}", self.bucket),
            })
    }

    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<CompletedPart, StoreError> {
        let out = runtime()
            .block_on(
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| {
                self.error(
                    &format!("uploading part {number} of s3://{}/{key}", self.bucket),
                    e,
                )
            })?;
        Ok(CompletedPart::builder()
            .set_e_tag(out.e_tag().map(str::to_owned))
            .part_number(number)
            .build())
    }

    pub fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), StoreError> {
        runtime()
            .block_on(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| {
                self.error(
                    &format!(
                        "completing the multipart upload of s3://{}/{key}",
                        self.bucket
                    ),
                    e,
                )
            })
    }

    /// Give up an unfinished multipart upload (its parts are deleted); best effort.
    pub fn abort_multipart(&self, key: &str, upload_id: &str) {
        let r = runtime().block_on(
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send(),
        );
        if let Err(e) = r {
            let e = self.error("aborting a multipart upload", e);
            tracing_warn(&format!(
                "{e} (the parts stay until the bucket's lifecycle rules remove them)"
            ));
        }
    }

    /// Every key under `prefix`, in order (for tests and tools).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_sizes(prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// One object's bytes (for tests and tools).
    pub fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let what = format!("reading s3://{}/{key}", self.bucket);
        runtime().block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| self.error(&what, e))?;
            let body = out.body.collect().await.map_err(|e| StoreError {
                retriable: true,
                message: format!("{what}: {e}"),
            })?;
            Ok(body.into_bytes().to_vec())
        })
    }

    /// Every key under `prefix` with its size, in order (for tests and tools).
    pub fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = runtime()
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.take())
                        .send(),
                )
                .map_err(|e| self.error(&format!("listing s3://{}/{prefix}", self.bucket), e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| Some((o.key()?.to_owned(), o.size().unwrap_or(0)))),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// Create the bucket (for tests and benchmarks).
    pub fn create_bucket(&self) -> Result<(), StoreError> {
        runtime()
            .block_on(self.client.create_bucket().bucket(&self.bucket).send())
            .map(|_| ())
            .map_err(|e| self.error(&format!("creating bucket {}", self.bucket), e))
    }
}

/// Plugins log through the worker's stderr (the SDK has no logging channel of its own).
pub fn tracing_warn(message: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("WARN S3Sink: {message}");
    }
}

/// An object being uploaded: bytes gather here and go out as multipart parts once
/// there are `part_size` of them; [`Upload::complete`] sends the rest (a plain put when
/// the object is smaller than a part). Every step may be retried after a failure: a part
/// once uploaded is not sent again.
#[derive(Debug)]
pub struct Upload {
    pub key: String,
    buf: Vec<u8>,
    multipart: Option<(String, Vec<CompletedPart>)>,
    pub bytes: u64,
}

impl Upload {
    pub fn new(key: String) -> Upload {
        Upload {
            key,
            buf: Vec::new(),
            multipart: None,
            bytes: 0,
        }
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn extend(&mut self, bytes: Vec<u8>) {
        self.bytes += bytes.len() as u64;
        if self.buf.is_empty() {
            self.buf = bytes;
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Send full parts while there are enough bytes.
    pub fn flush_parts(&mut self, store: &Store, part_size: usize) -> Result<(), StoreError> {
        while self.buf.len() >= part_size {
            let upload_id = match &self.multipart {
                Some((id, _)) => id.clone(),
                None => {
                    let id = store.create_multipart(&self.key)?;
                    self.multipart = Some((id.clone(), Vec::new()));
                    id
                }
            };
            let number = self.multipart.as_ref().map_or(0, |(_, p)| p.len()) as i32 + 1;
            let rest = self.buf.split_off(part_size);
            let part = std::mem::replace(&mut self.buf, rest);
            match store.upload_part(&self.key, &upload_id, number, part.clone()) {
                Ok(done) => {
                    if let Some((_, parts)) = &mut self.multipart {
                        parts.push(done);
                    }
                }
                Err(e) => {
                    // Put the part back in front: a retry sends it again.
                    let mut back = part;
                    back.extend_from_slice(&self.buf);
                    self.buf = back;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Send what is left and make the object visible.
    pub fn complete(&mut self, store: &Store, part_size: usize) -> Result<(), StoreError> {
        if self.multipart.is_none() && self.buf.len() < part_size {
            return store.put(&self.key, self.buf.clone());
        }
        self.flush_parts(store, part_size)?;
        let Some((id, parts)) = &mut self.multipart else {
            return store.put(&self.key, self.buf.clone());
        };
        if !self.buf.is_empty() {
            let number = parts.len() as i32 + 1;
            let done = store.upload_part(&self.key, id, number, self.buf.clone())?;
            parts.push(done);
            self.buf.clear();
        }
        store.complete_multipart(&self.key, id, parts.clone())
    }

    /// Give up: abort a started multipart upload.
    pub fn abort(&mut self, store: &Store) {
        if let Some((id, _)) = self.multipart.take() {
            store.abort_multipart(&self.key, &id);
        }
    }
}
