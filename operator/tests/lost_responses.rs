//! A full-featured ApiDeployment (load balancer, Cloud Map, API Gateway with a JWT authorizer, alarms)
//! against moto through the real `ecsop` binary, cut at every write:
//! - lost responses: AWS carries a write out and its answer never arrives (a timeout, a 5xx from a front
//!   end, a reset connection), and the retries repeat a write that already took effect. The create must
//!   end with exactly one of everything, without a second apply;
//! - a process killed right after any write of its create or of its delete: the next run finishes the
//!   work with exactly one of everything, or nothing left.

mod support;

use std::process::Output;

use ecsop::engine::names::Names;
use ecsop_testkit::{Fault, HttpApi};
use support::deploy::{CLUSTER, Env, complete, text};

const NS: &str = "test";
const NAME: &str = "lossy";
const REPO: &str = "lossy-api";
const TAG: &str = "v1";

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// An account with the network, a Cloud Map namespace, an HTTP API with a VPC link, the image pushed,
/// and the full-featured manifest written.
async fn prepare() -> (Env, HttpApi, std::path::PathBuf) {
    let mut env = Env::new().await;
    let namespace = env.account.cloud_map_namespace("lossy.internal", &env.net).await.expect("namespace");
    let api = env.account.http_api("lossy", &env.net).await.expect("http api");
    env.namespace = Some(namespace.clone());
    env.push(REPO, TAG).await;
    let yaml = format!(
        "apiVersion: ecsop.io/v1alpha1
kind: ApiDeployment
metadata:
  name: {NAME}
  namespace: {NS}
spec:
  cluster: {CLUSTER}
  image:
    repository: {REPO}
    tag: \"{TAG}\"
  container:
    port: 8080
    cpu: 256
    memory: 512
  service:
    replicas: 2
    subnets: [{a}, {b}]
    securityGroups: [{sg}]
    serviceDiscovery:
      namespaceId: {namespace}
      dnsRecordType: SRV
  loadBalancer:
    listenerArn: {listener}
    vpcId: {vpc}
    priority: 77
    paths: [\"/lossy*\"]
  apiGateway:
    apiId: {api_id}
    vpcLinkId: {vpc_link}
    routes:
      - key: GET /lossy
        public: true
      - key: POST /lossy
    authorizer:
      issuer: https://issuer.example.com
      audience: [lossy-api]
  alarms:
    snsTopicArns: []
    cpuHighPercent: 90
",
        a = env.net.subnet_ids[0],
        b = env.net.subnet_ids[1],
        sg = env.net.security_group_id,
        listener = env.net.listener_arn,
        vpc = env.net.vpc_id,
        api_id = api.api_id,
        vpc_link = api.vpc_link_id,
    );
    let path = env.write("lossy.yaml", &yaml);
    (env, api, path)
}

/// What exists for the ApiDeployment, counted so that duplicates show.
async fn counts(env: &Env, api: &HttpApi) -> Vec<(&'static str, usize)> {
    let names = Names::new(NS, NAME);
    let clients = env.clients().await;
    let revisions = clients.ecs.list_task_definitions(&names.family()).await.expect("revisions").len();
    let service = usize::from(clients.ecs.service(CLUSTER, NAME).await.expect("service").is_some());
    let tg = usize::from(clients.elbv2.target_group(&names.target_group()).await.expect("tg").is_some());
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let rules = rules.iter().filter(|r| r.priority.is_some()).count();
    let namespace = env.namespace.as_deref().expect("namespace");
    let discovery = usize::from(clients.cloudmap.find_service(namespace, NAME).await.expect("sd").is_some());
    let integrations = clients.apigateway.integrations(&api.api_id).await.expect("integrations").len();
    let authorizers = clients.apigateway.authorizers(&api.api_id).await.expect("authorizers").len();
    let route_count = clients.apigateway.routes(&api.api_id).await.expect("routes").len();
    let alarms = clients.cloudwatch.alarms(&format!("{}-", names.family())).await.expect("alarms").len();
    vec![
        ("revisions", revisions),
        ("services", service),
        ("target groups", tg),
        ("listener rules", rules),
        ("cloud map services", discovery),
        ("integrations", integrations),
        ("authorizers", authorizers),
        ("routes", route_count),
        ("alarms", alarms),
    ]
}

fn all_ones(counts: &[(&str, usize)]) -> bool {
    counts.iter().all(|(what, n)| if *what == "routes" { *n == 2 } else { *n == 1 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_any_write_of_a_full_create_leaves_exactly_one_of_everything() {
    // The writes of a clean create, in an account of its own.
    let (clean, api, path) = prepare().await;
    clean.account.clear_calls().await.expect("clear");
    let (out, driven) = clean.apply_and_drive(&path, NAME, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "clean apply: {}", text(&out));
    assert!(driven.is_some(), "a rollout was driven");
    let writes: Vec<String> =
        clean.account.calls().await.expect("calls").into_iter().filter(|c| c.is_write()).map(|c| c.operation).collect();
    eprintln!("a clean create writes {writes:?}");
    assert!(writes.len() >= 12, "{writes:?}");
    let clean_counts = counts(&clean, &api).await;
    assert!(all_ones(&clean_counts), "clean create: {clean_counts:?}");

    let mut failures = Vec::new();
    for (n, operation) in writes.iter().enumerate() {
        let (env, api, path) = prepare().await;
        env.account.clear_calls().await.expect("clear");
        // The n-th write is carried out and its answer lost (HTTP 500), once.
        env.account.inject(Fault::server_error().writes_only().skip(n as u32).count(1).lost()).await.expect("inject");
        let (out, _) = env.apply_and_drive(&path, NAME, None, &complete(), &[]).await;
        env.account.clear_faults().await.expect("clear faults");
        let lost = env.account.calls().await.expect("calls").into_iter().filter(|c| c.fault.is_some()).count();
        let found = counts(&env, &api).await;
        if code(&out) != 0 || !all_ones(&found) || lost != 1 {
            failures.push(format!(
                "answer of write {n} ({operation}) lost ({lost} lost): exit {}, {found:?}\n{}",
                code(&out),
                text(&out)
            ));
            continue;
        }
        // Converged: a re-apply writes nothing.
        env.account.clear_calls().await.expect("clear");
        let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
        let writes = env.writes().await;
        if code(&out) != 0 || !writes.is_empty() {
            failures.push(format!("after losing write {n} ({operation}), a re-apply wrote {writes:?}: {}", text(&out)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} lost answers went wrong:\n{}",
        failures.len(),
        writes.len(),
        failures.join("\n\n")
    );
}

/// Every write after the `n`-th fails, as if the process had died right after it: run `args`, which
/// must fail with AccessDenied's exit code having made exactly the first `n` of `clean` writes.
async fn killed_after(env: &Env, args: &[&str], n: usize, clean: &[String], context: &str) {
    env.account.clear_calls().await.expect("clear");
    env.account.inject(Fault::access_denied().writes_only().skip(n as u32)).await.expect("inject");
    let out = env.ecsop(args);
    env.account.clear_faults().await.expect("clear faults");
    assert_eq!(code(&out), 4, "{context}: the killed run: {}", text(&out));
    let calls = env.account.calls().await.expect("calls");
    let made: Vec<_> = calls.into_iter().filter(|c| c.is_write() && c.fault.is_none()).map(|c| c.operation).collect();
    assert_eq!(made, clean[..n], "{context}: the writes that went through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_create_and_its_delete_killed_after_any_write_are_finished_by_the_next_run() {
    // The writes of a clean create and a clean delete, in an account of their own.
    let (clean, api, path) = prepare().await;
    let file = path.to_str().expect("utf-8");
    clean.account.clear_calls().await.expect("clear");
    let out = clean.ecsop(&["apply", "-f", file]);
    assert_eq!(code(&out), 0, "clean apply: {}", text(&out));
    let create = clean.writes().await;
    let (out, _) = clean.apply_and_drive(&path, NAME, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "clean rollout: {}", text(&out));
    assert!(all_ones(&counts(&clean, &api).await), "clean create");
    clean.account.clear_calls().await.expect("clear");
    let out = clean.ecsop(&["delete", "-f", file]);
    assert_eq!(code(&out), 0, "clean delete: {}", text(&out));
    let delete = clean.writes().await;
    eprintln!("a clean create writes {create:?}, a clean delete {delete:?}");
    assert!(create.len() >= 12 && delete.len() >= 8, "{create:?} {delete:?}");
    let none = |found: &[(&str, usize)]| found.iter().all(|(_, n)| *n == 0);
    assert!(none(&counts(&clean, &api).await), "clean delete");

    for n in 0..create.len() {
        let context = format!("create killed after write {n} ({:?})", create.get(n));
        let (env, api, path) = prepare().await;
        let file = path.to_str().expect("utf-8");
        killed_after(&env, &["apply", "-f", file], n, &create, &context).await;
        let (out, _) = env.apply_and_drive(&path, NAME, None, &complete(), &[]).await;
        assert_eq!(code(&out), 0, "{context}: the next run: {}", text(&out));
        let found = counts(&env, &api).await;
        assert!(all_ones(&found), "{context}: {found:?}");
        env.account.clear_calls().await.expect("clear");
        let out = env.ecsop(&["apply", "-f", file]);
        assert_eq!((code(&out), env.writes().await), (0, vec![]), "{context}: a re-apply: {}", text(&out));
    }

    for n in 0..delete.len() {
        let context = format!("delete killed after write {n} ({:?})", delete.get(n));
        let (env, api, path) = prepare().await;
        let file = path.to_str().expect("utf-8");
        let (out, _) = env.apply_and_drive(&path, NAME, None, &complete(), &[]).await;
        assert_eq!(code(&out), 0, "{context}: the create: {}", text(&out));
        killed_after(&env, &["delete", "-f", file], n, &delete, &context).await;
        let out = env.ecsop(&["delete", "-f", file]);
        assert_eq!(code(&out), 0, "{context}: the next delete: {}", text(&out));
        let found = counts(&env, &api).await;
        assert!(none(&found), "{context}: left behind {found:?}");
    }
}
