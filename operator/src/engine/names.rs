//! AWS names and ownership tags, derived deterministically from an ApiDeployment's namespace and name.
//!
//! Names never change while the resource lives, so everything ecsop created can be found again after a
//! crash from the manifest alone.

use sha2::{Digest, Sha256};

use crate::aws::Tags;

/// Tag marking a resource as created and managed by ecsop.
pub const TAG_MANAGED_BY: &str = "ecsop.io/managed-by";
/// The value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "ecsop";
/// Tag naming the owning ApiDeployment as `<namespace>/<name>`.
pub const TAG_OWNER: &str = "ecsop.io/owner";
/// Tag carrying the content hash of a rendered task definition.
pub const TAG_SPEC_HASH: &str = "ecsop.io/spec-hash";

/// ELBv2 target group names are at most 32 characters.
const TARGET_GROUP_MAX: usize = 32;

/// The identity of one ApiDeployment, from which every AWS name is derived.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Names {
    namespace: String,
    name: String,
}

impl Names {
    /// Names for the ApiDeployment `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Names { namespace: namespace.to_string(), name: name.to_string() }
    }

    /// The value of the owner tag: `<namespace>/<name>`.
    pub fn owner(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The ECS service name: the ApiDeployment's name.
    pub fn service(&self) -> &str {
        &self.name
    }

    /// The task-definition family: `<namespace>-<name>`.
    pub fn family(&self) -> String {
        format!("{}-{}", self.namespace, self.name)
    }

    /// The container's name inside the task definition.
    pub fn container(&self) -> &str {
        "api"
    }

    /// The target group name: a readable prefix from namespace and name, then a hash of both, at most
    /// 32 characters. The hash keeps two long names with the same prefix apart.
    pub fn target_group(&self) -> String {
        let hash = short_hash(&self.owner(), 8);
        let budget = TARGET_GROUP_MAX - hash.len() - 1;
        let readable: String = self.family().chars().take(budget).collect();
        let readable = readable.trim_end_matches('-');
        format!("{readable}-{hash}")
    }

    /// The second target group of a blueGreen, canary or linear service: `-alt-` and a hash of its own
    /// after a shorter readable prefix, at most 32 characters.
    pub fn alternate_target_group(&self) -> String {
        let hash = short_hash(&format!("{}#alternate", self.owner()), 8);
        let budget = TARGET_GROUP_MAX - hash.len() - "-alt-".len();
        let readable: String = self.family().chars().take(budget).collect();
        let readable = readable.trim_end_matches('-');
        format!("{readable}-alt-{hash}")
    }

    /// The tags every owned resource carries.
    pub fn ownership_tags(&self) -> Vec<(String, String)> {
        vec![(TAG_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()), (TAG_OWNER.to_string(), self.owner())]
    }
}

/// The first `len` hex digits of the SHA-256 of `input`.
pub fn short_hash(input: &str, len: usize) -> String {
    let digest = Sha256::digest(input.as_bytes());
    hex::encode(digest).chars().take(len).collect()
}

/// Tag keys ecsop writes on the ECS service to resume statelessly.
pub mod service_tags {
    /// Hash of the desired state last applied in full (`engine::model::Desired::hash`).
    pub const APPLIED_HASH: &str = "ecsop.io/applied-hash";
    /// ARN of the task-definition revision ecsop last set.
    pub const REVISION: &str = "ecsop.io/revision";
    /// The pinned image (`uri@sha256:...`) of that revision.
    pub const IMAGE: &str = "ecsop.io/image";
    /// The spec's image reference that resolved to it (`repository:tag` or `repository@digest`).
    pub const IMAGE_SOURCE: &str = "ecsop.io/image-source";
    /// A revision whose rollout failed or was rolled back; not retried until the spec changes.
    pub const FAILED_REVISION: &str = "ecsop.io/failed-revision";
    /// The listener the owned rule was put on, to find it again when the spec moves or drops it.
    pub const LISTENER: &str = "ecsop.io/listener";
    /// The owned HTTP-to-HTTPS redirect rule, to find it again when the spec drops it.
    pub const REDIRECT_RULE: &str = "ecsop.io/redirect-rule";
    /// The HTTP API ecsop wired, to find its pieces again when the spec moves or drops it.
    pub const API: &str = "ecsop.io/api";
    /// The digest the promotion tag was last put on.
    pub const PROMOTED: &str = "ecsop.io/promoted";
    /// The Cloud Map namespace of the owned Cloud Map service, to find it again when the spec drops
    /// `serviceDiscovery` or moves it to another namespace.
    pub const DISCOVERY_NAMESPACE: &str = "ecsop.io/discovery-namespace";

    /// The HTTP API pieces last deployed to a stage that does not deploy by itself (a hash), so a
    /// deployment cut short is made again.
    pub const API_DEPLOYED: &str = "ecsop.io/api-deployed";
    /// The stage of the recorded HTTP API that ecsop deploys to (one that does not deploy by itself),
    /// so that routes removed later (the spec dropped or moved the API, or the ApiDeployment is deleted)
    /// are taken off that stage too. Present while the stage may serve pieces of ours.
    pub const API_STAGE: &str = "ecsop.io/api-stage";

