//! The engine end to end against the in-memory AWS fakes: the whole lifecycle, convergence after a
//! crash at every write, and the property that an applied spec plans zero writes.

use chrono::Utc;
use ecsop::api::ApiDeployment;
use ecsop::aws::ErrorKind;
use ecsop::engine::act::Quiet;
use ecsop::engine::target::Target;
use ecsop::engine::vocabulary::Phase;
use ecsop::engine::{Engine, Options, Reconciled};
use ecsop_testkit::fake::FakeAws;
use proptest::prelude::*;

const CLUSTER: &str = "api-cluster";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The full-featured manifest, pointed at the fake's listener and Cloud Map namespace.
fn resource(fake: &FakeAws, listener: &str, namespace: &str) -> ApiDeployment {
    let _ = fake;
    let text = include_str!("valid.yaml")
        .replace(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
            listener,
        )
        .replace("ns-abcdefgh12345678", namespace);
    let value: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
    ecsop::api::validate_object(&value).unwrap_or_else(|e| panic!("{e:?}"))
}

struct World {
    fake: FakeAws,
    engine: Engine,
    resource: ApiDeployment,
}

impl World {
    fn new() -> World {
        let fake = FakeAws::new();
        let listener = fake.create_listener();
        let namespace = fake.create_namespace("svc.local");
        let resource = resource(&fake, &listener, &namespace);
        let engine = Engine::new(fake.clients(), "us-east-1");
        World { fake, engine, resource }
    }

    fn target(&self) -> Target {
        self.engine.target(&self.resource)
    }

    async fn reconcile(&self) -> Result<Reconciled, ecsop::aws::AwsError> {
        self.engine.reconcile(&self.target(), Options::default(), &Quiet, Utc::now()).await
    }

    /// From an empty account to Ready: repository first, then the image, then the rollout.
    async fn deploy(&self) -> Reconciled {
        let first = self.reconcile().await.expect("first reconcile");
        assert_eq!(first.report.reason, "ImageNotFound", "{:?}", first.report);
        self.fake.push_image("books-api", "1.4.2", &digest(1));
        let created = self.reconcile().await.expect("create");
        assert_eq!(created.report.phase, Phase::Progressing);
        self.fake.complete(CLUSTER, "books-api");
        let ready = self.reconcile().await.expect("after completion");
        assert_eq!(ready.report.phase, Phase::Ready, "{:?}", ready.report);
        ready
    }

    /// The write operations the fake received since its call log was cleared, in order.
    fn writes_in_order(&self) -> Vec<String> {
        let calls = self.fake.calls().into_iter().map(|(_, op)| op);
        calls.filter(|op| !op.starts_with("Describe") && !op.starts_with("List") && !op.starts_with("Get")).collect()
    }

    fn active_revisions(&self) -> usize {
        self.fake.task_definitions("prod-books-api").iter().filter(|t| t.status == "ACTIVE").count()
    }
}

#[tokio::test]
async fn the_whole_lifecycle_creates_rolls_out_and_then_writes_nothing() {
    let w = World::new();
    let ready = w.deploy().await;
    assert!(ready.plan.actions.is_empty(), "{:?}", ready.plan.actions);

    // In sync: zero writes.
    w.fake.clear_calls();
    let again = w.reconcile().await.expect("again");
    assert_eq!(again.report.phase, Phase::Ready);
    assert_eq!(w.fake.writes(), 0, "{:?}", w.fake.calls());

    // Everything exists once, owned.
    assert_eq!(w.fake.target_groups().len(), 1);
    assert_eq!(w.fake.discovery_services().len(), 1);
    assert_eq!(w.fake.scalable_targets().len(), 1);
    assert_eq!(w.active_revisions(), 1);
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert_eq!(service.tags.get("ecsop.io/owner").map(String::as_str), Some("prod/books-api"));

    // A new image: one revision, one service update, then Ready again.
    let mut w2 = w;
    w2.fake.push_image("books-api", "1.5.0", &digest(2));
    w2.resource.spec.image.tag = Some("1.5.0".into());
    w2.fake.clear_calls();
    let rolling = w2.reconcile().await.expect("roll");
    assert_eq!(w2.fake.count("RegisterTaskDefinition"), 1);
    assert_eq!(w2.fake.count("UpdateService"), 1);
    assert_eq!(rolling.report.reason, "RolloutStarted");
    w2.fake.complete(CLUSTER, "books-api");
    assert_eq!(w2.reconcile().await.expect("done").report.phase, Phase::Ready);
    assert_eq!(w2.active_revisions(), 2);
}

#[tokio::test]
async fn a_crash_after_any_write_converges_without_duplicates() {
    // How many writes a clean deployment makes (after the image exists).
    let clean = World::new();
    clean.reconcile().await.expect("repository");
    clean.fake.push_image("books-api", "1.4.2", &digest(1));
    clean.fake.clear_calls();
    clean.reconcile().await.expect("create");
    let total = u32::try_from(clean.fake.writes()).expect("count");
    assert!(total >= 8, "a full deployment makes many writes, got {total}");

    for crash_after in 0..total {
        let w = World::new();
        w.reconcile().await.expect("repository");
        w.fake.push_image("books-api", "1.4.2", &digest(1));
        // The run dies at the write after `crash_after` (not a transient failure, which the actor
        // rides out since lost answers are looked for and repeated).
        w.fake.fail_after_writes(crash_after, ErrorKind::Other);
        assert!(w.reconcile().await.is_err(), "the run after write {crash_after} must fail");
        w.fake.clear_faults();
        w.reconcile().await.unwrap_or_else(|e| panic!("resume after write {crash_after}: {e}"));
        w.fake.complete(CLUSTER, "books-api");
        let done = w.reconcile().await.expect("converged");
        assert_eq!(done.report.phase, Phase::Ready, "after crash at write {crash_after}: {:?}", done.report);
        assert_eq!(w.fake.target_groups().len(), 1, "crash at write {crash_after}");
        assert_eq!(w.fake.discovery_services().len(), 1, "crash at write {crash_after}");
        assert_eq!(w.active_revisions(), 1, "crash at write {crash_after}");
        let rules = w.fake.listener_rules(&w.resource.spec.load_balancer.as_ref().expect("lb").listener_arn);
        assert_eq!(rules.iter().filter(|r| r.priority == Some(10)).count(), 1, "crash at write {crash_after}");
        w.fake.clear_calls();
        w.reconcile().await.expect("steady");
        assert_eq!(w.fake.writes(), 0, "crash at write {crash_after}: {:?}", w.fake.calls());
    }
}

