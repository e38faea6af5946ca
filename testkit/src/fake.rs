//! In-memory fakes of ecsop's AWS adapters, for the engine's tests, property tests and benchmarks.
//!
//! Test support: it lives here, in `ecsop-testkit`, so the shipped `ecsop` binary does not contain it.
//!
//! [`FakeAws`] holds one AWS account (`123456789012`) in one region (`us-east-1`) and implements
//! [`Ecr`], [`Ecs`], [`Elbv2`], [`CloudMap`] and [`Autoscaling`] on it. It behaves like AWS wherever the
//! engine could notice: ARN formats, idempotency rules, conflicts, ordering constraints between services
//! (a target group must be behind a load balancer before an ECS service uses it, a Cloud Map service with
//! registered tasks cannot be deleted, ...), and ECS deployments as the moto harness models them
//! (`testkit/python/ecsop_moto.py`). Every error it returns carries the AWS error code and message AWS
//! would send, and is classified with [`classify_code`] exactly as the SDK adapters classify them.
//!
//! Besides the traits it has test controls: image pushes ([`FakeAws::push_image`]), a deployment driver
//! ([`FakeAws::complete`], [`FakeAws::progress`], [`FakeAws::fail`], [`FakeAws::rollback`]), a clock,
//! fault injection ([`FakeAws::fail_next`], [`FakeAws::fail_always`]), a call log ([`FakeAws::calls`]) and
//! inspection helpers that read the state without being logged. Identifiers come from a seeded
//! generator, so a run is reproducible.
//!
//! Differences from AWS worth knowing: every ECS cluster exists; reads are answered one call per trait
//! call (the SDK adapters batch concurrent reads, the fake does not, so read counts are per call);
//! changes that AWS makes eventually (deleting a service, Application Auto Scaling adjusting the desired
//! count) happen at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regex::Regex;

use ecsop::api::{DnsRecordType, TagMutability};
use ecsop::aws::TaskDefinition;
use ecsop::aws::error::classify_code;
use ecsop::aws::{
    AlarmInfo, ApiGateway, Authorizer, AuthorizerConfig, Autoscaling, AwsError, AwsResult, Binding, Clients, CloudMap,
    CloudWatch, Deployment, DeploymentAlarms, DeploymentSettings, DiscoveryService, Ecr, Ecs, Elbv2, ErrorKind,
    ImageScan, Integration, IntegrationConfig, MetricAlarm, MetricQuery, NetworkSettings, Repository, Route,
    RouteConfig, Rule, RuleAction, RuleConfig, ScalableTarget, ScalingMetric, ScalingPolicy, Service, ServiceConfig,
    ServiceDeployment, ServiceEvent, ServiceUpdate, Stage, Strategy, Tags, TargetGroup, TargetGroupConfig,
    TargetGroupHealth, TaskDefinitionInfo,
};

/// The account every fake resource lives in.
pub const ACCOUNT: &str = "123456789012";
/// The region every fake resource lives in.
pub const REGION: &str = "us-east-1";

const ECR: &str = "ecr";
const ECS: &str = "ecs";
const ELB: &str = "elbv2";
const SD: &str = "servicediscovery";
const AAS: &str = "application-autoscaling";
const CW: &str = "cloudwatch";
const APIGW: &str = "apigateway";

/// ECS keeps this many service events.
const MAX_EVENTS: usize = 100;
/// ELBv2's default quota of rules per listener (the default rule not counted).
const MAX_RULES: usize = 100;
/// ELBv2's quota of condition values per rule.
const MAX_CONDITION_VALUES: usize = 5;
/// ELBv2's limit of values per condition (match evaluations); the rule's wildcards are limited to
/// [`MAX_CONDITION_VALUES`] too.
const MAX_VALUES_PER_CONDITION: usize = 3;

/// An AWS account and region in memory, implementing every adapter trait. Clones share the state.
#[derive(Clone, Default)]
pub struct FakeAws {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAws").finish_non_exhaustive()
    }
}

// ---- state ------------------------------------------------------------------------------------------

#[derive(Default)]
struct State {
    ids: Gen,
    calls: Vec<(&'static str, &'static str)>,
    faults: Vec<Fault>,
    latency: Option<Duration>,
    /// How long a change takes to reach the writes that depend on it (eventual consistency).
    propagation: Option<Duration>,
    /// When each recent change becomes visible to dependent writes, by key (`service/<cluster>/<name>`,
    /// `tg-lb/<target group ARN>`).
    settles: BTreeMap<String, std::time::Instant>,
    ecr: EcrState,
    ecs: EcsState,
    elb: ElbState,
    sd: SdState,
    aas: BTreeMap<String, AasTarget>,
    /// CloudWatch alarms by name.
    alarms: BTreeMap<String, (AlarmInfo, Tags)>,
    /// HTTP APIs by id.
    apis: BTreeMap<String, HttpApi>,
    /// CloudWatch datapoints the test published ([`FakeAws::put_metric`]).
    metrics: Vec<Datum>,
}

/// One published CloudWatch datapoint: `count` samples of `value` at `at`.
#[derive(Debug, Clone)]
struct Datum {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, String>,
    at: std::time::SystemTime,
    value: f64,
    count: u64,
}

/// A statistic of `(value, count)` samples as CloudWatch computes it; percentiles by nearest rank.
/// `None` for a statistic CloudWatch does not know.
fn statistic(stat: &str, samples: &mut [(f64, u64)]) -> Option<Option<f64>> {
    // The statistic is checked whether or not there is data, as CloudWatch does.
    let percentile: Option<f64> = match stat {
        "Sum" | "SampleCount" | "Average" | "Minimum" | "Maximum" => None,
        other => Some(other.strip_prefix('p')?.parse().ok().filter(|p| (0.0..=100.0).contains(p))?),
    };
    let count: u64 = samples.iter().map(|(_, c)| c).sum();
    if count == 0 {
        return Some(None);
    }
    let sum: f64 = samples.iter().map(|(v, c)| v * *c as f64).sum();
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(Some(match stat {
        "Sum" => sum,
        "SampleCount" => count as f64,
        "Average" => sum / count as f64,
        "Minimum" => samples[0].0,
        "Maximum" => samples[samples.len() - 1].0,
        _ => {
            let p = percentile?;
            let rank = ((p / 100.0) * count as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            samples
                .iter()
                .find(|(_, c)| {
                    seen += c;
                    seen >= rank
                })?
                .0
        }
    }))
}

/// One API Gateway HTTP API: its integrations, routes and authorizers by id.
#[derive(Default)]
struct HttpApi {
    integrations: BTreeMap<String, Integration>,
    routes: BTreeMap<String, Route>,
    authorizers: BTreeMap<String, Authorizer>,
    stages: BTreeMap<String, Stage>,
    /// Each deployment: its id and the route keys it made live.
    deployments: Vec<(String, BTreeSet<String>)>,
}

impl State {
    /// Note that `key` changed now; dependent writes see it once the propagation delay has passed.
    fn changed(&mut self, key: String) {
        if let Some(delay) = self.propagation {
            self.settles.insert(key, std::time::Instant::now() + delay);
        }
    }

    /// Whether the change to `key` has not reached dependent writes yet.
    fn unsettled(&self, key: &str) -> bool {
        self.settles.get(key).is_some_and(|at| std::time::Instant::now() < *at)
    }

    /// ECS's refusal of a service bound to a target group whose listener rule it does not see yet.
    fn check_propagated(&self, op: &'static str, load_balancers: &[Binding]) -> AwsResult<()> {
        match load_balancers.iter().find(|b| self.unsettled(&format!("tg-lb/{}", b.arn))) {
            Some(b) => Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The target group with targetGroupArn {} does not have an associated load balancer.", b.arn),
            )),
            None => Ok(()),
        }
    }
}

/// Identifiers and time.
#[derive(Default)]
struct Gen {
    rng: u64,
    clock: Option<DateTime<Utc>>,
}

impl Gen {
    fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// splitmix64: deterministic, well spread.
    fn draw(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hex16(&mut self) -> String {
        format!("{:016x}", self.draw())
    }

    fn alnum(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len).map(|_| CHARS[(self.draw() % CHARS.len() as u64) as usize] as char).collect()
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.draw(), self.draw());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn deployment_id(&mut self) -> String {
        format!("ecs-svc/{:019}", self.draw() % 10_000_000_000_000_000_000)
    }
}

struct Fault {
    service: Option<String>,
    /// `"*"`: every operation.
    operation: String,
    kind: ErrorKind,
    /// Only writes match.
    writes_only: bool,
    /// Matching calls still let through before the fault fires.
    skip: u32,
    /// `None`: every call.
    remaining: Option<u32>,
}

#[derive(Default)]
struct EcrState {
    /// By (registry id, name).
    repos: BTreeMap<(String, String), Repo>,
    /// Scan results by (registry id, repository, digest); an image pushed to a scan-on-push
    /// repository gets a clean completed scan unless a test set another result.
    scans: BTreeMap<(String, String, String), ImageScan>,
}

struct Repo {
    repository: Repository,
    tags: Tags,
    lifecycle_policy: Option<String>,
    /// Digest to its tags.
    images: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Default)]
struct EcsState {
    /// By family; index `i` holds revision `i + 1`.
    families: BTreeMap<String, Vec<Revision>>,
    /// By (cluster, name), INACTIVE ones included.
    services: BTreeMap<(String, String), Service>,
    /// Deleted services still DRAINING: how many more DescribeServices see them so.
    draining: BTreeMap<(String, String), u32>,
    /// How many DescribeServices a deleted service stays DRAINING for.
    drain_reads: u32,
    /// ECS's durable record of each service's deployments (ListServiceDeployments), by service, newest
    /// first. It outlives the deployments' place in DescribeServices.
    history: BTreeMap<(String, String), Vec<ServiceDeployment>>,
}

impl EcsState {
    /// Bring the deployment record of the service at `key` up to date with its deployments: a new one is
    /// recorded, and each one's status follows its rollout (a rollback, once marked, stays so).
    fn note(&mut self, key: &(String, String)) {
        let Some(svc) = self.services.get(key) else { return };
        let record = self.history.entry(key.clone()).or_default();
        for d in &svc.deployments {
            let arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{}/{}/{}", key.0, key.1, d.id);
            let status = match d.rollout_state.as_deref() {
                Some("COMPLETED") => "SUCCESSFUL",
                Some("FAILED") => "STOPPED",
                _ => "IN_PROGRESS",
            };
            match record.iter_mut().find(|r| r.arn == arn) {
                Some(r) if r.status.starts_with("ROLLBACK") => {}
                Some(r) => r.status = status.to_string(),
                None => record.insert(
                    0,
                    ServiceDeployment {
                        arn,
                        status: status.to_string(),
                        status_reason: d.rollout_state_reason.clone(),
                        task_definition: Some(d.task_definition.clone()),
                        created_at: d.created_at,
                    },
                ),
            }
        }
    }
}

struct Revision {
    info: TaskDefinitionInfo,
    definition: TaskDefinition,
}

#[derive(Default)]
struct ElbState {
    target_groups: BTreeMap<String, Tg>,
    listeners: BTreeMap<String, String>,
    rules: BTreeMap<String, RuleState>,
    load_balancers: u32,
}

struct Tg {
    /// With `load_balancer_arns` left empty: they follow from the rules.
    group: TargetGroup,
    tags: Tags,
    attributes: BTreeMap<String, String>,
}

struct RuleState {
    listener: String,
    rule: Rule,
    tags: Tags,
}

#[derive(Default)]
struct SdState {
    /// Namespace id to name.
    namespaces: BTreeMap<String, String>,
    /// By service id.
    services: BTreeMap<String, (DiscoveryService, Tags)>,
}

struct AasTarget {
    target: ScalableTarget,
    policies: Vec<ScalingPolicy>,
}

// ---- errors -----------------------------------------------------------------------------------------

/// An error as the SDK adapters would produce it from AWS's answer: classified from code and message.
fn aws_err(service: &'static str, operation: &'static str, code: &str, message: impl Into<String>) -> AwsError {
    let message = message.into();
    AwsError { service, operation, kind: classify_code(code, &message), code: Some(code.to_string()), message }
}

/// AWS's limits on tags (the same in every service ecsop uses): keys of at most 128 characters, values
/// of at most 256.
fn check_tags(service: &'static str, operation: &'static str, tags: &Tags) -> AwsResult<()> {
    for (k, v) in tags {
        // AWS's pattern for tag keys and values: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        if let Some(c) = k.chars().chain(v.chars()).find(|c| !allowed(*c)) {
            let code = if service == ELB { "ValidationError" } else { "InvalidParameterException" };
            let message = format!("Tag {k}={v}: '{c}' is not allowed; tags take letters, digits, spaces and _.:/=+-@");
            return Err(aws_err(service, operation, code, message));
        }
        if k.chars().count() > 128 || v.chars().count() > 256 {
            let code = if service == ELB { "ValidationError" } else { "InvalidParameterException" };
            return Err(aws_err(
                service,
                operation,
                code,
                format!(
                    "Tag {k}: keys take at most 128 characters and values at most 256 (value has {})",
                    v.chars().count()
                ),
            ));
        }
    }
    Ok(())
}

/// The error an injected fault answers with: the code the service's protocol uses for that kind.
fn injected(service: &'static str, operation: &'static str, kind: ErrorKind) -> AwsError {
    let query = service == ELB;
    let code = match kind {
        ErrorKind::NotFound => "ResourceNotFoundException",
        ErrorKind::AccessDenied if query => "AccessDenied",
        ErrorKind::AccessDenied => "AccessDeniedException",
        ErrorKind::Throttled if query => "Throttling",
        ErrorKind::Throttled => "ThrottlingException",
        ErrorKind::Invalid if query => "ValidationError",
        ErrorKind::Invalid => "InvalidParameterException",
        ErrorKind::Conflict => "ConcurrentUpdateException",
        ErrorKind::Transient => "InternalFailure",
        ErrorKind::Propagating => {
            return aws_err(
                service,
                operation,
                "InvalidParameterException",
                "injected fault: the target group does not have an associated load balancer.",
            );
        }
        ErrorKind::Other => "InjectedFault",
    };
    aws_err(service, operation, code, format!("injected fault ({kind})"))
}

// ---- helpers ----------------------------------------------------------------------------------------

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last path segment of an ARN, or the name itself.
fn short_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") { name_or_arn.rsplit('/').next().unwrap_or(name_or_arn) } else { name_or_arn }
}

fn service_key(cluster: &str, name: &str) -> (String, String) {
    (short_name(cluster).to_string(), short_name(name).to_string())
}

