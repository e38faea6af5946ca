//! An in-process fake Kubernetes API server, for testing the controller (`ecsop run`) where no real API
//! server can run.
//!
//! [`FakeKube`] serves the HTTP API a `kube::Client` speaks, on `127.0.0.1:<free port>`, for exactly the
//! resources ecsop touches: `ecsop.io/v1alpha1` ApiDeployments (with the status subresource),
//! `events.k8s.io/v1` and core `v1` Events, and `coordination.k8s.io/v1` Leases. Objects are kept as
//! JSON. It is faithful where a controller can notice:
//!
//! - one global `resourceVersion` counter; a write that changes nothing is not a write (no new
//!   resourceVersion, no watch event), as in Kubernetes;
//! - `metadata.generation` starts at 1 and grows only when something outside `metadata` and `status`
//!   changes (and when deletion starts, as Kubernetes does); writes to `/status` change only `status`,
//!   writes to the object never change `status`; `uid` and `creationTimestamp` are set on create;
//! - LIST with label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`), the field selectors
//!   `metadata.name` and `metadata.namespace`, `limit`/`continue` paging and the list's
//!   `resourceVersion`;
//! - WATCH (`?watch=true` or `/watch/` paths) as newline-delimited JSON: synthetic ADDED events for a
//!   watch without a resourceVersion (or `0`), replay of the kept history after a given one, `410 Gone`
//!   as an ERROR event once that history was compacted, label-selector transitions as ADDED/DELETED,
//!   BOOKMARK events with the current resourceVersion (`allowWatchBookmarks=true`), and the end of the
//!   stream at `timeoutSeconds`;
//! - finalizers: DELETE of an object with finalizers only sets `deletionTimestamp`; removing the last
//!   finalizer of such an object deletes it; no new finalizer can be added once deletion started;
//! - optimistic concurrency: PUT (and PATCH carrying a `metadata.resourceVersion`) with a stale
//!   resourceVersion is `409 Conflict`; PUT of a custom resource without one is `422`; POST of an
//!   existing name is `409 AlreadyExists`;
//! - PATCH as JSON patch (including `test`, with the API server's rule that testing `null` on a missing
//!   path passes), merge patch, and apply patch (see below); strategic merge patch is refused for the
//!   custom resource (`415`), as Kubernetes does, and treated as a merge patch for built-in types;
//! - errors as Kubernetes `Status` bodies (400, 404, 405, 409, 410, 415, 422).
//!
//! Not modelled: authentication and authorization (the bearer token is only recorded, as the request's
//! user), admission and OpenAPI schema validation of custom resources (only names are validated),
//! namespaces as objects, garbage collection by owner references, `dryRun`, `resourceVersionMatch`
//! (lists always serve the current state; a continued list reports the first page's resourceVersion but
//! reads current objects), discovery beyond `/version`, protobuf, and field-manager conflicts of
//! server-side apply. Apply is approximated: the applied fields are merged into the object (objects
//! merge key by key, lists and scalars replace), and leaf fields the same field manager applied before
//! and omits now are removed, unless another manager applied them; `metadata.managedFields` is not
//! written.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// A resource type the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResourceType {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    /// Has a status subresource (spec/status split, generation).
    status: bool,
    /// A custom resource (no strategic merge patch, no unconditional update).
    custom: bool,
}

impl ResourceType {
    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
    fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }
}

const RESOURCES: [ResourceType; 4] = [
    ResourceType {
        group: "ecsop.io",
        version: "v1alpha1",
        plural: "apideployments",
        kind: "ApiDeployment",
        status: true,
        custom: true,
    },
    ResourceType {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        status: false,
        custom: false,
    },
    ResourceType { group: "", version: "v1", plural: "events", kind: "Event", status: false, custom: false },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        status: false,
        custom: false,
    },
];
const API_DEPLOYMENTS: usize = 0;
const EVENTS: usize = 1;
const CORE_EVENTS: usize = 2;
const LEASES: usize = 3;

/// A Kubernetes `Status` failure: what the fake answers instead of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeStatus {
    /// The HTTP status code.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, `Invalid`, ...).
    pub reason: String,
    /// The message.
    pub message: String,
}

impl KubeStatus {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        KubeStatus { code, reason: reason.to_string(), message: message.into() }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    fn not_found(res: &ResourceType, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", res.group_resource()))
    }
    fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }
    fn conflict(res: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", res.group_resource()),
        )
    }
    fn stale(res: &ResourceType, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    fn invalid(res: &ResourceType, name: &str, cause: impl std::fmt::Display) -> Self {
        Self::new(422, "Invalid", format!("{} {:?} is invalid: {cause}", res.kind, name))
    }
    fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` object.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

impl std::fmt::Display for KubeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for KubeStatus {}

/// One HTTP request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRequest {
    /// The method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`).
    pub method: String,
    /// The path (`/apis/ecsop.io/v1alpha1/namespaces/test/apideployments/x/status`).
    pub path: String,
    /// The raw query string (`fieldManager=ecsop&force=true`).
    pub query: String,
    /// The request's content type (`application/apply-patch+yaml`).
    pub content_type: Option<String>,
    /// The bearer token, which the fake takes as the user's name (see [`FakeKube::kubeconfig`]).
    pub user: Option<String>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
    /// The HTTP status answered (0 while a request is being handled).
    pub status: u16,
}

impl KubeRequest {
    /// Whether the request may change state (anything but GET).
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
    /// A query parameter, decoded.
    pub fn param(&self, key: &str) -> Option<String> {
        let uri: Uri = format!("/?{}", self.query).parse().ok()?;
        let Query(map) = Query::<HashMap<String, String>>::try_from_uri(&uri).ok()?;
        map.get(key).cloned()
    }
}

