//! Analysis during ECS's own traffic shifting, against moto: the engine judges each window of the
//! load balancer's metrics of both target groups as it ends (on the test clock), stops a bad release
//! with StopServiceDeployment and rollback within two windows of the minimum sample, reports it
//! Stalled/AnalysisFailed with both revisions' values, and never deploys that revision again; a healthy
//! release is left for ECS to finish.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use ecsop::analysis::Judgement;
use ecsop::analysis::watch::{Outcome, Watch};
use ecsop::engine::act::Quiet;
use ecsop::engine::{Engine, Options};
use ecsop_testkit::Drive;
use support::deploy::{CLUSTER, Env, complete, text};

/// One minute of one target group, as the load balancer publishes it.
#[derive(Clone, Copy)]
struct Minute {
    requests: f64,
    errors: f64,
    /// (seconds, answers) of TargetResponseTime.
    latencies: &'static [(f64, u64)],
}

/// 0.1% errors, p99 200 ms.
const HEALTHY: Minute = Minute { requests: 2000.0, errors: 2.0, latencies: &[(0.05, 1970), (0.2, 30)] };
/// 5% errors, p99 as healthy.
const ERRORS: Minute = Minute { requests: 2000.0, errors: 100.0, latencies: &[(0.05, 1970), (0.2, 30)] };
/// No errors, p99 600 ms: three times the healthy one.
const SLOW: Minute = Minute { requests: 2000.0, errors: 0.0, latencies: &[(0.15, 1970), (0.6, 30)] };
/// Too few requests to judge.
const TRICKLE: Minute = Minute { requests: 40.0, errors: 10.0, latencies: &[(0.05, 30), (0.9, 10)] };

const ANALYSIS: &str = "      analysis:
        intervalSeconds: 60
        checks:
        - {name: errors, alb: errorRatio, max: 0.02, maxRatioToOld: 2, minRequests: 500, failedIntervals: 2}
        - {name: latency, alb: latencyP99, maxRatioToOld: 2.5, minRequests: 500, failedIntervals: 2}
";

fn strategy_yaml(strategy: &str) -> &'static str {
    match strategy {
        "blueGreen" => "{type: blueGreen, bakeTimeMinutes: 10}",
        "canary" => "{type: canary, bakeTimeMinutes: 10, canary: {percent: 10, bakeTimeMinutes: 5}}",
        "linear" => "{type: linear, linear: {stepPercent: 25, stepBakeTimeMinutes: 2}}",
        other => panic!("no strategy {other}"),
    }
}

fn manifest(env: &Env, name: &str, tag: &str, strategy: &str, role: &str) -> String {
    let anchor = "      progressDeadlineSeconds: 600\n";
    let rollout =
        format!("{anchor}      strategy: {}\n      infrastructureRoleArn: {role}\n{ANALYSIS}", strategy_yaml(strategy));
    env.manifest(name, "shop/api", tag, "").replacen(anchor, &rollout, 1)
}

/// The account with v1 running under `strategy` and v2 applied (not waited for): ECS has started v2 and
/// moved the first production traffic to it. Returns the manifest's path, v1 and v2.
async fn releasing(env: &Env, name: &str, strategy: &str) -> (std::path::PathBuf, String, String) {
    let role = env.account.create_role("ecs-infrastructure").await.expect("role");
    env.push("shop/api", "v1").await;
    env.push("shop/api", "v2").await;
    let path = env.write("app.yaml", &manifest(env, name, "v1", strategy, &role));
    let (out, first) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "create:\n{}", text(&out));
    let first = first.expect("driven");
    let path = env.write("app.yaml", &manifest(env, name, "v2", strategy, &role));
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "apply v2:\n{}", text(&out));
    let second = env
        .account
        .drive_next_rollout(CLUSTER, name, Some(&first), &[], Duration::ZERO, Duration::from_secs(30))
        .await
        .expect("v2 deploys");
    for _ in 0..4 {
        let answer = env.account.drive(CLUSTER, name, Drive::Progress { running: None }).await.expect("drive");
        if answer["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT" {
            break;
        }
    }
    (path, first, second)
}

fn load(engine: &Engine, path: &Path) -> ecsop::engine::target::Target {
    let manifests = ecsop::manifest::load(path).expect("manifest loads");
    engine.target(&manifests[0].resource)
}

/// The load balancer's dimension, and both target groups' (serving, and the new revision's).
async fn dimensions(env: &Env, name: &str) -> (String, String, String) {
    let clients = env.clients().await;
    let service = clients.ecs.service(CLUSTER, name).await.expect("read").expect("service");
    let binding = service.load_balancers[0].clone();
    let traffic = binding.traffic.expect("traffic shifting");
    let dim = |arn: &str| ecsop::analysis::cloudwatch::dimension(arn).expect("an ARN");
    let (_, path) = env.net.listener_arn.split_once(":listener/").expect("listener ARN");
    let lb = path.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    (lb, dim(&binding.arn), dim(&traffic.alternate_target_group))
}

