//! The deployment artefacts: the Helm chart (charts/ecsop), the IAM policy (deploy/iam-policy.json),
//! the Grafana dashboard and the Argo CD health check.
//!
//! Helm and Lua are the real ones: `helm-sdkpy` (Helm's own Go library) and `lupa` (Lua 5.1, the
//! dialect of Argo CD's gopher-lua) are installed into a project-owned virtualenv, `.venv-helm/` at
//! the workspace root (or `$ECSOP_HELM_VENV`), on first use. Nothing is skipped: when they cannot be
//! installed the tests fail and say why.
//!
//! Rendering: helm-sdkpy exposes lint but no `helm template`. Lint renders every template with Helm's
//! engine, and in lint mode Helm's `fail` function logs its message instead of aborting. So each
//! configuration is rendered by copying the chart to a temporary directory with that configuration as
//! its values.yaml plus one extra template that `include`s every template file and hands the output to
//! `fail` (base64, between markers); the helper reads Helm's log back. The YAML checked here is thus
//! exactly what Helm renders for those values, not a re-implementation of Go templates.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// What the virtualenv holds. Changing it reinstalls.
const REQUIREMENTS: &str = "helm-sdkpy==0.1.32\nlupa==2.8\n";

/// The Python side: Helm lint (and rendering through it), and Lua 5.1.
const HELPER: &str = r#"
import asyncio, base64, json, os, re, sys, tempfile

def lint(chart):
    import helm_sdkpy
    # Helm logs (lint mode's `fail` included) to file descriptor 2: catch it.
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            result = asyncio.run(helm_sdkpy.chart.Lint(helm_sdkpy.Configuration(namespace="default")).run(chart))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    rendered = {m.group(1): base64.b64decode(m.group(2)).decode("utf-8")
                for m in re.finditer(r"ECSOP-RENDER ([^ ]+) ([A-Za-z0-9+/=]*) END", text)}
    fails = [m.group(1) for m in re.finditer(r'funcMap fail message="(.*)"', text) if "ECSOP-RENDER" not in m.group(1)]
    messages = [{"severity": m.get("Severity"), "path": m.get("Path")} for m in (result.get("Messages") or [])]
    return {"messages": messages, "rendered": rendered, "fails": fails, "log": text[-4000:]}

def lua(script_path):
    from lupa import lua51
    script = open(script_path).read()
    out = []
    for obj in json.load(sys.stdin):
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
        runtime.globals().obj = runtime.table_from(obj, recursive=True)
        hs = runtime.execute(script)
        out.append({"status": hs["status"], "message": hs["message"]})
    return out

command = sys.argv[1]
if command == "lint":
    print(json.dumps([lint(chart) for chart in sys.argv[2:]]))
else:
    print(json.dumps(lua(sys.argv[2])))
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ has a parent").to_path_buf()
}

