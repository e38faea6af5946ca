//! Acting: carry out a plan's writes in order through the adapters, filling in the ARNs of what the
//! plan creates. Stops at the first failure: everything is re-derived from AWS on the next run, so a
//! half-applied plan is finished by the next one, never duplicated.

use std::collections::HashMap;
use std::time::Duration;

use super::lost;
use super::names::{TAG_SPEC_HASH, service_tags, tag_value};
use super::resources::task_definition;
use super::vocabulary::{Action, Created, Ref, Resource};
use crate::aws::{
    AwsError, Clients, ErrorKind, HeaderMatch, ImageScan, Redirect, RouteConfig, Rule, RuleAction, RuleConfig,
    ScalingMetric, ScalingPolicy, Tags,
};

/// What acting created, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    created: HashMap<Created, String>,
}

impl Outputs {
    /// The ARN of what the plan created of this kind.
    pub fn get(&self, kind: Created) -> Option<&str> {
        self.created.get(&kind).map(String::as_str)
    }

    /// `value`, or the ARN of what this plan created when `value` is its placeholder (`(new Rule)`).
    fn fill(&self, value: &str) -> String {
        self.created
            .iter()
            .find(|(kind, _)| Ref::Created(**kind).to_string() == value)
            .map_or_else(|| value.to_string(), |(_, arn)| arn.clone())
    }

    /// A load balancer's traffic shifting with the placeholders of what this plan created filled in.
    fn fill_traffic(&self, binding: &mut crate::aws::Binding) {
        if let Some(t) = binding.traffic.as_mut() {
            t.alternate_target_group = self.fill(&t.alternate_target_group);
            t.production_rule = self.fill(&t.production_rule);
            t.test_rule = t.test_rule.as_deref().map(|r| self.fill(r));
        }
    }

    fn resolve(&self, r: &Ref, service: &'static str, operation: &'static str) -> Result<String, AwsError> {
        match r {
            Ref::Arn(a) => Ok(a.clone()),
            Ref::Created(kind) => self.created.get(kind).cloned().ok_or_else(|| {
                AwsError::new(service, operation, ErrorKind::Other, format!("no {kind:?} was created before this step"))
            }),
        }
    }
}

/// Told about each write as it happens (the CLI prints, the controller emits Events).
pub trait Progress: Send + Sync {
    /// Whether writing may go on; checked before every write (the controller answers false the moment
    /// it loses its leader lease, so two replicas never both write).
    fn proceed(&self) -> bool {
        true
    }
    /// `action` is about to run.
    fn started(&self, _action: &Action) {}
    /// `action` succeeded.
    fn done(&self, _action: &Action) {}
}

/// A [`Progress`] that ignores everything.
pub struct Quiet;
impl Progress for Quiet {}

/// How long [`Action::WaitServiceGone`] waits, and how often it looks.
#[derive(Debug, Clone, Copy)]
pub struct WaitSettings {
    /// Give up after this long.
    pub timeout: Duration,
    /// Poll interval.
    pub interval: Duration,
}

impl Default for WaitSettings {
    fn default() -> Self {
        WaitSettings { timeout: Duration::from_secs(600), interval: Duration::from_secs(5) }
    }
}

/// How many times a write refused for eventual consistency is sent again, and the first wait: 0.25,
/// 0.5, 1, 2, 4, 4, 4 s (under 16 s in all, the time AWS documents these to settle in).
const PROPAGATION_ATTEMPTS: u32 = 7;
const PROPAGATION_BACKOFF: Duration = Duration::from_millis(250);

/// Run `actions` in order.
pub async fn act(
    clients: &Clients,
    actions: &[Action],
    progress: &dyn Progress,
    wait: WaitSettings,
) -> Result<Outputs, AwsError> {
    let mut out = Outputs::default();
    for action in actions {
        if !progress.proceed() {
            return Err(stopped());
        }
        progress.started(action);
        // A write AWS refused because it has not caught up with an earlier one yet (eventual
        // consistency) is sent again after a bounded backoff, within this run.
        let mut attempt = 0;
        loop {
            match run(clients, action, &mut out, wait, progress).await {
                Err(e) if e.kind == ErrorKind::Propagating && attempt < PROPAGATION_ATTEMPTS => {
                    if !progress.proceed() {
                        return Err(stopped());
                    }
                    tracing::info!(%e, attempt, "AWS has not caught up yet; trying again");
                    tokio::time::sleep(PROPAGATION_BACKOFF * 2u32.pow(attempt).min(16)).await;
                    attempt += 1;
                }
                result => break result?,
            }
        }
        progress.done(action);
    }
    Ok(out)
}

