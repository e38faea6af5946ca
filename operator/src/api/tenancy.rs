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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenancyPolicy {
    /// One entry per tenant; the first whose `namespaces` match an ApiDeployment's namespace applies.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
}

/// What the ApiDeployments of some namespaces may use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// The lists above as regular expressions, compiled on first use (every reconcile checks).
    #[serde(skip)]
    compiled: std::sync::OnceLock<Compiled>,
}

/// A tenant's patterns, compiled.
#[derive(Debug, Clone)]
struct Compiled {
    /// By field name (`taskRoles`).
    lists: std::collections::BTreeMap<&'static str, Patterns>,
    /// Per listener grant: ARN, hosts, paths.
    listeners: Vec<[Patterns; 3]>,
    /// Per HTTP API grant: id, routes.
    http_apis: Vec<[Patterns; 2]>,
}

impl Tenant {
    /// The lists of plain values by field name, with whether they compare in lower case: what both the
    /// check and the admission parameters go through.
    fn lists(&self) -> [(&'static str, &[String], bool); 12] {
        [
            ("namespaces", &self.namespaces, false),
            ("regions", &self.regions, false),
            ("clusters", &self.clusters, false),
            ("subnets", &self.subnets, false),
            ("securityGroups", &self.security_groups, false),
            ("taskRoles", &self.task_roles, false),
            ("executionRoles", &self.execution_roles, false),
            ("secrets", &self.secrets, false),
            ("logGroups", &self.log_groups, false),
            ("repositories", &self.repositories, false),
            ("promotionRepositories", &self.promotion_repositories, false),
            ("serviceDiscoveryNamespaces", &self.service_discovery_namespaces, false),
        ]
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| Compiled {
            lists: self.lists().into_iter().map(|(field, list, fold)| (field, Patterns::new(list, fold))).collect(),
            listeners: self
                .listeners
                .iter()
                .map(|g| {
                    [
                        Patterns::new(std::slice::from_ref(&g.arn), false),
                        Patterns::new(&g.hosts, true),
                        Patterns::new(&g.paths, false),
                    ]
                })
                .collect(),
            http_apis: self
                .http_apis
                .iter()
                .map(|a| [Patterns::new(std::slice::from_ref(&a.id), false), Patterns::new(&a.routes, false)])
                .collect(),
        })
    }

    fn list(&self, field: &str) -> &Patterns {
        &self.compiled().lists[field]
    }
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

    /// What the chart's admission policy reads from its parameter ConfigMap (`data`, besides the policy
    /// itself under `tenancy.yaml`): the tenants' indexes (`tenants`: `0,1`), and per tenant `t<i>` each
    /// list as [`pattern_regex`] (`t0regions`), the listener grants' indexes (`t<i>listeners`) with
    /// `t<i>l<j>arn`, `hosts`, `paths`, and the HTTP API grants' (`t<i>httpApis`) with `t<i>a<j>id`,
    /// `routes`. Keys are letters and digits only: CEL evaluators differ in how they escape others.
    pub fn admission_params(&self) -> std::collections::BTreeMap<String, String> {
        let mut data = std::collections::BTreeMap::new();
        let indexes = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        data.insert("tenants".to_string(), indexes(self.tenants.len()));
        for (i, t) in self.tenants.iter().enumerate() {
            let mut put = |key: String, list: &[String], fold: bool| {
                data.insert(format!("t{i}{key}"), pattern_regex(list, fold));
            };
            for (field, list, fold) in t.lists() {
                put(field.into(), list, fold);
            }
            for (j, g) in t.listeners.iter().enumerate() {
                put(format!("l{j}arn"), std::slice::from_ref(&g.arn), false);
                put(format!("l{j}hosts"), &g.hosts, true);
                put(format!("l{j}paths"), &g.paths, false);
            }
            for (j, a) in t.http_apis.iter().enumerate() {
                put(format!("a{j}id"), std::slice::from_ref(&a.id), false);
                put(format!("a{j}routes"), &a.routes, false);
            }
            data.insert(format!("t{i}listeners"), indexes(t.listeners.len()));
            data.insert(format!("t{i}httpApis"), indexes(t.http_apis.len()));
        }
        data
    }

