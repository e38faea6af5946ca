//! Scenario tests of the controller's reconcile over kube's mock service (ApiServerVerifier style):
//! each test states the Kubernetes calls it expects, answers them like the API server would, and
//! checks their method, path and body; AWS is the in-memory fake.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecsop::api::{ApiDeployment, ApiDeploymentStatus};
use ecsop::aws::ErrorKind;
use ecsop::controller::leader::LeaderState;
use ecsop::controller::{Context, Engines, FINALIZER, Timing, error_policy, reconcile};
use ecsop::engine::Engine;
use ecsop::metrics::Metrics;
use ecsop_testkit::fake::FakeAws;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

const CLUSTER: &str = "api-cluster";
const OBJECT_PATH: &str = "/apis/ecsop.io/v1alpha1/namespaces/prod/apideployments/books-api";

/// One request the controller made, as the mock API server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    body: Value,
    /// Target groups left in AWS when the request arrived (to check ordering against AWS).
    target_groups_in_aws: usize,
}

/// The mock API server: answers every request like Kubernetes would and records it.
struct Verifier {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Verifier {
    fn start(fake: FakeAws, object: Value) -> (kube::Client, Verifier) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut object = object;
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let content_type =
                    request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let bytes = request.into_body().collect_bytes().await.expect("body");
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let answer = match (method.as_str(), path.as_str()) {
                    ("PATCH", p) if p == OBJECT_PATH => {
                        apply_json_patch(&mut object, &body);
                        object.clone()
                    }
                    ("PATCH", p) if p == format!("{OBJECT_PATH}/status") => {
                        object["status"] = body["status"].clone();
                        object.clone()
                    }
                    ("POST", p) if p.ends_with("/events") => body.clone(),
                    ("PATCH", p) if p.contains("/events/") => body.clone(),
                    other => panic!("unexpected request {other:?}"),
                };
                log.lock().expect("log").push(Seen {
                    method,
                    path,
                    content_type,
                    body,
                    target_groups_in_aws: fake.target_groups().len(),
                });
                let response =
                    Response::builder().status(200).body(Body::from(serde_json::to_vec(&answer).expect("json")));
                send.send_response(response.expect("response"));
            }
        });
        (kube::Client::new(service, "default"), Verifier { seen })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    fn status_patches(&self) -> Vec<Value> {
        self.seen().into_iter().filter(|s| s.path.ends_with("/status")).map(|s| s.body).collect()
    }

    fn event_reasons(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains("/events"))
            .filter_map(|s| s.body["reason"].as_str().map(str::to_string))
            .collect()
    }
}

/// Enough of RFC 6902 for the finalizer patches kube-runtime sends (test, add, remove).
fn apply_json_patch(object: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("json patch is an array") {
        let path = op["path"].as_str().expect("path");
        match op["op"].as_str() {
            Some("test") => {}
            Some("add") => {
                if path == "/metadata/finalizers" {
                    object["metadata"]["finalizers"] = op["value"].clone();
                } else if path == "/metadata/finalizers/-" {
                    object["metadata"]["finalizers"].as_array_mut().expect("array").push(op["value"].clone());
                } else {
                    panic!("unexpected add {path}");
                }
            }
            Some("remove") => {
                let index: usize = path.rsplit('/').next().and_then(|i| i.parse().ok()).expect("index");
                object["metadata"]["finalizers"].as_array_mut().expect("array").remove(index);
            }
            other => panic!("unexpected op {other:?}"),
        }
    }
}

struct Scenario {
    fake: FakeAws,
    metrics: Arc<Metrics>,
    object: Value,
}

impl Scenario {
    /// The full-featured manifest without an owned repository, its image already pushed.
    fn new() -> Scenario {
        let fake = FakeAws::new();
        let listener = fake.create_listener();
        let namespace = fake.create_namespace("svc.local");
        let text = include_str!("valid.yaml")
            .replace(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
                &listener,
            )
            .replace("ns-abcdefgh12345678", &namespace);
        let mut object: Value = serde_yaml::from_str(&text).expect("yaml");
        object["spec"].as_object_mut().expect("spec").remove("ecr");
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["uid"] = json!("5f0c8e3a-0000-4000-8000-000000000001");
        object["metadata"]["resourceVersion"] = json!("1");
        fake.push_image("books-api", "1.4.2", &format!("sha256:{}", "ab".repeat(32)));
        Scenario { fake, metrics: Arc::new(Metrics::default()), object }
    }

