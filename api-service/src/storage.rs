//! Upload storage on S3: bodies are streamed in parts (an S3 multipart upload once a file exceeds one
//! part, a single `PutObject` with a known length otherwise), so at most one part per upload is held in
//! memory whatever the file size, and at most [`MAX_CONCURRENT_UPLOADS`] uploads buffer at once.
//!
//! Bodies are sent with a CRC32 checksum, which S3 verifies before it stores the object, and without a
//! SigV4 payload hash (`UNSIGNED-PAYLOAD`, as the other AWS SDKs do for S3 over HTTPS): hashing the
//! body with SHA-256 was 42% of the service's CPU on 1 MiB uploads and protects nothing that TLS and
//! the checksum do not. The request itself (headers, key, checksum) is still signed.

use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart},
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Size of one S3 part (S3's minimum for all parts but the last is 5 MiB).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Uploads buffering a part at the same time; the rest wait (bounds memory to about 16 parts).
pub const MAX_CONCURRENT_UPLOADS: usize = 16;

/// The upload bucket and its client.
#[derive(Debug)]
pub struct Storage {
    client: Client,
    bucket: String,
    permits: Semaphore,
    /// Aborts started for uploads whose request was dropped, awaited at shutdown.
    aborts: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The multipart upload of one request, once started. Dropped before it completed (an error, the client
/// gone, the request timeout, shutdown), it aborts the upload on a task of its own (the request's future
/// is gone), which shutdown waits for.
struct PendingUpload<'a> {
    storage: &'a Storage,
    key: String,
    upload: Option<Multipart>,
}

impl Drop for PendingUpload<'_> {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        tracing::info!(key = %self.key, "upload cut short; aborting its multipart upload");
        let handle =
            runtime.spawn(abort(self.storage.client.clone(), self.storage.bucket.clone(), self.key.clone(), upload.id));
        let mut aborts = self.storage.aborts.lock().unwrap_or_else(|e| e.into_inner());
        aborts.retain(|h| !h.is_finished());
        aborts.push(handle);
    }
}

/// Abort a multipart upload, leaving no billable half-upload behind; a failure is logged, not returned.
async fn abort(client: Client, bucket: String, key: String, id: String) {
    if let Err(e) = client.abort_multipart_upload().bucket(&bucket).key(&key).upload_id(&id).send().await {
        tracing::warn!(error = ?e, %key, "aborting multipart upload failed");
    }
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The object key.
    pub key: String,
    /// Bytes written.
    pub size: u64,
}

fn s3_error(step: &'static str) -> impl FnOnce(aws_sdk_s3::Error) -> ApiError {
    move |e| ApiError::Internal(format!("S3 {step}: {e:?}"))
}

impl Storage {
    /// Storage on `bucket`, with an S3 client built from an SDK configuration (path-style addressing
    /// when `force_path_style`, for emulators).
    pub fn new(sdk_config: &aws_config::SdkConfig, bucket: String, force_path_style: bool) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(force_path_style).build();
        Self {
            client: Client::from_conf(s3_config),
            bucket,
            permits: Semaphore::new(MAX_CONCURRENT_UPLOADS),
            aborts: std::sync::Mutex::default(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Streams `body` to `key`. Fails with 413 (and leaves no object or pending upload behind) when
    /// the body exceeds `max_bytes`; an error from the body stream is returned as is.
    pub async fn upload<S>(
        &self,
        key: String,
        content_type: &StoredType,
        mut body: S,
        max_bytes: u64,
    ) -> Result<Stored, ApiError>
    where
        S: Stream<Item = Result<Bytes, ApiError>> + Unpin,
    {
        let _permit = self.permits.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut buffer = BytesMut::new();
        let mut size: u64 = 0;
        let mut pending = PendingUpload { storage: self, key: key.clone(), upload: None };
        let multipart = &mut pending.upload;
        let result = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(too_large(max_bytes));
                }
                buffer.extend_from_slice(&chunk);
                while buffer.len() >= PART_SIZE {
                    let part = buffer.split_to(PART_SIZE).freeze();
                    if multipart.is_none() {
                        *multipart = Some(self.start(&key, content_type).await?);
                    }
                    if let Some(upload) = multipart.as_mut() {
                        self.put_part(&key, upload, part).await?;
                    }
                }
            }
            match multipart.as_mut() {
                None => self.put_whole(&key, content_type, buffer.split().freeze()).await,
                Some(upload) => {
                    if !buffer.is_empty() || upload.parts.is_empty() {
                        self.put_part(&key, upload, buffer.split().freeze()).await?;
                    }
                    self.complete(&key, upload).await
                }
            }
        }
        .await;
        // Completed, or failed: an error aborts before it is answered (the guard's abort is for futures
        // that never get here).
        match (result, pending.upload.take()) {
            (Ok(()), _) => Ok(Stored { key, size }),
            (Err(err), upload) => {
                if let Some(upload) = upload {
                    abort(self.client.clone(), self.bucket.clone(), key, upload.id).await;
                }
                Err(err)
            }
        }
    }

    /// Wait (up to `timeout`) for the aborts of uploads cut short by a dropped request, so that a
    /// shutdown leaves none pending.
    pub async fn finish_aborts(&self, timeout: std::time::Duration) {
        let handles: Vec<_> = std::mem::take(&mut *self.aborts.lock().unwrap_or_else(|e| e.into_inner()));
        if tokio::time::timeout(timeout, futures::future::join_all(handles)).await.is_err() {
            tracing::warn!("aborting multipart uploads of dropped requests did not finish in time");
        }
    }

    async fn put_whole(&self, key: &str, content_type: &StoredType, bytes: Bytes) -> Result<(), ApiError> {
        let length = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&content_type.content_type)
            .set_content_disposition(content_type.disposition())
            .content_length(length)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| s3_error("PutObject")(e.into()))?;
        Ok(())
    }

    async fn start(&self, key: &str, content_type: &StoredType) -> Result<Multipart, ApiError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&content_type.content_type)
            .set_content_disposition(content_type.disposition())
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload")(e.into()))?;
        let id = created
            .upload_id()
            .ok_or_else(|| ApiError::Internal("S3 CreateMultipartUpload returned no upload id".into()))?
            .to_owned();
        Ok(Multipart { id, parts: Vec::new() })
    }

    async fn put_part(&self, key: &str, upload: &mut Multipart, part: Bytes) -> Result<(), ApiError> {
        let number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let length = i64::try_from(part.len()).unwrap_or(i64::MAX);
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.id)
            .part_number(number)
            .content_length(length)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(part))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| s3_error("UploadPart")(e.into()))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn complete(&self, key: &str, upload: &mut Multipart) -> Result<(), ApiError> {
        let parts = std::mem::take(&mut upload.parts);
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload")(e.into()))?;
        Ok(())
    }
}

