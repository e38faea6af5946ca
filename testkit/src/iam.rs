//! An IAM request recorder for tests: which authorizations AWS would make for what ecsop does.
//!
//! [`IamRecorder`] wraps the clients of a [`FakeAws`]: every adapter call first records the IAM
//! requests AWS evaluates for it ([`IamRequest`]: the action, the resource ARN and the request context
//! with its condition keys, resource tags read from the fake as they are at the moment of the call),
//! then goes on to the fake unchanged. The IAM test runs the engine through these clients and evaluates
//! every recorded request against `deploy/iam-policy.json` with a real policy engine, so a policy that
//! is missing an action, scopes a resource too narrowly or requires a tag ecsop does not send fails a
//! test instead of a deployment.
//!
//! The requests follow the SDK adapters (`ecsop::aws::*::Sdk*`), not the fake: where an adapter makes
//! more than one SDK call (promotion reads the manifest before putting the tag, `put_alarm` reads the
//! alarm's ARN back to tag it), each call is recorded, and where an adapter makes none (tagging with no
//! tags, untagging no keys) nothing is.
//!
//! Context keys used: `aws:ResourceTag/<key>` (each tag on the resource), `aws:RequestTag/<key>` and
//! `aws:TagKeys` (the tags in the request; for untagging only `aws:TagKeys`, the keys removed), and the
//! service keys `ecs:cluster`, `ecs:CreateAction`, `elasticloadbalancing:CreateAction`,
//! `iam:PassedToService` and `iam:AWSServiceName`. Values are strings, `aws:TagKeys` an array.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;

use ecsop::api::{DnsRecordType, TagMutability};
use ecsop::aws::{
    AlarmInfo, ApiGateway, Authorizer, AuthorizerConfig, Autoscaling, AwsResult, Clients, CloudMap, CloudWatch,
    DiscoveryService, Ecr, Ecs, Elbv2, ImageScan, Integration, IntegrationConfig, MetricAlarm, MetricQuery, Repository,
    Route, RouteConfig, Rule, RuleAction, RuleConfig, ScalableTarget, ScalingPolicy, Service, ServiceConfig,
    ServiceDeployment, ServiceUpdate, Stage, Tags, TargetGroup, TargetGroupConfig, TargetGroupHealth, TaskDefinition,
    TaskDefinitionInfo,
};

use crate::fake::{ACCOUNT, FakeAws, REGION};

/// One IAM authorization AWS makes for an API call: the action, the resource ARN it is evaluated on,
/// and the request context (condition keys).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IamRequest {
    /// The API call that caused it (`ecs:CreateService`).
    pub call: String,
    /// The IAM action evaluated (`ecs:TagResource`).
    pub action: String,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// The request context: condition key to a string, or to an array of strings (`aws:TagKeys`).
    pub context: BTreeMap<String, Value>,
}

/// A `Clients` whose every call records the IAM requests AWS would authorize for it, then delegates to
/// the fake's own clients. Clones share the log.
#[derive(Clone)]
pub struct IamRecorder {
    recording: Recording,
}

impl IamRecorder {
    /// A recorder over `fake` (the calls go to `fake.clients()`; resource tags are read from `fake`),
    /// with an empty log.
    pub fn new(fake: &FakeAws) -> IamRecorder {
        IamRecorder { recording: Recording { inner: fake.clients(), fake: fake.clone(), log: Arc::default() } }
    }

    /// The seven clients, each recording into this recorder's log.
    pub fn clients(&self) -> Clients {
        Clients {
            ecr: Arc::new(self.recording.clone()),
            ecs: Arc::new(self.recording.clone()),
            elbv2: Arc::new(self.recording.clone()),
            cloudmap: Arc::new(self.recording.clone()),
            autoscaling: Arc::new(self.recording.clone()),
            cloudwatch: Arc::new(self.recording.clone()),
            apigateway: Arc::new(self.recording.clone()),
        }
    }

    /// Every request recorded so far, in the order recorded.
    pub fn requests(&self) -> Vec<IamRequest> {
        self.recording.entries().clone()
    }

    /// Forget the requests recorded so far.
    pub fn clear(&self) {
        self.recording.entries().clear();
    }
}

// ---- building requests ------------------------------------------------------------------------------

/// A request context.
type Context = BTreeMap<String, Value>;

/// The recording clients: one value implementing all seven adapter traits.
#[derive(Clone)]
struct Recording {
    inner: Clients,
    fake: FakeAws,
    log: Arc<Mutex<Vec<IamRequest>>>,
}

