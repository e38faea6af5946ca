//! Rollout strategies against moto, through the real `ecsop` binary: blueGreen, canary and linear on
//! ECS's own deployment strategies, with the second target group, the weighted production rule and the
//! infrastructure role ecsop owns or names; and switching strategy on a live service.
//!
//! moto neither validates nor plays ECS's native strategies; the test layer does both (lifecycle stages,
//! rule weights, the target-group swap at the end), and the harness drives it step by step as ECS would.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use ecsop::aws::{Rule, Strategy};
use ecsop::engine::names::Names;
use ecsop_testkit::Drive;
use support::deploy::{CLUSTER, Env, complete, text};

const NAMESPACE: &str = "test";

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// The `rollout:` block (under `spec.service`) of a strategy, with the role.
fn rollout(strategy: &str, role: &str) -> String {
    let strategy = match strategy {
        "rolling" => return String::new(),
        "blueGreen" => "{type: blueGreen, bakeTimeMinutes: 5}".to_string(),
        "canary" => "{type: canary, bakeTimeMinutes: 5, canary: {percent: 10, bakeTimeMinutes: 2}}".to_string(),
        "linear" => "{type: linear, linear: {stepPercent: 30, stepBakeTimeMinutes: 1}}".to_string(),
        other => panic!("no strategy {other}"),
    };
    format!("      strategy: {strategy}\n      infrastructureRoleArn: {role}\n")
}

/// The template's manifest with `strategy` spliced into `spec.service.rollout`.
fn manifest(env: &Env, name: &str, tag: &str, strategy: &str, role: &str) -> String {
    let base = env.manifest(name, "shop/api", tag, "");
    let anchor = "      progressDeadlineSeconds: 600\n";
    assert!(base.contains(anchor), "the template has a rollout block");
    base.replacen(anchor, &format!("{anchor}{}", rollout(strategy, role)), 1)
}

/// Our production rule on the fixture's listener.
async fn rule(env: &Env, name: &str) -> Rule {
    our_rule(env, name, false).await
}

/// Our production rule, or our test-traffic rule, on the fixture's listener.
async fn our_rule(env: &Env, name: &str, test: bool) -> Rule {
    let clients = env.clients().await;
    let names = Names::new(NAMESPACE, name);
    let mut groups = Vec::new();
    for group in [names.target_group(), names.alternate_target_group()] {
        groups.extend(clients.elbv2.target_group(&group).await.expect("describe target group").map(|t| t.arn));
    }
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("describe rules");
    rules
        .into_iter()
        .find(|r| r.header.is_some() == test && r.target_groups.iter().any(|t| groups.contains(t)))
        .unwrap_or_else(|| panic!("no rule forwards to {groups:?}"))
}

async fn service(env: &Env, name: &str) -> ecsop::aws::Service {
    let clients = env.clients().await;
    clients.ecs.service(CLUSTER, name).await.expect("describe service").expect("service exists")
}

/// How many calls of `operation` the account received since the last clear.
async fn count(env: &Env, operation: &str) -> usize {
    env.account.calls().await.expect("call log").iter().filter(|c| c.operation == operation).count()
}

/// One step of the layer's lifecycle, as the drive endpoint answers it.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    stage: String,
    weights: BTreeMap<String, i64>,
}

/// Run `ecsop apply --wait` on `path` while the harness takes the next new deployment (of a revision
/// other than `previous`) through ECS's lifecycle one step at a time until BAKE_TIME, then completes it.
/// Returns ecsop's output, the steps seen and the revision driven.
async fn release(env: &Env, path: &Path, name: &str, previous: &str) -> (Output, Vec<Step>, String) {
    let args = ["apply", "--wait", "--poll-interval", "200ms", "-f", path.to_str().expect("utf-8 path")];
    let child = env.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ecsop");
    let driven = env
        .account
        .drive_next_rollout(CLUSTER, name, Some(previous), &[], Duration::ZERO, Duration::from_secs(60))
        .await
        .expect("a new deployment starts");
    let mut steps = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Each step waits out its bake on the layer's test clock.
        env.account.drive(CLUSTER, name, Drive::Advance { seconds: 3600 }).await.expect("advance the clock");
        let answer = env.account.drive(CLUSTER, name, Drive::Progress { running: None }).await.expect("drive");
        let stage = answer["lifecycleStage"].as_str().unwrap_or_default().to_string();
        let weights = answer["weights"]
            .as_object()
            .map(|w| w.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1))).collect())
            .unwrap_or_default();
        let step = Step { stage: stage.clone(), weights };
        if steps.last() != Some(&step) {
            steps.push(step);
        }
        if stage == "BAKE_TIME" {
            break;
        }
    }
    // Completing before the final bake has passed is refused, as ECS would not finish yet (the linear
    // manifest has no final bake).
    let manifest = std::fs::read_to_string(path).expect("manifest");
    if !manifest.contains("type: linear") {
        assert!(env.account.drive(CLUSTER, name, Drive::Complete).await.is_err(), "completed before the bake");
    }
    env.account.drive(CLUSTER, name, Drive::Advance { seconds: 3600 }).await.expect("advance the clock");
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("complete after the bake");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    (output, steps, driven)
}

