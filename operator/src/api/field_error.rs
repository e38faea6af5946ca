//! What validation reports: one [`FieldError`] per problem, naming the field and the rule that found it.

use std::fmt;

/// Which rule rejected a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// An OpenAPI keyword of the CRD schema (`enum`, `pattern`, `minimum`, `required`, `unknown`, ...).
    Schema {
        /// The keyword.
        keyword: &'static str,
    },
    /// A CEL rule (`x-kubernetes-validations`) of the CRD schema.
    Cel {
        /// The rule's expression.
        rule: String,
    },
    /// The manifest envelope: apiVersion, kind, metadata.
    Envelope,
    /// Typed decoding.
    Decode,
    /// A rule of the tenancy policy (`tenants[0].taskRoles`).
    Policy {
        /// Where in the policy.
        rule: String,
    },
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the object root (`spec.container.memory`, `spec.service.subnets[0]`).
    pub path: String,
    /// What is wrong, for the person who wrote the manifest.
    pub message: String,
    /// The rule that found it.
    pub source: RuleSource,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
