//! Engine benchmarks: the figures recorded in BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p ecsop --bench engine                 # everything (moto included)
//! cargo bench -p ecsop --bench engine -- --no-moto    # only the pure planner and the in-memory engine
//! ```
//!
//! 1. `plan()` per ApiDeployment (pure), on the full-featured manifest `tests/valid.yaml`, for an empty
//!    account, an in-sync state (observed through [`FakeAws`] after a real apply and a completed
//!    rollout) and the same state observed deep.
//! 2. AWS calls per in-sync ApiDeployment when a fleet (100 by default) is re-applied through the real
//!    `ecsop` binary against moto, from the server's call log, cross-checked with the CLI's `awsCalls`.
//! 3. Wall time of the first apply of the fleet (everything created, no wait) and of the re-apply.
//!
//! Options (after `--`): `--no-moto`, `--no-tags` (skip the tag + owned IMMUTABLE repository variant),
//! `--fleet N` (default 100), `--repeats N` (in-sync re-applies, default 5), `--iterations N` (planner
//! samples per scenario, default 20000), `--shared-moto` (use the test suites' shared moto server
//! instead of a private one).
//! The Markdown tables go to stdout, progress notes to stderr.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Utc};
use ecsop::api::ApiDeployment;
use ecsop::aws::limiter::{Class, default_rates};
use ecsop::engine::act::Quiet;
use ecsop::engine::observe;
use ecsop::engine::observed::{ImageState, Observed};
use ecsop::engine::plan;
use ecsop::engine::target::{PinnedImage, Target};
use ecsop::engine::vocabulary::Phase;
use ecsop::engine::{Engine, Options};
use ecsop_testkit::fake::FakeAws;
use ecsop_testkit::{Account, Call, Drive, Moto, Network};

/// The cluster the moto network fixture creates.
const CLUSTER: &str = "api-cluster";