/// The new revision's share of production traffic at each step that shifted it.
fn shares(steps: &[Step], green: &str) -> Vec<i64> {
    let mut shares: Vec<i64> = steps
        .iter()
        .filter(|s| s.stage == "PRODUCTION_TRAFFIC_SHIFT" || s.stage == "BAKE_TIME")
        .filter_map(|s| s.weights.get(green).copied())
        .collect();
    shares.dedup();
    shares
}

/// Creates the service with `strategy`, checks what ecsop set up for it, then releases v2 and checks
/// ECS's lifecycle ran with the strategy's steps, the old revision drained and the groups swapped.
async fn a_good_release_completes(strategy: &str, expected_shares: &[i64]) {
    let env = Env::new().await;
    let name = format!("str-{}", strategy.to_lowercase());
    let role = env.account.create_role("ecs-infrastructure").await.expect("role");
    env.push("shop/api", "v1").await;
    env.push("shop/api", "v2").await;
    let path = env.write("app.yaml", &manifest(&env, &name, "v1", strategy, &role));
    let (out, first) = env.apply_and_drive(&path, &name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "create with {strategy}:\n{}", text(&out));
    let first = first.expect("the first deployment was driven");
    assert_eq!(count(&env, "CreateService").await, 1);
    assert_eq!(count(&env, "UpdateService").await, 0, "the service is created with its strategy, not switched to it");

    let svc = service(&env, &name).await;
    let deployment = svc.deployment.expect("ECS reports the deployment configuration");
    assert_eq!(deployment.strategy.as_ecs(), strategy_ecs(strategy), "{deployment:?}");
    let binding = svc.load_balancers.first().expect("a load balancer").clone();
    let traffic = binding.traffic.clone().expect("the load balancer carries ECS's advancedConfiguration");
    assert_eq!(traffic.role_arn, role);
    let names = Names::new(NAMESPACE, &name);
    assert!(binding.arn.contains(&format!("/{}/", names.target_group())), "{binding:?}");
    assert!(traffic.alternate_target_group.contains(&format!("/{}/", names.alternate_target_group())), "{traffic:?}");
    let production = rule(&env, &name).await;
    assert_eq!(traffic.production_rule, production.arn);
    assert_eq!(production.weight(&binding.arn), Some(100), "{production:?}");
    assert_eq!(production.weight(&traffic.alternate_target_group), Some(0), "{production:?}");

    // An unchanged manifest writes nothing, whatever ECS does with the weights.
    env.account.clear_calls().await.expect("clear");
    let again = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(env.writes().await, Vec::<String>::new(), "an in-sync apply writes nothing");

    // Release v2: ECS runs it beside v1 in the alternate group and moves the weights.
    let path = env.write("app.yaml", &manifest(&env, &name, "v2", strategy, &role));
    let (out, steps, driven) = release(&env, &path, &name, &first).await;
    assert_eq!(code(&out), 0, "release with {strategy}:\n{}\n{steps:?}", text(&out));
    let stages: Vec<&str> = steps.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>();
    let mut order = stages.clone();
    order.dedup();
    assert_eq!(order, ["SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME"], "{steps:?}");
    let green = traffic.alternate_target_group.clone();
    assert_eq!(shares(&steps, &green), expected_shares, "{steps:?}");

    let svc = service(&env, &name).await;
    assert_eq!(svc.task_definition, driven);
    assert_eq!(svc.deployments.len(), 1, "the old revision drained: {:?}", svc.deployments);
    let now = svc.load_balancers.first().expect("a load balancer").clone();
    assert_eq!(now.arn, green, "ECS swapped the groups: the new revision's group serves");
    let rule_now = rule(&env, &name).await;
    assert_eq!(rule_now.weight(&green), Some(100), "{rule_now:?}");

    // After the swap, an unchanged manifest still writes nothing: ecsop follows ECS's swap.
    env.account.clear_calls().await.expect("clear");
    let again = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(env.writes().await, Vec::<String>::new(), "an in-sync apply after the swap writes nothing");
}