#[tokio::test]
async fn delete_removes_everything_in_order_and_retain_only_untags() {
    let w = World::new();
    w.deploy().await;
    w.fake.clear_calls();
    w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("delete");
    let writes = w.writes_in_order();
    let pos = |op: &str| writes.iter().position(|w| w == op).unwrap_or_else(|| panic!("{op} in {writes:?}"));
    assert!(pos("DeleteRule") < pos("DeleteService"), "{writes:?}");
    assert!(pos("DeleteService") < pos("DeleteTargetGroup"), "{writes:?}");
    assert!(pos("DeleteTargetGroup") < pos("DeleteRepository"), "{writes:?}");
    assert!(w.fake.target_groups().is_empty());
    assert!(w.fake.discovery_services().is_empty());
    assert_eq!(w.active_revisions(), 0);
    assert!(w.fake.repositories().is_empty());
    // Again: nothing left, nothing written.
    w.fake.clear_calls();
    let actions = w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("again");
    assert!(actions.is_empty(), "{actions:?}");

    let mut r = World::new();
    r.resource.spec.deletion_policy = ecsop::api::DeletionPolicy::Retain;
    r.deploy().await;
    r.engine.delete(&r.target(), Options::default(), &Quiet).await.expect("retain");
    let service = r.fake.service_snapshot(CLUSTER, "books-api").expect("still there");
    assert_eq!(service.status, "ACTIVE");
    assert!(!service.tags.contains_key("ecsop.io/owner"), "{:?}", service.tags);
    let tg = &r.fake.target_groups()[0];
    assert!(!r.fake.tags_of(&tg.arn).unwrap_or_default().contains_key("ecsop.io/owner"));
    assert_eq!(r.active_revisions(), 1);
}

#[tokio::test]
async fn a_rollback_is_reported_and_never_retried_on_resync() {
    let mut w = World::new();
    w.deploy().await;
    w.fake.push_image("books-api", "2.0.0", &digest(3));
    w.resource.spec.image.tag = Some("2.0.0".into());
    w.reconcile().await.expect("roll");
    w.fake.rollback(CLUSTER, "books-api", "Essential container in task exited");
    let seen = w.reconcile().await.expect("observe rollback");
    assert_eq!((seen.report.phase, seen.report.reason.as_str()), (Phase::Stalled, "RolledBack"));
    // The old deployment completes and the failed one drains away: still RolledBack, no retry.
    w.fake.complete(CLUSTER, "books-api");
    w.fake.clear_calls();
    let later = w.reconcile().await.expect("resync");
    assert_eq!(later.report.reason, "RolledBack", "{:?}", later.report);
    assert_eq!(w.fake.count("UpdateService"), 0, "{:?}", w.fake.calls());
}

fn sizes() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![Just((256, 512)), Just((256, 2048)), Just((512, 1024)), Just((1024, 4096)), Just((2048, 8192))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the spec, once applied and rolled out, the next reconcile writes nothing and is Ready;
    /// and after changing it, one more round converges the same way.
    #[test]
    fn an_applied_spec_plans_no_writes(
        (cpu, memory) in sizes(),
        replicas in 2..6i32,
        env in proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", "[a-z0-9]{0,12}", 0..4),
        path in "/[a-z]{1,10}",
        (cpu2, memory2) in sizes(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut w = World::new();
            w.resource.spec.container.cpu = cpu;
            w.resource.spec.container.memory = memory;
            w.resource.spec.container.env = env.clone();
            w.resource.spec.container.env.insert("RUST_LOG".into(), "info".into());
            w.resource.spec.service.replicas = replicas;
            if let Some(lb) = w.resource.spec.load_balancer.as_mut() {
                lb.health_check.path = path.clone();
            }
            w.deploy().await;
            w.fake.clear_calls();
            let steady = w.reconcile().await.expect("steady");
            assert_eq!(steady.report.phase, Phase::Ready);
            assert_eq!(w.fake.writes(), 0, "{:?}", w.fake.calls());

            w.resource.spec.container.cpu = cpu2;
            w.resource.spec.container.memory = memory2;
            w.resource.spec.container.env.insert("CHANGED".into(), "yes".into());
            w.reconcile().await.expect("change");
            w.fake.complete(CLUSTER, "books-api");
            w.reconcile().await.expect("settle");
            w.fake.clear_calls();
            let after = w.reconcile().await.expect("steady again");
            assert_eq!(after.report.phase, Phase::Ready, "{:?}", after.report);
            assert_eq!(w.fake.writes(), 0, "{:?}", w.fake.calls());
        });
    }
}

#[tokio::test]
async fn dropping_the_load_balancer_removes_the_rule_and_target_group_instead_of_orphaning_them() {
    let mut w = World::new();
    // Request-count autoscaling needs the load balancer; keep CPU only.
    w.resource.spec.service.autoscaling.as_mut().expect("autoscaling").target_requests_per_target = None;
    w.deploy().await;
    let listener = w.resource.spec.load_balancer.as_ref().expect("lb").listener_arn.clone();
    assert_eq!(w.fake.target_groups().len(), 1);
    w.resource.spec.load_balancer = None;
    w.fake.clear_calls();
    w.reconcile().await.expect("drop the load balancer");
    let ops: Vec<String> = w.fake.calls().into_iter().map(|(_, op)| op).collect();
    let pos = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("{op} in {ops:?}"));
    assert!(pos("DeleteRule") < pos("UpdateService") && pos("UpdateService") < pos("DeleteTargetGroup"), "{ops:?}");
    assert!(w.fake.target_groups().is_empty());
    assert!(w.fake.listener_rules(&listener).iter().all(|r| r.priority.is_none()), "only the default rule is left");
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(service.load_balancers.is_empty());
    w.fake.complete(CLUSTER, "books-api");
    w.reconcile().await.expect("settle");
    w.fake.clear_calls();
    let steady = w.reconcile().await.expect("steady");
    assert_eq!(steady.report.phase, Phase::Ready, "{:?}", steady.report);
    assert_eq!(w.fake.writes(), 0, "{:?}", w.fake.calls());
}

