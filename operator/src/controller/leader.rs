//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//!
//! The holder renews the lease every `renew_every`; another replica takes it over only once
//! `renewTime + leaseDurationSeconds` has passed. Every write is a `replace` carrying the
//! resourceVersion read just before, so two contenders cannot both win a round. A replica that fails
//! to renew stops writing at once ([`LeaderState::is_leader`] turns false before the lease can be taken
//! over elsewhere) and releases the lease on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

/// Whether this replica leads; cheap to clone and check.
#[derive(Debug, Clone)]
pub struct LeaderState(Arc<AtomicBool>);

impl LeaderState {
    /// Always leader (leader election off).
    pub fn always() -> Self {
        LeaderState(Arc::new(AtomicBool::new(true)))
    }
    /// Not leader until the lease is won.
    pub fn contender() -> Self {
        LeaderState(Arc::new(AtomicBool::new(false)))
    }
    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn set(&self, v: bool) {
        self.0.store(v, Ordering::SeqCst);
    }
}

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease holds without renewal.
    pub duration: Duration,
    /// How often the holder renews (and contenders retry).
    pub renew_every: Duration,
}

/// Acquire or renew the lease once. Returns whether this replica holds it afterwards.
pub async fn try_acquire(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let duration = i32::try_from(config.duration.as_secs()).unwrap_or(15);
    let existing = api.get_opt(&config.name).await?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(config.name.clone()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let mine = holder.as_deref() == Some(config.identity.as_str());
    let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(d)) => renewed.as_second() + i64::from(d) < now.as_second(),
        _ => true,
    };
    if !mine && holder.is_some() && !expired {
        return Ok(false);
    }
    let mut new = spec.clone();
    new.holder_identity = Some(config.identity.clone());
    new.lease_duration_seconds = Some(duration);
    new.renew_time = Some(MicroTime(now));
    if !mine {
        new.acquire_time = Some(MicroTime(now));
        new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    lease.spec = Some(new);
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Give the lease up (on shutdown), if held.
pub async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else { return Ok(()) };
    let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keep trying to acquire and renew until `shutdown` fires; then release. Updates `state` and calls
/// `on_change` on every transition.
pub async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    state: LeaderState,
    on_change: impl Fn(bool) + Send + Sync,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let leading = match try_acquire(&api, &config).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, lease = %config.name, "lease renewal failed; not writing until it succeeds");
                false
            }
        };
        if leading != state.is_leader() {
            tracing::info!(leading, identity = %config.identity, lease = %config.name, "leadership changed");
            state.set(leading);
            on_change(leading);
        }
        tokio::select! {
            _ = tokio::time::sleep(config.renew_every) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    state.set(false);
    on_change(false);
    if let Err(e) = release(&api, &config).await {
        tracing::warn!(error = %e, "releasing the lease");
    }
}
