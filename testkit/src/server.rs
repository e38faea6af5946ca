//! Starting (or reusing) the moto server, and the per-account handle tests work through.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::{Error, Result, io_err};

/// The moto version every run uses. Kept in one place: `testkit/python/requirements.txt`.
const REQUIREMENTS: &str = include_str!("../python/requirements.txt");
const LAUNCHER: &str = include_str!("../python/ecsop_moto.py");
/// A shared server exits after this long without a request, so it never outlives a test run by much.
const IDLE_EXIT_SECONDS: u32 = 60;
/// The region every harness account uses unless a test asks for another.
pub const DEFAULT_REGION: &str = "us-east-1";

static SHARED: OnceCell<Moto> = OnceCell::const_new();
static NEXT_ACCOUNT: AtomicU64 = AtomicU64::new(0);

/// A running moto server (with ecsop's harness layer in front of it).
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
}

impl Moto {
    /// The server shared by every test in this run: reused when one is already running (from this or
    /// another test process), otherwise installed if needed and started.
    ///
    /// `ECSOP_MOTO_URL` points the harness at a server started elsewhere instead.
    pub async fn shared() -> Result<&'static Moto> {
        SHARED
            .get_or_try_init(|| async {
                if let Ok(url) = std::env::var("ECSOP_MOTO_URL") {
                    return Ok(Moto { endpoint: url.trim_end_matches('/').to_string() });
                }
                let paths = Paths::discover();
                let port = tokio::task::spawn_blocking(move || start_or_reuse(&paths))
                    .await
                    .map_err(|e| Error::NotReady(format!("start-up task panicked: {e}")))??;
                Ok(Moto { endpoint: format!("http://127.0.0.1:{port}") })
            })
            .await
    }

    /// The server's base URL, as `AWS_ENDPOINT_URL` takes it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A fresh, empty AWS account on this server, isolated from every other account.
    pub fn new_account(&self) -> Account {
        Account::new(self.endpoint.clone(), unique_account_id(), DEFAULT_REGION.to_string())
    }

    /// The account with this 12-digit id (for a demo that wants a stable account).
    pub fn account(&self, id: &str) -> Account {
        Account::new(self.endpoint.clone(), id.to_string(), DEFAULT_REGION.to_string())
    }
}

/// Account ids unique across the concurrent test processes sharing one server, and across runs
/// against a long-lived server: time, process id and a counter.
fn unique_account_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mixed = (nanos as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(u64::from(std::process::id()) << 20)
        .wrapping_add(NEXT_ACCOUNT.fetch_add(1, Ordering::Relaxed).wrapping_mul(1_442_695_040_888_963_407));
    // Keep clear of moto's default account (123456789012) by starting at 2 * 10^11.
    format!("{:012}", 200_000_000_000 + mixed % 700_000_000_000)
}

/// Where the virtualenv, the launcher and the server's state live.
#[derive(Debug, Clone)]
struct Paths {
    venv: PathBuf,
    state_dir: PathBuf,
}

impl Paths {
    fn discover() -> Self {
        // The workspace root: testkit/ lives directly under it.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default();
        let venv = std::env::var_os("ECSOP_MOTO_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv-moto"));
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        // One server per version of the launcher: a server started by an older harness (still idling
        // from an earlier run) is never reused by a newer one.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&(LAUNCHER, REQUIREMENTS), &mut hasher);
        let version = std::hash::Hasher::finish(&hasher);
        Paths { venv, state_dir: target.join(format!("ecsop-moto-{:08x}", version as u32)) }
    }
}

#[derive(Debug, Deserialize)]
struct ServerState {
    port: u16,
}

fn start_or_reuse(paths: &Paths) -> Result<u16> {
    fs::create_dir_all(&paths.state_dir).map_err(io_err(format!("creating {}", paths.state_dir.display())))?;
    let lock_path = paths.state_dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(format!("opening {}", lock_path.display())))?;
    // One process at a time installs and starts; the others wait here, then reuse its server.
    lock.lock().map_err(io_err("locking the moto state directory"))?;

    let state_file = paths.state_dir.join("server.json");
    if let Some(port) = read_port(&state_file)
        && health(port)
    {
        return Ok(port);
    }
    ensure_venv(&paths.venv)?;
    let launcher = paths.state_dir.join("ecsop_moto.py");
    fs::write(&launcher, LAUNCHER).map_err(io_err("writing the moto launcher"))?;
    let _ = fs::remove_file(&state_file);
    let log_path = paths.state_dir.join("server.log");
    let log = File::create(&log_path).map_err(io_err("creating the moto log"))?;
    let log_err = log.try_clone().map_err(io_err("cloning the moto log handle"))?;
    let mut command = Command::new(paths.venv.join("bin").join("python"));
    command
        .arg(&launcher)
        .args(["--host", "127.0.0.1", "--port", "0", "--idle-exit", &IDLE_EXIT_SECONDS.to_string()])
        .arg("--state-file")
        .arg(&state_file)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // Its own process group: the server is shared with later test processes and must not die with
    // this one; it exits by itself once idle.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(io_err("starting moto"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(port) = read_port(&state_file)
            && health(port)
        {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Error::NotReady(format!("moto exited with {status}: {}", tail(&log))));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Error::NotReady(format!("no answer after 60 s: {}", tail(&log))));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn read_port(state_file: &Path) -> Option<u16> {
    let text = fs::read_to_string(state_file).ok()?;
    serde_json::from_str::<ServerState>(&text).ok().map(|s| s.port)
}