/// The valid manifest plus every reference-architecture piece: an HTTPS redirect from a second listener,
/// alarms, the API Gateway wiring with an authorizer, a scan gate and a promotion tag.
fn full_world() -> (World, String, String) {
    let mut w = World::new();
    let http_listener = w.fake.create_listener();
    let api = w.fake.create_http_api();
    let mut value = serde_json::to_value(&w.resource).expect("json");
    let spec = &mut value["spec"];
    spec["ecr"]["tagMutability"] = "MUTABLE".into();
    spec["image"]["scanGate"] = serde_json::json!({"failOnSeverity": "HIGH"});
    spec["image"]["promotionTag"] = "prod-current".into();
    spec["loadBalancer"]["httpsRedirect"] = serde_json::json!({"listenerArn": http_listener});
    spec["alarms"] = serde_json::json!({
        "snsTopicArns": ["arn:aws:sns:us-east-1:123456789012:alerts"],
        "cpuHighPercent": 80, "memoryHighPercent": 85, "noRunningTasks": true
    });
    spec["apiGateway"] = serde_json::json!({
        "apiId": api, "vpcLinkId": "vl0a1b2c",
        "routes": [{"key": "ANY /books/{proxy+}"}, {"key": "POST /auth/login", "public": true}],
        "authorizer": {"issuer": "https://auth.example.com", "audience": ["books"]}
    });
    w.resource = ecsop::api::validate_object(&value).unwrap_or_else(|e| panic!("{e:?}"));
    (w, http_listener, api)
}

#[tokio::test]
async fn every_reference_piece_is_created_kept_in_sync_and_torn_down_in_order() {
    let (w, http_listener, api) = full_world();
    w.deploy().await;
    // What completed rollouts leave: the promotion tag on the deployed image.
    let promoted = w.reconcile().await.expect("promote");
    assert_eq!(promoted.report.phase, Phase::Ready, "{:?}", promoted.report);
    assert!(w.fake.images("books-api")[&digest(1)].contains("prod-current"));

    let (integrations, routes, authorizers) = w.fake.http_api(&api);
    assert_eq!((integrations.len(), routes.len(), authorizers.len()), (1, 2, 1));
    let login = routes.iter().find(|r| r.key == "POST /auth/login").expect("login route");
    assert_eq!(login.authorizer_id, None, "public routes skip the authorizer");
    let books = routes.iter().find(|r| r.key == "ANY /books/{proxy+}").expect("books route");
    assert_eq!(books.authorizer_id.as_deref(), Some(authorizers[0].id.as_str()));
    assert_eq!(w.fake.alarms_snapshot().len(), 3);
    let redirect = w.fake.listener_rules(&http_listener);
    assert!(redirect.iter().any(|r| r.redirect.is_some()), "{redirect:?}");
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert_eq!(service.alarms.map(|a| a.names.len()), Some(3));

    // In sync: nothing to write, deep or not.
    for deep in [false, true] {
        w.fake.clear_calls();
        let again = w.engine.reconcile(&w.target(), Options { deep, ..Default::default() }, &Quiet, Utc::now()).await;
        let again = again.expect("again");
        assert!(again.plan.actions.is_empty(), "deep={deep}: {:?}", again.plan.actions);
        assert_eq!(w.fake.writes(), 0);
    }

    w.fake.clear_calls();
    w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("delete");
    let writes = w.writes_in_order();
    let pos = |op: &str| writes.iter().position(|w| w == op).unwrap_or_else(|| panic!("{op} in {writes:?}"));
    let last = |op: &str| writes.iter().rposition(|w| w == op).unwrap_or_else(|| panic!("{op} in {writes:?}"));
    assert!(last("DeleteRoute") < pos("DeleteAuthorizer"), "{writes:?}");
    assert!(pos("DeleteAuthorizer") < pos("DeleteIntegration"), "{writes:?}");
    // ECS's DeleteService comes first, Cloud Map's (same operation name) last.
    assert!(pos("DeleteIntegration") < pos("DeleteService"), "{writes:?}");
    assert!(pos("DeleteIntegration") < last("DeleteService"), "routes and integration before Cloud Map: {writes:?}");
    assert!(last("DeleteRule") < pos("DeleteService"), "the forward and redirect rules go first: {writes:?}");
    assert!(pos("DeleteAlarms") < pos("DeleteService"), "alarms before the service: {writes:?}");
    let (integrations, routes, authorizers) = w.fake.http_api(&api);
    assert!(integrations.is_empty() && routes.is_empty() && authorizers.is_empty());
    assert!(w.fake.alarms_snapshot().is_empty());
    assert!(w.fake.listener_rules(&http_listener).iter().all(|r| r.priority.is_none()));
}

#[tokio::test]
async fn the_scan_gate_refuses_an_image_with_findings_and_waits_for_a_running_scan() {
    let (w, _, _) = full_world();
    w.deploy().await;
    let mut next = w.resource.clone();
    next.spec.image.tag = Some("1.5.0".into());
    let target = w.engine.target(&next);
    w.fake.push_image("books-api", "1.5.0", &digest(2));
    w.fake.set_scan("books-api", &digest(2), ecsop::aws::ImageScan::InProgress);
    let r = w.engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("waits");
    assert_eq!((r.report.phase, r.report.reason.as_str()), (Phase::Progressing, "ImageScanInProgress"));
    let counts = std::collections::BTreeMap::from([("HIGH".to_string(), 2), ("MEDIUM".to_string(), 7)]);
    w.fake.set_scan("books-api", &digest(2), ecsop::aws::ImageScan::Complete(counts));
    let r = w.engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("refused");
    assert_eq!((r.report.phase, r.report.reason.as_str()), (Phase::Stalled, "ImageRejected"));
    assert!(r.report.message.contains("2 findings at HIGH or above (HIGH 2)"), "{}", r.report.message);
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(service.task_definition.ends_with(":1"), "the service keeps its revision: {}", service.task_definition);
}

#[tokio::test]
async fn dropping_the_redirect_and_the_api_gateway_removes_them_once() {
    let (mut w, http_listener, api) = full_world();
    w.deploy().await;
    w.reconcile().await.expect("promote");
    let spec = &mut w.resource.spec;
    spec.api_gateway = None;
    spec.load_balancer.as_mut().expect("lb").https_redirect = None;
    let dropped = w.reconcile().await.expect("drop");
    assert!(!dropped.plan.actions.is_empty());
    let (integrations, routes, authorizers) = w.fake.http_api(&api);
    assert!(integrations.is_empty() && routes.is_empty() && authorizers.is_empty());
    assert!(w.fake.listener_rules(&http_listener).iter().all(|r| r.priority.is_none()));
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(!service.tags.contains_key("ecsop.io/redirect-rule"), "{:?}", service.tags);
    assert!(!service.tags.contains_key("ecsop.io/api"), "{:?}", service.tags);
    for deep in [false, true] {
        w.fake.clear_calls();
        let again = w.engine.reconcile(&w.target(), Options { deep, ..Default::default() }, &Quiet, Utc::now()).await;
        assert!(again.expect("again").plan.actions.is_empty(), "deep={deep}");
        assert_eq!(w.fake.writes(), 0);
    }
}