fn chart_dir() -> PathBuf {
    workspace().join("charts").join("ecsop")
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---- the virtualenv -------------------------------------------------------------------------------

fn python() -> PathBuf {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(install_venv).clone().unwrap_or_else(|e| {
        panic!(
            "helm-sdkpy and lupa are needed to lint the chart and run the Argo CD health check, and could \
             not be installed: {e}\n(needs python3 with the venv module and access to PyPI; set \
             ECSOP_HELM_VENV to use another virtualenv, ECSOP_PYTHON for another interpreter)"
        )
    })
}

fn install_venv() -> Result<PathBuf, String> {
    let root = workspace();
    let venv = std::env::var_os("ECSOP_HELM_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv-helm"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    // One process at a time installs; the others wait, then find the marker.
    let lock_path = target.join("ecsop-helm-venv.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let python = venv.join("bin").join("python");
    let marker = venv.join(".ecsop-requirements");
    if python.exists() && fs::read_to_string(&marker).ok().as_deref() == Some(REQUIREMENTS) {
        return Ok(python);
    }
    let interpreter = std::env::var("ECSOP_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&interpreter).arg("-m").arg("venv").arg(&venv), "creating the virtualenv")?;
    // helm-sdkpy declares Python >= 3.12 but works on 3.11 (see CONTRIBUTING.md).
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--ignore-requires-python"])
            .args(REQUIREMENTS.lines()),
        "pip install helm-sdkpy lupa",
    )?;
    fs::write(&marker, REQUIREMENTS).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

fn helper(args: &[&str], stdin: Option<&str>) -> Json {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(HELPER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the Python helper");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.unwrap_or("").as_bytes()).expect("writing to the helper");
    }
    let out = child.wait_with_output().expect("running the Python helper");
    assert!(
        out.status.success(),
        "the helper ({args:?}) exited with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the helper's answer is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

// ---- rendering ------------------------------------------------------------------------------------

/// Lint-mode `fail` output of one configuration.
#[derive(Debug)]
struct Rendered {
    /// template file name (`rbac.yaml`) -> rendered text.
    files: BTreeMap<String, String>,
    /// Messages of `fail` calls of the chart itself (configuration errors).
    fails: Vec<String>,
    /// Lint findings: (severity, path). Helm: 1 info, 2 warning, 3 error.
    findings: Vec<(i64, String)>,
    log: String,
}

impl Rendered {
    /// Every Kubernetes object rendered, NOTES.txt aside.
    fn objects(&self) -> Vec<Yaml> {
        let mut out = Vec::new();
        for (file, text) in &self.files {
            if !file.ends_with(".yaml") {
                continue;
            }
            for doc in serde_yaml::Deserializer::from_str(text) {
                let value = <Yaml as serde::Deserialize>::deserialize(doc)
                    .unwrap_or_else(|e| panic!("templates/{file} renders invalid YAML ({e}):\n{text}"));
                if !value.is_null() {
                    out.push(value);
                }
            }
        }
        out
    }

    fn of_kind(&self, kind: &str) -> Vec<Yaml> {
        self.objects().into_iter().filter(|o| str_at(o, &["kind"]) == Some(kind)).collect()
    }

    fn one(&self, kind: &str) -> Yaml {
        let all = self.of_kind(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, got {}", all.len());
        all.into_iter().next().expect("one")
    }
}

/// The configurations the tests look at, as values.yaml overrides.
const VARIANTS: &[(&str, &str)] = &[
    ("default", ""),
    ("all-namespaces-ha", "replicas: 3\n"),
    (
        "scoped",
        "watch: {namespace: team-a, selector: 'team=payments'}\nleaderElection: {enabled: true, leaseName: payments-leader}\n\
         region: eu-west-1\naws: {endpointUrl: 'http://moto:5000', credentialsSecret: ecsop-aws}\n\
         extraEnv: [{name: AWS_MAX_ATTEMPTS, value: '5'}]\nawsCallsPerSecond: 40\n\
         tenancy: {admission: false, tenants: [{name: payments, namespaces: [team-a], clusters: ['*']}]}\n",
    ),
    ("scoped-single", "watch: {namespace: team-b}\n"),
    (
        "observability",
        "serviceMonitor: {enabled: true, labels: {release: prometheus}}\n\
         dashboard: {enabled: true, namespace: monitoring, annotations: {grafana_folder: ecsop}}\n\
         serviceAccount: {annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::123456789012:role/ecsop'}}\n",
    ),
    ("two-writers", "replicas: 2\nleaderElection: {enabled: false}\n"),
    ("tenancy", TENANCY_VALUES),
    // Refused by values.schema.json.
    ("invalid-values", "logFormat: xml\nconcurrency: 0\nresync: soon\n"),
];

type Renders = (Vec<(i64, String)>, BTreeMap<String, Rendered>);

/// Every configuration rendered, and the committed chart linted, in one run of the helper.
fn renders() -> &'static Renders {
    static ALL: OnceLock<Renders> = OnceLock::new();
    ALL.get_or_init(render_all)
}

fn rendered(variant: &str) -> &'static Rendered {
    renders().1.get(variant).unwrap_or_else(|| panic!("no variant {variant}"))
}

/// Lint findings of the chart as committed (no extra template, its own values.yaml).
fn pristine_lint() -> &'static [(i64, String)] {
    &renders().0
}

fn render_all() -> Renders {
    let chart = chart_dir();
    let base: Yaml = serde_yaml::from_str(&read(chart.join("values.yaml"))).expect("values.yaml parses");
    let templates: Vec<String> = fs::read_dir(chart.join("templates"))
        .expect("templates/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && (n.ends_with(".yaml") || n == "NOTES.txt"))
        .collect();
    let dump = format!(
        "{{{{- range $f := list {} }}}}\n{{{{- fail (printf \"ECSOP-RENDER %s %s END\" $f (include (print $.Template.BasePath \"/\" $f) $ | b64enc)) }}}}\n{{{{- end }}}}\n",
        templates.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" ")
    );
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut paths = vec![chart.to_string_lossy().into_owned()];
    for (name, overrides) in VARIANTS {
        let dir = tmp.path().join(name);
        copy_dir(&chart, &dir);
        let mut values = base.clone();
        if !overrides.is_empty() {
            merge(&mut values, serde_yaml::from_str(overrides).expect("override YAML"));
        }
        fs::write(dir.join("values.yaml"), serde_yaml::to_string(&values).expect("values")).expect("values.yaml");
        fs::write(dir.join("templates").join("zz-ecsop-render.yaml"), &dump).expect("dump template");
        paths.push(dir.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = std::iter::once("lint").chain(paths.iter().map(String::as_str)).collect();
    let answer = helper(&args, None);
    let results = answer.as_array().expect("a list of lint results");
    let findings = |r: &Json| -> Vec<(i64, String)> {
        r["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| (m["severity"].as_i64().unwrap_or(0), m["path"].as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pristine = findings(&results[0]);
    let mut map = BTreeMap::new();
    for ((name, _), r) in VARIANTS.iter().zip(&results[1..]) {
        let files: BTreeMap<String, String> = serde_json::from_value(r["rendered"].clone()).expect("rendered");
        let fails: Vec<String> = serde_json::from_value(r["fails"].clone()).expect("fails");
        let log = r["log"].as_str().unwrap_or("").to_string();
        assert!(
            name.starts_with("invalid") || files.len() == templates.len(),
            "variant {name}: expected {} rendered templates, got {:?}; Helm's log:\n{log}",
            templates.len(),
            files.keys().collect::<Vec<_>>()
        );
        map.insert(name.to_string(), Rendered { files, fails, findings: findings(r), log });
    }
    (pristine, map)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn merge(base: &mut Yaml, overrides: Yaml) {
    match (base, overrides) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Yaml::as_str)
}

fn strings(v: Option<&Yaml>) -> Vec<String> {
    v.and_then(Yaml::as_sequence)
        .map(|s| s.iter().map(|x| x.as_str().expect("a string").to_string()).collect())
        .unwrap_or_default()
}

// ---- CRD ------------------------------------------------------------------------------------------

#[test]
fn chart_crd_is_the_committed_crd() {
    let committed = read(workspace().join("crds/apideployments.ecsop.io.yaml"));
    let chart = read(chart_dir().join("crds/apideployments.ecsop.io.yaml"));
    assert!(
        chart == committed,
        "charts/ecsop/crds/apideployments.ecsop.io.yaml differs from crds/apideployments.ecsop.io.yaml: re-sync it \
         with\n\n    cp crds/apideployments.ecsop.io.yaml charts/ecsop/crds/\n\n(crds/ itself is generated by \
         `cargo run -p ecsop -- crd`)"
    );
}

// ---- helm lint ------------------------------------------------------------------------------------

fn assert_lint_clean(what: &str, findings: &[(i64, String)], log: &str) {
    // helm-sdkpy serialises lint messages without their text: the path and severity are all there is.
    let bad: Vec<_> = findings.iter().filter(|(severity, _)| *severity >= 2).collect();
    assert!(
        bad.is_empty(),
        "helm lint of {what} found warnings or errors (severity 2 warning, 3 error) in {bad:?}; run `helm lint \
         --strict charts/ecsop` for the text. Helm's log:\n{log}"
    );
}

#[test]
fn helm_lint_passes() {
    assert_lint_clean("charts/ecsop", pristine_lint(), "");
    for (name, _) in VARIANTS.iter().filter(|(n, _)| !n.starts_with("invalid")) {
        let r = rendered(name);
        assert_lint_clean(&format!("charts/ecsop with the {name} values"), &r.findings, &r.log);
    }
    assert!(rendered("default").fails.is_empty(), "the default values fail: {:?}", rendered("default").fails);
}

#[test]
fn every_configuration_renders_with_its_notes() {
    for (name, _) in VARIANTS.iter().filter(|(n, _)| *n != "two-writers" && !n.starts_with("invalid")) {
        let r = rendered(name);
        assert!(r.fails.is_empty(), "variant {name} fails: {:?}", r.fails);
        let notes = &r.files["NOTES.txt"];
        assert!(notes.contains("kubectl wait --for=condition=Ready"), "{notes}");
    }
    assert!(
        rendered("scoped").files["NOTES.txt"].contains("ApiDeployments of namespace team-a labelled team=payments")
    );
}

#[test]
fn values_outside_the_schema_fail_lint() {
    let r = rendered("invalid-values");
    assert!(
        r.findings.iter().any(|(severity, path)| *severity >= 3 && path == "values.yaml"),
        "logFormat: xml, concurrency: 0 and resync: soon must fail values.schema.json; findings: {:?}",
        r.findings
    );
}

#[test]
fn replicas_without_leader_election_are_refused() {
    let r = rendered("two-writers");
    assert!(
        r.fails.iter().any(|f| f.contains("replicas > 1 needs leaderElection")),
        "replicas: 2 with leaderElection.enabled: false must fail; fails: {:?}",
        r.fails
    );
}

// ---- RBAC -----------------------------------------------------------------------------------------

/// One permission: (API group, resource, resourceNames, verb).
type Grant = (String, String, Vec<String>, String);

fn grants(role: &Yaml) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in at(role, &["rules"]).and_then(Yaml::as_sequence).expect("rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "no nonResourceURLs: {rule:?}");
        let names = strings(rule.get("resourceNames"));
        for group in strings(rule.get("apiGroups")) {
            for resource in strings(rule.get("resources")) {
                for verb in strings(rule.get("verbs")) {
                    out.insert((group.clone(), resource.clone(), names.clone(), verb));
                }
            }
        }
    }
    out
}

fn grant(group: &str, resource: &str, names: &[&str], verb: &str) -> Grant {
    (group.into(), resource.into(), names.iter().map(|s| s.to_string()).collect(), verb.into())
}

/// What the reconciler uses, by API call (see the comment at the top of templates/rbac.yaml).
fn watch_grants() -> BTreeSet<Grant> {
    [
        grant("ecsop.io", "apideployments", &[], "get"),
        grant("ecsop.io", "apideployments", &[], "list"),
        grant("ecsop.io", "apideployments", &[], "watch"),
        grant("ecsop.io", "apideployments", &[], "patch"),
        grant("ecsop.io", "apideployments/status", &[], "patch"),
        grant("events.k8s.io", "events", &[], "create"),
        grant("events.k8s.io", "events", &[], "patch"),
    ]
    .into()
}

fn lease_grants(lease: &str) -> BTreeSet<Grant> {
    [
        grant("coordination.k8s.io", "leases", &[], "create"),
        grant("coordination.k8s.io", "leases", &[lease], "get"),
        grant("coordination.k8s.io", "leases", &[lease], "update"),
    ]
    .into()
}

/// The Kubernetes API calls in the controller's source, each mapped to the grant it needs. A call not
/// listed here fails the test: add its verb to templates/rbac.yaml and here.
#[test]
fn controller_source_makes_only_the_calls_the_rbac_covers() {
    let src = workspace().join("operator/src/controller");
    let known: BTreeMap<(&str, &str), &str> = [
        (("status.rs", "patch_status"), "apideployments/status patch (server-side apply of status)"),
        (("reconcile.rs", "get_opt"), "apideployments get (reconcile reads the object; the watch caches metadata)"),
        (("leader.rs", "get_opt"), "leases get"),
        (("leader.rs", "create"), "leases create"),
        (("leader.rs", "replace"), "leases update"),
    ]
    .into();
    let call = regex::Regex::new(
        r"\b(?:api|leases|events|apideployments)\s*\.\s*(get|get_opt|get_status|list|watch|create|replace|replace_status|patch|patch_status|patch_metadata|delete|delete_collection|entry)\s*[:(]",
    )
    .expect("regex");
    let mut found = BTreeSet::new();
    let mut files: Vec<String> = fs::read_dir(&src)
        .expect("controller/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rs"))
        .collect();
    files.sort();
    for file in files.iter().map(String::as_str) {
        let text = read(src.join(file));
        for c in call.captures_iter(&text) {
            let verb = c.get(1).expect("verb").as_str();
            let key = *known.keys().find(|k| **k == (file, verb)).unwrap_or(&(file, "unknown"));
            assert!(
                known.contains_key(&(file, verb)),
                "operator/src/controller/{file} calls `.{verb}(` on the Kubernetes API: grant it in \
                 charts/ecsop/templates/rbac.yaml and list it in this test"
            );
            found.insert(key);
        }
    }
    assert_eq!(found, known.keys().copied().collect(), "calls the RBAC accounts for have gone: drop their grants");
    // The grants that come from kube-runtime rather than direct calls.
    let controller = files.iter().map(|f| read(src.join(f))).collect::<String>();
    for (anchor, why) in [
        ("Controller::new(", "apideployments list, watch"),
        ("finalizer::finalizer(", "apideployments patch (JSON patch of metadata.finalizers)"),
        ("Recorder::new(", "events.k8s.io events create, patch"),
    ] {
        assert!(controller.contains(anchor), "{anchor} is gone from the controller: revisit the grant for {why}");
    }
}

fn assert_no_wildcards(objects: &[Yaml]) {
    for o in objects {
        let kind = str_at(o, &["kind"]).unwrap_or("");
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        for rule in at(o, &["rules"]).and_then(Yaml::as_sequence).expect("rules") {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for s in strings(rule.get(field)) {
                    assert!(!s.contains('*'), "{kind} rule has a wildcard in {field}: {rule:?}");
                }
            }
        }
        assert!(o.get("aggregationRule").is_none(), "no aggregated roles");
    }
}

fn subject_is_the_operator(binding: &Yaml, deployment: &Yaml) {
    let subjects = at(binding, &["subjects"]).and_then(Yaml::as_sequence).expect("subjects");
    assert_eq!(subjects.len(), 1, "{binding:?}");
    let s = &subjects[0];
    assert_eq!(str_at(s, &["kind"]), Some("ServiceAccount"));
    assert_eq!(
        str_at(s, &["name"]),
        str_at(deployment, &["spec", "template", "spec", "serviceAccountName"]),
        "the binding's subject is the operator's service account"
    );
    assert_eq!(s.get("namespace"), deployment.get("metadata").and_then(|m| m.get("namespace")));
}

fn env_of(deployment: &Yaml) -> BTreeMap<String, Yaml> {
    let container = &at(deployment, &["spec", "template", "spec", "containers"])
        .and_then(Yaml::as_sequence)
        .expect("containers")[0];
    at(container, &["env"])
        .and_then(Yaml::as_sequence)
        .expect("env")
        .iter()
        .map(|e| (str_at(e, &["name"]).expect("name").to_string(), e.clone()))
        .collect()
}

fn env_value(deployment: &Yaml, name: &str) -> Option<String> {
    env_of(deployment).get(name).and_then(|e| str_at(e, &["value"])).map(str::to_string)
}

#[test]
fn rbac_grants_exactly_what_the_controller_uses_and_no_wildcards() {
    struct Case {
        variant: &'static str,
        watch_namespace: Option<&'static str>,
        lease: Option<&'static str>,
    }
    let cases = [
        Case { variant: "default", watch_namespace: None, lease: None },
        Case { variant: "all-namespaces-ha", watch_namespace: None, lease: Some("test-release-ecsop-leader") },
        Case { variant: "scoped", watch_namespace: Some("team-a"), lease: Some("payments-leader") },
        Case { variant: "scoped-single", watch_namespace: Some("team-b"), lease: None },
        Case { variant: "observability", watch_namespace: None, lease: None },
    ];
    for case in cases {
        let r = rendered(case.variant);
        let objects = r.objects();
        assert_no_wildcards(&objects);
        let deployment = r.one("Deployment");
        let release_ns = deployment.get("metadata").and_then(|m| m.get("namespace")).cloned();
        let roles = r.of_kind("Role");
        let cluster_roles = r.of_kind("ClusterRole");
        let role_bindings = r.of_kind("RoleBinding");
        let cluster_bindings = r.of_kind("ClusterRoleBinding");

        // The watch permissions: cluster-wide only when watching every namespace.
        let watch_role = match case.watch_namespace {
            None => {
                assert_eq!(cluster_roles.len(), 1, "{}: one ClusterRole", case.variant);
                assert_eq!(cluster_bindings.len(), 1, "{}: one ClusterRoleBinding", case.variant);
                let binding = &cluster_bindings[0];
                assert_eq!(str_at(binding, &["roleRef", "kind"]), Some("ClusterRole"));
                assert_eq!(str_at(binding, &["roleRef", "name"]), str_at(&cluster_roles[0], &["metadata", "name"]));
                subject_is_the_operator(binding, &deployment);
                assert_eq!(env_value(&deployment, "ECSOP_NAMESPACE"), None);
                cluster_roles[0].clone()
            }
            Some(ns) => {
                assert!(
                    cluster_roles.is_empty() && cluster_bindings.is_empty(),
                    "{}: nothing cluster-wide",
                    case.variant
                );
                let role = roles
                    .iter()
                    .find(|r| str_at(r, &["metadata", "namespace"]) == Some(ns))
                    .unwrap_or_else(|| panic!("{}: a Role in {ns}", case.variant))
                    .clone();
                let binding = role_bindings
                    .iter()
                    .find(|b| str_at(b, &["metadata", "namespace"]) == Some(ns))
                    .unwrap_or_else(|| panic!("{}: a RoleBinding in {ns}", case.variant));
                assert_eq!(str_at(binding, &["roleRef", "kind"]), Some("Role"));
                assert_eq!(str_at(binding, &["roleRef", "name"]), str_at(&role, &["metadata", "name"]));
                subject_is_the_operator(binding, &deployment);
                assert_eq!(env_value(&deployment, "ECSOP_NAMESPACE").as_deref(), Some(ns));
                role
            }
        };
        assert_eq!(grants(&watch_role), watch_grants(), "{}: the watch role", case.variant);

        // The Lease permissions: only with leader election, only in the release namespace.
        let lease_roles: Vec<&Yaml> =
            roles.iter().filter(|r| grants(r).iter().any(|(g, _, _, _)| g == "coordination.k8s.io")).collect();
        match case.lease {
            None => {
                assert!(lease_roles.is_empty(), "{}: no lease permissions without leader election", case.variant);
                assert_eq!(env_value(&deployment, "ECSOP_LEADER_ELECTION").as_deref(), Some("false"));
            }
            Some(lease) => {
                assert_eq!(lease_roles.len(), 1, "{}: one lease Role", case.variant);
                let role = lease_roles[0];
                assert_eq!(role.get("metadata").and_then(|m| m.get("namespace")).cloned(), release_ns);
                assert_eq!(grants(role), lease_grants(lease), "{}: the lease role", case.variant);
                let name = str_at(role, &["metadata", "name"]);
                let binding = role_bindings
                    .iter()
                    .find(|b| str_at(b, &["roleRef", "name"]) == name)
                    .unwrap_or_else(|| panic!("{}: the lease Role is bound", case.variant));
                subject_is_the_operator(binding, &deployment);
                assert_eq!(env_value(&deployment, "ECSOP_LEADER_ELECTION").as_deref(), Some("true"));
                assert_eq!(env_value(&deployment, "ECSOP_LEASE_NAME").as_deref(), Some(lease));
            }
        }
        // Nothing else grants anything.
        let expected_roles = 1 + usize::from(case.lease.is_some());
        assert_eq!(roles.len() + cluster_roles.len(), expected_roles, "{}: no other roles", case.variant);
        assert_eq!(role_bindings.len() + cluster_bindings.len(), expected_roles, "{}: no other bindings", case.variant);
    }
}

// ---- the Deployment -------------------------------------------------------------------------------

/// The environment variables `ecsop run` reads, from the `env = "..."` of its flags in cli/mod.rs.
fn cli_env() -> BTreeSet<String> {
    let cli = read(workspace().join("operator/src/cli/mod.rs"));
    let re = regex::Regex::new(r#"env\s*=\s*"([A-Z_]+)""#).expect("regex");
    let names: BTreeSet<String> = re.captures_iter(&cli).map(|c| c[1].to_string()).collect();
    assert!(names.contains("ECSOP_NAMESPACE") && names.contains("POD_NAME"), "cli.rs flags: {names:?}");
    names
}

#[test]
fn deployment_is_locked_down_and_configured_from_values() {
    let cli = cli_env();
    for (name, _) in VARIANTS.iter().filter(|(n, _)| *n != "two-writers" && !n.starts_with("invalid")) {
        let deployment = rendered(name).one("Deployment");
        let pod = at(&deployment, &["spec", "template", "spec"]).expect("pod spec");
        let containers = at(pod, &["containers"]).and_then(Yaml::as_sequence).expect("containers");
        assert_eq!(containers.len(), 1);
        let c = &containers[0];
        assert_eq!(strings(c.get("args")), ["run"], "{name}: runs `ecsop run`");

        // Non-root, read-only, no escalation, no capabilities, seccomp.
        assert_eq!(at(pod, &["securityContext", "runAsNonRoot"]).and_then(Yaml::as_bool), Some(true), "{name}");
        assert_eq!(str_at(pod, &["securityContext", "seccompProfile", "type"]), Some("RuntimeDefault"), "{name}");
        let sc = at(c, &["securityContext"]).expect("container securityContext");
        assert_eq!(at(sc, &["runAsNonRoot"]).and_then(Yaml::as_bool), Some(true), "{name}");
        assert_eq!(at(sc, &["readOnlyRootFilesystem"]).and_then(Yaml::as_bool), Some(true), "{name}");
        assert_eq!(at(sc, &["allowPrivilegeEscalation"]).and_then(Yaml::as_bool), Some(false), "{name}");
        assert_ne!(at(sc, &["privileged"]).and_then(Yaml::as_bool), Some(true), "{name}");
        assert_eq!(strings(at(sc, &["capabilities", "drop"])), ["ALL"], "{name}");
        assert!(at(sc, &["capabilities", "add"]).is_none(), "{name}");
        assert_eq!(str_at(sc, &["seccompProfile", "type"]), Some("RuntimeDefault"), "{name}");
        assert!(at(pod, &["hostNetwork"]).is_none() && at(pod, &["hostPID"]).is_none(), "{name}");

        // Requests and limits for both resources.
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(at(c, &["resources", kind, resource]).is_some(), "{name}: resources.{kind}.{resource}");
            }
        }

        // Probes on the admin port, which is where ECSOP_ADMIN_ADDR binds.
        let port = at(c, &["ports"]).and_then(Yaml::as_sequence).expect("ports")[0].clone();
        assert_eq!(str_at(&port, &["name"]), Some("admin"));
        let number = at(&port, &["containerPort"]).and_then(Yaml::as_u64).expect("containerPort");
        assert_eq!(env_value(&deployment, "ECSOP_ADMIN_ADDR"), Some(format!("0.0.0.0:{number}")), "{name}");
        assert_eq!(str_at(c, &["livenessProbe", "httpGet", "path"]), Some("/healthz"), "{name}");
        assert_eq!(str_at(c, &["livenessProbe", "httpGet", "port"]), Some("admin"), "{name}");
        assert_eq!(str_at(c, &["readinessProbe", "httpGet", "path"]), Some("/readyz"), "{name}");
        assert_eq!(str_at(c, &["readinessProbe", "httpGet", "port"]), Some("admin"), "{name}");

        // Environment: the binary's own variables only, the downward API for the pod's identity.
        let env = env_of(&deployment);
        for var in env.keys().filter(|k| k.starts_with("ECSOP_") || k.starts_with("POD_")) {
            assert!(cli.contains(var), "{name}: {var} is not read by `ecsop run` (cli.rs declares {cli:?})");
        }
        assert_eq!(str_at(&env["POD_NAME"], &["valueFrom", "fieldRef", "fieldPath"]), Some("metadata.name"));
        assert_eq!(str_at(&env["POD_NAMESPACE"], &["valueFrom", "fieldRef", "fieldPath"]), Some("metadata.namespace"));
        for var in [
            "ECSOP_CONCURRENCY",
            "ECSOP_RESYNC",
            "ECSOP_ROLLOUT_POLL",
            "ECSOP_DEEP_EVERY",
            "ECSOP_LOG_FORMAT",
            "RUST_LOG",
        ] {
            assert!(env_value(&deployment, var).is_some(), "{name}: {var} is set");
        }

        // Two pods of a release never both write: without a Lease the old pod goes first.
        let leader = env_value(&deployment, "ECSOP_LEADER_ELECTION").as_deref() == Some("true");
        let strategy = str_at(&deployment, &["spec", "strategy", "type"]);
        assert_eq!(strategy, Some(if leader { "RollingUpdate" } else { "Recreate" }), "{name}");
        let replicas = at(&deployment, &["spec", "replicas"]).and_then(Yaml::as_u64).expect("replicas");
        assert!(replicas <= 1 || leader, "{name}: {replicas} replicas need leader election");
    }

    // The fully configured variant sets every variable `ecsop run` reads.
    let scoped = rendered("scoped").one("Deployment");
    let env = env_of(&scoped);
    for var in &cli {
        assert!(env.contains_key(var), "the scoped variant sets {var}");
    }
    assert_eq!(env_value(&scoped, "ECSOP_SELECTOR").as_deref(), Some("team=payments"));
    assert_eq!(env_value(&scoped, "ECSOP_AWS_CALLS_PER_SECOND").as_deref(), Some("40"));
    assert_eq!(env_value(&rendered("default").one("Deployment"), "ECSOP_AWS_CALLS_PER_SECOND"), None);
    assert_eq!(env_value(&scoped, "AWS_REGION").as_deref(), Some("eu-west-1"));
    assert_eq!(env_value(&scoped, "AWS_ENDPOINT_URL").as_deref(), Some("http://moto:5000"));
    assert_eq!(env_value(&scoped, "AWS_MAX_ATTEMPTS").as_deref(), Some("5"));
    let container =
        &at(&scoped, &["spec", "template", "spec", "containers"]).and_then(Yaml::as_sequence).expect("c")[0];
    assert_eq!(
        str_at(&at(container, &["envFrom"]).and_then(Yaml::as_sequence).expect("envFrom")[0], &["secretRef", "name"]),
        Some("ecsop-aws")
    );
    // No region configured: AWS_REGION is left to the SDK's chain (IRSA and Pod Identity inject it).
    assert_eq!(env_value(&rendered("default").one("Deployment"), "AWS_REGION"), None);
}

#[test]
fn service_account_service_monitor_and_dashboard_follow_their_values() {
    let default = rendered("default");
    assert!(default.of_kind("ServiceMonitor").is_empty(), "no ServiceMonitor by default");
    assert!(default.of_kind("ConfigMap").is_empty(), "no dashboard by default");
    let service = default.one("Service");
    let port = &at(&service, &["spec", "ports"]).and_then(Yaml::as_sequence).expect("ports")[0];
    assert_eq!(str_at(port, &["targetPort"]), Some("admin"));

    let obs = rendered("observability");
    let sa = obs.one("ServiceAccount");
    assert_eq!(
        str_at(&sa, &["metadata", "annotations", "eks.amazonaws.com/role-arn"]),
        Some("arn:aws:iam::123456789012:role/ecsop"),
        "IRSA annotation on the service account"
    );
    let monitor = obs.one("ServiceMonitor");
    assert_eq!(str_at(&monitor, &["metadata", "labels", "release"]), Some("prometheus"));
    let endpoint = &at(&monitor, &["spec", "endpoints"]).and_then(Yaml::as_sequence).expect("endpoints")[0];
    assert_eq!(str_at(endpoint, &["port"]), Some("admin"));
    assert_eq!(str_at(endpoint, &["path"]), Some("/metrics"));
    assert_eq!(
        at(&monitor, &["spec", "selector", "matchLabels"]),
        at(&obs.one("Service"), &["spec", "selector"]),
        "the ServiceMonitor selects the admin Service"
    );
    let dashboard = obs.one("ConfigMap");
    assert_eq!(str_at(&dashboard, &["metadata", "labels", "grafana_dashboard"]), Some("1"));
    assert_eq!(str_at(&dashboard, &["metadata", "namespace"]), Some("monitoring"));
    assert_eq!(str_at(&dashboard, &["metadata", "annotations", "grafana_folder"]), Some("ecsop"));
    let json = str_at(&dashboard, &["data", "ecsop.json"]).expect("data.ecsop.json");
    let shipped: Json = serde_json::from_str(&read(chart_dir().join("dashboards/ecsop.json"))).expect("dashboard JSON");
    let in_configmap: Json = serde_json::from_str(json).expect("the ConfigMap holds JSON");
    assert_eq!(in_configmap, shipped, "the ConfigMap carries dashboards/ecsop.json unchanged");
}

// ---- the Grafana dashboard ------------------------------------------------------------------------

/// The sample names `ecsop run` exposes, from a live registry (one observation of each metric).
fn exposed_metrics() -> BTreeSet<String> {
    use ecsop::aws::{CallRecord, Outcome};
    let m = ecsop::metrics::Metrics::default();
    m.reconciled(0.01, Some("throttled"));
    m.aws_call(&CallRecord {
        service: "ecs",
        operation: "DescribeServices",
        outcome: Outcome::Ok,
        duration: std::time::Duration::from_millis(3),
        budget_wait: std::time::Duration::from_millis(1),
    });
    m.set_aws_budget(Some(40.0));
    m.rollout("completed", "canary");
    m.analysed("ns/a", "errors", "passed", Some(0.001), Some(0.002));
    m.drift_corrected();
    m.set_ready("ns/a", Some("True"));
    m.set_leader(true);
    let text = m.render();
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().expect("a name");
        names.insert(name.to_string());
    }
    names
}

/// Metric -> labels, from the table in the module doc of operator/src/metrics.rs.
fn documented_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let src = read(workspace().join("operator/src/metrics.rs"));
    let row = regex::Regex::new(r"^//! \| `(ecsop_[a-z_]+)` \| ([^|]*)\|").expect("regex");
    let label = regex::Regex::new(r"`([a-z_]+)`").expect("regex");
    let mut out = BTreeMap::new();
    for line in src.lines() {
        if let Some(c) = row.captures(line) {
            // Only the first backticked words of the labels column are label names; the rest are values
            // in parentheses.
            let labels_col = c[2].split('(').next().unwrap_or("").to_string();
            let labels = label.captures_iter(&labels_col).map(|l| l[1].to_string()).collect();
            out.insert(c[1].to_string(), labels);
        }
    }
    out
}

fn dashboard_queries(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition" | "query", Json::String(s)) => out.push(s.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| dashboard_queries(i, out)),
        _ => {}
    }
}

#[test]
fn dashboard_references_only_metrics_ecsop_exposes() {
    let exposed = exposed_metrics();
    let documented = documented_metrics();
    // The module doc and the registry agree (counters gain `_total`, the histogram `_bucket` & co.).
    for name in documented.keys() {
        let present = exposed.contains(name) || exposed.contains(&format!("{name}_bucket"));
        assert!(present, "metrics.rs documents {name}, which the registry does not expose: {exposed:?}");
    }
    let dashboard: Json =
        serde_json::from_str(&read(chart_dir().join("dashboards/ecsop.json"))).expect("dashboard JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "queries: {queries:?}");
    let metric = regex::Regex::new(r"\b(ecsop_[a-z0-9_]+)(\{([^}]*)\})?").expect("regex");
    let matcher = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)"#).expect("regex");
    // Labels the scrape adds (Prometheus Operator ServiceMonitor, or a plain scrape config).
    let grouping = regex::Regex::new(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)").expect("regex");
    let target_labels = ["namespace", "instance", "job", "pod", "service", "container", "endpoint"];
    let mut used = BTreeSet::new();
    for q in &queries {
        for c in metric.captures_iter(q) {
            let name = c[1].to_string();
            assert!(exposed.contains(&name), "the dashboard queries {name}, which ecsop does not expose ({q})");
            let family = if documented.contains_key(&name) {
                name.clone()
            } else {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| documented.contains_key(*f)))
                    .unwrap_or(&name)
                    .to_string()
            };
            let labels = documented.get(&family).unwrap_or_else(|| panic!("{family} is not in metrics.rs's table"));
            if let Some(m) = c.get(3) {
                for l in matcher.captures_iter(m.as_str()) {
                    let l = &l[1];
                    assert!(
                        labels.contains(l) || target_labels.contains(&l),
                        "{q}: {family} has no label {l} (labels: {labels:?})"
                    );
                }
            }
            used.insert(family);
        }
        // Grouping and matching labels exist on the query's metrics (or are added by the scrape).
        let in_query: BTreeSet<&String> = metric
            .captures_iter(q)
            .filter_map(|c| {
                let name = &c[1];
                documented.keys().find(|f| {
                    name == f.as_str()
                        || name.strip_prefix(f.as_str()).is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
                })
            })
            .flat_map(|f| documented[f].iter())
            .collect();
        for c in grouping.captures_iter(q) {
            for l in c[2].split(',').map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    in_query.contains(&l.to_string()) || target_labels.contains(&l) || l == "le",
                    "{q}: `{} ({})` names {l}, which none of its metrics has",
                    &c[1],
                    &c[2]
                );
            }
        }
    }
    for needed in [
        "ecsop_rollouts_total",
        "ecsop_reconcile_errors_total",
        "ecsop_reconcile_duration_seconds",
        "ecsop_aws_calls_total",
        "ecsop_apideployments",
        "ecsop_leader",
    ] {
        assert!(used.contains(needed), "the dashboard has no panel on {needed}");
    }
    let q = queries.join("\n");
    assert!(q.contains("histogram_quantile(0.5,") && q.contains("histogram_quantile(0.99,"), "p50 and p99 latency");
    assert!(q.contains("outcome=\"throttled\""), "a throttling panel");
    // A Prometheus datasource variable that every panel uses.
    let vars = dashboard["templating"]["list"].as_array().expect("templating");
    assert!(vars.iter().any(|v| v["type"] == "datasource" && v["query"] == "prometheus" && v["name"] == "datasource"));
    for panel in dashboard["panels"].as_array().expect("panels").iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {} uses the datasource variable",
            panel["title"]
        );
    }
}

