//! The tenancy policy: what the ApiDeployments of each namespace may use, owned by the platform team and
//! out of the tenants' reach (a file the controller reads, rendered by the chart from its values into a
//! ConfigMap in ecsop's namespace; `ecsop apply --tenancy-policy FILE` for the CLI).
//!
//! Every list is an allow-list of patterns (`*` any run of characters, `?` one character): a field the
//! manifest sets must match one of them, and an empty or missing list allows nothing of that kind. To
//! allow anything, say `["*"]`. A namespace that no tenant entry names may use nothing. Without a policy
//! ecsop runs single-tenant: every manifest may use everything the controller's AWS role can reach.
//!
//! Host, path and route claims are checked by containment: every request the claimed pattern matches
//! must be matched by an allowed one (`api.team-a.example.com` is within `*.team-a.example.com`;
//! `*.example.com` is not).

use serde::{Deserialize, Serialize};

use super::{ApiDeployment, FieldError, RuleSource};

/// The policy file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenancyPolicy {
    /// One entry per tenant; the first whose `namespaces` match an ApiDeployment's namespace applies.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
}

/// What the ApiDeployments of some namespaces may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// A name for messages (`team-a`).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace patterns this entry applies to.
    pub namespaces: Vec<String>,
    /// AWS regions (`spec.region`, or the controller's region).
    #[serde(default)]
    pub regions: Vec<String>,
    /// ECS clusters (`spec.cluster`).
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Subnets (`spec.service.subnets`).
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security groups (`spec.service.securityGroups`).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Task role ARNs (`spec.container.taskRoleArn`).
    #[serde(default)]
    pub task_roles: Vec<String>,
    /// Execution role ARNs (`spec.container.executionRoleArn`).
    #[serde(default)]
    pub execution_roles: Vec<String>,
    /// Secrets Manager and SSM parameter ARNs (`spec.container.secrets`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// CloudWatch Logs groups (`spec.container.logGroup`).
    #[serde(default)]
    pub log_groups: Vec<String>,
    /// Image repositories (`spec.image.repository`, as written: a name or a URI).
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Repositories whose tags ecsop may move (`spec.image.promotionTag` moves a tag in the image's
    /// repository).
    #[serde(default)]
    pub promotion_repositories: Vec<String>,
    /// Cloud Map namespace ids (`spec.service.serviceDiscovery.namespaceId`).
    #[serde(default)]
    pub service_discovery_namespaces: Vec<String>,
    /// ALB listeners, each with the hosts and paths the tenant may claim on it.
    #[serde(default)]
    pub listeners: Vec<ListenerGrant>,
    /// API Gateway HTTP APIs, each with the route paths the tenant may claim on it.
    #[serde(default)]
    pub http_apis: Vec<HttpApiGrant>,
}

/// A listener a tenant may route from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerGrant {
    /// The listener ARN (a pattern).
    pub arn: String,
    /// Host patterns the tenant's rules may claim. A rule without hosts claims every host: allowed only
    /// with `*` here.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path patterns the tenant's rules may claim. A rule without paths claims every path: allowed only
    /// with `*` here.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// An HTTP API a tenant may add routes to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpApiGrant {
    /// The API id (a pattern).
    pub id: String,
    /// Route path patterns (`/team-a/*`); a route's `{param}` and `{proxy+}` segments count as `*`.
    /// `$default` (every request) only with `$default` here.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("tenancy policy {path}: {message}")]
