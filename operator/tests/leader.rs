//! Leader election against the fake Kubernetes API: a leader whose lease renewals hang (a sick API
//! server) stops writing at its local renew deadline, before the lease could pass to a standby, and
//! leads again once the API server answers.

use std::time::{Duration, Instant};

use ecsop::controller::leader::{self, LeaderState, LeaseConfig};
use ecsop_testkit::FakeKube;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

async fn client(fake: &FakeKube) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig("ecsop")).expect("kubeconfig");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn until(timeout: Duration, check: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_renewals_hang_stops_writing_before_its_lease_can_pass() {
    let fake = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&fake).await, "default");
    let state = LeaderState::contender();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let config = LeaseConfig {
        name: "ecsop-leader".into(),
        identity: "replica-a".into(),
        duration: Duration::from_secs(3),
        renew_every: Duration::from_millis(300),
    };
    let task = tokio::spawn(leader::run(api, config, state.clone(), |_| {}, shutdown));
    until(Duration::from_secs(5), || state.is_leader()).await.expect("wins the free lease");

    // The API server stops answering lease requests: renewals hang.
    let hung = Instant::now();
    fake.stall(Some(("leases", Duration::from_secs(30))));
    let stopped = until(Duration::from_secs(5), || !state.is_leader()).await.expect("stops writing");
    let stopped_after = hung.elapsed();
    // The renew deadline is 2 s (two thirds of 3 s) from the start of the last renewal that went
    // through; the lease itself could pass to a standby only 3 s after it.
    assert!(
        stopped_after < Duration::from_secs(3),
        "stopped writing {stopped_after:?} after renewals hung ({stopped:?})"
    );

    // The API server recovers: the replica renews and leads again.
    fake.stall(None);
    until(Duration::from_secs(5), || state.is_leader()).await.expect("leads again");
    stop.send(true).expect("shutdown");
    task.await.expect("leader task");
    assert!(!state.is_leader(), "released on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_api_server_refuses_connections_stops_writing_and_leads_again_when_it_is_back() {
    let fake = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&fake).await, "default");
    let state = LeaderState::contender();
    let (stop, release) = tokio::sync::watch::channel(false);
    let config = LeaseConfig {
        name: "ecsop-leader".into(),
        identity: "replica-a".into(),
        duration: Duration::from_secs(3),
        renew_every: Duration::from_millis(300),
    };
    let task = tokio::spawn(leader::run(api, config, state.clone(), |_| {}, release));
    until(Duration::from_secs(5), || state.is_leader()).await.expect("wins the free lease");

    // The API server goes down: the next renewal fails to connect, and the replica stops writing then,
    // not only at its renew deadline.
    fake.refuse_connections(true);
    let stopped = until(Duration::from_secs(5), || !state.is_leader()).await.expect("stops writing");
    assert!(stopped < Duration::from_secs(2), "stopped writing {stopped:?} after the API server went down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!state.is_leader(), "no writing while the API server is down");

    // Back: it renews its own lease and writes again.
    fake.refuse_connections(false);
    until(Duration::from_secs(5), || state.is_leader()).await.expect("leads again");
    let lease = fake.lease("default", "ecsop-leader").expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a", "{lease:#}");
    stop.send(true).expect("release");
    task.await.expect("leader task");
    assert!(!state.is_leader(), "released on shutdown");
}