/// A plain HTTP/1.0 probe of the harness's health endpoint (no async runtime needed).
fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(b"GET /_ecsop/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

fn ensure_venv(venv: &Path) -> Result<()> {
    let marker = venv.join(".ecsop-requirements");
    if fs::read_to_string(&marker).ok().as_deref() == Some(REQUIREMENTS) {
        return Ok(());
    }
    // Only a missing virtualenv is created: `python -m venv` refuses a path that is a symlink, and a
    // worktree may link to the main checkout's virtualenv; new requirements are installed into it as is.
    if !venv.join("bin").join("python").exists() {
        let python = std::env::var("ECSOP_PYTHON").unwrap_or_else(|_| "python3".to_string());
        run(Command::new(&python).arg("-m").arg("venv").arg(venv), "creating the virtualenv")?;
    }
    let requirements = venv.join("requirements.txt");
    fs::write(&requirements, REQUIREMENTS).map_err(io_err("writing requirements.txt"))?;
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install moto",
    )?;
    fs::write(&marker, REQUIREMENTS).map_err(io_err("writing the virtualenv marker"))?;
    Ok(())
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().map_err(io_err(what))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Install(format!(
            "{what} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// One isolated AWS account on the moto server: credentials, an SDK config, and the harness's
/// call log, fault injection and ECS deployment driver scoped to it.
#[derive(Debug, Clone)]
pub struct Account {
    endpoint: String,
    id: String,
    region: String,
    access_key_id: String,
    http: reqwest::Client,
}

impl Account {
    fn new(endpoint: String, id: String, region: String) -> Self {
        let access_key_id = format!("ECSOPTEST{id}");
        Account { endpoint, id, region, access_key_id, http: reqwest::Client::new() }
    }

    /// This account in another region.
    pub fn in_region(&self, region: &str) -> Account {
        Account { region: region.to_string(), ..self.clone() }
    }

    /// The 12-digit account id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The region this handle's SDK config and environment use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The server's URL.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    /// The access key that selects this account on the server.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret key (moto checks no signatures; any value works).
    pub fn secret_access_key(&self) -> &str {
        "ecsop-test-secret"
    }

    /// The standard AWS environment for a child process (such as the `ecsop` binary) to use this
    /// account.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_access_key().into()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// An SDK config for this account, as the standard environment would give it.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                self.access_key_id.clone(),
                self.secret_access_key(),
                None,
                None,
                "ecsop-testkit",
            ))
            .load()
            .await
    }

    /// Every AWS call the server received for this account, oldest first.
    pub async fn calls(&self) -> Result<Vec<Call>> {
        #[derive(Deserialize)]
        struct Calls {
            calls: Vec<Call>,
        }
        let calls: Calls = self.control(reqwest::Method::GET, "/_ecsop/calls", None).await?;
        Ok(calls.calls)
    }

    /// Forget this account's call log (to count the calls of one step).
    pub async fn clear_calls(&self) -> Result<()> {
        let _: serde_json::Value = self.control(reqwest::Method::DELETE, "/_ecsop/calls", None).await?;
        Ok(())
    }

    /// Add a fault rule for this account.
    pub async fn inject(&self, fault: Fault) -> Result<()> {
        let mut body = serde_json::to_value(&fault)
            .map_err(|e| Error::Control { what: "inject".into(), message: e.to_string() })?;
        body["account"] = self.id.clone().into();
        let _: serde_json::Value = self.control(reqwest::Method::POST, "/_ecsop/faults", Some(body)).await?;
        Ok(())
    }

    /// Remove this account's fault rules.
    pub async fn clear_faults(&self) -> Result<()> {
        let _: serde_json::Value = self.control(reqwest::Method::DELETE, "/_ecsop/faults", None).await?;
        Ok(())
    }

    /// Set a CloudWatch alarm's state (`OK`, `ALARM` or `INSUFFICIENT_DATA`) with this reason, as
    /// CloudWatch does when it evaluates the alarm's metric (moto never evaluates alarms).
    pub async fn set_alarm_state(&self, name: &str, state: &str, reason: &str) -> Result<()> {
        let body = serde_json::json!({
            "account": self.id,
            "region": self.region,
            "name": name,
            "state": state,
            "reason": reason,
        });
        let _: serde_json::Value =
            self.control(reqwest::Method::POST, "/_ecsop/cloudwatch/alarm-state", Some(body)).await?;
        Ok(())
    }

    /// Publishes CloudWatch datapoints in this handle's region, as the service (an ALB's per-target-group
    /// metrics, say) would: `points` are `(time, value, count)`, `count` samples of `value` each, so
    /// GetMetricData can compute sums and percentiles from them. moto itself never has such metrics.
    pub async fn put_metric(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &std::collections::BTreeMap<String, String>,
        points: &[(std::time::SystemTime, f64, u64)],
    ) -> Result<()> {
        let points: Vec<serde_json::Value> = points
            .iter()
            .map(|(at, value, count)| {
                let at = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                serde_json::json!({"at": at, "value": value, "count": count})
            })
            .collect();
        let body = serde_json::json!({
            "account": self.id,
            "region": self.region,
            "namespace": namespace,
            "name": name,
            "dimensions": dimensions,
            "points": points,
        });
        let _: serde_json::Value =
            self.control(reqwest::Method::POST, "/_ecsop/cloudwatch/metrics", Some(body)).await?;
        Ok(())
    }

    /// The state of the CloudWatch alarm `name` in this handle's region, or `None` if there is no such
    /// alarm. Read from the server directly, so no AWS call is logged.
    pub async fn alarm_state(&self, name: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct AlarmState {
            state: Option<String>,
        }
        let what = "GET /_ecsop/cloudwatch/alarm".to_string();
        let fail = |message: String| Error::Control { what: what.clone(), message };
        let response = self
            .http
            .get(format!("{}/_ecsop/cloudwatch/alarm", self.endpoint))
            .query(&[("account", self.id.as_str()), ("region", self.region.as_str()), ("name", name)])
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        let answer: AlarmState = serde_json::from_str(&text).map_err(|e| fail(format!("{e}: {text}")))?;
        Ok(answer.state)
    }

    /// Move the PRIMARY deployment of an ECS service through its states, as ECS would.
    /// Returns the service's deployments after the step.
    pub async fn drive(&self, cluster: &str, service: &str, step: Drive) -> Result<serde_json::Value> {
        let mut body =
            serde_json::to_value(&step).map_err(|e| Error::Control { what: "drive".into(), message: e.to_string() })?;
        body["account"] = self.id.clone().into();
        body["region"] = self.region.clone().into();
        body["cluster"] = cluster.into();
        body["service"] = service.into();
        self.control(reqwest::Method::POST, "/_ecsop/ecs/drive", Some(body)).await
    }

    /// An IAM role ECS may assume, named `name` (made once; its ARN).
    pub async fn create_role(&self, name: &str) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Made {
            arn: String,
        }
        let body = serde_json::json!({"account": self.id, "name": name});
        let made: Made = self.control(reqwest::Method::POST, "/_ecsop/iam/role", Some(body)).await?;
        Ok(made.arn)
    }

    /// Keep each ECS service deleted from now on DRAINING for the next `reads` DescribeServices of it,
    /// as ECS does while its tasks stop and drain, before it is INACTIVE (moto: INACTIVE at once).
    pub async fn set_drain_reads(&self, reads: u32) -> Result<()> {
        let body = serde_json::json!({"account": self.id, "reads": reads});
        let _: serde_json::Value = self.control(reqwest::Method::POST, "/_ecsop/ecs/drain", Some(body)).await?;
        Ok(())
    }

    /// From now on, for `delay` after each change, show it to the other services as AWS does while it
    /// propagates: RegisterScalableTarget answers "ECS service doesn't exist" for an ECS service created
    /// less than `delay` ago, and ECS CreateService or UpdateService answers that a target group "does
    /// not have an associated load balancer" for `delay` after its first listener rule. Zero: at once.
    pub async fn set_propagation_delay(&self, delay: Duration) -> Result<()> {
        let body = serde_json::json!({"account": self.id, "seconds": delay.as_secs_f64()});
        let _: serde_json::Value = self.control(reqwest::Method::POST, "/_ecsop/propagation", Some(body)).await?;
        Ok(())
    }

    pub(crate) async fn control<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let url = format!("{}{}?account={}", self.endpoint, path, self.id);
        let what = format!("{method} {path}");
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let fail = |message: String| Error::Control { what: what.clone(), message };
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("{e}: {text}")))
    }
}

