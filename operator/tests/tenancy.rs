//! Tenants who cannot reach each other's traffic, through the real `ecsop` binary against moto: a later
//! claim of hosts and paths another ApiDeployment already serves on a shared listener, or of routes it
//! already serves on a shared HTTP API, is refused before any AWS write; and two ApiDeployments whose
//! names once collided (`team-a/api`, `team/a-api`) each get their own JWT authorizer.

mod support;

use std::process::Output;

use ecsop_testkit::HttpApi;
use support::deploy::{CLUSTER, Env, text};

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

const REPO: &str = "tenant-api";

/// A manifest for `namespace/name` routing `paths` at `priority` on the fixture's listener, and, with
/// `api`, the HTTP API routes `routes` behind a JWT authorizer (through Cloud Map).
fn manifest(
    env: &Env,
    namespace: &str,
    name: &str,
    priority: u32,
    paths: &[&str],
    api: Option<(&HttpApi, &[&str])>,
) -> String {
    let paths = paths.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
    let (discovery, gateway) = match api {
        None => (String::new(), String::new()),
        Some((api, routes)) => (
            format!(
                "    serviceDiscovery:\n      namespaceId: {}\n      dnsRecordType: SRV\n",
                env.namespace.as_deref().expect("a Cloud Map namespace")
            ),
            format!(
                "  apiGateway:\n    apiId: {}\n    vpcLinkId: {}\n    routes:\n{}    authorizer:\n      issuer: https://issuer.example.com\n      audience: [{name}]\n",
                api.api_id,
                api.vpc_link_id,
                routes.iter().map(|r| format!("      - key: {r}\n")).collect::<String>()
            ),
        ),
    };
    format!(
        "apiVersion: ecsop.io/v1alpha1
kind: ApiDeployment
metadata:
  name: {name}
  namespace: {namespace}
spec:
  cluster: {CLUSTER}
  image:
    repository: {REPO}
    tag: v1
  container:
    port: 8080
    cpu: 256
    memory: 512
  service:
    replicas: 1
    subnets: [{a}, {b}]
    securityGroups: [{sg}]
{discovery}  loadBalancer:
    listenerArn: {listener}
    vpcId: {vpc}
    priority: {priority}
    paths: [{paths}]
{gateway}",
        a = env.net.subnet_ids[0],
        b = env.net.subnet_ids[1],
        sg = env.net.security_group_id,
        listener = env.net.listener_arn,
        vpc = env.net.vpc_id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_claim_of_paths_another_apideployment_serves_on_a_shared_listener_is_refused() {
    let env = Env::new().await;
    env.push(REPO, "v1").await;
    let first = env.write("first.yaml", &manifest(&env, "team-a", "books", 100, &["/books*"], None));
    let out = env.ecsop(&["apply", "-f", first.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    // Another team claims a path the first one's rule matches, at a lower (earlier) priority: it would
    // take /books/... from team-a.
    let second = env.write("second.yaml", &manifest(&env, "team-b", "shelf", 50, &["/books/shelf*"], None));
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", second.to_str().expect("utf-8")]);
    let all = text(&out);
    assert_eq!(code(&out), 1, "{all}");
    assert!(all.contains("ResourceConflict") && all.contains("team-a/books"), "names the first: {all}");
    assert_eq!(env.writes().await, Vec::<String>::new(), "no AWS write for the refused claim");

    // Paths that cannot meet are fine, on the same listener.
    let third = env.write("third.yaml", &manifest(&env, "team-b", "movies", 60, &["/movies*"], None));
    let out = env.ecsop(&["apply", "-f", third.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_once_collided_get_their_own_authorizers_and_overlapping_routes_are_refused() {
    let mut env = Env::new().await;
    env.push(REPO, "v1").await;
    env.namespace = Some(env.account.cloud_map_namespace("tenants.internal", &env.net).await.expect("namespace"));
    let api = env.account.http_api("tenants", &env.net).await.expect("http api");

    // `team-a/api` and `team/a-api` share the family `team-a-api`, which older versions named the
    // authorizer after.
    let a = env
        .write("a.yaml", &manifest(&env, "team-a", "api", 200, &["/team-a*"], Some((&api, &["GET /team-a/{proxy+}"]))));
    let b =
        env.write("b.yaml", &manifest(&env, "team", "a-api", 210, &["/team/a*"], Some((&api, &["GET /team/a-api"]))));
    for path in [&a, &b] {
        let out = env.ecsop(&["apply", "-f", path.to_str().expect("utf-8")]);
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let clients = env.clients().await;
    let authorizers = clients.apigateway.authorizers(&api.api_id).await.expect("authorizers");
    assert_eq!(authorizers.len(), 2, "{authorizers:#?}");
    let routes = clients.apigateway.routes(&api.api_id).await.expect("routes");
    let authorizer_of = |key: &str| routes.iter().find(|r| r.key == key).and_then(|r| r.authorizer_id.clone());
    let (of_a, of_b) = (authorizer_of("GET /team-a/{proxy+}"), authorizer_of("GET /team/a-api"));
    assert!(of_a.is_some() && of_b.is_some() && of_a != of_b, "each route behind its own authorizer: {routes:#?}");

    // A route that could take requests of team-a's (a more specific one, say a public one in front of
    // its authorizer) is refused, without a write.
    let c = env
        .write("c.yaml", &manifest(&env, "team-c", "peek", 220, &["/peek*"], Some((&api, &["GET /team-a/secrets"]))));
    env.account.clear_calls().await.expect("clear");
    let out = env.ecsop(&["apply", "-f", c.to_str().expect("utf-8")]);
    let all = text(&out);
    assert_eq!(code(&out), 1, "{all}");
    assert!(all.contains("ResourceConflict") && all.contains("team-a/api"), "names the owner: {all}");
    assert_eq!(env.writes().await, Vec::<String>::new(), "no AWS write for the refused claim");
}

/// The platform team's policy for the tests: team-a may use its own roles, secrets, hosts, routes and
/// repositories on the fixture's listener and HTTP APIs.
pub fn policy(env: &Env) -> String {
    format!(
        "tenants:
  - name: team-a
    namespaces: [team-a]
    regions: [us-east-1]
    clusters: [{CLUSTER}]
    subnets: [\"*\"]
    securityGroups: [\"*\"]
    taskRoles: [\"arn:aws:iam::*:role/tenants/team-a/*\"]
    executionRoles: [\"arn:aws:iam::*:role/tenants/team-a/*\"]
    secrets: [\"arn:aws:secretsmanager:us-east-1:*:secret:team-a/*\"]
    repositories: [\"{REPO}\", \"team-a/*\"]
    promotionRepositories: [\"team-a/*\"]
    serviceDiscoveryNamespaces: [\"*\"]
    listeners:
      - arn: {listener}
        hosts: [\"*.team-a.example.com\"]
        paths: [\"/team-a/*\"]
    httpApis:
      - id: \"*\"
        routes: [\"/team-a/*\"]
",
        listener = env.net.listener_arn
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_a_tenancy_policy_refuses_what_the_namespace_may_not_use_before_any_aws_call() {
    let mut env = Env::new().await;
    env.namespace = Some(env.account.cloud_map_namespace("policy.internal", &env.net).await.expect("namespace"));
    let api = env.account.http_api("policy", &env.net).await.expect("http api");
    let policy_path = env.write("policy.yaml", &policy(&env));
    let route = manifest(&env, "team-a", "books", 300, &["/team-a/books*"], Some((&api, &["GET /team-b/{id}"])))
        .replacen("    paths:", "    hosts: [books.team-a.example.com]\n    paths:", 1);
    let base = manifest(&env, "team-a", "books", 300, &["/team-a/books*"], None).replacen(
        "    paths:",
        "    hosts: [books.team-a.example.com]\n    paths:",
        1,
    );
    let with = |find: &str, replace: &str| base.replacen(find, replace, 1);
    let cases = [
        (
            "role",
            with(
                "    memory: 512\n",
                "    memory: 512\n    taskRoleArn: arn:aws:iam::123456789012:role/tenants/team-b/reader\n",
            ),
            "spec.container.taskRoleArn",
        ),
        (
            "secret",
            with(
                "    memory: 512\n",
                "    memory: 512\n    executionRoleArn: arn:aws:iam::123456789012:role/tenants/team-a/exec\n    secrets: {DB: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:team-b/db\"}\n",
            ),
            "spec.container.secrets.DB",
        ),
        ("host", with("books.team-a.example.com", "\"*.example.com\""), "spec.loadBalancer.hosts"),
        ("path", with("[\"/team-a/books*\"]", "[\"/team-b*\"]"), "spec.loadBalancer.paths"),
        (
            "promotion",
            with("    tag: v1\n", "    tag: v1\n    promotionTag: prod-current\n"),
            "spec.image.promotionTag",
        ),
        ("route", route, "spec.apiGateway.routes[0].key"),
    ];
    env.account.clear_calls().await.expect("clear");
    for (what, yaml, field) in &cases {
        let path = env.write(&format!("{what}.yaml"), yaml);
        let out = env.ecsop(&[
            "apply",
            "--tenancy-policy",
            policy_path.to_str().expect("utf-8"),
            "-f",
            path.to_str().expect("utf-8"),
        ]);
        let all = text(&out);
        assert_eq!(code(&out), 2, "{what}: {all}");
        assert!(all.contains(field) && all.contains("PolicyViolation"), "{what}: names {field}: {all}");
    }
    let calls = env.account.calls().await.expect("calls");
    assert!(calls.is_empty(), "a refused manifest reached AWS: {calls:#?}");

    // The same manifest inside the policy is applied.
    env.push(REPO, "v1").await;
    let allowed = env.write("allowed.yaml", &base);
    let out = env.ecsop(&[
        "apply",
        "--tenancy-policy",
        policy_path.to_str().expect("utf-8"),
        "-f",
        allowed.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = env.ecsop(&[
        "validate",
        "--tenancy-policy",
        policy_path.to_str().expect("utf-8"),
        "-f",
        allowed.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}
