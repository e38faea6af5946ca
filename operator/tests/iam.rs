//! The shipped IAM policy (`deploy/iam-policy.json`) evaluated by a real IAM policy engine
//! (`@cloud-copilot/iam-simulate`, `testkit/iam/`), not by our reading of AWS's documentation:
//! - every AWS call of the five examples' (and `valid.yaml`'s) whole lifecycle (create, image change,
//!   rollback, scale, delete, and delete with `deletionPolicy: Retain`) is recorded as the IAM requests
//!   AWS authorizes for it (`ecsop_testkit::iam`: the action, the resource ARN, the request and resource
//!   tags as they are at that moment, and the service keys), and each must be Allowed;
//! - calls on resources ecsop does not own, roles it may not pass, and creates without its tags must be
//!   denied wherever AWS offers a way to deny them.
//!
//! Node and npm come with the machine; the engine is installed by this test on first use (`npm ci` in
//! `testkit/iam/`, pinned by its lock file).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::Utc;
use ecsop::api::DeletionPolicy;
use ecsop::engine::act::Quiet;
use ecsop::engine::{Engine, Options};
use ecsop_testkit::iam::{IamRecorder, IamRequest};
use serde_json::{Value as Json, json};
use support::examples::{account, digest, manifests, push};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `npm ci` in testkit/iam once per lock file, one process at a time.
fn install() -> PathBuf {
    let dir = workspace().join("testkit/iam");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    fs::create_dir_all(&target).expect("target dir");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("ecsop-iam-npm.lock"))
        .expect("lock file");
    lock.lock().expect("lock");
    let wanted = fs::read_to_string(dir.join("package-lock.json")).expect("testkit/iam/package-lock.json");
    let marker = dir.join("node_modules/.ecsop-package-lock");
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .expect("npm (Node and npm are needed to evaluate the IAM policy)");
        assert!(out.status.success(), "npm ci in testkit/iam failed: {}", String::from_utf8_lossy(&out.stderr));
        fs::write(&marker, &wanted).expect("marker");
    }
    dir.join("simulate.mjs")
}

