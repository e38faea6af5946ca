//! The `ApiDeployment` API (group `ecsop.io`, version `v1alpha1`): types, CRD and validation.

pub mod openapi;
pub mod spec;
pub mod status;
pub mod validate;

pub use spec::*;
pub use status::*;
pub use validate::{FieldError, RuleSource, validate, validate_object};

use kube::CustomResourceExt;

/// The CustomResourceDefinition as YAML, exactly as committed in `crds/apideployments.ecsop.io.yaml`.
pub fn crd_yaml() -> String {
    let crd = ApiDeployment::crd();
    // serde_yaml renders deterministically (struct order, sorted maps), so the committed file can be
    // compared byte for byte.
    serde_yaml::to_string(&crd).unwrap_or_else(|e| format!("# failed to render the CRD: {e}\n"))
}
