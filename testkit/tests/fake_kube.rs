//! The fake Kubernetes API server, exercised with the real `kube` client and runtime: list paging and
//! selectors, watch replay with bookmarks and 410 Gone, the runtime watcher's re-list, the status
//! subresource and generation, finalizer-guarded deletion, Lease concurrency, Events, error bodies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecsop_testkit::{FakeKube, FakeKubeOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{finalizer, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

const FINALIZER: &str = "ecsop.io/cleanup";

fn resource() -> ApiResource {
    ApiResource {
        group: "ecsop.io".into(),
        version: "v1alpha1".into(),
        api_version: "ecsop.io/v1alpha1".into(),
        kind: "ApiDeployment".into(),
        plural: "apideployments".into(),
    }
}

fn object(namespace: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "ecsop.io/v1alpha1",
        "kind": "ApiDeployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"cluster": "api-cluster", "image": {"repository": name, "tag": "1"}},
    })
}

async fn client(fake: &FakeKube, user: &str) -> Client {
    // Both rustls providers are compiled into this test (ring: kube, reqwest; aws-lc-rs: AWS SDK).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig(user)).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    Client::try_from(config).expect("client")
}

fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource())
}

fn names(objects: &[DynamicObject]) -> Vec<String> {
    objects.iter().map(|o| o.name_any()).collect()
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv(obj: &DynamicObject) -> String {
    obj.resource_version().expect("resourceVersion")
}

/// Every event of a watch until the server ends it.
async fn drain(
    api: &Api<DynamicObject>,
    params: &WatchParams,
    version: &str,
) -> (Vec<WatchEvent<DynamicObject>>, Duration) {
    let started = Instant::now();
    let stream = api.watch(params, version).await.expect("watch starts");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.try_collect::<Vec<_>>())
        .await
        .expect("the server ends the watch at timeoutSeconds")
        .expect("watch events parse");
    (events, started.elapsed())
}

fn describe(events: &[WatchEvent<DynamicObject>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
            WatchEvent::Error(s) => format!("ERROR {}", s.code),
        })
        .collect()
}

#[tokio::test]
async fn list_pages_and_selects_by_labels() {
    let fake = FakeKube::start().await;
    for (ns, name, labels) in [
        ("a", "one", json!({"team": "pay", "tier": "web"})),
        ("a", "two", json!({"team": "pay"})),
        ("b", "three", json!({"tier": "web"})),
        ("b", "four", json!({})),
        ("b", "five", json!({"team": "ops", "tier": "batch"})),
    ] {
        fake.create(object(ns, name, labels)).expect("create");
    }
    let client = client(&fake, "tester").await;
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource());

    let first = all.list(&ListParams::default().limit(2)).await.expect("list");
    let list_rv = first.metadata.resource_version.clone().expect("list resourceVersion");
    assert_eq!(list_rv, fake.resource_version().to_string());
    assert_eq!(names(&first.items), ["one", "two"]);
    let mut token = first.metadata.continue_.clone().expect("a continue token");
    let mut seen = names(&first.items);
    loop {
        let page = all.list(&ListParams::default().limit(2).continue_token(&token)).await.expect("next page");
        assert_eq!(page.metadata.resource_version.as_deref(), Some(list_rv.as_str()), "pages share the list's version");
        seen.extend(names(&page.items));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => token = t,
            None => break,
        }
    }
    assert_eq!(seen, ["one", "two", "five", "four", "three"], "every object once, by namespace and name");

    assert_eq!(names(&api(&client, "b").list(&ListParams::default()).await.expect("list").items).len(), 3);
    for (selector, expected) in [
        ("tier=web", vec!["one", "three"]),
        ("tier!=web", vec!["two", "five", "four"]),
        ("team", vec!["one", "two", "five"]),
        ("!team", vec!["four", "three"]),
        ("team=pay,tier", vec!["one"]),
        ("tier in (web,batch)", vec!["one", "five", "three"]),
    ] {
        let list = all.list(&ListParams::default().labels(selector)).await.expect("list with a selector");
        assert_eq!(names(&list.items), expected, "{selector}");
    }
    let bad = all.list(&ListParams::default().labels("a b=c")).await.expect_err("a malformed selector fails");
    assert_eq!(api_error(bad).code, 400);
}