/// The engine's decision for each request: (request, decision or None when it could not evaluate it,
/// its errors).
fn simulate(requests: &[IamRequest]) -> Vec<(IamRequest, Option<String>, Vec<String>)> {
    let script = install();
    let policy: Json =
        serde_json::from_str(&fs::read_to_string(workspace().join("deploy/iam-policy.json")).expect("policy"))
            .expect("json");
    let input = json!({
        "policy": policy,
        "requests": requests.iter().enumerate().map(|(i, r)| json!({
            "id": i.to_string(), "action": r.action, "resource": r.resource, "context": r.context,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new("node")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write requests");
    }
    let out = child.wait_with_output().expect("simulate.mjs");
    // 0: everything evaluated; 1: some requests the engine could not evaluate (decision null).
    assert!(matches!(out.status.code(), Some(0 | 1)), "simulate.mjs: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("simulate.mjs answered no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), requests.len());
    requests
        .iter()
        .zip(results)
        .map(|(r, res)| {
            let errors =
                res["errors"].as_array().map(|e| e.iter().map(|x| x.to_string()).collect()).unwrap_or_default();
            (r.clone(), res["decision"].as_str().map(str::to_string), errors)
        })
        .collect()
}

/// Requests the engine has no data for: ELBv2 tagging and CreateRule on ALB target groups and listener
/// rules (its data knows only the Classic load balancer's resource type for them) and API Gateway v2's
/// paths. `iam-simulate` answers them `no.resource.types`; the structural test of the policy in
/// `chart.rs` covers these statements instead.
fn unsimulated(request: &IamRequest, errors: &[String]) -> bool {
    let elb = matches!(
        request.action.as_str(),
        "elasticloadbalancing:AddTags" | "elasticloadbalancing:RemoveTags" | "elasticloadbalancing:CreateRule"
    ) && (request.resource.contains(":targetgroup/") || request.resource.contains(":listener-rule/"));
    (elb || request.action.starts_with("apigateway:")) && errors.iter().any(|e| e.contains("no.resource.types"))
}

async fn reconcile(engine: &Engine, resource: &ecsop::api::ApiDeployment) {
    let target = engine.target(resource);
    engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("reconcile");
}

/// Every IAM request of one manifest's lifecycle, in an account of its own.
async fn lifecycle(path: &std::path::Path, policy: DeletionPolicy) -> Vec<IamRequest> {
    let (fake, mut resource) = account(path);
    resource.spec.deletion_policy = policy;
    let recorder = IamRecorder::new(&fake);
    let engine = Engine::new(recorder.clients(), "us-east-1");
    let (cluster, name) = (resource.spec.cluster.clone(), resource.metadata.name.clone().expect("name"));
    let settle = async |engine: &Engine, resource: &ecsop::api::ApiDeployment| {
        for _ in 0..3 {
            reconcile(engine, resource).await;
            if fake.service_snapshot(&cluster, &name).is_some_and(|s| s.status == "ACTIVE") {
                fake.complete(&cluster, &name);
            }
        }
        reconcile(engine, resource).await;
    };

    // Create: the repository first when ecsop owns it, then everything once the image exists.
    reconcile(&engine, &resource).await;
    push(&fake, &resource, 1);
    settle(&engine, &resource).await;

    // A new image.
    let mut next = resource.clone();
    match &next.spec.image.tag {
        Some(_) => next.spec.image.tag = Some("2.0.0".into()),
        None => next.spec.image.digest = Some(digest(2)),
    }
    push(&fake, &next, 2);
    settle(&engine, &next).await;

    // A bad image, rolled back by the circuit breaker, recorded.
    let mut bad = next.clone();
    match &bad.spec.image.tag {
        Some(_) => bad.spec.image.tag = Some("3.0.0".into()),
        None => bad.spec.image.digest = Some(digest(3)),
    }
    push(&fake, &bad, 3);
    reconcile(&engine, &bad).await;
    fake.rollback(&cluster, &name, "Essential container in task exited");
    fake.complete(&cluster, &name);
    reconcile(&engine, &bad).await;

    // Scale.
    let mut scaled = next.clone();
    scaled.spec.service.replicas += 1;
    if let Some(a) = scaled.spec.service.autoscaling.as_mut() {
        a.max_replicas += 1;
    }
    settle(&engine, &scaled).await;

    // Delete (or release, with Retain).
    let target = engine.target(&scaled);
    engine.delete(&target, Options::default(), &Quiet).await.expect("delete");
    recorder.requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_the_examples_lifecycles_is_allowed_by_the_shipped_policy() {
    let mut requests = Vec::new();
    for (_, path) in manifests() {
        for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
            requests.extend(lifecycle(&path, policy).await);
        }
    }
    // One evaluation per distinct request keeps the engine's work small.
    let mut distinct: BTreeMap<String, IamRequest> = BTreeMap::new();
    for r in requests {
        distinct.entry(serde_json::to_string(&r).expect("json")).or_insert(r);
    }
    let distinct: Vec<IamRequest> = distinct.into_values().collect();
    let actions: std::collections::BTreeSet<&str> = distinct.iter().map(|r| r.action.as_str()).collect();
    eprintln!("{} distinct IAM requests, {} actions", distinct.len(), actions.len());
    assert!(actions.len() >= 40, "the lifecycles reach most of the policy: {actions:?}");

    let mut denied = Vec::new();
    let mut skipped = 0;
    for (r, decision, errors) in simulate(&distinct) {
        match decision.as_deref() {
            Some("Allowed") => {}
            None if unsimulated(&r, &errors) => skipped += 1,
            other => denied.push(format!(
                "{} on {} ({}): {other:?} {errors:?}\n  context {:?}",
                r.action, r.resource, r.call, r.context
            )),
        }
    }
    eprintln!("{skipped} requests the engine has no data for (ELBv2 tagging and rules, API Gateway v2)");
    assert!(skipped < distinct.len() / 5, "most requests are evaluated ({skipped} of {} are not)", distinct.len());
    assert!(denied.is_empty(), "{} of {} requests denied:\n{}", denied.len(), distinct.len(), denied.join("\n"));
}

#[tokio::test]
async fn calls_on_what_ecsop_does_not_own_are_denied_wherever_aws_can_deny_them() {
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:us-east-1:123456789012:{rest}");
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, Json> {
        let mut m: BTreeMap<String, Json> =
            pairs.iter().map(|(k, v)| (format!("aws:RequestTag/{k}"), Json::from(*v))).collect();
        m.insert("aws:TagKeys".into(), json!(pairs.iter().map(|(k, _)| *k).collect::<Vec<_>>()));
        m
    };
    let resource_tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, Json> {
        pairs.iter().map(|(k, v)| (format!("aws:ResourceTag/{k}"), Json::from(*v))).collect()
    };
    let foreign = [("team", "payments"), ("managed-by", "terraform")];
    let ours = [("ecsop.io/managed-by", "ecsop"), ("ecsop.io/owner", "prod/books-api")];
    let req = |action: &str, resource: String, context: BTreeMap<String, Json>| IamRequest {
        call: "foreign".into(),
        action: action.into(),
        resource,
        context,
    };
    let service = arn("ecs", "service/api-cluster/payments");
    let repo = arn("ecr", "repository/payments");
    let tg = arn("elasticloadbalancing", "targetgroup/payments/0123456789abcdef");
    let rule =
        arn("elasticloadbalancing", "listener-rule/app/api-alb/0123456789abcdef/0123456789abcdef/0123456789abcdef");
    let sd = arn("servicediscovery", "service/srv-payments000000");
    let alarm = arn("cloudwatch", "alarm:payments-cpu-high");
    let cases = vec![
        // Changes to somebody else's resources.
        req("ecs:UpdateService", service.clone(), resource_tags(&foreign)),
        req("ecs:DeleteService", service.clone(), resource_tags(&foreign)),
        req("ecs:UpdateService", service.clone(), BTreeMap::new()),
        req("ecr:DeleteRepository", repo.clone(), resource_tags(&foreign)),
        req("ecr:PutLifecyclePolicy", repo.clone(), BTreeMap::new()),
        req("ecr:PutImageTagMutability", repo.clone(), resource_tags(&foreign)),
        req("elasticloadbalancing:DeleteTargetGroup", tg.clone(), resource_tags(&foreign)),
        req("elasticloadbalancing:ModifyTargetGroup", tg.clone(), BTreeMap::new()),
        req("elasticloadbalancing:ModifyRule", rule.clone(), resource_tags(&foreign)),
        req("elasticloadbalancing:DeleteRule", rule.clone(), BTreeMap::new()),
        req("elasticloadbalancing:SetRulePriorities", rule.clone(), BTreeMap::new()),
        req("servicediscovery:DeleteService", sd.clone(), resource_tags(&foreign)),
        req("servicediscovery:UpdateService", sd.clone(), BTreeMap::new()),
        // Claiming a foreign resource by tagging it as ecsop's, or touching others' tags.
        req("ecs:TagResource", service.clone(), tags(&ours)),
        req("ecs:UntagResource", service.clone(), [("aws:TagKeys".to_string(), json!(["team"]))].into()),
        req("ecr:UntagResource", repo.clone(), [("aws:TagKeys".to_string(), json!(["team"]))].into()),
        req("cloudwatch:TagResource", alarm.clone(), tags(&[("team", "payments")])),
        req("servicediscovery:TagResource", "*".into(), tags(&[("team", "payments")])),
        req("servicediscovery:UntagResource", "*".into(), [("aws:TagKeys".to_string(), json!(["team"]))].into()),
        // Creates without ecsop's tags.
        req("ecs:CreateService", service.clone(), BTreeMap::new()),
        req("ecs:RegisterTaskDefinition", "*".into(), tags(&[("team", "payments")])),
        req("ecr:CreateRepository", repo.clone(), BTreeMap::new()),
        req("elasticloadbalancing:CreateTargetGroup", tg.clone(), BTreeMap::new()),
        req(
            "servicediscovery:CreateService",
            arn("servicediscovery", "namespace/ns-abcdefgh12345678"),
            BTreeMap::new(),
        ),
        // Roles ecsop may not pass, or not to that service.
        req(
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/admin".into(),
            [("iam:PassedToService".to_string(), json!("ecs-tasks.amazonaws.com"))].into(),
        ),
        req(
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/ecsop/team-a/books".into(),
            [("iam:PassedToService".to_string(), json!("ec2.amazonaws.com"))].into(),
        ),
        // Alarms other than ecsop's and target tracking's.
        req("cloudwatch:DeleteAlarms", arn("cloudwatch", "alarm:billing-threshold"), BTreeMap::new()),
        req("cloudwatch:PutMetricAlarm", arn("cloudwatch", "alarm:billing-threshold"), BTreeMap::new()),
        req(
            "iam:CreateServiceLinkedRole",
            "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS".into(),
            [("iam:AWSServiceName".to_string(), json!("ecs.amazonaws.com"))].into(),
        ),
    ];
    let mut allowed = Vec::new();
    for (r, decision, errors) in simulate(&cases) {
        if decision.as_deref() != Some("ImplicitlyDenied") && decision.as_deref() != Some("ExplicitlyDenied") {
            allowed.push(format!("{} on {} {:?}: {decision:?} {errors:?}", r.action, r.resource, r.context));
        }
    }
    assert!(allowed.is_empty(), "not denied:\n{}", allowed.join("\n"));
}
