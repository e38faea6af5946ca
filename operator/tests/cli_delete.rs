//! `ecsop delete` through the real binary against moto: everything owned goes, in order; Retain keeps
//! everything running but hands it back untagged; `--dry-run` only lists.

mod support;

use std::path::PathBuf;
use std::process::Output;

use ecsop::aws::Tags;
use ecsop::engine::names::{Names, TAG_MANAGED_BY, TAG_OWNER};
use support::deploy::{CLUSTER, Env, complete, text};

const NS: &str = "test";
const TAG: &str = "v1";

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn arg(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Deploy `name` (image `repo:v1`, pushed first) and roll it out to Ready.
async fn deploy(env: &Env, name: &str, repo: &str, extra: &str) -> PathBuf {
    env.push(repo, TAG).await;
    let path = env.write(&format!("{name}.yaml"), &env.manifest(name, repo, TAG, extra));
    let (out, driven) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(driven.is_some(), "no rollout was driven: {}", text(&out));
    path
}

fn untagged(tags: &Tags) -> bool {
    !tags.contains_key(TAG_OWNER) && !tags.contains_key(TAG_MANAGED_BY)
}

fn position(writes: &[String], operation: &str) -> usize {
    writes.iter().position(|w| w == operation).unwrap_or_else(|| panic!("no {operation} in {writes:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_leaves_nothing_owned_and_deletes_in_order() {
    let env = Env::new().await;
    let (name, repo) = ("doomed", "doomed-api");
    let names = Names::new(NS, name);
    let path = env.write("doomed.yaml", &env.manifest(name, repo, TAG, "  ecr:\n    create: true\n"));

    // ecsop creates the repository it owns; the image is not there yet.
    let out = env.ecsop(&["apply", "-f", arg(&path)]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("ImageNotFound"), "{}", text(&out));
    env.push(repo, TAG).await;
    let (out, driven) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(driven.is_some(), "{}", text(&out));

    let clients = env.clients().await;
    let tg = clients.elbv2.target_group(&names.target_group()).await.expect("tg").expect("target group exists");
    assert!(clients.ecs.service(CLUSTER, name).await.expect("service").is_some());
    assert!(clients.ecr.repository(None, repo).await.expect("repo").is_some());

    // ECS keeps the deleted service DRAINING for a while, as it does while its tasks stop.
    env.account.set_drain_reads(2).await.expect("drain");
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["delete", "--timeout", "60s", "-f", arg(&path)]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let writes = env.writes().await;
    let (rule, service, target_group) =
        (position(&writes, "DeleteRule"), position(&writes, "DeleteService"), position(&writes, "DeleteTargetGroup"));
    assert!(rule < service && service < target_group, "order: {writes:?}");
    // The target group went only after the service had drained: DRAINING twice, then gone.
    let calls: Vec<String> = env.account.calls().await.expect("calls").into_iter().map(|c| c.operation).collect();
    let deleted = calls.iter().position(|c| c == "DeleteService").expect("DeleteService");
    let tg_gone = calls.iter().position(|c| c == "DeleteTargetGroup").expect("DeleteTargetGroup");
    let polls = calls[deleted..tg_gone].iter().filter(|c| *c == "DescribeServices").count();
    assert_eq!(polls, 3, "{calls:?}");

    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    assert!(!rules.iter().any(|r| r.target_groups.contains(&tg.arn)), "a rule still forwards: {rules:#?}");
    assert!(!rules.iter().any(|r| r.priority.is_some()), "a listener rule is left: {rules:#?}");
    assert_eq!(clients.ecs.service(CLUSTER, name).await.expect("service"), None);
    assert_eq!(clients.elbv2.target_group(&names.target_group()).await.expect("tg"), None);
    let revisions = clients.ecs.list_task_definitions(&names.family()).await.expect("revisions");
    assert!(revisions.is_empty(), "ACTIVE revisions left: {revisions:?}");
    assert_eq!(clients.ecr.repository(None, repo).await.expect("repo"), None);

    // Nothing left to delete: a second delete succeeds and writes nothing.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["delete", "--timeout", "60s", "-f", arg(&path)]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(env.writes().await, Vec::<String>::new(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_retain_leaves_everything_running_and_untagged() {
    let env = Env::new().await;
    let name = "kept";
    let names = Names::new(NS, name);
    let path = deploy(&env, name, "kept-api", "  deletionPolicy: Retain\n").await;

    let clients = env.clients().await;
    let before = clients.ecs.service(CLUSTER, name).await.expect("service").expect("service exists");
    let tg = clients.elbv2.target_group(&names.target_group()).await.expect("tg").expect("target group exists");
    assert!(!untagged(&before.tags), "owned before delete: {:?}", before.tags);

    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["delete", "--timeout", "60s", "-f", arg(&path)]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let writes = env.writes().await;
    assert!(writes.iter().all(|w| w.starts_with("Untag") || w == "RemoveTags"), "Retain only removes tags: {writes:?}");

    let after = clients.ecs.service(CLUSTER, name).await.expect("service").expect("service still exists");
    assert_eq!(after.status, "ACTIVE");
    assert_eq!(after.desired_count, before.desired_count);
    assert_eq!(after.task_definition, before.task_definition);
    assert!(untagged(&after.tags), "service tags: {:?}", after.tags);

    let still = clients.elbv2.target_group(&names.target_group()).await.expect("tg").expect("target group kept");
    assert_eq!(still.arn, tg.arn);
    assert!(untagged(&clients.elbv2.tags(&tg.arn).await.expect("tg tags")), "target group still tagged");

    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let rule = rules.iter().find(|r| r.target_groups.contains(&tg.arn)).expect("the rule is kept");
    assert!(untagged(&clients.elbv2.tags(&rule.arn).await.expect("rule tags")), "rule still tagged");

    let revisions = clients.ecs.list_task_definitions(&names.family()).await.expect("revisions");
    assert!(revisions.contains(&after.task_definition), "{revisions:?}");
    for arn in &revisions {
        let td = clients.ecs.task_definition(arn).await.expect("task definition");
        assert!(untagged(&td.tags), "{arn}: {:?}", td.tags);
    }

    // Nothing is ecsop's anymore: a second delete writes nothing.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["delete", "--timeout", "60s", "-f", arg(&path)]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(env.writes().await, Vec::<String>::new(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_dry_run_writes_nothing_and_lists_the_steps() {
    let env = Env::new().await;
    let name = "spared";
    let names = Names::new(NS, name);
    let path = deploy(&env, name, "spared-api", "").await;

    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["delete", "--dry-run", "-f", arg(&path)]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(env.writes().await, Vec::<String>::new(), "{}", text(&out));

    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in [
        "- listener rule".to_string(),
        format!("- ecs service {name}"),
        format!("- target group {}", names.target_group()),
        "- task definition".to_string(),
    ] {
        assert!(stdout.contains(&step), "missing '{step}' in:\n{stdout}");
    }
    let order: Vec<usize> =
        ["listener rule", "ecs service", "target group"].iter().map(|s| stdout.find(s).expect("listed")).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "steps out of order:\n{stdout}");

    let clients = env.clients().await;
    let service = clients.ecs.service(CLUSTER, name).await.expect("service").expect("service still exists");
    assert_eq!(service.status, "ACTIVE");
    assert!(clients.elbv2.target_group(&names.target_group()).await.expect("tg").is_some());
}