fn task_definition_arn(family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

fn repository_of(registry: &str, name: &str) -> Repository {
    Repository {
        name: name.to_string(),
        arn: format!("arn:aws:ecr:{REGION}:{registry}:repository/{name}"),
        uri: format!("{registry}.dkr.ecr.{REGION}.amazonaws.com/{name}"),
        scan_on_push: false,
        tag_mutability: TagMutability::Mutable,
    }
}

fn apply_tags(target: &mut Tags, tags: &Tags) {
    target.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
}

fn remove_tags(target: &mut Tags, keys: &[String]) {
    for k in keys {
        target.remove(k);
    }
}

fn recount(svc: &mut Service) {
    svc.running_count = svc.deployments.iter().map(|d| d.running_count).sum();
    svc.pending_count = svc.deployments.iter().map(|d| d.pending_count).sum();
}

fn add_event(ids: &mut Gen, svc: &mut Service, message: String) {
    let event = ServiceEvent { id: ids.uuid(), created_at: Some(ids.now()), message };
    svc.events.insert(0, event);
    svc.events.truncate(MAX_EVENTS);
}

/// Make the PRIMARY deployment ACTIVE and start a new PRIMARY of `task_definition`.
fn start_deployment(ids: &mut Gen, svc: &mut Service, task_definition: &str) -> String {
    let now = ids.now();
    let id = ids.deployment_id();
    for d in svc.deployments.iter_mut().filter(|d| d.status == "PRIMARY") {
        d.status = "ACTIVE".into();
        d.updated_at = Some(now);
    }
    svc.deployments.insert(
        0,
        Deployment {
            id: id.clone(),
            status: "PRIMARY".into(),
            task_definition: task_definition.to_string(),
            rollout_state: Some("IN_PROGRESS".into()),
            rollout_state_reason: Some(format!("ECS deployment {id} in progress.")),
            desired_count: svc.desired_count,
            running_count: 0,
            pending_count: svc.desired_count,
            failed_tasks: 0,
            created_at: Some(now),
            updated_at: Some(now),
        },
    );
    recount(svc);
    id
}

/// The Fargate CPU and memory combinations ECS accepts.
fn fargate_size_ok(cpu: &str, memory: &str) -> bool {
    let (Ok(cpu), Ok(mem)) = (cpu.parse::<u32>(), memory.parse::<u32>()) else { return false };
    let in_steps = |lo: u32, hi: u32, step: u32| mem >= lo && mem <= hi && (mem - lo).is_multiple_of(step);
    match cpu {
        256 => matches!(mem, 512 | 1024 | 2048),
        512 => in_steps(1024, 4096, 1024),
        1024 => in_steps(2048, 8192, 1024),
        2048 => in_steps(4096, 16384, 1024),
        4096 => in_steps(8192, 30720, 1024),
        8192 => in_steps(16384, 61440, 4096),
        16384 => in_steps(32768, 122880, 8192),
        _ => false,
    }
}

/// The attributes of a new ip-target HTTP target group of an Application Load Balancer, as AWS reports
/// them. Setting a key not listed here is a ValidationError, as in AWS.
fn default_target_group_attributes() -> BTreeMap<String, String> {
    [
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration"),
        ("slow_start.duration_seconds", "0"),
        ("target_group_health.dns_failover.minimum_healthy_targets.count", "1"),
        ("target_group_health.dns_failover.minimum_healthy_targets.percentage", "off"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

static ECR_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$").expect("ECR name regex")
});
static FAMILY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_-]{1,255}$").expect("family regex"));
static TG_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$").expect("target group regex"));
static RESOURCE_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^app/[^/]+/[0-9a-f]+/targetgroup/[^/]+/[0-9a-f]+$").expect("resource label regex"));
static RESOURCE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^service/([^/]+)/([^/]+)$").expect("resource id regex"));

fn check_health(op: &'static str, h: &TargetGroupHealth) -> AwsResult<()> {
    let bad = |m: &str| Err(aws_err(ELB, op, "ValidationError", m.to_string()));
    if !h.path.starts_with('/') || h.path.len() > 1024 {
        return bad("Health check path must begin with '/' and be at most 1024 characters");
    }
    if !(5..=300).contains(&h.interval_seconds) {
        return bad("Health check interval must be between 5 and 300 seconds");
    }
    if !(2..=120).contains(&h.timeout_seconds) {
        return bad("Health check timeout must be between 2 and 120 seconds");
    }
    if h.timeout_seconds >= h.interval_seconds {
        return bad("Health check timeout must be smaller than the interval");
    }
    if !(2..=10).contains(&h.healthy_threshold) || !(2..=10).contains(&h.unhealthy_threshold) {
        return bad("Health check thresholds must be between 2 and 10");
    }
    Ok(())
}

fn check_conditions(op: &'static str, hosts: &[String], paths: &[String]) -> AwsResult<()> {
    if hosts.is_empty() && paths.is_empty() {
        return Err(aws_err(ELB, op, "ValidationError", "A rule must have at least one condition"));
    }
    if hosts.len() + paths.len() > MAX_CONDITION_VALUES {
        return Err(aws_err(ELB, op, "ValidationError", "A rule can only have '5' condition values"));
    }
    if hosts.len().max(paths.len()) > MAX_VALUES_PER_CONDITION {
        return Err(aws_err(ELB, op, "ValidationError", "A condition can only have '3' values"));
    }
    let wildcards = hosts.iter().chain(paths).flat_map(|v| v.chars()).filter(|c| matches!(c, '*' | '?')).count();
    if wildcards > MAX_CONDITION_VALUES {
        return Err(aws_err(ELB, op, "ValidationError", "A rule can only have '5' wildcards"));
    }
    Ok(())
}

impl ElbState {
    /// The load balancers whose listener rules forward to `tg`.
    fn load_balancers_of(&self, tg: &str) -> Vec<String> {
        let lbs: BTreeSet<&String> = self
            .rules
            .values()
            .filter(|r| r.rule.target_groups.iter().any(|t| t == tg))
            .filter_map(|r| self.listeners.get(&r.listener))
            .collect();
        lbs.into_iter().cloned().collect()
    }

    fn view(&self, tg: &Tg) -> TargetGroup {
        TargetGroup { load_balancer_arns: self.load_balancers_of(&tg.group.arn), ..tg.group.clone() }
    }

    /// A target group may be behind one load balancer only.
    fn check_association(&self, op: &'static str, listener: &str, tg: &str) -> AwsResult<()> {
        if !self.target_groups.contains_key(tg) {
            return Err(aws_err(ELB, op, "TargetGroupNotFound", format!("Target groups '{tg}' not found")));
        }
        let lb = self.listeners.get(listener).cloned().unwrap_or_default();
        if self.load_balancers_of(tg).iter().any(|other| *other != lb) {
            return Err(aws_err(
                ELB,
                op,
                "TargetGroupAssociationLimit",
                format!("The following target groups cannot be associated with more than one load balancer: {tg}"),
            ));
        }
        Ok(())
    }
}

impl EcsState {
    /// Resolve `family`, `family:revision` or a task-definition ARN.
    fn resolve(&self, reference: &str) -> Option<&Revision> {
        let spec = match reference.split_once(":task-definition/") {
            Some((prefix, rest)) if prefix == format!("arn:aws:ecs:{REGION}:{ACCOUNT}") => rest,
            Some(_) => return None,
            None => reference,
        };
        match spec.rsplit_once(':') {
            Some((family, rev)) => {
                let rev: usize = rev.parse().ok()?;
                self.families.get(family)?.get(rev.checked_sub(1)?)
            }
            None if reference.starts_with("arn:") => None,
            None => self.families.get(spec)?.iter().rev().find(|r| r.info.status == "ACTIVE"),
        }
    }

    /// The ACTIVE revision `reference` names, as ECS checks it for CreateService and UpdateService.
    fn usable(&self, op: &'static str, reference: &str) -> AwsResult<&Revision> {
        let rev =
            self.resolve(reference).ok_or_else(|| aws_err(ECS, op, "ClientException", "TaskDefinition not found."))?;
        if rev.info.status != "ACTIVE" {
            return Err(aws_err(ECS, op, "ClientException", "TaskDefinition is inactive"));
        }
        Ok(rev)
    }
}

/// Check the load-balancer and registry bindings of a service against ELBv2, Cloud Map and its task
/// definition, as ECS does.
fn check_bindings(
    op: &'static str,
    elb: &ElbState,
    sd: &SdState,
    definition: &TaskDefinition,
    load_balancers: &[Binding],
    registries: &[Binding],
) -> AwsResult<()> {
    for b in load_balancers {
        if !elb.target_groups.contains_key(&b.arn) {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The target group with targetGroupArn {} does not exist.", b.arn),
            ));
        }
        if elb.load_balancers_of(&b.arn).is_empty() {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The target group with targetGroupArn {} does not have an associated load balancer.", b.arn),
            ));
        }
        if b.container != definition.container.name || b.port != definition.container.port {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The container {} did not have a container port {} defined.", b.container, b.port),
            ));
        }
    }
    for r in registries {
        let Some((service, _)) = sd.services.values().find(|(s, _)| s.arn == r.arn) else {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The service registry {} does not exist.", r.arn),
            ));
        };
        // ECS's port rules for Cloud Map: SRV records need the container and its port; a port, when
        // given, is a real one (A records name the registry alone).
        if !r.container.is_empty() && r.port == 0 {
            return Err(aws_err(ECS, op, "InvalidParameterException", "containerPort must be between 1 and 65535."));
        }
        if service.record_type == DnsRecordType::Srv && r.port == 0 {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                "SRV records require a containerName and containerPort (the task definition uses awsvpc).",
            ));
        }
    }
    Ok(())
}

/// ECS's checks of a blue/green, canary or linear service's load balancer: the second target group,
/// the production (and test) rule forwarding to both groups, and the role that moves the weights.
fn check_traffic(
    op: &'static str,
    elb: &ElbState,
    settings: Option<&DeploymentSettings>,
    load_balancers: &[Binding],
) -> AwsResult<()> {
    let invalid = |message: String| Err(aws_err(ECS, op, "InvalidParameterException", message));
    let strategy = settings.map(|s| s.strategy).unwrap_or_default();
    for b in load_balancers {
        let Some(t) = &b.traffic else {
            if strategy.shifts_traffic() {
                return invalid(format!(
                    "advancedConfiguration is required for a load balancer of a service with the {} deployment strategy.",
                    strategy.as_ecs()
                ));
            }
            continue;
        };
        if !elb.target_groups.contains_key(&t.alternate_target_group) || t.alternate_target_group == b.arn {
            return invalid(format!("The alternate target group {} is not valid.", t.alternate_target_group));
        }
        if !t.role_arn.starts_with("arn:") || !t.role_arn.contains(":role/") {
            return invalid(format!("The roleArn {} is not a valid IAM role.", t.role_arn));
        }
        for rule in std::iter::once(&t.production_rule).chain(&t.test_rule) {
            let Some(r) = elb.rules.get(rule) else {
                return invalid(format!("The listener rule {rule} does not exist."));
            };
            let groups = &r.rule.target_groups;
            if !(groups.contains(&b.arn) && groups.contains(&t.alternate_target_group)) {
                return invalid(format!(
                    "The listener rule {rule} must forward to both the target group {} and the alternate target group {}.",
                    b.arn, t.alternate_target_group
                ));
            }
        }
    }
    if let Strategy::Canary { percent, .. } = strategy
        && !(1..=100).contains(&percent)
    {
        return invalid("canaryPercent must be between 0.1 and 100.".into());
    }
    if let Strategy::Linear { step_percent, .. } = strategy
        && !(3..=100).contains(&step_percent)
    {
        return invalid("stepPercent must be between 3 and 100.".into());
    }
    Ok(())
}

/// What of a load-balancer binding makes ECS start a deployment when it changes: not the
/// advancedConfiguration, whose groups ECS itself swaps.
fn wiring(bindings: &[Binding]) -> Vec<(&str, &str, i32)> {
    bindings.iter().map(|b| (b.arn.as_str(), b.container.as_str(), b.port)).collect()
}

fn check_network(op: &'static str, network: &NetworkSettings) -> AwsResult<()> {
    if network.subnets.is_empty() {
        return Err(aws_err(ECS, op, "InvalidParameterException", "subnets can not be empty."));
    }
    Ok(())
}

fn check_grace(op: &'static str, grace: Option<i32>, load_balancers: &[Binding]) -> AwsResult<()> {
    if grace.is_some() && load_balancers.is_empty() {
        return Err(aws_err(
            ECS,
            op,
            "InvalidParameterException",
            "Health check grace period is only valid for services configured to use load balancers",
        ));
    }
    Ok(())
}

/// Set the desired count without a new deployment, as ECS does for a desired-count-only change.
fn set_desired(svc: &mut Service, desired: i32) {
    svc.desired_count = desired;
    if let Some(d) = svc.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
        d.desired_count = desired;
        if d.rollout_state.as_deref() == Some("COMPLETED") {
            d.running_count = desired;
            d.pending_count = 0;
        }
    }
    recount(svc);
}

// ---- test controls ----------------------------------------------------------------------------------

impl FakeAws {
    /// An empty account: no resources, no faults, an empty call log, the real clock.
    pub fn new() -> Self {
        FakeAws::default()
    }

    /// The five clients the engine takes, all backed by this fake.
    pub fn clients(&self) -> Clients {
        Clients {
            ecr: Arc::new(self.clone()),
            ecs: Arc::new(self.clone()),
            elbv2: Arc::new(self.clone()),
            cloudmap: Arc::new(self.clone()),
            autoscaling: Arc::new(self.clone()),
            cloudwatch: Arc::new(self.clone()),
            apigateway: Arc::new(self.clone()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Log a call, apply the latency and answer an injected fault, if one matches.
    async fn call(&self, service: &'static str, operation: &'static str) -> AwsResult<()> {
        let (fault, latency) = {
            let mut st = self.lock();
            st.calls.push((service, operation));
            let matching = |f: &Fault| {
                (f.operation == "*" || f.operation == operation)
                    && f.service.as_deref().is_none_or(|s| s == service)
                    && !(f.writes_only && is_read(operation))
                    && f.remaining.is_none_or(|n| n > 0)
            };
            // Faults still skipping let this call through, and count it.
            let mut idx = None;
            for (i, f) in st.faults.iter_mut().enumerate().filter(|(_, f)| matching(f)) {
                if f.skip > 0 {
                    f.skip -= 1;
                } else {
                    idx = Some(i);
                    break;
                }
            }
            let fault = idx.map(|i| {
                let fault = &mut st.faults[i];
                fault.remaining = fault.remaining.map(|n| n - 1);
                let (kind, spent) = (fault.kind, fault.remaining == Some(0));
                if spent {
                    st.faults.remove(i);
                }
                kind
            });
            (fault, st.latency)
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(kind) => Err(injected(service, operation, kind)),
            None => Ok(()),
        }
    }

    // -- clock --

    /// Freeze the clock at `now` (timestamps of deployments, events, ...). Until called, the fake uses
    /// the real clock, so ages computed against `Utc::now()` stay realistic.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().ids.clock = Some(now);
    }

    /// Move the clock forward by `by`, freezing it first at the current time if it is still real.
    pub fn advance(&self, by: chrono::Duration) {
        let mut st = self.lock();
        let now = st.ids.now();
        st.ids.clock = Some(now + by);
    }

    /// The fake's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().ids.now()
    }

    /// Eventual consistency: a change reaches the writes that depend on it only `delay` after it was
    /// made, and until then they are refused with AWS's own errors: RegisterScalableTarget of a service
    /// created less than `delay` ago ("ECS service doesn't exist"), CreateService or UpdateService
    /// binding a target group whose listener rule is younger than `delay` ("does not have an associated
    /// load balancer"). `None` (the default) makes every change visible at once.
    pub fn set_propagation_delay(&self, delay: Option<Duration>) {
        let mut st = self.lock();
        st.propagation = delay;
        st.settles.clear();
    }

    /// Keep a deleted ECS service DRAINING for the next `reads` DescribeServices of it before it is
    /// INACTIVE, as ECS does while its tasks stop and drain (0, the default: INACTIVE at once). A
    /// target group a draining service uses cannot be deleted.
    pub fn set_drain_reads(&self, reads: u32) {
        self.lock().ecs.drain_reads = reads;
    }

    /// Make every call wait `latency` (a tokio sleep, outside the lock) before it is answered; `None`
    /// answers at once. For benchmarks of concurrency and batching.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    // -- faults --

    /// Make the next call of `operation` fail with `kind`. `operation` is the AWS operation name
    /// (`"UpdateService"`), matching it in every service, or `service:operation` (`"ecs:UpdateService"`,
    /// `"servicediscovery:UpdateService"`) for one service; `"*"` (or `"ecs:*"`) matches every operation.
    /// Several `fail_next` of one operation fail that many calls. The failed call is logged and changes
    /// nothing.
    pub fn fail_next(&self, operation: &str, kind: ErrorKind) {
        self.fail_times(operation, kind, 1);
    }

    /// Make the next `times` calls of `operation` fail with `kind` (see [`FakeAws::fail_next`]).
    pub fn fail_times(&self, operation: &str, kind: ErrorKind, times: u32) {
        if times > 0 {
            self.add_fault(operation, kind, Some(times));
        }
    }

    /// Make every call of `operation` fail with `kind` until [`FakeAws::clear_faults`] (see
    /// [`FakeAws::fail_next`] for the operation syntax).
    pub fn fail_always(&self, operation: &str, kind: ErrorKind) {
        self.add_fault(operation, kind, None);
    }

    /// Let the next `writes` write calls (of any service) succeed, then fail the one after with `kind`,
    /// once: a crash in the middle of a reconcile, for recovery tests. Reads pass untouched.
    pub fn fail_after_writes(&self, writes: u32, kind: ErrorKind) {
        self.lock().faults.push(Fault {
            service: None,
            operation: "*".into(),
            kind,
            writes_only: true,
            skip: writes,
            remaining: Some(1),
        });
    }

    fn add_fault(&self, operation: &str, kind: ErrorKind, remaining: Option<u32>) {
        let (service, operation) = match operation.split_once(':') {
            Some((s, o)) => (Some(s.to_string()), o.to_string()),
            None => (None, operation.to_string()),
        };
        self.lock().faults.push(Fault { service, operation, kind, writes_only: false, skip: 0, remaining });
    }

    /// Remove every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    // -- call log --

    /// Every trait call so far, in order, as (service, AWS operation): `("ecs", "DescribeServices")`.
    /// Services are named as in [`AwsError::service`]. Calls failed by an injected fault are included.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.iter().map(|(s, o)| (s.to_string(), o.to_string())).collect()
    }

    /// How many calls of `operation` (plain or `service:operation`) were made.
    pub fn count(&self, operation: &str) -> usize {
        let (service, operation) = match operation.split_once(':') {
            Some((s, o)) => (Some(s), o),
            None => (None, operation),
        };
        self.lock().calls.iter().filter(|(s, o)| *o == operation && service.is_none_or(|x| x == *s)).count()
    }

    /// Read calls so far: operations starting with `Describe`, `List`, `Get` or `BatchGet`.
    pub fn reads(&self) -> usize {
        self.lock().calls.iter().filter(|(_, o)| is_read(o)).count()
    }

    /// Write calls so far: every other operation.
    pub fn writes(&self) -> usize {
        self.lock().calls.iter().filter(|(_, o)| !is_read(o)).count()
    }

    /// Empty the call log.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    // -- ECR --

    /// Push an image with `digest` tagged `tag` to the repository `repository` of this account. A
    /// missing repository is created with AWS's defaults (scan on push off, MUTABLE tags, no tags), as
    /// ECR's create-on-push does. In a MUTABLE repository the tag moves from any other image.
    ///
    /// Panics if the tag exists on another digest in an IMMUTABLE repository (ECR refuses the push).
    pub fn push_image(&self, repository: &str, tag: &str, digest: &str) {
        self.push_image_to(ACCOUNT, repository, tag, digest);
    }

    /// [`FakeAws::push_image`] to the registry of another account (`registry_id`), for images the
    /// engine reads cross-account.
    pub fn push_image_to(&self, registry_id: &str, repository: &str, tag: &str, digest: &str) {
        let mut st = self.lock();
        let repo = st.ecr.repos.entry((registry_id.to_string(), repository.to_string())).or_insert_with(|| Repo {
            repository: repository_of(registry_id, repository),
            tags: Tags::new(),
            lifecycle_policy: None,
            images: BTreeMap::new(),
        });
        let holder = repo.images.iter().find(|(_, tags)| tags.contains(tag)).map(|(d, _)| d.clone());
        if let Some(holder) = holder.filter(|h| h != digest) {
            assert!(
                repo.repository.tag_mutability == TagMutability::Mutable,
                "ImageTagAlreadyExistsException: tag {tag} of IMMUTABLE repository {repository} is on {holder}"
            );
            if let Some(tags) = repo.images.get_mut(&holder) {
                tags.remove(tag);
            }
        }
        repo.images.entry(digest.to_string()).or_default().insert(tag.to_string());
        if repo.repository.scan_on_push {
            st.ecr
                .scans
                .entry((registry_id.to_string(), repository.to_string(), digest.to_string()))
                .or_insert_with(|| ImageScan::Complete(BTreeMap::new()));
        }
    }