    /// Why analysis stopped a revision's rollout: `<revision ARN hash> <the check, both revisions' values
    /// and the window>`, written with the StopServiceDeployment so every later run reports it.
    pub const ANALYSIS_FAILED: &str = "ecsop.io/analysis-failed";

    /// Every key above, for untagging.
    pub const ALL: [&str; 13] = [
        ANALYSIS_FAILED,
        APPLIED_HASH,
        REVISION,
        IMAGE,
        IMAGE_SOURCE,
        FAILED_REVISION,
        LISTENER,
        REDIRECT_RULE,
        API,
        PROMOTED,
        DISCOVERY_NAMESPACE,
        API_DEPLOYED,
        API_STAGE,
    ];
}

/// An API Gateway stage name as a tag value can hold it: tag values take letters, digits, spaces and
/// `_ . : / = + - @` only, and the default stage is `$default`. Stage names never contain `@`, so
/// [`stage_of_tag`] reads it back.
pub fn stage_tag(stage: &str) -> String {
    stage.replace('$', "@")
}

/// The stage name a [`stage_tag`] value holds.
pub fn stage_of_tag(value: &str) -> String {
    value.replace('@', "$")
}

/// `value` as a tag can hold it. AWS takes tag values of at most 256 characters; a longer value (an
/// image in a long repository, say) is recorded as `sha256:` and 32 hex digits of its hash: the same
/// value always gives the same tag, so it can still be compared, but no longer read back.
pub fn tag_value(value: &str) -> String {
    const MAX: usize = 256;
    if value.chars().count() <= MAX { value.to_string() } else { format!("sha256:{}", short_hash(value, 32)) }
}

/// Ownership tags plus `extra`.
pub fn owned_tags(names: &Names, extra: &[(&str, &str)]) -> Tags {
    let mut tags: Tags = names.ownership_tags().into_iter().collect();
    for (k, v) in extra {
        tags.insert((*k).to_string(), (*v).to_string());
    }
    tags
}

/// Whether `tags` mark the resource as owned by `names`.
pub fn is_owned(tags: &Tags, names: &Names) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && tags.get(TAG_OWNER) == Some(&names.owner())
}

/// The description ecsop gives its API Gateway integration, marking it as owned (integrations take no
/// tags): `managed by ecsop for <namespace>/<name>`.
pub fn gateway_marker(names: &Names) -> String {
    format!("managed by ecsop for {}", names.owner())
}

/// The name of ecsop's JWT authorizer on an HTTP API (authorizers take no tags either): a hash of the
/// owner first, so that `team-a/api` and `team/a-api` (one family, `team-a-api`) get their own, then the
/// family to be readable; at most 128 characters, as API Gateway takes.
pub fn authorizer_name(names: &Names) -> String {
    let name = format!("ecsop-{}-{}", short_hash(&names.owner(), 10), names.family());
    name.chars().take(128).collect()
}

/// The name earlier versions gave the authorizer, `ecsop-<family>`, which two owners can share. Such an
/// authorizer is taken as ours only when our own routes use it, and is renamed to [`authorizer_name`].
pub fn legacy_authorizer_name(names: &Names) -> String {
    format!("ecsop-{}", names.family())
}

/// The owner (`namespace/name`) an integration's description names, if ecsop made it.
pub fn integration_owner(description: &str) -> Option<&str> {
    description.strip_prefix("managed by ecsop for ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tag_values_over_256_characters_are_recorded_as_a_hash() {
        assert_eq!(tag_value("repo:1.0"), "repo:1.0");
        let long = format!("{}:1.0", "r".repeat(300));
        let recorded = tag_value(&long);
        assert_eq!(recorded.len(), 7 + 32);
        assert!(recorded.starts_with("sha256:"));
        assert_eq!(recorded, tag_value(&long), "stable, so it can be compared");
        assert_ne!(recorded, tag_value(&format!("{}:1.1", "r".repeat(300))));
        assert_eq!(tag_value(&"x".repeat(256)), "x".repeat(256));
    }

    #[test]
    fn names_follow_the_design() {
        let n = Names::new("prod", "books-api");
        assert_eq!(n.service(), "books-api");
        assert_eq!(n.family(), "prod-books-api");
        assert_eq!(n.owner(), "prod/books-api");
        assert_eq!(n.target_group(), format!("prod-books-api-{}", short_hash("prod/books-api", 8)));
    }

    #[test]
    fn long_names_sharing_a_prefix_get_distinct_target_groups() {
        let a = Names::new("payments-production", "books-api-internal-a").target_group();
        let b = Names::new("payments-production", "books-api-internal-b").target_group();
        assert_ne!(a, b);
        assert!(a.len() <= 32 && b.len() <= 32, "{a} {b}");
    }

    proptest! {
        #[test]
        fn target_group_names_are_valid_elbv2_names(
            ns in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
            name in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        ) {
            let tg = Names::new(&ns, &name).target_group();
            prop_assert!(tg.len() <= 32);
            let alternate = Names::new(&ns, &name).alternate_target_group();
            prop_assert!(alternate.len() <= 32 && alternate != tg, "{}", alternate);
            prop_assert!(alternate.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            prop_assert!(!alternate.starts_with('-'));
            prop_assert!(tg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            prop_assert!(!tg.starts_with('-') && !tg.ends_with('-'));
            // Deterministic.
            prop_assert_eq!(tg.clone(), Names::new(&ns, &name).target_group());
        }
    }
}
