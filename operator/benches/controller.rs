//! Controller benchmarks: the figures for BENCHMARKS.md's controller section.
//!
//! ```text
//! cargo bench -p ecsop --bench controller
//! ```
//!
//! 1. **Reconcile CPU time**: the controller's `reconcile` of an in-sync ApiDeployment (Ready, nothing
//!    to write), end to end through the finalizer check, the engine (observe + plan), the status patch
//!    by server-side apply and metrics, with the Kubernetes API answered at once by kube's mock service
//!    and AWS by the in-memory fakes (no latency), on one thread. Process CPU time (user + system,
//!    from /proc/self/stat) divided by the number of reconciles.
//! 2. **Spec change to UpdateService**: an image-tag change on a Ready ApiDeployment, from the start of
//!    the reconcile to the moment the UpdateService call reaches the AWS adapter (operator side only:
//!    both APIs answer at once), as a distribution over many changes.
//! 3. **RSS with 10,000 ApiDeployments cached**: the release `ecsop run` binary as its own process,
//!    watching an in-process fake Kubernetes API (`ecsop_testkit::FakeKube`) that holds 10,000
//!    ApiDeployments; AWS points at a closed local port, so every reconcile fails and backs off (the
//!    figure is the cache plus the controller's per-object state, not AWS data). VmRSS 30 s after
//!    /readyz turned 200 (the first LIST is done), and VmHWM.
//!
//! Options: `--objects N` (default 10000) for part 3.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ecsop::api::ApiDeployment;
use ecsop::aws::TaskDefinition;
use ecsop::aws::{
    AwsResult, Clients, Ecs, Service, ServiceConfig, ServiceDeployment, ServiceUpdate, Tags, TaskDefinitionInfo,
};
use ecsop::controller::leader::LeaderState;
use ecsop::controller::{Context, Engines, FINALIZER, Timing, reconcile};
use ecsop::engine::Engine;
use ecsop::metrics::Metrics;
use ecsop_testkit::fake::FakeAws;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

const CLUSTER: &str = "api-cluster";

/// ECS that remembers when UpdateService was called.
struct TimedEcs {
    inner: Arc<dyn Ecs>,
    updated_at: Mutex<Option<Instant>>,
}

#[async_trait]
impl Ecs for TimedEcs {
    async fn service(&self, cluster: &str, name: &str) -> AwsResult<Option<Service>> {
        self.inner.service(cluster, name).await
    }
    async fn list_task_definitions(&self, family: &str) -> AwsResult<Vec<String>> {
        self.inner.list_task_definitions(family).await
    }
    async fn task_definition(&self, arn: &str) -> AwsResult<TaskDefinitionInfo> {
        self.inner.task_definition(arn).await
    }
    async fn register_task_definition(&self, d: &TaskDefinition, tags: &Tags) -> AwsResult<TaskDefinitionInfo> {
        self.inner.register_task_definition(d, tags).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> AwsResult<()> {
        self.inner.deregister_task_definition(arn).await
    }
    async fn create_service(&self, config: &ServiceConfig) -> AwsResult<Service> {
        self.inner.create_service(config).await
    }
    async fn update_service(&self, update: &ServiceUpdate) -> AwsResult<Service> {
        *self.updated_at.lock().expect("lock") = Some(Instant::now());
        self.inner.update_service(update).await
    }
    async fn delete_service(&self, cluster: &str, name: &str) -> AwsResult<()> {
        self.inner.delete_service(cluster, name).await
    }
    async fn service_deployments(&self, cluster: &str, name: &str) -> AwsResult<Vec<ServiceDeployment>> {
        self.inner.service_deployments(cluster, name).await
    }
    async fn stop_service_deployment(&self, arn: &str, rollback: bool) -> AwsResult<()> {
        self.inner.stop_service_deployment(arn, rollback).await
    }
    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        self.inner.tag(arn, tags).await
    }
    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.inner.untag(arn, keys).await
    }
}

/// A Kubernetes API that answers every call at once (status patches echo the object).
fn instant_api(object: Arc<Mutex<Value>>) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let answer = if path.ends_with("/status") {
                let mut o = object.lock().expect("lock");
                o["status"] = body["status"].clone();
                o.clone()
            } else if path.contains("/events") {
                body
            } else {
                object.lock().expect("lock").clone()
            };
            let response =
                Response::builder().status(200).body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()));
            if let Ok(r) = response {
                send.send_response(r);
            }
        }
    });
    kube::Client::new(service, "default")
}

struct Bench {
    fake: FakeAws,
    ecs: Arc<TimedEcs>,
    object: Arc<Mutex<Value>>,
    ctx: Arc<Context>,
}