    /// Set the scan result of an image of this account (what ECR's scanner would report).
    pub fn set_scan(&self, repository: &str, digest: &str, scan: ImageScan) {
        self.lock().ecr.scans.insert((ACCOUNT.to_string(), repository.to_string(), digest.to_string()), scan);
    }

    /// Every repository of every registry, by registry id then name.
    pub fn repositories(&self) -> Vec<Repository> {
        self.lock().ecr.repos.values().map(|r| r.repository.clone()).collect()
    }

    /// The images of this account's repository `name`: digest to tags. Empty if it does not exist.
    pub fn images(&self, name: &str) -> BTreeMap<String, BTreeSet<String>> {
        self.lock()
            .ecr
            .repos
            .get(&(ACCOUNT.to_string(), name.to_string()))
            .map(|r| r.images.clone())
            .unwrap_or_default()
    }

    // -- ECS --

    /// Every revision of `family`, INACTIVE ones included, oldest first.
    pub fn task_definitions(&self, family: &str) -> Vec<TaskDefinitionInfo> {
        self.lock()
            .ecs
            .families
            .get(family)
            .map(|revs| revs.iter().map(|r| r.info.clone()).collect())
            .unwrap_or_default()
    }

    /// The definition registered as `reference` (an ARN, `family:revision` or `family` for the newest
    /// ACTIVE one).
    pub fn registered(&self, reference: &str) -> Option<TaskDefinition> {
        self.lock().ecs.resolve(reference).map(|r| r.definition.clone())
    }

    /// The service as ECS describes it, INACTIVE (deleted) ones included.
    pub fn service_snapshot(&self, cluster: &str, name: &str) -> Option<Service> {
        self.lock().ecs.services.get(&service_key(cluster, name)).cloned()
    }

    fn drive<T>(&self, cluster: &str, name: &str, f: impl FnOnce(&mut Gen, &mut Service) -> T) -> (T, Service) {
        let mut st = self.lock();
        let State { ids, ecs, .. } = &mut *st;
        let svc = ecs
            .services
            .get_mut(&service_key(cluster, name))
            .filter(|s| s.status == "ACTIVE")
            .unwrap_or_else(|| panic!("no ACTIVE service {name} in cluster {cluster}"));
        let out = f(ids, svc);
        recount(svc);
        let svc = svc.clone();
        let key = service_key(cluster, name);
        ecs.note(&key);
        // A finished rollback completes the record of the deployment it rolled back from.
        if svc.deployments.iter().any(|d| d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("COMPLETED")) {
            for r in ecs.history.entry(key).or_default() {
                if r.status == "ROLLBACK_IN_PROGRESS" {
                    r.status = "ROLLBACK_SUCCESSFUL".into();
                }
            }
        }
        (out, svc)
    }

    /// The PRIMARY deployment starts `running` of its tasks (at most the desired count; the rest
    /// pending), with ECS's "has started N tasks" event. Returns the service. Panics if the service is
    /// missing or deleted.
    pub fn progress(&self, cluster: &str, service: &str, running: i32) -> Service {
        self.drive(cluster, service, |ids, svc| {
            let now = ids.now();
            let task = format!("{}{}", ids.hex16(), ids.hex16());
            let dep = primary(svc);
            dep.running_count = running.clamp(0, dep.desired_count);
            dep.pending_count = dep.desired_count - dep.running_count;
            dep.updated_at = Some(now);
            let started = dep.running_count;
            let message = format!("(service {}) has started {started} tasks: (task {task}).", svc.name);
            add_event(ids, svc, message);
        })
        .1
    }

    /// The PRIMARY deployment reaches a steady state: rollout COMPLETED, running = desired, older
    /// deployments drained away, with the events "(deployment ...) deployment completed." and "has
    /// reached a steady state.". A blueGreen, canary or linear deployment that replaced another ends as
    /// in ECS with the swap of the service's two target groups (`targetGroupArn` and the alternate), and
    /// its production and test rules forward all traffic to the new primary. Returns the service. Panics
    /// if the service is missing or deleted.
    pub fn complete(&self, cluster: &str, service: &str) -> Service {
        // A blueGreen, canary or linear deployment that replaces another ends with ECS's swap of the two
        // target groups, all traffic on the new primary (a service's first deployment has nothing to swap).
        let swap = self
            .lock()
            .ecs
            .services
            .get(&service_key(cluster, service))
            .is_some_and(|s| s.deployment.is_some_and(|d| d.strategy.shifts_traffic()) && s.deployments.len() > 1);
        let done = self.complete_primary(cluster, service);
        if !swap {
            return done;
        }
        let mut st = self.lock();
        let State { ecs, elb, .. } = &mut *st;
        let key = service_key(cluster, service);
        let svc = ecs.services.get_mut(&key).unwrap_or_else(|| unreachable!("completed above"));
        for b in &mut svc.load_balancers {
            if let Some(t) = b.traffic.as_mut() {
                std::mem::swap(&mut b.arn, &mut t.alternate_target_group);
                for rule in std::iter::once(&t.production_rule).chain(&t.test_rule) {
                    if let Some(r) = elb.rules.get_mut(rule) {
                        r.rule.target_groups = vec![b.arn.clone(), t.alternate_target_group.clone()];
                        r.rule.weights = vec![100, 0];
                    }
                }
            }
        }
        svc.clone()
    }

    fn complete_primary(&self, cluster: &str, service: &str) -> Service {
        self.drive(cluster, service, |ids, svc| {
            let now = ids.now();
            let name = svc.name.clone();
            let dep = primary(svc);
            dep.running_count = dep.desired_count;
            dep.pending_count = 0;
            dep.rollout_state = Some("COMPLETED".into());
            dep.rollout_state_reason = Some(format!("ECS deployment {} completed.", dep.id));
            dep.updated_at = Some(now);
            let dep = dep.clone();
            svc.deployments = vec![dep.clone()];
            add_event(ids, svc, format!("(service {name}) (deployment {}) deployment completed.", dep.id));
            add_event(ids, svc, format!("(service {name}) has reached a steady state."));
        })
        .1
    }

    /// The PRIMARY deployment fails as the circuit breaker sees it: three tasks stopped with `reason`
    /// (one event each), rollout FAILED, no tasks running. Returns the service. Panics if the service is
    /// missing or deleted.
    pub fn fail(&self, cluster: &str, service: &str, reason: &str) -> Service {
        self.drive(cluster, service, |ids, svc| fail_primary(ids, svc, reason)).1
    }

    /// The circuit breaker rolls back: the PRIMARY deployment fails as in [`FakeAws::fail`], then a new
    /// PRIMARY deployment of the task definition of the newest deployment that did not fail starts
    /// (IN_PROGRESS, no tasks running yet), the service's task definition is set back to it, and the
    /// event "rolling back to deployment <new id>." is written. The failed deployment, with no task left,
    /// leaves DescribeServices at once (the hardest case for a poller); ECS's deployment record
    /// ([`Ecs::service_deployments`]) keeps it as ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL once the
    /// rollback completes.
    /// Returns the service. Panics if the service is missing or deleted, or has no earlier deployment.
    pub fn rollback(&self, cluster: &str, service: &str, reason: &str) -> Service {
        let (failed, _) = self.drive(cluster, service, |ids, svc| {
            let target = svc
                .deployments
                .iter()
                .filter(|d| d.status != "PRIMARY" && d.rollout_state.as_deref() != Some("FAILED"))
                .map(|d| d.task_definition.clone())
                .next()
                .unwrap_or_else(|| panic!("service {} has no earlier deployment to roll back to", svc.name));
            fail_primary(ids, svc, reason);
            let failed = primary(svc).clone();
            let id = start_deployment(ids, svc, &target);
            svc.task_definition = target;
            svc.deployments.retain(|d| d.status == "PRIMARY" || d.id == failed.id);
            let message = format!("(service {}) rolling back to deployment {id}.", svc.name);
            add_event(ids, svc, message);
            failed.id
        });
        let mut st = self.lock();
        let key = service_key(cluster, service);
        for r in st.ecs.history.entry(key.clone()).or_default() {
            if r.arn.ends_with(&format!("/{failed}")) {
                r.status = "ROLLBACK_IN_PROGRESS".into();
            }
        }
        // The failed deployment has no task left: ECS drops it from DescribeServices, in the time it
        // takes its tasks to stop. The fake drops it at once, the hardest case for a poller.
        if let Some(svc) = st.ecs.services.get_mut(&key) {
            svc.deployments.retain(|d| d.id != failed);
        }
        st.ecs.services.get(&key).cloned().unwrap_or_else(|| unreachable!("driven above"))
    }

    // -- CloudWatch --

    /// Every alarm, by name.
    pub fn alarms_snapshot(&self) -> Vec<AlarmInfo> {
        self.lock().alarms.values().map(|(a, _)| a.clone()).collect()
    }

    // -- API Gateway --

    /// Create an empty HTTP API with a `$default` stage that does not deploy by itself, and return its
    /// id.
    pub fn create_http_api(&self) -> String {
        let mut st = self.lock();
        let id = st.ids.alnum(10);
        let mut api = HttpApi::default();
        let stage = Stage { name: "$default".into(), auto_deploy: false, deployment_id: None };
        api.stages.insert(stage.name.clone(), stage);
        st.apis.insert(id.clone(), api);
        id
    }

    /// Add or replace the stage `name` of an HTTP API, deploying by itself or not.
    pub fn set_stage(&self, api_id: &str, name: &str, auto_deploy: bool) {
        let mut st = self.lock();
        let api = st.apis.get_mut(api_id).unwrap_or_else(|| panic!("no HTTP API {api_id}"));
        api.stages.insert(name.into(), Stage { name: name.into(), auto_deploy, deployment_id: None });
    }

    /// The route keys each deployment of an HTTP API made live, oldest first, and the deployment each
    /// stage serves.
    pub fn api_deployments(&self, api_id: &str) -> (Vec<BTreeSet<String>>, BTreeMap<String, Option<String>>) {
        let st = self.lock();
        let api = st.apis.get(api_id).unwrap_or_else(|| panic!("no HTTP API {api_id}"));
        let deployments = api.deployments.iter().map(|(_, keys)| keys.clone()).collect();
        let stages = api.stages.iter().map(|(n, s)| (n.clone(), s.deployment_id.clone())).collect();
        (deployments, stages)
    }

    /// The route keys `stage` of an HTTP API serves: those of the deployment it points at, or of the
    /// API as it is when the stage deploys by itself. `None` when it serves no deployment.
    pub fn live_routes(&self, api_id: &str, stage: &str) -> Option<BTreeSet<String>> {
        let st = self.lock();
        let api = st.apis.get(api_id).unwrap_or_else(|| panic!("no HTTP API {api_id}"));
        let stage = api.stages.get(stage).unwrap_or_else(|| panic!("no stage {stage} on {api_id}"));
        if stage.auto_deploy {
            return Some(api.routes.values().map(|r| r.key.clone()).collect());
        }
        let id = stage.deployment_id.as_ref()?;
        api.deployments.iter().find(|(d, _)| d == id).map(|(_, keys)| keys.clone())
    }

    /// The integrations, routes and authorizers of an HTTP API. Panics if it does not exist.
    pub fn http_api(&self, api_id: &str) -> (Vec<Integration>, Vec<Route>, Vec<Authorizer>) {
        let st = self.lock();
        let api = st.apis.get(api_id).unwrap_or_else(|| panic!("HTTP API {api_id} does not exist"));
        (
            api.integrations.values().cloned().collect(),
            api.routes.values().cloned().collect(),
            api.authorizers.values().cloned().collect(),
        )
    }

    /// ECS writes that the service cannot start tasks consistently (a deployment that is stuck).
    /// Returns the service. Panics if the service is missing or deleted.
    pub fn stuck(&self, cluster: &str, service: &str) -> Service {
        self.drive(cluster, service, |ids, svc| {
            let message = format!("(service {}) is unable to consistently start tasks successfully.", svc.name);
            add_event(ids, svc, message);
        })
        .1
    }

    /// Application Auto Scaling sets the desired count to `desired` (clamped into the registered
    /// scalable target's range, if any), as a scaling activity would. Returns the service. Panics if the
    /// service is missing or deleted.
    pub fn scale_to(&self, cluster: &str, service: &str, desired: i32) -> Service {
        let resource_id = format!("service/{}/{}", short_name(cluster), short_name(service));
        let range = self.lock().aas.get(&resource_id).map(|t| (t.target.min_capacity, t.target.max_capacity));
        let desired = range.map_or(desired, |(lo, hi)| desired.clamp(lo, hi));
        self.drive(cluster, service, |_, svc| set_desired(svc, desired)).1
    }

    // -- ELBv2 --

    /// Create an Application Load Balancer with one listener whose only rule is the default rule (a
    /// fixed response, forwarding nowhere), and return the listener ARN.
    pub fn create_listener(&self) -> String {
        let mut st = self.lock();
        let State { ids, elb, .. } = &mut *st;
        elb.load_balancers += 1;
        let name = format!("test-alb-{}", elb.load_balancers);
        let (lb_id, listener_id, rule_id) = (ids.hex16(), ids.hex16(), ids.hex16());
        let prefix = format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}");
        let lb = format!("{prefix}:loadbalancer/app/{name}/{lb_id}");
        let listener = format!("{prefix}:listener/app/{name}/{lb_id}/{listener_id}");
        let default = format!("{prefix}:listener-rule/app/{name}/{lb_id}/{listener_id}/{rule_id}");
        elb.listeners.insert(listener.clone(), lb);
        let rule = Rule {
            arn: default.clone(),
            priority: None,
            hosts: vec![],
            paths: vec![],
            target_groups: vec![],
            weights: vec![],
            header: None,
            redirect: None,
        };
        elb.rules.insert(default, RuleState { listener: listener.clone(), rule, tags: Tags::new() });
        listener
    }

    /// The load balancer ARN of a listener made by [`FakeAws::create_listener`].
    pub fn load_balancer_of(&self, listener_arn: &str) -> Option<String> {
        self.lock().elb.listeners.get(listener_arn).cloned()
    }

    /// Every target group, by ARN, with the load balancers routing to it.
    pub fn target_groups(&self) -> Vec<TargetGroup> {
        let st = self.lock();
        st.elb.target_groups.values().map(|tg| st.elb.view(tg)).collect()
    }

    /// The rules of a listener as DescribeRules lists them (by priority, the default rule last), without
    /// logging a call. Empty for an unknown listener.
    pub fn listener_rules(&self, listener_arn: &str) -> Vec<Rule> {
        sorted_rules(&self.lock().elb, listener_arn)
    }

    // -- Cloud Map --

    /// Create a Cloud Map DNS namespace and return its id (`ns-...`). Cloud Map services can only be
    /// created in namespaces that exist.
    pub fn create_namespace(&self, name: &str) -> String {
        let mut st = self.lock();
        let id = format!("ns-{}", st.ids.alnum(16));
        st.sd.namespaces.insert(id.clone(), name.to_string());
        id
    }

    /// Every Cloud Map service, by id.
    pub fn discovery_services(&self) -> Vec<DiscoveryService> {
        self.lock().sd.services.values().map(|(s, _)| s.clone()).collect()
    }

    /// Instances registered in a Cloud Map service: the running tasks of ACTIVE ECS services bound to it.
    pub fn instance_count(&self, service_arn: &str) -> i32 {
        instances(&self.lock().ecs, service_arn)
    }

    // -- Application Auto Scaling --

    /// Every registered scalable target, by resource id.
    pub fn scalable_targets(&self) -> Vec<ScalableTarget> {
        self.lock().aas.values().map(|t| t.target.clone()).collect()
    }

    /// The policies on `resource_id`, without logging a call.
    pub fn scaling_policies(&self, resource_id: &str) -> Vec<ScalingPolicy> {
        self.lock().aas.get(resource_id).map(|t| t.policies.clone()).unwrap_or_default()
    }

    // -- tags --

    /// The tags of any resource by ARN (repository, task definition, service, target group, rule, Cloud
    /// Map service), without logging a call. `None` for an unknown ARN.
    pub fn tags_of(&self, arn: &str) -> Option<Tags> {
        let st = self.lock();
        if let Some(r) = st.ecr.repos.values().find(|r| r.repository.arn == arn) {
            return Some(r.tags.clone());
        }
        if let Some(r) = st.ecs.families.values().flatten().find(|r| r.info.arn == arn) {
            return Some(r.info.tags.clone());
        }
        if let Some(s) = st.ecs.services.values().find(|s| s.arn == arn) {
            return Some(s.tags.clone());
        }
        if let Some(tg) = st.elb.target_groups.get(arn) {
            return Some(tg.tags.clone());
        }
        if let Some(r) = st.elb.rules.get(arn) {
            return Some(r.tags.clone());
        }
        if let Some((_, t)) = st.alarms.values().find(|(a, _)| a.arn == arn) {
            return Some(t.clone());
        }
        st.sd.services.values().find(|(s, _)| s.arn == arn).map(|(_, t)| t.clone())
    }
}

fn is_read(operation: &str) -> bool {
    ["Describe", "List", "Get", "BatchGet"].iter().any(|p| operation.starts_with(p))
}

/// The PRIMARY deployment. Every ACTIVE service has one.
fn primary(svc: &mut Service) -> &mut Deployment {
    let name = svc.name.clone();
    svc.deployments
        .iter_mut()
        .find(|d| d.status == "PRIMARY")
        .unwrap_or_else(|| panic!("service {name} has no PRIMARY deployment"))
}

