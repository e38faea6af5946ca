//! The Kubernetes controller (`ecsop run`): the engine driven by ApiDeployment watch events.
//!
//! The finalizer `ecsop.io/cleanup` is the single top-level step: Apply runs the engine and writes the
//! status subresource by server-side apply; Cleanup runs the engine's ordered teardown and only then
//! lets the finalizer go. AWS has no watch, so Apply always ends with a requeue: short while a rollout
//! is in progress, the resync period otherwise. Every few resyncs a reconcile reads AWS deeply (see
//! [`crate::engine::observe`]). Nothing is written unless this replica holds the leader lease.

pub mod leader;
mod reconcile;
mod status;

pub use reconcile::{backoff, error_policy, error_policy_meta, reconcile, reconcile_meta};
pub use status::{describe, patch_status};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;

use crate::Error;
use crate::api::ApiDeployment;
use crate::api::tenancy::TenancyPolicy;
use crate::aws::{Calls, Clients};
use crate::engine::Engine;
use crate::metrics::Metrics;
use leader::LeaderState;

/// The finalizer guarding AWS teardown.
pub const FINALIZER: &str = "ecsop.io/cleanup";
/// The annotation that stops a rollout with rollback: its value is the generation whose rollout to stop
/// (`kubectl annotate apid NAME ecsop.io/abort=$(kubectl get apid NAME -o jsonpath='{.metadata.generation}')`).
pub const ABORT_ANNOTATION: &str = "ecsop.io/abort";
/// The field manager of status patches and the events' reporting controller.
pub const MANAGER: &str = "ecsop";

/// Timing of the controller.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Requeue of a settled ApiDeployment (drift correction).
    pub resync: Duration,
    /// Requeue while a rollout is in progress.
    pub rollout_poll: Duration,
    /// Every n-th reconcile of an object reads AWS deeply.
    pub deep_every: u32,
    /// How long a cleanup waits for the ECS service to go before trying again later.
    pub delete_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resync: Duration::from_secs(300),
            rollout_poll: Duration::from_secs(15),
            deep_every: 12,
            delete_wait: Duration::from_secs(60),
        }
    }
}

/// Where the engines come from: one per region, built on demand from the SDK config, or fixed (tests).
pub enum Engines {
    /// A single engine for every region (tests with the in-memory fakes).
    Fixed(Engine),
    /// SDK clients per region.
    Sdk {
        /// The base SDK configuration (credentials, endpoint).
        base: Box<aws_config::SdkConfig>,
        /// The shared call layer.
        calls: Calls,
        /// The operator's default region.
        default_region: String,
        /// Engines built so far.
        cache: Mutex<HashMap<String, Engine>>,
    },
}

impl Engines {
    /// The region of an ApiDeployment whose spec names none.
    fn default_region(&self) -> String {
        match self {
            Engines::Fixed(e) => e.region().to_string(),
            Engines::Sdk { default_region, .. } => default_region.clone(),
        }
    }

    fn for_region(&self, region: Option<&str>) -> Engine {
        match self {
            Engines::Fixed(e) => e.clone(),
            Engines::Sdk { base, calls, default_region, cache } => {
                let region = region.unwrap_or(default_region).to_string();
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                cache
                    .entry(region.clone())
                    .or_insert_with(|| {
                        let config =
                            base.clone().into_builder().region(aws_config::Region::new(region.clone())).build();
                        Engine::new(Clients::from_sdk(&config, calls.clone()), region)
                    })
                    .clone()
            }
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The engines.
    pub engines: Engines,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Leadership.
    pub leader: LeaderState,
    /// Identity on events.
    pub reporter: Reporter,
    /// Timing.
    pub timing: Timing,
    /// The tenancy policy, when the platform team configured one (`--tenancy-policy`).
    pub tenancy: Option<TenancyPolicy>,
    reconciles: Mutex<HashMap<String, u32>>,
    /// The analysis of each rollout in progress, by `namespace/name`.
    watches: Mutex<HashMap<String, crate::analysis::watch::Watch>>,
}

impl Context {
    /// The analysis of `key`'s rollout so far (a new one when there is none), taken out while it runs.
    pub(crate) fn take_watch(&self, key: &str) -> crate::analysis::watch::Watch {
        self.watches.lock().unwrap_or_else(|e| e.into_inner()).remove(key).unwrap_or_default()
    }

    /// Keep `watch` for `key`'s next reconcile; `None` forgets it (the rollout ended).
    pub(crate) fn keep_watch(&self, key: &str, watch: Option<crate::analysis::watch::Watch>) {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        match watch {
            Some(w) => watches.insert(key.to_string(), w),
            None => watches.remove(key),
        };
    }

    /// A context, without a tenancy policy.
    pub fn new(
        client: kube::Client,
        engines: Engines,
        metrics: Arc<Metrics>,
        leader: LeaderState,
        reporter: Reporter,
        timing: Timing,
    ) -> Context {
        Context {
            client,
            engines,
            metrics,
            leader,
            reporter,
            timing,
            tenancy: None,
            reconciles: Mutex::default(),
            watches: Mutex::default(),
        }
    }

    /// Whether this reconcile of `key` reads AWS deeply: the first one and every `deep_every`-th after.
    fn deep(&self, key: &str) -> bool {
        let mut map = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        let deep = (*n).is_multiple_of(self.timing.deep_every.max(1));
        *n = n.wrapping_add(1);
        deep
    }
}

/// Settings of `ecsop run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    /// Label selector.
    pub selector: Option<String>,
    /// Admin server address.
    pub admin_addr: std::net::SocketAddr,
    /// Concurrent reconciles.
    pub concurrency: u16,
    /// Timing.
    pub timing: Timing,
    /// Leader election: the lease's namespace and name, and this replica's identity.
    pub leader_election: Option<(String, leader::LeaseConfig)>,
    /// The tenancy policy every ApiDeployment is checked against, if any.
    pub tenancy: Option<TenancyPolicy>,
    /// The budget of AWS calls per second and region, if any.
    pub aws_calls_per_second: Option<f64>,
}

/// Run the controller until SIGTERM or Ctrl-C.
pub async fn run(config: RunConfig) -> Result<(), Error> {
    // Both rustls providers are compiled in (ring through kube and reqwest, aws-lc-rs through the AWS
    // SDK), so rustls cannot pick a process default and the kube client would panic. The AWS SDK
    // passes its provider explicitly; kube takes the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let default_region = base.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let metrics = Arc::new(Metrics::default());
    let observer = metrics.clone();
    metrics.set_aws_budget(config.aws_calls_per_second);
    let calls = Calls::with_budget(config.aws_calls_per_second).with_observer(move |record| observer.aws_call(record));
    let engines = Engines::Sdk { base: Box::new(base), calls, default_region, cache: Mutex::default() };
    run_with(client, engines, metrics, config).await
}

/// Run the controller with the given clients (the end-to-end tests pass a fake API server's client).
pub async fn run_with(
    client: kube::Client,
    engines: Engines,
    metrics: Arc<Metrics>,
    config: RunConfig,
) -> Result<(), Error> {
    let readiness = crate::admin::Readiness::default();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });
    run_until(client, engines, metrics, config, readiness, shutdown_rx).await
}