    fn with_finalizer(mut self) -> Scenario {
        self.object["metadata"]["finalizers"] = json!([FINALIZER]);
        self
    }

    fn context(&self, client: kube::Client) -> Arc<Context> {
        Arc::new(Context::new(
            client,
            Engines::Fixed(Engine::new(self.fake.clients(), "us-east-1")),
            self.metrics.clone(),
            LeaderState::always(),
            "ecsop".into(),
            Timing {
                resync: Duration::from_secs(300),
                rollout_poll: Duration::from_secs(15),
                deep_every: 1,
                delete_wait: Duration::from_secs(5),
            },
        ))
    }

    /// Run one reconcile of the current object; returns the verifier and the result.
    async fn reconcile(&mut self) -> (Verifier, Result<kube::runtime::controller::Action, ecsop::Error>) {
        let (client, verifier) = Verifier::start(self.fake.clone(), self.object.clone());
        let ctx = self.context(client);
        let object: ApiDeployment = serde_json::from_value(self.object.clone()).expect("typed");
        let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(object), ctx))
            .await
            .expect("reconcile finishes within 10 s");
        // Carry the status forward, as the API server would on the next watch event.
        if let Some(status) = verifier.status_patches().last() {
            self.object["status"] = status["status"].clone();
        }
        (verifier, result)
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

#[tokio::test]
async fn the_finalizer_is_added_on_first_sight_before_anything_else() {
    let mut s = Scenario::new();
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    let seen = v.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("PATCH", OBJECT_PATH));
    assert_eq!(seen[0].content_type, "application/json-patch+json");
    let ops = seen[0].body.to_string();
    assert!(ops.contains(FINALIZER), "{ops}");
    assert_eq!(s.fake.writes(), 0, "no AWS write before the finalizer is in place");
}

#[tokio::test]
async fn status_reports_in_progress_then_done_with_events() {
    let mut s = Scenario::new().with_finalizer();
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    let patches = v.status_patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let status = &patches[0];
    assert_eq!(status["apiVersion"], "ecsop.io/v1alpha1");
    assert_eq!(status["kind"], "ApiDeployment");
    assert_eq!(status["status"]["observedGeneration"], 1);
    assert_eq!(condition(status, "Ready")["status"], "Unknown");
    assert_eq!(condition(status, "Reconciling")["status"], "True");
    assert_eq!(condition(status, "Stalled")["status"], "False");
    let seen = v.seen();
    let patch = seen.iter().find(|r| r.path.ends_with("/status")).expect("status patch");
    assert_eq!(patch.content_type, "application/apply-patch+yaml", "server-side apply");
    let reasons = v.event_reasons();
    for expected in ["RevisionRegistered", "TargetGroupCreated", "ListenerRuleCreated", "ServiceCreated"] {
        assert!(reasons.iter().any(|r| r == expected), "{expected} in {reasons:?}");
    }

    // ECS finishes: Ready=True, a RolloutComplete event, the rollout counted.
    s.fake.complete(CLUSTER, "books-api");
    let (v, result) = s.reconcile().await;
    assert_eq!(result.expect("reconcile"), kube::runtime::controller::Action::requeue(Duration::from_secs(300)));
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Ready")["status"], "True");
    assert_eq!(condition(status, "Ready")["reason"], "RolloutComplete");
    assert_eq!(condition(status, "Reconciling")["status"], "False");
    assert!(status["status"]["taskDefinitionArn"].as_str().is_some_and(|a| a.ends_with("prod-books-api:1")));
    assert_eq!(v.event_reasons(), ["RolloutComplete"]);
    assert!(s.metrics.render().contains("ecsop_rollouts_total{outcome=\"completed\",strategy=\"rolling\"} 1"));
}