fn strategy_ecs(strategy: &str) -> &'static str {
    match strategy {
        "blueGreen" => "BLUE_GREEN",
        "canary" => "CANARY",
        "linear" => "LINEAR",
        _ => "ROLLING",
    }
}

#[tokio::test]
async fn a_good_blue_green_release_moves_all_traffic_at_once_then_bakes() {
    a_good_release_completes("blueGreen", &[100]).await;
}

#[tokio::test]
async fn a_good_canary_release_moves_its_share_first_then_the_rest() {
    a_good_release_completes("canary", &[10, 100]).await;
}

#[tokio::test]
async fn a_good_linear_release_moves_traffic_in_equal_steps() {
    a_good_release_completes("linear", &[30, 60, 90, 100]).await;
}

#[tokio::test]
async fn switching_rolling_to_canary_and_back_never_recreates_the_service_or_drops_traffic() {
    let env = Env::new().await;
    let name = "switcher";
    let role = env.account.create_role("ecs-infrastructure").await.expect("role");
    env.push("shop/api", "v1").await;
    env.push("shop/api", "v2").await;
    env.push("shop/api", "v3").await;
    let path = env.write("app.yaml", &manifest(&env, name, "v1", "rolling", &role));
    let (out, first) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "create rolling:\n{}", text(&out));
    let first = first.expect("driven");
    let serving = service(&env, name).await.load_balancers[0].arn.clone();
    env.account.clear_calls().await.expect("clear");

    // Rolling to canary, with a release in the same change.
    let path = env.write("app.yaml", &manifest(&env, name, "v2", "canary", &role));
    let (out, steps, second) = release(&env, &path, name, &first).await;
    assert_eq!(code(&out), 0, "to canary:\n{}\n{steps:?}", text(&out));
    let svc = service(&env, name).await;
    assert!(matches!(svc.deployment.map(|d| d.strategy), Some(Strategy::Canary { percent: 10, .. })), "{svc:?}");
    // The whole time, the rule forwarded to the group that served (never to nothing).
    let rule_now = rule(&env, name).await;
    assert!(rule_now.target_groups.contains(&serving), "{rule_now:?}");
    assert_eq!(rule_now.weight(&svc.load_balancers[0].arn), Some(100), "{rule_now:?}");

    // Canary back to rolling, with a release.
    let path = env.write("app.yaml", &manifest(&env, name, "v3", "rolling", &role));
    let (out, _) = env.apply_and_drive(&path, name, Some(&second), &complete(), &[]).await;
    assert_eq!(code(&out), 0, "back to rolling:\n{}", text(&out));
    let svc = service(&env, name).await;
    assert_eq!(svc.deployment.map(|d| d.strategy), Some(Strategy::Rolling), "{svc:?}");
    let serving_now = svc.load_balancers[0].arn.clone();
    assert!(svc.load_balancers[0].traffic.is_none(), "{svc:?}");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rule_now = rule(&env, name).await;
    assert_eq!(rule_now.target_groups, [serving_now], "a rolling service's rule forwards to one group");

    assert_eq!(count(&env, "CreateService").await, 0, "switching strategy never creates the service");
    assert_eq!(count(&env, "DeleteService").await, 0, "switching strategy never deletes the service");
    // And an in-sync re-apply writes nothing.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(env.writes().await, Vec::<String>::new());
}