pub struct PolicyError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TenancyPolicy {
    /// Read and parse a policy file (YAML or JSON).
    pub fn load(path: &std::path::Path) -> Result<TenancyPolicy, PolicyError> {
        let fail = |message: String| PolicyError { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let policy: TenancyPolicy = serde_yaml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for (i, t) in policy.tenants.iter().enumerate() {
            if t.namespaces.is_empty() {
                return Err(fail(format!("tenants[{i}].namespaces is empty: the entry would apply to no namespace")));
            }
        }
        Ok(policy)
    }

    /// The entry that applies to `namespace`, with its index.
    pub fn tenant(&self, namespace: &str) -> Option<(usize, &Tenant)> {
        self.tenants.iter().enumerate().find(|(_, t)| t.namespaces.iter().any(|p| glob_match(p, namespace)))
    }

    /// Check `resource` (in `default_region` unless its spec names one) against the policy: every field
    /// it may not use, naming the field and the rule.
    pub fn check(&self, resource: &ApiDeployment, default_region: &str) -> Result<(), Vec<FieldError>> {
        let namespace = resource.metadata.namespace.as_deref().unwrap_or("default");
        let Some((index, tenant)) = self.tenant(namespace) else {
            return Err(vec![violation(
                "metadata.namespace",
                format!("namespace {namespace} is not a tenant of the tenancy policy: it may use nothing"),
                "tenants[*].namespaces",
            )]);
        };
        let who = tenant.name.clone().unwrap_or_else(|| format!("tenants[{index}]"));
        let mut errors = Vec::new();
        let mut allow = |path: &str, value: &str, list: &[String], field: &str| {
            if !list.iter().any(|p| glob_match(p, value)) {
                errors.push(violation(
                    path,
                    format!("{value} is not allowed for namespace {namespace} ({who} {field}: {})", shown(list)),
                    &format!("tenants[{index}].{field}"),
                ));
            }
        };
        let spec = &resource.spec;
        allow("spec.region", spec.region.as_deref().unwrap_or(default_region), &tenant.regions, "regions");
        allow("spec.cluster", &spec.cluster, &tenant.clusters, "clusters");
        for (i, s) in spec.service.subnets.iter().enumerate() {
            allow(&format!("spec.service.subnets[{i}]"), s, &tenant.subnets, "subnets");
        }
        for (i, s) in spec.service.security_groups.iter().enumerate() {
            allow(&format!("spec.service.securityGroups[{i}]"), s, &tenant.security_groups, "securityGroups");
        }
        let c = &spec.container;
        if let Some(role) = &c.task_role_arn {
            allow("spec.container.taskRoleArn", role, &tenant.task_roles, "taskRoles");
        }
        if let Some(role) = &c.execution_role_arn {
            allow("spec.container.executionRoleArn", role, &tenant.execution_roles, "executionRoles");
        }
        for (name, arn) in &c.secrets {
            allow(&format!("spec.container.secrets.{name}"), arn, &tenant.secrets, "secrets");
        }
        if let Some(group) = &c.log_group {
            allow("spec.container.logGroup", group, &tenant.log_groups, "logGroups");
        }
        allow("spec.image.repository", &spec.image.repository, &tenant.repositories, "repositories");
        if spec.image.promotion_tag.is_some() {
            allow(
                "spec.image.promotionTag",
                &spec.image.repository,
                &tenant.promotion_repositories,
                "promotionRepositories",
            );
        }
        if let Some(sd) = &spec.service.service_discovery {
            allow(
                "spec.service.serviceDiscovery.namespaceId",
                &sd.namespace_id,
                &tenant.service_discovery_namespaces,
                "serviceDiscoveryNamespaces",
            );
        }
        if let Some(lb) = &spec.load_balancer {
            let listeners = [(lb.listener_arn.as_str(), "spec.loadBalancer", true)].into_iter().chain(
                lb.https_redirect.as_ref().map(|r| (r.listener_arn.as_str(), "spec.loadBalancer.httpsRedirect", false)),
            );
            for (arn, path, _) in listeners {
                match tenant.listeners.iter().position(|g| glob_match(&g.arn, arn)) {
                    None => errors.push(violation(
                        &format!("{path}.listenerArn"),
                        format!(
                            "listener {arn} is not allowed for namespace {namespace} ({who} listeners: {})",
                            shown(&tenant.listeners.iter().map(|g| g.arn.clone()).collect::<Vec<_>>())
                        ),
                        &format!("tenants[{index}].listeners"),
                    )),
                    Some(g) => {
                        let grant = &tenant.listeners[g];
                        let rule = format!("tenants[{index}].listeners[{g}]");
                        claims(&mut errors, "spec.loadBalancer.hosts", &lb.hosts, &grant.hosts, namespace, &rule, true);
                        claims(
                            &mut errors,
                            "spec.loadBalancer.paths",
                            &lb.paths,
                            &grant.paths,
                            namespace,
                            &rule,
                            false,
                        );
                    }
                }
            }
        }
        if let Some(g) = &spec.api_gateway {
            match tenant.http_apis.iter().position(|a| glob_match(&a.id, &g.api_id)) {
                None => errors.push(violation(
                    "spec.apiGateway.apiId",
                    format!("HTTP API {} is not allowed for namespace {namespace} ({who} httpApis)", g.api_id),
                    &format!("tenants[{index}].httpApis"),
                )),
                Some(a) => {
                    let grant = &tenant.http_apis[a];
                    for (i, route) in g.routes.iter().enumerate() {
                        let path = route_path(&route.key);
                        if !grant
                            .routes
                            .iter()
                            .any(|p| if path == "$default" { p == "$default" } else { contains(p, &path) })
                        {
                            errors.push(violation(
                                &format!("spec.apiGateway.routes[{i}].key"),
                                format!(
                                    "route {} is outside the routes namespace {namespace} may claim on HTTP API {} ({})",
                                    route.key,
                                    g.api_id,
                                    shown(&grant.routes)
                                ),
                                &format!("tenants[{index}].httpApis[{a}].routes"),
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// Each claimed host or path must lie within an allowed pattern; no claim at all claims everything.
fn claims(
    errors: &mut Vec<FieldError>,
    path: &str,
    claimed: &[String],
    allowed: &[String],
    ns: &str,
    rule: &str,
    hosts: bool,
) {
    let fold = |s: &str| if hosts { s.to_ascii_lowercase() } else { s.to_string() };
    let everything = ["*".to_string()];
    let claimed = if claimed.is_empty() { &everything[..] } else { claimed };
    for (i, c) in claimed.iter().enumerate() {
        if !allowed.iter().any(|a| contains(&fold(a), &fold(c))) {
            errors.push(violation(
                &format!("{path}[{i}]"),
                format!("{c} is outside what namespace {ns} may claim ({rule}: {})", shown(allowed)),
                rule,
            ));
        }
    }
}

fn violation(path: &str, message: String, rule: &str) -> FieldError {
    FieldError { path: path.to_string(), message, source: RuleSource::Policy { rule: rule.to_string() } }
}

fn shown(list: &[String]) -> String {
    if list.is_empty() { "none".into() } else { list.join(", ") }
}

/// A route key's path with its parameters as `*` (`GET /books/{id}` → `/books/*`); `$default` as is.
fn route_path(key: &str) -> String {
    let Some((_, path)) = key.split_once(' ') else { return key.to_string() };
    path.split('/').map(|s| if s.starts_with('{') && s.ends_with('}') { "*" } else { s }).collect::<Vec<_>>().join("/")
}

/// Whether `value` matches `pattern` (`*` any run of characters, `?` one).
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether every string the pattern `inner` matches is matched by `outer`: `inner`'s `*` only by a `*`
/// of `outer`, its `?` by a `?` or `*`, its other characters by themselves, `?` or `*`. (Sound; it may
/// say no to a few exotic pairs that do contain each other, which then need a plainer pattern.)
pub fn contains(outer: &str, inner: &str) -> bool {
    let (o, i): (Vec<char>, Vec<char>) = (outer.chars().collect(), inner.chars().collect());
    // reach[a][b]: outer[..a] covers inner[..b].
    let mut reach = vec![vec![false; i.len() + 1]; o.len() + 1];
    reach[0][0] = true;
    for a in 0..=o.len() {
        for b in 0..=i.len() {
            if !reach[a][b] {
                continue;
            }
            match o.get(a) {
                Some('*') => {
                    reach[a + 1][b] = true;
                    if b < i.len() {
                        reach[a][b + 1] = true;
                    }
                }
                Some('?') if b < i.len() && i[b] != '*' => reach[a + 1][b + 1] = true,
                Some(c) if b < i.len() && i[b] == *c && *c != '?' && *c != '*' => reach[a + 1][b + 1] = true,
                _ => {}
            }
        }
    }
    reach[o.len()][i.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("team-*", "team-a"));
        assert!(!glob_match("team-*", "other"));
        assert!(glob_match("arn:aws:iam::*:role/ecsop/team-a/*", "arn:aws:iam::123456789012:role/ecsop/team-a/books"));
        assert!(!glob_match("arn:aws:iam::*:role/ecsop/team-a/*", "arn:aws:iam::123456789012:role/admin"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
    }

    #[test]
    fn containment() {
        assert!(contains("*.team-a.example.com", "api.team-a.example.com"));
        assert!(contains("*.team-a.example.com", "*.team-a.example.com"));
        assert!(!contains("*.team-a.example.com", "*.example.com"));
        assert!(contains("/team-a/*", "/team-a/books*"));
        assert!(!contains("/team-a/*", "/team-a*"), "/team-ab is not under /team-a/");
        assert!(!contains("/team-a/?", "/team-a/*"));
        assert!(contains("*", "*"));
        assert!(!contains("/books", "/books*"));
        assert_eq!(route_path("GET /team-a/{proxy+}"), "/team-a/*");
        assert!(contains("/team-a/*", &route_path("ANY /team-a/{proxy+}")));
        assert!(!contains("/team-a/*", &route_path("GET /team-b/{id}")));
    }
}