/// Publish one minute (starting at `at`) for a target group.
async fn publish(env: &Env, lb: &str, target_group: &str, at: SystemTime, minute: Minute) {
    let dims = BTreeMap::from([
        ("LoadBalancer".to_owned(), lb.to_owned()),
        ("TargetGroup".to_owned(), target_group.to_owned()),
    ]);
    let at = at + Duration::from_secs(30);
    let put = |name: &'static str, points: Vec<(SystemTime, f64, u64)>| {
        let dims = dims.clone();
        async move { env.account.put_metric("AWS/ApplicationELB", name, &dims, &points).await.expect("put metric") }
    };
    put("RequestCount", vec![(at, minute.requests, 1)]).await;
    put("HTTPCode_Target_5XX_Count", vec![(at, minute.errors, 1)]).await;
    put("TargetResponseTime", minute.latencies.iter().map(|(s, n)| (at, *s, *n)).collect()).await;
}

/// The next whole minute after the wall clock: the test clock starts there, so every window it judges
/// begins after the new revision's deployment started.
fn next_minute() -> SystemTime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    UNIX_EPOCH + Duration::from_secs(now - now % 60 + 60)
}

/// Feeds `minutes` of the new revision (the old one healthy throughout), judging each window as it
/// ends on the test clock. Returns each evaluation's outcome.
async fn judge_minutes(env: &Env, name: &str, path: &Path, revision: &str, minutes: &[Minute]) -> Vec<Outcome> {
    let engine = Engine::new(env.clients().await, "us-east-1");
    let target = load(&engine, path);
    let (lb, old, new) = dimensions(env, name).await;
    let mut watch = Watch::new();
    let mut outcomes = Vec::new();
    let mut start = next_minute();
    for minute in minutes {
        publish(env, &lb, &old, start, HEALTHY).await;
        publish(env, &lb, &new, start, *minute).await;
        let now: DateTime<Utc> = (start + Duration::from_secs(61)).into();
        let service = env.clients().await.ecs.service(CLUSTER, name).await.expect("read").expect("service");
        env.account.clear_calls().await.expect("clear");
        let outcome = engine.analyse(&target, &service, revision, &mut watch, now).await.expect("analyse");
        let reads = env.account.calls().await.expect("calls").iter().filter(|c| c.operation == "GetMetricData").count();
        assert_eq!(reads, 1, "both load-balancer checks of a window in one GetMetricData call");
        let stopped = matches!(outcome, Some(Outcome::Stop(..)));
        outcomes.push(outcome.expect("a rollout to judge"));
        if stopped {
            break;
        }
        start += Duration::from_secs(60);
    }
    outcomes
}

/// The index of the first window with the minimum sample, and of the one that stopped the rollout.
fn sample_and_stop(outcomes: &[Outcome]) -> (usize, Option<usize>) {
    let sampled = outcomes
        .iter()
        .position(|o| match o {
            Outcome::Judged(v) | Outcome::Stop(_, v) => {
                v.iter().any(|v| !matches!(v.judgement, Judgement::Inconclusive(_)))
            }
            Outcome::Waiting => false,
        })
        .expect("some window had the minimum sample");
    (sampled, outcomes.iter().position(|o| matches!(o, Outcome::Stop(..))))
}

