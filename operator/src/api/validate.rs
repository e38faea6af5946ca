//! Client-side validation of an ApiDeployment, with the rules the API server runs.
//!
//! Three layers, each reporting every problem with its field path:
//! 1. the CRD's OpenAPI keywords ([`super::openapi`]),
//! 2. the CRD's CEL rules, evaluated by `kube-cel` exactly as written in the CRD,
//! 3. typed decoding into [`ApiDeployment`] (catches nothing the first two pass, but keeps the types
//!    honest if the schema and the structs ever disagree).

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value;

use super::field_error::{FieldError, RuleSource};
use super::openapi;
use super::spec::ApiDeployment;

/// The `openAPIV3Schema` of the CRD, as JSON.
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = ApiDeployment::crd();
        let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref());
        serde_json::to_value(schema).unwrap_or(Value::Null)
    })
}

fn compiled_cel() -> &'static (kube_cel::Validator, kube_cel::CompiledSchema) {
    static CEL: OnceLock<(kube_cel::Validator, kube_cel::CompiledSchema)> = OnceLock::new();
    CEL.get_or_init(|| (kube_cel::Validator::new(), kube_cel::compile_schema(schema())))
}

/// Validate a whole ApiDeployment object (apiVersion, kind, metadata, spec) given as JSON, returning
/// the typed object or every problem found.
pub fn validate_object(object: &Value) -> Result<ApiDeployment, Vec<FieldError>> {
    let mut errors = envelope(object);
    let schema = schema();
    // apiVersion, kind and metadata are the API server's own; the envelope check covers them.
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        for key in ["apiVersion", "kind", "metadata"] {
            map.remove(key);
        }
    }
    openapi::check(schema, &body, "", &mut errors);
    errors.extend(cel(object, !errors.is_empty()));
    if !errors.is_empty() {
        return Err(dedup(errors));
    }
    let deserializer = object.clone();
    serde_path_to_error::deserialize::<_, ApiDeployment>(deserializer).map_err(|e| {
        vec![FieldError { path: e.path().to_string(), message: e.inner().to_string(), source: RuleSource::Decode }]
    })
}

/// Validate an ApiDeployment already in typed form (as the controller receives it).
pub fn validate(resource: &ApiDeployment) -> Result<(), Vec<FieldError>> {
    let value = serde_json::to_value(resource)
        .map_err(|e| vec![FieldError { path: String::new(), message: e.to_string(), source: RuleSource::Decode }])?;
    validate_object(&value).map(|_| ())
}

fn cel(object: &Value, schema_failed: bool) -> Vec<FieldError> {
    let (validator, compiled) = compiled_cel();
    match validator.validate_compiled(compiled, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            // A rule over a field of the wrong type fails to evaluate; the schema error already says why.
            .filter(|e| !schema_failed || e.kind == kube_cel::ErrorKind::ValidationFailure)
            .map(|e| FieldError {
                path: e.field_path.trim_start_matches('.').to_string(),
                message: e.message.clone(),
                source: RuleSource::Cel { rule: e.rule.clone() },
            })
            .collect(),
    }
}

/// apiVersion, kind and the metadata ecsop derives AWS names from.
fn envelope(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |path: &str, message: String| {
        errors.push(FieldError { path: path.into(), message, source: RuleSource::Envelope })
    };
    match object.get("apiVersion").and_then(Value::as_str) {
        Some("ecsop.io/v1alpha1") => {}
        Some(other) => fail("apiVersion", format!("must be ecsop.io/v1alpha1, got {other:?}")),
        None => fail("apiVersion", "is required (ecsop.io/v1alpha1)".into()),
    }
    match object.get("kind").and_then(Value::as_str) {
        Some("ApiDeployment") => {}
        Some(other) => fail("kind", format!("must be ApiDeployment, got {other:?}")),
        None => fail("kind", "is required (ApiDeployment)".into()),
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    match name {
        None => fail("metadata.name", "is required".into()),
        // The ECS service is named after it and the task family is <namespace>-<name>: a DNS label
        // fits both (no dots, which ECS names refuse).
        Some(n) if !is_dns_label(n) => fail(
            "metadata.name",
            format!("{n:?} must be a DNS label: lowercase letters, digits and '-', at most 63 characters"),
        ),
        Some(_) => {}
    }
    if let Some(ns) = object.pointer("/metadata/namespace") {
        match ns.as_str() {
            Some(n) if is_dns_label(n) => {}
            _ => fail("metadata.namespace", format!("{ns} must be a DNS label")),
        }
    }
    if object.get("spec").is_none() {
        fail("spec", "is required".into());
    }
    errors
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dedup(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.path.clone(), e.message.clone())));
    errors
}
