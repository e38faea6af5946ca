//! Observation: read what AWS holds for one ApiDeployment, as cheaply as correctness allows.
//!
//! The ECS service is the anchor. Once every part of a desired state is applied, ecsop records its
//! hash on the service ([`service_tags::APPLIED_HASH`]) together with the pinned image and revision.
//! A later observation that finds the same hash reads only what batches well and matters for traffic
//! (the service, the target group, the listener's rules) and skips what cannot drift without someone
//! editing it by hand (lifecycle policy, target-group attributes, scaling policies, Cloud Map TTL,
//! task-definition tags). A *deep* observation reads everything; the controller does one periodically
//! and the CLI on `--refresh`.

use std::collections::BTreeMap;

use super::desired::{Desired, ImageSource, PinnedImage, Target, image_source_ref, service_tags};
use super::gateway::GatewayObserved;
use crate::api::TagMutability;
use crate::aws::{
    AlarmInfo, AwsError, Clients, DiscoveryService, ErrorKind, ImageScan, Repository, Rule, ScalableTarget,
    ScalingPolicy, Service, Tags, TargetGroup, TaskDefinitionInfo,
};
use crate::engine::names::{Names, TAG_SPEC_HASH};

/// How the image resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    /// Pinned.
    Pinned(PinnedImage),
    /// The tag or digest does not exist (or the repository does not).
    NotFound(String),
    /// The reference cannot be pinned (a tag in a registry other than ECR).
    Unresolvable(String),
}

/// What AWS holds for one ApiDeployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Whether hidden state was read too (see the module docs).
    pub deep: bool,
    /// The ECS service (None when missing or INACTIVE).
    pub service: Option<Service>,
    /// The image.
    pub image: Option<ImageState>,
    /// The repository (owned or the source of the image), when read.
    pub repository: Option<Repository>,
    /// Its tags, when read.
    pub repository_tags: Option<Tags>,
    /// Its lifecycle policy, when read (`Some(None)`: none set).
    pub lifecycle_policy: Option<Option<String>>,
    /// Our revision matching the desired task definition, when one exists and was looked for.
    pub matching_revision: Option<TaskDefinitionInfo>,
    /// Our ACTIVE revisions, newest first, when listed.
    pub revisions: Option<Vec<TaskDefinitionInfo>>,
    /// The target group with our name.
    pub target_group: Option<TargetGroup>,
    /// Its tags, when read.
    pub target_group_tags: Option<Tags>,
    /// Its attributes, when read.
    pub target_group_attributes: Option<BTreeMap<String, String>>,
    /// Every rule of the listener, when there is a load balancer.
    pub listener_rules: Option<Vec<Rule>>,
    /// Our rules on a listener the spec no longer names (moved or removed), to delete.
    pub stale_rules: Vec<Rule>,
    /// The Cloud Map service with our name.
    pub discovery: Option<DiscoveryService>,
    /// Its tags, when read.
    pub discovery_tags: Option<Tags>,
    /// The Cloud Map namespace the service records (`ecsop.io/discovery-namespace`) when the spec no
    /// longer names it (dropped or moved).
    pub stale_discovery_namespace: Option<String>,
    /// The Cloud Map service with our name in that namespace: deleted once no task registers in it.
    pub stale_discovery: Option<DiscoveryService>,
    /// Its tags, when read.
    pub stale_discovery_tags: Option<Tags>,
    /// The scalable target, when read.
    pub scalable_target: Option<ScalableTarget>,
    /// Scaling policies, when read.
    pub scaling_policies: Option<Vec<ScalingPolicy>>,
    /// Every rule of the HTTPS-redirect listener, when the spec has one.
    pub redirect_listener_rules: Option<Vec<Rule>>,
    /// The tags of the rule at our priority on that listener, when read (deep).
    pub redirect_rule_tags: Option<Tags>,
    /// The scan of the pinned image, when the scan gate needed it (an image the service does not run).
    pub scan: Option<ImageScan>,
    /// The digest the promotion tag is on (`Some(None)`: on no image), when read.
    pub promoted: Option<Option<String>>,
    /// The alarms that can carry our names, with their tags, when read.
    pub alarms: Option<Vec<(AlarmInfo, Tags)>>,
    /// The HTTP API the spec names, when read.
    pub gateway: Option<GatewayObserved>,
    /// An HTTP API we wired that the spec no longer names (recorded on the service), to clean up.
    pub stale_gateway: Option<GatewayObserved>,
}