#[tokio::test]
async fn dropping_service_discovery_deletes_the_cloud_map_service_once_its_tasks_are_gone() {
    let mut w = World::new();
    w.deploy().await;
    assert_eq!(w.fake.discovery_services().len(), 1);
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(service.tags.contains_key("ecsop.io/discovery-namespace"), "{:?}", service.tags);

    // The service stops registering; the old tasks are still registered, so the Cloud Map service stays.
    w.resource.spec.service.service_discovery = None;
    w.reconcile().await.expect("unbind");
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(service.registries.is_empty());
    assert_eq!(w.fake.discovery_services().len(), 1);
    w.fake.clear_calls();
    w.reconcile().await.expect("still rolling");
    assert_eq!(w.fake.count("DeleteService"), 0, "{:?}", w.fake.calls());
    assert_eq!(w.fake.discovery_services().len(), 1);

    // Once the rollout finished, it goes, and the service forgets it.
    w.fake.complete(CLUSTER, "books-api");
    w.reconcile().await.expect("after the rollout");
    assert!(w.fake.discovery_services().is_empty());
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(!service.tags.contains_key("ecsop.io/discovery-namespace"), "{:?}", service.tags);
    for deep in [false, true] {
        w.fake.clear_calls();
        let again = w.engine.reconcile(&w.target(), Options { deep, ..Default::default() }, &Quiet, Utc::now()).await;
        let again = again.expect("again");
        assert_eq!(again.report.phase, Phase::Ready, "deep={deep}: {:?}", again.report);
        assert!(again.plan.actions.is_empty(), "deep={deep}: {:?}", again.plan.actions);
        assert_eq!(w.fake.writes(), 0);
    }
}

#[tokio::test]
async fn deleting_while_a_dropped_cloud_map_service_drains_removes_it_too() {
    let mut w = World::new();
    w.deploy().await;
    w.resource.spec.service.service_discovery = None;
    w.reconcile().await.expect("unbind");
    assert_eq!(w.fake.discovery_services().len(), 1);
    w.fake.clear_calls();
    w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("delete");
    assert!(w.fake.discovery_services().is_empty());
    // The ECS service (and with it its tasks' registrations) first, then the Cloud Map service.
    let calls = w.fake.calls();
    let pos = |service: &str| {
        calls.iter().position(|(s, op)| s == service && op == "DeleteService").unwrap_or_else(|| panic!("{calls:?}"))
    };
    assert!(pos("ecs") < pos("servicediscovery"), "{calls:?}");
}

