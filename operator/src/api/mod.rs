//! The `ApiDeployment` API (group `ecsop.io`, version `v1alpha1`): types, CRD and validation.

pub mod field_error;
pub mod openapi;
pub mod spec;
pub mod status;
pub mod tenancy;
pub mod validate;

pub use field_error::{FieldError, RuleSource};
pub use spec::*;
pub use status::*;
pub use validate::{validate, validate_object};

use kube::CustomResourceExt;

/// The CustomResourceDefinition as YAML, exactly as committed in `crds/apideployments.ecsop.io.yaml`.
pub fn crd_yaml() -> String {
    let crd = serde_json::to_value(ApiDeployment::crd()).unwrap_or(serde_json::Value::Null);
    // Keys sorted at every level: serde_json keeps insertion order when any crate in the build enables
    // its `preserve_order` feature (Cargo unifies features across a workspace build), and the committed
    // file must not depend on which crates were built together.
    serde_yaml::to_string(&sorted(crd)).unwrap_or_else(|e| format!("# failed to render the CRD: {e}\n"))
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