fn fail_primary(ids: &mut Gen, svc: &mut Service, reason: &str) {
    const FAILED_TASKS: i32 = 3;
    let now = ids.now();
    let name = svc.name.clone();
    let dep = primary(svc);
    dep.failed_tasks += FAILED_TASKS;
    dep.running_count = 0;
    dep.pending_count = 0;
    dep.rollout_state = Some("FAILED".into());
    dep.rollout_state_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
    dep.updated_at = Some(now);
    let id = dep.id.clone();
    for _ in 0..FAILED_TASKS {
        let task = format!("{}{}", ids.hex16(), ids.hex16());
        add_event(ids, svc, format!("(service {name}) (task {task}) stopped: {reason}."));
    }
    add_event(ids, svc, format!("(service {name}) (deployment {id}) deployment failed: tasks failed to start."));
    recount(svc);
}

fn sorted_rules(elb: &ElbState, listener: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = elb.rules.values().filter(|r| r.listener == listener).map(|r| r.rule.clone()).collect();
    rules.sort_by_key(|r| r.priority.unwrap_or(i32::MAX));
    rules
}

fn instances(ecs: &EcsState, discovery_arn: &str) -> i32 {
    ecs.services
        .values()
        .filter(|s| s.status == "ACTIVE" && s.registries.iter().any(|r| r.arn == discovery_arn))
        .map(|s| s.running_count)
        .sum()
}

// ---- ECR --------------------------------------------------------------------------------------------

fn repo_not_found(op: &'static str, registry: &str, name: &str) -> AwsError {
    aws_err(
        ECR,
        op,
        "RepositoryNotFoundException",
        format!("The repository with name '{name}' does not exist in the registry with id '{registry}'"),
    )
}

impl FakeAws {
    /// This account's repository `name`, mutably, or RepositoryNotFoundException.
    fn with_repo<T>(&self, op: &'static str, name: &str, f: impl FnOnce(&mut Repo) -> T) -> AwsResult<T> {
        let mut st = self.lock();
        let repo = st
            .ecr
            .repos
            .get_mut(&(ACCOUNT.to_string(), name.to_string()))
            .ok_or_else(|| repo_not_found(op, ACCOUNT, name))?;
        Ok(f(repo))
    }

    fn with_repo_arn<T>(&self, op: &'static str, arn: &str, f: impl FnOnce(&mut Repo) -> T) -> AwsResult<T> {
        let mut st = self.lock();
        let repo = st.ecr.repos.values_mut().find(|r| r.repository.arn == arn).ok_or_else(|| {
            aws_err(ECR, op, "RepositoryNotFoundException", format!("The repository {arn} does not exist"))
        })?;
        Ok(f(repo))
    }

    fn read_images<T>(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        f: impl FnOnce(&BTreeMap<String, BTreeSet<String>>) -> T,
    ) -> AwsResult<T> {
        let registry = registry_id.unwrap_or(ACCOUNT);
        let st = self.lock();
        let repo = st
            .ecr
            .repos
            .get(&(registry.to_string(), repository.to_string()))
            .ok_or_else(|| repo_not_found("DescribeImages", registry, repository))?;
        Ok(f(&repo.images))
    }
}

#[async_trait]
impl Ecr for FakeAws {
    async fn repository(&self, registry_id: Option<&str>, name: &str) -> AwsResult<Option<Repository>> {
        self.call(ECR, "DescribeRepositories").await?;
        let key = (registry_id.unwrap_or(ACCOUNT).to_string(), name.to_string());
        Ok(self.lock().ecr.repos.get(&key).map(|r| r.repository.clone()))
    }

    async fn repository_tags(&self, arn: &str) -> AwsResult<Tags> {
        self.call(ECR, "ListTagsForResource").await?;
        self.with_repo_arn("ListTagsForResource", arn, |r| r.tags.clone())
    }

    async fn lifecycle_policy(&self, name: &str) -> AwsResult<Option<String>> {
        self.call(ECR, "GetLifecyclePolicy").await?;
        self.with_repo("GetLifecyclePolicy", name, |r| r.lifecycle_policy.clone())
    }

    async fn resolve_tag(&self, registry_id: Option<&str>, repository: &str, tag: &str) -> AwsResult<Option<String>> {
        self.call(ECR, "DescribeImages").await?;
        self.read_images(registry_id, repository, |images| {
            images.iter().find(|(_, tags)| tags.contains(tag)).map(|(d, _)| d.clone())
        })
    }

    async fn digest_exists(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<bool> {
        self.call(ECR, "DescribeImages").await?;
        self.read_images(registry_id, repository, |images| images.contains_key(digest))
    }

    async fn create_repository(
        &self,
        name: &str,
        scan_on_push: bool,
        tag_mutability: TagMutability,
        tags: &Tags,
    ) -> AwsResult<Repository> {
        const OP: &str = "CreateRepository";
        self.call(ECR, OP).await?;
        check_tags(ECR, OP, tags)?;
        if !(2..=256).contains(&name.len()) || !ECR_NAME.is_match(name) {
            return Err(aws_err(
                ECR,
                OP,
                "InvalidParameterException",
                format!("Invalid parameter at 'repositoryName' failed to satisfy constraint: '{name}'"),
            ));
        }
        let mut st = self.lock();
        let key = (ACCOUNT.to_string(), name.to_string());
        if st.ecr.repos.contains_key(&key) {
            return Err(aws_err(
                ECR,
                OP,
                "RepositoryAlreadyExistsException",
                format!("The repository with name '{name}' already exists in the registry with id '{ACCOUNT}'"),
            ));
        }
        let repository = Repository { scan_on_push, tag_mutability, ..repository_of(ACCOUNT, name) };
        st.ecr.repos.insert(
            key,
            Repo {
                repository: repository.clone(),
                tags: tags.clone(),
                lifecycle_policy: None,
                images: BTreeMap::new(),
            },
        );
        Ok(repository)
    }

    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> AwsResult<()> {
        self.call(ECR, "PutImageScanningConfiguration").await?;
        self.with_repo("PutImageScanningConfiguration", name, |r| r.repository.scan_on_push = scan_on_push)
    }

    async fn set_tag_mutability(&self, name: &str, tag_mutability: TagMutability) -> AwsResult<()> {
        self.call(ECR, "PutImageTagMutability").await?;
        self.with_repo("PutImageTagMutability", name, |r| r.repository.tag_mutability = tag_mutability)
    }

    async fn put_lifecycle_policy(&self, name: &str, policy: &str) -> AwsResult<()> {
        const OP: &str = "PutLifecyclePolicy";
        self.call(ECR, OP).await?;
        let valid = serde_json::from_str::<serde_json::Value>(policy)
            .ok()
            .and_then(|v| v.get("rules").and_then(|r| r.as_array()).map(|r| !r.is_empty()))
            .unwrap_or(false);
        self.with_repo(OP, name, |_| ())?;
        if !valid {
            return Err(aws_err(
                ECR,
                OP,
                "InvalidParameterException",
                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'",
            ));
        }
        self.with_repo(OP, name, |r| r.lifecycle_policy = Some(policy.to_string()))
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(ECR, "TagResource").await?;
        check_tags(ECR, "TagResource", tags)?;
        self.with_repo_arn("TagResource", arn, |r| apply_tags(&mut r.tags, tags))
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.call(ECR, "UntagResource").await?;
        self.with_repo_arn("UntagResource", arn, |r| remove_tags(&mut r.tags, keys))
    }

    async fn delete_repository(&self, name: &str) -> AwsResult<()> {
        self.call(ECR, "DeleteRepository").await?;
        self.lock().ecr.repos.remove(&(ACCOUNT.to_string(), name.to_string()));
        Ok(())
    }

    async fn image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<ImageScan> {
        const OP: &str = "DescribeImageScanFindings";
        self.call(ECR, OP).await?;
        let registry = registry_id.unwrap_or(ACCOUNT).to_string();
        if !self.read_images(registry_id, repository, |images| images.contains_key(digest))? {
            return Err(aws_err(ECR, OP, "ImageNotFoundException", format!("image {digest} not found")));
        }
        let key = (registry, repository.to_string(), digest.to_string());
        Ok(self.lock().ecr.scans.get(&key).cloned().unwrap_or(ImageScan::NotScanned))
    }

    async fn start_image_scan(&self, registry_id: Option<&str>, repository: &str, digest: &str) -> AwsResult<()> {
        const OP: &str = "StartImageScan";
        self.call(ECR, OP).await?;
        if !self.read_images(registry_id, repository, |images| images.contains_key(digest))? {
            return Err(aws_err(ECR, OP, "ImageNotFoundException", format!("image {digest} not found")));
        }
        let key = (registry_id.unwrap_or(ACCOUNT).to_string(), repository.to_string(), digest.to_string());
        self.lock().ecr.scans.entry(key).or_insert(ImageScan::InProgress);
        Ok(())
    }

    async fn put_tag(&self, registry_id: Option<&str>, repository: &str, digest: &str, tag: &str) -> AwsResult<()> {
        const OP: &str = "PutImage";
        self.call(ECR, "BatchGetImage").await?;
        self.call(ECR, OP).await?;
        let registry = registry_id.unwrap_or(ACCOUNT);
        let mut st = self.lock();
        let repo = st
            .ecr
            .repos
            .get_mut(&(registry.to_string(), repository.to_string()))
            .ok_or_else(|| repo_not_found(OP, registry, repository))?;
        if !repo.images.contains_key(digest) {
            return Err(aws_err(ECR, OP, "ImageNotFoundException", format!("image {digest} not found")));
        }
        let holder = repo.images.iter().find(|(_, tags)| tags.contains(tag)).map(|(d, _)| d.clone());
        match holder {
            Some(h) if h == digest => return Ok(()),
            Some(h) if repo.repository.tag_mutability == TagMutability::Immutable => {
                return Err(aws_err(
                    ECR,
                    OP,
                    "ImageTagAlreadyExistsException",
                    format!(
                        "The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable (it is on {h})."
                    ),
                ));
            }
            Some(h) => {
                if let Some(tags) = repo.images.get_mut(&h) {
                    tags.remove(tag);
                }
            }
            None => {}
        }
        repo.images.entry(digest.to_string()).or_default().insert(tag.to_string());
        Ok(())
    }
}

// ---- ECS --------------------------------------------------------------------------------------------

#[async_trait]
impl Ecs for FakeAws {
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>> {
        self.call(ECS, "DescribeServices").await?;
        let mut st = self.lock();
        let key = service_key(cluster, name);
        // A deleted service drains (its tasks stop, its targets deregister) before it is INACTIVE.
        if let Some(left) = st.ecs.draining.get_mut(&key) {
            if *left == 0 {
                st.ecs.draining.remove(&key);
                if let Some(svc) = st.ecs.services.get_mut(&key) {
                    svc.status = "INACTIVE".into();
                }
            } else {
                *left -= 1;
            }
        }
        Ok(st.ecs.services.get(&key).filter(|s| s.status != "INACTIVE").cloned())
    }

    async fn list_task_definitions(&self, family: &str) -> AwsResult<Vec<String>> {
        self.call(ECS, "ListTaskDefinitions").await?;
        let st = self.lock();
        let revs = st.ecs.families.get(family).map(Vec::as_slice).unwrap_or_default();
        Ok(revs.iter().rev().filter(|r| r.info.status == "ACTIVE").map(|r| r.info.arn.clone()).collect())
    }

    async fn task_definition(&self, arn: &str) -> AwsResult<TaskDefinitionInfo> {
        const OP: &str = "DescribeTaskDefinition";
        self.call(ECS, OP).await?;
        let st = self.lock();
        st.ecs
            .resolve(arn)
            .map(|r| r.info.clone())
            .ok_or_else(|| aws_err(ECS, OP, "ClientException", "Unable to describe task definition."))
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
        tags: &Tags,
    ) -> AwsResult<TaskDefinitionInfo> {
        const OP: &str = "RegisterTaskDefinition";
        self.call(ECS, OP).await?;
        check_tags(ECS, OP, tags)?;
        let invalid = |m: String| Err(aws_err(ECS, OP, "ClientException", m));
        if !FAMILY.is_match(&definition.family) {
            return invalid(format!("Family contains invalid characters: {}", definition.family));
        }
        if !fargate_size_ok(&definition.cpu, &definition.memory) {
            return invalid("No Fargate configuration exists for given values.".into());
        }
        if !matches!(definition.cpu_architecture.as_str(), "X86_64" | "ARM64") {
            return invalid(format!("Invalid cpuArchitecture: {}", definition.cpu_architecture));
        }
        if definition.container.image.is_empty() || definition.container.name.is_empty() {
            return invalid("Container.image and Container.name should not be null or empty.".into());
        }
        let mut st = self.lock();
        let revs = st.ecs.families.entry(definition.family.clone()).or_default();
        let revision = i32::try_from(revs.len() + 1).unwrap_or(i32::MAX);
        let info = TaskDefinitionInfo {
            arn: task_definition_arn(&definition.family, revision),
            family: definition.family.clone(),
            revision,
            status: "ACTIVE".into(),
            tags: tags.clone(),
        };
        revs.push(Revision { info: info.clone(), definition: definition.clone() });
        Ok(info)
    }

    async fn deregister_task_definition(&self, arn: &str) -> AwsResult<()> {
        self.call(ECS, "DeregisterTaskDefinition").await?;
        let mut st = self.lock();
        // Only an exact revision is deregistered; a bare family names none.
        let target =
            st.ecs.resolve(arn).filter(|_| arn.contains(':')).map(|r| (r.info.family.clone(), r.info.revision));
        if let Some((family, revision)) = target
            && let Some(rev) = st.ecs.families.get_mut(&family).and_then(|v| v.get_mut(revision as usize - 1))
        {
            rev.info.status = "INACTIVE".into();
        }
        Ok(())
    }

    async fn create_service(&self, config: &ServiceConfig) -> AwsResult<Service> {
        const OP: &str = "CreateService";
        self.call(ECS, OP).await?;
        check_tags(ECS, OP, &config.tags)?;
        let mut st = self.lock();
        let load_balancers: Vec<Binding> = config.load_balancer.iter().cloned().collect();
        st.check_propagated(OP, &load_balancers)?;
        let State { ids, ecs, elb, sd, .. } = &mut *st;
        let key = service_key(&config.cluster, &config.name);
        if ecs.services.get(&key).is_some_and(|s| s.status != "INACTIVE") {
            return Err(aws_err(ECS, OP, "InvalidParameterException", "Creation of service was not idempotent."));
        }
        let rev = ecs.usable(OP, &config.task_definition)?;
        if config.desired_count < 0 {
            return Err(aws_err(ECS, OP, "InvalidParameterException", "desiredCount can not be negative."));
        }
        check_network(OP, &config.network)?;
        let registries: Vec<Binding> = config.registry.iter().cloned().collect();
        check_grace(OP, config.health_check_grace_period_seconds, &load_balancers)?;
        check_bindings(OP, elb, sd, &rev.definition, &load_balancers, &registries)?;
        check_traffic(OP, elb, Some(&config.deployment), &load_balancers)?;
        let task_definition = rev.info.arn.clone();
        let (cluster, name) = key.clone();
        let changed = format!("service/{cluster}/{name}");
        let mut svc = Service {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"),
            name,
            status: "ACTIVE".into(),
            task_definition: task_definition.clone(),
            desired_count: config.desired_count,
            running_count: 0,
            pending_count: 0,
            deployments: vec![],
            events: vec![],
            load_balancers,
            registries,
            network: config.network.clone(),
            deployment: Some(config.deployment),
            alarms: config.alarms.clone(),
            health_check_grace_period_seconds: config.health_check_grace_period_seconds,
            tags: config.tags.clone(),
        };
        start_deployment(ids, &mut svc, &task_definition);
        ecs.services.insert(key.clone(), svc.clone());
        ecs.note(&key);
        st.changed(changed);
        Ok(svc)
    }

    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service> {
        const OP: &str = "UpdateService";
        self.call(ECS, OP).await?;
        let mut st = self.lock();
        st.check_propagated(OP, update.load_balancers.as_deref().unwrap_or_default())?;
        let State { ids, ecs, elb, sd, .. } = &mut *st;
        let key = service_key(&update.cluster, &update.name);
        let current = match ecs.services.get(&key) {
            None => return Err(aws_err(ECS, OP, "ServiceNotFoundException", "Service not found.")),
            Some(s) if s.status != "ACTIVE" => {
                return Err(aws_err(ECS, OP, "ServiceNotActiveException", "Service was not ACTIVE."));
            }
            Some(s) => s,
        };
        let rev = match &update.task_definition {
            Some(td) => ecs.usable(OP, td)?,
            None => ecs
                .resolve(&current.task_definition)
                .ok_or_else(|| aws_err(ECS, OP, "ClientException", "Unable to describe task definition."))?,
        };
        if update.desired_count.is_some_and(|d| d < 0) {
            return Err(aws_err(ECS, OP, "InvalidParameterException", "desiredCount can not be negative."));
        }
        if let Some(network) = &update.network {
            check_network(OP, network)?;
        }
        let load_balancers = update.load_balancers.clone().unwrap_or_else(|| current.load_balancers.clone());
        let registries = update.registries.clone().unwrap_or_else(|| current.registries.clone());
        let grace = update.health_check_grace_period_seconds.or(current.health_check_grace_period_seconds);
        check_grace(OP, update.health_check_grace_period_seconds, &load_balancers)?;
        check_bindings(OP, elb, sd, &rev.definition, &load_balancers, &registries)?;
        check_traffic(OP, elb, update.deployment.as_ref().or(current.deployment.as_ref()), &load_balancers)?;
        let task_definition = rev.info.arn.clone();

        let svc = ecs.services.get_mut(&key).unwrap_or_else(|| unreachable!("checked above"));
        // ECS starts a new deployment when what the tasks run or where they are placed changes.
        let redeploy = task_definition != svc.task_definition
            || update.network.as_ref().is_some_and(|n| *n != svc.network)
            || wiring(&load_balancers) != wiring(&svc.load_balancers)
            || registries != svc.registries;
        if let Some(network) = &update.network {
            svc.network = network.clone();
        }
        if let Some(settings) = update.deployment {
            svc.deployment = Some(settings);
            // ECS replaces deploymentConfiguration as a whole: alarms left out are gone.
            svc.alarms = update.alarms.clone().filter(|a| *a != DeploymentAlarms::default());
        }
        svc.health_check_grace_period_seconds = if load_balancers.is_empty() { None } else { grace };
        svc.load_balancers = load_balancers;
        svc.registries = registries;
        if redeploy {
            if let Some(desired) = update.desired_count {
                svc.desired_count = desired;
            }
            svc.task_definition = task_definition.clone();
            start_deployment(ids, svc, &task_definition);
        } else if let Some(desired) = update.desired_count {
            set_desired(svc, desired);
        }
        let svc = svc.clone();
        ecs.note(&key);
        Ok(svc)
    }

    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()> {
        self.call(ECS, "DeleteService").await?;
        let mut st = self.lock();
        let key = service_key(cluster, name);
        let drain = st.ecs.drain_reads;
        if let Some(svc) = st.ecs.services.get_mut(&key).filter(|s| s.status == "ACTIVE") {
            svc.status = if drain > 0 { "DRAINING".into() } else { "INACTIVE".into() };
            svc.desired_count = 0;
            for d in &mut svc.deployments {
                d.desired_count = 0;
                d.running_count = 0;
                d.pending_count = 0;
            }
            recount(svc);
            if drain > 0 {
                st.ecs.draining.insert(key, drain);
            }
        }
        Ok(())
    }