struct Args {
    moto: bool,
    shared_moto: bool,
    tags: bool,
    fleet: usize,
    repeats: usize,
    iterations: usize,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args { moto: true, shared_moto: false, tags: true, fleet: 100, repeats: 5, iterations: 20_000 };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--no-moto" => args.moto = false,
                "--no-tags" => args.tags = false,
                "--shared-moto" => args.shared_moto = true,
                "--fleet" => args.fleet = it.next().context("--fleet N")?.parse()?,
                "--repeats" => args.repeats = it.next().context("--repeats N")?.parse()?,
                "--iterations" => args.iterations = it.next().context("--iterations N")?.parse()?,
                // `cargo bench` passes `--bench`; a filter or other libtest flags mean nothing here.
                _ => {}
            }
        }
        ensure!((1..=999).contains(&args.fleet), "--fleet must be 1..=999");
        ensure!(args.repeats >= 1, "--repeats must be at least 1");
        ensure!(args.iterations >= 100, "--iterations must be at least 100");
        Ok(args)
    }
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    // The moto part runs against a server of its own (unless told otherwise): the shared test server
    // is loaded by other test runs, which would skew the wall times, and may be stopped under us. The
    // harness takes a server's URL only from the environment, so the bench runs itself again with it.
    if args.moto && !args.shared_moto && std::env::var_os("ECSOP_MOTO_URL").is_none() {
        let server = PrivateMoto::start()?;
        eprintln!("moto: private server at {}", server.url);
        let status = Command::new(std::env::current_exe()?)
            .args(std::env::args().skip(1))
            .env("ECSOP_MOTO_URL", &server.url)
            .status()
            .context("re-running the bench")?;
        drop(server);
        std::process::exit(status.code().unwrap_or(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    println!("# ecsop engine benchmarks\n");
    println!("{}\n", machine());

    let planner = bench_planner(&rt, args.iterations)?;
    print_planner(&planner);

    if args.moto {
        let moto = rt.block_on(Moto::shared()).context("starting moto")?;
        let digest = run_fleet(&rt, moto, FleetKind::Digest, args.fleet, args.repeats)?;
        print_fleet(&digest);
        if args.tags {
            let tags = run_fleet(&rt, moto, FleetKind::TagOwnedImmutable, args.fleet, args.repeats)?;
            print_fleet(&tags);
        }
    }
    Ok(())
}

// ---- a private moto server ---------------------------------------------------------------------------

/// moto with the harness layer (`testkit/python/ecsop_moto.py`), in the harness's virtualenv, on a free
/// port; stopped when dropped.
struct PrivateMoto {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrivateMoto {
    fn start() -> Result<PrivateMoto> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
        let venv = std::env::var_os("ECSOP_MOTO_VENV").map_or_else(|| root.join(".venv-moto"), PathBuf::from);
        let python = venv.join("bin").join("python");
        ensure!(
            python.exists(),
            "no moto virtualenv at {} (run any moto test once to create it, or pass --shared-moto)",
            venv.display()
        );
        let dir = tempfile::tempdir()?;
        let launcher = dir.path().join("ecsop_moto.py");
        std::fs::write(&launcher, include_str!("../../testkit/python/ecsop_moto.py"))?;
        let state = dir.path().join("server.json");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(python)
            .arg(&launcher)
            // Idle exit only as a safety net should the bench die without stopping it.
            .args(["--host", "127.0.0.1", "--port", "0", "--idle-exit", "300", "--state-file"])
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting moto")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["port"].as_u64());
            if let Some(port) = port {
                return Ok(PrivateMoto { child, url: format!("http://127.0.0.1:{port}"), _dir: dir });
            }
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("moto did not start: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- machine ------------------------------------------------------------------------------------------

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!(
        "Machine: {cpus} CPU(s) ({model}), shared with other builds and test runs; load average at start {load}; \
         {rustc}; release profile (`cargo bench`)."
    )
}

// ---- 1. the planner -------------------------------------------------------------------------------------

/// One timed scenario of `plan()`.
struct PlanScenario {
    name: &'static str,
    actions: usize,
    phase: Phase,
    stats: Stats,
}

struct Planner {
    scenarios: Vec<PlanScenario>,
    /// `Engine::reconcile` (observe + plan, nothing to act) against the in-memory fake, in sync.
    reconcile_fake: Stats,
}

/// Timing samples, in microseconds.
struct Stats {
    samples: usize,
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// Mean CPU time of this thread per iteration (from /proc/thread-self/schedstat), when readable.
    cpu_mean: Option<f64>,
}

impl Stats {
    fn of(mut micros: Vec<f64>, cpu_total: Option<Duration>) -> Stats {
        micros.sort_by(f64::total_cmp);
        let n = micros.len();
        let at = |q: f64| micros[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Stats {
            samples: n,
            mean: micros.iter().sum::<f64>() / n as f64,
            p50: at(0.50),
            p99: at(0.99),
            max: micros[n - 1],
            cpu_mean: cpu_total.map(|d| d.as_secs_f64() * 1e6 / n as f64),
        }
    }
}

/// CPU time this thread has run, in nanoseconds (the first field of schedstat).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

fn bench_planner(rt: &tokio::runtime::Runtime, iterations: usize) -> Result<Planner> {
    let resource = fixture_manifest()?;
    let fake = FakeAws::new();
    let resource = wire_to_fake(&fake, resource);
    let engine = Engine::new(fake.clients(), "us-east-1");
    let target = engine.target(&resource);

    // Observed before anything is applied: the listener holds only its default rule.
    let empty = empty_account(&fake, &target);
    eprintln!("planner: applying tests/valid.yaml to FakeAws until in sync");
    let (fast, deep) = rt.block_on(in_sync(&fake, &engine, &target))?;
    let now = Utc::now();

    let mut scenarios = Vec::new();
    for (name, observed) in [
        ("empty account (everything to create)", &empty),
        ("in sync (fast-path observation)", &fast),
        ("in sync (deep observation, as with --refresh)", &deep),
    ] {
        let p = plan::plan(&target, observed, now);
        eprintln!("planner: {name}: {} action(s), {:?} ({})", p.actions.len(), p.assessment.phase, p.assessment.reason);
        scenarios.push(PlanScenario {
            name,
            actions: p.actions.len(),
            phase: p.assessment.phase,
            stats: time_plan(&target, observed, now, iterations),
        });
    }
    // Nine: the repository (its lifecycle policy part of the creation), the revision, the target group, the rule,
    // Cloud Map, the service, the scalable target, its policy and the record on the service.
    ensure!(scenarios[0].actions == 9, "the empty account should plan 9 writes, got {}", scenarios[0].actions);
    ensure!(scenarios[1].actions == 0 && scenarios[2].actions == 0, "the in-sync plans should be empty");

    // The whole engine step against the in-memory fake: observe (fast path), plan, act (nothing).
    let rounds = (iterations / 10).max(100);
    let reconcile_fake = rt.block_on(async {
        let mut micros = Vec::with_capacity(rounds);
        for _ in 0..rounds / 10 {
            engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await?;
        }
        let cpu0 = thread_cpu();
        for _ in 0..rounds {
            let t = Instant::now();
            let r = engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await?;
            black_box(&r);
            drop(r);
            micros.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let cpu = thread_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
        anyhow::Ok(Stats::of(micros, cpu))
    })?;
    Ok(Planner { scenarios, reconcile_fake })
}

fn time_plan(target: &Target, observed: &Observed, now: DateTime<Utc>, iterations: usize) -> Stats {
    for _ in 0..iterations / 10 {
        black_box(plan::plan(black_box(target), black_box(observed), now));
    }
    let mut micros = Vec::with_capacity(iterations);
    let cpu0 = thread_cpu();
    for _ in 0..iterations {
        let t = Instant::now();
        let p = plan::plan(black_box(target), black_box(observed), now);
        black_box(&p);
        drop(p);
        micros.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let cpu = thread_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    Stats::of(micros, cpu)
}

/// `tests/valid.yaml`, loaded and validated as the CLI loads it.
fn fixture_manifest() -> Result<ApiDeployment> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid.yaml");
    let mut manifests = ecsop::manifest::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(manifests.len() == 1, "tests/valid.yaml should hold one ApiDeployment");
    Ok(manifests.remove(0).resource)
}

/// Point the manifest's listener and Cloud Map namespace at ones that exist in `fake`.
fn wire_to_fake(fake: &FakeAws, mut resource: ApiDeployment) -> ApiDeployment {
    if let Some(lb) = resource.spec.load_balancer.as_mut() {
        lb.listener_arn = fake.create_listener();
    }
    if let Some(sd) = resource.spec.service.service_discovery.as_mut() {
        sd.namespace_id = fake.create_namespace("bench.local");
    }
    resource
}

/// Apply `target` to `fake` through [`Engine::reconcile`] until a plan is empty with the rollout
/// complete; return what a fast and a deep observation then see.
async fn in_sync(fake: &FakeAws, engine: &Engine, target: &Target) -> Result<(Observed, Observed)> {
    let tag = target.spec.image.tag.clone().context("valid.yaml pins a tag")?;
    // The owned repository is created first (the image is missing: Stalled), then the image is pushed.
    engine.reconcile(target, Options::default(), &Quiet, Utc::now()).await?;
    fake.push_image(&target.spec.image.repository, &tag, &format!("sha256:{}", "b".repeat(64)));
    let mut last = None;
    for _ in 0..5 {
        let r = engine.reconcile(target, Options::default(), &Quiet, Utc::now()).await?;
        if fake.service_snapshot(&target.spec.cluster, target.names.service()).is_some() {
            fake.complete(&target.spec.cluster, target.names.service());
        }
        let done = r.plan.actions.is_empty() && r.plan.assessment.phase == Phase::Ready;
        last = Some(r.plan);
        if done {
            break;
        }
    }
    let last = last.context("no reconcile ran")?;
    ensure!(
        last.actions.is_empty() && last.assessment.phase == Phase::Ready,
        "not in sync after 5 reconciles: {:?} {:?}",
        last.assessment,
        last.actions
    );
    let fast = observe::observe(engine.clients(), target, false).await?;
    let deep = observe::observe(engine.clients(), target, true).await?;
    ensure!(!fast.deep, "the in-sync observation should take the fast path");
    Ok((fast, deep))
}

/// Nothing exists yet but the image (as in the planner's own tests): everything is to be created.
fn empty_account(fake: &FakeAws, target: &Target) -> Observed {
    let listener = target.spec.load_balancer.as_ref().map(|lb| fake.listener_rules(&lb.listener_arn));
    Observed {
        deep: true,
        image: Some(ImageState::Pinned(PinnedImage {
            uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}", target.spec.image.repository),
            digest: format!("sha256:{}", "a".repeat(64)),
        })),
        revisions: Some(vec![]),
        listener_rules: listener,
        ..Default::default()
    }
}

fn print_planner(p: &Planner) {
    println!("## 1. plan() per ApiDeployment (pure; manifest tests/valid.yaml)\n");
    println!("| Scenario | Writes planned | Phase | Samples | Mean µs | p50 µs | p99 µs | Max µs | CPU mean µs |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for s in &p.scenarios {
        let st = &s.stats;
        println!(
            "| {} | {} | {:?} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            s.name,
            s.actions,
            s.phase,
            st.samples,
            st.mean,
            st.p50,
            st.p99,
            st.max,
            st.cpu_mean.map_or("-".into(), |c| format!("{c:.1}"))
        );
    }
    let st = &p.reconcile_fake;
    println!(
        "| Engine::reconcile, in sync, against the in-memory FakeAws (observe + plan; includes the fake's work) \
         | 0 | Ready | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
        st.samples,
        st.mean,
        st.p50,
        st.p99,
        st.max,
        st.cpu_mean.map_or("-".into(), |c| format!("{c:.1}"))
    );
    let worst = p.scenarios.iter().map(|s| s.stats.p99).fold(0.0, f64::max);
    println!(
        "\nTarget: well under 2 ms CPU per reconcile. Worst planner p99: {worst:.1} µs ({:.1}% of 2 ms): {}.\n",
        worst / 20.0,
        if worst < 200.0 { "met" } else { "NOT met" }
    );
}

// ---- 2 and 3. a fleet against moto through the ecsop binary ------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum FleetKind {
    /// One shared, unowned repository; every manifest pins the image by `digest:`.
    Digest,
    /// Every manifest owns an IMMUTABLE repository (`ecr.create`) and names its image by tag.
    TagOwnedImmutable,
}

impl FleetKind {
    fn label(self) -> &'static str {
        match self {
            FleetKind::Digest => "image pinned by digest, shared unowned repository",
            FleetKind::TagOwnedImmutable => "image by tag, each in its own owned IMMUTABLE repository",
        }
    }
}

/// One `ecsop apply` run.
struct ApplyRun {
    label: String,
    wall: Duration,
    /// User + system CPU of the ecsop process.
    cpu: Option<Duration>,
    exit: i32,
    cli_reads: u64,
    cli_writes: u64,
    /// Items the CLI reported with at least one change.
    changed: usize,
    /// Items reported Ready.
    ready: usize,
    /// Server-side call log: (service, operation, write?) -> count.
    server: BTreeMap<(String, String, bool), u64>,
}

impl ApplyRun {
    fn server_reads(&self) -> u64 {
        self.server.iter().filter(|((_, _, w), _)| !w).map(|(_, n)| n).sum()
    }
    fn server_writes(&self) -> u64 {
        self.server.iter().filter(|((_, _, w), _)| *w).map(|(_, n)| n).sum()
    }

    /// The shortest time ecsop's client-side limiter allows for these calls: per operation class,
    /// (calls - burst) / rate; the classes refill in parallel, so the slowest class bounds the run.
    fn limiter_floor(&self) -> (f64, String) {
        let rates = default_rates();
        let mut per_class: BTreeMap<String, (Class, u64)> = BTreeMap::new();
        for ((service, operation, _), n) in &self.server {
            // The call log names services by signing name; the limiter by ecsop's adapter name.
            let service = match service.as_str() {
                "elasticloadbalancing" => "elbv2",
                other => other,
            };
            let class = Class::of(service, operation);
            per_class.entry(format!("{class:?}")).or_insert((class, 0)).1 += n;
        }
        per_class
            .into_iter()
            .filter_map(|(name, (class, n))| {
                let rate = rates.get(&class)?;
                Some(((n as f64 - rate.burst).max(0.0) / rate.per_second, name))
            })
            .fold((0.0, "-".to_string()), |best, (secs, name)| if secs > best.0 { (secs, name) } else { best })
    }
}

struct FleetResult {
    kind: FleetKind,
    size: usize,
    /// `ecsop validate -f DIR`: wall and CPU of loading and validating the manifests alone.
    validate: (Duration, Option<Duration>),
    runs: Vec<ApplyRun>,
}

struct Fleet<'a> {
    rt: &'a tokio::runtime::Runtime,
    account: Account,
    net: Network,
    dir: tempfile::TempDir,
    names: Vec<String>,
}

impl Fleet<'_> {
    fn write_manifests(&self, kind: FleetKind, digest: Option<&str>) -> Result<()> {
        for (i, name) in self.names.iter().enumerate() {
            let (image, ecr) = match kind {
                FleetKind::Digest => (
                    format!("    repository: bench-api\n    digest: \"{}\"\n", digest.unwrap_or_default()),
                    String::new(),
                ),
                FleetKind::TagOwnedImmutable => (
                    format!("    repository: {name}\n    tag: \"v1\"\n"),
                    "  ecr:\n    create: true\n    tagMutability: IMMUTABLE\n".to_string(),
                ),
            };
            let yaml = format!(
                "apiVersion: ecsop.io/v1alpha1
kind: ApiDeployment
metadata:
  name: {name}
  namespace: bench
spec:
  cluster: {CLUSTER}
  image:
{image}{ecr}  container:
    port: 8080
    cpu: 256
    memory: 512
    env: {{RUST_LOG: info}}
  service:
    replicas: 2
    subnets: [{a}, {b}]
    securityGroups: [{sg}]
    rollout:
      progressDeadlineSeconds: 600
  loadBalancer:
    listenerArn: {listener}
    vpcId: {vpc}
    priority: {priority}
    paths: [\"/{name}*\"]
  revisionHistoryLimit: 3
",
                a = self.net.subnet_ids[0],
                b = self.net.subnet_ids[1],
                sg = self.net.security_group_id,
                listener = self.net.listener_arn,
                vpc = self.net.vpc_id,
                priority = 100 + i,
            );
            std::fs::write(self.dir.path().join(format!("{name}.yaml")), yaml)?;
        }
        Ok(())
    }

    /// Clear the server's call log, run `ecsop apply -f DIR -o json`, and collect both views of the calls.
    fn apply(&self, label: &str, extra: &[&str]) -> Result<ApplyRun> {
        self.rt.block_on(self.account.clear_calls())?;
        let dir: PathBuf = self.dir.path().to_path_buf();
        let cpu0 = children_cpu();
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ecsop"))
            .args(["apply", "-f"])
            .arg(&dir)
            .args(["-o", "json"])
            .args(extra)
            .envs(self.account.env())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .context("running ecsop")?;
        let wall = started.elapsed();
        let cpu = children_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("ecsop printed no JSON ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))
        })?;
        let items = doc["items"].as_array().cloned().unwrap_or_default();
        if let Some(e) = items.iter().find(|i| i.get("error").is_some()) {
            bail!("{label}: ecsop reported an error: {e}");
        }
        let calls = self.rt.block_on(self.account.calls())?;
        let run = ApplyRun {
            label: label.to_string(),
            wall,
            cpu,
            exit: out.status.code().unwrap_or(-1),
            cli_reads: doc["awsCalls"]["reads"].as_u64().unwrap_or(0),
            cli_writes: doc["awsCalls"]["writes"].as_u64().unwrap_or(0),
            changed: items.iter().filter(|i| i["changes"].as_u64().unwrap_or(0) > 0).count(),
            ready: items.iter().filter(|i| i["report"]["phase"] == "Ready").count(),
            server: tally(&calls),
        };
        eprintln!(
            "{label}: {:.1} s, exit {}, server {} reads / {} writes, CLI {} / {}, {} changed, {} Ready",
            run.wall.as_secs_f64(),
            run.exit,
            run.server_reads(),
            run.server_writes(),
            run.cli_reads,
            run.cli_writes,
            run.changed,
            run.ready
        );
        Ok(run)
    }

    /// `ecsop validate -f DIR` (no AWS call): what loading the manifests costs on its own.
    fn validate(&self) -> Result<(Duration, Option<Duration>)> {
        let cpu0 = children_cpu();
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ecsop"))
            .args(["validate", "-f"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .context("running ecsop validate")?;
        let wall = started.elapsed();
        ensure!(out.status.success(), "ecsop validate failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok((wall, children_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a))))
    }

    /// Play ECS: every service's PRIMARY deployment reaches COMPLETED.
    fn complete_all(&self) -> Result<()> {
        for name in &self.names {
            self.rt
                .block_on(self.account.drive(CLUSTER, name, Drive::Complete))
                .with_context(|| format!("drive {name}"))?;
        }
        Ok(())
    }
}

fn tally(calls: &[Call]) -> BTreeMap<(String, String, bool), u64> {
    let mut by_op = BTreeMap::new();
    for c in calls {
        let service = c.service.clone().unwrap_or_else(|| "?".into());
        *by_op.entry((service, c.operation.clone(), c.is_write())).or_default() += 1;
    }
    by_op
}

/// User + system CPU of this process's waited-for children (fields 16 and 17 of /proc/self/stat).
fn children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // CLK_TCK is 100 on Linux.
}

fn run_fleet(
    rt: &tokio::runtime::Runtime,
    moto: &Moto,
    kind: FleetKind,
    size: usize,
    repeats: usize,
) -> Result<FleetResult> {
    eprintln!("fleet ({}): {size} ApiDeployments", kind.label());
    let account = moto.new_account();
    let net = rt.block_on(account.network(CLUSTER)).context("network fixture")?;
    let prefix = if kind == FleetKind::Digest { "bench" } else { "tagged" };
    let fleet = Fleet {
        rt,
        account,
        net,
        dir: tempfile::tempdir()?,
        names: (0..size).map(|i| format!("{prefix}-{i:03}")).collect(),
    };
    let mut runs = Vec::new();
    let validate;
    match kind {
        FleetKind::Digest => {
            let digest = rt.block_on(fleet.account.push_image("bench-api", "v1", "bench-api:v1"))?;
            fleet.write_manifests(kind, Some(&digest))?;
            validate = fleet.validate()?;
            runs.push(fleet.apply("first apply (creates everything, no wait)", &[])?);
        }
        FleetKind::TagOwnedImmutable => {
            fleet.write_manifests(kind, None)?;
            validate = fleet.validate()?;
            // ecsop creates the owned repositories (the images are missing: Stalled, exit 1) ...
            runs.push(fleet.apply("apply 0 (creates the repositories; images missing)", &[])?);
            // ... CI pushes the images ...
            for name in &fleet.names {
                rt.block_on(fleet.account.push_image(name, "v1", &format!("{name}:v1")))?;
            }
            // ... and the next apply deploys.
            runs.push(fleet.apply("first apply of the images (creates the rest, no wait)", &[])?);
        }
    }
    let created = runs.last().map(|r| r.changed).unwrap_or(0);
    ensure!(created == size, "the first apply should change all {size} ApiDeployments, changed {created}");
    fleet.complete_all()?;
    for i in 1..=repeats {
        runs.push(fleet.apply(&format!("{REAPPLY} #{i}"), &[])?);
    }
    // For comparison: fewer reconciles at once, so fewer reads share a batch.
    runs.push(fleet.apply("re-apply, in sync, --concurrency 16", &["--concurrency", "16"])?);
    for r in runs.iter().filter(|r| r.label.starts_with("re-apply")) {
        ensure!(
            r.changed == 0 && r.ready == size,
            "{}: not in sync ({} changed, {} Ready)",
            r.label,
            r.changed,
            r.ready
        );
    }
    Ok(FleetResult { kind, size, validate, runs })
}

/// The label prefix of the in-sync re-applies at the default concurrency.
const REAPPLY: &str = "re-apply, in sync, default concurrency";

fn print_fleet(f: &FleetResult) {
    let n = f.size as f64;
    println!("## {} ApiDeployments against moto through `ecsop apply -f DIR -o json`: {}\n", f.size, f.kind.label());
    println!(
        "| Run | Wall s | Limiter floor s | ecsop CPU s | Exit | Changed | Ready | Server reads | Server writes | \
         Reads / item | Writes / item | CLI awsCalls (reads / writes) |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &f.runs {
        let (floor, class) = r.limiter_floor();
        println!(
            "| {} | {:.2} | {floor:.1} ({class}) | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} / {} |",
            r.label,
            r.wall.as_secs_f64(),
            r.cpu.map_or("-".into(), |c| format!("{:.2}", c.as_secs_f64())),
            r.exit,
            r.changed,
            r.ready,
            r.server_reads(),
            r.server_writes(),
            r.server_reads() as f64 / n,
            r.server_writes() as f64 / n,
            r.cli_reads,
            r.cli_writes
        );
    }

    let (wall, cpu) = f.validate;
    println!(
        "\n`ecsop validate -f DIR` on the same manifests (load, schema and CEL validation; no AWS): wall {:.2} s, \
         CPU {}.",
        wall.as_secs_f64(),
        cpu.map_or("-".into(), |c| format!("{:.2} s", c.as_secs_f64()))
    );

    // The by-operation table: each run that creates, the default-concurrency re-applies together
    // (mean per ApiDeployment, min-max calls), the --concurrency 16 re-apply.
    let reapplies: Vec<&ApplyRun> = f.runs.iter().filter(|r| r.label.starts_with(REAPPLY)).collect();
    let singles: Vec<&ApplyRun> = f.runs.iter().filter(|r| !r.label.starts_with(REAPPLY)).collect();
    let single = |r: &ApplyRun, op: &(String, String, bool)| {
        let c = r.server.get(op).copied().unwrap_or(0);
        if c == 0 { "0".to_string() } else { format!("{c} ({:.2}/item)", c as f64 / n) }
    };
    println!("\nCalls by operation (server call log):\n");
    let mut header: Vec<String> =
        singles.iter().filter(|r| !r.label.starts_with("re-apply")).map(|r| r.label.clone()).collect();
    header.push(format!("{} re-applies in sync, default concurrency: mean/item (min-max calls)", reapplies.len()));
    header.extend(singles.iter().filter(|r| r.label.starts_with("re-apply")).map(|r| r.label.clone()));
    println!("| Service | Operation | Kind | {} |", header.join(" | "));
    println!("|---|---|---|{}", "---:|".repeat(header.len()));
    let mut ops: Vec<&(String, String, bool)> = f.runs.iter().flat_map(|r| r.server.keys()).collect();
    ops.sort();
    ops.dedup();
    for op in ops {
        let mut cells: Vec<String> =
            singles.iter().filter(|r| !r.label.starts_with("re-apply")).map(|r| single(r, op)).collect();
        let counts: Vec<u64> = reapplies.iter().map(|r| r.server.get(op).copied().unwrap_or(0)).collect();
        let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        let mean = counts.iter().sum::<u64>() as f64 / counts.len().max(1) as f64;
        cells.push(if max == 0 { "0".into() } else { format!("{:.2} ({min}-{max})", mean / n) });
        cells.extend(singles.iter().filter(|r| r.label.starts_with("re-apply")).map(|r| single(r, op)));
        println!("| {} | {} | {} | {} |", op.0, op.1, if op.2 { "write" } else { "read" }, cells.join(" | "));
    }

    let reads: Vec<f64> = reapplies.iter().map(|r| r.server_reads() as f64 / n).collect();
    let writes = reapplies.iter().map(|r| r.server_writes()).max().unwrap_or(0) as f64 / n;
    let worst = reads.iter().copied().fold(0.0, f64::max);
    let mean = reads.iter().sum::<f64>() / reads.len().max(1) as f64;
    println!(
        "\nTargets, over the {} in-sync re-applies at the default concurrency: 0 writes per ApiDeployment: {} \
         (worst {writes:.3}); at most 0.25 reads per ApiDeployment: {} (mean {mean:.3}, worst {worst:.3}).\n",
        reapplies.len(),
        if writes == 0.0 { "met" } else { "NOT met" },
        if worst <= 0.25 { "met" } else { "NOT met" }
    );
}