#[tokio::test]
async fn watch_replays_from_a_version_sends_bookmarks_and_answers_410_after_compaction() {
    let fake =
        FakeKube::start_with(FakeKubeOptions { bookmark_interval: Duration::from_millis(200), ..Default::default() })
            .await;
    let client = client(&fake, "tester").await;
    let api = api(&client, "ns");
    fake.create(object("ns", "x", json!({}))).expect("create x");
    let since = fake.resource_version().to_string();

    let mut x = object("ns", "x", json!({}));
    x["spec"]["image"]["tag"] = "2".into();
    fake.update(x).expect("update x");
    fake.create(object("ns", "y", json!({}))).expect("create y");
    fake.delete_api_deployment("ns", "y").expect("delete y");
    let current = fake.resource_version().to_string();

    let (events, took) = drain(&api, &WatchParams::default().timeout(1), &since).await;
    let described = describe(&events);
    assert_eq!(described[..3], ["MODIFIED x", "ADDED y", "DELETED y"], "{described:?}");
    assert!(described[3..].iter().all(|e| *e == format!("BOOKMARK {current}")), "{described:?}");
    assert!(described.len() > 3, "bookmarks carry the current version: {described:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "ends at timeoutSeconds: {took:?}");

    // Without bookmarks, none are sent; version 0 starts with the current objects.
    let (events, _) = drain(&api, &WatchParams::default().timeout(1).disable_bookmarks(), "0").await;
    assert_eq!(describe(&events), ["ADDED x"]);

    // After compaction the old version is gone: an ERROR event with 410, then the end of the stream.
    fake.compact();
    let (events, _) = drain(&api, &WatchParams::default().timeout(5), &since).await;
    match events.as_slice() {
        [WatchEvent::Error(status)] => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(status.message.contains("too old resource version"), "{}", status.message);
        }
        other => panic!("expected one 410 error, got {:?}", describe(other)),
    }
    let list = api.list(&ListParams::default().limit(1)).await.expect("list");
    let token = list.metadata.continue_.clone();
    assert!(token.is_none(), "one object fits one page");

    // A selector sees objects come and go as their labels change.
    let from = fake.resource_version().to_string();
    let mut x = fake.api_deployment("ns", "x").expect("x");
    x["metadata"]["labels"] = json!({"tier": "web"});
    fake.update(x.clone()).expect("label x");
    x["metadata"]["labels"] = json!({"tier": "batch"});
    x["metadata"]["resourceVersion"] = Value::Null;
    fake.update(x).expect("relabel x");
    let (events, _) =
        drain(&api, &WatchParams::default().timeout(1).disable_bookmarks().labels("tier=web"), &from).await;
    assert_eq!(describe(&events), ["ADDED x", "DELETED x"]);
}

#[tokio::test]
async fn the_runtime_watcher_lists_watches_and_relists_after_410() {
    let fake = FakeKube::start().await;
    let client = client(&fake, "tester").await;
    fake.create(object("ns", "a", json!({}))).expect("create a");
    let all: Api<DynamicObject> = Api::all_with(client, &resource());
    let mut stream = watcher(all, watcher::Config::default().timeout(1)).boxed();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("a watcher event").expect("not ended")
    };
    let step = |e: &Result<watcher::Event<DynamicObject>, watcher::Error>| match e {
        Ok(watcher::Event::Init) => "Init".to_string(),
        Ok(watcher::Event::InitApply(o)) => format!("InitApply {}", o.name_any()),
        Ok(watcher::Event::InitDone) => "InitDone".to_string(),
        Ok(watcher::Event::Apply(o)) => format!("Apply {}", o.name_any()),
        Ok(watcher::Event::Delete(o)) => format!("Delete {}", o.name_any()),
        Err(e) => format!("Err {e}"),
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(step(&next().await));
    }
    assert_eq!(seen, ["Init", "InitApply a", "InitDone"]);

    fake.create(object("ns", "b", json!({}))).expect("create b");
    assert_eq!(step(&next().await), "Apply b");

    // A change the watch has not delivered yet is compacted away: the watch answers 410 and the
    // watcher starts over with a fresh list. (This test's runtime is single-threaded: the server cannot
    // deliver `c` between the create and the compaction.)
    fake.create(object("ns", "c", json!({}))).expect("create c");
    fake.compact();
    let error = step(&next().await);
    assert!(error.starts_with("Err") && error.contains("too old resource version"), "{error}");
    let mut relist = Vec::new();
    for _ in 0..5 {
        relist.push(step(&next().await));
    }
    assert_eq!(relist, ["Init", "InitApply a", "InitApply b", "InitApply c", "InitDone"]);
}