impl Recording {
    fn entries(&self) -> MutexGuard<'_, Vec<IamRequest>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, requests: impl IntoIterator<Item = IamRequest>) {
        self.entries().extend(requests);
    }

    /// The tags on `arn` now (none for an unknown ARN).
    fn current_tags(&self, arn: &str) -> Tags {
        self.fake.tags_of(arn).unwrap_or_default()
    }

    /// `aws:ResourceTag/<key>` for each tag on `arn` now.
    fn resource_tags(&self, arn: &str) -> Context {
        resource_tag_entries(&self.current_tags(arn))
    }

    /// `action` (called as itself) on a resource that exists: its current tags in the context, with
    /// `extra`.
    fn on_resource(&self, action: &str, arn: &str, extra: Context) -> IamRequest {
        request(action, action, arn, merge([self.resource_tags(arn), extra]))
    }

    /// Record `action`, called as itself, on `arn` with the resource's current tags.
    fn record_on(&self, action: &str, arn: &str) {
        self.record([self.on_resource(action, arn, Context::new())]);
    }

    /// Record tagging `arn`: the resource's tags and the request's. Nothing for no tags: the adapters
    /// make no call then.
    fn record_tag(&self, action: &str, arn: &str, tags: &Tags) {
        if !tags.is_empty() {
            self.record([self.on_resource(action, arn, request_tags(tags))]);
        }
    }

    /// Record untagging `arn`: the resource's tags and the keys removed. Nothing for no keys.
    fn record_untag(&self, action: &str, arn: &str, keys: &[String]) {
        if !keys.is_empty() {
            self.record([self.on_resource(action, arn, tag_keys(keys))]);
        }
    }

    /// Record the API Gateway call `call`: the HTTP method as the action, on `/apis/<api>/<path>`.
    fn record_api(&self, call: &str, method: &str, api_id: &str, path: &str) {
        let resource = format!("arn:aws:apigateway:{REGION}::/apis/{api_id}/{path}");
        self.record([request(call, &format!("apigateway:{method}"), resource, Context::new())]);
    }

    /// The ARN of the Cloud Map service `id`.
    fn discovery_arn(&self, id: &str) -> String {
        self.fake
            .discovery_services()
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.arn)
            .unwrap_or_else(|| format!("arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/{id}"))
    }
}

/// ECS authorizes a load balancer's infrastructure role (`advancedConfiguration.roleArn`) as
/// `iam:PassRole` to ecs.amazonaws.com.
fn pass_infrastructure_roles(call: &str, load_balancers: &[ecsop::aws::Binding]) -> Vec<IamRequest> {
    load_balancers
        .iter()
        .filter_map(|b| b.traffic.as_ref())
        .map(|t| request(call, "iam:PassRole", t.role_arn.as_str(), key("iam:PassedToService", "ecs.amazonaws.com")))
        .collect()
}

fn request(call: &str, action: &str, resource: impl Into<String>, context: Context) -> IamRequest {
    IamRequest { call: call.to_string(), action: action.to_string(), resource: resource.into(), context }
}

/// `aws:ResourceTag/<key>` for each tag.
fn resource_tag_entries(tags: &Tags) -> Context {
    tags.iter().map(|(k, v)| (format!("aws:ResourceTag/{k}"), Value::String(v.clone()))).collect()
}

/// `aws:RequestTag/<key>` for each tag, and `aws:TagKeys`. Empty for no tags (AWS leaves the keys out).
fn request_tags(tags: &Tags) -> Context {
    let mut context: Context =
        tags.iter().map(|(k, v)| (format!("aws:RequestTag/{k}"), Value::String(v.clone()))).collect();
    context.extend(tag_keys(tags.keys()));
    context
}

/// `aws:TagKeys`: the keys. Empty for no keys.
fn tag_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Context {
    let keys: Vec<Value> = keys.into_iter().map(|k| Value::String(k.clone())).collect();
    if keys.is_empty() {
        return Context::new();
    }
    Context::from([("aws:TagKeys".to_string(), Value::Array(keys))])
}

/// One single-valued context key.
fn key(name: &str, value: &str) -> Context {
    Context::from([(name.to_string(), Value::String(value.to_string()))])
}

fn merge<const N: usize>(parts: [Context; N]) -> Context {
    parts.into_iter().flatten().collect()
}

/// The last path segment of an ARN, or the name itself (ECS takes names or ARNs).
fn short_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") { name_or_arn.rsplit('/').next().unwrap_or(name_or_arn) } else { name_or_arn }
}

fn repository_arn(registry_id: Option<&str>, name: &str) -> String {
    format!("arn:aws:ecr:{REGION}:{}:repository/{name}", registry_id.unwrap_or(ACCOUNT))
}

fn service_arn(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{}", short_name(cluster), short_name(name))
}

/// `ecs:cluster`: the cluster's ARN.
fn cluster_key(cluster: &str) -> Context {
    key("ecs:cluster", &format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", short_name(cluster)))
}

fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}

/// The alarms target tracking makes for a policy on `resource_id` (one pattern stands for them).
fn target_tracking_alarms(resource_id: &str) -> String {
    alarm_arn(&format!("TargetTracking-{resource_id}-AlarmHigh-*"))
}

// ---- ECR ----------------------------------------------------------------------------------------------