    /// The entry that applies to `namespace`, with its index.
    pub fn tenant(&self, namespace: &str) -> Option<(usize, &Tenant)> {
        self.tenants.iter().enumerate().find(|(_, t)| t.list("namespaces").matches(namespace))
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
        let mut allow = |path: &str, value: &str, field: &str| {
            let patterns = tenant.list(field);
            if !patterns.matches(value) {
                errors.push(violation(
                    path,
                    format!("{value} is not allowed for namespace {namespace} ({who} {field}: {})", shown(&patterns.2)),
                    &format!("tenants[{index}].{field}"),
                ));
            }
        };
        let spec = &resource.spec;
        allow("spec.region", spec.region.as_deref().unwrap_or(default_region), "regions");
        allow("spec.cluster", &spec.cluster, "clusters");
        for (i, s) in spec.service.subnets.iter().enumerate() {
            allow(&format!("spec.service.subnets[{i}]"), s, "subnets");
        }
        for (i, s) in spec.service.security_groups.iter().enumerate() {
            allow(&format!("spec.service.securityGroups[{i}]"), s, "securityGroups");
        }
        let c = &spec.container;
        if let Some(role) = &c.task_role_arn {
            allow("spec.container.taskRoleArn", role, "taskRoles");
        }
        if let Some(role) = &c.execution_role_arn {
            allow("spec.container.executionRoleArn", role, "executionRoles");
        }
        for (name, arn) in &c.secrets {
            allow(&format!("spec.container.secrets.{name}"), arn, "secrets");
        }
        if let Some(group) = &c.log_group {
            allow("spec.container.logGroup", group, "logGroups");
        }
        allow("spec.image.repository", &spec.image.repository, "repositories");
        if spec.image.promotion_tag.is_some() {
            allow("spec.image.promotionTag", &spec.image.repository, "promotionRepositories");
        }
        if let Some(sd) = &spec.service.service_discovery {
            allow("spec.service.serviceDiscovery.namespaceId", &sd.namespace_id, "serviceDiscoveryNamespaces");
        }
        if let Some(lb) = &spec.load_balancer {
            let listeners = [(lb.listener_arn.as_str(), "spec.loadBalancer")].into_iter().chain(
                lb.https_redirect.as_ref().map(|r| (r.listener_arn.as_str(), "spec.loadBalancer.httpsRedirect")),
            );
            for (arn, path) in listeners {
                let grants: Vec<(&ListenerGrant, &[Patterns; 3])> = tenant
                    .listeners
                    .iter()
                    .zip(&tenant.compiled().listeners)
                    .filter(|(_, [grant_arn, _, _])| grant_arn.matches(arn))
                    .collect();
                if grants.is_empty() {
                    errors.push(violation(
                        &format!("{path}.listenerArn"),
                        format!(
                            "listener {arn} is not allowed for namespace {namespace} ({who} listeners: {})",
                            shown(&tenant.listeners.iter().map(|g| g.arn.clone()).collect::<Vec<_>>())
                        ),
                        &format!("tenants[{index}].listeners"),
                    ));
                    continue;
                }
                // No hosts (or paths) claims every host (or path): `*` stands for it.
                let everything = vec!["*".to_string()];
                let hosts = if lb.hosts.is_empty() { &everything } else { &lb.hosts };
                let paths = if lb.paths.is_empty() { &everything } else { &lb.paths };
                let hosts_fit = |[_, h, _]: &[Patterns; 3]| hosts.iter().all(|c| h.matches(c));
                let paths_fit = |[_, _, p]: &[Patterns; 3]| paths.iter().all(|c| p.matches(c));
                if !grants.iter().any(|(_, c)| hosts_fit(c) && paths_fit(c)) {
                    let allowed: Vec<String> = grants
                        .iter()
                        .map(|(g, _)| format!("hosts [{}] paths [{}]", shown(&g.hosts), shown(&g.paths)))
                        .collect();
                    let field = if grants.iter().any(|(_, c)| hosts_fit(c)) { "paths" } else { "hosts" };
                    errors.push(violation(
                        &format!("spec.loadBalancer.{field}"),
                        format!(
                            "hosts [{}] and paths [{}] on listener {arn} are outside what namespace {namespace} may \
                             claim there ({})",
                            shown(&lb.hosts),
                            shown(&lb.paths),
                            allowed.join("; ")
                        ),
                        &format!("tenants[{index}].listeners"),
                    ));
                }
            }
        }
        if let Some(g) = &spec.api_gateway {
            let grants: Vec<(&HttpApiGrant, &[Patterns; 2])> = tenant
                .http_apis
                .iter()
                .zip(&tenant.compiled().http_apis)
                .filter(|(_, [id, _])| id.matches(&g.api_id))
                .collect();
            if grants.is_empty() {
                errors.push(violation(
                    "spec.apiGateway.apiId",
                    format!("HTTP API {} is not allowed for namespace {namespace} ({who} httpApis)", g.api_id),
                    &format!("tenants[{index}].httpApis"),
                ));
            } else {
                for (i, route) in g.routes.iter().enumerate() {
                    let path = route_path(&route.key);
                    if !grants.iter().any(|(_, [_, routes])| routes.matches(path)) {
                        let allowed: Vec<String> = grants.iter().flat_map(|(a, _)| a.routes.clone()).collect();
                        errors.push(violation(
                            &format!("spec.apiGateway.routes[{i}].key"),
                            format!(
                                "route {} is outside the routes namespace {namespace} may claim on HTTP API {} ({})",
                                route.key,
                                g.api_id,
                                shown(&allowed)
                            ),
                            &format!("tenants[{index}].httpApis"),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn violation(path: &str, message: String, rule: &str) -> FieldError {
    FieldError { path: path.to_string(), message, source: RuleSource::Policy { rule: rule.to_string() } }
}

fn shown(list: &[String]) -> String {
    if list.is_empty() { "none".into() } else { list.join(", ") }
}

/// A route key's path as written (`GET /books/{id}` → `/books/{id}`; `$default` as is): a pattern's `*`
/// covers a parameter like any other characters.
fn route_path(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(_, path)| path)
}

/// A list of patterns as one anchored regular expression, exactly as the chart renders it for the
/// admission policy (`ecsop.globRegex` in `charts/ecsop/templates/_helpers.tpl`), so that both judge a
/// value alike: `*` is any run of characters, `?` one character that is not itself a wildcard, anything
/// else itself. A value that holds wildcards (a claimed host or path) thus matches only when every string
/// it stands for does: `*.team-a.example.com` covers `api.team-a.example.com` and `*.team-a.example.com`,
/// not `*.example.com`. An empty list matches nothing. `fold`: hosts, compared in lower case.
#[derive(Debug, Clone)]
pub struct Patterns(regex::Regex, bool, Vec<String>);

impl Patterns {
    /// The patterns `list`.
    pub fn new(list: &[String], fold: bool) -> Patterns {
        Patterns(regex::Regex::new(&pattern_regex(list, fold)).unwrap_or_else(|_| never()), fold, list.to_vec())
    }
    /// Whether `value` is covered.
    pub fn matches(&self, value: &str) -> bool {
        if self.1 { self.0.is_match(&value.to_ascii_lowercase()) } else { self.0.is_match(value) }
    }
}

fn never() -> regex::Regex {
    regex::Regex::new(NEVER).unwrap_or_else(|_| unreachable!("a constant regular expression"))
}

/// The regular expression that matches nothing (an empty list).
const NEVER: &str = r"^[^\s\S]$";

/// Go's `regexp.QuoteMeta` (Helm's `regexQuoteMeta`): a backslash before each of `\.+*?()|[]{}^$`.
fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The anchored regular expression of `list` (see [`Patterns`]).
pub fn pattern_regex(list: &[String], fold: bool) -> String {
    if list.is_empty() {
        return NEVER.to_string();
    }
    let one = |p: &String| {
        let p = if fold { p.to_ascii_lowercase() } else { p.clone() };
        quote_meta(&p).replace(r"\*", ".*").replace(r"\?", "[^*?]")
    };
    format!("^(?:{})$", list.iter().map(one).collect::<Vec<_>>().join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(patterns: &[&str], value: &str) -> bool {
        Patterns::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(), false).matches(value)
    }

    #[test]
    fn values() {
        assert!(covers(&["team-*"], "team-a"));
        assert!(!covers(&["team-*"], "other"));
        assert!(covers(
            &["x", "arn:aws:iam::*:role/ecsop/team-a/*"],
            "arn:aws:iam::123456789012:role/ecsop/team-a/books"
        ));
        assert!(!covers(&["arn:aws:iam::*:role/ecsop/team-a/*"], "arn:aws:iam::123456789012:role/admin"));
        assert!(covers(&["*"], ""));
        assert!(covers(&["a?c"], "abc") && !covers(&["a?c"], "ac"));
        assert!(!covers(&[], "anything"), "an empty list allows nothing");
        assert!(covers(&["a.b"], "a.b") && !covers(&["a.b"], "axb"), "regex characters are themselves");
    }

    #[test]
    fn claims_with_wildcards_are_covered_only_when_every_string_they_stand_for_is() {
        assert!(covers(&["*.team-a.example.com"], "api.team-a.example.com"));
        assert!(covers(&["*.team-a.example.com"], "*.team-a.example.com"));
        assert!(!covers(&["*.team-a.example.com"], "*.example.com"));
        assert!(covers(&["/team-a/*"], "/team-a/books*"));
        assert!(!covers(&["/team-a/*"], "/team-a*"), "/team-ab is not under /team-a/");
        assert!(!covers(&["/team-a/?"], "/team-a/*"));
        assert!(!covers(&["/team-a/?"], "/team-a/?"), "a ? stands for any character");
        assert!(covers(&["*"], "*"));
        assert!(!covers(&["/books"], "/books*"));
        assert!(
            Patterns::new(&["*.Team-A.example.com".into()], true).matches("API.team-a.example.COM"),
            "hosts fold case"
        );
        assert!(covers(&["/team-a/*"], route_path("ANY /team-a/{proxy+}")));
        assert!(!covers(&["/team-a/*"], route_path("GET /team-b/{id}")));
        assert!(!covers(&["/team-a/*"], route_path("$default")) && covers(&["$default"], route_path("$default")));
    }
}
