//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//!
//! The holder renews the lease every `renew_every`; another replica takes it over only once
//! `renewTime + leaseDurationSeconds` has passed. Every write is a `replace` carrying the
//! resourceVersion read just before, so two contenders cannot both win a round. A replica that fails
//! to renew stops writing at once, and one whose renewal hangs (a sick API server) stops at its local
//! renew deadline: [`LeaderState::is_leader`] holds only until two thirds of the lease duration after
//! the start of the last renewal that succeeded, well before another replica may take the lease over.
//! On shutdown the replica steps down at once (no new writes) and releases the lease only once the writes
//! in flight have finished, so a standby never writes beside them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

/// Whether this replica leads, and until when without another renewal; cheap to clone and check.
#[derive(Debug, Clone)]
pub struct LeaderState(Arc<Mutex<Leading>>);

#[derive(Debug, Clone, Copy)]
enum Leading {
    /// Leader election is off.
    Always,
    /// Not leading.
    No,
    /// Leading until this instant unless a renewal confirms the lease again.
    Until(Instant),
    /// Shutting down: writes nothing more, whatever the lease says, while the lease is still held
    /// until the writes in flight have finished (then it is released).
    SteppedDown,
}

impl LeaderState {
    /// Always leader (leader election off).
    pub fn always() -> Self {
        LeaderState(Arc::new(Mutex::new(Leading::Always)))
    }
    /// Not leader until the lease is won.
    pub fn contender() -> Self {
        LeaderState(Arc::new(Mutex::new(Leading::No)))
    }
    /// Whether this replica may write now: it leads, and its renew deadline has not passed.
    pub fn is_leader(&self) -> bool {
        match *self.lock() {
            Leading::Always => true,
            Leading::No | Leading::SteppedDown => false,
            Leading::Until(deadline) => Instant::now() < deadline,
        }
    }
    /// A renewal that started at `started` succeeded: lead until `started + renew_deadline`.
    pub fn renewed(&self, started: Instant, renew_deadline: Duration) {
        self.unless_stepped_down(Leading::Until(started + renew_deadline));
    }
    /// The lease is lost (or was never won).
    pub fn lost(&self) {
        self.unless_stepped_down(Leading::No);
    }
    /// What the lease says, unless shutdown has stepped this replica down for good.
    fn unless_stepped_down(&self, to: Leading) {
        let mut leading = self.lock();
        if !matches!(*leading, Leading::SteppedDown) {
            *leading = to;
        }
    }
    /// Stop writing for good (shutdown), also with leader election off. The lease, if held, is kept
    /// (and renewed) until [`run`] is told to release it, so no other replica writes while this one's
    /// last write is still in flight.
    pub fn step_down(&self) {
        *self.lock() = Leading::SteppedDown;
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Leading> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a successful renewal lets this replica write: two thirds of the lease duration, as
/// client-go's 10 s renew deadline for a 15 s lease, so that it stops writing before the lease can
/// pass to another replica, whatever happens to the next renewal.
pub fn renew_deadline(lease_duration: Duration) -> Duration {
    lease_duration * 2 / 3
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

/// Keep trying to acquire and renew until `release` fires; then release the lease. Updates `state` and
/// calls `on_change` on every transition.
pub async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    state: LeaderState,
    on_change: impl Fn(bool) + Send + Sync,
    mut release: tokio::sync::watch::Receiver<bool>,
) {
    let deadline = renew_deadline(config.duration);
    let mut was_leading = false;
    loop {
        let started = Instant::now();
        // A renewal that hangs must not keep this replica writing: the state lapses at the deadline by
        // itself, and the attempt is given up then.
        let leading = match tokio::time::timeout(deadline, try_acquire(&api, &config)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = %config.name, "lease renewal failed; not writing until it succeeds");
                false
            }
            Err(_) => {
                tracing::warn!(lease = %config.name, ?deadline, "lease renewal did not answer before the renew deadline; not writing");
                false
            }
        };
        if leading {
            state.renewed(started, deadline);
        } else {
            state.lost();
        }
        if leading != was_leading {
            tracing::info!(leading, identity = %config.identity, lease = %config.name, "leadership changed");
            was_leading = leading;
            on_change(leading);
        }
        tokio::select! {
            _ = tokio::time::sleep(config.renew_every) => {}
            _ = release.changed() => break,
        }
        if *release.borrow() {
            break;
        }
    }
    state.lost();
    on_change(false);
    if let Err(e) = self::release(&api, &config).await {
        tracing::warn!(error = %e, "releasing the lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_stops_writing_at_its_renew_deadline_without_a_renewal() {
        let state = LeaderState::contender();
        assert!(!state.is_leader());
        state.renewed(Instant::now(), Duration::from_secs(10));
        assert!(state.is_leader());
        // The last renewal that succeeded started 11 s ago and none confirmed the lease since (the
        // API server hangs): the replica no longer writes, 4 s before the lease can pass elsewhere.
        state.renewed(Instant::now() - Duration::from_secs(11), renew_deadline(Duration::from_secs(15)));
        assert!(!state.is_leader());
        state.renewed(Instant::now(), renew_deadline(Duration::from_secs(15)));
        assert!(state.is_leader());
        state.lost();
        assert!(!state.is_leader());
        assert!(LeaderState::always().is_leader());
        assert_eq!(renew_deadline(Duration::from_secs(15)), Duration::from_secs(10));
    }
}
