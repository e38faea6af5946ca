//! The reference architectures in `examples/`, each applied through the real `ecsop` binary against the
//! local emulator: `diff` on an account holding none of it lists exactly what `apply` then creates, the
//! rollout is driven to completion, every piece the example's README says ecsop owns is checked, a
//! re-apply writes nothing, and `delete` leaves nothing owned. The seed-specific features (promotion
//! tag, scan gate, alarm-driven rollback) are exercised on the way.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ecsop::engine::names::Names;
use support::deploy::{CLUSTER, Env, complete, text, through_lifecycle};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// The placeholder ids the example manifests carry, and what replaces them in a test account.
struct Placeholders(BTreeMap<&'static str, String>);

impl Placeholders {
    fn new(env: &Env) -> Self {
        let net = &env.net;
        Placeholders(BTreeMap::from([
            ("subnet-0aaaaaaaaaaaaaaa1", net.subnet_ids[0].clone()),
            ("subnet-0aaaaaaaaaaaaaaa2", net.subnet_ids[1].clone()),
            ("sg-0aaaaaaaaaaaaaaa1", net.security_group_id.clone()),
            ("vpc-0aaaaaaaaaaaaaaa1", net.vpc_id.clone()),
            (
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/0aaaaaaaaaaaaaa1/0aaaaaaaaaaaaa80",
                net.listener_arn.clone(),
            ),
            ("123456789012", env.account.id().to_string()),
        ]))
    }

    fn set(&mut self, placeholder: &'static str, value: String) {
        self.0.insert(placeholder, value);
    }

    /// The example file with every placeholder replaced, written to the test's directory.
    fn write(&self, env: &Env, example: &str, file: &str) -> PathBuf {
        let mut yaml = std::fs::read_to_string(Path::new(EXAMPLES).join(example).join(file)).expect("read example");
        // Longest first: the account id is part of the ARN placeholders.
        let mut pairs: Vec<_> = self.0.iter().collect();
        pairs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (from, to) in pairs {
            yaml = yaml.replace(from, to);
        }
        env.write(file, &yaml)
    }
}

/// The writes `diff` lists (`+ ecs service books-api`), the promotion excepted.
fn diff_lines(stdout: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("+ ") || l.starts_with("~ ") || l.starts_with("- "))
        .map(str::to_string)
        .collect()
}

/// The writes `apply` reports doing (`owner: + subject: changes`), the promotion excepted: it
/// follows a completed rollout, which no plan made before the rollout can list.
fn apply_lines(stderr: &[u8], owner: &str) -> BTreeSet<String> {
    let prefix = format!("{owner}: ");
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter(|l| l.starts_with("+ ") || l.starts_with("~ ") || l.starts_with("- "))
        .map(|l| l.split(": ").next().unwrap_or(l).to_string())
        .filter(|l| !l.contains(" ecr tag "))
        .collect()
}

/// One ApiDeployment of an example.
struct Deployment<'a> {
    cluster: &'a str,
    path: PathBuf,
    names: Names,
    repository: &'a str,
    tag: &'a str,
    owns_repository: bool,
}

