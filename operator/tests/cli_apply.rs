//! The engine's acceptance criteria, proved through the real `ecsop` binary against moto: `apply`
//! creates everything owned and tagged, an unchanged manifest writes nothing, revisions are reused and
//! pruned, and `apply --wait` exits 1 on a rollback or a failed rollout and 3 on a timeout.
//!
//! moto never progresses ECS deployments; the harness plays ECS (`Env::apply_and_drive`).

mod support;

use std::path::Path;
use std::process::Output;

use ecsop::api::TagMutability;
use ecsop::aws::Tags;
use ecsop::engine::names::{Names, TAG_MANAGED_BY, TAG_OWNER, TAG_SPEC_HASH};
use ecsop_testkit::Drive;
use serde_json::Value;
use support::deploy::{CLUSTER, Env, complete, text};

/// The namespace every manifest of the template uses.
const NAMESPACE: &str = "test";

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// stdout parsed as the one JSON document `-o json` prints.
fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(output)))
}

fn names(name: &str) -> Names {
    Names::new(NAMESPACE, name)
}

#[track_caller]
fn assert_owned(what: &str, tags: &Tags, name: &str) {
    assert_eq!(tags.get(TAG_MANAGED_BY).map(String::as_str), Some("ecsop"), "{what} tags: {tags:?}");
    assert_eq!(tags.get(TAG_OWNER), Some(&format!("{NAMESPACE}/{name}")), "{what} tags: {tags:?}");
}

/// How many calls of `operation` the account received since the last clear.
async fn count(env: &Env, operation: &str) -> usize {
    env.account.calls().await.expect("call log").iter().filter(|c| c.operation == operation).count()
}

/// The task definition the ECS service is set to.
async fn service_revision(env: &Env, name: &str) -> String {
    let clients = env.clients().await;
    let service = clients.ecs.service(CLUSTER, name).await.expect("describe service").expect("service exists");
    service.task_definition
}

/// The ACTIVE revisions of the ApiDeployment's family.
async fn active_revisions(env: &Env, name: &str) -> Vec<String> {
    let clients = env.clients().await;
    clients.ecs.list_task_definitions(&names(name).family()).await.expect("list task definitions")
}

/// Write the manifest for `tag` and roll it out to completion; returns the revision ECS ran.
async fn roll_out(env: &Env, name: &str, repository: &str, tag: &str, previous: Option<&str>) -> String {
    let path = env.write(&format!("{name}.yaml"), &env.manifest(name, repository, tag, ""));
    let (out, driven) = env.apply_and_drive(&path, name, previous, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "apply {tag}:\n{}", text(&out));
    let driven = driven.unwrap_or_else(|| panic!("no new deployment for {tag}:\n{}", text(&out)));
    assert_eq!(service_revision(env, name).await, driven, "the service runs the driven revision");
    driven
}