/// One AWS call as the server saw it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Call {
    /// The signing name of the service (`ecs`, `ecr`, `elasticloadbalancing`, ...).
    pub service: Option<String>,
    /// The operation (`DescribeServices`); for REST services other than API Gateway v2 (whose operations
    /// the harness names, `GetRoutes`), the HTTP method.
    pub operation: String,
    /// The HTTP status answered.
    pub status: Option<u16>,
    /// The injected fault, if one answered instead of moto.
    pub fault: Option<String>,
}

impl Call {
    /// Whether the call changes state in AWS (everything but Describe/List/Get and HTTP reads).
    pub fn is_write(&self) -> bool {
        const READS: [&str; 6] = ["Describe", "List", "Get", "BatchGet", "HEAD", "GET"];
        !READS.iter().any(|p| self.operation.starts_with(p))
    }
}

/// The kind of fault a rule injects.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The service's throttling error (`ThrottlingException`, `Throttling`, `SlowDown`,
    /// `TooManyRequestsException`).
    Throttle,
    /// HTTP 500 `InternalFailure`.
    ServerError,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// The service's access-denied error.
    AccessDenied,
    /// Only the delay (`latency_ms`), then the real answer.
    Latency,
}

/// A fault rule: which calls of the account it matches and what it does to them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    kind: FaultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    probability: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip: Option<u32>,
    writes_only: bool,
    lost: bool,
}