async fn a_bad_release_is_stopped_and_rolled_back(strategy: &str, bad: Minute, check: &str, values: [&str; 2]) {
    let env = Env::new().await;
    let name = format!("bad-{}", strategy.to_lowercase());
    let (path, first, second) = releasing(&env, &name, strategy).await;
    let (_, old_tg, new_tg) = dimensions(&env, &name).await;

    let outcomes = judge_minutes(&env, &name, &path, &second, &[TRICKLE, bad, bad, bad, bad]).await;
    let (sampled, stopped) = sample_and_stop(&outcomes);
    let stopped = stopped.unwrap_or_else(|| panic!("the rollout was not stopped: {outcomes:#?}"));
    assert!(stopped <= sampled + 1, "stopped in window {stopped}, the sample was reached in {sampled}");
    let Outcome::Stop(abort, _) = &outcomes[stopped] else { unreachable!() };
    assert_eq!(abort.check, check, "{abort}");

    // Traffic is back on the old revision, which is PRIMARY again.
    let clients = env.clients().await;
    let service = clients.ecs.service(CLUSTER, &name).await.expect("read").expect("service");
    assert_eq!(service.task_definition, first, "ECS went back to v1");
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let rule = rules.iter().find(|r| r.target_groups.iter().any(|t| t.ends_with(&old_tg[12..]))).expect("our rule");
    let weight = |dim: &str| rule.target_groups.iter().find(|t| t.ends_with(&dim[12..])).and_then(|t| rule.weight(t));
    assert_eq!((weight(&old_tg), weight(&new_tg)), (Some(100), Some(0)), "{rule:?}");

    // Every later run reports it, with both revisions' values, and deploys v2 no more.
    let engine = Engine::new(clients.clone(), "us-east-1");
    let target = load(&engine, &path);
    let reconciled = engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("reconcile");
    let report = &reconciled.report;
    assert_eq!(report.reason, "AnalysisFailed", "{}", report.message);
    for needle in [check, values[0], values[1], "window 1m"] {
        assert!(report.message.contains(needle), "{needle:?} in {}", report.message);
    }
    env.account.clear_calls().await.expect("clear");
    for _ in 0..2 {
        let again = engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("reconcile");
        assert_eq!(again.report.reason, "AnalysisFailed");
    }
    let writes = env.writes().await;
    assert!(
        !writes.iter().any(|w| w == "UpdateService" || w == "CreateService" || w == "StopServiceDeployment"),
        "a stopped release is not retried: {writes:?}"
    );
    let out = env.ecsop(&["apply", "--wait", "--timeout", "20s", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("AnalysisFailed"), "{}", text(&out));
}

#[tokio::test]
async fn a_canary_answering_five_percent_errors_is_stopped_within_two_windows() {
    a_bad_release_is_stopped_and_rolled_back("canary", ERRORS, "errors", ["new revision 0.05", "old revision 0.001"])
        .await;
}

#[tokio::test]
async fn a_blue_green_release_answering_five_percent_errors_is_stopped_within_two_windows() {
    a_bad_release_is_stopped_and_rolled_back(
        "blueGreen",
        ERRORS,
        "errors",
        ["new revision 0.05", "old revision 0.001"],
    )
    .await;
}

#[tokio::test]
async fn a_linear_release_three_times_slower_is_stopped_within_two_windows() {
    a_bad_release_is_stopped_and_rolled_back("linear", SLOW, "latency", ["new revision 0.6", "old revision 0.2"]).await;
}

#[tokio::test]
async fn a_healthy_canary_passes_every_window_and_ecs_finishes_it() {
    let env = Env::new().await;
    let name = "good-canary";
    let (path, _, second) = releasing(&env, name, "canary").await;
    let outcomes = judge_minutes(&env, name, &path, &second, &[HEALTHY, HEALTHY, HEALTHY]).await;
    assert_eq!(outcomes.len(), 3, "{outcomes:#?}");
    for o in &outcomes {
        let Outcome::Judged(verdicts) = o else { panic!("not judged: {o:?}") };
        assert!(verdicts.iter().all(|v| v.judgement == Judgement::Passed), "{verdicts:#?}");
    }
    for _ in 0..4 {
        env.account.drive(CLUSTER, name, Drive::Advance { seconds: 3600 }).await.expect("advance the clock");
        let answer = env.account.drive(CLUSTER, name, Drive::Progress { running: None }).await.expect("drive");
        if answer["lifecycleStage"] == "BAKE_TIME" {
            break;
        }
    }
    env.account.drive(CLUSTER, name, Drive::Advance { seconds: 3600 }).await.expect("advance the clock");
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("complete");
    let engine = Engine::new(env.clients().await, "us-east-1");
    let target = load(&engine, &path);
    let reconciled = engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("reconcile");
    assert_eq!(reconciled.report.reason, "RolloutComplete", "{}", reconciled.report.message);
    let service = env.clients().await.ecs.service(CLUSTER, name).await.expect("read").expect("service");
    assert_eq!(service.task_definition, second);
}

#[tokio::test]
async fn ecsop_abort_stops_a_rollout_in_progress_and_it_is_not_retried() {
    let env = Env::new().await;
    let name = "aborted";
    let (path, first, _) = releasing(&env, name, "canary").await;
    let file = path.to_str().expect("utf-8");
    let out = env.ecsop(&["abort", "-f", file, "--reason", "bad dashboards"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("stopped the rollout of revision"), "{}", text(&out));
    let service = env.clients().await.ecs.service(CLUSTER, name).await.expect("read").expect("service");
    assert_eq!(service.task_definition, first, "ECS went back to v1");

    let out = env.ecsop(&["status", "-o", "json", "-f", file]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = &status["items"][0]["report"];
    assert_eq!(report["reason"], "Aborted", "{report:#}");
    assert!(report["message"].as_str().unwrap_or_default().contains("bad dashboards"), "{report:#}");

    // Nothing in progress any more: a second abort writes nothing, and an apply does not redeploy v2.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["abort", "-f", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no rollout in progress"), "{}", text(&out));
    let out = env.ecsop(&["apply", "-f", file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let writes = env.writes().await;
    assert!(!writes.iter().any(|w| w == "UpdateService" || w == "StopServiceDeployment"), "{writes:?}");
}
