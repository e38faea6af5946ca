//! [`Ecr`] on the AWS SDK.
//!
//! Every call goes through [`Calls`]; repository lookups from concurrent reconciles are coalesced by a
//! [`Batcher`] into DescribeRepositories calls of up to 100 names per registry.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::types as sdk;

use super::batch::Batcher;
use super::calls::{self, Calls};
use super::{AwsError, AwsResult, Ecr, ErrorKind, ImageScan, Repository, Tags};
use crate::api::TagMutability;

const SERVICE: &str = "ecr";
/// DescribeRepositories takes at most 100 names.
const DESCRIBE_REPOSITORIES_MAX: usize = 100;
/// How long a lookup waits for others to share its DescribeRepositories call.
const BATCH_WINDOW: Duration = Duration::from_millis(3);

/// One SDK call through [`Calls`]: the request is built once and cloned for each attempt.
macro_rules! call {
    ($calls:expr, $op:literal, $request:expr) => {{
        let request = $request;
        $calls
            .run(SERVICE, $op, || {
                let request = request.clone();
                async move { request.send().await.map_err(|e| AwsError::from_sdk(SERVICE, $op, e)) }
            })
            .await
    }};
}

/// [`Ecr`] on `aws-sdk-ecr`.
pub struct SdkEcr {
    client: Client,
    calls: Calls,
    repositories: Batcher<Option<String>, String, Repository>,
}

impl std::fmt::Debug for SdkEcr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkEcr").field("calls", &self.calls).finish_non_exhaustive()
    }
}

impl SdkEcr {
    /// An ECR adapter for `config`'s account and region, calling through `calls`. The SDK's own retries
    /// are switched off: [`Calls`] retries and counts every attempt.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = aws_sdk_ecr::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::from_client(Client::from_conf(conf), calls)
    }

    /// An ECR adapter on an existing client (which should not retry by itself).
    pub fn from_client(client: Client, calls: Calls) -> Self {
        let repositories = {
            let client = client.clone();
            let calls = calls.clone();
            Batcher::new(
                DESCRIBE_REPOSITORIES_MAX,
                BATCH_WINDOW,
                move |registry: Option<String>, names: Vec<String>| {
                    let client = client.clone();
                    let calls = calls.clone();
                    Box::pin(async move { describe_repositories(&client, &calls, registry, names).await })
                },
            )
        };
        SdkEcr { client, calls, repositories }
    }
}

fn is_code(e: &AwsError, code: &str) -> bool {
    e.code.as_deref() == Some(code)
}