impl Observed {
    /// Our listener rule: the one forwarding to our target group.
    pub fn rule(&self) -> Option<&Rule> {
        let tg = self.target_group.as_ref()?;
        self.listener_rules.as_ref()?.iter().find(|r| r.target_groups.iter().any(|arn| arn == &tg.arn))
    }

    /// The pinned image, when it resolved.
    pub fn pinned(&self) -> Option<&PinnedImage> {
        match &self.image {
            Some(ImageState::Pinned(p)) => Some(p),
            _ => None,
        }
    }
}

/// Read AWS for `target`. `deep` forces reading hidden state (see the module docs).
pub async fn observe(clients: &Clients, target: &Target, deep: bool) -> Result<Observed, AwsError> {
    let spec = &target.spec;
    let names = &target.names;
    // The reads every observation needs start together: concurrent reconciles then meet in the same
    // batches (DescribeServices by 10, DescribeTargetGroups by 20, one DescribeRules per listener).
    let lb = spec.load_balancer.as_ref();
    let redirect = lb.and_then(|lb| lb.https_redirect.as_ref());
    let (service, target_group, listener_rules, redirect_rules) = futures::join!(
        clients.ecs.service(&spec.cluster, names.service()),
        async {
            match lb {
                Some(_) => clients.elbv2.target_group(&names.target_group()).await,
                None => Ok(None),
            }
        },
        async {
            match lb {
                Some(lb) => clients.elbv2.rules(&lb.listener_arn).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match redirect {
                Some(r) => clients.elbv2.rules(&r.listener_arn).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let mut observed = Observed {
        service: service?,
        target_group: target_group?,
        listener_rules: listener_rules?,
        redirect_listener_rules: redirect_rules?,
        ..Default::default()
    };

    // 1. The image, from what the service records when the spec still names the same image.
    let source = ImageSource::parse(&spec.image.repository);
    let recorded = observed.service.as_ref().and_then(|s| recorded_image(s, &image_source_ref(spec)));
    let immutable = spec.image.digest.is_some()
        || spec.ecr.as_ref().is_some_and(|e| e.create && e.tag_mutability == TagMutability::Immutable);
    let owns_repository = spec.ecr.as_ref().is_some_and(|e| e.create);

    // A Cloud Map service the spec left is deleted only after the old tasks are gone, some reconciles
    // later: until then every run looks for it.
    observed.stale_discovery_namespace = observed
        .service
        .as_ref()
        .and_then(|s| s.tags.get(service_tags::DISCOVERY_NAMESPACE))
        .filter(|ns| spec.service.service_discovery.as_ref().is_none_or(|sd| &sd.namespace_id != *ns))
        .cloned();
    // The fast path needs a recorded image that cannot have moved, and the recorded hash to match.
    let fast = !deep
        && observed.stale_discovery_namespace.is_none()
        && immutable
        && recorded.as_ref().is_some_and(|image| {
            let desired = Desired::new(target, image);
            observed.service.as_ref().and_then(|s| s.tags.get(service_tags::APPLIED_HASH)) == Some(&desired.hash())
        });
    observed.deep = !fast;

    if fast {
        observed.image = recorded.map(ImageState::Pinned);
    } else {
        if let ImageSource::Ecr { registry_id, repository } = &source {
            observed.repository = clients.ecr.repository(registry_id.as_deref(), repository).await?;
        }
        if owns_repository && let Some(repo) = &observed.repository {
            observed.repository_tags = Some(clients.ecr.repository_tags(&repo.arn).await?);
            if spec.ecr.as_ref().and_then(|e| e.keep_last_images).is_some() {
                observed.lifecycle_policy = Some(clients.ecr.lifecycle_policy(&repo.name).await?);
            }
        }
        observed.image = Some(resolve_image(clients, target, &source, observed.repository.as_ref()).await?);
    }

    // 2. The task-definition revision matching the desired one, unless the service records it.
    if let Some(image) = observed.pinned().cloned() {
        let desired = Desired::new(target, &image);
        let recorded_revision =
            observed.service.as_ref().filter(|_| fast).and_then(|s| s.tags.get(service_tags::REVISION)).cloned();
        match recorded_revision {
            Some(arn) => {
                observed.matching_revision = Some(TaskDefinitionInfo {
                    family: names.family(),
                    revision: revision_of(&arn),
                    arn,
                    status: "ACTIVE".into(),
                    tags: BTreeMap::from([(TAG_SPEC_HASH.to_string(), desired.task_definition_hash.clone())]),
                })
            }
            None => {
                let (matching, revisions) = find_revision(clients, target, &desired).await?;
                observed.matching_revision = matching;
                observed.revisions = revisions;
            }
        }
    }

    // 3. Load balancing (target group and rules were read above). When the
    //    spec moved to another listener or dropped the load balancer, our rule on the old listener
    //    (recorded on the service) is found too, so it can be removed instead of orphaned.
    let recorded_listener = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::LISTENER)).cloned();
    if lb.is_none() && !fast {
        // No load balancer wanted: one of ours may be left from before.
        observed.target_group = clients.elbv2.target_group(&names.target_group()).await?;
    }
    if let Some(tg) = &observed.target_group
        && !fast
    {
        observed.target_group_tags = Some(clients.elbv2.tags(&tg.arn).await?);
        observed.target_group_attributes = Some(clients.elbv2.target_group_attributes(&tg.arn).await?);
    }
    let wanted_listener = spec.load_balancer.as_ref().map(|lb| lb.listener_arn.as_str());
    if !fast
        && let (Some(old), Some(tg)) = (recorded_listener, &observed.target_group)
        && Some(old.as_str()) != wanted_listener
    {
        let rules = match clients.elbv2.rules(&old).await {
            Ok(rules) => rules,
            Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        observed.stale_rules = rules.into_iter().filter(|r| r.target_groups.iter().any(|a| a == &tg.arn)).collect();
    }

    // 4. The image gates: the scan of an image the service does not run yet, and where the promotion
    //    tag is (unless the service records it on this very image).
    let recorded_tag = |key: &str| observed.service.as_ref().and_then(|s| s.tags.get(key)).cloned();
    if let (ImageSource::Ecr { registry_id, repository }, Some(image)) = (&source, observed.pinned().cloned()) {
        let registry = registry_id.as_deref();
        if spec.image.scan_gate.is_some() && recorded_tag(service_tags::IMAGE) != Some(image.reference()) {
            observed.scan = Some(clients.ecr.image_scan(registry, repository, &image.digest).await?);
        }
        if let Some(tag) = &spec.image.promotion_tag
            && (!fast || recorded_tag(service_tags::PROMOTED).as_deref() != Some(image.digest.as_str()))
        {
            observed.promoted = Some(clients.ecr.resolve_tag(registry, repository, tag).await?);
        }
    }

    // 5. Hidden state: the redirect rule's ownership, alarms, API Gateway, Cloud Map and autoscaling.
    if !fast {
        if let (Some(lb), Some(rules)) = (lb, &observed.redirect_listener_rules)
            && let Some(rule) = rules.iter().find(|rule| rule.priority == Some(lb.priority))
        {
            observed.redirect_rule_tags = Some(clients.elbv2.tags(&rule.arn).await?);
        }
        // Our alarms: when the spec has some, when ECS was told to watch some (they may have been
        // dropped from the spec since), and on explicitly deep reads (deletion, --refresh, periodic).
        let watched = observed.service.as_ref().is_some_and(|s| s.alarms.as_ref().is_some_and(|a| !a.names.is_empty()));
        if spec.alarms.is_some() || watched || (deep && observed.service.is_some()) {
            let found = clients.cloudwatch.alarms(&format!("{}-", names.family())).await?;
            let ours: Vec<AlarmInfo> =
                found.into_iter().filter(|a| super::alarms::is_our_name(names, &a.alarm.name)).collect();
            // Their tags (ownership) concurrently: one ListTagsForResource per alarm.
            let tags = futures::future::try_join_all(ours.iter().map(|a| clients.cloudwatch.tags(&a.arn))).await?;
            observed.alarms = Some(ours.into_iter().zip(tags).collect());
        }
        if let Some(g) = &spec.api_gateway {
            observed.gateway = Some(read_gateway(clients, &g.api_id).await?);
        }
        if let Some(api) = recorded_tag(service_tags::API)
            && spec.api_gateway.as_ref().is_none_or(|g| g.api_id != api)
        {
            match read_gateway(clients, &api).await {
                Ok(g) => observed.stale_gateway = Some(g),
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(sd) = &spec.service.service_discovery {
            observed.discovery = clients.cloudmap.find_service(&sd.namespace_id, names.service()).await?;
            if let Some(d) = &observed.discovery {
                observed.discovery_tags = Some(clients.cloudmap.tags(&d.arn).await?);
            }
        }
        if let Some(ns) = &observed.stale_discovery_namespace {
            // A namespace deleted since leaves nothing of ours behind.
            observed.stale_discovery = match clients.cloudmap.find_service(ns, names.service()).await {
                Ok(found) => found,
                Err(e) if e.kind == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if let Some(d) = &observed.stale_discovery {
                observed.stale_discovery_tags = Some(clients.cloudmap.tags(&d.arn).await?);
            }
        }
        let resource_id = format!("service/{}/{}", spec.cluster, names.service());
        if spec.service.autoscaling.is_some() || observed.service.is_some() {
            observed.scalable_target = clients.autoscaling.scalable_target(&resource_id).await?;
            if observed.scalable_target.is_some() {
                observed.scaling_policies = Some(clients.autoscaling.policies(&resource_id).await?);
            }
        }
    }
    Ok(observed)
}

/// Everything of an HTTP API ecsop may own, read concurrently.
pub async fn read_gateway(clients: &Clients, api_id: &str) -> Result<GatewayObserved, AwsError> {
    let gw = &clients.apigateway;
    let (integrations, routes, authorizers) =
        futures::join!(gw.integrations(api_id), gw.routes(api_id), gw.authorizers(api_id));
    Ok(GatewayObserved {
        api_id: api_id.to_string(),
        integrations: integrations?,
        routes: routes?,
        authorizers: authorizers?,
    })
}

/// The image the service records, if it was resolved from the same spec reference.
fn recorded_image(service: &Service, source_ref: &str) -> Option<PinnedImage> {
    if service.tags.get(service_tags::IMAGE_SOURCE).map(String::as_str) != Some(source_ref) {
        return None;
    }
    let (uri, digest) = service.tags.get(service_tags::IMAGE)?.split_once('@')?;
    Some(PinnedImage { uri: uri.to_string(), digest: digest.to_string() })
}

async fn resolve_image(
    clients: &Clients,
    target: &Target,
    source: &ImageSource,
    repository: Option<&Repository>,
) -> Result<ImageState, AwsError> {
    let image = &target.spec.image;
    match source {
        ImageSource::External { uri } => match &image.digest {
            Some(digest) => Ok(ImageState::Pinned(PinnedImage { uri: uri.clone(), digest: digest.clone() })),
            None => Ok(ImageState::Unresolvable(format!(
                "{uri} is not an ECR repository, so its tag cannot be resolved to a digest; set image.digest"
            ))),
        },
        ImageSource::Ecr { registry_id, repository: name } => {
            let Some(repo) = repository else {
                return Ok(ImageState::NotFound(format!("ECR repository {name} does not exist")));
            };
            let registry = registry_id.as_deref();
            let found = match (&image.tag, &image.digest) {
                (_, Some(digest)) => {
                    clients.ecr.digest_exists(registry, name, digest).await.map(|ok| ok.then(|| digest.clone()))
                }
                (Some(tag), None) => clients.ecr.resolve_tag(registry, name, tag).await,
                (None, None) => Ok(None),
            };
            let reference = image_source_ref(&target.spec);
            match found {
                Ok(Some(digest)) => Ok(ImageState::Pinned(PinnedImage { uri: repo.uri.clone(), digest })),
                Ok(None) => Ok(ImageState::NotFound(format!("image {reference} not found in ECR repository {name}"))),
                Err(e) if e.kind == ErrorKind::NotFound => {
                    Ok(ImageState::NotFound(format!("image {reference} not found: {}", e.message)))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Find our ACTIVE revision whose content hash matches, and list our ACTIVE revisions (newest first).
async fn find_revision(
    clients: &Clients,
    target: &Target,
    desired: &Desired,
) -> Result<(Option<TaskDefinitionInfo>, Option<Vec<TaskDefinitionInfo>>), AwsError> {
    let names = &target.names;
    let hash = &desired.task_definition_hash;
    let revisions = owned_revisions(clients, names).await?;
    let found = revisions
        .iter()
        .find(|td| td.family == names.family() && td.status == "ACTIVE" && td.tags.get(TAG_SPEC_HASH) == Some(hash))
        .cloned();
    Ok((found, Some(revisions)))
}

/// Our ACTIVE revisions of the family, newest first, with their tags.
pub async fn owned_revisions(clients: &Clients, names: &Names) -> Result<Vec<TaskDefinitionInfo>, AwsError> {
    let mut revisions = Vec::new();
    for arn in clients.ecs.list_task_definitions(&names.family()).await? {
        match clients.ecs.task_definition(&arn).await {
            Ok(td) if super::desired::is_owned(&td.tags, names) => revisions.push(td),
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(revisions)
}

/// The revision number at the end of a task-definition ARN.
pub fn revision_of(arn: &str) -> i32 {
    arn.rsplit(':').next().and_then(|r| r.parse().ok()).unwrap_or(0)
}
