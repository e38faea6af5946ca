//! In-memory fakes of the five AWS adapters, for the engine's unit tests, property tests and benchmarks.
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

use super::error::classify_code;
use super::{
    Autoscaling, AwsError, AwsResult, Binding, Clients, CloudMap, Deployment, DiscoveryService, Ecr, Ecs, Elbv2,
    ErrorKind, NetworkSettings, Repository, Rule, RuleConfig, ScalableTarget, ScalingMetric, ScalingPolicy, Service,
    ServiceConfig, ServiceEvent, ServiceUpdate, Tags, TargetGroup, TargetGroupConfig, TargetGroupHealth,
    TaskDefinitionInfo,
};
use crate::api::{DnsRecordType, TagMutability};
use crate::engine::taskdef::TaskDefinition;

/// The account every fake resource lives in.
pub const ACCOUNT: &str = "123456789012";
/// The region every fake resource lives in.
pub const REGION: &str = "us-east-1";

const ECR: &str = "ecr";
const ECS: &str = "ecs";
const ELB: &str = "elbv2";
const SD: &str = "servicediscovery";
const AAS: &str = "application-autoscaling";

/// ECS keeps this many service events.
const MAX_EVENTS: usize = 100;
/// ELBv2's default quota of rules per listener (the default rule not counted).
const MAX_RULES: usize = 100;
/// ELBv2's quota of condition values per rule.
const MAX_CONDITION_VALUES: usize = 5;

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
    ecr: EcrState,
    ecs: EcsState,
    elb: ElbState,
    sd: SdState,
    aas: BTreeMap<String, AasTarget>,
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
    operation: String,
    kind: ErrorKind,
    /// `None`: every call.
    remaining: Option<u32>,
}

#[derive(Default)]
struct EcrState {
    /// By (registry id, name).
    repos: BTreeMap<(String, String), Repo>,
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
    let in_steps = |lo: u32, hi: u32, step: u32| mem >= lo && mem <= hi && (mem - lo) % step == 0;
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
        if !sd.services.values().any(|(s, _)| s.arn == r.arn) {
            return Err(aws_err(
                ECS,
                op,
                "InvalidParameterException",
                format!("The service registry {} does not exist.", r.arn),
            ));
        }
    }
    Ok(())
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
            let idx = st.faults.iter().position(|f| {
                f.operation == operation
                    && f.service.as_deref().is_none_or(|s| s == service)
                    && f.remaining.is_none_or(|n| n > 0)
            });
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

    /// Make every call wait `latency` (a tokio sleep, outside the lock) before it is answered; `None`
    /// answers at once. For benchmarks of concurrency and batching.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    // -- faults --

    /// Make the next call of `operation` fail with `kind`. `operation` is the AWS operation name
    /// (`"UpdateService"`), matching it in every service, or `service:operation` (`"ecs:UpdateService"`,
    /// `"servicediscovery:UpdateService"`) for one service. Several `fail_next` of one operation fail
    /// that many calls. The failed call is logged and changes nothing.
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

    fn add_fault(&self, operation: &str, kind: ErrorKind, remaining: Option<u32>) {
        let (service, operation) = match operation.split_once(':') {
            Some((s, o)) => (Some(s.to_string()), o.to_string()),
            None => (None, operation.to_string()),
        };
        self.lock().faults.push(Fault { service, operation, kind, remaining });
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

    /// Read calls so far: operations starting with `Describe`, `List` or `Get`.
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
        (out, svc.clone())
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
    /// reached a steady state.". Returns the service. Panics if the service is missing or deleted.
    pub fn complete(&self, cluster: &str, service: &str) -> Service {
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
    /// (IN_PROGRESS, no tasks running yet), the service's task definition is set back to it, the failed
    /// deployment stays as ACTIVE, and the event "rolling back to deployment <new id>." is written.
    /// Returns the service. Panics if the service is missing or deleted, or has no earlier deployment.
    pub fn rollback(&self, cluster: &str, service: &str, reason: &str) -> Service {
        self.drive(cluster, service, |ids, svc| {
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
        })
        .1
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
        let rule = Rule { arn: default.clone(), priority: None, hosts: vec![], paths: vec![], target_groups: vec![] };
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
        st.sd.services.values().find(|(s, _)| s.arn == arn).map(|(_, t)| t.clone())
    }
}

fn is_read(operation: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|p| operation.starts_with(p))
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
}

// ---- ECS --------------------------------------------------------------------------------------------

#[async_trait]
impl Ecs for FakeAws {
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>> {
        self.call(ECS, "DescribeServices").await?;
        let st = self.lock();
        Ok(st.ecs.services.get(&service_key(cluster, name)).filter(|s| s.status != "INACTIVE").cloned())
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
        let mut st = self.lock();
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
        let load_balancers: Vec<Binding> = config.load_balancer.iter().cloned().collect();
        let registries: Vec<Binding> = config.registry.iter().cloned().collect();
        check_grace(OP, config.health_check_grace_period_seconds, &load_balancers)?;
        check_bindings(OP, elb, sd, &rev.definition, &load_balancers, &registries)?;
        let task_definition = rev.info.arn.clone();
        let (cluster, name) = key.clone();
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
            health_check_grace_period_seconds: config.health_check_grace_period_seconds,
            tags: config.tags.clone(),
        };
        start_deployment(ids, &mut svc, &task_definition);
        ecs.services.insert(key, svc.clone());
        Ok(svc)
    }

    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service> {
        const OP: &str = "UpdateService";
        self.call(ECS, OP).await?;
        let mut st = self.lock();
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
        let task_definition = rev.info.arn.clone();

        let svc = ecs.services.get_mut(&key).unwrap_or_else(|| unreachable!("checked above"));
        // ECS starts a new deployment when what the tasks run or where they are placed changes.
        let redeploy = task_definition != svc.task_definition
            || update.network.as_ref().is_some_and(|n| *n != svc.network)
            || load_balancers != svc.load_balancers
            || registries != svc.registries;
        if let Some(network) = &update.network {
            svc.network = network.clone();
        }
        if let Some(settings) = update.deployment {
            svc.deployment = Some(settings);
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
        Ok(svc.clone())
    }

    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()> {
        self.call(ECS, "DeleteService").await?;
        let mut st = self.lock();
        if let Some(svc) = st.ecs.services.get_mut(&service_key(cluster, name)) {
            svc.status = "INACTIVE".into();
            svc.desired_count = 0;
            for d in &mut svc.deployments {
                d.desired_count = 0;
                d.running_count = 0;
                d.pending_count = 0;
            }
            recount(svc);
        }
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.call(ECS, "TagResource").await?;
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
        elb.check_association(OP, listener, &config.target_group_arn)?;
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
            target_groups: vec![config.target_group_arn.clone()],
        };
        elb.rules.insert(arn, RuleState { listener: listener.clone(), rule: rule.clone(), tags: config.tags.clone() });
        Ok(rule)
    }

    async fn modify_rule(
        &self,
        arn: &str,
        hosts: &[String],
        paths: &[String],
        target_group_arn: &str,
    ) -> AwsResult<()> {
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
        elb.check_association(OP, &listener, target_group_arn)?;
        let rule = &mut elb.rules.get_mut(arn).unwrap_or_else(|| unreachable!("checked above")).rule;
        rule.hosts = hosts.to_vec();
        rule.paths = paths.to_vec();
        rule.target_groups = vec![target_group_arn.to_string()];
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