#[tokio::test]
async fn a_rollback_is_stalled_with_a_warning_event() {
    let mut s = Scenario::new().with_finalizer();
    s.reconcile().await.1.expect("create");
    s.fake.complete(CLUSTER, "books-api");
    s.reconcile().await.1.expect("ready");
    s.fake.push_image("books-api", "1.5.0", &format!("sha256:{}", "cd".repeat(32)));
    s.object["spec"]["image"]["tag"] = json!("1.5.0");
    s.object["metadata"]["generation"] = json!(2);
    s.reconcile().await.1.expect("roll");
    s.fake.rollback(CLUSTER, "books-api", "Essential container in task exited");
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Stalled")["status"], "True");
    assert_eq!(condition(status, "Stalled")["reason"], "RolledBack");
    assert_eq!(condition(status, "Ready")["status"], "False");
    assert_eq!(condition(status, "Reconciling")["status"], "False");
    assert_eq!(status["status"]["observedGeneration"], 2);
    let warning = v.seen().into_iter().find(|r| r.body["reason"] == "RolledBack").expect("RolledBack event");
    assert_eq!(warning.body["type"], "Warning");
    assert!(warning.body["note"].as_str().is_some_and(|n| n.contains("Essential container")), "{}", warning.body);
    assert!(s.metrics.render().contains("ecsop_rollouts_total{outcome=\"rolled_back\",strategy=\"rolling\"} 1"));
}

#[tokio::test]
async fn cleanup_removes_the_finalizer_only_after_aws_is_torn_down() {
    let mut s = Scenario::new().with_finalizer();
    s.reconcile().await.1.expect("create");
    assert_eq!(s.fake.target_groups().len(), 1);
    s.object["metadata"]["deletionTimestamp"] = json!("2026-11-25T10:00:00Z");
    let (v, result) = s.reconcile().await;
    result.expect("cleanup");
    let seen = v.seen();
    let finalizer_patch = seen.iter().find(|r| r.path == OBJECT_PATH).expect("finalizer removal");
    assert!(finalizer_patch.body.to_string().contains("remove"), "{}", finalizer_patch.body);
    assert_eq!(finalizer_patch.target_groups_in_aws, 0, "the finalizer goes only after AWS is empty");
    assert!(s.fake.service_snapshot(CLUSTER, "books-api").is_none_or(|svc| svc.status != "ACTIVE"));
    assert!(v.event_reasons().iter().any(|r| r == "Deleted"), "{:?}", v.event_reasons());
}

#[tokio::test]
async fn cleanup_failing_in_aws_keeps_the_finalizer() {
    let mut s = Scenario::new().with_finalizer();
    s.reconcile().await.1.expect("create");
    s.fake.fail_always("DeleteTargetGroup", ErrorKind::Transient);
    s.object["metadata"]["deletionTimestamp"] = json!("2026-11-25T10:00:00Z");
    let (v, result) = s.reconcile().await;
    assert!(result.is_err());
    assert!(v.seen().iter().all(|r| r.path != OBJECT_PATH), "the finalizer must stay");
    assert!(v.event_reasons().iter().any(|r| r == "DeleteFailed"));
}

#[tokio::test]
async fn access_denied_is_stalled_counted_and_backed_off() {
    let mut s = Scenario::new().with_finalizer();
    s.fake.fail_always("CreateService", ErrorKind::AccessDenied);
    let (v, result) = s.reconcile().await;
    let error = result.expect_err("AccessDenied fails the reconcile");
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Stalled")["reason"], "AccessDenied");
    assert_eq!(condition(status, "Ready")["status"], "False");
    let metrics = s.metrics.render();
    assert!(metrics.contains("ecsop_reconcile_errors_total{kind=\"access_denied\"} 1"), "{metrics}");
    let object: ApiDeployment = serde_json::from_value(s.object.clone()).expect("typed");
    let (client, _v) = Verifier::start(s.fake.clone(), s.object.clone());
    let action = error_policy(Arc::new(object), &error, s.context(client));
    assert_eq!(action, kube::runtime::controller::Action::requeue(Duration::from_secs(120)));
}

