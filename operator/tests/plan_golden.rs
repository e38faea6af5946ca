//! The plans ecsop makes for the reference examples (and the full-featured `valid.yaml`), printed as
//! `ecsop diff` and `ecsop delete --dry-run` print them, compared with the recorded files in
//! `tests/golden/`. Each manifest goes through one lifecycle against the in-memory AWS (whose ids are
//! deterministic): an empty account, the creation once the image exists, the in-sync re-apply, a
//! change of every part the manifest has, and the teardown with each deletion policy.
//!
//! A refactoring of the engine must leave these files byte-identical. A change of behaviour updates
//! them on purpose: `UPDATE_GOLDEN=1 cargo test -p ecsop --test plan_golden`, and the diff of the
//! recorded files is then part of the change's review.

use std::fmt::Write;
use std::path::Path;

use chrono::Utc;
use ecsop::api::{ApiDeployment, DeletionPolicy};
use ecsop::cli::render;
use ecsop::engine::act::Quiet;
use ecsop::engine::vocabulary::Phase;
use ecsop::engine::{Engine, Options};

mod support;
use support::examples::{account, manifests, push};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// `ecsop diff` of `resource` now, and the create-stage actions as JSON when `json` is set.
async fn diff(engine: &Engine, resource: &ApiDeployment, out: &mut String, title: &str, json: bool) {
    let target = engine.target(resource);
    let options = Options { deep: true, dry_run: true, ..Default::default() };
    let r = engine.reconcile(&target, options, &Quiet, Utc::now()).await.expect("diff");
    let actions = render::counted(&r.plan.actions);
    let _ = writeln!(out, "== {title} ==");
    out.push_str(&render::diff(&target.names.owner(), &actions, &r.report));
    if json {
        let _ = writeln!(out, "== {title} (json) ==");
        out.push_str(&serde_json::to_string_pretty(&actions).expect("json"));
        out.push('\n');
    }
}

async fn apply(engine: &Engine, resource: &ApiDeployment) -> ecsop::engine::Reconciled {
    let target = engine.target(resource);
    engine.reconcile(&target, Options::default(), &Quiet, Utc::now()).await.expect("apply")
}

/// Every part the manifest has, changed: a new image, an environment variable, the replica count
/// or the autoscaling bounds, the health-check path, the discovery TTL, a route, an alarm threshold.
fn changed(resource: &ApiDeployment) -> ApiDeployment {
    let mut r = resource.clone();
    let spec = &mut r.spec;
    if spec.image.tag.is_some() {
        spec.image.tag = Some("9.9.9".into());
    }
    spec.container.env.insert("GOLDEN".into(), "1".into());
    spec.service.replicas += 1;
    if let Some(a) = spec.service.autoscaling.as_mut() {
        a.max_replicas += 1;
    }
    if let Some(sd) = spec.service.service_discovery.as_mut() {
        sd.ttl_seconds += 5;
    }
    if let Some(lb) = spec.load_balancer.as_mut() {
        lb.health_check.path = "/golden".into();
        lb.priority += 1;
    }
    if let Some(g) = spec.api_gateway.as_mut()
        && let Some(route) = g.routes.first_mut()
    {
        route.key = format!("{}/golden", route.key);
    }
    if let Some(a) = spec.alarms.as_mut() {
        a.cpu_high_percent = a.cpu_high_percent.map(|c| c - 1);
    }
    r
}

async fn lifecycle(manifest: &Path) -> String {
    let (fake, resource) = account(manifest);
    let engine = Engine::new(fake.clients(), "us-east-1");
    let mut out = String::new();
    diff(&engine, &resource, &mut out, "empty account", false).await;
    apply(&engine, &resource).await;
    push(&fake, &resource, 1);
    diff(&engine, &resource, &mut out, "create", true).await;
    let spec = &resource.spec;
    let service = resource.metadata.name.clone().expect("name");
    let mut ready = false;
    for _ in 0..4 {
        let r = apply(&engine, &resource).await;
        if r.report.phase == Phase::Ready && r.plan.actions.is_empty() {
            ready = true;
            break;
        }
        if fake.service_snapshot(&spec.cluster, &service).is_some() {
            fake.complete(&spec.cluster, &service);
        }
    }
    assert!(ready, "{} reaches Ready with nothing left to write", manifest.display());
    diff(&engine, &resource, &mut out, "in sync", false).await;

    let next = changed(&resource);
    if next.spec.image.tag.is_some() {
        push(&fake, &next, 2);
    }
    diff(&engine, &next, &mut out, "every part changed", false).await;

    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let mut r = resource.clone();
        r.spec.deletion_policy = policy;
        let target = engine.target(&r);
        let options = Options { deep: true, dry_run: true, ..Default::default() };
        let actions = engine.delete(&target, options, &Quiet).await.expect("teardown");
        let _ = writeln!(out, "== delete --dry-run ({policy:?}) ==");
        out.push_str(&render::teardown(&target.names.owner(), &actions));
    }
    out
}

#[tokio::test]
async fn plans_of_the_examples_match_the_recorded_ones() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    let all = manifests();
    assert!(all.len() >= 7, "the five examples (six manifests) and valid.yaml: {all:?}");
    for (name, path) in all {
        let got = lifecycle(&path).await;
        let file = Path::new(GOLDEN).join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(GOLDEN).expect("golden dir");
            std::fs::write(&file, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if want != got {
            let first = want.lines().zip(got.lines()).position(|(a, b)| a != b);
            mismatches.push(format!(
                "{}: differs from the recorded plan (first differing line {:?}); got:\n{got}",
                file.display(),
                first.map(|i| i + 1)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