// ---- the Argo CD health check ---------------------------------------------------------------------

#[test]
fn argocd_health_check_passes_every_fixture() {
    let dir = chart_dir().join("argocd");
    let mut names = Vec::new();
    let mut inputs = Vec::new();
    let mut expected = Vec::new();
    let mut entries: Vec<_> =
        fs::read_dir(dir.join("testdata")).expect("testdata").map(|e| e.expect("e").path()).collect();
    entries.sort();
    for path in entries.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let case: Json = serde_yaml::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            case["input"].is_object() && case["expected"]["status"].is_string(),
            "{}: input and expected",
            path.display()
        );
        names.push(path.file_name().expect("name").to_string_lossy().into_owned());
        inputs.push(case["input"].clone());
        expected.push(case["expected"].clone());
    }
    let statuses: BTreeSet<&str> = expected.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses, ["Degraded", "Healthy", "Progressing", "Suspended"].into(), "fixtures cover every status");
    let script = dir.join("health.lua");
    let got = helper(&["lua", &script.to_string_lossy()], Some(&Json::Array(inputs).to_string()));
    let got = got.as_array().expect("a list");
    let mut failures = Vec::new();
    for ((name, want), got) in names.iter().zip(&expected).zip(got) {
        if got != want {
            failures.push(format!("{name}: expected {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "health.lua disagrees with its fixtures:\n{}", failures.join("\n"));

    // The argocd-cm snippet in the chart README carries this very script.
    let readme = read(chart_dir().join("README.md"));
    for line in read(&script).lines().filter(|l| !l.trim().is_empty()) {
        assert!(readme.contains(line), "charts/ecsop/README.md's argocd-cm snippet lacks health.lua's line {line:?}");
    }
}

// ---- the IAM policy -------------------------------------------------------------------------------

/// `service:Operation` of every SDK operation the adapters in operator/src/aws call.
fn adapter_operations() -> BTreeSet<String> {
    let call = regex::Regex::new(r"\bclient\s*\.\s*([a-z_]+)\s*\(").expect("regex");
    let mut out = BTreeSet::new();
    for (file, prefix) in [
        ("ecs.rs", "ecs"),
        ("ecr.rs", "ecr"),
        ("elbv2.rs", "elasticloadbalancing"),
        ("cloudmap.rs", "servicediscovery"),
        ("autoscaling.rs", "application-autoscaling"),
        ("cloudwatch.rs", "cloudwatch"),
        ("apigateway.rs", "apigateway"),
    ] {
        let text = read(workspace().join("operator/src/aws").join(file));
        for c in call.captures_iter(&text) {
            let op = &c[1];
            if op == "clone" {
                continue;
            }
            if prefix == "apigateway" {
                // API Gateway's IAM actions are the HTTP methods of its REST paths.
                let verb = match op.split('_').next() {
                    Some("get") => "GET",
                    Some("create") => "POST",
                    Some("update") => "PATCH",
                    Some("delete") => "DELETE",
                    other => panic!("apigateway operation {op} ({other:?}) has no IAM verb here"),
                };
                out.insert(format!("apigateway:{verb}"));
                continue;
            }
            let pascal: String = op
                .split('_')
                .map(|w| {
                    let mut chars = w.chars();
                    chars.next().map(|f| f.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
                })
                .collect();
            out.insert(format!("{prefix}:{pascal}"));
        }
    }
    // Adapters of other services would need their own statements.
    for entry in fs::read_dir(workspace().join("operator/src/aws")).expect("aws/") {
        let name = entry.expect("e").file_name().to_string_lossy().into_owned();
        let known = [
            "ecs.rs",
            "ecr.rs",
            "elbv2.rs",
            "cloudmap.rs",
            "autoscaling.rs",
            "cloudwatch.rs",
            "apigateway.rs",
            "batch.rs",
            "calls.rs",
            "error.rs",
            "limiter.rs",
            "taskdef.rs",
            "mod.rs",
        ];
        assert!(
            known.contains(&name.as_str()),
            "new AWS module operator/src/aws/{name}: cover it in deploy/iam-policy.json and here"
        );
    }
    assert!(out.len() >= 40, "found only {out:?}");
    out
}

/// Actions a call needs besides its own (AWS's dependent actions).
const DEPENDENT: &[&str] = &[
    "iam:PassRole",                // the task and execution roles in RegisterTaskDefinition
    "iam:CreateServiceLinkedRole", // RegisterScalableTarget, first time in an account
    "cloudwatch:PutMetricAlarm",   // PutScalingPolicy (target tracking creates the alarms)
    "cloudwatch:DescribeAlarms",
    "cloudwatch:DeleteAlarms", // DeleteScalingPolicy, DeregisterScalableTarget
];

/// Writes that cannot carry a tag condition, each explained in deploy/iam-policy.md.
const UNCONDITIONED_WRITES: &[&str] = &[
    "ecs:DeregisterTaskDefinition",
    "ecs:StopServiceDeployment",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:DeleteScalingPolicy",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:StartImageScan",
    "apigateway:POST",
    "apigateway:PATCH",
    "apigateway:DELETE",
];

fn is_read(action: &str) -> bool {
    let op = action.split(':').nth(1).unwrap_or("");
    op == "GET" || ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p))
}

fn is_create(action: &str) -> bool {
    let op = action.split(':').nth(1).unwrap_or("");
    (op.starts_with("Create") || op.starts_with("Register"))
        && !action.starts_with("application-autoscaling:")
        && !action.starts_with("iam:")
}

fn as_list(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().map(|x| x.as_str().expect("a string").to_string()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn iam_policy_allows_exactly_the_adapters_operations_with_tag_conditions() {
    let text = read(workspace().join("deploy/iam-policy.json"));
    let policy: Json = serde_json::from_str(&text).expect("deploy/iam-policy.json is JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    // A customer managed policy holds at most 6,144 characters, whitespace not counted.
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    assert!(size <= 6144, "the policy is {size} characters; a managed policy holds 6144");

    let statements = policy["Statement"].as_array().expect("Statement");
    let mut allowed = BTreeSet::new();
    let mut sids = BTreeSet::new();
    let managed_by = |cond: &Json, key: &str| cond["StringEquals"][key] == "ecsop";
    for s in statements {
        let sid = s["Sid"].as_str().expect("every statement has a Sid");
        assert!(sids.insert(sid.to_string()), "duplicate Sid {sid}");
        assert_eq!(s["Effect"], "Allow", "{sid}");
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none(), "{sid}: no NotAction/NotResource");
        let actions = as_list(&s["Action"]);
        let cond = &s["Condition"];
        for a in &actions {
            assert!(!a.contains('*'), "{sid}: wildcard action {a}");
            allowed.insert(a.clone());
            // Tagging on create: ECS and ELB say so in a condition key; ECR, CloudWatch and Cloud Map have
            // none, and Cloud Map's tagging has no resource-level permissions (deploy/iam-policy.md).
            let tag_on_create = cond["StringEquals"].get("ecs:CreateAction").is_some()
                || cond["StringEquals"].get("elasticloadbalancing:CreateAction").is_some()
                || ["TagOnCreate", "CreateOnlyTaggedAsEcsop"].contains(&sid);
            if is_read(a) {
                continue;
            } else if is_create(a) {
                assert!(
                    managed_by(cond, "aws:RequestTag/ecsop.io/managed-by"),
                    "{sid}: {a} must require the request tag"
                );
            } else if tag_on_create {
                assert!(
                    managed_by(cond, "aws:RequestTag/ecsop.io/managed-by"),
                    "{sid}: tagging on create must require the ownership tag"
                );
            } else if a == "servicediscovery:UntagResource" {
                // No resource-level permissions and no resource tag: only which tags (below).
                assert_eq!(s["Resource"], "*", "{sid}");
            } else if a == "iam:PassRole" {
                // Tasks (task and execution roles) and ECS itself (the infrastructure role), nothing else.
                assert_eq!(
                    cond["StringEquals"]["iam:PassedToService"],
                    serde_json::json!(["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]),
                    "{sid}"
                );
                assert_eq!(s["Resource"], "arn:aws:iam::*:role/ecsop/*", "{sid}: only roles under the path /ecsop/");
            } else if a == "iam:CreateServiceLinkedRole" {
                assert_eq!(cond["StringEquals"]["iam:AWSServiceName"], "ecs.application-autoscaling.amazonaws.com");
            } else if UNCONDITIONED_WRITES.contains(&a.as_str()) {
                assert!(cond.is_null(), "{sid}: {a} is documented as not tag-conditioned; update deploy/iam-policy.md");
            } else {
                assert!(
                    managed_by(cond, "aws:ResourceTag/ecsop.io/managed-by"),
                    "{sid}: {a} changes an existing resource and must require aws:ResourceTag/ecsop.io/managed-by=ecsop"
                );
            }
            if a.ends_with(":TagResource")
                || a.ends_with(":UntagResource")
                || a.ends_with(":AddTags")
                || a.ends_with(":RemoveTags")
            {
                assert_eq!(
                    cond["ForAllValues:StringLike"]["aws:TagKeys"],
                    serde_json::json!(["ecsop.io/*"]),
                    "{sid}: {a} may only touch ecsop.io/ tags"
                );
            }
        }
    }

    let used = adapter_operations();
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(missing.is_empty(), "the adapters call operations the policy does not allow: {missing:?}");
    let dependent: BTreeSet<String> = DEPENDENT.iter().map(|s| s.to_string()).collect();
    let extra: Vec<_> = allowed.difference(&used).filter(|a| !dependent.contains(*a)).collect();
    assert!(extra.is_empty(), "the policy allows operations no adapter calls: {extra:?}");

    // What the IAM policy engine of `tests/iam.rs` has no data for (ELBv2 tagging of target groups and
    // rules, API Gateway v2 paths) is checked here by shape: each grant exists, on these resources.
    let grants = |action: &str, resource: &str, create_action: Option<&str>| {
        statements.iter().any(|s| {
            as_list(&s["Action"]).iter().any(|a| a == action)
                && as_list(&s["Resource"]).iter().any(|r| r == resource)
                && create_action.is_none_or(|c| {
                    as_list(&s["Condition"]["StringEquals"]["elasticloadbalancing:CreateAction"]).iter().any(|x| x == c)
                        && managed_by(&s["Condition"], "aws:RequestTag/ecsop.io/managed-by")
                })
        })
    };
    let unsimulated = [
        ("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*", Some("CreateTargetGroup")),
        (
            "elasticloadbalancing:AddTags",
            "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*/*",
            Some("CreateRule"),
        ),
        ("apigateway:GET", "arn:aws:apigateway:*::/apis/*/stages/*", None),
        ("apigateway:POST", "arn:aws:apigateway:*::/apis/*/deployments", None),
        ("apigateway:POST", "arn:aws:apigateway:*::/apis/*/integrations", None),
        ("apigateway:PATCH", "arn:aws:apigateway:*::/apis/*/routes/*", None),
        ("apigateway:DELETE", "arn:aws:apigateway:*::/apis/*/authorizers/*", None),
    ];
    for (action, resource, create_action) in unsimulated {
        assert!(
            grants(action, resource, create_action),
            "no statement grants {action} on {resource} ({create_action:?})"
        );
    }

    // Each write that cannot be tag-conditioned is explained.
    let doc = read(workspace().join("deploy/iam-policy.md"));
    for a in UNCONDITIONED_WRITES {
        assert!(doc.contains(a), "deploy/iam-policy.md does not explain why {a} has no tag condition");
    }
}

// ---- the tenancy policy ---------------------------------------------------------------------------

/// Two tenants, with every kind of grant; patterns with regex characters and wildcards.
const TENANCY_VALUES: &str = "tenancy:
  admission: true
  tenants:
    - name: team-a
      namespaces: [team-a, team-a-*]
      regions: [us-east-1]
      clusters: [api-cluster]
      subnets: ['subnet-*']
      securityGroups: [sg-0123456789abcdef0]
      taskRoles: ['arn:aws:iam::123456789012:role/tenants/team-a/*']
      executionRoles: ['arn:aws:iam::123456789012:role/tenants/team-a/*']
      secrets: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/*']
      logGroups: ['/ecs/team-a/*']
      repositories: [books-api, 'team-a/*']
      promotionRepositories: ['team-a/*']
      serviceDiscoveryNamespaces: [ns-abcdefgh12345678]
      listeners:
        - arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/*'
          hosts: ['*.Team-A.example.com', books.example.com]
          paths: ['/books*', '/team-a/*']
      httpApis:
        - id: a1b2c3d4e5
          routes: ['/api/v1/books*', '/team-a/*']
    - name: everything-for-platform
      namespaces: [platform]
      regions: ['*']
      clusters: ['*']
      subnets: ['*']
      securityGroups: ['*']
      repositories: ['*']
      listeners: [{arn: '*', hosts: ['*'], paths: ['*']}]
";

fn yaml_to_json(v: &Yaml) -> Json {
    serde_json::to_value(v).expect("YAML as JSON")
}

/// ApiDeployments to judge: `tests/valid.yaml` in `namespace`, changed by `change`.
fn tenancy_case(namespace: &str, change: impl FnOnce(&mut Json)) -> Json {
    let mut v: Json = serde_yaml::from_str(include_str!("valid.yaml")).expect("valid.yaml");
    v["metadata"]["namespace"] = namespace.into();
    v["spec"]["image"]["repository"] = "books-api".into();
    v["spec"].as_object_mut().expect("spec").remove("ecr");
    let c = &mut v["spec"]["container"];
    c["taskRoleArn"] = "arn:aws:iam::123456789012:role/tenants/team-a/books".into();
    c["executionRoleArn"] = "arn:aws:iam::123456789012:role/tenants/team-a/exec".into();
    c["secrets"] =
        serde_json::json!({"DATABASE_URL": "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/db-url"});
    c["logGroup"] = "/ecs/team-a/books".into();
    v["spec"]["service"]["subnets"] = serde_json::json!(["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    v["spec"]["service"]["securityGroups"] = serde_json::json!(["sg-0123456789abcdef0"]);
    change(&mut v);
    v
}

#[test]
fn the_tenancy_policy_is_rendered_for_ecsop_and_for_admission_and_both_judge_alike() {
    use ecsop::api::tenancy::TenancyPolicy;
    use kube_cel::{AdmissionRequest, VapEvaluator, VapExpression};
    use serde_json::json;

    let r = rendered("tenancy");
    assert!(r.fails.is_empty(), "{:?}", r.fails);
    let cm = r
        .of_kind("ConfigMap")
        .into_iter()
        .find(|c| str_at(c, &["metadata", "name"]).is_some_and(|n| n.ends_with("-tenancy")));
    let cm = yaml_to_json(&cm.expect("the tenancy ConfigMap"));
    let data: BTreeMap<String, String> = serde_json::from_value(cm["data"].clone()).expect("string data");

    // ecsop's copy is the values' tenants; the admission parameters are what ecsop itself derives from it.
    let policy: TenancyPolicy = serde_yaml::from_str(&data["tenancy.yaml"]).expect("tenancy.yaml");
    assert_eq!(policy.tenants.len(), 2);
    let mut expected = policy.admission_params();
    expected.insert("tenancy.yaml".into(), data["tenancy.yaml"].clone());
    assert_eq!(data, expected, "the chart's regular expressions differ from ecsop's");

    // The operator reads the file; a new policy rolls the pods.
    let deployment = r.one("Deployment");
    assert_eq!(env_value(&deployment, "ECSOP_TENANCY_POLICY").as_deref(), Some("/etc/ecsop/tenancy/tenancy.yaml"));
    let pod = yaml_to_json(&deployment)["spec"]["template"].clone();
    assert!(pod["metadata"]["annotations"]["ecsop.io/tenancy-checksum"].is_string(), "{pod:#}");
    assert_eq!(
        pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter(|v| v["configMap"]["name"] == cm["metadata"]["name"])
            .count(),
        1
    );

    // The admission policy reads that ConfigMap.
    let vap = yaml_to_json(&r.one("ValidatingAdmissionPolicy"));
    let binding = yaml_to_json(&r.one("ValidatingAdmissionPolicyBinding"));
    assert_eq!(binding["spec"]["paramRef"]["name"], cm["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(vap["spec"]["paramKind"], json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    let validations: Vec<VapExpression> = vap["spec"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .map(|v| VapExpression {
            expression: v["expression"].as_str().expect("expression").into(),
            message: v["message"].as_str().map(str::to_string),
            message_expression: None,
        })
        .collect();

    let role = |r: &str| format!("arn:aws:iam::123456789012:role/tenants/{r}");
    let cases: Vec<(&str, bool, Json)> = vec![
        ("team-a, as valid.yaml names things", true, tenancy_case("team-a", |_| {})),
        ("team-a-payments matches team-a-*", true, tenancy_case("team-a-payments", |_| {})),
        ("a namespace of no tenant", false, tenancy_case("team-z", |_| {})),
        (
            "the platform may use everything",
            true,
            tenancy_case("platform", |v| {
                v["spec"]["image"]["repository"] = "anything".into();
                let container = v["spec"]["container"].as_object_mut().expect("container");
                for field in ["secrets", "taskRoleArn", "executionRoleArn", "logGroup"] {
                    container.remove(field);
                }
                v["spec"]["service"].as_object_mut().expect("service").remove("serviceDiscovery");
            }),
        ),
        (
            "another team's task role",
            false,
            tenancy_case("team-a", |v| v["spec"]["container"]["taskRoleArn"] = role("team-b/admin").into()),
        ),
        (
            "its own task role",
            true,
            tenancy_case("team-a", |v| v["spec"]["container"]["taskRoleArn"] = role("team-a/books").into()),
        ),
        (
            "another team's secret",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["container"]["secrets"] =
                    json!({"DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-b/db"});
            }),
        ),
        ("another cluster", false, tenancy_case("team-a", |v| v["spec"]["cluster"] = "payments".into())),
        ("another region", false, tenancy_case("team-a", |v| v["spec"]["region"] = "eu-west-1".into())),
        (
            "a security group not granted",
            false,
            tenancy_case("team-a", |v| v["spec"]["service"]["securityGroups"] = json!(["sg-ffffffffffffffff0"])),
        ),
        (
            "a host under its domain (the pattern in capitals)",
            true,
            tenancy_case("team-a", |v| v["spec"]["loadBalancer"]["hosts"] = json!(["api.team-a.example.com"])),
        ),
        (
            "a wider host",
            false,
            tenancy_case("team-a", |v| v["spec"]["loadBalancer"]["hosts"] = json!(["*.example.com"])),
        ),
        (
            "no host condition claims every host",
            false,
            tenancy_case("team-a", |v| v["spec"]["loadBalancer"]["hosts"] = json!([])),
        ),
        (
            "a path outside its prefixes",
            false,
            tenancy_case("team-a", |v| v["spec"]["loadBalancer"]["paths"] = json!(["/movies*"])),
        ),
        (
            "a path inside",
            true,
            tenancy_case("team-a", |v| v["spec"]["loadBalancer"]["paths"] = json!(["/team-a/v2/*"])),
        ),
        (
            "another listener",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["loadBalancer"]["listenerArn"] = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/other/50dc6c495c0c9188/f2f7dc8efc522ab2".into();
            }),
        ),
        (
            "a promotion in its own repository",
            true,
            tenancy_case("team-a", |v| {
                v["spec"]["image"]["repository"] = "team-a/books".into();
                v["spec"]["image"]["promotionTag"] = "prod-current".into();
            }),
        ),
        (
            "a promotion in a shared repository",
            false,
            tenancy_case("team-a", |v| v["spec"]["image"]["promotionTag"] = "prod-current".into()),
        ),
        (
            "a Cloud Map namespace not granted",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["service"]["serviceDiscovery"]["namespaceId"] = "ns-zzzzzzzzzzzzzzzz".into()
            }),
        ),
        (
            "an HTTP API route outside its prefixes",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["apiGateway"] =
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0a1b2c", "routes": [{"key": "GET /movies/{id}"}]});
            }),
        ),
        (
            "HTTP API routes inside",
            true,
            tenancy_case("team-a", |v| {
                v["spec"]["apiGateway"] = json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0a1b2c", "routes": [{"key": "ANY /api/v1/books/{proxy+}"}, {"key": "POST /team-a/login"}]});
            }),
        ),
        (
            "another HTTP API",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["apiGateway"] =
                    json!({"apiId": "zzzzzzzzzz", "vpcLinkId": "vl0a1b2c", "routes": [{"key": "GET /team-a/x"}]});
            }),
        ),
        (
            "a greedy route at the root catches everything",
            false,
            tenancy_case("team-a", |v| {
                v["spec"]["apiGateway"] =
                    json!({"apiId": "a1b2c3d4e5", "vpcLinkId": "vl0a1b2c", "routes": [{"key": "ANY /{proxy+}"}]});
            }),
        ),
    ];
    let params = cm.clone();
    let mut disagreements = Vec::new();
    for (what, allowed, object) in &cases {
        let typed = ecsop::api::validate_object(object)
            .unwrap_or_else(|e| panic!("{what}: the case is not a valid manifest: {e:?}"));
        let ecsop_says = policy.check(&typed, "us-east-1");
        let namespace = object["metadata"]["namespace"].as_str().expect("namespace").to_string();
        let evaluator = VapEvaluator::builder()
            .object(object.clone())
            .params(params.clone())
            .request(AdmissionRequest { operation: "CREATE".into(), namespace, ..Default::default() })
            .build();
        let results = evaluator.evaluate(&validations);
        let broken: Vec<_> = results
            .iter()
            .filter(|r| r.message.as_deref().is_some_and(|m| m.contains("error") || m.contains("non-boolean")))
            .collect();
        assert!(broken.is_empty(), "{what}: the admission policy's CEL does not evaluate: {broken:#?}");
        let admission_allows = results.iter().all(|r| r.passed);
        if ecsop_says.is_ok() != *allowed || admission_allows != *allowed {
            disagreements.push(format!(
                "{what}: expected {}, ecsop {:?}, admission {:?}",
                if *allowed { "allowed" } else { "refused" },
                ecsop_says.err().map(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>()),
                results.iter().filter(|r| !r.passed).map(|r| r.message.clone()).collect::<Vec<_>>()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));

    // Admission can be left to ecsop alone (clusters before 1.30), and without tenants nothing is rendered.
    assert!(rendered("scoped").of_kind("ValidatingAdmissionPolicy").is_empty());
    assert_eq!(
        env_value(&rendered("scoped").one("Deployment"), "ECSOP_TENANCY_POLICY").as_deref(),
        Some("/etc/ecsop/tenancy/tenancy.yaml")
    );
    assert!(rendered("default").of_kind("ValidatingAdmissionPolicy").is_empty());
    assert_eq!(env_value(&rendered("default").one("Deployment"), "ECSOP_TENANCY_POLICY"), None);
}