#[tokio::test]
async fn an_invalid_spec_is_stalled_without_touching_aws() {
    let mut s = Scenario::new().with_finalizer();
    s.object["spec"]["container"]["memory"] = json!(3000);
    let (v, result) = s.reconcile().await;
    assert_eq!(result.expect("reconcile"), kube::runtime::controller::Action::await_change());
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Stalled")["reason"], "InvalidSpec");
    assert!(condition(status, "Stalled")["message"].as_str().is_some_and(|m| m.contains("spec.container.memory")));
    assert_eq!(s.fake.calls().len(), 0, "no AWS call for an invalid spec");
    let _: Option<ApiDeploymentStatus> = serde_json::from_value(status["status"].clone()).ok();
}

#[tokio::test]
async fn each_kind_of_aws_failure_is_backed_off_for_its_own_time() {
    // Sent again soon: throttling (10 s); 5xx, a conflict, a change AWS has not propagated yet (15 s).
    // Waiting for a human: AccessDenied (2 min), a request AWS calls invalid (5 min).
    let cases = [
        (ErrorKind::Throttled, 10, "Throttled"),
        (ErrorKind::Transient, 15, "Transient"),
        (ErrorKind::Conflict, 15, "Conflict"),
        (ErrorKind::AccessDenied, 120, "AccessDenied"),
        (ErrorKind::Invalid, 300, "RejectedByAws"),
    ];
    for (kind, seconds, reason) in cases {
        let mut s = Scenario::new().with_finalizer();
        s.fake.fail_always("CreateService", kind);
        let (_, result) = s.reconcile().await;
        let error = result.expect_err("the reconcile fails");
        let object: ApiDeployment = serde_json::from_value(s.object.clone()).expect("typed");
        let (client, _v) = Verifier::start(s.fake.clone(), s.object.clone());
        let action = error_policy(Arc::new(object), &error, s.context(client));
        let expected = kube::runtime::controller::Action::requeue(Duration::from_secs(seconds));
        assert_eq!(action, expected, "{kind:?}: {error}");
        let conditions = s.object["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let stalled = conditions.iter().find(|c| c["type"] == "Stalled" && c["status"] == "True");
        let stalled = stalled.map(|c| c["reason"].as_str().unwrap_or_default().to_string());
        let for_a_person = kind == ErrorKind::AccessDenied || kind == ErrorKind::Invalid;
        let expected = for_a_person.then(|| reason.to_string());
        assert_eq!(stalled, expected, "{kind:?}: {}", s.object["status"]);
    }
    // A refusal that outlived the engine's own retries within the run (ECS does not see the target
    // group's load balancer yet) is sent again in 15 s, like a 5xx.
    let object: ApiDeployment = serde_json::from_value(Scenario::new().object).expect("typed");
    let s = Scenario::new();
    let (client, _v) = Verifier::start(s.fake.clone(), s.object.clone());
    let propagating = ecsop::aws::AwsError::new("ecs", "CreateService", ErrorKind::Propagating, "not yet");
    let action = error_policy(Arc::new(object), &ecsop::Error::Aws(propagating), s.context(client));
    assert_eq!(action, kube::runtime::controller::Action::requeue(Duration::from_secs(15)));
}

/// The scenario as a canary with an analysis of the load balancer's 5xx ratio (one failed window stops).
fn canary(s: &mut Scenario) {
    s.object["spec"]["service"]["rollout"] = json!({
        "strategy": {"type": "canary", "canary": {"percent": 10, "bakeTimeMinutes": 5}},
        "infrastructureRoleArn": "arn:aws:iam::123456789012:role/ecsop/ecs-infrastructure",
        "analysis": {"intervalSeconds": 60, "checks": [
            {"name": "errors", "alb": "errorRatio", "max": 0.02, "minRequests": 100, "failedIntervals": 1}
        ]}
    });
}

/// Ready on v1, then v2 rolling out.
async fn releasing(s: &mut Scenario) {
    s.reconcile().await.1.expect("create");
    s.fake.complete(CLUSTER, "books-api");
    s.reconcile().await.1.expect("ready");
    s.fake.push_image("books-api", "1.5.0", &format!("sha256:{}", "cd".repeat(32)));
    s.object["spec"]["image"]["tag"] = json!("1.5.0");
    s.object["metadata"]["generation"] = json!(2);
    s.reconcile().await.1.expect("roll");
}

fn stops(fake: &FakeAws) -> usize {
    fake.calls().iter().filter(|(_, op)| op == "StopServiceDeployment").count()
}

#[tokio::test]
async fn the_abort_annotation_stops_its_generations_rollout_and_only_that() {
    let mut s = Scenario::new().with_finalizer();
    canary(&mut s);
    releasing(&mut s).await;

    // An annotation naming another generation is left alone.
    s.object["metadata"]["annotations"] = json!({"ecsop.io/abort": "1"});
    s.reconcile().await.1.expect("reconcile");
    assert_eq!(stops(&s.fake), 0);

    s.object["metadata"]["annotations"] = json!({"ecsop.io/abort": "2"});
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    assert_eq!(stops(&s.fake), 1, "{:?}", s.fake.calls());
    assert!(v.event_reasons().iter().any(|r| r == "RolloutAborted"), "{:?}", v.event_reasons());
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Stalled")["reason"], "Aborted", "{status}");
    assert!(s.metrics.render().contains("ecsop_rollouts_total{outcome=\"aborted\",strategy=\"canary\"} 1"));
    assert_eq!(stops(&s.fake), 1, "nothing more to stop");
}

#[tokio::test]
async fn the_controller_judges_a_canary_and_stops_it_on_a_failed_window() {
    let mut s = Scenario::new().with_finalizer();
    canary(&mut s);
    // The release started five minutes ago (the fake's clock), so the minutes before now are its windows.
    s.fake.set_now(chrono::Utc::now() - chrono::Duration::minutes(5));
    releasing(&mut s).await;
    let service = s.fake.service_snapshot(CLUSTER, "books-api").expect("service");
    let binding = service.load_balancers[0].clone();
    let traffic = binding.traffic.clone().expect("traffic shifting");
    let listener = s.object["spec"]["loadBalancer"]["listenerArn"].as_str().expect("listener").to_string();
    let lb = listener.split_once(":listener/").expect("arn").1.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let dim = |arn: &str| ecsop::analysis::cloudwatch::dimension(arn).expect("arn");
    // The last two whole minutes: the new revision answers 5% 5xx, the old one 0.1%.
    let now = std::time::SystemTime::now();
    for minutes_ago in [1u64, 2] {
        let at = now - Duration::from_secs(60 * minutes_ago);
        for (group, errors) in [(dim(&binding.arn), 2.0), (dim(&traffic.alternate_target_group), 100.0)] {
            let dims = std::collections::BTreeMap::from([
                ("LoadBalancer".to_string(), lb.clone()),
                ("TargetGroup".to_string(), group),
            ]);
            s.fake.put_metric("AWS/ApplicationELB", "RequestCount", &dims, at, 2000.0, 1);
            s.fake.put_metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", &dims, at, errors, 1);
        }
    }
    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    assert_eq!(stops(&s.fake), 1, "{:?}", s.fake.calls());
    assert!(v.event_reasons().iter().any(|r| r == "AnalysisStoppedRollout"), "{:?}", v.event_reasons());
    let status = &v.status_patches()[0];
    let checks = &status["status"]["rollout"]["analysis"];
    assert_eq!(checks[0]["name"], "errors", "{status}");
    assert_eq!(checks[0]["result"], "Failed", "{status}");
    assert!(checks[0]["message"].as_str().is_some_and(|m| m.contains("new revision 0.05")), "{status}");
    assert!(s.metrics.render().contains("ecsop_analysis_windows_total{check=\"errors\",result=\"failed\"} 1"));

    let (v, result) = s.reconcile().await;
    result.expect("reconcile");
    let status = &v.status_patches()[0];
    assert_eq!(condition(status, "Stalled")["reason"], "AnalysisFailed", "{status}");
    assert!(!s.metrics.render().contains("ecsop_analysis_value{"), "values go when the rollout ends");
}
