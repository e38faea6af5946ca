//! Robustness of `ecsop apply` through the real binary against moto: throttling, AccessDenied, a
//! process that dies after any one of its writes, and invalid input that must never reach AWS.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use aws_sdk_ecs as ecs;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use ecsop::engine::names::Names;
use ecsop_testkit::Fault;
use support::corpus;
use support::deploy::{CLUSTER, Env, text};

const NS: &str = "test";
const REPO: &str = "robust-api";
const TAG: &str = "v1";

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Push the image and write the plain manifest (no `ecr:`, with the template's load balancer).
async fn prepare(env: &Env, name: &str) -> std::path::PathBuf {
    env.push(REPO, TAG).await;
    env.write(&format!("{name}.yaml"), &env.manifest(name, REPO, TAG, ""))
}

/// What exists in the account for the ApiDeployment `name`, counted so duplicates show.
#[derive(Debug)]
struct Inventory {
    /// Target groups whose name starts with the derived name: (name, ARN).
    target_groups: Vec<(String, String)>,
    /// ECS services of the cluster named `name`, with their status.
    services: Vec<(String, String)>,
    /// ACTIVE task-definition revisions of the family.
    revisions: Vec<String>,
    /// Listener rules other than the default one: (ARN, forwarded target groups).
    rules: Vec<(String, Vec<String>)>,
}

async fn inventory(env: &Env, name: &str) -> Inventory {
    let names = Names::new(NS, name);
    let sdk = env.sdk().await;
    let clients = env.clients().await;

    let tgs = elbv2::Client::new(&sdk).describe_target_groups().page_size(400).send().await.expect("target groups");
    let target_groups = tgs
        .target_groups()
        .iter()
        .filter_map(|t| Some((t.target_group_name()?.to_string(), t.target_group_arn()?.to_string())))
        .filter(|(n, _)| n.starts_with(&names.target_group()))
        .collect();

    let ecs_client = ecs::Client::new(&sdk);
    let listed = ecs_client.list_services().cluster(CLUSTER).send().await.expect("list services");
    let arns: Vec<String> = listed.service_arns().to_vec();
    let mut services = Vec::new();
    if !arns.is_empty() {
        let described =
            ecs_client.describe_services().cluster(CLUSTER).set_services(Some(arns)).send().await.expect("describe");
        for s in described.services() {
            if s.service_name() == Some(name) {
                services.push((s.service_arn().unwrap_or_default().to_string(), s.status().unwrap_or_default().into()));
            }
        }
    }

    let revisions = clients.ecs.list_task_definitions(&names.family()).await.expect("list task definitions");
    let rules = clients
        .elbv2
        .rules(&env.net.listener_arn)
        .await
        .expect("rules")
        .into_iter()
        .filter(|r| r.priority.is_some())
        .map(|r| (r.arn, r.target_groups))
        .collect();
    Inventory { target_groups, services, revisions, rules }
}

/// Exactly one of everything, wired together.
fn assert_single(inv: &Inventory, context: &str) {
    assert_eq!(inv.target_groups.len(), 1, "{context}: target groups {inv:#?}");
    let active: Vec<_> = inv.services.iter().filter(|(_, s)| s == "ACTIVE").collect();
    assert_eq!(active.len(), 1, "{context}: services {inv:#?}");
    assert_eq!(inv.revisions.len(), 1, "{context}: ACTIVE revisions {inv:#?}");
    let tg = &inv.target_groups[0].1;
    let forwarding: Vec<_> = inv.rules.iter().filter(|(_, tgs)| tgs.contains(tg)).collect();
    assert_eq!(forwarding.len(), 1, "{context}: rules forwarding to {tg}: {inv:#?}");
    assert_eq!(inv.rules.len(), 1, "{context}: listener rules {inv:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_while_30_percent_of_calls_are_throttled() {
    let env = Env::new().await;
    let name = "throttled";
    let path = prepare(&env, name).await;
    env.account.clear_calls().await.expect("clear");
    env.account.inject(Fault::throttle().probability(0.3)).await.expect("inject");

    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    env.account.clear_faults().await.expect("clear faults");
    assert_eq!(code(&out), 0, "{}", text(&out));

    let calls = env.account.calls().await.expect("calls");
    let throttled = calls.iter().filter(|c| c.fault.as_deref() == Some("throttle")).count();
    assert!(throttled > 0, "no call was throttled: {calls:#?}");

    let inv = inventory(&env, name).await;
    assert_single(&inv, "after a throttled apply");

    // Converged: another apply has nothing left to write.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(env.writes().await, Vec::<String>::new(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_waits_out_aws_propagating_a_change_within_the_same_run() {
    let env = Env::new().await;
    let name = "settling";
    env.push(REPO, TAG).await;
    let yaml = env.manifest(name, REPO, TAG, "").replace(
        "    rollout:\n",
        "    autoscaling: {minReplicas: 2, maxReplicas: 4, targetCpuPercent: 60}\n    rollout:\n",
    );
    let path = env.write("settling.yaml", &yaml);
    // For two seconds after each change, ECS does not see the new rule's load balancer and Application
    // Auto Scaling does not see the new service, as on AWS.
    env.account.set_propagation_delay(Duration::from_secs(2)).await.expect("propagation");
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let calls = env.account.calls().await.expect("calls");
    let answers = |service: &str, operation: &str| -> Vec<Option<u16>> {
        let of = |c: &&ecsop_testkit::Call| c.operation == operation && c.service.as_deref() == Some(service);
        calls.iter().filter(of).map(|c| c.status).collect()
    };
    let create = answers("ecs", "CreateService");
    assert!(create.len() >= 2 && create[0] == Some(400), "refused, then sent again: {create:?}");
    assert_eq!(create.last(), Some(&Some(200)), "{create:?}");
    let register = answers("application-autoscaling", "RegisterScalableTarget");
    assert!(register.len() >= 2 && register[0] == Some(400), "refused, then sent again: {register:?}");
    assert_eq!(register.last(), Some(&Some(200)), "{register:?}");

    let inv = inventory(&env, name).await;
    assert_single(&inv, "after waiting out propagation");
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!((code(&out), env.writes().await), (0, vec![]), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_fails_fast_with_exit_4_and_no_retry() {
    let env = Env::new().await;
    let name = "denied";
    let path = prepare(&env, name).await;
    env.account.clear_calls().await.expect("clear");
    env.account.inject(Fault::access_denied().service("ecs").operation("CreateService")).await.expect("inject");

    let started = Instant::now();
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    let took = started.elapsed();
    env.account.clear_faults().await.expect("clear faults");

    let all = text(&out);
    assert_eq!(code(&out), 4, "{all}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AccessDenied"), "{stderr}");
    assert!(stderr.contains("CreateService"), "{stderr}");

    let calls = env.account.calls().await.expect("calls");
    let attempts: Vec<_> = calls.iter().filter(|c| c.operation == "CreateService").collect();
    assert_eq!(attempts.len(), 1, "CreateService attempts: {attempts:#?}");
    assert_eq!(attempts[0].fault.as_deref(), Some("access_denied"), "{attempts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_killed_after_any_write_converges_on_the_next_apply_without_duplicates() {
    // How many writes a clean apply makes, in an account of its own.
    let clean = Env::new().await;
    let path = prepare(&clean, "killed").await;
    clean.account.clear_calls().await.expect("clear");
    let out = clean.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let writes = clean.writes().await;
    eprintln!("a clean apply writes {writes:?}");
    assert!(writes.len() >= 5, "a clean apply writes the revision, target group, rule, service: {writes:?}");
    assert_single(&inventory(&clean, "killed").await, "clean apply");

    for n in 0..writes.len() {
        let context = format!("killed after write {n} of {writes:?}");
        let env = Env::new().await;
        let path = prepare(&env, "killed").await;
        let arg = path.to_str().expect("utf-8");

        // Every write after the n-th fails, as if the process had died right after it.
        env.account.clear_calls().await.expect("clear");
        env.account.inject(Fault::access_denied().writes_only().skip(n as u32)).await.expect("inject");
        let out = env.ecsop(&["apply", "-f", arg]);
        env.account.clear_faults().await.expect("clear faults");
        assert_eq!(code(&out), 4, "{context}: first apply: {}", text(&out));
        let made: Vec<_> = env
            .account
            .calls()
            .await
            .expect("calls")
            .into_iter()
            .filter(|c| c.is_write() && c.fault.is_none())
            .map(|c| c.operation)
            .collect();
        assert_eq!(made, writes[..n], "{context}: the writes that went through");

        let out = env.ecsop(&["apply", "-f", arg]);
        assert_eq!(code(&out), 0, "{context}: second apply: {}", text(&out));
        assert_single(&inventory(&env, "killed").await, &context);

        env.account.clear_calls().await.expect("clear");
        let out = env.ecsop(&["apply", "-f", arg]);
        assert_eq!(code(&out), 0, "{context}: third apply: {}", text(&out));
        assert_eq!(env.writes().await, Vec::<String>::new(), "{context}: third apply: {}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_manifest_exits_2_without_any_aws_call() {
    let env = Env::new().await;
    let cases = corpus::cases();
    assert!(cases.len() >= 25, "{}", cases.len());
    env.account.clear_calls().await.expect("clear");
    for (i, case) in cases.iter().enumerate() {
        let yaml = serde_yaml::to_string(&corpus::manifest(case)).expect("yaml");
        let path = env.write(&format!("invalid-{i}.yaml"), &yaml);
        let arg = path.to_str().expect("utf-8");
        for command in ["apply", "diff"] {
            let out = env.ecsop(&[command, "-f", arg]);
            let all = text(&out);
            assert_eq!(code(&out), 2, "{command} of '{}': {all}", case.name);
            assert!(all.contains(case.path), "{command} of '{}' does not name {}: {all}", case.name, case.path);
        }
    }
    let calls = env.account.calls().await.expect("calls");
    assert!(calls.is_empty(), "invalid manifests reached AWS: {calls:#?}");
}