#[tokio::test]
async fn status_writes_change_only_status_and_generation_follows_the_spec() {
    let fake = FakeKube::start().await;
    let client = client(&fake, "tester").await;
    let api = api(&client, "ns");
    let mut body = object("ns", "x", json!({}));
    body["status"] = json!({"observedGeneration": 7});
    let data: DynamicObject = serde_json::from_value(body).expect("object");
    let created = api.create(&PostParams::default(), &data).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert!(created.data.get("status").is_none(), "status is not set by a create");

    let apply = |status: Value| json!({"apiVersion": "ecsop.io/v1alpha1", "kind": "ApiDeployment", "status": status});
    let ssa = PatchParams::apply("ecsop").force();
    let status =
        json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "Unknown"}], "image": {"uri": "u"}});
    let patched = api.patch_status("x", &ssa, &Patch::Apply(apply(status))).await.expect("status apply");
    assert_eq!(patched.data["status"]["image"]["uri"], "u");
    assert_eq!(patched.metadata.generation, Some(1), "a status write never bumps generation");
    assert_eq!(patched.data["spec"], created.data["spec"]);

    // The same manager omitting a field it applied before removes it; the same apply again is no write.
    let status = json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]});
    let patched = api.patch_status("x", &ssa, &Patch::Apply(apply(status.clone()))).await.expect("apply");
    assert!(patched.data["status"].get("image").is_none(), "{}", patched.data["status"]);
    let again = api.patch_status("x", &ssa, &Patch::Apply(apply(status))).await.expect("apply again");
    assert_eq!(rv(&again), rv(&patched), "an unchanged apply writes nothing");

    // A status write cannot change the spec; a write of the object cannot change the status.
    let sneaky = json!({"spec": {"cluster": "other"}, "status": {"observedGeneration": 2}});
    let patched = api.patch_status("x", &PatchParams::default(), &Patch::Merge(sneaky)).await.expect("merge");
    assert_eq!(patched.data["spec"]["cluster"], "api-cluster");
    assert_eq!(patched.data["status"]["observedGeneration"], 2);
    let mut replaced = patched.clone();
    replaced.data["status"] = json!({"observedGeneration": 99});
    let replaced = api.replace("x", &PostParams::default(), &replaced).await.expect("replace");
    assert_eq!(replaced.data["status"]["observedGeneration"], 2);
    assert_eq!(rv(&replaced), rv(&patched), "a replace changing only the status changes nothing");

    // Metadata changes do not bump generation; spec changes do.
    let labelled = api
        .patch("x", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .expect("label");
    assert_eq!(labelled.metadata.generation, Some(1));
    let changed = api
        .patch("x", &PatchParams::default(), &Patch::Merge(json!({"spec": {"image": {"tag": "2"}}})))
        .await
        .expect("spec");
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.data["spec"]["image"]["repository"], "x", "a merge patch keeps what it does not name");

    // Optimistic concurrency and the custom resource's rules.
    let stale = api.replace("x", &PostParams::default(), &labelled).await.expect_err("a stale replace fails");
    assert_eq!((api_error(stale).code, "Conflict"), (409, "Conflict"));
    let mut unconditional = changed.clone();
    unconditional.metadata.resource_version = None;
    let err = api.replace("x", &PostParams::default(), &unconditional).await.expect_err("needs a resourceVersion");
    assert_eq!(api_error(err).code, 422);
    let stale_merge = json!({"metadata": {"resourceVersion": rv(&labelled)}, "spec": {"cluster": "c"}});
    let err = api.patch("x", &PatchParams::default(), &Patch::Merge(stale_merge)).await.expect_err("stale patch");
    assert_eq!(api_error(err).code, 409);
    let err = api
        .patch("x", &PatchParams::default(), &Patch::Strategic(json!({"spec": {}})))
        .await
        .expect_err("no strategic merge patch for custom resources");
    assert_eq!(api_error(err).code, 415);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_the_last_one_goes() {
    let fake = FakeKube::start().await;
    let client = client(&fake, "tester").await;
    let api = api(&client, "ns");
    fake.create(object("ns", "x", json!({}))).expect("create");
    let since = fake.resource_version().to_string();
    let get = || async { api.get("x").await.expect("get") };

    // kube's finalizer helper adds the finalizer (JSON patch: test null, add).
    let reconcile = |_event| async { Ok::<_, std::io::Error>(Action::await_change()) };
    finalizer::finalizer(&api, FINALIZER, Arc::new(get().await), reconcile).await.expect("finalizer added");
    let x = get().await;
    assert_eq!(x.finalizers(), [FINALIZER]);
    assert_eq!(x.metadata.generation, Some(1), "finalizers are metadata");
    let again = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                       {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]);
    let json_patch = |v: Value| Patch::<()>::Json(serde_json::from_value(v).expect("JSON patch"));
    let err = api.patch("x", &PatchParams::default(), &json_patch(again)).await.expect_err("the test op fails");
    assert_eq!(api_error(err).code, 422);

    // DELETE only marks the object; a second DELETE changes nothing; no finalizer can be added now.
    let deleted = api.delete("x", &DeleteParams::default()).await.expect("delete").left().expect("the object");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    assert_eq!(deleted.metadata.generation, Some(2), "deletion bumps generation, as Kubernetes does");
    let again = api.delete("x", &DeleteParams::default()).await.expect("delete again").left().expect("object");
    assert_eq!(rv(&again), rv(&deleted));
    let add = json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "other"}]);
    let err = api.patch("x", &PatchParams::default(), &json_patch(add)).await.expect_err("no new finalizers");
    assert_eq!(api_error(err).code, 422);

    // Cleanup done: the helper removes the finalizer and the object goes.
    finalizer::finalizer(&api, FINALIZER, Arc::new(get().await), reconcile).await.expect("finalizer removed");
    assert!(api.get_opt("x").await.expect("get").is_none());
    let (events, _) = drain(&api, &WatchParams::default().timeout(1).disable_bookmarks(), &since).await;
    assert_eq!(describe(&events), ["MODIFIED x", "MODIFIED x", "DELETED x"]);

    // Without finalizers DELETE removes at once.
    fake.create(object("ns", "y", json!({}))).expect("create y");
    api.delete("y", &DeleteParams::default()).await.expect("delete y");
    assert!(fake.api_deployment("ns", "y").is_none());
}