/// Settings of a [`FakeKube`].
#[derive(Debug, Clone)]
pub struct FakeKubeOptions {
    /// How many changes the watch history keeps; a watch resuming from before them gets 410 Gone.
    pub history_limit: usize,
    /// How often an idle watch with bookmarks sends a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl Default for FakeKubeOptions {
    fn default() -> Self {
        FakeKubeOptions { history_limit: 10_000, bookmark_interval: Duration::from_secs(5) }
    }
}

type Key = (usize, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    resource: usize,
    namespace: String,
    kind: ChangeKind,
    old: Option<Value>,
    new: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    seq: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Changes after this resourceVersion are all in `history`.
    floor: u64,
    /// Leaf paths each field manager last applied, per object.
    applied: HashMap<Key, BTreeMap<String, BTreeSet<Vec<String>>>>,
    /// Creation order of every object ever created.
    created: HashMap<Key, u64>,
    requests: Vec<KubeRequest>,
    /// Requests whose path contains the first part are answered only after the second: a sick API
    /// server (a stalled etcd, an overloaded apiserver).
    stall: Option<(String, Duration)>,
}

struct Shared {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    options: FakeKubeOptions,
    random: std::collections::hash_map::RandomState,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run a write under the lock and wake watchers if it changed anything.
    fn write<T>(&self, f: impl FnOnce(&mut State, &Ctx<'_>) -> Result<T, KubeStatus>) -> Result<T, KubeStatus> {
        let ctx = Ctx { limit: self.options.history_limit, random: &self.random };
        let (result, before, after) = {
            let mut state = self.lock();
            let before = state.rv;
            let result = f(&mut state, &ctx);
            (result, before, state.rv)
        };
        if after != before {
            self.changes.send_replace(after);
        }
        result
    }
}

struct Ctx<'a> {
    limit: usize,
    random: &'a std::collections::hash_map::RandomState,
}

impl Ctx<'_> {
    fn hash(&self, n: u64, salt: u64) -> u64 {
        let mut h = self.random.build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    }
    fn uid(&self, n: u64) -> String {
        let (a, b) = (self.hash(n, 1), self.hash(n, 2));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
    fn suffix(&self, n: u64) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut h = self.hash(n, 3);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
                h /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else { unreachable!("made an object above") };
    let metadata = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let Value::Object(m) = metadata else { unreachable!("made an object above") };
    m
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Drop what Go's `omitempty` would drop from metadata (empty finalizers, labels, annotations).
fn normalize(obj: &mut Value) {
    let m = meta_mut(obj);
    for field in ["finalizers", "labels", "annotations", "ownerReferences"] {
        let empty = match m.get(field) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            m.remove(field);
        }
    }
    m.remove("managedFields");
    m.remove("selfLink");
}

