//! The generated CRD: committed copy in sync, a valid structural schema, CEL rules within budget.

use serde_json::Value;

const COMMITTED: &str = include_str!("../../crds/apideployments.ecsop.io.yaml");

#[test]
fn committed_crd_matches_the_generated_one() {
    let generated = ecsop::api::crd_yaml();
    assert!(
        generated == COMMITTED,
        "crds/apideployments.ecsop.io.yaml is stale: regenerate it with\n\n    cargo run -p ecsop -- crd > crds/apideployments.ecsop.io.yaml\n\nand commit the result"
    );
}

fn schema() -> Value {
    let crd: Value = serde_yaml::from_str(COMMITTED).expect("CRD YAML parses");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").cloned().expect("openAPIV3Schema")
}

/// Walks every node and collects violations of the apiextensions.k8s.io/v1 structural-schema rules.
fn structural_violations(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    if obj.contains_key("$ref") {
        out.push(format!("{path}: unresolved $ref"));
    }
    for key in ["definitions", "$defs", "$schema", "patternProperties", "dependencies", "id"] {
        if obj.contains_key(key) {
            out.push(format!("{path}: `{key}` is not allowed in a CRD schema"));
        }
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    match obj.get("type").and_then(Value::as_str) {
        Some("object" | "array" | "string" | "integer" | "number" | "boolean") => {}
        Some(other) => out.push(format!("{path}: unknown type {other}")),
        None if int_or_string || preserve => {}
        None => out.push(format!("{path}: node has no type")),
    }
    if obj.get("type").and_then(Value::as_str) == Some("array") && !obj.contains_key("items") {
        out.push(format!("{path}: array without items"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!("{path}: properties and additionalProperties are mutually exclusive"));
    }
    // Fields need a description for `kubectl explain`; list items and map values are described by
    // their field.
    let is_field = !path.is_empty() && !path.ends_with("[]") && !path.ends_with("{}");
    if is_field && !obj.contains_key("description") {
        out.push(format!("{path}: no description (kubectl explain would show nothing)"));
    }
    // Inside the logical junctors, a structural schema may only restate value validations.
    for junctor in ["anyOf", "oneOf", "allOf", "not"] {
        if let Some(branches) = obj.get(junctor) {
            let branches: Vec<&Value> = match branches {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for (i, b) in branches.iter().enumerate() {
                for forbidden in ["type", "description", "default", "nullable", "additionalProperties", "title"] {
                    if b.get(forbidden).is_some() {
                        out.push(format!("{path}.{junctor}[{i}]: `{forbidden}` is not allowed inside {junctor}"));
                    }
                }
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            structural_violations(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        structural_violations(items, &format!("{path}[]"), out);
    }
    if let Some(extra @ Value::Object(_)) = obj.get("additionalProperties") {
        structural_violations(extra, &format!("{path}{{}}"), out);
    }
}

#[test]
fn the_schema_is_structural() {
    let mut violations = Vec::new();
    let schema = schema();
    structural_violations(&schema, "", &mut violations);
    assert!(violations.is_empty(), "not a structural schema:\n{}", violations.join("\n"));
    // metadata is typed by the API server itself; a CRD may at most say "object".
    let metadata = schema.pointer("/properties/metadata");
    assert!(metadata.is_none() || metadata == Some(&serde_json::json!({"type": "object"})), "{metadata:?}");
}

#[test]
fn the_structural_check_catches_a_bad_schema() {
    let bad = serde_json::json!({"type": "object", "properties": {
        "a": {"description": "x", "$ref": "#/definitions/A"},
        "b": {"description": "y", "type": "string", "anyOf": [{"type": "string"}]}
    }});
    let mut violations = Vec::new();
    structural_violations(&bad, "", &mut violations);
    assert!(violations.iter().any(|v| v.contains("unresolved $ref")), "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("`type` is not allowed inside anyOf")), "{violations:?}");
}

fn collect_rules(node: &Value, path: &str, out: &mut Vec<(String, Value, String)>) {
    if let Some(rules) = node.get("x-kubernetes-validations").and_then(Value::as_array) {
        for r in rules {
            out.push((path.to_string(), node.clone(), r["rule"].as_str().unwrap_or_default().to_string()));
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            collect_rules(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        collect_rules(items, &format!("{path}[]"), out);
    }
    if let Some(extra @ Value::Object(_)) = node.get("additionalProperties") {
        collect_rules(extra, &format!("{path}{{}}"), out);
    }
}

#[test]
fn every_cel_rule_compiles_and_fits_the_api_servers_cost_budget() {
    let mut rules = Vec::new();
    collect_rules(&schema(), "", &mut rules);
    assert!(rules.len() >= 14, "expected the CEL rules of the spec, found {}", rules.len());
    let mut problems = Vec::new();
    for (path, node, rule) in &rules {
        let compiled = kube_cel::compile_schema(node);
        if compiled.has_errors() {
            problems.push(format!("{path}: {rule}: does not compile: {:?}", compiled.compilation_errors()));
        }
        // kube-cel's scope check does not know the variables that macros such as `all(k, ...)` bind.
        let bound: Vec<String> = macro_variables(rule);
        for w in kube_cel::analyze_rule(rule, &compiled, kube_cel::ScopeContext::CrdValidation) {
            if w.kind == kube_cel::WarningKind::WrongScope
                && bound.iter().any(|v| w.message.contains(&format!("'{v}'")))
            {
                continue;
            }
            problems.push(format!("{path}: {rule}: {:?}: {}", w.kind, w.message));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Variables bound by CEL comprehension macros (`self.all(k, ...)`) in a rule.
fn macro_variables(rule: &str) -> Vec<String> {
    let re =
        regex::Regex::new(r"\.(all|exists|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,").expect("regex");
    re.captures_iter(rule).map(|c| c[2].to_string()).collect()
}