#[tokio::test]
async fn leases_use_optimistic_concurrency() {
    let fake = FakeKube::start().await;
    let client = client(&fake, "tester").await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease = Lease {
        metadata: kube::api::ObjectMeta { name: Some("leader".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    leases.create(&PostParams::default(), &lease).await.expect("create");
    let err = api_error(leases.create(&PostParams::default(), &lease).await.expect_err("exists"));
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let read = leases.get("leader").await.expect("get");
    let mut mine = read.clone();
    mine.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    let won = leases.replace("leader", &PostParams::default(), &mine).await.expect("replace at the current version");
    assert_ne!(won.metadata.resource_version, read.metadata.resource_version);
    let mut late = read.clone();
    late.spec.as_mut().expect("spec").holder_identity = Some("c".into());
    let err = api_error(leases.replace("leader", &PostParams::default(), &late).await.expect_err("stale"));
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(err.message.contains("the object has been modified"), "{}", err.message);
    let holder = fake.lease("kube-system", "leader").expect("lease")["spec"]["holderIdentity"].clone();
    assert_eq!(holder, "b");

    // Built-in types allow an unconditional update.
    late.metadata.resource_version = None;
    leases.replace("leader", &PostParams::default(), &late).await.expect("unconditional replace");
    assert_eq!(fake.lease("kube-system", "leader").expect("lease")["spec"]["holderIdentity"], "c");
}

#[tokio::test]
async fn recorder_events_are_created_then_patched_and_requests_are_logged_per_user() {
    let fake = FakeKube::start().await;
    let client = client(&fake, "operator-a").await;
    fake.create(object("ns", "x", json!({}))).expect("create");
    let x = api(&client, "ns").get("x").await.expect("get");
    let reporter = Reporter { controller: "ecsop".into(), instance: Some("a".into()) };
    let recorder = Recorder::new(client.clone(), reporter);
    let event = Event {
        type_: EventType::Warning,
        reason: "RolledBack".into(),
        note: Some("circuit breaker".into()),
        action: "Rollout".into(),
        secondary: None,
    };
    fake.clear_requests();
    recorder.publish(&event, &x.object_ref(&resource())).await.expect("publish");
    recorder.publish(&event, &x.object_ref(&resource())).await.expect("publish again");

    let events = fake.events();
    assert_eq!(events.len(), 1, "the second publish patches the first: {events:#?}");
    let e = &events[0];
    assert_eq!((e["reason"].as_str(), e["type"].as_str()), (Some("RolledBack"), Some("Warning")));
    assert_eq!(e["reportingInstance"], "a");
    assert_eq!(e["regarding"]["name"], "x");
    assert_eq!(e["series"]["count"], 2);

    let requests = fake.requests();
    let writes: Vec<_> = requests.iter().filter(|r| r.is_write()).collect();
    assert_eq!(writes.len(), 2, "{requests:#?}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].path, "/apis/events.k8s.io/v1/namespaces/ns/events");
    assert_eq!(writes[1].method, "PATCH");
    assert_eq!(writes[1].content_type.as_deref(), Some("application/merge-patch+json"));
    assert!(requests.iter().all(|r| r.user.as_deref() == Some("operator-a")), "{requests:#?}");
    assert!(requests.iter().all(|r| r.status / 100 == 2), "{requests:#?}");

    // Errors are Status bodies the client understands.
    let err = api_error(api(&client, "ns").get("missing").await.expect_err("missing"));
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    let widgets = ApiResource { plural: "widgets".into(), kind: "Widget".into(), ..resource() };
    let unknown: Api<DynamicObject> = Api::namespaced_with(client, "ns", &widgets);
    assert_eq!(api_error(unknown.list(&ListParams::default()).await.expect_err("unknown type")).code, 404);
    assert_eq!(fake.requests().last().map(|r| r.status), Some(404));
}