#[tokio::test]
async fn writes_refused_until_aws_catches_up_are_sent_again_within_the_same_apply() {
    let w = World::new();
    // AWS's eventual consistency: the service is invisible to Application Auto Scaling, and the
    // target group's load balancer to ECS, for a moment after each was made.
    w.fake.set_propagation_delay(Some(std::time::Duration::from_millis(600)));
    let first = w.reconcile().await.expect("first reconcile");
    assert_eq!(first.report.reason, "ImageNotFound", "{:?}", first.report);
    w.fake.push_image("books-api", "1.4.2", &digest(1));
    w.fake.clear_calls();

    let created = w.reconcile().await.expect("the create rides out both races in one apply");
    assert_eq!(created.report.phase, Phase::Progressing, "{:?}", created.report);
    let refused = |op: &str| w.fake.calls().iter().filter(|(s, o)| format!("{s}:{o}") == op).count();
    assert!(refused("ecs:CreateService") >= 2, "ECS refused the service first: {:?}", w.fake.calls());
    assert!(
        refused("application-autoscaling:RegisterScalableTarget") >= 2,
        "Application Auto Scaling did not see the service at first: {:?}",
        w.fake.calls()
    );
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert_eq!(service.load_balancers.len(), 1);
    assert_eq!(w.fake.scalable_targets().len(), 1);
    assert_eq!(w.active_revisions(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_for_eventual_consistency_that_never_ends_fails_the_apply_after_bounded_retries() {
    let w = World::new();
    w.deploy().await;
    w.fake.clear_calls();
    w.fake.fail_always("ecs:UpdateService", ErrorKind::Propagating);
    let mut changed = w.resource.clone();
    changed.spec.service.replicas = 3;
    changed.spec.service.autoscaling = None;
    let target = w.engine.target(&changed);
    let err = w.engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect_err("gives up");
    assert_eq!(err.kind, ErrorKind::Propagating, "{err}");
    let attempts = w.fake.calls().iter().filter(|(s, o)| *s == "ecs" && *o == "UpdateService").count();
    assert_eq!(attempts, 8, "one attempt and seven repetitions");
}

#[tokio::test]
async fn cloud_map_a_records_bind_the_registry_alone_and_stay_in_sync() {
    let mut w = World::new();
    let sd = w.resource.spec.service.service_discovery.as_mut().expect("valid.yaml has Cloud Map");
    sd.dns_record_type = ecsop::api::DnsRecordType::A;
    // ECS refuses a containerPort of 0, which is what an A-record binding used to carry.
    w.deploy().await;
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert_eq!(service.registries.len(), 1, "{service:?}");
    assert_eq!((service.registries[0].container.as_str(), service.registries[0].port), ("", 0));
    w.fake.clear_calls();
    let steady =
        w.engine.reconcile(&w.target(), Options { deep: true, ..Default::default() }, &Quiet, Utc::now()).await;
    assert_eq!(steady.expect("steady").plan.actions, Vec::new(), "in sync: {:?}", w.fake.calls());
}

#[tokio::test]
async fn a_record_too_long_for_a_tag_is_kept_as_a_hash_and_the_deployment_still_settles() {
    let mut w = World::new();
    // 245 characters: within ECR's 256, but `<registry>/<name>@<digest>` is over AWS's 256 per tag value.
    let repository = format!("team/{}", "x".repeat(240));
    w.resource.spec.image.repository = repository.clone();
    w.reconcile().await.expect("repository");
    w.fake.push_image(&repository, "1.4.2", &digest(1));
    let created = w.reconcile().await.expect("the service is created and its record written");
    assert_eq!(created.report.phase, Phase::Progressing, "{:?}", created.report);
    w.fake.complete(CLUSTER, "books-api");
    let ready = w.reconcile().await.expect("ready");
    assert_eq!(ready.report.phase, Phase::Ready, "{:?}", ready.report);

    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    let image = service.tags.get("ecsop.io/image").expect("recorded");
    assert!(image.starts_with("sha256:") && image.len() <= 256, "{image}");
    // The record cannot be read back, so resyncs read more, but they still write nothing.
    w.fake.clear_calls();
    let steady = w.reconcile().await.expect("steady");
    assert_eq!(steady.plan.actions, Vec::new(), "{:?}", w.fake.calls());
    assert_eq!(steady.report.phase, Phase::Ready);
}

#[tokio::test]
async fn delete_waits_for_a_draining_service_before_removing_its_target_group() {
    let w = World::new();
    w.deploy().await;
    // ECS keeps a deleted service DRAINING while its tasks stop; its target group is in use until then.
    w.fake.set_drain_reads(3);
    w.fake.clear_calls();
    let wait = ecsop::engine::act::WaitSettings {
        timeout: std::time::Duration::from_secs(5),
        interval: std::time::Duration::from_millis(5),
    };
    let options = Options { deep: true, wait, ..Default::default() };
    w.engine.delete(&w.target(), options, &Quiet).await.expect("delete waits out the drain");
    assert!(w.fake.target_groups().is_empty(), "the target group went once the service was gone");
    let calls = w.fake.calls();
    let deleted = calls.iter().position(|(s, o)| *s == "ecs" && o == "DeleteService").expect("DeleteService");
    let tg = calls.iter().position(|(_, o)| o == "DeleteTargetGroup").expect("DeleteTargetGroup");
    let polls = calls[deleted..tg].iter().filter(|(s, o)| *s == "ecs" && o == "DescribeServices").count();
    assert_eq!(polls, 4, "three reads saw it DRAINING, the fourth saw it gone: {calls:?}");

    // Without the wait, the target group could not go: the double refuses it as AWS does.
    let w = World::new();
    w.deploy().await;
    w.fake.set_drain_reads(3);
    let clients = w.fake.clients();
    clients.ecs.delete_service(CLUSTER, "books-api").await.expect("delete service");
    let tg = w.fake.target_groups().pop().expect("target group");
    let rules = w.fake.listener_rules(&w.resource.spec.load_balancer.as_ref().expect("lb").listener_arn);
    for r in rules.iter().filter(|r| r.priority.is_some()) {
        clients.elbv2.delete_rule(&r.arn).await.expect("rule");
    }
    let err = clients.elbv2.delete_target_group(&tg.arn).await.expect_err("in use while draining");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
}

#[tokio::test]
async fn a_rollback_missed_while_nobody_looked_is_recognised_from_ecs_deployment_record() {
    let mut w = World::new();
    w.deploy().await;
    w.fake.push_image("books-api", "2.0.0", &digest(3));
    w.resource.spec.image.tag = Some("2.0.0".into());
    let rolled = w.reconcile().await.expect("roll");
    let bad = rolled.revision.clone().expect("the new revision");
    // The circuit breaker rolls back and the rollback completes while no reconcile looks (a long
    // poll, a controller restart): the failed deployment has left DescribeServices.
    w.fake.rollback(CLUSTER, "books-api", "Essential container in task exited");
    w.fake.complete(CLUSTER, "books-api");
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert!(service.deployments.iter().all(|d| d.task_definition != bad), "{service:?}");
    assert!(!service.tags.contains_key("ecsop.io/failed-revision"), "nothing recorded the failure");

    w.fake.clear_calls();
    let seen = w.reconcile().await.expect("observe");
    assert_eq!((seen.report.phase, seen.report.reason.as_str()), (Phase::Stalled, "RolledBack"), "{:?}", seen.report);
    // Ten more reconciles, fast and deep, each by a new engine as after a controller restart: the bad
    // revision is never sent to the service again.
    for i in 0..10 {
        let engine = Engine::new(w.fake.clients(), "us-east-1");
        let options = Options { deep: i % 2 == 1, ..Default::default() };
        let r = engine.reconcile(&engine.target(&w.resource), options, &Quiet, Utc::now()).await.expect("resync");
        assert_eq!(r.report.reason, "RolledBack", "reconcile {i}: {:?}", r.report);
    }
    assert_eq!(w.fake.count("UpdateService"), 0, "{:?}", w.fake.calls());
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    assert_ne!(service.task_definition, bad);
    assert_eq!(service.tags.get("ecsop.io/failed-revision"), Some(&bad), "recorded once seen");
    // Once recorded, ECS's deployment record is not read again.
    w.fake.clear_calls();
    w.reconcile().await.expect("resync");
    assert_eq!(w.fake.count("ListServiceDeployments"), 0, "{:?}", w.fake.calls());
}

#[tokio::test]
async fn api_gateway_changes_are_deployed_to_a_stage_that_does_not_deploy_by_itself() {
    let (mut w, _, api) = full_world();
    w.deploy().await;
    let keys = |list: &[&str]| list.iter().map(|k| k.to_string()).collect::<std::collections::BTreeSet<_>>();
    let (deployments, stages) = w.fake.api_deployments(&api);
    assert_eq!(deployments.last(), Some(&keys(&["ANY /books/{proxy+}", "POST /auth/login"])), "{deployments:?}");
    assert!(stages["$default"].is_some(), "the stage serves a deployment made after the routes");

    // A new route, and the run dies right after creating it: the next run still deploys it.
    w.resource
        .spec
        .api_gateway
        .as_mut()
        .expect("gateway")
        .routes
        .push(ecsop::api::ApiRouteSpec { key: "GET /books".into(), public: true });
    w.fake.clear_calls();
    let target = w.target();
    let dry = Options { dry_run: true, deep: true, ..Default::default() };
    let planned = w.engine.reconcile(&target, dry, &Quiet, Utc::now()).await.expect("plan").plan.actions;
    let route = planned.iter().position(|a| a.subject().contains("route GET /books")).expect("route planned");
    assert!(planned[route + 1].subject().contains("stage $default"), "{planned:?}");
    w.fake.fail_after_writes(1, ErrorKind::Other);
    assert!(w.reconcile().await.is_err(), "the run dies after creating the route");
    w.fake.clear_faults();
    let resumed = w.reconcile().await.expect("resume");
    assert!(resumed.plan.actions.iter().any(|a| a.subject().contains("stage $default")), "{:?}", resumed.plan.actions);
    let (deployments, _) = w.fake.api_deployments(&api);
    assert!(deployments.last().expect("deployed").contains("GET /books"), "{deployments:?}");
    w.fake.clear_calls();
    let steady = w.reconcile().await.expect("steady");
    assert_eq!(steady.plan.actions, Vec::new(), "{:?}", w.fake.calls());
    assert_eq!(steady.report.phase, Phase::Ready);

    // A stage that deploys by itself needs no deployment.
    let (w, _, api) = full_world();
    w.fake.set_stage(&api, "$default", true);
    w.deploy().await;
    assert_eq!(w.fake.count("CreateDeployment"), 0, "{:?}", w.fake.calls());

    // A stage that does not exist stops the plan, saying so.
    let (mut w, _, _) = full_world();
    w.resource.spec.api_gateway.as_mut().expect("gateway").stage = "prod".into();
    let stalled = w.reconcile().await.expect("plan");
    assert_eq!(stalled.report.phase, Phase::Stalled, "{:?}", stalled.report);
    assert_eq!(w.fake.writes(), 0, "nothing is written next to a stage that is not there");
    assert!(stalled.report.message.contains("stage prod does not exist"), "{}", stalled.report.message);
}

/// Everything the full-featured world can hold, counted so that duplicates and orphans show.
fn full_inventory(w: &World, http_listener: &str, api: &str) -> Vec<(&'static str, usize)> {
    let lb = w.resource.spec.load_balancer.as_ref().expect("lb");
    let (integrations, routes, authorizers) = w.fake.http_api(api);
    let rules = |listener: &str| w.fake.listener_rules(listener).iter().filter(|r| r.priority.is_some()).count();
    vec![
        ("target groups", w.fake.target_groups().len()),
        ("forward rules", rules(&lb.listener_arn)),
        ("redirect rules", rules(http_listener)),
        ("cloud map services", w.fake.discovery_services().len()),
        ("services", usize::from(w.fake.service_snapshot(CLUSTER, "books-api").is_some_and(|s| s.status == "ACTIVE"))),
        ("alarms", w.fake.alarms_snapshot().len()),
        ("integrations", integrations.len()),
        ("routes", routes.len()),
        ("authorizers", authorizers.len()),
        ("scalable targets", w.fake.scalable_targets().len()),
    ]
}

const FULL: [(&str, usize); 10] = [
    ("target groups", 1),
    ("forward rules", 1),
    ("redirect rules", 1),
    ("cloud map services", 1),
    ("services", 1),
    ("alarms", 3),
    ("integrations", 1),
    ("routes", 2),
    ("authorizers", 1),
    ("scalable targets", 1),
];

/// Reconcile until Ready with nothing left to write, completing rollouts on the way.
async fn settle(w: &World, context: &str) {
    for _ in 0..6 {
        let r = w.reconcile().await.unwrap_or_else(|e| panic!("{context}: {e}"));
        if r.report.phase == Phase::Ready && r.plan.actions.is_empty() {
            return;
        }
        if w.fake.service_snapshot(CLUSTER, "books-api").is_some_and(|s| s.status == "ACTIVE") {
            w.fake.complete(CLUSTER, "books-api");
        }
    }
    panic!("{context}: never settled");
}

#[tokio::test]
async fn a_full_featured_create_an_image_change_and_a_delete_each_survive_a_crash_at_every_write() {
    // The writes of each step, clean, in a world of its own.
    let (clean, _, _) = full_world();
    clean.reconcile().await.expect("repository");
    clean.fake.push_image("books-api", "1.4.2", &digest(1));
    clean.fake.clear_calls();
    clean.reconcile().await.expect("create");
    let create_writes = u32::try_from(clean.fake.writes()).expect("count");
    settle(&clean, "clean create").await;
    let mut next = clean.resource.clone();
    next.spec.image.tag = Some("2.0.0".into());
    clean.fake.push_image("books-api", "2.0.0", &digest(2));
    clean.fake.clear_calls();
    let engine = &clean.engine;
    engine.reconcile(&engine.target(&next), Options::default(), &Quiet, Utc::now()).await.expect("change");
    let change_writes = u32::try_from(clean.fake.writes()).expect("count");
    let (clean, _, _) = full_world();
    clean.deploy().await;
    settle(&clean, "clean deploy").await;
    clean.fake.clear_calls();
    clean.engine.delete(&clean.target(), Options::default(), &Quiet).await.expect("delete");
    let delete_writes = u32::try_from(clean.fake.writes()).expect("count");
    eprintln!("writes: create {create_writes}, image change {change_writes}, delete {delete_writes}");
    assert!(
        create_writes >= 15 && change_writes >= 2 && delete_writes >= 10,
        "{create_writes} {change_writes} {delete_writes}"
    );

    for crash_after in 0..create_writes {
        let context = format!("create, crash after write {crash_after}");
        let (w, http, api) = full_world();
        w.reconcile().await.expect("repository");
        w.fake.push_image("books-api", "1.4.2", &digest(1));
        w.fake.fail_after_writes(crash_after, ErrorKind::Other);
        assert!(w.reconcile().await.is_err(), "{context}: the run must die");
        w.fake.clear_faults();
        settle(&w, &context).await;
        assert_eq!(full_inventory(&w, &http, &api), FULL, "{context}");
        assert_eq!(w.active_revisions(), 1, "{context}");
    }

    for crash_after in 0..change_writes {
        let context = format!("image change, crash after write {crash_after}");
        let (mut w, http, api) = full_world();
        w.deploy().await;
        settle(&w, &context).await;
        w.fake.push_image("books-api", "2.0.0", &digest(2));
        w.resource.spec.image.tag = Some("2.0.0".into());
        w.fake.fail_after_writes(crash_after, ErrorKind::Other);
        assert!(w.reconcile().await.is_err(), "{context}: the run must die");
        w.fake.clear_faults();
        settle(&w, &context).await;
        assert_eq!(full_inventory(&w, &http, &api), FULL, "{context}");
        assert_eq!(w.active_revisions(), 2, "{context}: the new revision and the one before");
        let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
        assert!(w.fake.registered(&service.task_definition).is_some_and(|td| td.container.image.ends_with(&digest(2))));
    }

    for crash_after in 0..delete_writes {
        let context = format!("delete, crash after write {crash_after}");
        let (w, http, api) = full_world();
        w.deploy().await;
        settle(&w, &context).await;
        w.fake.fail_after_writes(crash_after, ErrorKind::Other);
        assert!(w.engine.delete(&w.target(), Options::default(), &Quiet).await.is_err(), "{context}: must die");
        w.fake.clear_faults();
        w.engine.delete(&w.target(), Options::default(), &Quiet).await.unwrap_or_else(|e| panic!("{context}: {e}"));
        let left: Vec<_> = full_inventory(&w, &http, &api).into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(left, Vec::new(), "{context}: nothing owned is left");
        assert_eq!(w.fake.live_routes(&api, "$default"), Some(Default::default()), "{context}: the stage serves none");
        assert_eq!(w.active_revisions(), 0, "{context}");
        assert!(w.fake.repositories().is_empty(), "{context}: the owned repository goes last");
    }
}

/// Reconcile (completing rollouts on the way) until Ready with nothing left to write, through exactly one
/// crash: the fault armed before the call kills one run, which must happen, and the runs after it finish
/// the work.
async fn settle_through_crash(w: &World, context: &str) {
    let mut crashed = false;
    for _ in 0..8 {
        match w.reconcile().await {
            Err(_) if !crashed => {
                crashed = true;
                w.fake.clear_faults();
                continue;
            }
            Err(e) => panic!("{context}: {e}"),
            Ok(r) if crashed && r.report.phase == Phase::Ready && r.plan.actions.is_empty() => return,
            Ok(_) => {}
        }
        if w.fake.service_snapshot(CLUSTER, "books-api").is_some_and(|s| s.status == "ACTIVE") {
            w.fake.complete(CLUSTER, "books-api");
        }
    }
    panic!("{context}: never settled (crashed: {crashed})");
}

/// Deploy `valid.yaml`, make `change`, and cut the change's rollout after each of its writes in turn (the
/// writes of every run it takes, not only the first): the runs after the cut must converge to what
/// `check` expects, and a last run must write nothing.
async fn change_survives_a_crash_at_every_write(
    name: &str,
    prepare: impl Fn(&mut World),
    change: impl Fn(&mut World),
    check: impl Fn(&World, &str),
) {
    let world = || {
        let mut w = World::new();
        prepare(&mut w);
        w
    };
    let clean = world();
    let mut clean = clean;
    clean.deploy().await;
    change(&mut clean);
    clean.fake.clear_calls();
    settle(&clean, name).await;
    let writes = u32::try_from(clean.fake.writes()).expect("count");
    check(&clean, &format!("{name}, clean"));
    eprintln!("{name}: {writes} writes");
    assert!(writes >= 2, "{name}: {:?}", clean.fake.calls());

    for crash_after in 0..writes {
        let context = format!("{name}, crash after write {crash_after}");
        let mut w = world();
        w.deploy().await;
        change(&mut w);
        w.fake.fail_after_writes(crash_after, ErrorKind::Other);
        settle_through_crash(&w, &context).await;
        check(&w, &context);
        w.fake.clear_calls();
        let deep = Options { deep: true, ..Default::default() };
        let steady = w.engine.reconcile(&w.target(), deep, &Quiet, Utc::now()).await;
        let steady = steady.unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(steady.report.phase, Phase::Ready, "{context}: {:?}", steady.report);
        assert_eq!(w.fake.writes(), 0, "{context}: {:?}", w.fake.calls());
    }
}

#[tokio::test]
async fn moving_to_another_listener_survives_a_crash_at_every_write() {
    let old = std::sync::Mutex::new(String::new());
    change_survives_a_crash_at_every_write(
        "listener move",
        |_| {},
        |w| {
            let lb = w.resource.spec.load_balancer.as_mut().expect("lb");
            *old.lock().expect("lock") = lb.listener_arn.clone();
            lb.listener_arn = w.fake.create_listener();
            lb.priority = 42;
        },
        |w, context| {
            let lb = w.resource.spec.load_balancer.as_ref().expect("lb");
            let owned = |listener: &str| w.fake.listener_rules(listener).into_iter().filter(|r| r.priority.is_some());
            assert_eq!(owned(&old.lock().expect("lock")).count(), 0, "{context}: the old listener's rule is gone");
            let rules: Vec<_> = owned(&lb.listener_arn).collect();
            assert_eq!(rules.len(), 1, "{context}: {rules:?}");
            assert_eq!(rules[0].priority, Some(42), "{context}");
            let groups = w.fake.target_groups();
            assert_eq!(groups.len(), 1, "{context}: {groups:?}");
            let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
            assert_eq!(service.load_balancers.len(), 1, "{context}");
            assert_eq!(service.load_balancers[0].arn, groups[0].arn, "{context}");
            assert_eq!(w.active_revisions(), 1, "{context}");
        },
    )
    .await;
}

#[tokio::test]
async fn dropping_the_load_balancer_survives_a_crash_at_every_write() {
    change_survives_a_crash_at_every_write(
        "load balancer drop",
        |w| w.resource.spec.service.autoscaling.as_mut().expect("autoscaling").target_requests_per_target = None,
        |w| w.resource.spec.load_balancer = None,
        |w, context| {
            assert!(w.fake.target_groups().is_empty(), "{context}");
            let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
            assert!(service.load_balancers.is_empty(), "{context}");
            assert_eq!(w.active_revisions(), 1, "{context}");
        },
    )
    .await;
}

#[tokio::test]
async fn dropping_service_discovery_survives_a_crash_at_every_write() {
    change_survives_a_crash_at_every_write(
        "discovery drop",
        |_| {},
        |w| w.resource.spec.service.service_discovery = None,
        |w, context| {
            assert!(w.fake.discovery_services().is_empty(), "{context}");
            let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
            assert!(service.registries.is_empty(), "{context}");
            assert!(!service.tags.contains_key("ecsop.io/discovery-namespace"), "{context}: {:?}", service.tags);
            assert_eq!(w.active_revisions(), 1, "{context}");
        },
    )
    .await;
}

#[tokio::test]
async fn routes_removed_are_taken_off_a_stage_that_does_not_deploy_by_itself() {
    let live = |w: &World, api: &str| w.fake.live_routes(api, "$default").expect("deployed");
    let ours = ["ANY /books/{proxy+}", "POST /auth/login"].map(String::from).into_iter().collect();

    // The spec drops the API Gateway: the routes go, and the stage stops serving them.
    let (mut w, _, api) = full_world();
    w.deploy().await;
    assert_eq!(live(&w, &api), ours);
    w.resource.spec.api_gateway = None;
    settle(&w, "drop").await;
    assert_eq!(live(&w, &api), Default::default());
    let service = w.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    for key in ["ecsop.io/api", "ecsop.io/api-deployed", "ecsop.io/api-stage"] {
        assert!(!service.tags.contains_key(key), "{key} forgotten: {:?}", service.tags);
    }

    // The spec moves to another API: the old API's stage stops serving them, the new one serves them.
    let (mut w, _, old) = full_world();
    w.deploy().await;
    let new = w.fake.create_http_api();
    w.resource.spec.api_gateway.as_mut().expect("gateway").api_id = new.clone();
    settle(&w, "move").await;
    assert_eq!((live(&w, &old), live(&w, &new)), (Default::default(), ours.clone()));

    // Cut right before the deployment, once everything is deleted: the next run still deploys.
    let (mut w, _, api) = full_world();
    w.deploy().await;
    w.resource.spec.api_gateway = None;
    let (target, dry) = (w.target(), Options { dry_run: true, ..Default::default() });
    let writes = w.engine.reconcile(&target, dry, &Quiet, Utc::now()).await.expect("plan").plan.actions;
    let cut = writes.iter().position(|a| a.subject().contains("stage $default")).expect("a deployment is planned");
    w.fake.fail_after_writes(u32::try_from(cut).expect("index"), ErrorKind::Other);
    assert!(w.reconcile().await.is_err(), "the run dies before deploying");
    w.fake.clear_faults();
    let (integrations, routes, authorizers) = w.fake.http_api(&api);
    assert!(integrations.is_empty() && routes.is_empty() && authorizers.is_empty(), "all deleted");
    assert_eq!(live(&w, &api), ours, "but still served");
    settle(&w, "resumed drop").await;
    assert_eq!(live(&w, &api), Default::default());

    // Deleting the ApiDeployment takes them off too; a stage that deploys by itself needs no deployment.
    let (w, _, api) = full_world();
    w.deploy().await;
    w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("delete");
    assert_eq!(live(&w, &api), Default::default());
    let (w, _, api) = full_world();
    w.fake.set_stage(&api, "$default", true);
    w.deploy().await;
    w.fake.clear_calls();
    w.engine.delete(&w.target(), Options::default(), &Quiet).await.expect("delete");
    assert_eq!(w.fake.count("CreateDeployment"), 0, "{:?}", w.fake.calls());
}

#[tokio::test]
async fn an_authorizer_named_as_before_is_kept_renamed_when_our_routes_use_it_and_left_alone_otherwise() {
    let (w, _, api) = full_world();
    w.deploy().await;
    let (_, routes, authorizers) = w.fake.http_api(&api);
    assert_eq!(authorizers.len(), 1);
    let ours = authorizers[0].clone();
    // Name it as earlier versions did, `ecsop-<family>`: still ours, since our routes use it.
    let legacy = ecsop::aws::AuthorizerConfig { name: "ecsop-prod-books-api".into(), ..ours.config.clone() };
    w.fake.clients().apigateway.update_authorizer(&api, &ours.id, &legacy).await.expect("rename");
    w.fake.clear_calls();
    let r = w.engine.reconcile(&w.target(), Options { deep: true, ..Default::default() }, &Quiet, Utc::now()).await;
    let actions = r.expect("reconcile").plan.actions;
    assert_eq!(w.fake.count("CreateAuthorizer"), 0, "{actions:?}");
    let (_, after, authorizers) = w.fake.http_api(&api);
    assert_eq!(authorizers.len(), 1, "{authorizers:?}");
    assert_eq!(authorizers[0].id, ours.id);
    assert_eq!(authorizers[0].config.name, ours.config.name, "renamed to the collision-free name");
    assert_eq!(after.len(), routes.len());

    // Another owner's authorizer with that old name, used by none of our routes, is not ours.
    let (w, _, api) = full_world();
    let stranger = ecsop::aws::AuthorizerConfig {
        name: "ecsop-prod-books-api".into(),
        issuer: "https://other.example.com".into(),
        audience: vec!["other".into()],
        identity_source: "$request.header.Authorization".into(),
    };
    let theirs = w.fake.clients().apigateway.create_authorizer(&api, &stranger).await.expect("theirs");
    w.deploy().await;
    let (_, _, authorizers) = w.fake.http_api(&api);
    assert_eq!(authorizers.len(), 2, "{authorizers:?}");
    let kept = authorizers.iter().find(|a| a.id == theirs.id).expect("theirs stays");
    assert_eq!(kept.config, stranger, "left alone");
}

/// valid.yaml as a canary: target tracking on CPU only (requests per target follow one target group).
fn canary(w: &mut World) {
    let rollout = &mut w.resource.spec.service.rollout;
    rollout.strategy =
        serde_json::from_value(serde_json::json!({"type": "canary", "canary": {"percent": 20}})).expect("strategy");
    rollout.infrastructure_role_arn = Some("arn:aws:iam::123456789012:role/ecsop/ecs-infrastructure".into());
    if let Some(a) = w.resource.spec.service.autoscaling.as_mut() {
        a.target_requests_per_target = None;
        a.target_cpu_percent.get_or_insert(60);
    }
}

#[tokio::test]
async fn releases_through_ecs_target_group_swaps_stay_in_sync_with_zero_writes() {
    let mut w = World::new();
    canary(&mut w);
    w.deploy().await;
    let first = w.fake.service_snapshot(CLUSTER, "books-api").expect("service").load_balancers[0].clone();
    for (n, tag) in [(2u8, "1.5.0"), (3, "1.6.0")] {
        w.fake.push_image("books-api", tag, &digest(n));
        w.resource.spec.image.tag = Some(tag.into());
        let rolling = w.reconcile().await.expect("roll");
        assert_eq!(rolling.report.phase, Phase::Progressing, "{:?}", rolling.report);
        w.fake.complete(CLUSTER, "books-api");
        let done = w.reconcile().await.expect("done");
        assert_eq!(done.report.phase, Phase::Ready, "{:?}", done.report);
        w.fake.clear_calls();
        let again = w.reconcile().await.expect("again");
        assert_eq!(w.fake.writes(), 0, "after the swap of release {tag}: {:?}", w.writes_in_order());
        assert_eq!(again.report.rollout.as_ref().and_then(|r| r.phase.as_deref()), Some("complete"));
        let serving = w.fake.service_snapshot(CLUSTER, "books-api").expect("service").load_balancers[0].arn.clone();
        assert_eq!(serving == first.arn, n == 3, "release {tag} serves from the other group than the one before");
    }
    // Two swaps: the first group serves again; the second serves between.
    let now = w.fake.service_snapshot(CLUSTER, "books-api").expect("service").load_balancers[0].clone();
    assert_eq!(now.arn, first.arn, "ECS swapped twice");
    assert_eq!(w.fake.target_groups().len(), 2);
}
