//! The invalid-manifest corpus: one broken rule per case, each a mutation of `tests/valid.yaml`.

use serde_json::{Value, json};

/// The manifest every case starts from; valid, and using every field.
pub const VALID: &str = include_str!("../valid.yaml");

/// Which kind of rule must catch a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An OpenAPI keyword of the CRD schema.
    Schema(&'static str),
    /// A CEL rule of the CRD schema.
    Cel,
    /// apiVersion / kind / metadata, checked by the API server itself.
    Envelope,
}

/// One invalid manifest.
pub struct Case {
    /// What is wrong.
    pub name: &'static str,
    /// The field path the error must name.
    pub path: &'static str,
    /// The rule that must catch it.
    pub expect: Expect,
    /// The mutation of the valid manifest.
    pub mutate: fn(&mut Value),
}

/// The valid manifest as JSON.
pub fn valid() -> Value {
    serde_yaml::from_str(VALID).expect("valid.yaml parses")
}

/// A case's manifest as JSON.
pub fn manifest(case: &Case) -> Value {
    let mut v = valid();
    (case.mutate)(&mut v);
    v
}

fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent} in the valid manifest"));
    target[key] = new;
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    v.pointer_mut(parent).and_then(Value::as_object_mut).map(|o| o.remove(key));
}

