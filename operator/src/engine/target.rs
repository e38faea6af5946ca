//! The ApiDeployment as the engine works on it: its identity, its spec, and where its image comes from.

use serde::Serialize;

use super::names::Names;
use crate::api::ApiDeploymentSpec;

/// One ApiDeployment as the engine works on it: identity, generation and spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Names derived from namespace and name.
    pub names: Names,
    /// `metadata.generation` (the controller's; `None` from the CLI).
    pub generation: Option<i64>,
    /// The spec.
    pub spec: ApiDeploymentSpec,
    /// The region everything lives in (the spec's, else the default).
    pub region: String,
}

/// Where the image comes from, parsed from `image.repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An ECR repository (in the caller's account when `registry_id` is `None`).
    Ecr {
        /// The 12-digit registry (account) id of a full ECR URI.
        registry_id: Option<String>,
        /// The repository name.
        repository: String,
    },
    /// Another registry: only digests can be pinned, tags cannot be resolved.
    External {
        /// The repository URI.
        uri: String,
    },
}

impl ImageSource {
    /// Parse `image.repository`: a bare name is ECR in the caller's account, an ECR URI names its
    /// account, anything else is an external registry.
    pub fn parse(repository: &str) -> ImageSource {
        let Some((host, path)) = repository.split_once('/') else {
            return ImageSource::Ecr { registry_id: None, repository: repository.to_string() };
        };
        if !(host.contains('.') || host.contains(':')) {
            return ImageSource::Ecr { registry_id: None, repository: repository.to_string() };
        }
        let parts: Vec<&str> = host.split('.').collect();
        let is_ecr = parts.len() >= 6
            && parts[0].len() == 12
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && parts[1] == "dkr"
            && parts[2] == "ecr"
            && parts[4] == "amazonaws";
        if is_ecr {
            ImageSource::Ecr { registry_id: Some(parts[0].to_string()), repository: path.to_string() }
        } else {
            ImageSource::External { uri: repository.to_string() }
        }
    }
}

/// The image, pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedImage {
    /// Repository URI.
    pub uri: String,
    /// `sha256:...`.
    pub digest: String,
}

impl PinnedImage {
    /// `uri@digest`, as the task definition takes it.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.uri, self.digest)
    }
}

/// The spec's image reference, as recorded in `ecsop.io/image-source` ([`super::names::service_tags::IMAGE_SOURCE`]).
pub fn image_source_ref(spec: &ApiDeploymentSpec) -> String {
    match (&spec.image.tag, &spec.image.digest) {
        (_, Some(digest)) => format!("{}@{digest}", spec.image.repository),
        (Some(tag), None) => format!("{}:{tag}", spec.image.repository),
        (None, None) => spec.image.repository.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sources_are_parsed() {
        assert_eq!(
            ImageSource::parse("books-api"),
            ImageSource::Ecr { registry_id: None, repository: "books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("team/books-api"),
            ImageSource::Ecr { registry_id: None, repository: "team/books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/books-api"),
            ImageSource::Ecr { registry_id: Some("210987654321".into()), repository: "team/books-api".into() }
        );
        assert_eq!(
            ImageSource::parse("ghcr.io/acme/books-api"),
            ImageSource::External { uri: "ghcr.io/acme/books-api".into() }
        );
    }
}