/// A strategy that shifts traffic without a load balancer, or without the role, is refused before any
/// AWS call, naming the field.
#[tokio::test]
async fn a_traffic_shifting_strategy_without_a_load_balancer_or_role_is_refused_naming_the_field() {
    let env = Env::new().await;
    let no_role = manifest(&env, "norole", "v1", "canary", "X").replace("      infrastructureRoleArn: X\n", "");
    let path = env.write("norole.yaml", &no_role);
    let out = env.ecsop(&["validate", "-f", path.to_str().expect("utf-8")]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("infrastructureRoleArn"), "{}", text(&out));

    let role = "arn:aws:iam::123456789012:role/ecs-infrastructure";
    let with_lb = manifest(&env, "nolb", "v1", "blueGreen", role);
    let start = with_lb.find("  loadBalancer:").expect("template has a load balancer");
    let end = with_lb.find("  revisionHistoryLimit").expect("template has a history limit");
    let without = format!("{}{}", &with_lb[..start], &with_lb[end..]);
    let path = env.write("nolb.yaml", &without);
    let out = env.ecsop(&["validate", "-f", path.to_str().expect("utf-8")]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("service.rollout.strategy.type"), "{}", text(&out));
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(env.account.calls().await.expect("calls").is_empty(), "refused before any AWS call");
}

#[tokio::test]
async fn a_test_listener_rule_reaches_only_the_new_revision_before_production_traffic_moves() {
    let env = Env::new().await;
    let name = "tested";
    let role = env.account.create_role("ecs-infrastructure").await.expect("role");
    env.push("shop/api", "v1").await;
    env.push("shop/api", "v2").await;
    let with_test = |tag: &str| {
        let base = manifest(&env, name, tag, "canary", &role);
        let priority = 1 + (name.bytes().map(u32::from).sum::<u32>() % 40000);
        base.replacen(
            "canary: {percent: 10, bakeTimeMinutes: 2}}",
            &format!(
                "canary: {{percent: 10, bakeTimeMinutes: 2}}, testTraffic: {{priority: {}, header: {{name: X-Canary, value: \"1\"}}}}}}",
                priority - 1
            ),
            1,
        )
    };
    let path = env.write("app.yaml", &with_test("v1"));
    let (out, first) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "create:\n{}", text(&out));
    let first = first.expect("driven");

    let svc = service(&env, name).await;
    let traffic = svc.load_balancers[0].traffic.clone().expect("traffic shifting");
    let test_rule = our_rule(&env, name, true).await;
    assert_eq!(traffic.test_rule.as_deref(), Some(test_rule.arn.as_str()), "ECS names the test rule");
    let header = test_rule.header.clone().expect("a header condition");
    assert_eq!((header.name.as_str(), header.values.as_slice()), ("X-Canary", ["1".to_string()].as_slice()));
    assert_eq!(test_rule.paths, rule(&env, name).await.paths, "the production rule's paths");
    let (serving, green) = (svc.load_balancers[0].arn.clone(), traffic.alternate_target_group.clone());

    // Release v2: after scale-up, test requests reach only v2 while production stays on v1.
    let path = env.write("app.yaml", &with_test("v2"));
    let args = ["apply", "-f", path.to_str().expect("utf-8")];
    let out = env.ecsop(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    env.account
        .drive_next_rollout(CLUSTER, name, Some(&first), &[], Duration::ZERO, Duration::from_secs(30))
        .await
        .expect("v2 deploys");
    let mut stage = String::new();
    for _ in 0..4 {
        let answer = env.account.drive(CLUSTER, name, Drive::Progress { running: None }).await.expect("drive");
        stage = answer["lifecycleStage"].as_str().unwrap_or_default().to_string();
        if stage == "TEST_TRAFFIC_SHIFT" {
            break;
        }
    }
    assert_eq!(stage, "TEST_TRAFFIC_SHIFT");
    let test_rule = our_rule(&env, name, true).await;
    assert_eq!((test_rule.weight(&green), test_rule.weight(&serving)), (Some(100), Some(0)), "{test_rule:?}");
    let production = rule(&env, name).await;
    assert_eq!((production.weight(&green), production.weight(&serving)), (Some(0), Some(100)), "{production:?}");
    // ecsop leaves ECS's weights alone meanwhile.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let writes = env.writes().await;
    assert!(!writes.iter().any(|w| w == "ModifyRule" || w == "DeleteRule" || w == "CreateRule"), "{writes:?}");
}