impl Fault {
    /// A rule of this kind matching every call of the account, every time.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            service: None,
            operation: None,
            probability: 1.0,
            count: None,
            latency_ms: None,
            skip: None,
            writes_only: false,
            lost: false,
        }
    }
    /// Throttle matching calls.
    pub fn throttle() -> Self {
        Self::new(FaultKind::Throttle)
    }
    /// Answer matching calls with HTTP 500.
    pub fn server_error() -> Self {
        Self::new(FaultKind::ServerError)
    }
    /// Deny matching calls.
    pub fn access_denied() -> Self {
        Self::new(FaultKind::AccessDenied)
    }
    /// Delay matching calls.
    pub fn latency(delay: Duration) -> Self {
        Fault { latency_ms: Some(delay.as_millis() as u64), ..Self::new(FaultKind::Latency) }
    }
    /// Only calls to this service (signing name: `ecs`, `ecr`, `elasticloadbalancing`, `apigateway`).
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }
    /// Only calls of this operation (`DescribeServices`).
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_string());
        self
    }
    /// Hit a matching call with this probability (0.0 to 1.0); the server's random source is seeded.
    pub fn probability(mut self, probability: f64) -> Self {
        self.probability = probability;
        self
    }
    /// Let the first `n` matching calls through untouched (with [`Fault::writes_only`]: fail every
    /// write after the n-th, as if the caller had died right after it).
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = Some(n);
        self
    }
    /// Only match calls that change state (not Describe/List/Get).
    pub fn writes_only(mut self) -> Self {
        self.writes_only = true;
        self
    }
    /// Stop after this many hits.
    pub fn count(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }
    /// A lost response: the call is carried out for real, then answered with this rule's error, as
    /// when AWS did the work and the answer was lost (a timeout, a 5xx from a front end, a reset
    /// connection). A client that repeats the call repeats something that already took effect.
    pub fn lost(mut self) -> Self {
        self.lost = true;
        self
    }
}

/// A step of the ECS deployment driver.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Drive {
    /// Tasks of the PRIMARY deployment start (`running` of them; half the desired count if unset). For
    /// a blueGreen, canary or linear service: one step of ECS's lifecycle (scale up, test traffic, each
    /// production traffic shift, bake time), answering `lifecycleStage` and the rules' `weights`.
    Progress {
        /// How many tasks run afterwards.
        #[serde(skip_serializing_if = "Option::is_none")]
        running: Option<u32>,
    },
    /// The PRIMARY deployment reaches COMPLETED with all tasks running; older deployments drain.
    Complete,
    /// The PRIMARY deployment fails (circuit breaker without rollback), with stopped-task events.
    Fail {
        /// The stopped-task reason written to the service events.
        reason: String,
    },
    /// The circuit breaker fails the PRIMARY deployment and rolls back: a new PRIMARY deployment of the
    /// previous task definition starts.
    Rollback {
        /// The stopped-task reason written to the service events.
        reason: String,
    },
    /// Nothing progresses; ECS reports it cannot start tasks consistently.
    Stuck,
    /// The account's test clock moves `seconds` ahead: ECS's bake times (each canary or linear step's,
    /// and the final one) pass on it, and a native deployment neither takes its next step nor completes
    /// before they have.
    Advance {
        /// How far.
        seconds: u64,
    },
}