impl Bench {
    fn new() -> Bench {
        let fake = FakeAws::new();
        let listener = fake.create_listener();
        let namespace = fake.create_namespace("svc.local");
        let text = include_str!("../tests/valid.yaml")
            .replace(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
                &listener,
            )
            .replace("ns-abcdefgh12345678", &namespace);
        let mut object: Value = serde_yaml::from_str(&text).expect("yaml");
        object["spec"].as_object_mut().expect("spec").remove("ecr");
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["uid"] = json!("5f0c8e3a-0000-4000-8000-000000000001");
        object["metadata"]["finalizers"] = json!([FINALIZER]);
        fake.push_image("books-api", "1.4.2", &digest(0));
        let mut clients: Clients = fake.clients();
        let ecs = Arc::new(TimedEcs { inner: clients.ecs.clone(), updated_at: Mutex::new(None) });
        clients.ecs = ecs.clone();
        let object = Arc::new(Mutex::new(object));
        let ctx = Arc::new(Context::new(
            instant_api(object.clone()),
            Engines::Fixed(Engine::new(clients, "us-east-1")),
            Arc::new(Metrics::default()),
            LeaderState::always(),
            "ecsop".into(),
            // deep_every large: the steady state takes the fast path, as a periodic resync does.
            Timing { deep_every: 1_000_000, ..Timing::default() },
        ));
        Bench { fake, ecs, object, ctx }
    }

    async fn reconcile(&self) {
        let object: ApiDeployment = serde_json::from_value(self.object.lock().expect("lock").clone()).expect("typed");
        reconcile(Arc::new(object), self.ctx.clone()).await.expect("reconcile");
    }
}

fn digest(n: u32) -> String {
    format!("sha256:{:064x}", u64::from(n) + 1)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after the name.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 10) // USER_HZ is 100 on Linux
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let objects: usize =
        std::env::args().skip_while(|a| a != "--objects").nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        // 1. Steady-state reconcile CPU.
        let b = Bench::new();
        b.reconcile().await; // creates everything
        b.fake.complete(CLUSTER, "books-api");
        b.reconcile().await; // Ready
        let n = 5_000u32;
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        for _ in 0..n {
            b.reconcile().await;
        }
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        println!("| measurement | value |");
        println!("|---|---|");
        println!("| in-sync reconciles | {n} |");
        println!("| CPU per reconcile (user+sys) | {:.1} µs |", cpu.as_secs_f64() * 1e6 / f64::from(n));
        println!("| wall per reconcile | {:.1} µs |", wall.as_secs_f64() * 1e6 / f64::from(n));

        // 2. Spec change -> UpdateService.
        let samples = 500u32;
        let mut latencies = Vec::with_capacity(samples as usize);
        for i in 1..=samples {
            let tag = format!("2.0.{i}");
            b.fake.push_image("books-api", &tag, &digest(i));
            {
                let mut o = b.object.lock().expect("lock");
                o["spec"]["image"]["tag"] = json!(tag);
                o["metadata"]["generation"] = json!(i + 1);
            }
            *b.ecs.updated_at.lock().expect("lock") = None;
            let start = Instant::now();
            b.reconcile().await;
            let at = b.ecs.updated_at.lock().expect("lock").expect("UpdateService was called");
            latencies.push(at - start);
            b.fake.complete(CLUSTER, "books-api");
        }
        latencies.sort();
        println!("| spec changes | {samples} |");
        println!("| spec change to UpdateService p50 | {:.2} ms |", percentile(&latencies, 0.5).as_secs_f64() * 1e3);
        println!("| spec change to UpdateService p99 | {:.2} ms |", percentile(&latencies, 0.99).as_secs_f64() * 1e3);
        println!(
            "| spec change to UpdateService max | {:.2} ms |",
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    });
    let multi = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    multi.block_on(rss_with_cached(objects));
}

/// Part 3: RSS of `ecsop run` with `n` ApiDeployments in its cache.
async fn rss_with_cached(n: usize) {
    let kube = ecsop_testkit::FakeKube::start().await;
    for i in 0..n {
        let object = json!({
            "apiVersion": "ecsop.io/v1alpha1",
            "kind": "ApiDeployment",
            "metadata": {"name": format!("api-{i:05}"), "namespace": format!("team-{}", i % 50), "labels": {"team": format!("t{}", i % 50)}},
            "spec": {
                "cluster": "api-cluster",
                "image": {"repository": "books-api", "tag": "1.4.2"},
                "container": {"port": 8080, "cpu": 256, "memory": 512, "env": {"RUST_LOG": "info", "APP_ENV": "production"},
                              "healthCheck": {"command": ["CMD", "/api-service", "healthcheck"], "intervalSeconds": 10}},
                "service": {"replicas": 2, "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "securityGroups": ["sg-0123abcd"]},
                "loadBalancer": {
                    "listenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
                    "vpcId": "vpc-0123abcd", "priority": 1 + (i % 40000), "paths": [format!("/api-{i}*")]
                }
            }
        });
        kube.create(object).expect("create ApiDeployment");
    }
    let dir = std::env::temp_dir().join(format!("ecsop-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecsop"))
        .args(["run", "--admin-addr", &format!("127.0.0.1:{port}"), "--resync", "5m"])
        .env("KUBECONFIG", &kubeconfig)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ecsop run");
    let started = Instant::now();
    let ready = loop {
        if readyz(port).await {
            break Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(30)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    println!("| ApiDeployments cached | {n} |");
    println!(
        "| start to ready (first LIST done) | {} |",
        ready.map(|d| format!("{} ms", d.as_millis())).unwrap_or("not ready in 120 s".into())
    );
    println!("| RSS 30 s after ready | {:.1} MiB |", field("VmRSS:"));
    println!("| peak RSS (VmHWM) | {:.1} MiB |", field("VmHWM:"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn readyz(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    if stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n").await.is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
}