/// The object without `metadata` and `status`: what generation counts changes of.
fn desired_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_type(res: &ResourceType, obj: &Value) -> Result<(), KubeStatus> {
    if !obj.is_object() {
        return Err(KubeStatus::bad_request("the body of the request is not a JSON object"));
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != res.api_version() || kind != res.kind {
        return Err(KubeStatus::bad_request(format!(
            "the API version in the data ({api_version}) and kind ({kind}) do not match the expected API version ({}) and kind ({})",
            res.api_version(),
            res.kind
        )));
    }
    Ok(())
}

fn parse_body(body: &[u8]) -> Result<Value, KubeStatus> {
    serde_json::from_slice(body).map_err(|e| KubeStatus::bad_request(format!("error decoding the body: {e}")))
}

impl State {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, ctx: &Ctx<'_>, change: Change) {
        self.history.push_back(change);
        while self.history.len() > ctx.limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
    }

    fn get(&self, resource: usize, namespace: &str, name: &str) -> Result<Value, KubeStatus> {
        self.objects
            .get(&(resource, namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| KubeStatus::not_found(&RESOURCES[resource], name))
    }

    fn create(&mut self, ctx: &Ctx<'_>, resource: usize, namespace: &str, mut obj: Value) -> Result<Value, KubeStatus> {
        let res = &RESOURCES[resource];
        check_type(res, &obj)?;
        self.seq += 1;
        let seq = self.seq;
        let m = meta_mut(&mut obj);
        if let Some(ns) = m.get("namespace").and_then(Value::as_str)
            && !ns.is_empty()
            && ns != namespace
        {
            return Err(KubeStatus::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        m.insert("namespace".into(), namespace.into());
        let name = match (m.get("name").and_then(Value::as_str), m.get("generateName").and_then(Value::as_str)) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", ctx.suffix(seq)),
            _ => {
                return Err(KubeStatus::invalid(
                    res,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        if !is_dns_subdomain(&name) {
            return Err(KubeStatus::invalid(
                res,
                &name,
                format!(
                    "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            ));
        }
        let key = (resource, namespace.to_string(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(KubeStatus::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.group_resource()),
            ));
        }
        m.insert("name".into(), name.into());
        for field in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            m.remove(field);
        }
        m.insert("uid".into(), ctx.uid(seq).into());
        m.insert("creationTimestamp".into(), now().into());
        if res.status {
            m.insert("generation".into(), 1.into());
            if let Value::Object(o) = &mut obj {
                o.remove("status");
            }
        }
        normalize(&mut obj);
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), rv.to_string().into());
        self.created.insert(key.clone(), rv);
        self.objects.insert(key, obj.clone());
        self.record(
            ctx,
            Change {
                rv,
                resource,
                namespace: namespace.to_string(),
                kind: ChangeKind::Added,
                old: None,
                new: obj.clone(),
            },
        );
        Ok(obj)
    }

    /// Store `new` as the next state of the existing `old`: server-owned metadata comes from `old`,
    /// nothing happens if nothing changed, generation follows the desired state, and an object being
    /// deleted goes once its last finalizer is gone.
    fn commit(&mut self, ctx: &Ctx<'_>, resource: usize, old: Value, mut new: Value) -> Result<Value, KubeStatus> {
        let res = &RESOURCES[resource];
        let namespace = meta_str(&old, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&old, "name").unwrap_or_default().to_string();
        let old_meta = meta(&old).cloned().unwrap_or_default();
        if let Value::Object(o) = &mut new {
            o.insert("apiVersion".into(), res.api_version().into());
            o.insert("kind".into(), res.kind.into());
        }
        let m = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        normalize(&mut new);
        if old_meta.contains_key("deletionTimestamp") {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(KubeStatus::invalid(
                    res,
                    &name,
                    format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                ));
            }
        }
        if new == old {
            return Ok(old);
        }
        if res.status && desired_part(&new) != desired_part(&old) {
            let generation = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), generation.into());
        }
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".into(), rv.to_string().into());
        let key = (resource, namespace.clone(), name);
        let kind = if old_meta.contains_key("deletionTimestamp") && finalizers(&new).is_empty() {
            self.objects.remove(&key);
            self.applied.remove(&key);
            ChangeKind::Deleted
        } else {
            self.objects.insert(key, new.clone());
            ChangeKind::Modified
        };
        self.record(ctx, Change { rv, resource, namespace, kind, old: Some(old), new: new.clone() });
        Ok(new)
    }

    /// PUT: replace the object (or, with `status`, only its status).
    fn update(
        &mut self,
        ctx: &Ctx<'_>,
        resource: usize,
        namespace: &str,
        name: &str,
        body: Value,
        status: bool,
    ) -> Result<Value, KubeStatus> {
        let res = &RESOURCES[resource];
        check_type(res, &body)?;
        if let Some(n) = meta_str(&body, "name")
            && n != name
        {
            return Err(KubeStatus::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(ns) = meta_str(&body, "namespace")
            && !ns.is_empty()
            && ns != namespace
        {
            return Err(KubeStatus::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let old = self.get(resource, namespace, name)?;
        match meta_str(&body, "resourceVersion").filter(|v| !v.is_empty()) {
            Some(v) if Some(v) != meta_str(&old, "resourceVersion") => return Err(KubeStatus::stale(res, name)),
            Some(_) => {}
            None if res.custom => {
                return Err(KubeStatus::invalid(
                    res,
                    name,
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                ));
            }
            None => {}
        }
        let new = split_status(res, &old, body, status);
        self.commit(ctx, resource, old, new)
    }

    /// PATCH; returns the object and whether an apply patch created it.
    #[allow(clippy::too_many_arguments)]
    fn patch(
        &mut self,
        ctx: &Ctx<'_>,
        resource: usize,
        namespace: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        status: bool,
        field_manager: Option<&str>,
    ) -> Result<(Value, bool), KubeStatus> {
        let res = &RESOURCES[resource];
        let existing = self.objects.get(&(resource, namespace.to_string(), name.to_string())).cloned();
        if content_type == APPLY_PATCH {
            let manager = field_manager.filter(|m| !m.is_empty()).ok_or_else(|| {
                KubeStatus::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                )
            })?;
            let applied = parse_body(body)?;
            check_type(res, &applied)?;
            if let Some(n) = meta_str(&applied, "name")
                && n != name
            {
                return Err(KubeStatus::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            let scoped = apply_scope(res, &applied, status);
            let paths = leaf_paths(&scoped);
            let key = (resource, namespace.to_string(), name.to_string());
            let Some(old) = existing else {
                if status {
                    return Err(KubeStatus::not_found(res, name));
                }
                let mut obj = scoped;
                meta_mut(&mut obj).insert("name".into(), name.into());
                let created = self.create(ctx, resource, namespace, obj)?;
                self.applied.entry(key).or_default().insert(manager.to_string(), paths);
                return Ok((created, true));
            };
            let mut new = old.clone();
            merge_patch(&mut new, &scoped);
            let owners = self.applied.entry(key.clone()).or_default();
            let before = owners.get(manager).cloned().unwrap_or_default();
            for path in before.difference(&paths) {
                let owned_elsewhere = owners
                    .iter()
                    .filter(|(m, _)| m.as_str() != manager)
                    .any(|(_, ps)| ps.iter().any(|p| p.starts_with(path) || path.starts_with(p)));
                if !owned_elsewhere {
                    remove_pruning(&mut new, path);
                }
            }
            let new = split_status(res, &old, new, status);
            let committed = self.commit(ctx, resource, old, new)?;
            if self.objects.contains_key(&key) {
                self.applied.entry(key).or_default().insert(manager.to_string(), paths);
            }
            return Ok((committed, false));
        }
        let old = existing.ok_or_else(|| KubeStatus::not_found(res, name))?;
        let mut new = old.clone();
        match content_type {
            JSON_PATCH => json_patch(&mut new, &parse_body(body)?).map_err(|e| match e {
                PatchError::Malformed(m) => KubeStatus::bad_request(m),
                PatchError::Failed(m) => KubeStatus::invalid(res, name, m),
            })?,
            MERGE_PATCH => merge_patch(&mut new, &parse_body(body)?),
            STRATEGIC_MERGE_PATCH if !res.custom => merge_patch(&mut new, &parse_body(body)?),
            other => {
                return Err(KubeStatus::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                    ),
                ));
            }
        }
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(KubeStatus::stale(res, name));
        }
        let new = split_status(res, &old, new, status);
        Ok((self.commit(ctx, resource, old, new)?, false))
    }

    fn delete(
        &mut self,
        ctx: &Ctx<'_>,
        resource: usize,
        namespace: &str,
        name: &str,
        options: Option<&Value>,
    ) -> Result<Value, KubeStatus> {
        let res = &RESOURCES[resource];
        let old = self.get(resource, namespace, name)?;
        if let Some(pre) = options.and_then(|o| o.get("preconditions")) {
            for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
                if let Some(want) = pre.get(field).and_then(Value::as_str)
                    && Some(want) != meta_str(&old, field)
                {
                    return Err(KubeStatus::conflict(
                        res,
                        name,
                        &format!(
                            "Precondition failed: {what} in precondition: {want}, {what} in object meta: {}",
                            meta_str(&old, field).unwrap_or("")
                        ),
                    ));
                }
            }
        }
        let key = (resource, namespace.to_string(), name.to_string());
        if !finalizers(&old).is_empty() {
            if meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Ok(old);
            }
            let mut new = old.clone();
            let rv = self.next_rv();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), now().into());
            m.insert("deletionGracePeriodSeconds".into(), 0.into());
            if let Some(g) = m.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                m.insert("generation".into(), (g + 1).into());
            }
            m.insert("resourceVersion".into(), rv.to_string().into());
            self.objects.insert(key, new.clone());
            self.record(
                ctx,
                Change {
                    rv,
                    resource,
                    namespace: namespace.to_string(),
                    kind: ChangeKind::Modified,
                    old: Some(old),
                    new: new.clone(),
                },
            );
            return Ok(new);
        }
        let rv = self.next_rv();
        let mut gone = old.clone();
        meta_mut(&mut gone).insert("resourceVersion".into(), rv.to_string().into());
        self.objects.remove(&key);
        self.applied.remove(&key);
        self.record(
            ctx,
            Change {
                rv,
                resource,
                namespace: namespace.to_string(),
                kind: ChangeKind::Deleted,
                old: Some(old),
                new: gone.clone(),
            },
        );
        Ok(gone)
    }

    fn list(
        &self,
        resource: usize,
        namespace: Option<&str>,
        selector: &Selector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Value, KubeStatus> {
        let res = &RESOURCES[resource];
        let (list_rv, after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token)
                    .ok_or_else(|| KubeStatus::bad_request("continue key is not valid: malformed token"))?;
                if rv < self.floor {
                    return Err(KubeStatus::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some((ns, name)))
            }
            None => (self.rv, None),
        };
        let matching: Vec<(&Key, &Value)> = self
            .objects
            .range((resource, String::new(), String::new())..)
            .take_while(|((r, _, _), _)| *r == resource)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|want| want == ns))
            .filter(|((_, ns, name), _)| {
                after
                    .as_ref()
                    .is_none_or(|(a_ns, a_name)| (ns.as_str(), name.as_str()) > (a_ns.as_str(), a_name.as_str()))
            })
            .filter(|(_, obj)| selector.matches(obj))
            .collect();
        let page = limit.unwrap_or(usize::MAX).min(matching.len());
        let items: Vec<Value> = matching[..page].iter().map(|(_, v)| (*v).clone()).collect();
        let remaining = matching.len() - page;
        let last = matching[..page].last().map(|((_, ns, name), _)| (ns.clone(), name.clone()));
        let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
        if remaining > 0
            && let Some((ns, name)) = &last
        {
            metadata["continue"] = encode_continue(list_rv, ns, name).into();
            if selector.is_empty() {
                metadata["remainingItemCount"] = remaining.into();
            }
        }
        Ok(json!({
            "apiVersion": res.api_version(),
            "kind": format!("{}List", res.kind),
            "metadata": metadata,
            "items": items,
        }))
    }
}

