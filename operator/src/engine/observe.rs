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

use super::names::{TAG_SPEC_HASH, service_tags, stage_of_tag, tag_value};
use super::observed::{ImageState, Observed};
use super::resources::{self, alarms, discovery, gateway, scaling, task_definition};
use super::target::{ImageSource, PinnedImage, Target, image_source_ref};
use crate::api::{StrategyType, TagMutability};
use crate::aws::{AwsError, Clients, ErrorKind, Repository, Service, TaskDefinitionInfo};

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
    // The second target group, when the strategy shifts traffic or the service still uses it (ECS swaps
    // the two at the end of every such deployment, so it may be the one serving after a switch back to
    // rolling).
    let alternate = names.alternate_target_group();
    let bound_to_alternate = observed.service.as_ref().is_some_and(|s| {
        s.load_balancers.iter().any(|b| {
            b.arn.contains(&format!("/{alternate}/"))
                || b.traffic.as_ref().is_some_and(|t| t.alternate_target_group.contains(&format!("/{alternate}/")))
        })
    });
    if lb.is_some() && (spec.service.rollout.strategy.kind != StrategyType::Rolling || bound_to_alternate) {
        observed.alternate_target_group = clients.elbv2.target_group(&alternate).await?;
    }

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
    // The fast path needs a recorded image that cannot have moved, and the recorded hash to match. The
    // desired state derived for that check is the one step 2 needs: derived once.
    let recorded_desired = recorded
        .as_ref()
        .filter(|_| !deep && observed.stale_discovery_namespace.is_none() && immutable)
        .map(|image| resources::desired(target, image));
    let applied = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::APPLIED_HASH));
    let fast = recorded_desired.as_ref().is_some_and(|d| applied == Some(&d.hash()));
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
        let desired = match recorded_desired.filter(|_| fast) {
            Some(desired) => desired,
            None => resources::desired(target, &image),
        };
        let recorded_revision =
            // A revision ARN too long for a tag was recorded as a hash: looked for instead.
            observed
                .service
                .as_ref()
                .filter(|_| fast)
                .and_then(|s| s.tags.get(service_tags::REVISION))
                .filter(|arn| arn.starts_with("arn:"))
                .cloned();
        match recorded_revision {
            Some(arn) => {
                observed.matching_revision = Some(TaskDefinitionInfo {
                    family: names.family(),
                    revision: task_definition::revision_of(&arn),
                    arn,
                    status: "ACTIVE".into(),
                    tags: BTreeMap::from([(TAG_SPEC_HASH.to_string(), desired.task_definition_hash.clone())]),
                })
            }
            None => {
                let (matching, revisions) = task_definition::find(clients, names, &desired).await?;
                observed.matching_revision = matching;
                observed.revisions = Some(revisions);
            }
        }
    }

    // 2b. A deployment of the desired revision that has left DescribeServices (its tasks are gone):
    //     ECS's durable record says whether it was rolled back, so a missed rollback is not deployed
    //     again. Read only in that case, which a settled service never is in.
    if let (Some(service), Some(revision)) = (&observed.service, &observed.matching_revision)
        && needs_history(service, &revision.arn)
    {
        observed.service_deployments = Some(clients.ecs.service_deployments(&spec.cluster, names.service()).await?);
    }

    // 3. Load balancing (target group and rules were read above). When the
    //    spec moved to another listener or dropped the load balancer, our rule on the old listener
    //    (recorded on the service) is found too, so it can be removed instead of orphaned.
    let recorded_listener = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::LISTENER)).cloned();
    if lb.is_none() && !fast {
        // No load balancer wanted: one of ours may be left from before.
        observed.target_group = clients.elbv2.target_group(&names.target_group()).await?;
        observed.alternate_target_group = clients.elbv2.target_group(&alternate).await?;
    }
    if let Some(tg) = &observed.target_group
        && !fast
    {
        observed.target_group_tags = Some(clients.elbv2.tags(&tg.arn).await?);
        observed.target_group_attributes = Some(clients.elbv2.target_group_attributes(&tg.arn).await?);
    }
    if let Some(tg) = &observed.alternate_target_group
        && !fast
    {
        observed.alternate_target_group_tags = Some(clients.elbv2.tags(&tg.arn).await?);
        observed.alternate_target_group_attributes = Some(clients.elbv2.target_group_attributes(&tg.arn).await?);
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
        let alternate = observed.alternate_target_group.as_ref().map(|t| t.arn.as_str());
        observed.stale_rules = rules
            .into_iter()
            .filter(|r| r.target_groups.iter().any(|a| a == &tg.arn || Some(a.as_str()) == alternate))
            .collect();
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
        observed.overlapping_rules = overlapping_rules(clients, lb, &observed).await?;
        if let (Some(lb), Some(rules)) = (lb, &observed.redirect_listener_rules)
            && let Some(rule) = rules.iter().find(|rule| rule.priority == Some(lb.priority))
        {
            observed.redirect_rule_tags = Some(clients.elbv2.tags(&rule.arn).await?);
        }
        // Our alarms: when the spec has some, when ECS was told to watch some (they may have been
        // dropped from the spec since), and on explicitly deep reads (deletion, --refresh, periodic).
        let watched = observed.service.as_ref().is_some_and(|s| s.alarms.as_ref().is_some_and(|a| !a.names.is_empty()));
        if spec.alarms.is_some() || watched || (deep && observed.service.is_some()) {
            observed.alarms = Some(alarms::read(clients, names).await?);
        }
        if let Some(g) = &spec.api_gateway {
            observed.gateway = Some(gateway::read(clients, &g.api_id, Some(&g.stage)).await?);
        }
        if let Some(api) = recorded_tag(service_tags::API)
            && spec.api_gateway.as_ref().is_none_or(|g| g.api_id != api)
        {
            let stage = recorded_tag(service_tags::API_STAGE).map(|v| stage_of_tag(&v));
            match gateway::read(clients, &api, stage.as_deref()).await {
                Ok(g) => observed.stale_gateway = Some(g),
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(sd) = &spec.service.service_discovery {
            (observed.discovery, observed.discovery_tags) = discovery::read(clients, &sd.namespace_id, names).await?;
        }
        if let Some(ns) = &observed.stale_discovery_namespace {
            // A namespace deleted since leaves nothing of ours behind.
            (observed.stale_discovery, observed.stale_discovery_tags) = match discovery::read(clients, ns, names).await
            {
                Ok(found) => found,
                Err(e) if e.kind == ErrorKind::NotFound => (None, None),
                Err(e) => return Err(e),
            };
        }
        if spec.service.autoscaling.is_some() || observed.service.is_some() {
            (observed.scalable_target, observed.scaling_policies) =
                scaling::read(clients, &scaling::resource_id(target)).await?;
        }
    }
    Ok(observed)
}

/// Whether only ECS's deployment record can tell what became of `revision` on `service`: the service
/// runs another revision, DescribeServices lists no deployment of it, and no failure was recorded.
pub fn needs_history(service: &Service, revision: &str) -> bool {
    service.task_definition != revision
        && !service.deployments.iter().any(|d| d.task_definition == revision)
        && service.tags.get(service_tags::FAILED_REVISION) != Some(&tag_value(revision))
}

/// The image the service records, if it was resolved from the same spec reference.
fn recorded_image(service: &Service, source_ref: &str) -> Option<PinnedImage> {
    if service.tags.get(service_tags::IMAGE_SOURCE) != Some(&tag_value(source_ref)) {
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

/// The rules of the listener (not ours) that could take requests the spec's hosts and paths match, with
/// their tags, when our rule is to be created or to change where it matches: a new claim is checked
/// against what others already claim (an unchanged rule was checked when it was made).
async fn overlapping_rules(
    clients: &Clients,
    lb: Option<&crate::api::LoadBalancerSpec>,
    observed: &Observed,
) -> Result<Vec<(crate::aws::Rule, crate::aws::Tags)>, AwsError> {
    let (Some(lb), Some(rules)) = (lb, &observed.listener_rules) else { return Ok(Vec::new()) };
    let ours = observed.rule();
    let same = |values: &[String], wanted: &[String]| {
        crate::engine::model::sorted(values) == crate::engine::model::sorted(wanted)
    };
    if ours.is_some_and(|r| same(&r.hosts, &lb.hosts) && same(&r.paths, &lb.paths)) {
        return Ok(Vec::new());
    }
    let candidates: Vec<&crate::aws::Rule> = rules
        .iter()
        .filter(|r| r.priority.is_some() && !r.target_groups.is_empty())
        .filter(|r| ours.is_none_or(|o| o.arn != r.arn))
        .filter(|r| crate::engine::overlap::rules_overlap(&r.hosts, &r.paths, &lb.hosts, &lb.paths))
        .collect();
    let tags = futures::future::join_all(candidates.iter().map(|r| clients.elbv2.tags(&r.arn))).await;
    candidates.into_iter().zip(tags).map(|(r, t)| Ok((r.clone(), t?))).collect()
}
