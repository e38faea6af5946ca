//! `ecsop run` end to end: the real binary as a child process, against the in-process fake Kubernetes
//! API server (`ecsop_testkit::FakeKube`, reached through `KUBECONFIG`) and moto (AWS, through the
//! account's environment). The harness plays ECS (`Account::drive`), since moto never progresses
//! deployments.
//!
//! Who wrote what is read from the fake's request log: every controller process gets its own kubeconfig
//! whose bearer token names it, and the fake records that token as the request's user. Events carry the
//! writer's lease identity as `reportingInstance` too, which the leader-election test cross-checks.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ecsop::engine::names::Names;
use ecsop_testkit::{Drive, FakeKube, Fault, KubeRequest};
use serde_json::Value;
use support::deploy::{CLUSTER, Env};

/// The namespace of the manifest template.
const NS: &str = "test";
const FINALIZER: &str = "ecsop.io/cleanup";
const LEASE: &str = "ecsop-leader";

/// A running `ecsop run`.
struct Operator {
    child: Child,
    admin: SocketAddr,
    /// The user its kubeconfig authenticates as (the fake's request log names it).
    user: String,
    log: PathBuf,
}

impl Operator {
    /// Start `ecsop run` as `user` with this account's AWS environment and `extra` arguments.
    fn start(env: &Env, fake: &FakeKube, user: &str, extra: &[&str]) -> Operator {
        let kubeconfig = env.dir.path().join(format!("kubeconfig-{user}"));
        fake.write_kubeconfig_as(&kubeconfig, user).expect("write kubeconfig");
        let admin = free_addr();
        let log = env.dir.path().join(format!("ecsop-{user}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let admin_arg = admin.to_string();
        let mut args = vec!["run", "--admin-addr", &admin_arg, "--resync", "2s", "--rollout-poll", "500ms"];
        args.extend_from_slice(extra);
        let child = env
            .command(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn ecsop run");
        Operator { child, admin, user: user.to_string(), log }
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        format!(
            "--- ecsop run ({}) log, last lines ---\n{}",
            self.user,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// SIGTERM, then wait (up to 20 s) for the exit.
    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "SIGTERM was not delivered");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "ecsop run did not exit after SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to release anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The writes this process made (by its user), other than to the lease.
    fn writes(&self, fake: &FakeKube) -> Vec<KubeRequest> {
        fake.requests()
            .into_iter()
            .filter(|r| r.is_write() && r.user.as_deref() == Some(&self.user) && !r.path.contains("/leases"))
            .collect()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// GET `path` from the admin server: status code and body (0 if it does not answer).
async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return (0, String::new()) };
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// Poll `check` every 200 ms until it returns `Some` or `timeout` passes.
async fn eventually<T, F: Future<Output = Option<T>>>(timeout: Duration, mut check: impl FnMut() -> F) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check().await {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ApiDeployment of the deploy template, as JSON.
fn manifest(env: &Env, name: &str, repository: &str, tag: &str) -> Value {
    serde_yaml::from_str(&env.manifest(name, repository, tag, "")).expect("the template is YAML")
}

/// A condition's (status, reason).
fn condition(obj: &Value, type_: &str) -> Option<(String, String)> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        (c["status"].as_str().unwrap_or_default().to_string(), c["reason"].as_str().unwrap_or_default().to_string())
    })
}

fn is(obj: &Value, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|(s, _)| s == status)
}

fn observed(obj: &Value) -> Option<i64> {
    obj["status"]["observedGeneration"].as_i64()
}

/// The failed requests the fake answered and the controllers' logs, for assertion messages.
fn diagnostics(fake: &FakeKube, ops: &[&Operator]) -> String {
    let failed: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.status >= 400)
        .map(|r| format!("{} {} {} ?{} -> {}", r.user.as_deref().unwrap_or("-"), r.method, r.path, r.query, r.status))
        .collect();
    format!(
        "--- failed requests ---\n{}\n{}",
        failed.join("\n"),
        ops.iter().map(|o| o.log()).collect::<Vec<_>>().join("\n")
    )
}

/// Wait (up to `timeout`) for the ApiDeployment to satisfy `check`; panics with the object and the logs.
async fn wait_object(
    fake: &FakeKube,
    name: &str,
    what: &str,
    timeout: Duration,
    ops: &[&Operator],
    check: impl Fn(&Value) -> bool,
) -> Value {
    match fake.wait_for(timeout, |f| f.api_deployment(NS, name).filter(|o| check(o))).await {
        Some(obj) => obj,
        None => panic!(
            "{what}: not within {timeout:?}; the object is {:#}\n{}",
            fake.api_deployment(NS, name).unwrap_or(Value::Null),
            diagnostics(fake, ops)
        ),
    }
}

async fn service_revision(env: &Env, name: &str) -> Option<String> {
    let clients = env.clients().await;
    clients.ecs.service(CLUSTER, name).await.expect("describe service").map(|s| s.task_definition)
}

async fn active_revisions(env: &Env, name: &str) -> Vec<String> {
    let clients = env.clients().await;
    clients.ecs.list_task_definitions(&Names::new(NS, name).family()).await.expect("list task definitions")
}

/// The service, the target group and a rule forwarding to it all exist.
async fn aws_deployed(env: &Env, name: &str) -> bool {
    let clients = env.clients().await;
    let names = Names::new(NS, name);
    let Some(tg) = clients.elbv2.target_group(&names.target_group()).await.expect("describe target group") else {
        return false;
    };
    let service = clients.ecs.service(CLUSTER, name).await.expect("describe service");
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    service.is_some() && rules.iter().any(|r| r.target_groups.contains(&tg.arn))
}

fn events_with(fake: &FakeKube, reason: &str) -> Vec<Value> {
    fake.events().into_iter().filter(|e| e["reason"] == reason).collect()
}

/// Wait (up to 10 s: events follow the status write) for an event with `reason` satisfying `check`.
async fn wait_event(fake: &FakeKube, reason: &str, ops: &[&Operator], check: impl Fn(&Value) -> bool) -> Value {
    let found = fake.wait_for(Duration::from_secs(10), |f| events_with(f, reason).into_iter().find(|e| check(e))).await;
    found.unwrap_or_else(|| panic!("no matching {reason} event in {:#?}\n{}", fake.events(), diagnostics(fake, ops)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_update_rollback_delete() {
    let env = Env::new().await;
    let fake = FakeKube::start().await;
    let (name, repo) = ("books", "books-api");
    env.push(repo, "v1").await;
    let mut op = Operator::start(&env, &fake, "ecsop", &[]);
    let ops = [&op];
    let long = Duration::from_secs(60);

    // 1. Create: the finalizer, then AWS, then status Reconciling; driven to completion, Ready.
    fake.create(manifest(&env, name, repo, "v1")).expect("create the ApiDeployment");
    let obj = wait_object(&fake, name, "the finalizer", long, &ops, |o| {
        o["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == FINALIZER))
    })
    .await;
    assert_eq!(obj["metadata"]["generation"], 1);
    let deployed = eventually(long, || async { aws_deployed(&env, name).await.then_some(()) }).await;
    assert!(deployed.is_some(), "no ECS service, target group and rule\n{}", op.log());
    let obj = wait_object(&fake, name, "Reconciling=True, Ready=Unknown", long, &ops, |o| {
        is(o, "Reconciling", "True") && is(o, "Ready", "Unknown") && observed(o) == Some(1)
    })
    .await;
    assert_eq!(obj["metadata"]["generation"], 1, "status writes leave generation alone");
    assert_eq!(admin_get(op.admin, "/readyz").await.0, 200, "{}", diagnostics(&fake, &ops));
    let (code, metrics) = admin_get(op.admin, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("ecsop_reconcile_total"), "{metrics}");
    let td1 = service_revision(&env, name).await.expect("the service runs a revision");

    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("drive Complete");
    let obj = wait_object(&fake, name, "Ready=True", long, &ops, |o| is(o, "Ready", "True")).await;
    assert_eq!(condition(&obj, "Ready").map(|c| c.1).as_deref(), Some("RolloutComplete"));
    assert_eq!(observed(&obj), Some(1));
    wait_event(&fake, "RolloutComplete", &ops, |e| e["type"] == "Normal").await;

    // Settled: resyncs (every 2 s) write nothing, so the object does not change.
    let settled = obj["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let now = fake.api_deployment(NS, name).expect("object");
    assert_eq!(now["metadata"]["resourceVersion"], settled, "idle resyncs changed the object: {now:#}");

    // 2. A new image tag: generation 2, exactly one new revision, Reconciling, then Ready.
    env.push(repo, "v2").await;
    let before = active_revisions(&env, name).await;
    env.account.clear_calls().await.expect("clear the call log");
    let updated = fake.update(manifest(&env, name, repo, "v2")).expect("update the spec");
    assert_eq!(updated["metadata"]["generation"], 2);
    wait_object(&fake, name, "Reconciling for generation 2", long, &ops, |o| {
        is(o, "Reconciling", "True") && observed(o) == Some(2)
    })
    .await;
    let td2 = env
        .account
        .drive_next_rollout(CLUSTER, name, Some(&td1), &[Drive::Complete], Duration::from_millis(200), long)
        .await
        .expect("a deployment of the new revision");
    let obj = wait_object(&fake, name, "Ready=True for generation 2", long, &ops, |o| {
        is(o, "Ready", "True") && observed(o) == Some(2)
    })
    .await;
    assert_eq!(condition(&obj, "Ready").map(|c| c.1).as_deref(), Some("RolloutComplete"));
    let after = active_revisions(&env, name).await;
    let new: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    assert_eq!(new, [&td2], "exactly one new revision: before {before:?}, after {after:?}");
    let registered =
        env.account.calls().await.expect("calls").iter().filter(|c| c.operation == "RegisterTaskDefinition").count();
    assert_eq!(registered, 1, "RegisterTaskDefinition calls for one spec change");

    // 3. Another change, rolled back by the circuit breaker: Stalled=True (RolledBack), a Warning event.
    env.push(repo, "v3").await;
    let updated = fake.update(manifest(&env, name, repo, "v3")).expect("update the spec");
    assert_eq!(updated["metadata"]["generation"], 3);
    let reason = "Essential container in task exited".to_string();
    env.account
        .drive_next_rollout(CLUSTER, name, Some(&td2), &[Drive::Rollback { reason }], Duration::from_millis(200), long)
        .await
        .expect("a deployment of the third revision");
    let obj =
        wait_object(&fake, name, "Stalled=True after the rollback", long, &ops, |o| is(o, "Stalled", "True")).await;
    assert_eq!(condition(&obj, "Stalled").map(|c| c.1).as_deref(), Some("RolledBack"), "{obj:#}");
    assert!(is(&obj, "Ready", "False"), "{obj:#}");
    wait_event(&fake, "RolledBack", &ops, |e| e["type"] == "Warning").await;

    // 4. Delete: AWS is torn down, the finalizer goes, and with it the object.
    let deleting = fake.delete_api_deployment(NS, name).expect("delete");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string(), "the finalizer holds the object");
    let gone = fake.wait_for(Duration::from_secs(90), |f| f.api_deployment(NS, name).is_none().then_some(())).await;
    assert!(
        gone.is_some(),
        "the object is still there: {:#}\n{}",
        fake.api_deployment(NS, name).unwrap_or_default(),
        op.log()
    );
    let clients = env.clients().await;
    assert_eq!(clients.ecs.service(CLUSTER, name).await.expect("describe"), None, "the ECS service is left");
    let tg = clients.elbv2.target_group(&Names::new(NS, name).target_group()).await.expect("describe");
    assert_eq!(tg, None, "the target group is left");
    let revisions = active_revisions(&env, name).await;
    assert!(revisions.is_empty(), "revisions left: {revisions:?}");
    assert!(!events_with(&fake, "Deleted").is_empty(), "{:#?}", fake.events());

    // Graceful shutdown.
    let (status, took) = op.terminate();
    assert!(status.success(), "ecsop run exited with {status}\n{}", op.log());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}

/// The lease's holder, if any.
fn holder(fake: &FakeKube) -> Option<String> {
    fake.lease(NS, LEASE)?["spec"]["holderIdentity"].as_str().map(str::to_string)
}

fn micro_time(lease: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = lease["spec"][field].as_str().unwrap_or_else(|| panic!("no {field} in {lease:#}"));
    chrono::DateTime::parse_from_rfc3339(text).expect("a MicroTime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_a_standby_takes_over() {
    let env = Env::new().await;
    let fake = FakeKube::start().await;
    let (name, repo) = ("leader-api", "leader-api");
    env.push(repo, "v1").await;
    let elect = |id: &'static str| ["--leader-election", "--identity", id, "--lease-namespace", NS];
    let mut a = Operator::start(&env, &fake, "a", &elect("a"));
    let mut b = Operator::start(&env, &fake, "b", &elect("b"));
    let first = fake.wait_for(Duration::from_secs(20), holder).await;
    let first = first.unwrap_or_else(|| panic!("nobody took the lease\n{}\n{}", a.log(), b.log()));
    let (leader, standby) = if first == "a" { (&mut a, &mut b) } else { (&mut b, &mut a) };

    fake.create(manifest(&env, name, repo, "v1")).expect("create the ApiDeployment");
    let long = Duration::from_secs(60);
    wait_object(&fake, name, "Reconciling by the leader", long, &[leader, standby], |o| is(o, "Reconciling", "True"))
        .await;
    let deployed = eventually(long, || async { aws_deployed(&env, name).await.then_some(()) }).await;
    assert!(deployed.is_some(), "the leader did not deploy\n{}", leader.log());

    // Only the holder wrote: the finalizer, the status, the events. The standby only read.
    let leader_writes = leader.writes(&fake);
    let standby_writes = standby.writes(&fake);
    assert!(standby_writes.is_empty(), "the standby wrote: {standby_writes:#?}");
    let wrote =
        |path_end: &str, method: &str| leader_writes.iter().any(|r| r.method == method && r.path.ends_with(path_end));
    assert!(wrote(&format!("/apideployments/{name}"), "PATCH"), "the finalizer: {leader_writes:#?}");
    assert!(wrote(&format!("/apideployments/{name}/status"), "PATCH"), "the status: {leader_writes:#?}");
    assert!(wrote("/events", "POST"), "events: {leader_writes:#?}");
    let events = fake.events();
    assert!(
        !events.is_empty() && events.iter().all(|e| e["reportingInstance"] == first.as_str()),
        "{events:#?}\n{}",
        diagnostics(&fake, &[leader, standby])
    );

    // The holder dies without releasing the lease; the standby takes over once it expires.
    let lease = fake.lease(NS, LEASE).expect("the lease");
    let last_renewal = micro_time(&lease, "renewTime");
    let duration = lease["spec"]["leaseDurationSeconds"].as_i64().expect("leaseDurationSeconds");
    assert_eq!(duration, 15);
    leader.kill();
    let killed = Instant::now();
    let second = standby.user.clone();
    let took_over =
        fake.wait_for(Duration::from_secs(30), |f| (holder(f).as_deref() == Some(&second)).then_some(())).await;
    assert!(took_over.is_some(), "the standby did not take over\n{}", standby.log());
    let lease = fake.lease(NS, LEASE).expect("the lease");
    let gap = micro_time(&lease, "acquireTime") - last_renewal;
    // The standby retries every 5 s; the lease holds for 15 s after the last renewal.
    assert!(
        gap >= chrono::Duration::seconds(duration) && gap <= chrono::Duration::seconds(duration + 6),
        "took over {gap} after the last renewal (lease duration {duration} s, retry 5 s)"
    );
    assert!(killed.elapsed() <= Duration::from_secs(21), "took over {:?} after the kill", killed.elapsed());
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease:#}");

    // The new leader reconciles: driven to completion, it writes Ready=True and its own events.
    fake.clear_requests();
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("drive Complete");
    wait_object(&fake, name, "Ready=True by the new leader", long, &[standby], |o| is(o, "Ready", "True")).await;
    let new_writes = standby.writes(&fake);
    assert!(
        new_writes.iter().any(|r| r.method == "PATCH" && r.path.ends_with("/status")),
        "the new leader wrote the status: {new_writes:#?}"
    );
    wait_event(&fake, "RolloutComplete", &[standby], |e| e["reportingInstance"] == second.as_str()).await;

    // Graceful shutdown releases the lease.
    let (status, took) = standby.terminate();
    assert!(status.success(), "ecsop run exited with {status}\n{}", standby.log());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(holder(&fake), None, "the lease is released: {:#}", fake.lease(NS, LEASE).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_writing_reconcile_stops_writing_before_the_lease_is_released() {
    let env = Env::new().await;
    let fake = FakeKube::start().await;
    let (name, repo) = ("drained", "drained-api");
    env.push(repo, "v1").await;
    let elect = |id: &'static str| ["--leader-election", "--identity", id, "--lease-namespace", NS];
    let mut a = Operator::start(&env, &fake, "a", &elect("a"));
    let held = fake.wait_for(Duration::from_secs(20), |f| (holder(f).as_deref() == Some("a")).then_some(())).await;
    assert!(held.is_some(), "a did not take the lease\n{}", a.log());

    // Every AWS write takes 1.5 s: SIGTERM right after the first one finished lands while the next is
    // on the wire.
    env.account.inject(Fault::latency(Duration::from_millis(1500)).writes_only()).await.expect("latency");
    env.account.clear_calls().await.expect("clear");
    fake.create(manifest(&env, name, repo, "v1")).expect("create the ApiDeployment");
    let first = eventually(Duration::from_secs(60), || async { (!env.writes().await.is_empty()).then_some(()) }).await;
    assert!(first.is_some(), "no AWS write\n{}", a.log());
    let sent = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let at_sigterm = env.writes().await;

    // The lease is released only once the write in flight has finished, and nothing is written after.
    let released = fake.wait_for(Duration::from_secs(20), |f| holder(f).is_none().then_some(())).await;
    assert!(released.is_some(), "the lease was not released\n{}", a.log());
    let at_release = env.writes().await;
    let (status, took) = a.terminate();
    assert!(status.success(), "exited with {status}\n{}", a.log());
    assert!(took < Duration::from_secs(20), "shutdown took {took:?}");
    let at_exit = env.writes().await;
    assert_eq!(at_release, at_exit, "AWS writes after the lease was released\n{}", a.log());
    // The step in flight (the target group: its create and its attributes) finished; no new one began.
    assert_eq!(at_sigterm, ["RegisterTaskDefinition"], "{}", a.log());
    assert_eq!(
        at_exit[at_sigterm.len()..],
        ["CreateTargetGroup", "ModifyTargetGroupAttributes"],
        "the writes after SIGTERM\n{}",
        a.log()
    );
    // Nor any Kubernetes write after the lease's last write (its release).
    let requests: Vec<KubeRequest> = fake.requests().into_iter().filter(|r| r.user.as_deref() == Some("a")).collect();
    let last_lease = requests.iter().rposition(|r| r.is_write() && r.path.contains("/leases")).expect("lease writes");
    let after: Vec<_> = requests[last_lease..].iter().skip(1).filter(|r| r.is_write()).collect();
    assert!(after.is_empty(), "Kubernetes writes after the release: {after:#?}");

    // The next replica finishes the work: one of everything.
    env.account.clear_faults().await.expect("clear faults");
    let b = Operator::start(&env, &fake, "b", &elect("b"));
    let long = Duration::from_secs(60);
    let deployed = eventually(long, || async { aws_deployed(&env, name).await.then_some(()) }).await;
    assert!(deployed.is_some(), "b did not finish the deployment\n{}", b.log());
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("drive Complete");
    wait_object(&fake, name, "Ready=True", long, &[&b], |o| is(o, "Ready", "True")).await;
    assert_eq!(active_revisions(&env, name).await.len(), 1, "one revision");
    let clients = env.clients().await;
    let rules = clients.elbv2.rules(&env.net.listener_arn).await.expect("rules");
    let tg = clients.elbv2.target_group(&Names::new(NS, name).target_group()).await.expect("tg").expect("exists");
    assert_eq!(rules.iter().filter(|r| r.target_groups.contains(&tg.arn)).count(), 1, "one rule: {rules:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_refuses_connections_for_a_while_is_waited_out() {
    let env = Env::new().await;
    let fake = FakeKube::start().await;
    let (name, repo) = ("outage", "outage-api");
    env.push(repo, "v1").await;
    let mut op = Operator::start(&env, &fake, "ecsop", &[]);
    let long = Duration::from_secs(60);
    fake.create(manifest(&env, name, repo, "v1")).expect("create the ApiDeployment");
    wait_object(&fake, name, "Reconciling", long, &[&op], |o| is(o, "Reconciling", "True")).await;

    // The API server refuses connections for 4 s (watches break, status writes fail) while ECS finishes.
    fake.refuse_connections(true);
    env.account.drive(CLUSTER, name, Drive::Complete).await.expect("drive Complete");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(op.child.try_wait().expect("wait").is_none(), "ecsop run exited during the outage\n{}", op.log());
    fake.refuse_connections(false);

    // Back: the watch resumes and the status catches up; the process never restarted.
    wait_object(&fake, name, "Ready=True after the outage", long, &[&op], |o| is(o, "Ready", "True")).await;
    assert_eq!(admin_get(op.admin, "/readyz").await.0, 200, "{}", op.log());
    let (status, _) = op.terminate();
    assert!(status.success(), "{}", op.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apideployment_outside_its_namespaces_tenancy_policy_is_stalled_without_an_aws_write() {
    let env = Env::new().await;
    let fake = FakeKube::start().await;
    env.push("team-api", "v1").await;
    let policy = format!(
        "tenants:\n  - name: test\n    namespaces: [{NS}]\n    regions: [\"*\"]\n    clusters: [{CLUSTER}]\n    subnets: [\"*\"]\n    \
         securityGroups: [\"*\"]\n    serviceDiscoveryNamespaces: [\"*\"]\n    repositories: [team-api]\n    taskRoles: [\"arn:aws:iam::*:role/tenants/{NS}/*\"]\n    \
         listeners:\n      - arn: \"*\"\n        paths: [\"/mine*\"]\n        hosts: [\"*.mine.example.com\"]\n"
    );
    let policy_path = env.write("tenancy.yaml", &policy);
    let op = Operator::start(&env, &fake, "ecsop", &["--tenancy-policy", policy_path.to_str().expect("utf-8")]);
    let long = Duration::from_secs(60);

    // Another team's task role: Stalled, PolicyViolation naming the field, and AWS untouched.
    env.account.clear_calls().await.expect("clear");
    let mut foreign = manifest(&env, "mine", "team-api", "v1");
    foreign["spec"]["loadBalancer"]["hosts"] = serde_json::json!(["api.mine.example.com"]);
    foreign["spec"]["container"]["taskRoleArn"] = "arn:aws:iam::123456789012:role/tenants/other/admin".into();
    fake.create(foreign).expect("create");
    let obj = wait_object(&fake, "mine", "Stalled=PolicyViolation", long, &[&op], |o| {
        condition(o, "Stalled") == Some(("True".into(), "PolicyViolation".into()))
    })
    .await;
    let message = obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Stalled"))
        .map(|c| c["message"].to_string());
    assert!(message.as_deref().is_some_and(|m| m.contains("spec.container.taskRoleArn")), "{message:?}");
    wait_event(&fake, "PolicyViolation", &[&op], |e| e["type"] == "Warning").await;
    // The other kinds, each in an ApiDeployment of its own: a secret, a host, an HTTP API route, a
    // promotion in a repository the namespace may not move tags in.
    type Case = (&'static str, &'static str, fn(&mut Value));
    let others: [Case; 4] = [
        ("secret", "spec.container.secrets.DB", |v| {
            v["spec"]["container"]["secrets"] =
                serde_json::json!({"DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/db"});
        }),
        ("host", "spec.loadBalancer.hosts", |v| {
            v["spec"]["loadBalancer"]["hosts"] = serde_json::json!(["*.example.com"])
        }),
        ("route", "spec.apiGateway", |v| {
            v["spec"]["service"]["serviceDiscovery"] =
                serde_json::json!({"namespaceId": "ns-abcdefgh12345678", "dnsRecordType": "SRV"});
            v["spec"]["apiGateway"] = serde_json::json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0a1b2c", "routes": [{"key": "GET /other/{id}"}]});
        }),
        ("promotion", "spec.image.promotionTag", |v| v["spec"]["image"]["promotionTag"] = "prod-current".into()),
    ];
    for (what, field, change) in others {
        let name = format!("mine-{what}");
        let mut obj = manifest(&env, &name, "team-api", "v1");
        obj["spec"]["loadBalancer"]["paths"] = serde_json::json!([format!("/mine-{what}*")]);
        obj["spec"]["loadBalancer"]["hosts"] = serde_json::json!(["api.mine.example.com"]);
        change(&mut obj);
        fake.create(obj).expect("create");
        let obj = wait_object(&fake, &name, "Stalled=PolicyViolation", long, &[&op], |o| {
            condition(o, "Stalled") == Some(("True".into(), "PolicyViolation".into()))
        })
        .await;
        let text = obj["status"].to_string();
        assert!(text.contains(field), "{what}: names {field}: {text}");
    }
    assert_eq!(env.writes().await, Vec::<String>::new(), "no AWS write\n{}", op.log());

    // Fixed within the policy: deployed.
    let mut fixed = fake.api_deployment(NS, "mine").expect("object");
    fixed["spec"]["container"]["taskRoleArn"] = "arn:aws:iam::123456789012:role/tenants/test/books".into();
    fake.update(fixed).expect("update");
    let deployed = eventually(long, || async { aws_deployed(&env, "mine").await.then_some(()) }).await;
    assert!(deployed.is_some(), "not deployed once within the policy\n{}", op.log());
}