fn status_json(env: &Env, path: &Path) -> Value {
    let out = env.ecsop(&["status", "-o", "json", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "status:\n{}", text(&out));
    json(&out)
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_everything_owned_and_tagged_and_status_reports_it() {
    let env = Env::new().await;
    let name = "create-all";
    let repository = "create-all-api";
    let extra = "  ecr: {create: true, tagMutability: IMMUTABLE, keepLastImages: 10}\n";
    let path = env.write("create-all.yaml", &env.manifest(name, repository, "1.0.0", extra));
    let file = path.to_str().expect("utf-8");

    // On an empty account the repository is one creation, its lifecycle policy one of its fields.
    let diff = env.ecsop(&["diff", "-f", file]);
    let said = String::from_utf8_lossy(&diff.stdout).to_string();
    assert_eq!(said.matches("ecr repository create-all-api").count(), 1, "{said}");
    assert!(said.contains("+ ecr repository create-all-api") && said.contains("lifecyclePolicy: - -> "), "{said}");

    // No image yet: ecsop creates the repository it owns, then stalls on the missing image.
    let out = env.ecsop(&["apply", "-f", file]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("ImageNotFound"), "{}", text(&out));
    assert!(text(&out).contains("push create-all-api:1.0.0"), "says what to push: {}", text(&out));
    let clients = env.clients().await;
    let repo = clients.ecr.repository(None, repository).await.expect("describe").expect("ecsop created the repository");
    assert_owned("repository", &clients.ecr.repository_tags(&repo.arn).await.expect("repository tags"), name);
    assert_eq!(repo.tag_mutability, TagMutability::Immutable);
    let policy = clients.ecr.lifecycle_policy(repository).await.expect("policy").expect("a lifecycle policy is set");
    let policy: Value = serde_json::from_str(&policy).expect("policy JSON");
    assert_eq!(policy["rules"][0]["selection"]["countNumber"], 10, "{policy}");
    assert!(clients.ecs.service(CLUSTER, name).await.expect("describe").is_none(), "no service without an image");

    // The pipeline pushes the image; apply --wait rolls it out.
    let digest = env.push(repository, "1.0.0").await;
    let (out, driven) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("Ready"), "{}", text(&out));
    let driven = driven.expect("ECS got a deployment");

    // The task definition: exactly one revision, owned, hashed, image pinned by digest.
    let revisions = active_revisions(&env, name).await;
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    let td_arn = revisions[0].clone();
    assert_eq!(driven, td_arn);
    let td = clients.ecs.task_definition(&td_arn).await.expect("describe task definition");
    assert_owned("task definition", &td.tags, name);
    assert!(td.tags.get(TAG_SPEC_HASH).is_some_and(|h| !h.is_empty()), "{:?}", td.tags);
    let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
    let described = ecs.describe_task_definition().task_definition(&td_arn).send().await.expect("describe");
    let image = described
        .task_definition()
        .and_then(|t| t.container_definitions().first())
        .and_then(|c| c.image())
        .expect("container image")
        .to_string();
    assert_eq!(image, format!("{}@{digest}", repo.uri), "pinned by digest");
    assert!(image.contains("@sha256:"), "{image}");

    // Target group and listener rule.
    let tg = clients.elbv2.target_group(&names(name).target_group()).await.expect("describe").expect("target group");
    assert_eq!(tg.port, 8080);
    assert_owned("target group", &clients.elbv2.tags(&tg.arn).await.expect("tags"), name);
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let rule = rules.iter().find(|r| r.target_groups == [tg.arn.clone()]).expect("a rule forwards to the target group");
    assert_eq!(rule.paths, ["/create-all*"]);
    assert_owned("listener rule", &clients.elbv2.tags(&rule.arn).await.expect("tags"), name);

    // The service: owned, running the registered revision behind the target group.
    let service = clients.ecs.service(CLUSTER, name).await.expect("describe").expect("service");
    assert_owned("service", &service.tags, name);
    assert_eq!(service.task_definition, td_arn);
    assert_eq!(service.desired_count, 2);
    assert!(service.load_balancers.iter().any(|b| b.arn == tg.arn && b.port == 8080), "{:?}", service.load_balancers);

    // status -o json reports what AWS holds.
    let doc = status_json(&env, &path);
    let status = &doc["items"][0]["status"];
    let ready = condition(status, "Ready");
    assert_eq!(ready["status"], "True", "{status:#}");
    assert_eq!(condition(status, "Stalled")["status"], "False", "{status:#}");
    assert_eq!(status["serviceArn"], service.arn.as_str(), "{status:#}");
    assert_eq!(status["targetGroupArn"], tg.arn.as_str(), "{status:#}");
    assert_eq!(status["listenerRuleArn"], rule.arn.as_str(), "{status:#}");
    assert_eq!(status["taskDefinitionArn"], td_arn.as_str(), "{status:#}");
    assert_eq!(status["image"]["digest"], digest.as_str(), "{status:#}");
    // The text form names the owned repository, read or not.
    let out = env.ecsop(&["status", "-f", file]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains(&format!("repository:      {}", repo.uri)), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reapplying_an_unchanged_manifest_makes_zero_aws_writes() {
    let env = Env::new().await;
    let name = "unchanged";
    let repository = "unchanged-api";
    let extra = "  ecr: {create: true, tagMutability: IMMUTABLE, keepLastImages: 10}\n";
    let path = env.write("unchanged.yaml", &env.manifest(name, repository, "1.0.0", extra));
    let file = path.to_str().expect("utf-8");
    let out = env.ecsop(&["apply", "-f", file]);
    assert_eq!(code(&out), 1, "the first apply creates the repository: {}", text(&out));
    env.push(repository, "1.0.0").await;
    let (out, _) = env.apply_and_drive(&path, name, None, &complete(), &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));

    // The fast path (recorded hash, immutable image) and a deep re-read (--refresh) both write nothing.
    for args in [vec!["apply", "-o", "json", "-f", file], vec!["apply", "--refresh", "-o", "json", "-f", file]] {
        env.account.clear_calls().await.expect("clear");
        let out = env.ecsop(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
        let writes = env.writes().await;
        assert!(writes.is_empty(), "{args:?} wrote {writes:?}:\n{}", text(&out));
        let doc = json(&out);
        assert_eq!(doc["awsCalls"]["writes"], 0, "{doc:#}");
        assert!(doc["awsCalls"]["reads"].as_u64().is_some_and(|r| r > 0), "{doc:#}");
        assert_eq!(doc["items"][0]["changes"], 0, "{doc:#}");
        assert_eq!(condition(&doc["items"][0]["status"], "Ready")["status"], "True", "{doc:#}");
        assert!(!env.account.calls().await.expect("calls").is_empty(), "the apply did read AWS");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_change_registers_one_revision_going_back_reuses_it_and_old_ones_are_pruned() {
    let env = Env::new().await;
    let name = "revisions";
    let repository = "revisions-api";
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"] {
        env.push(repository, tag).await;
    }
    let first = roll_out(&env, name, repository, "1.0.0", None).await;

    // 1.0.0 -> 1.1.0: exactly one registration, the service moves to it.
    env.account.clear_calls().await.expect("clear");
    let second = roll_out(&env, name, repository, "1.1.0", Some(&first)).await;
    assert_eq!(count(&env, "RegisterTaskDefinition").await, 1);
    assert_ne!(second, first);
    assert_eq!(active_revisions(&env, name).await.first(), Some(&second), "the newest revision is the one registered");

    // Back to 1.0.0: the earlier revision is reused, nothing is registered.
    env.account.clear_calls().await.expect("clear");
    let back = roll_out(&env, name, repository, "1.0.0", Some(&second)).await;
    assert_eq!(back, first, "going back reuses revision 1");
    assert_eq!(count(&env, "RegisterTaskDefinition").await, 0);
    assert_eq!(count(&env, "UpdateService").await, 1);

    // Three more versions: at most revisionHistoryLimit (3) revisions stay, never the running one.
    let mut previous = back;
    for tag in ["1.2.0", "1.3.0", "1.4.0"] {
        previous = roll_out(&env, name, repository, tag, Some(&previous)).await;
        let active = active_revisions(&env, name).await;
        assert!(active.len() <= 3, "after {tag}: {active:?}");
        assert!(active.contains(&previous), "after {tag}, the running revision {previous} is kept: {active:?}");
    }
    let active = active_revisions(&env, name).await;
    assert_eq!(active.len(), 3, "{active:?}");
    assert!(!active.contains(&first), "revision 1 was pruned: {active:?}");
    // A pruned revision is INACTIVE, not gone.
    let clients = env.clients().await;
    assert_eq!(clients.ecs.task_definition(&first).await.expect("describe").status, "INACTIVE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_makes_apply_wait_exit_1_and_is_not_retried() {
    let env = Env::new().await;
    let name = "rollback";
    let repository = "rollback-api";
    env.push(repository, "1.0.0").await;
    env.push(repository, "1.1.0").await;
    let good = roll_out(&env, name, repository, "1.0.0", None).await;

    let path = env.write("rollback.yaml", &env.manifest(name, repository, "1.1.0", ""));
    let reason = "Essential container in task exited";
    let steps = [Drive::Progress { running: Some(1) }, Drive::Rollback { reason: reason.into() }];
    let (out, driven) = env.apply_and_drive(&path, name, Some(&good), &steps, &[]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("RolledBack"), "{}", text(&out));
    assert!(text(&out).contains(reason), "the stopped-task reason is shown:\n{}", text(&out));
    let failed = driven.expect("the new revision was deployed");
    assert_ne!(failed, good);

    // A later apply of the same manifest does not push the failed revision again.
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("RolledBack"), "{}", text(&out));
    assert_eq!(count(&env, "UpdateService").await, 0, "{:?}", env.writes().await);
    assert_eq!(count(&env, "RegisterTaskDefinition").await, 0, "{:?}", env.writes().await);
    assert_ne!(service_revision(&env, name).await, failed, "the service is not set to the failed revision");

    // Once ECS finished the rollback and the failed deployment is gone, the recorded failure still holds.
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("complete the rollback");
    let clients = env.clients().await;
    let service = clients.ecs.service(CLUSTER, name).await.expect("describe").expect("service");
    assert!(service.deployments.iter().all(|d| d.task_definition != failed), "{:?}", service.deployments);
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("RolledBack"), "{}", text(&out));
    assert_eq!(count(&env, "UpdateService").await, 0, "{:?}", env.writes().await);
    assert_eq!(service_revision(&env, name).await, good);

    let doc = status_json(&env, &path);
    let status = &doc["items"][0]["status"];
    let stalled = condition(status, "Stalled");
    assert_eq!(stalled["status"], "True", "{status:#}");
    assert_eq!(stalled["reason"], "RolledBack", "{status:#}");
    assert_eq!(condition(status, "Ready")["status"], "False", "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_rollout_exits_3_after_the_timeout() {
    let env = Env::new().await;
    let name = "stuck";
    let repository = "stuck-api";
    env.push(repository, "1.0.0").await;
    let path = env.write("stuck.yaml", &env.manifest(name, repository, "1.0.0", ""));
    let started = std::time::Instant::now();
    let (out, driven) = env.apply_and_drive(&path, name, None, &[Drive::Stuck], &["--timeout", "3s"]).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("timed out after 3s"), "{}", text(&out));
    assert!(driven.is_some(), "ECS got a deployment");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_rollout_without_rollback_exits_1() {
    let env = Env::new().await;
    let name = "failing";
    let repository = "failing-api";
    env.push(repository, "1.0.0").await;
    let template = env.manifest(name, repository, "1.0.0", "");
    let anchor = "    rollout:\n      progressDeadlineSeconds: 600\n";
    assert!(template.contains(anchor), "the template changed:\n{template}");
    let manifest = template.replace(
        anchor,
        "    rollout:\n      progressDeadlineSeconds: 600\n      circuitBreaker: {enabled: true, rollback: false}\n",
    );
    let path = env.write("failing.yaml", &manifest);
    let reason = "CannotPullContainerError: pull access denied";
    let steps = [Drive::Progress { running: Some(1) }, Drive::Fail { reason: reason.into() }];
    let (out, driven) = env.apply_and_drive(&path, name, None, &steps, &[]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("RolloutFailed"), "{}", text(&out));
    assert!(!text(&out).contains("RolledBack"), "{}", text(&out));
    assert!(text(&out).contains(reason), "the stopped-task reason is shown:\n{}", text(&out));
    assert!(driven.is_some(), "ECS got a deployment");

    // The service was created with the circuit breaker set not to roll back.
    let service = env.clients().await.ecs.service(CLUSTER, name).await.expect("describe").expect("the service exists");
    let settings = service.deployment.expect("deployment settings reported");
    assert!(settings.circuit_breaker && !settings.rollback, "{settings:?}");
}