/// Look up `names` in `registry`, as few DescribeRepositories calls as it takes.
///
/// DescribeRepositories fails as a whole with RepositoryNotFoundException when any one name is missing.
/// The common case (all present) costs one call; otherwise the failed set is split in halves, and the
/// halves are asked again (concurrently), down to single names, which are then missing. `k` missing
/// names among `n` cost about `1 + 2k log2(n)` calls instead of `n`.
async fn describe_repositories(
    client: &Client,
    calls: &Calls,
    registry: Option<String>,
    names: Vec<String>,
) -> AwsResult<HashMap<String, Repository>> {
    let mut found = HashMap::new();
    let mut pending = vec![names];
    while !pending.is_empty() {
        let answers = futures::future::join_all(pending.drain(..).map(|chunk| {
            let registry = registry.clone();
            async move {
                let result = call!(
                    calls,
                    "DescribeRepositories",
                    client.describe_repositories().set_registry_id(registry).set_repository_names(Some(chunk.clone()))
                );
                (chunk, result)
            }
        }))
        .await;
        for (mut chunk, result) in answers {
            match result {
                Ok(out) => {
                    for repo in out.repositories() {
                        let repo = map_repository(repo);
                        found.insert(repo.name.clone(), repo);
                    }
                }
                Err(e) if is_code(&e, "RepositoryNotFoundException") => {
                    if chunk.len() > 1 {
                        let second = chunk.split_off(chunk.len() / 2);
                        pending.push(chunk);
                        pending.push(second);
                    }
                    // A single missing name: answered `None`.
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(found)
}

fn mutability(m: Option<&sdk::ImageTagMutability>) -> TagMutability {
    match m {
        Some(sdk::ImageTagMutability::Immutable | sdk::ImageTagMutability::ImmutableWithExclusion) => {
            TagMutability::Immutable
        }
        // MUTABLE is ECR's default.
        _ => TagMutability::Mutable,
    }
}

fn sdk_mutability(m: TagMutability) -> sdk::ImageTagMutability {
    match m {
        TagMutability::Mutable => sdk::ImageTagMutability::Mutable,
        TagMutability::Immutable => sdk::ImageTagMutability::Immutable,
    }
}

fn map_repository(r: &sdk::Repository) -> Repository {
    Repository {
        name: r.repository_name().unwrap_or_default().to_string(),
        arn: r.repository_arn().unwrap_or_default().to_string(),
        uri: r.repository_uri().unwrap_or_default().to_string(),
        scan_on_push: r.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        tag_mutability: mutability(r.image_tag_mutability()),
    }
}

fn sdk_tags(operation: &'static str, tags: &Tags) -> AwsResult<Vec<sdk::Tag>> {
    tags.iter()
        .map(|(k, v)| {
            sdk::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::new(SERVICE, operation, ErrorKind::Invalid, e.to_string()))
        })
        .collect()
}

fn scanning(scan_on_push: bool) -> sdk::ImageScanningConfiguration {
    sdk::ImageScanningConfiguration::builder().scan_on_push(scan_on_push).build()
}

impl SdkEcr {
    /// The details of `image` in the repository: ImageNotFoundException is `None`, a missing repository
    /// an error of kind [`ErrorKind::NotFound`].
    async fn describe_image(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        image: sdk::ImageIdentifier,
    ) -> AwsResult<Option<sdk::ImageDetail>> {
        let result = call!(
            self.calls,
            "DescribeImages",
            self.client
                .describe_images()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_ids(image)
        );
        match result {
            Ok(out) => Ok(out.image_details().first().cloned()),
            Err(e) if is_code(&e, "ImageNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Ecr for SdkEcr {
    async fn repository(&self, registry_id: Option<&str>, name: &str) -> AwsResult<Option<Repository>> {
        self.repositories.load(registry_id.map(str::to_string), name.to_string()).await
    }

    async fn repository_tags(&self, arn: &str) -> AwsResult<Tags> {
        let out = call!(self.calls, "ListTagsForResource", self.client.list_tags_for_resource().resource_arn(arn))?;
        Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
    }

    async fn lifecycle_policy(&self, name: &str) -> AwsResult<Option<String>> {
        let result = call!(self.calls, "GetLifecyclePolicy", self.client.get_lifecycle_policy().repository_name(name));
        match result {
            Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
            Err(e) if is_code(&e, "LifecyclePolicyNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn resolve_tag(&self, registry_id: Option<&str>, repository: &str, tag: &str) -> AwsResult<Option<String>> {
        let image = sdk::ImageIdentifier::builder().image_tag(tag).build();
        let detail = self.describe_image(registry_id, repository, image).await?;
        Ok(detail.and_then(|d| d.image_digest().map(str::to_string)))
    }

    async fn digest_exists(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<bool> {
        let image = sdk::ImageIdentifier::builder().image_digest(digest).build();
        Ok(self.describe_image(registry_id, repository, image).await?.is_some())
    }

    async fn create_repository(
        &self,
        name: &str,
        scan_on_push: bool,
        tag_mutability: TagMutability,
        tags: &Tags,
    ) -> AwsResult<Repository> {
        const OP: &str = "CreateRepository";
        let sdk_tags = sdk_tags(OP, tags)?;
        let out = call!(
            self.calls,
            "CreateRepository",
            self.client
                .create_repository()
                .repository_name(name)
                .image_scanning_configuration(scanning(scan_on_push))
                .image_tag_mutability(sdk_mutability(tag_mutability))
                .set_tags((!sdk_tags.is_empty()).then_some(sdk_tags))
        )?;
        out.repository()
            .map(map_repository)
            .ok_or_else(|| AwsError::new(SERVICE, OP, ErrorKind::Other, "answer has no repository"))
    }

    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> AwsResult<()> {
        call!(
            self.calls,
            "PutImageScanningConfiguration",
            self.client
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(scanning(scan_on_push))
        )?;
        Ok(())
    }

    async fn set_tag_mutability(&self, name: &str, tag_mutability: TagMutability) -> AwsResult<()> {
        call!(
            self.calls,
            "PutImageTagMutability",
            self.client
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(sdk_mutability(tag_mutability))
        )?;
        Ok(())
    }

    async fn put_lifecycle_policy(&self, name: &str, policy: &str) -> AwsResult<()> {
        call!(
            self.calls,
            "PutLifecyclePolicy",
            self.client.put_lifecycle_policy().repository_name(name).lifecycle_policy_text(policy)
        )?;
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let sdk_tags = sdk_tags("TagResource", tags)?;
        call!(self.calls, "TagResource", self.client.tag_resource().resource_arn(arn).set_tags(Some(sdk_tags)))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        call!(
            self.calls,
            "UntagResource",
            self.client.untag_resource().resource_arn(arn).set_tag_keys(Some(keys.to_vec()))
        )?;
        Ok(())
    }

    async fn delete_repository(&self, name: &str) -> AwsResult<()> {
        let result =
            call!(self.calls, "DeleteRepository", self.client.delete_repository().repository_name(name).force(true));
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, "RepositoryNotFoundException") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<ImageScan> {
        let image = sdk::ImageIdentifier::builder().image_digest(digest).build();
        let result = call!(
            self.calls,
            "DescribeImageScanFindings",
            self.client
                .describe_image_scan_findings()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_id(image)
                // Only the counts matter here, not the findings themselves.
                .max_results(1)
        );
        let out = match result {
            Ok(out) => out,
            Err(e) if is_code(&e, "ScanNotFoundException") => return Ok(ImageScan::NotScanned),
            Err(e) => return Err(e),
        };
        let status = out.image_scan_status();
        let reason = status.and_then(|s| s.description()).unwrap_or("no reason given").to_string();
        Ok(match status.and_then(|s| s.status()) {
            Some(sdk::ScanStatus::InProgress | sdk::ScanStatus::Pending) => ImageScan::InProgress,
            Some(sdk::ScanStatus::Complete) | Some(sdk::ScanStatus::Active) => ImageScan::Complete(
                out.image_scan_findings()
                    .and_then(|f| f.finding_severity_counts())
                    .map(|counts| {
                        counts.iter().map(|(k, v)| (k.as_str().to_string(), *v)).filter(|(_, v)| *v > 0).collect()
                    })
                    .unwrap_or_default(),
            ),
            Some(other) => ImageScan::Failed(format!("{}: {reason}", other.as_str())),
            None => ImageScan::Failed(reason),
        })
    }

    async fn start_image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<()> {
        let image = sdk::ImageIdentifier::builder().image_digest(digest).build();
        let result = call!(
            self.calls,
            "StartImageScan",
            self.client
                .start_image_scan()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_id(image)
        );
        match result {
            Ok(_) => Ok(()),
            // A basic scan runs at most once a day per image: one already ran, and its findings count.
            Err(e) if is_code(&e, "LimitExceededException") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn put_tag(&self, registry_id: Option<&str>, repository: &str, digest: &str, tag: &str) -> AwsResult<()> {
        const OP: &str = "BatchGetImage";
        let image = sdk::ImageIdentifier::builder().image_digest(digest).build();
        let out = call!(
            self.calls,
            "BatchGetImage",
            self.client
                .batch_get_image()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_ids(image)
        )?;
        let found = out.images().first();
        let manifest = found.and_then(|i| i.image_manifest()).ok_or_else(|| {
            AwsError::new(SERVICE, OP, ErrorKind::NotFound, format!("image {digest} not found in {repository}"))
        })?;
        let media_type = found.and_then(|i| i.image_manifest_media_type()).map(str::to_string);
        let result = call!(
            self.calls,
            "PutImage",
            self.client
                .put_image()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_manifest(manifest)
                .set_image_manifest_media_type(media_type)
                .image_tag(tag)
                .image_digest(digest)
        );
        match result {
            Ok(_) => Ok(()),
            // The tag is already on this very image.
            Err(e) if is_code(&e, "ImageAlreadyExistsException") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_mutability_maps_both_ways_and_exclusions_keep_their_base() {
        for m in [TagMutability::Mutable, TagMutability::Immutable] {
            assert_eq!(mutability(Some(&sdk_mutability(m))), m);
        }
        assert_eq!(mutability(Some(&sdk::ImageTagMutability::ImmutableWithExclusion)), TagMutability::Immutable);
        assert_eq!(mutability(Some(&sdk::ImageTagMutability::MutableWithExclusion)), TagMutability::Mutable);
        assert_eq!(mutability(None), TagMutability::Mutable, "ECR's default");
    }
}