/// The error of a run told to stop writing ([`Progress::proceed`] answered false): leadership lost, or the
/// process shutting down. What was written stays; the next run picks up from AWS.
pub fn stopped() -> AwsError {
    AwsError::new("ecsop", "Act", ErrorKind::Other, "stopped before writing: this replica is not the leader")
}

/// Whether `error` is [`stopped`]'s.
pub fn is_stopped(error: &AwsError) -> bool {
    error.service == "ecsop" && error.operation == "Act"
}

async fn run(
    clients: &Clients,
    action: &Action,
    out: &mut Outputs,
    wait: WaitSettings,
    progress: &dyn Progress,
) -> Result<(), AwsError> {
    match action {
        Action::CreateRepository { repository, tags } => {
            let r = repository;
            lost::create_once(
                || clients.ecr.create_repository(&r.name, r.scan_on_push, r.tag_mutability, tags),
                || clients.ecr.repository(None, &r.name),
            )
            .await?;
            // Part of the creation: a crash before it leaves a repository without the policy, which
            // the next run's comparison puts.
            if let Some(policy) = &repository.lifecycle_policy {
                clients.ecr.put_lifecycle_policy(&repository.name, policy).await?;
            }
        }
        Action::SetScanOnPush { name, scan_on_push, .. } => clients.ecr.set_scan_on_push(name, *scan_on_push).await?,
        Action::SetTagMutability { name, tag_mutability } => {
            clients.ecr.set_tag_mutability(name, *tag_mutability).await?
        }
        Action::PutLifecyclePolicy { name, policy } => clients.ecr.put_lifecycle_policy(name, policy).await?,
        Action::RegisterTaskDefinition { definition, tags } => {
            let hash = tags.get(TAG_SPEC_HASH).map(String::as_str).unwrap_or_default();
            let td = lost::create_once(
                || clients.ecs.register_task_definition(definition, tags),
                || task_definition::registered(clients, &definition.family, hash),
            )
            .await?;
            out.created.insert(Created::TaskDefinition, td.arn);
        }
        Action::CreateTargetGroup { config, attributes, created } => {
            let tg = lost::create_once(
                || clients.elbv2.create_target_group(config),
                || clients.elbv2.target_group(&config.name),
            )
            .await?;
            clients.elbv2.set_target_group_attributes(&tg.arn, attributes).await?;
            out.created.insert(*created, tg.arn);
        }
        Action::ModifyTargetGroup { arn, health, .. } => clients.elbv2.modify_target_group(arn, health).await?,
        Action::SetTargetGroupAttributes { arn, attributes, .. } => {
            clients.elbv2.set_target_group_attributes(arn, attributes).await?
        }
        Action::CreateRule { listener_arn, priority, hosts, paths, target_group, alternate, header, tags } => {
            let target_group = out.resolve(target_group, "elbv2", "CreateRule")?;
            let action = match alternate {
                Some(alternate) => {
                    let alternate = out.resolve(alternate, "elbv2", "CreateRule")?;
                    RuleAction::Weighted(vec![(target_group, 100), (alternate, 0)])
                }
                None => RuleAction::Forward(target_group),
            };
            let conditions = Conditions { hosts, paths, header: header.as_ref() };
            let rule = create_rule(clients, listener_arn, *priority, conditions, action, tags).await?;
            out.created.insert(if header.is_some() { Created::TestRule } else { Created::Rule }, rule.arn);
        }
        Action::CreateRedirectRule { listener_arn, priority, hosts, paths, port, tags } => {
            let action = RuleAction::Redirect(Redirect::https(port));
            let conditions = Conditions { hosts, paths, header: None };
            let rule = create_rule(clients, listener_arn, *priority, conditions, action, tags).await?;
            out.created.insert(Created::RedirectRule, rule.arn);
        }
        Action::ModifyRule { arn, hosts, paths, action, .. } => {
            let action = match action {
                RuleAction::Weighted(groups) => {
                    RuleAction::Weighted(groups.iter().map(|(tg, w)| (out.fill(tg), *w)).collect())
                }
                other => other.clone(),
            };
            clients.elbv2.modify_rule(arn, hosts, paths, &action).await?
        }
        Action::StartImageScan { registry_id, repository, digest } => {
            let registry = registry_id.as_deref();
            lost::create_once(
                || clients.ecr.start_image_scan(registry, repository, digest),
                || async {
                    let scan = clients.ecr.image_scan(registry, repository, digest).await?;
                    Ok((scan != ImageScan::NotScanned).then_some(()))
                },
            )
            .await?
        }
        Action::PromoteImage { registry_id, repository, digest, tag, service, .. } => {
            let registry = registry_id.as_deref();
            lost::create_once(
                || clients.ecr.put_tag(registry, repository, digest, tag),
                || async {
                    let on = clients.ecr.resolve_tag(registry, repository, tag).await?;
                    Ok((on.as_deref() == Some(digest.as_str())).then_some(()))
                },
            )
            .await?;
            let recorded = Tags::from([(service_tags::PROMOTED.to_string(), digest.clone())]);
            clients.ecs.tag(service, &recorded).await?
        }
        Action::PutAlarm { alarm, tags, .. } => clients.cloudwatch.put_alarm(alarm, tags).await?,
        Action::DeleteAlarms { names } => clients.cloudwatch.delete_alarms(names).await?,
        Action::CreateIntegration { api_id, config, service } => {
            let mut config = config.clone();
            config.service_arn = out.resolve(service, "apigateway", "CreateIntegration")?;
            let integration = lost::create_once(
                || clients.apigateway.create_integration(api_id, &config),
                || lost::integration(clients, api_id, &config.description),
            )
            .await?;
            out.created.insert(Created::Integration, integration.id);
        }
        Action::UpdateIntegration { api_id, id, config, service, .. } => {
            let mut config = config.clone();
            config.service_arn = out.resolve(service, "apigateway", "UpdateIntegration")?;
            clients.apigateway.update_integration(api_id, id, &config).await?
        }
        Action::CreateAuthorizer { api_id, config } => {
            let authorizer = lost::create_once(
                || clients.apigateway.create_authorizer(api_id, config),
                || async {
                    let found = clients.apigateway.authorizers(api_id).await?;
                    Ok(found.into_iter().find(|a| a.config.name == config.name))
                },
            )
            .await?;
            out.created.insert(Created::Authorizer, authorizer.id);
        }
        Action::UpdateAuthorizer { api_id, id, config, .. } => {
            clients.apigateway.update_authorizer(api_id, id, config).await?
        }
        Action::CreateRoute { api_id, key, integration, authorizer } => {
            let config = route_config(out, key, integration, authorizer.as_ref(), "CreateRoute")?;
            lost::create_once(
                || clients.apigateway.create_route(api_id, &config),
                || async {
                    let found = clients.apigateway.routes(api_id).await?;
                    Ok(found.into_iter().find(|r| r.key == config.key))
                },
            )
            .await?;
        }
        Action::UpdateRoute { api_id, id, key, integration, authorizer, .. } => {
            let config = route_config(out, key, integration, authorizer.as_ref(), "UpdateRoute")?;
            clients.apigateway.update_route(api_id, id, &config).await?
        }
        Action::DeleteRoute { api_id, id, .. } => clients.apigateway.delete_route(api_id, id).await?,
        Action::DeployApi { api_id, stage, description } => {
            clients.apigateway.create_deployment(api_id, stage, description).await?;
        }
        Action::DeleteAuthorizer { api_id, id } => clients.apigateway.delete_authorizer(api_id, id).await?,
        Action::DeleteIntegration { api_id, id } => clients.apigateway.delete_integration(api_id, id).await?,
        Action::SetRulePriority { arn, priority, .. } => clients.elbv2.set_rule_priority(arn, *priority).await?,
        Action::CreateDiscoveryService { discovery, tags } => {
            let d = clients
                .cloudmap
                .create_service(
                    &discovery.namespace_id,
                    &discovery.name,
                    discovery.record_type,
                    discovery.ttl_seconds,
                    tags,
                )
                .await?;
            out.created.insert(Created::Discovery, d.arn);
        }
        Action::UpdateDiscoveryTtl { id, discovery, .. } => {
            clients.cloudmap.update_ttl(id, discovery.record_type, discovery.ttl_seconds).await?
        }
        Action::CreateService { config, task_definition, target_group, registry } => {
            let mut config = (**config).clone();
            config.task_definition = out.resolve(task_definition, "ecs", "CreateService")?;
            if let (Some(b), Some(r)) = (config.load_balancer.as_mut(), target_group) {
                b.arn = out.resolve(r, "ecs", "CreateService")?;
                out.fill_traffic(b);
            }
            if let (Some(b), Some(r)) = (config.registry.as_mut(), registry) {
                b.arn = out.resolve(r, "ecs", "CreateService")?;
            }
            let service = clients.ecs.create_service(&config).await?;
            out.created.insert(Created::Service, service.arn);
        }
        Action::UpdateService { update, task_definition, target_group, .. } => {
            let mut update = update.clone();
            if let Some(r) = task_definition {
                update.task_definition = Some(out.resolve(r, "ecs", "UpdateService")?);
            }
            if let (Some(bindings), Some(r)) = (update.load_balancers.as_mut(), target_group) {
                let arn = out.resolve(r, "ecs", "UpdateService")?;
                for b in bindings.iter_mut() {
                    b.arn = arn.clone();
                }
            }
            for b in update.load_balancers.iter_mut().flatten() {
                out.fill_traffic(b);
            }
            if let Some(bindings) = update.registries.as_mut()
                && let Some(arn) = out.get(Created::Discovery)
            {
                for b in bindings.iter_mut() {
                    if b.arn.starts_with("(new") {
                        b.arn = arn.to_string();
                    }
                }
            }
            clients.ecs.update_service(&update).await?;
        }
        Action::RegisterScalableTarget { target, .. } => clients.autoscaling.register_scalable_target(target).await?,
        Action::PutScalingPolicy { resource_id, policy, target_group, listener_arn } => {
            let mut policy: ScalingPolicy = policy.clone();
            if let ScalingMetric::RequestsPerTarget { resource_label } = &mut policy.metric {
                let tg = match target_group {
                    Some(r) => out.resolve(r, "application-autoscaling", "PutScalingPolicy")?,
                    None => String::new(),
                };
                *resource_label = request_count_label(listener_arn.as_deref().unwrap_or(""), &tg).ok_or_else(|| {
                    AwsError::new(
                        "application-autoscaling",
                        "PutScalingPolicy",
                        ErrorKind::Invalid,
                        "targetRequestsPerTarget needs loadBalancer (a listener and a target group)",
                    )
                })?;
            }
            clients.autoscaling.put_policy(resource_id, &policy).await?
        }
        Action::DeleteScalingPolicy { resource_id, name } => {
            clients.autoscaling.delete_policy(resource_id, name).await?
        }
        Action::DeregisterScalableTarget { resource_id } => {
            clients.autoscaling.deregister_scalable_target(resource_id).await?
        }
        Action::DeregisterTaskDefinition { arn } => clients.ecs.deregister_task_definition(arn).await?,
        Action::TagService { service, tags, revision, redirect_rule } => {
            let arn = out.resolve(service, "ecs", "TagResource")?;
            let mut tags: Tags = tags.clone();
            tags.insert(service_tags::REVISION.into(), tag_value(&out.resolve(revision, "ecs", "TagResource")?));
            if let Some(rule) = redirect_rule {
                tags.insert(service_tags::REDIRECT_RULE.into(), tag_value(&out.resolve(rule, "ecs", "TagResource")?));
            }
            clients.ecs.tag(&arn, &tags).await?
        }
        Action::DeleteRule { arn } => clients.elbv2.delete_rule(arn).await?,
        Action::DeleteService { cluster, name } => {
            // Forced: ECS scales the service to zero and stops its tasks, which drain through the
            // target group's deregistration delay; no separate scale-down call is needed.
            clients.ecs.delete_service(cluster, name).await?
        }
        Action::WaitServiceGone { cluster, name } => {
            let deadline = tokio::time::Instant::now() + wait.timeout;
            loop {
                match clients.ecs.service(cluster, name).await? {
                    None => break,
                    Some(s) if s.status == "INACTIVE" => break,
                    Some(s) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(AwsError::new(
                                "ecs",
                                "DescribeServices",
                                ErrorKind::Transient,
                                format!("service {name} is still {} after {:?}", s.status, wait.timeout),
                            ));
                        }
                        // A shutdown does not wait out a draining service; the next run waits again.
                        if !progress.proceed() {
                            return Err(stopped());
                        }
                        tokio::time::sleep(wait.interval).await;
                    }
                }
            }
        }
        Action::DeleteTargetGroup { arn } => clients.elbv2.delete_target_group(arn).await?,
        Action::DeleteDiscoveryService { id } => clients.cloudmap.delete_service(id).await?,
        Action::DeleteRepository { name } => clients.ecr.delete_repository(name).await?,
        Action::Untag { resource, arn, keys } => match resource {
            Resource::Repository => clients.ecr.untag(arn, keys).await?,
            Resource::TaskDefinition | Resource::Service => clients.ecs.untag(arn, keys).await?,
            Resource::TargetGroup | Resource::Rule => clients.elbv2.remove_tags(arn, keys).await?,
            Resource::Discovery => clients.cloudmap.untag(arn, keys).await?,
            Resource::Alarm => clients.cloudwatch.untag(arn, keys).await?,
        },
    }
    Ok(())
}