struct Multipart {
    id: String,
    parts: Vec<CompletedPart>,
}

fn too_large(max_bytes: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("the file is larger than {max_bytes} bytes"))
}

/// The object key for an upload: `uploads/<uuid v4>[.<ext>]`. Only the extension of the client's file
/// name is kept, and only when it is 1 to 10 ASCII alphanumerics (lower-cased); the client's path never
/// reaches the key.
pub fn object_key(file_name: Option<&str>) -> String {
    let id = uuid::Uuid::new_v4();
    match file_name.and_then(sanitized_extension) {
        Some(ext) => format!("uploads/{id}.{ext}"),
        None => format!("uploads/{id}"),
    }
}

/// The safe extension of a client file name, if any.
pub fn sanitized_extension(file_name: &str) -> Option<String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (stem, ext) = base.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > 10 || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// How an upload is stored: its content type, and whether a browser must download it rather than show
/// it (`Content-Disposition: attachment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredType {
    /// The content type stored.
    pub content_type: String,
    /// Stored with `Content-Disposition: attachment`.
    pub attachment: bool,
}

impl StoredType {
    /// The client's content type when `allowed` lists it; any other (`text/html`, `image/svg+xml`: types
    /// a browser would render or run) is stored as `application/octet-stream`, as an attachment.
    pub fn of(content_type: Option<&str>, allowed: &[String]) -> StoredType {
        let given = sanitized_content_type(content_type);
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(&given)) {
            StoredType { content_type: given, attachment: false }
        } else {
            StoredType { content_type: "application/octet-stream".into(), attachment: true }
        }
    }

    fn disposition(&self) -> Option<String> {
        self.attachment.then(|| "attachment".to_string())
    }
}

/// The content type to store: the client's when it is a plain `type/subtype`, else
/// `application/octet-stream`.
pub fn sanitized_content_type(content_type: Option<&str>) -> String {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_'))
    };
    match content_type.and_then(|ct| ct.split_once('/')) {
        Some((kind, sub)) if ok(kind) && ok(sub) => {
            format!("{}/{}", kind.to_ascii_lowercase(), sub.to_ascii_lowercase())
        }
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_only_a_safe_extension() {
        assert_eq!(sanitized_extension("photo.JPG").as_deref(), Some("jpg"));
        assert_eq!(sanitized_extension("../../etc/passwd"), None);
        assert_eq!(sanitized_extension("..\\..\\evil.exe").as_deref(), Some("exe"));
        assert_eq!(sanitized_extension("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(sanitized_extension(".bashrc"), None);
        assert_eq!(sanitized_extension("a.b/c"), None);
        assert_eq!(sanitized_extension("x.p h p"), None);
        assert_eq!(sanitized_extension("x.verylongextension"), None);
        let key = object_key(Some("/tmp/../../x.png"));
        assert!(key.starts_with("uploads/") && key.ends_with(".png") && !key.contains(".."), "{key}");
        assert_eq!(key.len(), "uploads/".len() + 36 + 4);
        assert!(!object_key(None).contains('.'));
    }

    #[test]
    fn content_types_are_sanitized() {
        assert_eq!(sanitized_content_type(Some("image/PNG")), "image/png");
        assert_eq!(sanitized_content_type(Some("text/html; charset=utf-8")), "application/octet-stream");
        assert_eq!(sanitized_content_type(Some("nonsense")), "application/octet-stream");
        assert_eq!(sanitized_content_type(None), "application/octet-stream");
        let allowed = vec!["image/png".to_string(), "text/plain".to_string()];
        assert_eq!(
            StoredType::of(Some("image/PNG"), &allowed),
            StoredType { content_type: "image/png".into(), attachment: false }
        );
        for risky in ["text/html", "image/svg+xml", "application/javascript"] {
            let stored = StoredType::of(Some(risky), &allowed);
            assert_eq!(
                stored,
                StoredType { content_type: "application/octet-stream".into(), attachment: true },
                "{risky}"
            );
        }
    }
}