/// The next state of `old` under a write of `new`: only the status for a status write, everything but
/// the status otherwise (for a type with a status subresource).
fn split_status(res: &ResourceType, old: &Value, new: Value, status_write: bool) -> Value {
    if !res.status {
        return new;
    }
    let (mut base, from) = if status_write { (old.clone(), new) } else { (new, old.clone()) };
    if let Value::Object(b) = &mut base {
        match from.get("status") {
            Some(s) if !s.is_null() => b.insert("status".into(), s.clone()),
            _ => b.remove("status"),
        };
    }
    base
}

/// What an apply patch may set: the status for a status apply; otherwise everything but the status,
/// and of the metadata only labels, annotations and finalizers.
fn apply_scope(res: &ResourceType, applied: &Value, status: bool) -> Value {
    let mut out = Map::new();
    let Some(fields) = applied.as_object() else { return Value::Object(out) };
    for (k, v) in fields {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if res.status && !status => {}
            "status" => {
                out.insert(k.clone(), v.clone());
            }
            "metadata" if !status => {
                let mut m = Map::new();
                for f in ["labels", "annotations", "finalizers"] {
                    if let Some(x) = v.get(f) {
                        m.insert(f.into(), x.clone());
                    }
                }
                out.insert(k.clone(), Value::Object(m));
            }
            _ if res.status && status => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The paths of the leaves (scalars, lists, empty objects) of `v`.
fn leaf_paths(v: &Value) -> BTreeSet<Vec<String>> {
    fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    prefix.push(k.clone());
                    walk(x, prefix, out);
                    prefix.pop();
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Remove the field at `path`, then the objects it leaves empty (but never a top-level field).
fn remove_pruning(obj: &mut Value, path: &[String]) {
    fn go(v: &mut Value, path: &[String], depth: usize) {
        let Value::Object(m) = v else { return };
        match path {
            [] => {}
            [last] => {
                m.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(child) = m.get_mut(first) {
                    go(child, rest, depth + 1);
                    if depth >= 1 && child.as_object().is_some_and(Map::is_empty) {
                        m.remove(first);
                    }
                }
            }
        }
    }
    go(obj, path, 0);
}

/// RFC 7386 merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

enum PatchError {
    Malformed(String),
    Failed(String),
}

fn pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PatchError::Malformed(format!("JSON pointer {path:?} does not start with '/'")));
    };
    Ok(rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect())
}