impl Deployment<'_> {
    fn owner(&self) -> String {
        self.names.owner()
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

/// diff, apply (creating the repository first when the example owns it, then pushing the image), drive
/// the rollout, compare what diff listed with what apply did, and re-apply with zero writes.
async fn deploy(env: &Env, d: &Deployment<'_>) -> String {
    if d.owns_repository {
        let diff = env.ecsop(&["diff", "-f", d.path()]);
        let planned = diff_lines(&diff.stdout);
        assert!(!planned.is_empty(), "{}", text(&diff));
        // Only the repository (and its settings) can be made before an image exists.
        assert!(planned.contains(&format!("+ ecr repository {}", d.repository)), "{planned:?}");
        assert!(planned.iter().all(|l| l.ends_with(&format!("ecr repository {}", d.repository))), "{planned:?}");
        let out = env.ecsop(&["apply", "-f", d.path()]);
        assert_eq!(out.status.code(), Some(1), "stalls at ImageNotFound: {}", text(&out));
        assert!(text(&out).contains("ImageNotFound"), "{}", text(&out));
        assert_eq!(apply_lines(&out.stderr, &d.owner()), planned, "apply did what diff listed: {}", text(&out));
    }
    let digest = env.push(d.repository, d.tag).await;
    let diff = env.ecsop(&["diff", "-f", d.path()]);
    assert_eq!(diff.status.code(), Some(1), "diff finds changes: {}", text(&diff));
    let planned = diff_lines(&diff.stdout);
    let (out, driven) = env.apply_and_drive_in(d.cluster, &d.path, d.names.service(), None, &complete(), &[]).await;
    assert!(out.status.success(), "apply --wait: {}", text(&out));
    assert!(driven.is_some(), "a rollout was driven");
    assert_eq!(apply_lines(&out.stderr, &d.owner()), planned, "apply did what diff listed: {}", text(&out));
    assert!(text(&out).contains("Ready"), "{}", text(&out));
    check_core(env, d, &digest).await;
    zero_writes(env, d).await;
    digest
}

/// The pieces every example owns: the service running the pinned image (owned), its revisions, the
/// repository when the example creates it, and with a load balancer the target group and the rule
/// matching the manifest's hosts and paths.
async fn check_core(env: &Env, d: &Deployment<'_>, digest: &str) {
    let yaml = std::fs::read_to_string(&d.path).expect("read manifest");
    let value: serde_json::Value = serde_yaml::from_str(&yaml).expect("yaml");
    let spec = ecsop::api::validate_object(&value).unwrap_or_else(|e| panic!("{e:?}")).spec;
    let clients = env.clients().await;
    let owned = |tags: &ecsop::aws::Tags| tags.get("ecsop.io/owner") == Some(&d.owner());
    let service = clients.ecs.service(d.cluster, d.names.service()).await.expect("service").expect("exists");
    assert!(owned(&service.tags), "{:?}", service.tags);
    assert_eq!(service.desired_count, spec.service.replicas);
    assert!(running_image(env, d).await.ends_with(&format!("@{digest}")));
    let revisions =
        ecsop::engine::resources::task_definition::owned_revisions(&clients, &d.names).await.expect("revisions");
    assert!(revisions.iter().any(|r| r.arn == service.task_definition), "{revisions:?}");
    if d.owns_repository {
        let repo = clients.ecr.repository(None, d.repository).await.expect("repo").expect("exists");
        assert!(owned(&clients.ecr.repository_tags(&repo.arn).await.expect("tags")));
    }
    if let Some(lb) = &spec.load_balancer {
        let tg = clients.elbv2.target_group(&d.names.target_group()).await.expect("tg").expect("exists");
        assert!(owned(&clients.elbv2.tags(&tg.arn).await.expect("tags")));
        assert_eq!(service.load_balancers.first().map(|b| b.arn.as_str()), Some(tg.arn.as_str()));
        let rules = clients.elbv2.rules(&lb.listener_arn).await.expect("rules");
        let rule = rules.iter().find(|r| r.header.is_none() && r.target_groups.contains(&tg.arn)).expect("our rule");
        if spec.service.rollout.strategy.is_rolling() {
            assert_eq!(rule.target_groups, std::slice::from_ref(&tg.arn));
        } else {
            // The second target group is owned too, and the rule forwards to both, all traffic on the first.
            let alt = d.names.alternate_target_group();
            let alt = clients.elbv2.target_group(&alt).await.expect("tg").expect("alternate exists");
            assert!(owned(&clients.elbv2.tags(&alt.arn).await.expect("tags")));
            assert_eq!((rule.weight(&tg.arn), rule.weight(&alt.arn)), (Some(100), Some(0)), "{rule:?}");
        }
        assert_eq!((rule.priority, &rule.hosts, &rule.paths), (Some(lb.priority), &lb.hosts, &lb.paths));
        assert!(owned(&clients.elbv2.tags(&rule.arn).await.expect("tags")));
    }
}

async fn zero_writes(env: &Env, d: &Deployment<'_>) {
    env.account.clear_calls().await.expect("clear calls");
    let again = env.ecsop(&["apply", "-f", d.path()]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(env.writes().await, Vec::<String>::new(), "a re-apply writes nothing: {}", text(&again));
}

/// Delete, then check that nothing the deployment owned is left.
async fn delete_and_check_empty(env: &Env, d: &Deployment<'_>, listeners: &[&str], api_id: Option<&str>) {
    let out = env.ecsop(&["delete", "-f", d.path()]);
    assert!(out.status.success(), "delete: {}", text(&out));
    let clients = env.clients().await;
    let service = clients.ecs.service(d.cluster, d.names.service()).await.expect("describe service");
    assert!(service.as_ref().is_none_or(|s| s.status == "INACTIVE"), "service gone: {service:?}");
    assert_eq!(clients.elbv2.target_group(&d.names.target_group()).await.expect("tg"), None);
    for l in listeners {
        for r in clients.elbv2.rules(l).await.expect("rules").iter().filter(|r| r.priority.is_some()) {
            let tags = clients.elbv2.tags(&r.arn).await.expect("tags");
            assert_ne!(tags.get("ecsop.io/owner"), Some(&d.owner()), "our rule is left on {l}: {r:?}");
        }
    }
    let alarms = clients.cloudwatch.alarms(&format!("{}-", d.names.family())).await.expect("alarms");
    assert!(alarms.is_empty(), "alarms gone: {alarms:?}");
    if let Some(api) = api_id {
        let gw = ecsop::engine::resources::gateway::read(&clients, api, None).await.expect("read api");
        assert!(gw.integrations.is_empty() && gw.routes.is_empty() && gw.authorizers.is_empty(), "{gw:?}");
    }
    if d.owns_repository {
        assert_eq!(clients.ecr.repository(None, d.repository).await.expect("repo"), None, "repository deleted");
    }
    let revisions =
        ecsop::engine::resources::task_definition::owned_revisions(&clients, &d.names).await.expect("revisions");
    assert!(revisions.is_empty(), "revisions deregistered: {revisions:?}");
}

/// The deployment's running task-definition image.
async fn running_image(env: &Env, d: &Deployment<'_>) -> String {
    let clients = env.clients().await;
    let service = clients.ecs.service(d.cluster, d.names.service()).await.expect("service").expect("exists");
    let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
    let td = ecs.describe_task_definition().task_definition(&service.task_definition).send().await.expect("td");
    td.task_definition().and_then(|t| t.container_definitions().first()).and_then(|c| c.image()).unwrap_or("").into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_staging_then_prod_with_promotion_tags() {
    let env = Env::new().await;
    let subs = Placeholders::new(&env);
    let staging = Deployment {
        cluster: CLUSTER,
        path: subs.write(&env, "000-upload-api", "staging.yaml"),
        names: Names::new("staging", "upload-api"),
        repository: "upload-api",
        tag: "3f2c1ab",
        owns_repository: true,
    };
    let prod = Deployment {
        cluster: "prod-cluster",
        path: subs.write(&env, "000-upload-api", "prod.yaml"),
        names: Names::new("prod", "upload-api"),
        repository: "upload-api",
        tag: "staging-passed",
        owns_repository: false,
    };
    let clients = env.clients().await;
    let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
    ecs.create_cluster().cluster_name("prod-cluster").send().await.expect("prod cluster");

    // Prod cannot start before staging passed an image.
    let early = env.ecsop(&["apply", "-f", prod.path()]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early));
    assert!(text(&early).contains("ImageNotFound"), "{}", text(&early));

    let digest = deploy(&env, &staging).await;
    let passed = clients.ecr.resolve_tag(None, "upload-api", "staging-passed").await.expect("tag");
    assert_eq!(passed.as_deref(), Some(digest.as_str()), "staging's completed rollout promoted its image");

    // Prod deploys what staging ran (the tag resolved to its digest), then records it as prod-current.
    let prod_planned = diff_lines(&env.ecsop(&["diff", "-f", prod.path()]).stdout);
    let (out, _) =
        env.apply_and_drive_in("prod-cluster", &prod.path, prod.names.service(), None, &complete(), &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(apply_lines(&out.stderr, &prod.owner()), prod_planned);
    assert!(running_image(&env, &prod).await.ends_with(&format!("@{digest}")), "prod runs staging's digest");
    check_core(&env, &prod, &digest).await;
    let current = clients.ecr.resolve_tag(None, "upload-api", "prod-current").await.expect("tag");
    assert_eq!(current.as_deref(), Some(digest.as_str()), "prod's completed rollout is recorded in ECR");
    zero_writes(&env, &prod).await;

    // Autoscaling on CPU and on ALB requests per task, for both.
    for d in [&staging, &prod] {
        let resource = format!("service/{}/{}", d.cluster, d.names.service());
        let policies = clients.autoscaling.policies(&resource).await.expect("policies");
        let metrics: BTreeSet<String> =
            policies.iter().map(|p| format!("{:?}", p.metric).chars().take(3).collect()).collect();
        assert_eq!(metrics, BTreeSet::from(["Cpu".to_string(), "Req".to_string()]), "{policies:?}");
    }

    delete_and_check_empty(&env, &prod, &[&env.net.listener_arn], None).await;
    delete_and_check_empty(&env, &staging, &[&env.net.listener_arn], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_https_with_redirect_scan_gate_and_promotion() {
    let env = Env::new().await;
    env.account.create_role("ecs-infrastructure").await.expect("infrastructure role");
    let mut subs = Placeholders::new(&env);
    let https = env.https_listener().await;
    subs.set(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/0aaaaaaaaaaaaaa1/0aaaaaaaaaaa443",
        https.clone(),
    );
    let d = Deployment {
        cluster: CLUSTER,
        path: subs.write(&env, "002-factorial-https", "factorial-api.yaml"),
        names: Names::new("default", "factorial-api"),
        repository: "factorial-api",
        tag: "2.1.0",
        owns_repository: true,
    };
    let digest = deploy(&env, &d).await;
    let clients = env.clients().await;

    // The forward rule on HTTPS, the redirect rule on HTTP for the same host.
    let forward = clients.elbv2.rules(&https).await.expect("rules");
    let forward = forward.iter().find(|r| r.priority == Some(20)).expect("https rule");
    assert_eq!(forward.hosts, ["factorial.example.com"]);
    // A canary service: the rule forwards to both target groups, all traffic on the serving one.
    assert_eq!(forward.target_groups.len(), 2, "{forward:?}");
    let serving = clients.ecs.service(CLUSTER, "factorial-api").await.expect("read").expect("service");
    assert_eq!(forward.weight(&serving.load_balancers[0].arn), Some(100), "{forward:?}");
    let redirect = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let redirect = redirect.iter().find(|r| r.priority == Some(20)).expect("http redirect rule");
    assert_eq!(redirect.hosts, ["factorial.example.com"]);
    let r = redirect.redirect.as_ref().expect("a redirect action");
    assert_eq!((r.protocol.as_str(), r.port.as_str(), r.status_code.as_str()), ("HTTPS", "443", "HTTP_301"));
    assert!(redirect.target_groups.is_empty());
    let tags = clients.elbv2.tags(&redirect.arn).await.expect("tags");
    assert_eq!(tags.get("ecsop.io/managed-by").map(String::as_str), Some("ecsop"));
    assert_eq!(
        clients.ecr.resolve_tag(None, "factorial-api", "released").await.expect("tag").as_deref(),
        Some(digest.as_str())
    );

    // The scan gate: an image with HIGH and CRITICAL findings is refused, the service keeps its image.
    let bad = env.push("factorial-api", "2.2.0").await;
    env.account
        .set_scan("factorial-api", &bad, "COMPLETE", &[("CRITICAL", 1), ("HIGH", 2), ("LOW", 4)])
        .await
        .expect("scan");
    let yaml = std::fs::read_to_string(&d.path).expect("read").replace("tag: \"2.1.0\"", "tag: \"2.2.0\"");
    std::fs::write(&d.path, yaml).expect("write");
    let out = env.ecsop(&["apply", "-f", d.path()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("ImageRejected"), "{said}");
    assert!(said.contains("3 findings at HIGH or above (CRITICAL 1, HIGH 2)"), "{said}");
    assert!(running_image(&env, &d).await.ends_with(&digest), "the service keeps the scanned-clean image");
    let status = env.ecsop(&["status", "-f", d.path(), "-o", "json"]);
    assert!(text(&status).contains("ImageRejected"), "{}", text(&status));

    // A scan still running holds the rollout back; once clean, the image rolls out and is promoted.
    env.account.set_scan("factorial-api", &bad, "IN_PROGRESS", &[]).await.expect("scan");
    let out = env.ecsop(&["apply", "-f", d.path()]);
    assert!(text(&out).contains("ImageScanInProgress"), "{}", text(&out));
    env.account.set_scan("factorial-api", &bad, "COMPLETE", &[("LOW", 4)]).await.expect("scan");
    // The harness drives the deployment of another revision than the one running (not the finished one).
    let running = current_revision(&env, &d).await;
    let (out, _) = env.apply_and_drive(&d.path, d.names.service(), Some(&running), &through_lifecycle(), &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(running_image(&env, &d).await.ends_with(&bad));
    assert_eq!(
        clients.ecr.resolve_tag(None, "factorial-api", "released").await.expect("tag").as_deref(),
        Some(bad.as_str()),
        "the promotion tag followed the new image"
    );

    delete_and_check_empty(&env, &d, &[&https, &env.net.listener_arn], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_alarms_notify_and_roll_back_a_rollout() {
    let env = Env::new().await;
    env.account.create_role("ecs-infrastructure").await.expect("infrastructure role");
    let subs = Placeholders::new(&env);
    let d = Deployment {
        cluster: CLUSTER,
        path: subs.write(&env, "003-books-multi-az-alarms", "books-api.yaml"),
        names: Names::new("default", "books-api"),
        repository: "api-livros",
        tag: "1.0",
        owns_repository: true,
    };
    let first = deploy(&env, &d).await;
    let clients = env.clients().await;

    // Three owned alarms on the service, notifying the topic, and the same alarms watched by ECS.
    let topic = format!("arn:aws:sns:us-east-1:{}:ecs-alerts", env.account.id());
    let alarms = clients.cloudwatch.alarms("default-books-api-").await.expect("alarms");
    let names: BTreeSet<&str> = alarms.iter().map(|a| a.alarm.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "default-books-api-cpu-high",
            "default-books-api-memory-high",
            "default-books-api-no-running-tasks"
        ])
    );
    for a in &alarms {
        assert_eq!(a.alarm.alarm_actions, vec![topic.clone()], "{a:?}");
        assert_eq!(a.alarm.ok_actions, vec![topic.clone()], "{a:?}");
        assert_eq!(a.alarm.dimensions.get("ServiceName").map(String::as_str), Some("books-api"));
        let tags = clients.cloudwatch.tags(&a.arn).await.expect("tags");
        assert_eq!(tags.get("ecsop.io/owner").map(String::as_str), Some("default/books-api"));
    }
    let cpu = alarms.iter().find(|a| a.alarm.name.ends_with("cpu-high")).expect("cpu alarm");
    assert_eq!((cpu.alarm.metric_name.as_str(), cpu.alarm.threshold), ("CPUUtilization", 80.0));
    let service = clients.ecs.service(CLUSTER, "books-api").await.expect("service").expect("exists");
    let watched = service.alarms.expect("deployment alarms");
    assert!(watched.enable && watched.rollback, "{watched:?}");
    assert_eq!(watched.names, names.iter().map(|n| n.to_string()).collect::<Vec<_>>());

    // An alarm firing during the next rollout rolls it back; ecsop reports RolledBack, not success.
    env.account.set_alarm_state("default-books-api-cpu-high", "ALARM", "CPU at 97%").await.expect("alarm state");
    env.push("api-livros", "1.1").await;
    let yaml = std::fs::read_to_string(&d.path).expect("read").replace("tag: \"1.0\"", "tag: \"1.1\"");
    std::fs::write(&d.path, yaml).expect("write");
    let running = current_revision(&env, &d).await;
    let (out, _) = env.apply_and_drive(&d.path, "books-api", Some(&running), &through_lifecycle(), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("RolledBack"), "{}", text(&out));
    assert!(text(&out).contains("alarm"), "the reason names the alarm: {}", text(&out));
    assert!(running_image(&env, &d).await.ends_with(&first), "ECS went back to the first image");

    delete_and_check_empty(&env, &d, &[&env.net.listener_arn], None).await;
}

/// The task definition the service runs now.
async fn current_revision(env: &Env, d: &Deployment<'_>) -> String {
    let clients = env.clients().await;
    let service = clients.ecs.service(d.cluster, d.names.service()).await.expect("service").expect("exists");
    service.task_definition
}

fn namespace_id(env: &Env) -> String {
    env.namespace.clone().expect("the test made a Cloud Map namespace")
}

/// The API Gateway wiring an example owns: one integration to the Cloud Map service over the VPC
/// link, the routes (public ones without the authorizer) and the JWT authorizer.
async fn check_gateway(
    env: &Env,
    d: &Deployment<'_>,
    api: &ecsop_testkit::HttpApi,
    routes: &[(&str, bool)],
    audience: &str,
) {
    let clients = env.clients().await;
    let gw = ecsop::engine::resources::gateway::read(&clients, &api.api_id, Some("$default")).await.expect("read api");
    let discovery = clients
        .cloudmap
        .find_service(&namespace_id(env), d.names.service())
        .await
        .expect("sd")
        .expect("cloud map service");
    assert_eq!(gw.integrations.len(), 1, "{gw:?}");
    let integration = &gw.integrations[0];
    assert_eq!(integration.uri.as_deref(), Some(discovery.arn.as_str()));
    assert_eq!(integration.connection_id.as_deref(), Some(api.vpc_link_id.as_str()));
    assert_eq!(integration.connection_type.as_deref(), Some("VPC_LINK"));
    assert_eq!(gw.authorizers.len(), 1, "{gw:?}");
    let authorizer = &gw.authorizers[0];
    assert_eq!(authorizer.config.audience, [audience]);
    let got: BTreeMap<&str, (Option<&str>, Option<&str>)> =
        gw.routes.iter().map(|r| (r.key.as_str(), (r.target.as_deref(), r.authorizer_id.as_deref()))).collect();
    let target = format!("integrations/{}", integration.id);
    let want: BTreeMap<&str, (Option<&str>, Option<&str>)> = routes
        .iter()
        .map(|(k, public)| (*k, (Some(target.as_str()), (!public).then_some(authorizer.id.as_str()))))
        .collect();
    assert_eq!(got, want);
    let service = clients.ecs.service(d.cluster, d.names.service()).await.expect("svc").expect("exists");
    assert_eq!(service.registries.first().map(|b| b.arn.as_str()), Some(discovery.arn.as_str()));
    assert_eq!(service.registries[0].port, 8080, "SRV records carry the port");
    // The stage does not deploy by itself: ecsop deployed the routes to it.
    let stage = gw.stage.as_ref().expect("the $default stage");
    assert!(!stage.auto_deploy && stage.deployment_id.is_some(), "{stage:?}");
}

async fn gateway_example(
    example: &str,
    file: &str,
    name: &str,
    repository: &str,
    tag: &str,
    routes: &[(&str, bool)],
    audience: &str,
) {
    let mut env = Env::new().await;
    let mut subs = Placeholders::new(&env);
    let namespace = env.account.cloud_map_namespace("api.internal", &env.net).await.expect("namespace");
    let api = env.account.http_api("api", &env.net).await.expect("http api");
    subs.set("ns-aaaaaaaaaaaaaaaa", namespace.clone());
    subs.set("a1b2c3d4e5", api.api_id.clone());
    subs.set("vl0a1b2c", api.vpc_link_id.clone());
    env.namespace = Some(namespace);
    let d = Deployment {
        cluster: CLUSTER,
        path: subs.write(&env, example, file),
        names: Names::new("default", name),
        repository,
        tag,
        owns_repository: true,
    };
    deploy(&env, &d).await;
    check_gateway(&env, &d, &api, routes, audience).await;

    // Dropping a route from the spec removes it, and only it.
    let (dropped, _) = routes[routes.len() - 1];
    let yaml = std::fs::read_to_string(&d.path).expect("read");
    let yaml = yaml
        .replace(&format!("      - key: {dropped}\n        public: true\n"), "")
        .replace(&format!("      - key: {dropped}\n"), "");
    std::fs::write(&d.path, yaml).expect("write");
    let out = env.ecsop(&["apply", "-f", d.path()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("- api gateway {} route {dropped}", api.api_id)), "{}", text(&out));
    check_gateway(&env, &d, &api, &routes[..routes.len() - 1], audience).await;
    zero_writes(&env, &d).await;

    delete_and_check_empty(&env, &d, &[], Some(&api.api_id)).await;
    let clients = env.clients().await;
    let left = clients.cloudmap.find_service(&namespace_id(&env), d.names.service()).await.expect("sd");
    assert_eq!(left, None, "the Cloud Map service goes after the routes and integration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_one_task_behind_api_gateway_and_cloud_map() {
    gateway_example(
        "001-rest-api-cloud-map",
        "books-api.yaml",
        "books-api",
        "books-api",
        "1.0.0",
        &[
            ("GET /api/v1/books", true),
            ("GET /api/v1/books/{id}", true),
            ("ANY /api/v1/books/{proxy+}", false),
            ("POST /api/v1/users", true),
            ("POST /api/v1/auth/login", true),
        ],
        "books-api",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_private_service_behind_api_gateway_with_jwt_authorizer() {
    gateway_example(
        "004-movies-api-gateway",
        "movies-api.yaml",
        "movies-api",
        "movies-api",
        "0.9.3",
        &[
            ("GET /api/v1/movies", true),
            ("ANY /api/v1/movies/{proxy+}", false),
            ("POST /api/v1/users", true),
            ("POST /api/v1/auth/login", true),
            ("GET /.well-known/{proxy+}", true),
        ],
        "movies-api",
    )
    .await;
}