/// What a rule to create matches.
struct Conditions<'a> {
    hosts: &'a [String],
    paths: &'a [String],
    header: Option<&'a HeaderMatch>,
}

async fn create_rule(
    clients: &Clients,
    listener_arn: &str,
    priority: i32,
    conditions: Conditions<'_>,
    action: RuleAction,
    tags: &Tags,
) -> Result<Rule, AwsError> {
    let config = RuleConfig {
        listener_arn: listener_arn.to_string(),
        priority,
        hosts: conditions.hosts.to_vec(),
        paths: conditions.paths.to_vec(),
        header: conditions.header.cloned(),
        action,
        tags: tags.clone(),
    };
    lost::create_once(
        || clients.elbv2.create_rule(&config),
        || lost::rule(clients, listener_arn, priority, &config.action),
    )
    .await
}

/// A route's settings, with the integration and authorizer ids filled in.
fn route_config(
    out: &Outputs,
    key: &str,
    integration: &Ref,
    authorizer: Option<&Ref>,
    operation: &'static str,
) -> Result<RouteConfig, AwsError> {
    Ok(RouteConfig {
        key: key.to_string(),
        target: format!("integrations/{}", out.resolve(integration, "apigateway", operation)?),
        authorizer_id: authorizer.map(|a| out.resolve(a, "apigateway", operation)).transpose()?,
    })
}

/// The ALBRequestCountPerTarget resource label: `app/<lb>/<id>/targetgroup/<tg>/<id>`, from the
/// listener ARN (`...:listener/app/<lb>/<id>/<listener-id>`) and the target-group ARN.
pub fn request_count_label(listener_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = listener_arn.split_once(":listener/")?.1;
    let lb = lb.rsplit_once('/')?.0;
    let tg = target_group_arn.split_once(":targetgroup/").map(|(_, t)| t)?;
    Some(format!("{lb}/targetgroup/{tg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_count_label_joins_load_balancer_and_target_group() {
        let label = request_count_label(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/prod-books-api-1a2b3c4d/73e2d6bc24d8a067",
        );
        assert_eq!(
            label.as_deref(),
            Some("app/api-alb/50dc6c495c0c9188/targetgroup/prod-books-api-1a2b3c4d/73e2d6bc24d8a067")
        );
        assert_eq!(request_count_label("nope", "nope"), None);
    }
}