fn get_at<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_at_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
        _ => None,
    })
}

fn add_at(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing =
        || PatchError::Failed(format!("add operation does not apply: doc is missing path: \"/{}\"", path.join("/")));
    match get_at_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i = last.parse::<usize>().ok().filter(|i| *i <= a.len()).ok_or_else(missing)?;
            a.insert(i, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove_at(doc: &mut Value, path: &[String]) -> Result<Value, PatchError> {
    let missing =
        || PatchError::Failed(format!("remove operation does not apply: doc is missing path: \"/{}\"", path.join("/")));
    let (last, parent) = path.split_last().ok_or_else(missing)?;
    match get_at_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().ok().filter(|i| *i < a.len()).ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 JSON patch, with the API server's leniency: testing `null` against a missing path passes.
fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops.as_array().ok_or_else(|| PatchError::Malformed("a JSON patch must be an array".into()))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = pointer(op.get("path").and_then(Value::as_str).unwrap_or(""))?;
        let value =
            || op.get("value").cloned().ok_or_else(|| PatchError::Failed(format!("{kind} operation has no value")));
        let from = || pointer(op.get("from").and_then(Value::as_str).unwrap_or(""));
        match kind {
            "add" => add_at(doc, &path, value()?)?,
            "remove" => {
                remove_at(doc, &path)?;
            }
            "replace" => {
                let v = value()?;
                let slot = get_at_mut(doc, &path).ok_or_else(|| {
                    PatchError::Failed(format!(
                        "replace operation does not apply: doc is missing key: /{}",
                        path.join("/")
                    ))
                })?;
                *slot = v;
            }
            "move" => {
                let v = remove_at(doc, &from()?)?;
                add_at(doc, &path, v)?;
            }
            "copy" => {
                let v = get_at(doc, &from()?)
                    .cloned()
                    .ok_or_else(|| PatchError::Failed("copy operation does not apply: missing from".into()))?;
                add_at(doc, &path, v)?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                let ok = match get_at(doc, &path) {
                    Some(v) => *v == want,
                    None => want.is_null(),
                };
                if !ok {
                    return Err(PatchError::Failed(format!("testing value /{} failed: test failed", path.join("/"))));
                }
            }
            other => return Err(PatchError::Malformed(format!("unexpected kind of JSON patch operation: {other:?}"))),
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    hex(json!([rv, ns, name]).to_string().as_bytes())
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    let v: Value = serde_json::from_slice(&unhex(token)?).ok()?;
    Some((v.get(0)?.as_u64()?, v.get(1)?.as_str()?.to_string(), v.get(2)?.as_str()?.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Label and field selectors of a LIST or WATCH.
#[derive(Debug, Clone, Default)]
struct Selector {
    labels: Vec<LabelReq>,
    /// (field, equal?, value)
    fields: Vec<(String, bool, String)>,
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Selector {
    fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Selector, KubeStatus> {
        let bad = |term: &str| KubeStatus::bad_request(format!("unable to parse requirement: {term:?}"));
        let mut selector = Selector::default();
        for term in split_top(labels.unwrap_or("")) {
            let req = if let Some(open) = term.find('(') {
                let head = term[..open].trim_end();
                let values = term[open + 1..].strip_suffix(')').ok_or_else(|| bad(term))?;
                let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
                if !values.iter().all(|v| valid_value(v)) {
                    return Err(bad(term));
                }
                if let Some(k) = head.strip_suffix("notin").filter(|k| k.ends_with(char::is_whitespace)) {
                    LabelReq::NotIn(k.trim().to_string(), values)
                } else if let Some(k) = head.strip_suffix("in").filter(|k| k.ends_with(char::is_whitespace)) {
                    LabelReq::In(k.trim().to_string(), values)
                } else {
                    return Err(bad(term));
                }
            } else if let Some(k) = term.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = term.split_once("!=") {
                LabelReq::Ne(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
            } else {
                LabelReq::Exists(term.to_string())
            };
            let (key, value) = match &req {
                LabelReq::Eq(k, v) | LabelReq::Ne(k, v) => (k, Some(v)),
                LabelReq::In(k, _) | LabelReq::NotIn(k, _) | LabelReq::Exists(k) | LabelReq::NotExists(k) => (k, None),
            };
            if !valid_key(key) || value.is_some_and(|v| !valid_value(v)) {
                return Err(bad(term));
            }
            selector.labels.push(req);
        }
        for term in split_top(fields.unwrap_or("")) {
            let (field, equal, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(bad(term));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(KubeStatus::bad_request(format!("field label not supported: {field}")));
            }
            selector.fields.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(selector)
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = meta(obj).and_then(|m| m.get("labels")).and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(field, equal, value)| {
                let actual = meta_str(obj, field.trim_start_matches("metadata.")).unwrap_or("");
                (actual == value) == *equal
            })
    }
}

/// A parsed API path.
#[derive(Debug)]
struct Target {
    resource: usize,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    watch: bool,
}

fn parse_path(path: &str) -> Result<Target, KubeStatus> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(KubeStatus::no_route()),
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(KubeStatus::no_route()),
    };
    let resource = RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
        .ok_or_else(KubeStatus::no_route)?;
    if name.is_some() && namespace.is_none() {
        // Every served type is namespaced.
        return Err(KubeStatus::no_route());
    }
    if let Some(sub) = &subresource
        && (sub != "status" || !RESOURCES[resource].status)
    {
        return Err(KubeStatus::no_route());
    }
    Ok(Target { resource, namespace, name, subresource, watch })
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn status_response(s: &KubeStatus) -> Response {
    json_response(StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &s.to_json())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let user = header_str(&headers, header::AUTHORIZATION)
        .and_then(|a| a.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
    let index = {
        let mut state = shared.lock();
        state.requests.push(KubeRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            content_type: content_type.clone(),
            user,
            user_agent: header_str(&headers, header::USER_AGENT),
            status: 0,
        });
        state.requests.len() - 1
    };
    let stall = shared.lock().stall.clone().filter(|(path, _)| uri.path().contains(path.as_str()));
    if let Some((_, delay)) = stall {
        tokio::time::sleep(delay).await;
    }
    let response = route(&shared, &method, &uri, content_type.as_deref(), &body);
    if let Some(r) = shared.lock().requests.get_mut(index) {
        r.status = response.status().as_u16();
    }
    response
}

fn route(shared: &Arc<Shared>, method: &Method, uri: &Uri, content_type: Option<&str>, body: &[u8]) -> Response {
    match (method, uri.path()) {
        (&Method::GET, "/version") => {
            return json_response(
                StatusCode::OK,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-ecsop-fake", "platform": "linux/amd64"}),
            );
        }
        (&Method::GET, "/healthz" | "/livez" | "/readyz") => return "ok".into_response(),
        _ => {}
    }
    let target = match parse_path(uri.path()) {
        Ok(t) => t,
        Err(s) => return status_response(&s),
    };
    let params = Query::<HashMap<String, String>>::try_from_uri(uri).map(|Query(q)| q).unwrap_or_default();
    let param = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let res = &RESOURCES[target.resource];
    let namespace = target.namespace.as_deref().unwrap_or("");
    let status_sub = target.subresource.is_some();
    let is_watch = target.watch || matches!(param("watch"), Some("true" | "1"));
    let ok = |v: Value| json_response(StatusCode::OK, &v);
    let reply = |r: Result<Value, KubeStatus>, code: StatusCode| match r {
        Ok(v) => json_response(code, &v),
        Err(e) => status_response(&e),
    };
    match (method, &target.name) {
        (&Method::GET, _) if is_watch && target.subresource.is_none() => {
            let mut fields = param("fieldSelector").map(str::to_string);
            if let Some(name) = &target.name {
                let by_name = format!("metadata.name={name}");
                fields = Some(fields.map_or(by_name.clone(), |f| format!("{f},{by_name}")));
            }
            match Selector::parse(param("labelSelector"), fields.as_deref()) {
                Ok(selector) => watch_response(shared, &target, selector, &params),
                Err(e) => status_response(&e),
            }
        }
        (&Method::GET, None) => {
            let selector = match Selector::parse(param("labelSelector"), param("fieldSelector")) {
                Ok(s) => s,
                Err(e) => return status_response(&e),
            };
            let limit = match param("limit").map(str::parse::<usize>) {
                None | Some(Ok(0)) => None,
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => return status_response(&KubeStatus::bad_request("limit must be a number")),
            };
            let state = shared.lock();
            reply(
                state.list(target.resource, target.namespace.as_deref(), &selector, limit, param("continue")),
                StatusCode::OK,
            )
        }
        (&Method::GET, Some(name)) => reply(shared.lock().get(target.resource, namespace, name), StatusCode::OK),
        (&Method::POST, None) if target.namespace.is_some() && !status_sub => {
            let result =
                parse_body(body).and_then(|obj| shared.write(|s, ctx| s.create(ctx, target.resource, namespace, obj)));
            reply(result, StatusCode::CREATED)
        }
        (&Method::PUT, Some(name)) => {
            let result = parse_body(body).and_then(|obj| {
                shared.write(|s, ctx| s.update(ctx, target.resource, namespace, name, obj, status_sub))
            });
            reply(result, StatusCode::OK)
        }
        (&Method::PATCH, Some(name)) => {
            let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
            let result = shared.write(|s, ctx| {
                s.patch(ctx, target.resource, namespace, name, ct, body, status_sub, param("fieldManager"))
            });
            match result {
                Ok((v, true)) => json_response(StatusCode::CREATED, &v),
                Ok((v, false)) => ok(v),
                Err(e) => status_response(&e),
            }
        }
        (&Method::DELETE, Some(name)) if !status_sub => {
            let options: Option<Value> = serde_json::from_slice(body).ok();
            reply(
                shared.write(|s, ctx| s.delete(ctx, target.resource, namespace, name, options.as_ref())),
                StatusCode::OK,
            )
        }
        _ => status_response(&KubeStatus::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({})", res.group_resource()),
        )),
    }
}

/// Where a watch starts.
enum Start {
    /// Synthetic ADDED events for the current objects, then changes after the current resourceVersion.
    Now,
    /// Changes after this resourceVersion.
    Since(u64),
}

struct WatchSpec {
    resource: usize,
    namespace: Option<String>,
    selector: Selector,
    start: Start,
    timeout: Duration,
    bookmarks: bool,
    initial_events_end: bool,
}

fn watch_response(
    shared: &Arc<Shared>,
    target: &Target,
    selector: Selector,
    params: &HashMap<String, String>,
) -> Response {
    let param = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let start = match param("resourceVersion") {
        None | Some("0") => Start::Now,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Start::Since(n),
            Err(_) => {
                return status_response(&KubeStatus::bad_request(format!("invalid resource version {v:?}")));
            }
        },
    };
    let timeout = param("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let bookmarks = param("allowWatchBookmarks") == Some("true");
    let spec = WatchSpec {
        resource: target.resource,
        namespace: target.namespace.clone(),
        selector,
        start,
        timeout: Duration::from_secs(timeout),
        bookmarks,
        initial_events_end: bookmarks && param("sendInitialEvents") == Some("true"),
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(watch_task(shared.clone(), spec, tx));
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok::<_, Infallible>);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({ "type": kind, "object": object }).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(res: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line("BOOKMARK", &json!({ "apiVersion": res.api_version(), "kind": res.kind, "metadata": metadata }))
}

fn too_old(since: u64, floor: u64) -> Bytes {
    line("ERROR", &KubeStatus::gone(format!("too old resource version: {since} ({floor})")).to_json())
}

/// The watch event a change makes for a watcher, if any (selector transitions are ADDED/DELETED).
fn event_for(spec: &WatchSpec, change: &Change) -> Option<Bytes> {
    if change.resource != spec.resource || spec.namespace.as_ref().is_some_and(|ns| *ns != change.namespace) {
        return None;
    }
    let now = spec.selector.matches(&change.new);
    let before = change.old.as_ref().is_some_and(|o| spec.selector.matches(o));
    let kind = match (change.kind, before, now) {
        (ChangeKind::Added, _, true) => "ADDED",
        (ChangeKind::Deleted, b, n) if b || n => "DELETED",
        (ChangeKind::Modified, true, true) => "MODIFIED",
        (ChangeKind::Modified, false, true) => "ADDED",
        (ChangeKind::Modified, true, false) => "DELETED",
        _ => return None,
    };
    Some(line(kind, &change.new))
}

async fn watch_task(shared: Arc<Shared>, spec: WatchSpec, tx: mpsc::Sender<Bytes>) {
    let res = &RESOURCES[spec.resource];
    let mut changes = shared.changes.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = Instant::now() + spec.timeout;
    let send_all = |lines: Vec<Bytes>| {
        let tx = tx.clone();
        async move {
            for l in lines {
                if tx.send(l).await.is_err() {
                    return false;
                }
            }
            true
        }
    };

    changes.borrow_and_update();
    let (mut last, initial) = {
        let state = shared.lock();
        match spec.start {
            Start::Now => {
                let mut lines: Vec<Bytes> = state
                    .objects
                    .iter()
                    .filter(|((r, ns, _), obj)| {
                        *r == spec.resource
                            && spec.namespace.as_ref().is_none_or(|want| want == ns)
                            && spec.selector.matches(obj)
                    })
                    .map(|(_, obj)| line("ADDED", obj))
                    .collect();
                if spec.initial_events_end {
                    lines.push(bookmark(res, state.rv, true));
                }
                (state.rv, lines)
            }
            // Too old: only the error, then the stream ends.
            Start::Since(n) if n < state.floor => (u64::MAX, vec![too_old(n, state.floor)]),
            Start::Since(n) => (n, Vec::new()),
        }
    };
    if last == u64::MAX {
        send_all(initial).await;
        return;
    }
    if !send_all(initial).await {
        return;
    }
    loop {
        changes.borrow_and_update();
        let lines = {
            let state = shared.lock();
            if last < state.floor {
                Err(too_old(last, state.floor))
            } else {
                let from = state.history.partition_point(|c| c.rv <= last);
                let lines: Vec<Bytes> = state.history.range(from..).filter_map(|c| event_for(&spec, c)).collect();
                last = state.rv;
                Ok(lines)
            }
        };
        match lines {
            Ok(lines) => {
                if !send_all(lines).await {
                    return;
                }
            }
            Err(error) => {
                let _ = tx.send(error).await;
                return;
            }
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(shared.options.bookmark_interval) => {
                if spec.bookmarks && tx.send(bookmark(res, last, false)).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if spec.bookmarks {
                    let _ = tx.send(bookmark(res, last, false)).await;
                }
                return;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The fake API server. Stops when dropped.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    outage: crate::outage::Outage,
}

impl FakeKube {
    /// Answer every request whose path contains `path` only after `delay` (`None`: answer at once), as a
    /// sick API server does: the leader's lease renewals hang, say.
    pub fn stall(&self, stall: Option<(&str, Duration)>) {
        self.shared.lock().stall = stall.map(|(p, d)| (p.to_string(), d));
    }

    /// Refuse connections (`true`) as an API server that is down does: new connections are closed at
    /// once and open ones (watches included) fail; `false` serves again.
    pub fn refuse_connections(&self, down: bool) {
        self.outage.set(down);
    }

    /// Start a fake API server on `127.0.0.1:<free port>` with default options.
    pub async fn start() -> FakeKube {
        Self::start_with(FakeKubeOptions::default()).await
    }

    /// Start a fake API server with these options.
    pub async fn start_with(options: FakeKubeOptions) -> FakeKube {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changes: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            options,
            random: std::collections::hash_map::RandomState::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake API server");
        let addr = listener.local_addr().expect("the fake API server's address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let outage = crate::outage::Outage::default();
        let listener = crate::outage::OutageListener::new(listener, outage.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube { addr, shared, server, outage }
    }

    /// The server's URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server whose user authenticates with the bearer token `user`; the fake
    /// records that token as the user of each request ([`KubeRequest::user`]).
    pub fn kubeconfig(&self, user: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
contexts:
- name: fake
  context:
    cluster: fake
    user: {user}
    namespace: default
current-context: fake
users:
- name: {user}
  user:
    token: {user}
",
            url = self.url()
        )
    }

    /// Write a kubeconfig (user `admin`) to `path`, for a child process's `KUBECONFIG`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        self.write_kubeconfig_as(path, "admin")
    }

    /// Write a kubeconfig whose requests carry `user` (see [`FakeKube::kubeconfig`]).
    pub fn write_kubeconfig_as(&self, path: &Path, user: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(user))
    }

    fn resource_of(obj: &Value) -> Result<usize, KubeStatus> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        Self::resource(api_version, kind)
    }

    fn resource(api_version: &str, kind: &str) -> Result<usize, KubeStatus> {
        RESOURCES.iter().position(|r| r.api_version() == api_version && r.kind == kind).ok_or_else(|| {
            KubeStatus::bad_request(format!("no kind {kind:?} is registered for version {api_version:?}"))
        })
    }

    /// Create an object (any served type, by its `apiVersion` and `kind`; namespace `default` if unset),
    /// as a POST would.
    pub fn create(&self, obj: Value) -> Result<Value, KubeStatus> {
        let resource = Self::resource_of(&obj)?;
        let namespace = meta_str(&obj, "namespace").unwrap_or("default").to_string();
        self.shared.write(|s, ctx| s.create(ctx, resource, &namespace, obj))
    }

    /// Replace an object, as a PUT would; without a `metadata.resourceVersion` the current one is used
    /// (an unconditional update). The status of a type with a status subresource is not changed.
    pub fn update(&self, mut obj: Value) -> Result<Value, KubeStatus> {
        let resource = Self::resource_of(&obj)?;
        let namespace = meta_str(&obj, "namespace").unwrap_or("default").to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        self.shared.write(|s, ctx| {
            if meta_str(&obj, "resourceVersion").is_none_or(str::is_empty) {
                let current = s.get(resource, &namespace, &name)?;
                let rv = meta_str(&current, "resourceVersion").unwrap_or_default().to_string();
                meta_mut(&mut obj).insert("resourceVersion".into(), rv.into());
            }
            s.update(ctx, resource, &namespace, &name, obj, false)
        })
    }

    /// Delete an object, as a DELETE would: with finalizers it only gets a `deletionTimestamp`.
    /// Returns the object as the API answers (still there, or as it was when it went).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Value, KubeStatus> {
        let resource = Self::resource(api_version, kind)?;
        self.shared.write(|s, ctx| s.delete(ctx, resource, namespace, name, None))
    }

    /// An object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = Self::resource(api_version, kind).ok()?;
        self.shared.lock().get(resource, namespace, name).ok()
    }

    /// Every object of a type, in every namespace, ordered by namespace and name.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let Ok(resource) = Self::resource(api_version, kind) else { return Vec::new() };
        self.shared.lock().objects.iter().filter(|((r, _, _), _)| *r == resource).map(|(_, v)| v.clone()).collect()
    }

    /// An ApiDeployment, if it exists.
    pub fn api_deployment(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().get(API_DEPLOYMENTS, namespace, name).ok()
    }

    /// Delete an ApiDeployment (see [`FakeKube::delete`]).
    pub fn delete_api_deployment(&self, namespace: &str, name: &str) -> Result<Value, KubeStatus> {
        self.shared.write(|s, ctx| s.delete(ctx, API_DEPLOYMENTS, namespace, name, None))
    }

    /// Every Event (`events.k8s.io/v1` and core `v1`), oldest first.
    pub fn events(&self) -> Vec<Value> {
        let state = self.shared.lock();
        let mut events: Vec<(u64, Value)> = state
            .objects
            .iter()
            .filter(|((r, _, _), _)| *r == EVENTS || *r == CORE_EVENTS)
            .map(|(k, v)| (state.created.get(k).copied().unwrap_or(0), v.clone()))
            .collect();
        events.sort_by_key(|(created, _)| *created);
        events.into_iter().map(|(_, e)| e).collect()
    }

    /// A Lease, if it exists.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().get(LEASES, namespace, name).ok()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<KubeRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Forget the watch history, as etcd compaction would: a watch or a continued list from an older
    /// resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.shared.lock();
        state.floor = state.rv;
        state.history.clear();
    }

    /// Wait until `check` returns `Some` (re-checked after every write), or `timeout` passes.
    pub async fn wait_for<T>(&self, timeout: Duration, mut check: impl FnMut(&FakeKube) -> Option<T>) -> Option<T> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(t) = check(self) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return check(self);
            }
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_and_match() {
        let obj = json!({"metadata": {"labels": {"team": "pay", "tier": "web"}}});
        let m = |s: &str| Selector::parse(Some(s), None).expect("parses").matches(&obj);
        assert!(m("team=pay"));
        assert!(m("team==pay,tier"));
        assert!(!m("team!=pay"));
        assert!(m("env!=prod"));
        assert!(m("!env"));
        assert!(!m("!team"));
        assert!(m("tier in (api, web)"));
        assert!(!m("tier notin (web)"));
        assert!(m("env notin (prod)"));
        assert!(Selector::parse(Some("a b=c"), None).is_err());
        assert!(Selector::parse(None, Some("spec.cluster=x")).is_err());
    }

    #[test]
    fn json_patch_follows_the_api_server() {
        let mut doc = json!({"metadata": {"name": "x"}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["a"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
            {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ]);
        assert!(json_patch(&mut doc, &ops).is_ok());
        assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
        let failing = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "a"}]);
        assert!(matches!(json_patch(&mut doc, &failing), Err(PatchError::Failed(_))));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(42, "ns", "a/b");
        assert_eq!(decode_continue(&token), Some((42, "ns".into(), "a/b".into())));
        assert_eq!(decode_continue("zz"), None);
    }
}