    async fn service_deployments(&self, cluster: &str, name: &str) -> AwsResult<Vec<ServiceDeployment>> {
        self.call(ECS, "ListServiceDeployments").await?;
        let key = service_key(cluster, name);
        let record = self.lock().ecs.history.get(&key).cloned().unwrap_or_default();
        if !record.is_empty() {
            // Each deployment's task definition comes from its service revision.
            self.call(ECS, "DescribeServiceRevisions").await?;
        }
        Ok(record.into_iter().take(20).collect())
    }

    // The fake stops as ECS's blue/green, canary and linear deployments do: the old revision still runs,
    // so rolling back makes it PRIMARY again at once, and the stopped one is dropped.
    async fn stop_service_deployment(&self, arn: &str, rollback: bool) -> AwsResult<()> {
        const OP: &str = "StopServiceDeployment";
        self.call(ECS, OP).await?;
        let mut st = self.lock();
        let State { ids, ecs, .. } = &mut *st;
        let found = ecs
            .history
            .iter()
            .find_map(|(key, records)| records.iter().find(|r| r.arn == arn).map(|r| (key.clone(), r.status.clone())));
        let Some((key, status)) = found else {
            return Err(aws_err(
                ECS,
                OP,
                "ServiceDeploymentNotFoundException",
                format!("Service deployment {arn} not found."),
            ));
        };
        if !matches!(status.as_str(), "PENDING" | "IN_PROGRESS") {
            return Err(aws_err(
                ECS,
                OP,
                "ConflictException",
                format!("Service deployment {arn} is {status} and can no longer be stopped."),
            ));
        }
        let svc = ecs
            .services
            .get_mut(&key)
            .ok_or_else(|| aws_err(ECS, OP, "ServiceNotFoundException", "Service not found."))?;
        let previous =
            svc.deployments.iter().position(|d| d.status != "PRIMARY" && d.rollout_state.as_deref() != Some("FAILED"));
        if rollback && previous.is_none() {
            return Err(aws_err(
                ECS,
                OP,
                "ConflictException",
                format!("Service deployment {arn} has no earlier revision to roll back to."),
            ));
        }
        let now = ids.now();
        let name = svc.name.clone();
        let stopped = primary(svc);
        stopped.rollout_state = Some("FAILED".into());
        stopped.rollout_state_reason = Some("ECS deployment stopped by StopServiceDeployment.".into());
        stopped.running_count = 0;
        stopped.pending_count = 0;
        let stopped_id = stopped.id.clone();
        if let Some(i) = previous.filter(|_| rollback) {
            let back = &mut svc.deployments[i];
            back.status = "PRIMARY".into();
            back.rollout_state = Some("COMPLETED".into());
            back.updated_at = Some(now);
            let (id, task_definition) = (back.id.clone(), back.task_definition.clone());
            svc.task_definition = task_definition;
            add_event(
                ids,
                svc,
                format!(
                    "(service {name}) rolling back to deployment {id}: deployment stopped by StopServiceDeployment."
                ),
            );
        }
        svc.deployments.retain(|d| d.id != stopped_id);
        recount(svc);
        for r in ecs.history.entry(key.clone()).or_default() {
            if r.arn == arn {
                r.status = if rollback { "ROLLBACK_SUCCESSFUL".into() } else { "STOPPED".into() };
            }
        }
        ecs.note(&key);
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(ECS, "TagResource").await?;
        check_tags(ECS, "TagResource", tags)?;
        self.with_ecs_tags("TagResource", arn, |t| apply_tags(t, tags))
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.call(ECS, "UntagResource").await?;
        self.with_ecs_tags("UntagResource", arn, |t| remove_tags(t, keys))
    }
}

impl FakeAws {
    /// The tags of an ECS service or task definition, by ARN.
    fn with_ecs_tags(&self, op: &'static str, arn: &str, f: impl FnOnce(&mut Tags)) -> AwsResult<()> {
        let mut st = self.lock();
        let ecs = &mut st.ecs;
        let tags = if arn.contains(":task-definition/") {
            let found =
                ecs.resolve(arn).filter(|r| r.info.arn == arn).map(|r| (r.info.family.clone(), r.info.revision));
            found
                .and_then(|(family, rev)| ecs.families.get_mut(&family)?.get_mut(rev as usize - 1))
                .map(|r| &mut r.info.tags)
        } else {
            ecs.services.values_mut().find(|s| s.arn == arn && s.status != "INACTIVE").map(|s| &mut s.tags)
        };
        let tags = tags.ok_or_else(|| {
            aws_err(ECS, op, "ResourceNotFoundException", "The specified resource could not be found.")
        })?;
        f(tags);
        Ok(())
    }
}

// ---- ELBv2 ------------------------------------------------------------------------------------------

fn tg_not_found(op: &'static str, arn: &str) -> AwsError {
    aws_err(ELB, op, "TargetGroupNotFound", format!("Target groups '{arn}' not found"))
}

/// The target groups an action forwards to and, for several, their weights (as DescribeRules answers).
fn forwarded(action: &RuleAction) -> (Vec<String>, Vec<i32>) {
    match action {
        RuleAction::Forward(tg) => (vec![tg.clone()], vec![]),
        RuleAction::Weighted(groups) if groups.len() == 1 => (vec![groups[0].0.clone()], vec![]),
        RuleAction::Weighted(groups) => groups.iter().cloned().unzip(),
        RuleAction::Redirect(_) => (vec![], vec![]),
    }
}

fn rule_not_found(op: &'static str, arn: &str) -> AwsError {
    aws_err(ELB, op, "RuleNotFound", format!("One or more rules not found: '{arn}'"))
}

impl FakeAws {
    fn with_elb_tags(&self, op: &'static str, arn: &str, f: impl FnOnce(&mut Tags)) -> AwsResult<()> {
        let mut st = self.lock();
        let tags = if let Some(tg) = st.elb.target_groups.get_mut(arn) {
            &mut tg.tags
        } else if let Some(rule) = st.elb.rules.get_mut(arn) {
            &mut rule.tags
        } else if arn.contains(":listener-rule/") {
            return Err(rule_not_found(op, arn));
        } else {
            return Err(tg_not_found(op, arn));
        };
        f(tags);
        Ok(())
    }
}

#[async_trait]
impl Elbv2 for FakeAws {
    async fn target_group(&self, name: &str) -> AwsResult<Option<TargetGroup>> {
        self.call(ELB, "DescribeTargetGroups").await?;
        let st = self.lock();
        Ok(st.elb.target_groups.values().find(|tg| tg.group.name == name).map(|tg| st.elb.view(tg)))
    }

    async fn target_group_attributes(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        const OP: &str = "DescribeTargetGroupAttributes";
        self.call(ELB, OP).await?;
        let st = self.lock();
        st.elb.target_groups.get(arn).map(|tg| tg.attributes.clone()).ok_or_else(|| tg_not_found(OP, arn))
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        self.call(ELB, "DescribeTags").await?;
        let mut out = Tags::new();
        self.with_elb_tags("DescribeTags", arn, |t| out = t.clone())?;
        Ok(out)
    }

    async fn create_target_group(&self, config: &TargetGroupConfig) -> AwsResult<TargetGroup> {
        const OP: &str = "CreateTargetGroup";
        self.call(ELB, OP).await?;
        check_tags(ELB, OP, &config.tags)?;
        if !TG_NAME.is_match(&config.name) || config.name.starts_with("internal-") {
            return Err(aws_err(
                ELB,
                OP,
                "ValidationError",
                format!(
                    "Target group name '{}' can only contain up to 32 alphanumeric characters or hyphens, and must not begin or end with a hyphen",
                    config.name
                ),
            ));
        }
        if !(1..=65535).contains(&config.port) {
            return Err(aws_err(ELB, OP, "ValidationError", "Port must be between 1 and 65535"));
        }
        check_health(OP, &config.health)?;
        let mut st = self.lock();
        let State { ids, elb, .. } = &mut *st;
        if let Some(existing) = elb.target_groups.values().find(|tg| tg.group.name == config.name) {
            let g = &existing.group;
            if g.vpc_id == config.vpc_id && g.port == config.port && g.health == config.health {
                return Ok(elb.view(existing));
            }
            return Err(aws_err(
                ELB,
                OP,
                "DuplicateTargetGroupName",
                format!("A target group with the same name '{}' exists, but with different settings", config.name),
            ));
        }
        let arn =
            format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{}/{}", config.name, ids.hex16());
        let group = TargetGroup {
            arn: arn.clone(),
            name: config.name.clone(),
            vpc_id: config.vpc_id.clone(),
            port: config.port,
            health: config.health.clone(),
            load_balancer_arns: vec![],
        };
        elb.target_groups.insert(
            arn,
            Tg { group: group.clone(), tags: config.tags.clone(), attributes: default_target_group_attributes() },
        );
        Ok(group)
    }

    async fn modify_target_group(&self, arn: &str, health: &TargetGroupHealth) -> AwsResult<()> {
        const OP: &str = "ModifyTargetGroup";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        let tg = st.elb.target_groups.get_mut(arn).ok_or_else(|| tg_not_found(OP, arn))?;
        check_health(OP, health)?;
        tg.group.health = health.clone();
        Ok(())
    }