#[async_trait]
impl Ecr for Recording {
    async fn repository(&self, registry_id: Option<&str>, name: &str) -> AwsResult<Option<Repository>> {
        self.record_on("ecr:DescribeRepositories", &repository_arn(registry_id, name));
        self.inner.ecr.repository(registry_id, name).await
    }

    async fn repository_tags(&self, arn: &str) -> AwsResult<Tags> {
        self.record_on("ecr:ListTagsForResource", arn);
        self.inner.ecr.repository_tags(arn).await
    }

    async fn lifecycle_policy(&self, name: &str) -> AwsResult<Option<String>> {
        self.record_on("ecr:GetLifecyclePolicy", &repository_arn(None, name));
        self.inner.ecr.lifecycle_policy(name).await
    }

    async fn resolve_tag(&self, registry_id: Option<&str>, repository: &str, tag: &str) -> AwsResult<Option<String>> {
        self.record_on("ecr:DescribeImages", &repository_arn(registry_id, repository));
        self.inner.ecr.resolve_tag(registry_id, repository, tag).await
    }

    async fn digest_exists(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<bool> {
        self.record_on("ecr:DescribeImages", &repository_arn(registry_id, repository));
        self.inner.ecr.digest_exists(registry_id, repository, digest).await
    }

    async fn create_repository(
        &self,
        name: &str,
        scan_on_push: bool,
        tag_mutability: TagMutability,
        tags: &Tags,
    ) -> AwsResult<Repository> {
        const CALL: &str = "ecr:CreateRepository";
        let arn = repository_arn(None, name);
        // The repository does not exist yet: no resource tags.
        let mut requests = vec![request(CALL, CALL, arn.as_str(), request_tags(tags))];
        if !tags.is_empty() {
            // Tags on create are authorized as tagging too.
            requests.push(request(CALL, "ecr:TagResource", arn, request_tags(tags)));
        }
        self.record(requests);
        self.inner.ecr.create_repository(name, scan_on_push, tag_mutability, tags).await
    }

    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> AwsResult<()> {
        self.record_on("ecr:PutImageScanningConfiguration", &repository_arn(None, name));
        self.inner.ecr.set_scan_on_push(name, scan_on_push).await
    }

    async fn set_tag_mutability(&self, name: &str, tag_mutability: TagMutability) -> AwsResult<()> {
        self.record_on("ecr:PutImageTagMutability", &repository_arn(None, name));
        self.inner.ecr.set_tag_mutability(name, tag_mutability).await
    }

    async fn put_lifecycle_policy(&self, name: &str, policy: &str) -> AwsResult<()> {
        self.record_on("ecr:PutLifecyclePolicy", &repository_arn(None, name));
        self.inner.ecr.put_lifecycle_policy(name, policy).await
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.record_tag("ecr:TagResource", arn, tags);
        self.inner.ecr.tag(arn, tags).await
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.record_untag("ecr:UntagResource", arn, keys);
        self.inner.ecr.untag(arn, keys).await
    }

    async fn delete_repository(&self, name: &str) -> AwsResult<()> {
        self.record_on("ecr:DeleteRepository", &repository_arn(None, name));
        self.inner.ecr.delete_repository(name).await
    }

    async fn image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<ImageScan> {
        self.record_on("ecr:DescribeImageScanFindings", &repository_arn(registry_id, repository));
        self.inner.ecr.image_scan(registry_id, repository, digest).await
    }

    async fn start_image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<()> {
        self.record_on("ecr:StartImageScan", &repository_arn(registry_id, repository));
        self.inner.ecr.start_image_scan(registry_id, repository, digest).await
    }

    async fn put_tag(&self, registry_id: Option<&str>, repository: &str, digest: &str, tag: &str) -> AwsResult<()> {
        // The adapter reads the image's manifest (BatchGetImage), then puts it under the tag (PutImage).
        let arn = repository_arn(registry_id, repository);
        self.record([
            self.on_resource("ecr:BatchGetImage", &arn, Context::new()),
            self.on_resource("ecr:PutImage", &arn, Context::new()),
        ]);
        self.inner.ecr.put_tag(registry_id, repository, digest, tag).await
    }
}

// ---- ECS ----------------------------------------------------------------------------------------------

#[async_trait]
impl Ecs for Recording {
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>> {
        const CALL: &str = "ecs:DescribeServices";
        self.record([request(CALL, CALL, service_arn(cluster, name), Context::new())]);
        self.inner.ecs.service(cluster, name).await
    }

    async fn list_task_definitions(&self, family: &str) -> AwsResult<Vec<String>> {
        const CALL: &str = "ecs:ListTaskDefinitions";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.ecs.list_task_definitions(family).await
    }

