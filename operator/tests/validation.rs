//! The invalid-manifest corpus against the Rust validator, the committed CRD's own rules, and the CLI.

mod support;

use std::process::Command;

use ecsop::api::{RuleSource, validate_object};
use serde_json::Value;
use support::corpus::{self, Expect};

#[test]
fn the_valid_manifest_is_valid() {
    let resource = validate_object(&corpus::valid()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(resource.spec.container.memory, 512);
    assert!(resource.spec.service.rollout.circuit_breaker.rollback);
}

#[test]
fn defaults_fill_what_a_minimal_manifest_leaves_out() {
    let minimal: Value = serde_yaml::from_str(
        "apiVersion: ecsop.io/v1alpha1\nkind: ApiDeployment\nmetadata: {name: tiny}\nspec:\n  cluster: c\n  image: {repository: tiny, tag: v1}\n  container: {port: 8080, cpu: 256, memory: 512}\n  service: {subnets: [subnet-0a1b2c3d]}\n",
    )
    .expect("yaml");
    let r = validate_object(&minimal).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r.spec.service.replicas, 1);
    assert_eq!(r.spec.revision_history_limit, 5);
    assert_eq!(r.spec.service.rollout.max_percent, 200);
    assert_eq!(r.spec.service.rollout.progress_deadline_seconds, 600);
    assert!(r.spec.service.rollout.circuit_breaker.enabled);
}

#[test]
fn the_corpus_has_at_least_25_distinct_rules() {
    let cases = corpus::cases();
    assert!(cases.len() >= 25, "{}", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
}

#[test]
fn every_invalid_manifest_fails_in_the_rust_validator_naming_the_field() {
    let mut failures = Vec::new();
    for case in corpus::cases() {
        match validate_object(&corpus::manifest(&case)) {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(errors) => {
                let hit = errors.iter().find(|e| e.path == case.path);
                let Some(hit) = hit else {
                    failures.push(format!("{}: no error at {}: {errors:?}", case.name, case.path));
                    continue;
                };
                let source_ok = match (&case.expect, &hit.source) {
                    (Expect::Schema(k), RuleSource::Schema { keyword }) => k == keyword,
                    (Expect::Cel, RuleSource::Cel { .. }) => true,
                    (Expect::Envelope, RuleSource::Envelope) => true,
                    _ => false,
                };
                if !source_ok {
                    failures.push(format!("{}: caught by {:?}, expected {:?}", case.name, hit.source, case.expect));
                }
                if hit.message.is_empty() {
                    failures.push(format!("{}: empty message", case.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn committed_schema() -> Value {
    let crd: Value = serde_yaml::from_str(include_str!("../../crds/apideployments.ecsop.io.yaml")).expect("CRD parses");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").cloned().expect("schema")
}

/// The schema node for a field path such as `spec.service.subnets[0]`.
fn node<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = schema;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, _)) => (n, true),
            None => (part, false),
        };
        cur = cur.get("properties")?.get(name)?;
        if index {
            cur = cur.get("items")?;
        }
    }
    Some(cur)
}

#[test]
fn every_cel_case_is_rejected_by_the_committed_crds_own_cel_rules() {
    let schema = committed_schema();
    let validator = kube_cel::Validator::new();
    let mut failures = Vec::new();
    for case in corpus::cases().into_iter().filter(|c| c.expect == Expect::Cel) {
        match validator.validate(&schema, &corpus::manifest(&case), None) {
            Ok(()) => failures.push(format!("{}: the CRD's CEL rules accept it", case.name)),
            Err(errors) => {
                if !errors.iter().any(|e| e.field_path.trim_start_matches('.') == case.path) {
                    failures.push(format!("{}: no CEL error at {}: {errors:?}", case.name, case.path));
                }
            }
        }
    }
    // The valid manifest passes the same rules.
    if let Err(e) = validator.validate(&schema, &corpus::valid(), None) {
        failures.push(format!("valid manifest rejected by CEL: {e:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_schema_case_has_its_keyword_in_the_committed_crd() {
    let schema = committed_schema();
    let mut failures = Vec::new();
    for case in corpus::cases() {
        let Expect::Schema(keyword) = case.expect else { continue };
        let ok = match keyword {
            // An unknown field is one the parent node does not declare.
            "unknown" => {
                let (parent, field) = case.path.rsplit_once('.').expect("nested");
                node(&schema, parent)
                    .is_some_and(|p| p.get("additionalProperties").is_none() && p["properties"].get(field).is_none())
            }
            "type" => node(&schema, case.path).is_some_and(|n| n.get("type").is_some()),
            k => node(&schema, case.path).is_some_and(|n| n.get(k).is_some()),
        };
        if !ok {
            failures.push(format!("{}: no `{keyword}` at {} in the CRD", case.name, case.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cli_rejects_every_invalid_manifest_with_exit_code_2_naming_file_document_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (i, case) in corpus::cases().iter().enumerate() {
        let file = dir.path().join(format!("case-{i}.yaml"));
        // The broken manifest is the second document, after a valid one.
        let text = format!(
            "{}---\n{}",
            corpus::VALID.replace("name: books-api", "name: first"),
            serde_yaml::to_string(&corpus::manifest(case)).expect("yaml")
        );
        std::fs::write(&file, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_ecsop")).arg("validate").arg("-f").arg(&file).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("case-{i}.yaml (document 2): {}:", case.path);
        if out.status.code() != Some(2) || !stderr.contains(&expected) {
            failures.push(format!("{}: exit {:?}, stderr: {stderr}", case.name, out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_directory_is_read_in_name_order_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("b.yaml"), corpus::VALID.replace("name: books-api", "name: second")).expect("w");
    std::fs::write(dir.path().join("a.yml"), corpus::VALID).expect("w");
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").expect("w");
    let loaded = ecsop::manifest::load(dir.path()).expect("loads");
    let names: Vec<_> = loaded.iter().map(|m| m.resource.metadata.name.clone().unwrap_or_default()).collect();
    assert_eq!(names, ["books-api", "second"]);

    std::fs::write(dir.path().join("c.yaml"), corpus::VALID).expect("w");
    let err = ecsop::manifest::load(dir.path()).expect_err("duplicate");
    assert!(err.to_string().contains("c.yaml (document 1): metadata.name: duplicates the ApiDeployment in"), "{err}");
}