    async fn set_target_group_attributes(&self, arn: &str, attributes: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "ModifyTargetGroupAttributes";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        let tg = st.elb.target_groups.get_mut(arn).ok_or_else(|| tg_not_found(OP, arn))?;
        if let Some(key) = attributes.keys().find(|k| !tg.attributes.contains_key(*k)) {
            return Err(aws_err(
                ELB,
                OP,
                "ValidationError",
                format!("Target group attribute key '{key}' is not recognized"),
            ));
        }
        apply_tags(&mut tg.attributes, attributes);
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> AwsResult<()> {
        const OP: &str = "DeleteTargetGroup";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        if !st.elb.load_balancers_of(arn).is_empty() {
            return Err(aws_err(
                ELB,
                OP,
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        // A service that has not finished draining still has targets registered in it.
        if let Some(svc) =
            st.ecs.services.values().find(|s| s.status != "INACTIVE" && s.load_balancers.iter().any(|b| b.arn == arn))
        {
            return Err(aws_err(
                ELB,
                OP,
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by ECS service {} ({})", svc.name, svc.status),
            ));
        }
        st.elb.target_groups.remove(arn);
        Ok(())
    }

    async fn rules(&self, listener_arn: &str) -> AwsResult<Vec<Rule>> {
        const OP: &str = "DescribeRules";
        self.call(ELB, OP).await?;
        let st = self.lock();
        if !st.elb.listeners.contains_key(listener_arn) {
            return Err(aws_err(ELB, OP, "ListenerNotFound", format!("Listener '{listener_arn}' not found")));
        }
        Ok(sorted_rules(&st.elb, listener_arn))
    }

    async fn create_rule(&self, config: &RuleConfig) -> AwsResult<Rule> {
        const OP: &str = "CreateRule";
        self.call(ELB, OP).await?;
        check_tags(ELB, OP, &config.tags)?;
        let mut st = self.lock();
        let State { ids, elb, .. } = &mut *st;
        let listener = &config.listener_arn;
        if !elb.listeners.contains_key(listener) {
            return Err(aws_err(ELB, OP, "ListenerNotFound", format!("Listener '{listener}' not found")));
        }
        if !(1..=50000).contains(&config.priority) {
            return Err(aws_err(ELB, OP, "ValidationError", "Priority must be between 1 and 50000"));
        }
        check_conditions(OP, &config.hosts, &config.paths)?;
        for tg in forwarded(&config.action).0 {
            elb.check_association(OP, listener, &tg)?;
        }
        let on_listener: Vec<&RuleState> = elb.rules.values().filter(|r| r.listener == *listener).collect();
        if on_listener.iter().any(|r| r.rule.priority == Some(config.priority)) {
            return Err(aws_err(
                ELB,
                OP,
                "PriorityInUse",
                format!("Priority '{}' is currently in use", config.priority),
            ));
        }
        if on_listener.iter().filter(|r| r.rule.priority.is_some()).count() >= MAX_RULES {
            return Err(aws_err(
                ELB,
                OP,
                "TooManyRules",
                "You've reached the limit on the number of rules per listener",
            ));
        }
        let arn = format!("{}/{}", listener.replacen(":listener/", ":listener-rule/", 1), ids.hex16());
        let rule = Rule {
            arn: arn.clone(),
            priority: Some(config.priority),
            hosts: config.hosts.clone(),
            paths: config.paths.clone(),
            target_groups: forwarded(&config.action).0,
            weights: forwarded(&config.action).1,
            header: config.header.clone(),
            redirect: match &config.action {
                RuleAction::Redirect(r) => Some(r.clone()),
                _ => None,
            },
        };
        elb.rules.insert(arn, RuleState { listener: listener.clone(), rule: rule.clone(), tags: config.tags.clone() });
        for tg in &rule.target_groups {
            st.changed(format!("tg-lb/{tg}"));
        }
        Ok(rule)
    }

    async fn modify_rule(&self, arn: &str, hosts: &[String], paths: &[String], action: &RuleAction) -> AwsResult<()> {
        const OP: &str = "ModifyRule";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        let elb = &mut st.elb;
        let rule = elb.rules.get(arn).ok_or_else(|| rule_not_found(OP, arn))?;
        if rule.rule.priority.is_none() {
            return Err(aws_err(ELB, OP, "OperationNotPermitted", "Conditions cannot be set on a default rule"));
        }
        check_conditions(OP, hosts, paths)?;
        let listener = rule.listener.clone();
        for tg in forwarded(action).0 {
            elb.check_association(OP, &listener, &tg)?;
        }
        let rule = &mut elb.rules.get_mut(arn).unwrap_or_else(|| unreachable!("checked above")).rule;
        rule.hosts = hosts.to_vec();
        rule.paths = paths.to_vec();
        (rule.target_groups, rule.weights) = forwarded(action);
        rule.redirect = match action {
            RuleAction::Redirect(r) => Some(r.clone()),
            _ => None,
        };
        Ok(())
    }

    async fn set_rule_priority(&self, arn: &str, priority: i32) -> AwsResult<()> {
        const OP: &str = "SetRulePriorities";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        let elb = &mut st.elb;
        let rule = elb.rules.get(arn).ok_or_else(|| rule_not_found(OP, arn))?;
        if rule.rule.priority.is_none() {
            return Err(aws_err(ELB, OP, "OperationNotPermitted", "Default rule priority cannot be modified"));
        }
        if !(1..=50000).contains(&priority) {
            return Err(aws_err(ELB, OP, "ValidationError", "Priority must be between 1 and 50000"));
        }
        let listener = rule.listener.clone();
        if elb.rules.values().any(|r| r.listener == listener && r.rule.arn != arn && r.rule.priority == Some(priority))
        {
            return Err(aws_err(ELB, OP, "PriorityInUse", format!("Priority '{priority}' is currently in use")));
        }
        if let Some(r) = elb.rules.get_mut(arn) {
            r.rule.priority = Some(priority);
        }
        Ok(())
    }

    async fn delete_rule(&self, arn: &str) -> AwsResult<()> {
        const OP: &str = "DeleteRule";
        self.call(ELB, OP).await?;
        let mut st = self.lock();
        if st.elb.rules.get(arn).is_some_and(|r| r.rule.priority.is_none()) {
            return Err(aws_err(ELB, OP, "OperationNotPermitted", "Default rule cannot be deleted"));
        }
        st.elb.rules.remove(arn);
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(ELB, "AddTags").await?;
        check_tags(ELB, "AddTags", tags)?;
        self.with_elb_tags("AddTags", arn, |t| apply_tags(t, tags))
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.call(ELB, "RemoveTags").await?;
        self.with_elb_tags("RemoveTags", arn, |t| remove_tags(t, keys))
    }
}

// ---- Cloud Map --------------------------------------------------------------------------------------

impl FakeAws {
    fn with_sd_tags(&self, op: &'static str, arn: &str, f: impl FnOnce(&mut Tags)) -> AwsResult<()> {
        let mut st = self.lock();
        let (_, tags) = st.sd.services.values_mut().find(|(s, _)| s.arn == arn).ok_or_else(|| {
            aws_err(
                SD,
                op,
                "ResourceNotFoundException",
                format!("The operation can't be performed because the resource {arn} does not exist"),
            )
        })?;
        f(tags);
        Ok(())
    }
}

#[async_trait]
impl CloudMap for FakeAws {
    async fn find_service(&self, namespace_id: &str, name: &str) -> AwsResult<Option<DiscoveryService>> {
        self.call(SD, "ListServices").await?;
        let st = self.lock();
        Ok(st.sd.services.values().map(|(s, _)| s).find(|s| s.namespace_id == namespace_id && s.name == name).cloned())
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        self.call(SD, "ListTagsForResource").await?;
        let mut out = Tags::new();
        self.with_sd_tags("ListTagsForResource", arn, |t| out = t.clone())?;
        Ok(out)
    }

    async fn create_service(
        &self,
        namespace_id: &str,
        name: &str,
        record_type: DnsRecordType,
        ttl_seconds: i64,
        tags: &Tags,
    ) -> AwsResult<DiscoveryService> {
        const OP: &str = "CreateService";
        self.call(SD, OP).await?;
        check_tags(SD, OP, tags)?;
        let mut st = self.lock();
        let State { ids, sd, .. } = &mut *st;
        if !sd.namespaces.contains_key(namespace_id) {
            return Err(aws_err(SD, OP, "NamespaceNotFound", format!("Namespace {namespace_id} not found")));
        }
        if name.is_empty() || name.len() > 127 {
            return Err(aws_err(SD, OP, "InvalidInput", format!("Invalid service name '{name}'")));
        }
        if !(0..=i64::from(i32::MAX)).contains(&ttl_seconds) {
            return Err(aws_err(SD, OP, "InvalidInput", "TTL must be between 0 and 2147483647"));
        }
        if let Some((existing, _)) =
            sd.services.values().find(|(s, _)| s.namespace_id == namespace_id && s.name == name)
        {
            return Err(aws_err(
                SD,
                OP,
                "ServiceAlreadyExists",
                format!("Service already exists: {} ({})", existing.name, existing.id),
            ));
        }
        let id = format!("srv-{}", ids.alnum(16));
        let service = DiscoveryService {
            arn: format!("arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/{id}"),
            id: id.clone(),
            name: name.to_string(),
            namespace_id: namespace_id.to_string(),
            record_type,
            ttl_seconds,
        };
        sd.services.insert(id, (service.clone(), tags.clone()));
        Ok(service)
    }

    async fn update_ttl(&self, id: &str, record_type: DnsRecordType, ttl_seconds: i64) -> AwsResult<()> {
        const OP: &str = "UpdateService";
        self.call(SD, OP).await?;
        let mut st = self.lock();
        let (service, _) = st
            .sd
            .services
            .get_mut(id)
            .ok_or_else(|| aws_err(SD, OP, "ServiceNotFound", format!("Service not found: {id}")))?;
        if !(0..=i64::from(i32::MAX)).contains(&ttl_seconds) {
            return Err(aws_err(SD, OP, "InvalidInput", "TTL must be between 0 and 2147483647"));
        }
        service.record_type = record_type;
        service.ttl_seconds = ttl_seconds;
        Ok(())
    }

    async fn delete_service(&self, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteService";
        self.call(SD, OP).await?;
        let mut st = self.lock();
        let Some((service, _)) = st.sd.services.get(id) else { return Ok(()) };
        if instances(&st.ecs, &service.arn) > 0 {
            return Err(aws_err(
                SD,
                OP,
                "ResourceInUse",
                format!("Service {id} has registered instances; deregister them first"),
            ));
        }
        st.sd.services.remove(id);
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(SD, "TagResource").await?;
        check_tags(SD, "TagResource", tags)?;
        self.with_sd_tags("TagResource", arn, |t| apply_tags(t, tags))
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.call(SD, "UntagResource").await?;
        self.with_sd_tags("UntagResource", arn, |t| remove_tags(t, keys))
    }
}

// ---- Application Auto Scaling -------------------------------------------------------------------------

#[async_trait]
impl Autoscaling for FakeAws {
    async fn scalable_target(&self, resource_id: &str) -> AwsResult<Option<ScalableTarget>> {
        self.call(AAS, "DescribeScalableTargets").await?;
        Ok(self.lock().aas.get(resource_id).map(|t| t.target.clone()))
    }

    async fn register_scalable_target(&self, target: &ScalableTarget) -> AwsResult<()> {
        const OP: &str = "RegisterScalableTarget";
        self.call(AAS, OP).await?;
        let invalid = |m: String| Err(aws_err(AAS, OP, "ValidationException", m));
        let Some(caps) = RESOURCE_ID.captures(&target.resource_id) else {
            return invalid(format!(
                "Unsupported service namespace, resource type or scalable dimension: {}",
                target.resource_id
            ));
        };
        if target.min_capacity < 0 || target.max_capacity < 0 {
            return invalid("Capacities must not be negative".into());
        }
        if target.min_capacity > target.max_capacity {
            return invalid("Minimum capacity cannot be greater than maximum capacity".into());
        }
        let mut st = self.lock();
        let key = service_key(&caps[1], &caps[2]);
        if st.unsettled(&format!("service/{}/{}", key.0, key.1)) {
            return invalid(format!("ECS service doesn't exist: {}", target.resource_id));
        }
        let Some(svc) = st.ecs.services.get_mut(&key).filter(|s| s.status == "ACTIVE") else {
            return invalid(format!("ECS service doesn't exist: {}", target.resource_id));
        };
        // Application Auto Scaling brings the desired count into the new range.
        let desired = svc.desired_count.clamp(target.min_capacity, target.max_capacity);
        if desired != svc.desired_count {
            set_desired(svc, desired);
        }
        let entry = st
            .aas
            .entry(target.resource_id.clone())
            .or_insert_with(|| AasTarget { target: target.clone(), policies: vec![] });
        entry.target = target.clone();
        Ok(())
    }

    async fn deregister_scalable_target(&self, resource_id: &str) -> AwsResult<()> {
        self.call(AAS, "DeregisterScalableTarget").await?;
        self.lock().aas.remove(resource_id);
        Ok(())
    }

    async fn policies(&self, resource_id: &str) -> AwsResult<Vec<ScalingPolicy>> {
        self.call(AAS, "DescribeScalingPolicies").await?;
        Ok(self.scaling_policies(resource_id))
    }

    async fn put_policy(&self, resource_id: &str, policy: &ScalingPolicy) -> AwsResult<()> {
        const OP: &str = "PutScalingPolicy";
        self.call(AAS, OP).await?;
        let invalid = |m: String| Err(aws_err(AAS, OP, "ValidationException", m));
        if policy.name.is_empty() || policy.name.len() > 256 || policy.name.contains(':') {
            return invalid(format!("Invalid policy name '{}'", policy.name));
        }
        if !(policy.target.is_finite() && policy.target > 0.0) {
            return invalid(format!("Invalid target value {}", policy.target));
        }
        if let ScalingMetric::RequestsPerTarget { resource_label } = &policy.metric
            && !RESOURCE_LABEL.is_match(resource_label)
        {
            return invalid(format!("Invalid resource label '{resource_label}'"));
        }
        let mut st = self.lock();
        let target = st.aas.get_mut(resource_id).ok_or_else(|| {
            aws_err(
                AAS,
                OP,
                "ObjectNotFoundException",
                format!(
                    "No scalable target registered for service namespace: ecs, resource ID: {resource_id}, scalable dimension: ecs:service:DesiredCount"
                ),
            )
        })?;
        match target.policies.iter_mut().find(|p| p.name == policy.name) {
            Some(existing) => *existing = policy.clone(),
            None => target.policies.push(policy.clone()),
        }
        Ok(())
    }

    async fn delete_policy(&self, resource_id: &str, name: &str) -> AwsResult<()> {
        self.call(AAS, "DeleteScalingPolicy").await?;
        if let Some(target) = self.lock().aas.get_mut(resource_id) {
            target.policies.retain(|p| p.name != name);
        }
        Ok(())
    }
}

// ---- CloudWatch -------------------------------------------------------------------------------------

#[async_trait]
impl CloudWatch for FakeAws {
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<AlarmInfo>> {
        self.call(CW, "DescribeAlarms").await?;
        Ok(self
            .lock()
            .alarms
            .values()
            .filter(|(a, _)| a.alarm.name.starts_with(prefix))
            .map(|(a, _)| a.clone())
            .collect())
    }

    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> AwsResult<()> {
        const OP: &str = "PutMetricAlarm";
        self.call(CW, OP).await?;
        check_tags(CW, OP, tags)?;
        if alarm.datapoints_to_alarm > alarm.evaluation_periods || alarm.period_seconds % 60 != 0 {
            return Err(aws_err(CW, OP, "ValidationError", "DatapointsToAlarm must not exceed EvaluationPeriods"));
        }
        let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{}", alarm.name);
        {
            let mut st = self.lock();
            let entry = st.alarms.entry(alarm.name.clone()).or_insert_with(|| {
                (AlarmInfo { arn: arn.clone(), alarm: alarm.clone(), state: "INSUFFICIENT_DATA".into() }, tags.clone())
            });
            entry.0.alarm = alarm.clone();
        }
        if !tags.is_empty() {
            CloudWatch::tag(self, &arn, tags).await?;
        }
        Ok(())
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        self.call(CW, "ListTagsForResource").await?;
        self.with_alarm("ListTagsForResource", arn, |t| t.clone())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(CW, "TagResource").await?;
        check_tags(CW, "TagResource", tags)?;
        self.with_alarm("TagResource", arn, |t| apply_tags(t, tags))
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.call(CW, "UntagResource").await?;
        self.with_alarm("UntagResource", arn, |t| remove_tags(t, keys))
    }

    async fn delete_alarms(&self, names: &[String]) -> AwsResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.call(CW, "DeleteAlarms").await?;
        let mut st = self.lock();
        for n in names {
            st.alarms.remove(n);
        }
        Ok(())
    }

    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: std::time::SystemTime,
        end: std::time::SystemTime,
    ) -> AwsResult<Vec<Option<f64>>> {
        const OP: &str = "GetMetricData";
        self.call(CW, OP).await?;
        let invalid = |message: String| aws_err(CW, OP, "InvalidParameterValue", message);
        let seconds = end.duration_since(start).map(|d| d.as_secs()).unwrap_or(0);
        if seconds == 0 || !seconds.is_multiple_of(60) {
            return Err(invalid(format!("The parameter Period must be a multiple of 60, not {seconds}.")));
        }
        if queries.len() > 500 {
            return Err(invalid("The collection MetricDataQueries must not have a size greater than 500.".into()));
        }
        let st = self.lock();
        queries
            .iter()
            .map(|q| {
                let mut samples: Vec<(f64, u64)> = st
                    .metrics
                    .iter()
                    .filter(|d| d.namespace == q.namespace && d.name == q.metric_name && d.dimensions == q.dimensions)
                    .filter(|d| start <= d.at && d.at < end)
                    .map(|d| (d.value, d.count))
                    .collect();
                statistic(&q.stat, &mut samples)
                    .ok_or_else(|| invalid(format!("The value {} for parameter Stat is not valid.", q.stat)))
            })
            .collect()
    }
}

impl FakeAws {
    /// Publishes `count` samples of `value` for a metric at `at`, as CloudWatch would have them from
    /// the service (an ALB's per-target-group metrics, say); GetMetricData reads them back.
    pub fn put_metric(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &BTreeMap<String, String>,
        at: std::time::SystemTime,
        value: f64,
        count: u64,
    ) {
        self.lock().metrics.push(Datum {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions.clone(),
            at,
            value,
            count,
        });
    }
}

impl FakeAws {
    fn with_alarm<T>(&self, op: &'static str, arn: &str, f: impl FnOnce(&mut Tags) -> T) -> AwsResult<T> {
        let mut st = self.lock();
        let (_, tags) = st
            .alarms
            .values_mut()
            .find(|(a, _)| a.arn == arn)
            .ok_or_else(|| aws_err(CW, op, "ResourceNotFoundException", format!("alarm {arn} not found")))?;
        Ok(f(tags))
    }

    fn with_api<T>(&self, op: &'static str, api_id: &str, f: impl FnOnce(&mut Gen, &mut HttpApi) -> T) -> AwsResult<T> {
        let mut st = self.lock();
        let State { ids, apis, .. } = &mut *st;
        let api = apis.get_mut(api_id).ok_or_else(|| {
            aws_err(APIGW, op, "NotFoundException", format!("Invalid API identifier specified {api_id}"))
        })?;
        Ok(f(ids, api))
    }
}

// ---- API Gateway ------------------------------------------------------------------------------------

fn integration_of(id: String, config: &IntegrationConfig) -> Integration {
    Integration {
        id,
        integration_type: "HTTP_PROXY".into(),
        connection_type: Some("VPC_LINK".into()),
        connection_id: Some(config.vpc_link_id.clone()),
        uri: Some(config.service_arn.clone()),
        method: Some("ANY".into()),
        payload_format_version: Some("1.0".into()),
        description: Some(config.description.clone()),
    }
}

fn route_of(id: String, config: &RouteConfig) -> Route {
    Route {
        id,
        key: config.key.clone(),
        target: Some(config.target.clone()),
        authorization_type: if config.authorizer_id.is_some() { "JWT" } else { "NONE" }.into(),
        authorizer_id: config.authorizer_id.clone(),
    }
}

fn api_not_found(op: &'static str, what: &str, id: &str) -> AwsError {
    aws_err(APIGW, op, "NotFoundException", format!("Invalid {what} identifier specified {id}"))
}

#[async_trait]
impl ApiGateway for FakeAws {
    async fn integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        self.call(APIGW, "GetIntegrations").await?;
        self.with_api("GetIntegrations", api_id, |_, api| api.integrations.values().cloned().collect())
    }

    async fn create_integration(&self, api_id: &str, config: &IntegrationConfig) -> AwsResult<Integration> {
        self.call(APIGW, "CreateIntegration").await?;
        self.with_api("CreateIntegration", api_id, |ids, api| {
            let integration = integration_of(ids.alnum(7), config);
            api.integrations.insert(integration.id.clone(), integration.clone());
            integration
        })
    }

    async fn update_integration(&self, api_id: &str, id: &str, config: &IntegrationConfig) -> AwsResult<()> {
        const OP: &str = "UpdateIntegration";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| match api.integrations.get_mut(id) {
            Some(i) => {
                *i = integration_of(id.to_string(), config);
                Ok(())
            }
            None => Err(api_not_found(OP, "Integration", id)),
        })?
    }

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteIntegration";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| {
            let target = format!("integrations/{id}");
            if api.routes.values().any(|r| r.target.as_deref() == Some(target.as_str())) {
                // As API Gateway: an integration routes still target cannot go.
                return Err(aws_err(APIGW, OP, "ConflictException", format!("Integration {id} is used by routes")));
            }
            api.integrations.remove(id);
            Ok(())
        })?
    }

    async fn routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        self.call(APIGW, "GetRoutes").await?;
        self.with_api("GetRoutes", api_id, |_, api| api.routes.values().cloned().collect())
    }

    async fn create_route(&self, api_id: &str, config: &RouteConfig) -> AwsResult<Route> {
        const OP: &str = "CreateRoute";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |ids, api| {
            if api.routes.values().any(|r| r.key == config.key) {
                return Err(aws_err(APIGW, OP, "ConflictException", format!("Route {} already exists", config.key)));
            }
            let route = route_of(ids.alnum(7), config);
            api.routes.insert(route.id.clone(), route.clone());
            Ok(route)
        })?
    }

    async fn update_route(&self, api_id: &str, id: &str, config: &RouteConfig) -> AwsResult<()> {
        const OP: &str = "UpdateRoute";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| match api.routes.get_mut(id) {
            Some(r) => {
                *r = route_of(id.to_string(), config);
                Ok(())
            }
            None => Err(api_not_found(OP, "Route", id)),
        })?
    }

    async fn delete_route(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.call(APIGW, "DeleteRoute").await?;
        self.with_api("DeleteRoute", api_id, |_, api| {
            api.routes.remove(id);
        })
    }

    async fn authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>> {
        self.call(APIGW, "GetAuthorizers").await?;
        self.with_api("GetAuthorizers", api_id, |_, api| api.authorizers.values().cloned().collect())
    }

    async fn create_authorizer(&self, api_id: &str, config: &AuthorizerConfig) -> AwsResult<Authorizer> {
        self.call(APIGW, "CreateAuthorizer").await?;
        self.with_api("CreateAuthorizer", api_id, |ids, api| {
            let authorizer = Authorizer { id: ids.alnum(6), authorizer_type: "JWT".into(), config: config.clone() };
            api.authorizers.insert(authorizer.id.clone(), authorizer.clone());
            authorizer
        })
    }

    async fn update_authorizer(&self, api_id: &str, id: &str, config: &AuthorizerConfig) -> AwsResult<()> {
        const OP: &str = "UpdateAuthorizer";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| match api.authorizers.get_mut(id) {
            Some(a) => {
                a.config = config.clone();
                Ok(())
            }
            None => Err(api_not_found(OP, "Authorizer", id)),
        })?
    }

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteAuthorizer";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| {
            if api.routes.values().any(|r| r.authorizer_id.as_deref() == Some(id)) {
                return Err(aws_err(APIGW, OP, "ConflictException", format!("Authorizer {id} is used by routes")));
            }
            api.authorizers.remove(id);
            Ok(())
        })?
    }

    async fn stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>> {
        const OP: &str = "GetStage";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |_, api| api.stages.get(name).cloned())
    }

    async fn create_deployment(&self, api_id: &str, stage: &str, _description: &str) -> AwsResult<String> {
        const OP: &str = "CreateDeployment";
        self.call(APIGW, OP).await?;
        self.with_api(OP, api_id, |ids, api| {
            let Some(target) = api.stages.get_mut(stage) else {
                return Err(aws_err(
                    APIGW,
                    OP,
                    "NotFoundException",
                    format!("Invalid stage identifier specified {stage}"),
                ));
            };
            let id = ids.alnum(6);
            target.deployment_id = Some(id.clone());
            api.deployments.push((id.clone(), api.routes.values().map(|r| r.key.clone()).collect()));
            Ok(id)
        })?
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ecsop::aws::DeploymentSettings;
    use ecsop::aws::taskdef::Container;

    /// Shared with the other fakes' tests.
    pub(crate) fn td(family: &str, image: &str) -> TaskDefinition {
        TaskDefinition {
            family: family.into(),
            cpu: "256".into(),
            memory: "512".into(),
            cpu_architecture: "X86_64".into(),
            execution_role_arn: None,
            task_role_arn: None,
            container: Container {
                name: "api".into(),
                image: image.into(),
                port: 8080,
                command: vec![],
                environment: BTreeMap::new(),
                secrets: BTreeMap::new(),
                health_check: None,
                logs: None,
            },
        }
    }

    /// Shared with the other fakes' tests.
    pub(crate) fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Shared with the other fakes' tests.
    pub(crate) fn network() -> NetworkSettings {
        NetworkSettings {
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false,
        }
    }

    /// Shared with the other fakes' tests.
    pub(crate) fn service_config(task_definition: &str) -> ServiceConfig {
        ServiceConfig {
            cluster: "prod".into(),
            name: "books-api".into(),
            task_definition: task_definition.into(),
            desired_count: 2,
            network: network(),
            deployment: DeploymentSettings {
                maximum_percent: 200,
                minimum_healthy_percent: 100,
                circuit_breaker: true,
                rollback: true,
                strategy: ecsop::aws::Strategy::Rolling,
            },
            alarms: None,
            health_check_grace_period_seconds: None,
            load_balancer: None,
            registry: None,
            tags: tags(&[("ecsop.io/owner", "prod/books-api")]),
        }
    }

    fn health() -> TargetGroupHealth {
        TargetGroupHealth {
            path: "/healthz".into(),
            interval_seconds: 10,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            matcher: "200".into(),
        }
    }

    fn tg_config(name: &str) -> TargetGroupConfig {
        TargetGroupConfig { name: name.into(), vpc_id: "vpc-1".into(), port: 8080, health: health(), tags: Tags::new() }
    }

    fn rule_config(listener: &str, priority: i32, tg: &str) -> RuleConfig {
        RuleConfig {
            listener_arn: listener.into(),
            priority,
            hosts: vec!["api.example.com".into()],
            paths: vec!["/books/*".into()],
            header: None,
            action: RuleAction::Forward(tg.into()),
            tags: Tags::new(),
        }
    }

    /// A fake with two revisions of `prod-books-api` and an ACTIVE service on revision 1.
    async fn with_service() -> (FakeAws, String, String) {
        let aws = FakeAws::new();
        let v1 = aws.register_task_definition(&td("prod-books-api", "img@sha256:01"), &Tags::new()).await.unwrap();
        let v2 = aws.register_task_definition(&td("prod-books-api", "img@sha256:02"), &Tags::new()).await.unwrap();
        Ecs::create_service(&aws, &service_config(&v1.arn)).await.unwrap();
        (aws, v1.arn, v2.arn)
    }

    fn update(task_definition: Option<&str>, desired: Option<i32>) -> ServiceUpdate {
        ServiceUpdate {
            cluster: "prod".into(),
            name: "books-api".into(),
            task_definition: task_definition.map(str::to_string),
            desired_count: desired,
            ..ServiceUpdate::default()
        }
    }

    #[tokio::test]
    async fn revisions_are_numbered_per_family_from_one_and_never_reused() {
        let aws = FakeAws::new();
        let a1 = aws.register_task_definition(&td("prod-a", "i@sha256:1"), &Tags::new()).await.unwrap();
        let a2 = aws.register_task_definition(&td("prod-a", "i@sha256:2"), &Tags::new()).await.unwrap();
        let b1 = aws.register_task_definition(&td("prod-b", "i@sha256:1"), &Tags::new()).await.unwrap();
        assert_eq!((a1.revision, a2.revision, b1.revision), (1, 2, 1));
        assert_eq!(a2.arn, "arn:aws:ecs:us-east-1:123456789012:task-definition/prod-a:2");

        aws.deregister_task_definition(&a2.arn).await.unwrap();
        aws.deregister_task_definition(&a2.arn).await.unwrap(); // already inactive: success
        aws.deregister_task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/prod-a:99").await.unwrap();
        let a3 = aws.register_task_definition(&td("prod-a", "i@sha256:3"), &tags(&[("k", "v")])).await.unwrap();
        assert_eq!(a3.revision, 3, "the number of a deregistered revision is not reused");

        let all = aws.task_definitions("prod-a");
        let summary: Vec<(i32, &str)> = all.iter().map(|t| (t.revision, t.status.as_str())).collect();
        assert_eq!(summary, [(1, "ACTIVE"), (2, "INACTIVE"), (3, "ACTIVE")]);
        // INACTIVE revisions can still be described, with their tags.
        assert_eq!(aws.task_definition(&a2.arn).await.unwrap().status, "INACTIVE");
        assert_eq!(aws.task_definition(&a3.arn).await.unwrap().tags, tags(&[("k", "v")]));
        let missing = aws.task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/nope:1").await;
        assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn list_task_definitions_is_active_only_newest_first_and_family_exact() {
        let aws = FakeAws::new();
        let mut arns = vec![];
        for i in 0..4 {
            arns.push(
                aws.register_task_definition(&td("prod-api", &format!("i@sha256:{i}")), &Tags::new())
                    .await
                    .unwrap()
                    .arn,
            );
        }
        aws.register_task_definition(&td("prod-api-v2", "i@sha256:x"), &Tags::new()).await.unwrap();
        aws.deregister_task_definition(&arns[1]).await.unwrap();
        let listed = aws.list_task_definitions("prod-api").await.unwrap();
        assert_eq!(listed, vec![arns[3].clone(), arns[2].clone(), arns[0].clone()]);
        assert!(aws.list_task_definitions("prod").await.unwrap().is_empty(), "no prefix matching");
    }

    #[tokio::test]
    async fn register_rejects_what_ecs_rejects() {
        let aws = FakeAws::new();
        let mut bad = td("prod-api", "i@sha256:1");
        bad.memory = "4096".into();
        let err = aws.register_task_definition(&bad, &Tags::new()).await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Invalid, Some("ClientException")));
        let err = aws.register_task_definition(&td("prod/api", "i"), &Tags::new()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(aws.task_definitions("prod-api").is_empty());
    }

    #[tokio::test]
    async fn create_service_starts_one_primary_deployment() {
        let (aws, v1, _) = with_service().await;
        let svc = aws.service("prod", "books-api").await.unwrap().expect("service");
        assert_eq!(svc.arn, "arn:aws:ecs:us-east-1:123456789012:service/prod/books-api");
        assert_eq!((svc.status.as_str(), svc.task_definition.as_str(), svc.running_count), ("ACTIVE", v1.as_str(), 0));
        assert_eq!(svc.deployments.len(), 1);
        let d = &svc.deployments[0];
        assert_eq!((d.status.as_str(), d.rollout_state.as_deref()), ("PRIMARY", Some("IN_PROGRESS")));
        assert_eq!((d.desired_count, d.running_count, d.task_definition.as_str()), (2, 0, v1.as_str()));
        assert!(d.id.starts_with("ecs-svc/") && d.id.len() == 8 + 19, "{}", d.id);
        assert_eq!(svc.tags, tags(&[("ecsop.io/owner", "prod/books-api")]));
    }

    #[tokio::test]
    async fn update_service_starts_a_new_primary_only_when_the_task_definition_changes() {
        let (aws, v1, v2) = with_service().await;
        let first = aws.service_snapshot("prod", "books-api").unwrap().deployments[0].id.clone();

        // Desired count only: the PRIMARY takes it, no new deployment.
        let svc = aws.update_service(&update(None, Some(4))).await.unwrap();
        assert_eq!(svc.deployments.len(), 1);
        assert_eq!((svc.deployments[0].id.as_str(), svc.deployments[0].desired_count), (first.as_str(), 4));
        assert_eq!(svc.desired_count, 4);

        // The same task definition: nothing new.
        let svc = aws.update_service(&update(Some(&v1), None)).await.unwrap();
        assert_eq!(svc.deployments.len(), 1);

        // A new task definition: old PRIMARY becomes ACTIVE, a new PRIMARY starts.
        let svc = aws.update_service(&update(Some(&v2), None)).await.unwrap();
        assert_eq!(svc.task_definition, v2);
        let states: Vec<(&str, &str)> =
            svc.deployments.iter().map(|d| (d.status.as_str(), d.task_definition.as_str())).collect();
        assert_eq!(states, [("PRIMARY", v2.as_str()), ("ACTIVE", v1.as_str())]);
        assert_eq!(svc.deployments[1].id, first);
        assert_eq!(svc.deployments[0].rollout_state.as_deref(), Some("IN_PROGRESS"));
        assert_eq!((svc.deployments[0].desired_count, svc.deployments[0].running_count), (4, 0));
    }

    #[tokio::test]
    async fn update_service_to_new_network_also_deploys_like_ecs() {
        let (aws, _, _) = with_service().await;
        let mut u = update(None, None);
        u.network = Some(NetworkSettings { subnets: vec!["subnet-2".into()], ..network() });
        let svc = aws.update_service(&u).await.unwrap();
        assert_eq!(svc.deployments.len(), 2);
        // Deployment settings alone do not.
        let mut u = update(None, None);
        u.deployment = Some(DeploymentSettings {
            maximum_percent: 150,
            minimum_healthy_percent: 50,
            circuit_breaker: true,
            rollback: false,
            strategy: ecsop::aws::Strategy::Rolling,
        });
        let svc = aws.update_service(&u).await.unwrap();
        assert_eq!(svc.deployments.len(), 2);
        assert_eq!(svc.deployment.map(|d| d.maximum_percent), Some(150));
    }

    #[tokio::test]
    async fn complete_reaches_a_steady_state_and_drains_older_deployments() {
        let (aws, _, v2) = with_service().await;
        aws.complete("prod", "books-api");
        aws.update_service(&update(Some(&v2), None)).await.unwrap();
        let svc = aws.progress("prod", "books-api", 1);
        assert_eq!((svc.deployments[0].running_count, svc.deployments[0].pending_count), (1, 1));
        assert!(svc.events[0].message.contains("has started 1 tasks"), "{}", svc.events[0].message);

        let svc = aws.complete("prod", "books-api");
        assert_eq!(svc.deployments.len(), 1);
        let d = &svc.deployments[0];
        assert_eq!((d.status.as_str(), d.rollout_state.as_deref()), ("PRIMARY", Some("COMPLETED")));
        assert_eq!((d.task_definition.as_str(), d.running_count, svc.running_count), (v2.as_str(), 2, 2));
        assert_eq!(svc.events[0].message, "(service books-api) has reached a steady state.");
        assert!(svc.events[1].message.contains("deployment completed"));
        assert_eq!(aws.service("prod", "books-api").await.unwrap(), Some(svc));
    }

    #[tokio::test]
    async fn fail_marks_the_primary_failed_with_stopped_task_events() {
        let (aws, _, v2) = with_service().await;
        aws.complete("prod", "books-api");
        aws.update_service(&update(Some(&v2), None)).await.unwrap();
        let svc = aws.fail("prod", "books-api", "Essential container in task exited");
        let d = &svc.deployments[0];
        assert_eq!((d.status.as_str(), d.rollout_state.as_deref()), ("PRIMARY", Some("FAILED")));
        assert_eq!((d.failed_tasks, d.running_count), (3, 0));
        assert!(svc.events[0].message.contains("deployment failed"));
        let stopped =
            svc.events.iter().filter(|e| e.message.contains("stopped: Essential container in task exited.")).count();
        assert_eq!(stopped, 3);
        assert_eq!(svc.task_definition, v2, "fail alone does not roll back");
    }

    #[tokio::test]
    async fn rollback_starts_a_primary_of_the_previous_task_definition() {
        let (aws, v1, v2) = with_service().await;
        aws.complete("prod", "books-api");
        aws.update_service(&update(Some(&v2), None)).await.unwrap();
        let failed_id = aws.service_snapshot("prod", "books-api").unwrap().deployments[0].id.clone();
        let svc = aws.rollback("prod", "books-api", "Essential container in task exited");
        assert_eq!(svc.task_definition, v1);
        // The failed deployment, without tasks, has left DescribeServices; ECS's record keeps it.
        assert_eq!(svc.deployments.len(), 1);
        let new = &svc.deployments[0];
        assert_eq!((new.status.as_str(), new.task_definition.as_str()), ("PRIMARY", v1.as_str()));
        assert_eq!(new.rollout_state.as_deref(), Some("IN_PROGRESS"));
        let record = aws.service_deployments("prod", "books-api").await.unwrap();
        let failed = record.iter().find(|d| d.arn.ends_with(&format!("/{failed_id}"))).expect("recorded");
        assert_eq!(
            (failed.status.as_str(), failed.task_definition.as_deref()),
            ("ROLLBACK_IN_PROGRESS", Some(v2.as_str()))
        );
        aws.complete("prod", "books-api");
        let record = aws.service_deployments("prod", "books-api").await.unwrap();
        assert!(record.iter().any(|d| d.status == "ROLLBACK_SUCCESSFUL"), "{record:?}");
        assert_eq!(record[0].task_definition.as_deref(), Some(v1.as_str()), "newest first: {record:?}");
        assert_eq!(svc.events[0].message, format!("(service books-api) rolling back to deployment {}.", new.id));
        let svc = aws.complete("prod", "books-api");
        assert_eq!((svc.deployments.len(), svc.running_count), (1, 2));
    }

    #[tokio::test]
    async fn services_exist_once_and_vanish_when_deleted() {
        let (aws, v1, _) = with_service().await;
        let err = Ecs::create_service(&aws, &service_config(&v1)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(aws.service("prod", "other").await.unwrap().is_none());

        Ecs::delete_service(&aws, "prod", "books-api").await.unwrap();
        Ecs::delete_service(&aws, "prod", "books-api").await.unwrap();
        Ecs::delete_service(&aws, "prod", "never-existed").await.unwrap();
        assert!(aws.service("prod", "books-api").await.unwrap().is_none());
        assert_eq!(aws.service_snapshot("prod", "books-api").unwrap().status, "INACTIVE");
        let err = aws.update_service(&update(None, Some(1))).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);

        // A deleted name can be used again.
        Ecs::create_service(&aws, &service_config(&v1)).await.unwrap();
        assert!(aws.service("prod", "books-api").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn services_refuse_inactive_task_definitions_and_bad_bindings() {
        let aws = FakeAws::new();
        let v1 = aws.register_task_definition(&td("prod-books-api", "i@sha256:1"), &Tags::new()).await.unwrap();
        aws.deregister_task_definition(&v1.arn).await.unwrap();
        let err = Ecs::create_service(&aws, &service_config(&v1.arn)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);

        let v2 = aws.register_task_definition(&td("prod-books-api", "i@sha256:2"), &Tags::new()).await.unwrap();
        let tg = aws.create_target_group(&tg_config("prod-books-api-1")).await.unwrap();
        let mut config = service_config(&v2.arn);
        config.load_balancer =
            Some(Binding { arn: tg.arn.clone(), container: "api".into(), port: 8080, traffic: None });
        let err = Ecs::create_service(&aws, &config).await.unwrap_err();
        assert!(err.message.contains("does not have an associated load balancer"), "{err}");

        let listener = aws.create_listener();
        aws.create_rule(&rule_config(&listener, 10, &tg.arn)).await.unwrap();
        config.load_balancer =
            Some(Binding { arn: tg.arn.clone(), container: "api".into(), port: 9090, traffic: None });
        assert_eq!(Ecs::create_service(&aws, &config).await.unwrap_err().kind, ErrorKind::Invalid);
        config.load_balancer =
            Some(Binding { arn: tg.arn.clone(), container: "api".into(), port: 8080, traffic: None });
        config.health_check_grace_period_seconds = Some(30);
        let svc = Ecs::create_service(&aws, &config).await.unwrap();
        assert_eq!(svc.load_balancers.len(), 1);
    }

    #[tokio::test]
    async fn rules_and_tags_beyond_aws_limits_are_refused() {
        let aws = FakeAws::new();
        let listener = aws.create_listener();
        let tg = aws.create_target_group(&tg_config("tg-limits")).await.unwrap();
        let with = |hosts: &[&str], paths: &[&str]| {
            let mut config = rule_config(&listener, 10, &tg.arn);
            config.hosts = hosts.iter().map(|h| h.to_string()).collect();
            config.paths = paths.iter().map(|p| p.to_string()).collect();
            config
        };
        let refused = |config: RuleConfig, why: &'static str| {
            let aws = aws.clone();
            async move {
                let err = aws.create_rule(&config).await.unwrap_err();
                assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Invalid, Some("ValidationError")), "{why}");
            }
        };
        refused(with(&["a.example.com", "b.example.com", "c.example.com", "d.example.com"], &[]), "4 hosts").await;
        refused(with(&["a.example.com", "b.example.com", "c.example.com"], &["/a", "/b", "/c"]), "6 values").await;
        refused(with(&["*.example.com", "*.example.org"], &["/a*", "/b*", "/c*?"]), "6 wildcards").await;
        aws.create_rule(&with(&["*.example.com", "*.example.org"], &["/a*", "/b*", "/c?"])).await.expect("5 wildcards");

        let long = "x".repeat(257);
        for (value, why) in [("$default", "a $"), (long.as_str(), "257 characters")] {
            let config = TargetGroupConfig { tags: tags(&[("ecsop.io/x", value)]), ..tg_config("tg-tagged") };
            assert_eq!(aws.create_target_group(&config).await.unwrap_err().kind, ErrorKind::Invalid, "{why}");
        }
    }

    #[tokio::test]
    async fn rule_priority_in_use_is_a_conflict() {
        let aws = FakeAws::new();
        let listener = aws.create_listener();
        let tg = aws.create_target_group(&tg_config("tg-a")).await.unwrap();
        let r1 = aws.create_rule(&rule_config(&listener, 10, &tg.arn)).await.unwrap();
        let err = aws.create_rule(&rule_config(&listener, 10, &tg.arn)).await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Conflict, Some("PriorityInUse")));

        let r2 = aws.create_rule(&rule_config(&listener, 20, &tg.arn)).await.unwrap();
        let err = aws.set_rule_priority(&r2.arn, 10).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        aws.set_rule_priority(&r1.arn, 10).await.unwrap(); // its own priority
        aws.set_rule_priority(&r2.arn, 5).await.unwrap();

        // A priority is per listener.
        let other = aws.create_listener();
        let tg_b = aws.create_target_group(&tg_config("tg-b")).await.unwrap();
        aws.create_rule(&rule_config(&other, 10, &tg_b.arn)).await.unwrap();

        let rules = aws.rules(&listener).await.unwrap();
        let priorities: Vec<Option<i32>> = rules.iter().map(|r| r.priority).collect();
        assert_eq!(priorities, [Some(5), Some(10), None], "by priority, the default rule last");
        assert!(rules[0].arn.starts_with(&listener.replace(":listener/", ":listener-rule/")));
    }

    #[tokio::test]
    async fn target_group_create_is_idempotent_with_the_same_settings_only() {
        let aws = FakeAws::new();
        let a = aws.create_target_group(&tg_config("prod-books-api-1")).await.unwrap();
        let re = Regex::new(
            r"^arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/prod-books-api-1/[0-9a-f]{16}$",
        )
        .unwrap();
        assert!(re.is_match(&a.arn), "{}", a.arn);
        let again = aws.create_target_group(&tg_config("prod-books-api-1")).await.unwrap();
        assert_eq!(again.arn, a.arn);
        assert_eq!(aws.target_groups().len(), 1);

        let mut different = tg_config("prod-books-api-1");
        different.port = 9090;
        let err = aws.create_target_group(&different).await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Conflict, Some("DuplicateTargetGroupName")));

        let err = aws.create_target_group(&tg_config("-bad")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(aws.target_group("prod-books-api-1").await.unwrap().map(|t| t.arn), Some(a.arn));
        assert!(aws.target_group("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_target_group_used_by_a_rule_cannot_be_deleted() {
        let aws = FakeAws::new();
        let listener = aws.create_listener();
        let tg = aws.create_target_group(&tg_config("tg-a")).await.unwrap();
        let rule = aws.create_rule(&rule_config(&listener, 1, &tg.arn)).await.unwrap();
        let lb = aws.load_balancer_of(&listener).unwrap();
        assert_eq!(aws.target_group("tg-a").await.unwrap().unwrap().load_balancer_arns, vec![lb]);

        let err = aws.delete_target_group(&tg.arn).await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Conflict, Some("ResourceInUse")));
        aws.delete_rule(&rule.arn).await.unwrap();
        aws.delete_rule(&rule.arn).await.unwrap(); // missing: success
        aws.delete_target_group(&tg.arn).await.unwrap();
        aws.delete_target_group(&tg.arn).await.unwrap();
        assert!(aws.target_groups().is_empty());
    }

    #[tokio::test]
    async fn target_group_attributes_and_tags() {
        let aws = FakeAws::new();
        let tg = aws
            .create_target_group(&TargetGroupConfig { tags: tags(&[("a", "1")]), ..tg_config("tg-a") })
            .await
            .unwrap();
        let attrs = BTreeMap::from([("deregistration_delay.timeout_seconds".to_string(), "30".to_string())]);
        aws.set_target_group_attributes(&tg.arn, &attrs).await.unwrap();
        let got = aws.target_group_attributes(&tg.arn).await.unwrap();
        assert_eq!(got["deregistration_delay.timeout_seconds"], "30");
        let unknown = BTreeMap::from([("no.such.key".to_string(), "1".to_string())]);
        assert_eq!(aws.set_target_group_attributes(&tg.arn, &unknown).await.unwrap_err().kind, ErrorKind::Invalid);

        aws.add_tags(&tg.arn, &tags(&[("b", "2")])).await.unwrap();
        aws.remove_tags(&tg.arn, &["a".into()]).await.unwrap();
        assert_eq!(Elbv2::tags(&aws, &tg.arn).await.unwrap(), tags(&[("b", "2")]));
        let missing = format!("{}x", tg.arn);
        assert_eq!(Elbv2::tags(&aws, &missing).await.unwrap_err().kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn fail_next_fires_once_and_fail_always_until_cleared() {
        let (aws, _, v2) = with_service().await;
        aws.fail_next("UpdateService", ErrorKind::AccessDenied);
        let err = aws.update_service(&update(Some(&v2), None)).await.unwrap_err();
        assert_eq!((err.kind, err.service, err.operation), (ErrorKind::AccessDenied, "ecs", "UpdateService"));
        assert_eq!(
            aws.service_snapshot("prod", "books-api").unwrap().deployments.len(),
            1,
            "a failed call changes nothing"
        );
        aws.update_service(&update(Some(&v2), None)).await.unwrap();

        // Qualified by service: Cloud Map's UpdateService is not ECS's.
        aws.fail_next("servicediscovery:UpdateService", ErrorKind::Throttled);
        aws.update_service(&update(None, Some(3))).await.unwrap();

        aws.fail_always("ecs:DescribeServices", ErrorKind::Throttled);
        for _ in 0..3 {
            assert_eq!(aws.service("prod", "books-api").await.unwrap_err().kind, ErrorKind::Throttled);
        }
        aws.clear_faults();
        assert!(aws.service("prod", "books-api").await.unwrap().is_some());

        aws.fail_times("DescribeRules", ErrorKind::Transient, 2);
        let listener = aws.create_listener();
        assert!(aws.rules(&listener).await.is_err());
        assert!(aws.rules(&listener).await.is_err());
        assert!(aws.rules(&listener).await.is_ok());
    }

    #[tokio::test]
    async fn fail_after_writes_lets_reads_and_n_writes_through() {
        let aws = FakeAws::new();
        aws.fail_after_writes(2, ErrorKind::Transient);
        aws.register_task_definition(&td("prod-a", "i"), &Tags::new()).await.unwrap();
        aws.list_task_definitions("prod-a").await.unwrap();
        aws.create_target_group(&tg_config("tg-a")).await.unwrap();
        aws.service("prod", "x").await.unwrap();
        let err = aws.register_task_definition(&td("prod-a", "i"), &Tags::new()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        aws.register_task_definition(&td("prod-a", "i"), &Tags::new()).await.unwrap();
        assert_eq!(aws.task_definitions("prod-a").len(), 2);

        aws.fail_next("ecr:*", ErrorKind::AccessDenied);
        aws.service("prod", "x").await.unwrap();
        assert_eq!(aws.repository(None, "r").await.unwrap_err().kind, ErrorKind::AccessDenied);
    }

    #[test]
    fn injected_faults_classify_back_to_their_kind() {
        let kinds = [
            ErrorKind::NotFound,
            ErrorKind::AccessDenied,
            ErrorKind::Throttled,
            ErrorKind::Invalid,
            ErrorKind::Conflict,
            ErrorKind::Transient,
            ErrorKind::Other,
        ];
        for service in [ECR, ECS, ELB, SD, AAS] {
            for kind in kinds {
                let e = injected(service, "Op", kind);
                assert_eq!(classify_code(e.code.as_deref().unwrap_or_default(), &e.message), kind, "{service} {kind}");
            }
        }
    }

    #[tokio::test]
    async fn the_call_log_names_operations_and_counts_reads_and_writes() {
        let aws = FakeAws::new();
        let listener = aws.create_listener(); // a test control: not logged
        let tg = aws.create_target_group(&tg_config("tg-a")).await.unwrap();
        aws.rules(&listener).await.unwrap();
        Elbv2::tags(&aws, &tg.arn).await.unwrap();
        aws.service("prod", "x").await.unwrap();
        aws.fail_next("RegisterTaskDefinition", ErrorKind::Throttled);
        let _ = aws.register_task_definition(&td("f", "i"), &Tags::new()).await;
        let ecr_repo = aws.repository(None, "books-api").await.unwrap();
        assert!(ecr_repo.is_none());

        let expected = [
            ("elbv2", "CreateTargetGroup"),
            ("elbv2", "DescribeRules"),
            ("elbv2", "DescribeTags"),
            ("ecs", "DescribeServices"),
            ("ecs", "RegisterTaskDefinition"),
            ("ecr", "DescribeRepositories"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(s, o)| (s.to_string(), o.to_string())).collect();
        assert_eq!(aws.calls(), expected);
        assert_eq!((aws.reads(), aws.writes()), (4, 2));
        assert_eq!((aws.count("DescribeRules"), aws.count("ecs:DescribeRules")), (1, 0));
        aws.clear_calls();
        assert_eq!((aws.calls().len(), aws.reads(), aws.writes()), (0, 0, 0));
    }

    #[tokio::test]
    async fn images_resolve_by_tag_and_digest() {
        let aws = FakeAws::new();
        let repo =
            aws.create_repository("books-api", true, TagMutability::Mutable, &tags(&[("o", "x")])).await.unwrap();
        assert_eq!(repo.uri, "123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api");
        assert_eq!(repo.arn, "arn:aws:ecr:us-east-1:123456789012:repository/books-api");
        let err = aws.create_repository("books-api", true, TagMutability::Mutable, &Tags::new()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);

        aws.push_image("books-api", "v1", "sha256:aa");
        aws.push_image("books-api", "latest", "sha256:aa");
        aws.push_image("books-api", "latest", "sha256:bb"); // mutable: the tag moves
        assert_eq!(aws.resolve_tag(None, "books-api", "v1").await.unwrap().as_deref(), Some("sha256:aa"));
        assert_eq!(aws.resolve_tag(None, "books-api", "latest").await.unwrap().as_deref(), Some("sha256:bb"));
        assert_eq!(aws.resolve_tag(None, "books-api", "v9").await.unwrap(), None);
        assert!(aws.digest_exists(None, "books-api", "sha256:aa").await.unwrap());
        assert!(!aws.digest_exists(None, "books-api", "sha256:cc").await.unwrap());
        assert_eq!(aws.resolve_tag(None, "nope", "v1").await.unwrap_err().kind, ErrorKind::NotFound);

        // Another account's registry.
        aws.push_image_to("210987654321", "shared/base", "v1", "sha256:dd");
        assert_eq!(
            aws.resolve_tag(Some("210987654321"), "shared/base", "v1").await.unwrap().as_deref(),
            Some("sha256:dd")
        );
        assert!(aws.repository(None, "shared/base").await.unwrap().is_none());

        aws.delete_repository("books-api").await.unwrap(); // forced: images go too
        aws.delete_repository("books-api").await.unwrap();
        assert!(aws.repository(None, "books-api").await.unwrap().is_none());
        assert!(aws.images("books-api").is_empty());
    }

    #[tokio::test]
    #[should_panic(expected = "ImageTagAlreadyExistsException")]
    async fn an_immutable_tag_cannot_move() {
        let aws = FakeAws::new();
        aws.create_repository("books-api", false, TagMutability::Immutable, &Tags::new()).await.unwrap();
        aws.push_image("books-api", "v1", "sha256:aa");
        aws.push_image("books-api", "v1", "sha256:bb");
    }

    #[tokio::test]
    async fn repository_settings_policy_and_tags() {
        let aws = FakeAws::new();
        let repo = aws.create_repository("books-api", false, TagMutability::Immutable, &Tags::new()).await.unwrap();
        aws.set_scan_on_push("books-api", true).await.unwrap();
        aws.set_tag_mutability("books-api", TagMutability::Mutable).await.unwrap();
        let got = aws.repository(None, "books-api").await.unwrap().unwrap();
        assert!(got.scan_on_push && got.tag_mutability == TagMutability::Mutable);
        assert_eq!(aws.lifecycle_policy("books-api").await.unwrap(), None);
        assert_eq!(aws.put_lifecycle_policy("books-api", "{}").await.unwrap_err().kind, ErrorKind::Invalid);
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
        aws.put_lifecycle_policy("books-api", policy).await.unwrap();
        assert_eq!(aws.lifecycle_policy("books-api").await.unwrap().as_deref(), Some(policy));
        Ecr::tag(&aws, &repo.arn, &tags(&[("a", "1"), ("b", "2")])).await.unwrap();
        Ecr::untag(&aws, &repo.arn, &["a".into()]).await.unwrap();
        assert_eq!(aws.repository_tags(&repo.arn).await.unwrap(), tags(&[("b", "2")]));
        assert_eq!(aws.set_scan_on_push("nope", true).await.unwrap_err().kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn autoscaling_needs_the_service_and_brings_desired_into_range() {
        let (aws, _, _) = with_service().await;
        let target = ScalableTarget { resource_id: "service/prod/books-api".into(), min_capacity: 3, max_capacity: 6 };
        let missing = ScalableTarget { resource_id: "service/prod/nope".into(), ..target.clone() };
        // AWS answers a missing service as it answers one it does not see yet ("ECS service doesn't
        // exist"): the engine sends it again a bounded number of times, then fails with it.
        assert_eq!(aws.register_scalable_target(&missing).await.unwrap_err().kind, ErrorKind::Propagating);
        aws.register_scalable_target(&target).await.unwrap();
        assert_eq!(aws.service_snapshot("prod", "books-api").unwrap().desired_count, 3);
        assert_eq!(aws.scale_to("prod", "books-api", 10).desired_count, 6);

        let policy = ScalingPolicy { name: "cpu".into(), metric: ScalingMetric::Cpu, target: 60.0 };
        aws.put_policy(&target.resource_id, &policy).await.unwrap();
        aws.put_policy(&target.resource_id, &ScalingPolicy { target: 70.0, ..policy.clone() }).await.unwrap();
        assert_eq!(aws.policies(&target.resource_id).await.unwrap().len(), 1);
        let bad_label = ScalingPolicy {
            name: "rps".into(),
            metric: ScalingMetric::RequestsPerTarget { resource_label: "nonsense".into() },
            target: 100.0,
        };
        assert_eq!(aws.put_policy(&target.resource_id, &bad_label).await.unwrap_err().kind, ErrorKind::Invalid);
        assert_eq!(aws.put_policy("service/prod/nope", &policy).await.unwrap_err().kind, ErrorKind::NotFound);
        aws.delete_policy(&target.resource_id, "cpu").await.unwrap();
        aws.delete_policy(&target.resource_id, "cpu").await.unwrap();
        aws.deregister_scalable_target(&target.resource_id).await.unwrap();
        aws.deregister_scalable_target(&target.resource_id).await.unwrap();
        assert!(aws.scalable_target(&target.resource_id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_cloud_map_service_with_running_tasks_cannot_be_deleted() {
        let (aws, _, v2) = with_service().await;
        let ns = aws.create_namespace("internal.local");
        assert_eq!(
            CloudMap::create_service(&aws, "ns-missing", "x", DnsRecordType::Srv, 10, &Tags::new())
                .await
                .unwrap_err()
                .kind,
            ErrorKind::NotFound
        );
        let sd = CloudMap::create_service(&aws, &ns, "books-api", DnsRecordType::Srv, 10, &Tags::new()).await.unwrap();
        assert!(sd.id.starts_with("srv-") && sd.arn.ends_with(&format!(":service/{}", sd.id)));
        let dup = CloudMap::create_service(&aws, &ns, "books-api", DnsRecordType::Srv, 10, &Tags::new()).await;
        assert_eq!(dup.unwrap_err().kind, ErrorKind::Conflict);
        assert_eq!(aws.find_service(&ns, "books-api").await.unwrap(), Some(sd.clone()));

        let mut u = update(Some(&v2), None);
        u.registries = Some(vec![Binding { arn: sd.arn.clone(), container: "api".into(), port: 8080, traffic: None }]);
        aws.update_service(&u).await.unwrap();
        aws.complete("prod", "books-api");
        assert_eq!(aws.instance_count(&sd.arn), 2);
        let err = CloudMap::delete_service(&aws, &sd.id).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);

        Ecs::delete_service(&aws, "prod", "books-api").await.unwrap();
        aws.update_ttl(&sd.id, DnsRecordType::Srv, 60).await.unwrap();
        assert_eq!(aws.discovery_services()[0].ttl_seconds, 60);
        CloudMap::delete_service(&aws, &sd.id).await.unwrap();
        CloudMap::delete_service(&aws, &sd.id).await.unwrap();
        assert!(aws.find_service(&ns, "books-api").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_clock_stamps_deployments_and_events() {
        let aws = FakeAws::new();
        let t0 = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        aws.set_now(t0);
        let v1 = aws.register_task_definition(&td("prod-books-api", "i@sha256:1"), &Tags::new()).await.unwrap();
        Ecs::create_service(&aws, &service_config(&v1.arn)).await.unwrap();
        aws.advance(chrono::Duration::minutes(5));
        let svc = aws.complete("prod", "books-api");
        assert_eq!(svc.deployments[0].created_at, Some(t0));
        assert_eq!(svc.deployments[0].updated_at, Some(t0 + chrono::Duration::minutes(5)));
        assert_eq!(svc.events[0].created_at, Some(aws.now()));
    }

    #[tokio::test]
    async fn clients_share_one_state() {
        let aws = FakeAws::new();
        let clients = aws.clients();
        clients.ecs.register_task_definition(&td("prod-a", "i"), &Tags::new()).await.unwrap();
        assert_eq!(aws.task_definitions("prod-a").len(), 1);
        assert_eq!(aws.count("ecs:RegisterTaskDefinition"), 1);
    }
}