/// Every case.
pub fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        Case {
            name: "unknown tag mutability",
            path: "spec.ecr.tagMutability",
            expect: Schema("enum"),
            mutate: |v| set(v, "/spec/ecr/tagMutability", json!("SOMETIMES")),
        },
        Case {
            name: "unknown architecture",
            path: "spec.container.architecture",
            expect: Schema("enum"),
            mutate: |v| set(v, "/spec/container/architecture", json!("ARM")),
        },
        Case {
            name: "unknown deletion policy",
            path: "spec.deletionPolicy",
            expect: Schema("enum"),
            mutate: |v| set(v, "/spec/deletionPolicy", json!("Keep")),
        },
        Case {
            name: "cpu not a Fargate size",
            path: "spec.container.cpu",
            expect: Schema("enum"),
            mutate: |v| set(v, "/spec/container/cpu", json!(300)),
        },
        Case {
            name: "memory too large for cpu 256",
            path: "spec.container.memory",
            expect: Cel,
            mutate: |v| set(v, "/spec/container/memory", json!(4096)),
        },
        Case {
            name: "memory not a 1 GiB step for cpu 1024",
            path: "spec.container.memory",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/container/cpu", json!(1024));
                set(v, "/spec/container/memory", json!(2500))
            },
        },
        Case {
            name: "tag and digest both set",
            path: "spec.image",
            expect: Cel,
            mutate: |v| set(v, "/spec/image/digest", json!(format!("sha256:{}", "a".repeat(64)))),
        },
        Case {
            name: "neither tag nor digest",
            path: "spec.image",
            expect: Cel,
            mutate: |v| remove(v, "/spec/image/tag"),
        },
        Case {
            name: "digest malformed",
            path: "spec.image.digest",
            expect: Schema("pattern"),
            mutate: |v| {
                remove(v, "/spec/image/tag");
                set(v, "/spec/image/digest", json!("sha256:xyz"))
            },
        },
        Case {
            name: "tag with a space",
            path: "spec.image.tag",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/image/tag", json!("1.4 beta")),
        },
        Case {
            name: "negative replicas",
            path: "spec.service.replicas",
            expect: Schema("minimum"),
            mutate: |v| {
                set(v, "/spec/service/replicas", json!(-1));
                remove(v, "/spec/service/autoscaling")
            },
        },
        Case {
            name: "replicas given as a string",
            path: "spec.service.replicas",
            expect: Schema("type"),
            mutate: |v| set(v, "/spec/service/replicas", json!("two")),
        },
        Case {
            name: "execution role not an IAM role ARN",
            path: "spec.container.executionRoleArn",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/container/executionRoleArn", json!("role/ecsTaskExecutionRole")),
        },
        Case {
            name: "listener ARN of a target group",
            path: "spec.loadBalancer.listenerArn",
            expect: Schema("pattern"),
            mutate: |v| {
                set(
                    v,
                    "/spec/loadBalancer/listenerArn",
                    json!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/0123"),
                )
            },
        },
        Case {
            name: "unknown field in container",
            path: "spec.container.ports",
            expect: Schema("unknown"),
            mutate: |v| set(v, "/spec/container/ports", json!([8080])),
        },
        Case {
            name: "misspelt top-level field",
            path: "spec.replica",
            expect: Schema("unknown"),
            mutate: |v| set(v, "/spec/replica", json!(3)),
        },
        Case {
            name: "port out of range",
            path: "spec.container.port",
            expect: Schema("maximum"),
            mutate: |v| set(v, "/spec/container/port", json!(70000)),
        },
        Case {
            name: "no subnets",
            path: "spec.service.subnets",
            expect: Schema("minItems"),
            mutate: |v| set(v, "/spec/service/subnets", json!([])),
        },
        Case {
            name: "subnet not an ID",
            path: "spec.service.subnets[0]",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/service/subnets", json!(["private-a"])),
        },
        Case {
            name: "security group by name",
            path: "spec.service.securityGroups[0]",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/service/securityGroups", json!(["default"])),
        },
        Case {
            name: "autoscaling min above max",
            path: "spec.service.autoscaling.minReplicas",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/service/autoscaling/minReplicas", json!(12));
                set(v, "/spec/service/replicas", json!(11))
            },
        },
        Case {
            name: "autoscaling without a target",
            path: "spec.service.autoscaling",
            expect: Cel,
            mutate: |v| remove(v, "/spec/service/autoscaling/targetCpuPercent"),
        },
        Case {
            name: "replicas outside the autoscaling range",
            path: "spec.service.replicas",
            expect: Cel,
            mutate: |v| set(v, "/spec/service/replicas", json!(20)),
        },
        Case {
            name: "maxPercent not above minHealthyPercent",
            path: "spec.service.rollout.maxPercent",
            expect: Cel,
            mutate: |v| set(v, "/spec/service/rollout/maxPercent", json!(100)),
        },
        Case {
            name: "minHealthyPercent above 100",
            path: "spec.service.rollout.minHealthyPercent",
            expect: Schema("maximum"),
            mutate: |v| set(v, "/spec/service/rollout/minHealthyPercent", json!(150)),
        },
        Case {
            name: "progress deadline too short",
            path: "spec.service.rollout.progressDeadlineSeconds",
            expect: Schema("minimum"),
            mutate: |v| set(v, "/spec/service/rollout/progressDeadlineSeconds", json!(10)),
        },
        Case {
            name: "rollback without the circuit breaker",
            path: "spec.service.rollout.circuitBreaker.rollback",
            expect: Cel,
            mutate: |v| set(v, "/spec/service/rollout/circuitBreaker/enabled", json!(false)),
        },
        Case {
            name: "listener rule without hosts or paths",
            path: "spec.loadBalancer.hosts",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/loadBalancer/hosts", json!([]));
                set(v, "/spec/loadBalancer/paths", json!([]))
            },
        },
        Case {
            name: "more than 5 rule values",
            path: "spec.loadBalancer.paths",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/loadBalancer/hosts", json!(["a.example.com", "b.example.com", "c.example.com"]));
                set(v, "/spec/loadBalancer/paths", json!(["/a", "/b", "/c"]))
            },
        },
        Case {
            name: "more than 3 paths in one condition",
            path: "spec.loadBalancer.paths",
            expect: Schema("maxItems"),
            mutate: |v| set(v, "/spec/loadBalancer/paths", json!(["/a", "/b", "/c", "/d"])),
        },
        Case {
            name: "more than 3 hosts in one condition",
            path: "spec.loadBalancer.hosts",
            expect: Schema("maxItems"),
            mutate: |v| {
                set(
                    v,
                    "/spec/loadBalancer/hosts",
                    json!(["a.example.com", "b.example.com", "c.example.com", "d.example.com"]),
                )
            },
        },
        Case {
            name: "more than 5 wildcards in one rule",
            path: "spec.loadBalancer.paths",
            expect: Cel,
            mutate: |v| set(v, "/spec/loadBalancer/paths", json!(["/a*/b?/*", "/c*/d?*"])),
        },
        Case {
            name: "host in upper case",
            path: "spec.loadBalancer.hosts[0]",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/loadBalancer/hosts", json!(["Books.Example.com"])),
        },
        Case {
            name: "path without a leading slash",
            path: "spec.loadBalancer.paths[0]",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/loadBalancer/paths", json!(["books*"])),
        },
        Case {
            name: "rule priority zero",
            path: "spec.loadBalancer.priority",
            expect: Schema("minimum"),
            mutate: |v| set(v, "/spec/loadBalancer/priority", json!(0)),
        },
        Case {
            name: "target health check timeout not below interval",
            path: "spec.loadBalancer.healthCheck.timeoutSeconds",
            expect: Cel,
            mutate: |v| set(v, "/spec/loadBalancer/healthCheck/timeoutSeconds", json!(10)),
        },
        Case {
            name: "container health check not CMD",
            path: "spec.container.healthCheck.command",
            expect: Cel,
            mutate: |v| set(v, "/spec/container/healthCheck/command", json!(["RUN", "/api-service"])),
        },
        Case {
            name: "environment variable name",
            path: "spec.container.env",
            expect: Cel,
            mutate: |v| set(v, "/spec/container/env/1BAD", json!("x")),
        },
        Case {
            name: "secret value not an ARN",
            path: "spec.container.secrets",
            expect: Cel,
            mutate: |v| set(v, "/spec/container/secrets/DATABASE_URL", json!("postgres://user:pw@db/books")),
        },
        Case {
            name: "same name in env and secrets",
            path: "spec.container.secrets",
            expect: Cel,
            mutate: |v| set(v, "/spec/container/env/DATABASE_URL", json!("sqlite://x")),
        },
        Case {
            name: "revision history limit zero",
            path: "spec.revisionHistoryLimit",
            expect: Schema("minimum"),
            mutate: |v| set(v, "/spec/revisionHistoryLimit", json!(0)),
        },
        Case {
            name: "region malformed",
            path: "spec.region",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/region", json!("mars-1")),
        },
        Case {
            name: "cluster name with a space",
            path: "spec.cluster",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/cluster", json!("api cluster")),
        },
        Case {
            name: "owned ECR repository given as a URI",
            path: "spec.image.repository",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/image/repository", json!("123456789012.dkr.ecr.us-east-1.amazonaws.com/books-api"))
            },
        },
        Case {
            name: "Cloud Map namespace ID malformed",
            path: "spec.service.serviceDiscovery.namespaceId",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/service/serviceDiscovery/namespaceId", json!("ns-1")),
        },
        Case {
            name: "keep zero images",
            path: "spec.ecr.keepLastImages",
            expect: Schema("minimum"),
            mutate: |v| set(v, "/spec/ecr/keepLastImages", json!(0)),
        },
        Case {
            name: "scan gate on an external registry",
            path: "spec.image.repository",
            expect: Cel,
            mutate: |v| {
                remove(v, "/spec/ecr");
                set(v, "/spec/image/repository", json!("ghcr.io/acme/books-api"));
                set(v, "/spec/image/scanGate", json!({"failOnSeverity": "HIGH"}));
            },
        },
        Case {
            name: "promotion tag in an immutable owned repository",
            path: "spec.image.promotionTag",
            expect: Cel,
            mutate: |v| set(v, "/spec/image/promotionTag", json!("prod-current")),
        },
        Case {
            name: "promotion tag equal to the deployed tag",
            path: "spec.image.promotionTag",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/ecr/tagMutability", json!("MUTABLE"));
                set(v, "/spec/image/promotionTag", json!("1.4.2"));
            },
        },
        Case {
            name: "unknown scan severity",
            path: "spec.image.scanGate.failOnSeverity",
            expect: Schema("enum"),
            mutate: |v| set(v, "/spec/image/scanGate", json!({"failOnSeverity": "SEVERE"})),
        },
        Case {
            name: "https redirect from the https listener itself",
            path: "spec.loadBalancer.httpsRedirect.listenerArn",
            expect: Cel,
            mutate: |v| {
                let https = v.pointer("/spec/loadBalancer/listenerArn").cloned().expect("listener");
                set(v, "/spec/loadBalancer/httpsRedirect", json!({"listenerArn": https}));
            },
        },
        Case {
            name: "api gateway without SRV records",
            path: "spec.apiGateway",
            expect: Cel,
            mutate: |v| {
                set(v, "/spec/service/serviceDiscovery/dnsRecordType", json!("A"));
                set(
                    v,
                    "/spec/apiGateway",
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0abc", "routes": [{"key": "GET /api/v1/books"}]}),
                );
            },
        },
        Case {
            name: "api gateway route key twice",
            path: "spec.apiGateway.routes",
            expect: Cel,
            mutate: |v| {
                let route = json!({"key": "GET /api/v1/books"});
                set(
                    v,
                    "/spec/apiGateway",
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0abc", "routes": [route.clone(), route]}),
                );
            },
        },
        Case {
            name: "api gateway route key without a method",
            path: "spec.apiGateway.routes[0].key",
            expect: Schema("pattern"),
            mutate: |v| {
                set(
                    v,
                    "/spec/apiGateway",
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0abc", "routes": [{"key": "/api/v1/books"}]}),
                );
            },
        },
        Case {
            name: "jwt issuer over plain http",
            path: "spec.apiGateway.authorizer.issuer",
            expect: Schema("pattern"),
            mutate: |v| {
                set(
                    v,
                    "/spec/apiGateway",
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0abc", "routes": [{"key": "GET /api/v1/books"}],
                    "authorizer": {"issuer": "http://auth.example.com", "audience": ["books"]}}),
                );
            },
        },
        Case {
            name: "alarms with no alarm",
            path: "spec.alarms",
            expect: Cel,
            mutate: |v| set(v, "/spec/alarms", json!({"snsTopicArns": []})),
        },
        Case {
            name: "alarm topic not an SNS ARN",
            path: "spec.alarms.snsTopicArns[0]",
            expect: Schema("pattern"),
            mutate: |v| set(v, "/spec/alarms", json!({"snsTopicArns": ["ops@example.com"], "cpuHighPercent": 80})),
        },
        Case {
            name: "wrong API version",
            path: "apiVersion",
            expect: Envelope,
            mutate: |v| set(v, "/apiVersion", json!("ecsop.io/v1")),
        },
        Case { name: "wrong kind", path: "kind", expect: Envelope, mutate: |v| set(v, "/kind", json!("Deployment")) },
        Case {
            name: "name not a DNS label",
            path: "metadata.name",
            expect: Envelope,
            mutate: |v| set(v, "/metadata/name", json!("Books.API")),
        },
    ]
}