    async fn task_definition(&self, arn: &str) -> AwsResult<TaskDefinitionInfo> {
        const CALL: &str = "ecs:DescribeTaskDefinition";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.ecs.task_definition(arn).await
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
        tags: &Tags,
    ) -> AwsResult<TaskDefinitionInfo> {
        const CALL: &str = "ecs:RegisterTaskDefinition";
        let result = self.inner.ecs.register_task_definition(definition, tags).await;
        // The revision's ARN is known from the answer; a failed registration names no revision.
        let arn = match &result {
            Ok(info) => info.arn.clone(),
            Err(_) => format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{}:*", definition.family),
        };
        let mut requests = vec![request(CALL, CALL, "*", request_tags(tags))];
        if !tags.is_empty() {
            let context = merge([request_tags(tags), key("ecs:CreateAction", "RegisterTaskDefinition")]);
            requests.push(request(CALL, "ecs:TagResource", arn, context));
        }
        for role in [&definition.task_role_arn, &definition.execution_role_arn].into_iter().flatten() {
            let context = key("iam:PassedToService", "ecs-tasks.amazonaws.com");
            requests.push(request(CALL, "iam:PassRole", role.as_str(), context));
        }
        self.record(requests);
        result
    }

    async fn deregister_task_definition(&self, arn: &str) -> AwsResult<()> {
        const CALL: &str = "ecs:DeregisterTaskDefinition";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.ecs.deregister_task_definition(arn).await
    }

    async fn create_service(&self, config: &ServiceConfig) -> AwsResult<Service> {
        const CALL: &str = "ecs:CreateService";
        let arn = service_arn(&config.cluster, &config.name);
        let mut requests =
            vec![request(CALL, CALL, arn.as_str(), merge([request_tags(&config.tags), cluster_key(&config.cluster)]))];
        if !config.tags.is_empty() {
            let context = merge([request_tags(&config.tags), key("ecs:CreateAction", "CreateService")]);
            requests.push(request(CALL, "ecs:TagResource", arn, context));
        }
        requests.extend(pass_infrastructure_roles(CALL, config.load_balancer.as_slice()));
        self.record(requests);
        self.inner.ecs.create_service(config).await
    }

    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service> {
        let arn = service_arn(&update.cluster, &update.name);
        let mut requests = vec![self.on_resource("ecs:UpdateService", &arn, cluster_key(&update.cluster))];
        requests.extend(pass_infrastructure_roles(
            "ecs:UpdateService",
            update.load_balancers.as_deref().unwrap_or_default(),
        ));
        self.record(requests);
        self.inner.ecs.update_service(update).await
    }

    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()> {
        self.record_on("ecs:DeleteService", &service_arn(cluster, name));
        self.inner.ecs.delete_service(cluster, name).await
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.record_tag("ecs:TagResource", arn, tags);
        self.inner.ecs.tag(arn, tags).await
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.record_untag("ecs:UntagResource", arn, keys);
        self.inner.ecs.untag(arn, keys).await
    }

    async fn stop_service_deployment(&self, arn: &str, rollback: bool) -> AwsResult<()> {
        self.record_on("ecs:StopServiceDeployment", arn);
        self.inner.ecs.stop_service_deployment(arn, rollback).await
    }

    async fn service_deployments(&self, cluster: &str, name: &str) -> AwsResult<Vec<ServiceDeployment>> {
        const LIST: &str = "ecs:ListServiceDeployments";
        const DESCRIBE: &str = "ecs:DescribeServiceRevisions";
        self.record([request(LIST, LIST, service_arn(cluster, name), Context::new())]);
        let result = self.inner.ecs.service_deployments(cluster, name).await;
        // The deployments' task definitions come from their service revisions, asked only when there are
        // deployments.
        if result.as_ref().is_ok_and(|deployments| !deployments.is_empty()) {
            self.record([request(DESCRIBE, DESCRIBE, "*", Context::new())]);
        }
        result
    }
}

// ---- ELBv2 --------------------------------------------------------------------------------------------

#[async_trait]
impl Elbv2 for Recording {
    async fn target_group(&self, name: &str) -> AwsResult<Option<TargetGroup>> {
        const CALL: &str = "elasticloadbalancing:DescribeTargetGroups";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.elbv2.target_group(name).await
    }

    async fn target_group_attributes(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        const CALL: &str = "elasticloadbalancing:DescribeTargetGroupAttributes";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.elbv2.target_group_attributes(arn).await
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        const CALL: &str = "elasticloadbalancing:DescribeTags";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.elbv2.tags(arn).await
    }