/// Run until `shutdown` turns true.
pub async fn run_until(
    client: kube::Client,
    engines: Engines,
    metrics: Arc<Metrics>,
    config: RunConfig,
    readiness: crate::admin::Readiness,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    let wait_shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };

    let admin = tokio::spawn(crate::admin::serve(
        config.admin_addr,
        metrics.clone(),
        readiness.clone(),
        wait_shutdown(shutdown.clone()),
    ));

    // The lease is released only after the controller has stopped, so that no write of this replica is
    // still in flight when another may start leading.
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (leader, gained_rx, lease_task) = match &config.leader_election {
        None => {
            metrics.set_leader(true);
            (LeaderState::always(), None, None)
        }
        Some((namespace, lease)) => {
            let state = LeaderState::contender();
            let api = Api::namespaced(client.clone(), namespace);
            let (gained_tx, gained_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let m = metrics.clone();
            let task = tokio::spawn(leader::run(
                api,
                lease.clone(),
                state.clone(),
                move |leading| {
                    m.set_leader(leading);
                    if leading {
                        let _ = gained_tx.send(());
                    }
                },
                release_rx,
            ));
            (state, Some(gained_rx), Some(task))
        }
    };

    let api: Api<ApiDeployment> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.selector {
        watch_config = watch_config.labels(selector);
    }
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: config.leader_election.as_ref().map(|(_, l)| l.identity.clone()),
    };
    let stepping_down = leader.clone();
    let ctx = Arc::new(Context {
        tenancy: config.tenancy.clone(),
        ..Context::new(client, engines, metrics, leader, reporter, config.timing.clone())
    });
    let probe = api.clone();
    let meta_api: Api<PartialObjectMeta<ApiDeployment>> = match &config.namespace {
        Some(ns) => Api::namespaced(probe.clone().into_client(), ns),
        None => Api::all(probe.clone().into_client()),
    };
    let mut controller = Controller::new(meta_api, watch_config)
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .graceful_shutdown_on(wait_shutdown(shutdown.clone()));
    if let Some(rx) = gained_rx {
        controller = controller.reconcile_all_on(tokio_stream_from(rx));
    }
    // Ready after the first successful list of ApiDeployments. Not `controller.store().wait_until_ready()`:
    // kube-runtime's store readiness keeps only the last waiter's waker, so a second waiter beside the
    // controller's own is never woken (readyz stayed 503) or takes the controller's wake-up away.
    let ready = readiness.clone();
    let list = ListParams { label_selector: config.selector.clone(), limit: Some(1), ..Default::default() };
    let mut stopping = shutdown.clone();
    tokio::spawn(async move {
        loop {
            match probe.list(&list).await {
                Ok(_) => {
                    if !*stopping.borrow() {
                        ready.set(true);
                    }
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "listing ApiDeployments for readiness"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stopping.changed() => return,
            }
        }
    });
    let not_ready = readiness.clone();
    let mut rx = shutdown.clone();
    tokio::spawn(async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
        // Unready, and no new write, as soon as shutdown starts: a reconcile in flight stops before its
        // next write (what it wrote stays, and the next leader's run picks up from AWS).
        not_ready.set(false);
        stepping_down.step_down();
    });
    controller
        .run(reconcile_meta, error_policy_meta, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    readiness.set(false);
    let _ = release_tx.send(true);
    let _ = admin.await;
    // Let the lease task release the lease: the process exits when this returns, taking unfinished
    // tasks with it, and a lease left held blocks the next leader for a whole lease duration.
    if let Some(task) = lease_task
        && tokio::time::timeout(Duration::from_secs(5), task).await.is_err()
    {
        tracing::warn!("releasing the lease did not finish in time");
    }
    Ok(())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
