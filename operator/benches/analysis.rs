//! Rollout analysis against moto: how long after a bad metric becomes visible ecsop stops the rollout,
//! on the test clock, and the AWS reads analysis adds per window.
//!
//! Each of `RUNS` runs (one fresh moto account each) creates a canary service through the engine, starts
//! a release, and then plays the controller on a test clock: every `--rollout-poll` (15 s) it publishes
//! the load balancer's metrics of the minutes that ended and runs `Engine::analyse`. The new revision
//! turns bad (5% 5xx instead of 0.1%) at a different second of a minute in each run. Measured: test-clock
//! seconds from the bad metric's first minute being published to StopServiceDeployment, the wall time of
//! the evaluation that stops (GetMetricData, the deployment record, the tag, the stop), and the calls per
//! judged window and between windows.
//!
//! Run: `cargo bench -p ecsop --bench analysis` (starts moto itself).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use ecsop::analysis::watch::{Outcome, Watch};
use ecsop::aws::{Calls, Clients};
use ecsop::engine::act::Quiet;
use ecsop::engine::{Engine, Options};
use ecsop_testkit::{Account, Drive, Moto};

const RUNS: u64 = 20;
const POLL: u64 = 15;
const CLUSTER: &str = "api-cluster";

fn manifest(net: &ecsop_testkit::Network, role: &str, tag: &str) -> String {
    format!(
        "apiVersion: ecsop.io/v1alpha1
kind: ApiDeployment
metadata: {{name: bench, namespace: test}}
spec:
  cluster: {CLUSTER}
  image: {{repository: shop/api, tag: \"{tag}\"}}
  container: {{port: 8080, cpu: 256, memory: 512}}
  service:
    replicas: 2
    subnets: [{a}, {b}]
    securityGroups: [{sg}]
    rollout:
      strategy: {{type: canary, bakeTimeMinutes: 10, canary: {{percent: 10, bakeTimeMinutes: 10}}}}
      infrastructureRoleArn: {role}
      analysis:
        intervalSeconds: 60
        checks:
        - {{name: errors, alb: errorRatio, max: 0.02, maxRatioToOld: 2, minRequests: 500, failedIntervals: 2}}
  loadBalancer: {{listenerArn: {listener}, vpcId: {vpc}, priority: 10, paths: [\"/bench*\"]}}
",
        a = net.subnet_ids[0],
        b = net.subnet_ids[1],
        sg = net.security_group_id,
        listener = net.listener_arn,
        vpc = net.vpc_id,
    )
}

fn target(engine: &Engine, text: &str) -> ecsop::engine::target::Target {
    let (ok, bad) = ecsop::manifest::parse(Path::new("bench.yaml"), text);
    assert!(bad.is_empty(), "{bad:?}");
    engine.target(&ok[0].resource)
}

/// A fresh account with v1 serving and v2 taking its first canary traffic.
async fn releasing(moto: &Moto) -> (Account, Engine, ecsop::engine::target::Target, String, (String, String, String)) {
    let account = moto.new_account();
    let net = account.network(CLUSTER).await.expect("network");
    let role = account.create_role("ecs-infrastructure").await.expect("role");
    account.push_image("shop/api", "v1", "v1").await.expect("push");
    account.push_image("shop/api", "v2", "v2").await.expect("push");
    let clients = Clients::from_sdk(&account.sdk_config().await, Calls::default());
    let engine = Engine::new(clients.clone(), "us-east-1");
    let v1 = target(&engine, &manifest(&net, &role, "v1"));
    engine.reconcile(&v1, Options::default(), &Quiet, Utc::now()).await.expect("create");
    account.drive(CLUSTER, "bench", Drive::Complete).await.expect("complete v1");
    engine.reconcile(&v1, Options::default(), &Quiet, Utc::now()).await.expect("record v1");
    let v2 = target(&engine, &manifest(&net, &role, "v2"));
    let reconciled = engine.reconcile(&v2, Options::default(), &Quiet, Utc::now()).await.expect("release v2");
    let revision = reconciled.revision.expect("v2 registered");
    for _ in 0..3 {
        let answer = account.drive(CLUSTER, "bench", Drive::Progress { running: None }).await.expect("drive");
        if answer["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT" {
            break;
        }
    }
    let service = clients.ecs.service(CLUSTER, "bench").await.expect("read").expect("service");
    let binding = &service.load_balancers[0];
    let dim = |arn: &str| ecsop::analysis::cloudwatch::dimension(arn).expect("arn");
    let lb = dim(&net.load_balancer_arn);
    let groups = (lb, dim(&binding.arn), dim(&binding.traffic.as_ref().expect("shift").alternate_target_group));
    (account, engine, v2, revision, groups)
}

async fn publish(account: &Account, lb: &str, group: &str, minute: SystemTime, requests: f64, errors: f64) {
    let dims =
        BTreeMap::from([("LoadBalancer".to_owned(), lb.to_owned()), ("TargetGroup".to_owned(), group.to_owned())]);
    let at = minute + Duration::from_secs(30);
    for (name, value) in [("RequestCount", requests), ("HTTPCode_Target_5XX_Count", errors)] {
        account.put_metric("AWS/ApplicationELB", name, &dims, &[(at, value, 1)]).await.expect("put");
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moto = Moto::shared().await.expect("moto starts");
    let (mut latencies, mut stop_ms) = (Vec::new(), Vec::new());
    let (mut windows, mut metric_reads, mut idle_polls, mut idle_calls) = (0u64, 0usize, 0u64, 0usize);
    for run in 0..RUNS {
        let (account, engine, target, revision, (lb, old, new)) = releasing(moto).await;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let t0 = wall - wall % 60 + 60;
        // The second of its minute the new revision turns bad: spread over the minute, run by run.
        let bad_from = t0 + 60 + (run * 37) % 60;
        let mut published = t0;
        let mut watch = Watch::new();
        let mut t = t0;
        account.clear_calls().await.expect("clear");
        loop {
            t += POLL;
            while published + 60 <= t {
                let share = ((published + 60).saturating_sub(bad_from.max(published))) as f64 / 60.0;
                publish(&account, &lb, &old, UNIX_EPOCH + Duration::from_secs(published), 20000.0, 20.0).await;
                let errors = 2000.0 * (0.001 * (1.0 - share) + 0.05 * share);
                publish(&account, &lb, &new, UNIX_EPOCH + Duration::from_secs(published), 2000.0, errors).await;
                published += 60;
            }
            let before = account.calls().await.expect("calls").len();
            let service = engine.clients().ecs.service(CLUSTER, "bench").await.expect("read").expect("service");
            let now: DateTime<Utc> = (UNIX_EPOCH + Duration::from_secs(t)).into();
            let started = Instant::now();
            let outcome = engine.analyse(&target, &service, &revision, &mut watch, now).await.expect("analyse");
            let took = started.elapsed();
            let calls = account.calls().await.expect("calls");
            // The service read above is the reconcile's own; only what analyse made is counted.
            let made = &calls[before + 1..];
            match outcome {
                Some(Outcome::Waiting) => {
                    idle_polls += 1;
                    idle_calls += made.len();
                }
                Some(Outcome::Judged(_)) => {
                    windows += 1;
                    metric_reads += made.iter().filter(|c| c.operation == "GetMetricData").count();
                }
                Some(Outcome::Stop(..)) => {
                    windows += 1;
                    metric_reads += made.iter().filter(|c| c.operation == "GetMetricData").count();
                    assert!(made.iter().any(|c| c.operation == "StopServiceDeployment"), "{made:?}");
                    // The bad minute is published (visible) when it ends.
                    let visible = bad_from - bad_from % 60 + 60;
                    latencies.push((t - visible) as f64);
                    stop_ms.push(took.as_secs_f64() * 1000.0);
                    break;
                }
                None => panic!("nothing to judge"),
            }
            assert!(t < t0 + 1800, "run {run}: no stop within 30 minutes");
        }
    }
    latencies.sort_by(f64::total_cmp);
    stop_ms.sort_by(f64::total_cmp);
    println!(
        "analysis: {RUNS} runs against moto, canary 10%, one errorRatio check (failedIntervals 2, interval 60 s), poll {POLL} s"
    );
    println!(
        "  bad metric visible -> StopServiceDeployment (test clock): p50 {:.0} s, p95 {:.0} s, max {:.0} s",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies[latencies.len() - 1]
    );
    println!(
        "  wall time of the stopping evaluation: p50 {:.1} ms, max {:.1} ms",
        percentile(&stop_ms, 0.5),
        stop_ms[stop_ms.len() - 1]
    );
    println!(
        "  GetMetricData per judged window: {:.2} ({metric_reads} over {windows} windows); AWS calls on polls between windows: {idle_calls} over {idle_polls} polls",
        metric_reads as f64 / windows as f64
    );
}