    async fn create_target_group(&self, config: &TargetGroupConfig) -> AwsResult<TargetGroup> {
        const CALL: &str = "elasticloadbalancing:CreateTargetGroup";
        let result = self.inner.elbv2.create_target_group(config).await;
        let arn = match &result {
            Ok(group) => group.arn.clone(),
            Err(_) => format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{}/*", config.name),
        };
        let mut requests = vec![request(CALL, CALL, arn.as_str(), request_tags(&config.tags))];
        if !config.tags.is_empty() {
            let context =
                merge([request_tags(&config.tags), key("elasticloadbalancing:CreateAction", "CreateTargetGroup")]);
            requests.push(request(CALL, "elasticloadbalancing:AddTags", arn, context));
        }
        self.record(requests);
        result
    }

    async fn modify_target_group(&self, arn: &str, health: &TargetGroupHealth) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:ModifyTargetGroup", arn);
        self.inner.elbv2.modify_target_group(arn, health).await
    }

    async fn set_target_group_attributes(&self, arn: &str, attributes: &BTreeMap<String, String>) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:ModifyTargetGroupAttributes", arn);
        self.inner.elbv2.set_target_group_attributes(arn, attributes).await
    }

    async fn delete_target_group(&self, arn: &str) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:DeleteTargetGroup", arn);
        self.inner.elbv2.delete_target_group(arn).await
    }

    async fn rules(&self, listener_arn: &str) -> AwsResult<Vec<Rule>> {
        const CALL: &str = "elasticloadbalancing:DescribeRules";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.elbv2.rules(listener_arn).await
    }

    async fn create_rule(&self, config: &RuleConfig) -> AwsResult<Rule> {
        const CALL: &str = "elasticloadbalancing:CreateRule";
        let result = self.inner.elbv2.create_rule(config).await;
        let arn = match &result {
            Ok(rule) => rule.arn.clone(),
            Err(_) => format!("{}/*", config.listener_arn.replacen(":listener/", ":listener-rule/", 1)),
        };
        let mut requests = vec![
            request(CALL, CALL, arn.as_str(), request_tags(&config.tags)),
            // CreateRule is evaluated on the listener too; the listener is not ecsop's, its tags do not
            // matter to ecsop's policy.
            request(CALL, CALL, config.listener_arn.as_str(), request_tags(&config.tags)),
        ];
        if !config.tags.is_empty() {
            let context = merge([request_tags(&config.tags), key("elasticloadbalancing:CreateAction", "CreateRule")]);
            requests.push(request(CALL, "elasticloadbalancing:AddTags", arn, context));
        }
        self.record(requests);
        result
    }

    async fn modify_rule(&self, arn: &str, hosts: &[String], paths: &[String], action: &RuleAction) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:ModifyRule", arn);
        self.inner.elbv2.modify_rule(arn, hosts, paths, action).await
    }

    async fn set_rule_priority(&self, arn: &str, priority: i32) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:SetRulePriorities", arn);
        self.inner.elbv2.set_rule_priority(arn, priority).await
    }

    async fn delete_rule(&self, arn: &str) -> AwsResult<()> {
        self.record_on("elasticloadbalancing:DeleteRule", arn);
        self.inner.elbv2.delete_rule(arn).await
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.record_tag("elasticloadbalancing:AddTags", arn, tags);
        self.inner.elbv2.add_tags(arn, tags).await
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.record_untag("elasticloadbalancing:RemoveTags", arn, keys);
        self.inner.elbv2.remove_tags(arn, keys).await
    }
}

// ---- Cloud Map ----------------------------------------------------------------------------------------

#[async_trait]
impl CloudMap for Recording {
    async fn find_service(&self, namespace_id: &str, name: &str) -> AwsResult<Option<DiscoveryService>> {
        const CALL: &str = "servicediscovery:ListServices";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.cloudmap.find_service(namespace_id, name).await
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        const CALL: &str = "servicediscovery:ListTagsForResource";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.cloudmap.tags(arn).await
    }

    async fn create_service(
        &self,
        namespace_id: &str,
        name: &str,
        record_type: DnsRecordType,
        ttl_seconds: i64,
        tags: &Tags,
    ) -> AwsResult<DiscoveryService> {
        const CALL: &str = "servicediscovery:CreateService";
        let namespace = format!("arn:aws:servicediscovery:{REGION}:{ACCOUNT}:namespace/{namespace_id}");
        let mut requests = vec![request(CALL, CALL, namespace, request_tags(tags))];
        if !tags.is_empty() {
            requests.push(request(CALL, "servicediscovery:TagResource", "*", request_tags(tags)));
        }
        self.record(requests);
        self.inner.cloudmap.create_service(namespace_id, name, record_type, ttl_seconds, tags).await
    }

    async fn update_ttl(&self, id: &str, record_type: DnsRecordType, ttl_seconds: i64) -> AwsResult<()> {
        self.record_on("servicediscovery:UpdateService", &self.discovery_arn(id));
        self.inner.cloudmap.update_ttl(id, record_type, ttl_seconds).await
    }

    async fn delete_service(&self, id: &str) -> AwsResult<()> {
        self.record_on("servicediscovery:DeleteService", &self.discovery_arn(id));
        self.inner.cloudmap.delete_service(id).await
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        const CALL: &str = "servicediscovery:TagResource";
        // Cloud Map's TagResource has no resource-level permissions and no resource tags in its context.
        if !tags.is_empty() {
            self.record([request(CALL, CALL, "*", request_tags(tags))]);
        }
        self.inner.cloudmap.tag(arn, tags).await
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        const CALL: &str = "servicediscovery:UntagResource";
        if !keys.is_empty() {
            self.record([request(CALL, CALL, "*", tag_keys(keys))]);
        }
        self.inner.cloudmap.untag(arn, keys).await
    }
}

// ---- Application Auto Scaling -------------------------------------------------------------------------

#[async_trait]
impl Autoscaling for Recording {
    async fn scalable_target(&self, resource_id: &str) -> AwsResult<Option<ScalableTarget>> {
        const CALL: &str = "application-autoscaling:DescribeScalableTargets";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.autoscaling.scalable_target(resource_id).await
    }

    async fn register_scalable_target(&self, target: &ScalableTarget) -> AwsResult<()> {
        const CALL: &str = "application-autoscaling:RegisterScalableTarget";
        const SERVICE: &str = "ecs.application-autoscaling.amazonaws.com";
        let mut requests = vec![request(CALL, CALL, "*", Context::new())];
        // The first scalable target of an account makes Application Auto Scaling create its
        // service-linked role, on the caller's permissions.
        if self.fake.scalable_targets().is_empty() {
            let role = format!(
                "arn:aws:iam::{ACCOUNT}:role/aws-service-role/{SERVICE}/AWSServiceRoleForApplicationAutoScaling_ECSService"
            );
            requests.push(request(CALL, "iam:CreateServiceLinkedRole", role, key("iam:AWSServiceName", SERVICE)));
        }
        self.record(requests);
        self.inner.autoscaling.register_scalable_target(target).await
    }

    async fn deregister_scalable_target(&self, resource_id: &str) -> AwsResult<()> {
        const CALL: &str = "application-autoscaling:DeregisterScalableTarget";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.autoscaling.deregister_scalable_target(resource_id).await
    }

    async fn policies(&self, resource_id: &str) -> AwsResult<Vec<ScalingPolicy>> {
        const CALL: &str = "application-autoscaling:DescribeScalingPolicies";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.autoscaling.policies(resource_id).await
    }

    async fn put_policy(&self, resource_id: &str, policy: &ScalingPolicy) -> AwsResult<()> {
        const CALL: &str = "application-autoscaling:PutScalingPolicy";
        // Target tracking creates its alarms on the caller's permissions.
        self.record([
            request(CALL, CALL, "*", Context::new()),
            request(CALL, "cloudwatch:PutMetricAlarm", target_tracking_alarms(resource_id), Context::new()),
        ]);
        self.inner.autoscaling.put_policy(resource_id, policy).await
    }

    async fn delete_policy(&self, resource_id: &str, name: &str) -> AwsResult<()> {
        const CALL: &str = "application-autoscaling:DeleteScalingPolicy";
        self.record([
            request(CALL, CALL, "*", Context::new()),
            request(CALL, "cloudwatch:DeleteAlarms", target_tracking_alarms(resource_id), Context::new()),
        ]);
        self.inner.autoscaling.delete_policy(resource_id, name).await
    }
}

// ---- CloudWatch ---------------------------------------------------------------------------------------

#[async_trait]
impl CloudWatch for Recording {
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmInfo>> {
        const CALL: &str = "cloudwatch:DescribeAlarms";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.cloudwatch.alarms(prefix).await
    }

    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> AwsResult<()> {
        const CALL: &str = "cloudwatch:PutMetricAlarm";
        const TAG: &str = "cloudwatch:TagResource";
        const DESCRIBE: &str = "cloudwatch:DescribeAlarms";
        let arn = alarm_arn(&alarm.name);
        let existing = self.fake.tags_of(&arn);
        let before = resource_tag_entries(existing.as_ref().unwrap_or(&Tags::new()));
        let mut requests = vec![request(CALL, CALL, arn.as_str(), merge([before, request_tags(tags)]))];
        if !tags.is_empty() {
            // Tags in PutMetricAlarm are authorized as tagging (on creation: no resource tags).
            requests.push(request(CALL, TAG, arn.as_str(), request_tags(tags)));
            // The adapter then reads the alarm's ARN back by name and tags it with TagResource: by then the
            // alarm exists, with its old tags if it was replaced (a replace ignores Tags), these if new.
            let then = existing.unwrap_or_else(|| tags.clone());
            requests.push(request(DESCRIBE, DESCRIBE, arn.as_str(), Context::new()));
            requests.push(request(TAG, TAG, arn, merge([resource_tag_entries(&then), request_tags(tags)])));
        }
        self.record(requests);
        self.inner.cloudwatch.put_alarm(alarm, tags).await
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        const CALL: &str = "cloudwatch:ListTagsForResource";
        self.record([request(CALL, CALL, arn, Context::new())]);
        self.inner.cloudwatch.tags(arn).await
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.record_tag("cloudwatch:TagResource", arn, tags);
        self.inner.cloudwatch.tag(arn, tags).await
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.record_untag("cloudwatch:UntagResource", arn, keys);
        self.inner.cloudwatch.untag(arn, keys).await
    }

    async fn delete_alarms(&self, names: &[String]) -> AwsResult<()> {
        let requests: Vec<IamRequest> = names
            .iter()
            .map(|name| self.on_resource("cloudwatch:DeleteAlarms", &alarm_arn(name), Context::new()))
            .collect();
        self.record(requests);
        self.inner.cloudwatch.delete_alarms(names).await
    }

    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: std::time::SystemTime,
        end: std::time::SystemTime,
    ) -> AwsResult<Vec<Option<f64>>> {
        // GetMetricData has no resource-level permissions: it is authorized on "*".
        const CALL: &str = "cloudwatch:GetMetricData";
        self.record([request(CALL, CALL, "*", Context::new())]);
        self.inner.cloudwatch.metric_data(queries, start, end).await
    }
}

// ---- API Gateway --------------------------------------------------------------------------------------

#[async_trait]
impl ApiGateway for Recording {
    async fn integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        self.record_api("apigateway:GetIntegrations", "GET", api_id, "integrations");
        self.inner.apigateway.integrations(api_id).await
    }

    async fn create_integration(&self, api_id: &str, config: &IntegrationConfig) -> AwsResult<Integration> {
        self.record_api("apigateway:CreateIntegration", "POST", api_id, "integrations");
        self.inner.apigateway.create_integration(api_id, config).await
    }

    async fn update_integration(&self, api_id: &str, id: &str, config: &IntegrationConfig) -> AwsResult<()> {
        self.record_api("apigateway:UpdateIntegration", "PATCH", api_id, &format!("integrations/{id}"));
        self.inner.apigateway.update_integration(api_id, id, config).await
    }

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.record_api("apigateway:DeleteIntegration", "DELETE", api_id, &format!("integrations/{id}"));
        self.inner.apigateway.delete_integration(api_id, id).await
    }

    async fn routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        self.record_api("apigateway:GetRoutes", "GET", api_id, "routes");
        self.inner.apigateway.routes(api_id).await
    }

    async fn create_route(&self, api_id: &str, config: &RouteConfig) -> AwsResult<Route> {
        self.record_api("apigateway:CreateRoute", "POST", api_id, "routes");
        self.inner.apigateway.create_route(api_id, config).await
    }

    async fn update_route(&self, api_id: &str, id: &str, config: &RouteConfig) -> AwsResult<()> {
        self.record_api("apigateway:UpdateRoute", "PATCH", api_id, &format!("routes/{id}"));
        self.inner.apigateway.update_route(api_id, id, config).await
    }

    async fn delete_route(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.record_api("apigateway:DeleteRoute", "DELETE", api_id, &format!("routes/{id}"));
        self.inner.apigateway.delete_route(api_id, id).await
    }

    async fn authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>> {
        self.record_api("apigateway:GetAuthorizers", "GET", api_id, "authorizers");
        self.inner.apigateway.authorizers(api_id).await
    }

    async fn create_authorizer(&self, api_id: &str, config: &AuthorizerConfig) -> AwsResult<Authorizer> {
        self.record_api("apigateway:CreateAuthorizer", "POST", api_id, "authorizers");
        self.inner.apigateway.create_authorizer(api_id, config).await
    }

    async fn update_authorizer(&self, api_id: &str, id: &str, config: &AuthorizerConfig) -> AwsResult<()> {
        self.record_api("apigateway:UpdateAuthorizer", "PATCH", api_id, &format!("authorizers/{id}"));
        self.inner.apigateway.update_authorizer(api_id, id, config).await
    }

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.record_api("apigateway:DeleteAuthorizer", "DELETE", api_id, &format!("authorizers/{id}"));
        self.inner.apigateway.delete_authorizer(api_id, id).await
    }

    async fn stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>> {
        self.record_api("apigateway:GetStage", "GET", api_id, &format!("stages/{name}"));
        self.inner.apigateway.stage(api_id, name).await
    }

    async fn create_deployment(&self, api_id: &str, stage: &str, description: &str) -> AwsResult<String> {
        self.record_api("apigateway:CreateDeployment", "POST", api_id, "deployments");
        self.inner.apigateway.create_deployment(api_id, stage, description).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::tests::tags;
    use serde_json::json;

    const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/books-api";
    const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";

    fn owned_tags() -> Tags {
        tags(&[("ecsop.io/managed-by", "ecsop"), ("ecsop.io/owner", "prod/books-api")])
    }

    fn task_definition(task_role: Option<&str>, execution_role: Option<&str>) -> TaskDefinition {
        TaskDefinition {
            task_role_arn: task_role.map(str::to_string),
            execution_role_arn: execution_role.map(str::to_string),
            ..crate::fake::tests::td("prod-books-api", "img@sha256:01")
        }
    }

    fn service_config(task_definition: &str) -> ServiceConfig {
        ServiceConfig { tags: owned_tags(), ..crate::fake::tests::service_config(task_definition) }
    }

    fn context(entries: &[(&str, Value)]) -> Context {
        entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[tokio::test]
    async fn a_tagged_service_is_authorized_as_create_and_as_tagging_on_create() {
        let fake = FakeAws::new();
        let iam = IamRecorder::new(&fake);
        let clients = iam.clients();
        let td = clients.ecs.register_task_definition(&task_definition(None, None), &Tags::new()).await.expect("td");
        iam.clear();

        clients.ecs.create_service(&service_config(&td.arn)).await.expect("creates");

        let request_tags = [
            ("aws:RequestTag/ecsop.io/managed-by", json!("ecsop")),
            ("aws:RequestTag/ecsop.io/owner", json!("prod/books-api")),
            ("aws:TagKeys", json!(["ecsop.io/managed-by", "ecsop.io/owner"])),
        ];
        let mut create = context(&request_tags);
        create.insert("ecs:cluster".into(), json!(CLUSTER_ARN));
        let mut tag_on_create = context(&request_tags);
        tag_on_create.insert("ecs:CreateAction".into(), json!("CreateService"));
        assert_eq!(
            iam.requests(),
            vec![
                request("ecs:CreateService", "ecs:CreateService", SERVICE_ARN, create),
                request("ecs:CreateService", "ecs:TagResource", SERVICE_ARN, tag_on_create),
            ]
        );
        assert_eq!(fake.tags_of(SERVICE_ARN), Some(owned_tags()), "the call went through to the fake");
    }

    #[tokio::test]
    async fn updates_and_untagging_see_the_service_tags_as_they_are_at_the_call() {
        let fake = FakeAws::new();
        let iam = IamRecorder::new(&fake);
        let clients = iam.clients();
        let td = clients.ecs.register_task_definition(&task_definition(None, None), &Tags::new()).await.expect("td");
        clients.ecs.create_service(&service_config(&td.arn)).await.expect("creates");
        iam.clear();
        let update = ServiceUpdate {
            cluster: "prod".into(),
            name: "books-api".into(),
            desired_count: Some(3),
            ..Default::default()
        };

        clients.ecs.update_service(&update).await.expect("updates");
        clients.ecs.untag(SERVICE_ARN, &["ecsop.io/owner".to_string()]).await.expect("untags");
        clients.ecs.update_service(&update).await.expect("updates again");
        clients.ecs.untag(SERVICE_ARN, &[]).await.expect("untags nothing");

        let managed = ("aws:ResourceTag/ecsop.io/managed-by", json!("ecsop"));
        let owner = ("aws:ResourceTag/ecsop.io/owner", json!("prod/books-api"));
        let cluster = ("ecs:cluster", json!(CLUSTER_ARN));
        assert_eq!(
            iam.requests(),
            vec![
                request(
                    "ecs:UpdateService",
                    "ecs:UpdateService",
                    SERVICE_ARN,
                    context(&[managed.clone(), owner.clone(), cluster.clone()])
                ),
                request(
                    "ecs:UntagResource",
                    "ecs:UntagResource",
                    SERVICE_ARN,
                    context(&[managed.clone(), owner, ("aws:TagKeys", json!(["ecsop.io/owner"]))])
                ),
                request("ecs:UpdateService", "ecs:UpdateService", SERVICE_ARN, context(&[managed, cluster])),
            ],
            "no request for untagging no keys: the adapter makes no call"
        );
    }

    #[tokio::test]
    async fn a_tagged_revision_with_roles_passes_both_roles_and_tags_the_new_revision() {
        let fake = FakeAws::new();
        let iam = IamRecorder::new(&fake);
        let task_role = "arn:aws:iam::123456789012:role/books-task";
        let execution_role = "arn:aws:iam::123456789012:role/books-exec";
        let definition = task_definition(Some(task_role), Some(execution_role));
        let owned = tags(&[("ecsop.io/managed-by", "ecsop")]);

        let info = iam.clients().ecs.register_task_definition(&definition, &owned).await.expect("registers");

        assert_eq!(info.arn, "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-books-api:1");
        let requests = iam.requests();
        let summary: Vec<(&str, &str)> = requests.iter().map(|r| (r.action.as_str(), r.resource.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("ecs:RegisterTaskDefinition", "*"),
                ("ecs:TagResource", info.arn.as_str()),
                ("iam:PassRole", task_role),
                ("iam:PassRole", execution_role),
            ]
        );
        assert!(requests.iter().all(|r| r.call == "ecs:RegisterTaskDefinition"), "{requests:#?}");
        assert_eq!(requests[1].context["ecs:CreateAction"], json!("RegisterTaskDefinition"));
        assert_eq!(requests[1].context["aws:TagKeys"], json!(["ecsop.io/managed-by"]));
        assert!(!requests[1].context.keys().any(|k| k.starts_with("aws:ResourceTag/")), "new: no resource tags");
        assert_eq!(requests[2].context, context(&[("iam:PassedToService", json!("ecs-tasks.amazonaws.com"))]));
    }
}
