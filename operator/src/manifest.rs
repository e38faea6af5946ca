//! Reading ApiDeployment manifests from a file or a directory of YAML files (multi-document allowed).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApiDeployment, FieldError, RuleSource, validate_object};

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// The document's position in the file, from 1.
    pub document: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file.display(), self.document)
    }
}

/// A validated ApiDeployment and where it was read.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The source.
    pub location: Location,
    /// The resource, namespace defaulted to `default`.
    pub resource: ApiDeployment,
}

/// Every problem of one document.
#[derive(Debug, Clone)]
pub struct DocumentErrors {
    /// The document.
    pub location: Location,
    /// Its problems.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for DocumentErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "{}: {e}", self.location)?;
        }
        Ok(())
    }
}

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The path holds no manifest at all.
    #[error("no ApiDeployment manifests found in {0}")]
    Empty(PathBuf),
    /// One or more documents are invalid; nothing was loaded.
    #[error("{}", render(.0))]
    Invalid(Vec<DocumentErrors>),
}

fn render(docs: &[DocumentErrors]) -> String {
    let count: usize = docs.iter().map(|d| d.errors.len()).sum();
    let mut out = format!("{count} problem(s) in the manifests; nothing was changed:\n");
    for d in docs {
        out.push_str(&d.to_string());
    }
    out.trim_end().to_string()
}

/// Check every manifest against the platform team's tenancy policy (the same check the controller
/// makes): all violations, as problems of their documents, before anything is done.
pub fn check_policy(
    manifests: &[Manifest],
    policy: &crate::api::tenancy::TenancyPolicy,
    default_region: &str,
) -> Result<(), LoadError> {
    let invalid: Vec<DocumentErrors> = manifests
        .iter()
        .filter_map(|m| {
            let errors = policy.check(&m.resource, default_region).err()?;
            let errors = errors
                .into_iter()
                .map(|e| FieldError { message: format!("PolicyViolation: {}", e.message), ..e })
                .collect();
            Some(DocumentErrors { location: m.location.clone(), errors })
        })
        .collect();
    if invalid.is_empty() { Ok(()) } else { Err(LoadError::Invalid(invalid)) }
}

/// Load every ApiDeployment in `path` (a file, or a directory whose `.yaml`/`.yml` files are read in
/// name order). All documents are validated; if any is invalid, every problem is returned and none
/// is loaded, so a CLI run never acts on half a directory.
pub fn load(path: &Path) -> Result<Vec<Manifest>, LoadError> {
    let files = files(path)?;
    let mut manifests = Vec::new();
    let mut invalid = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io { path: file.clone(), source })?;
        let (ok, bad) = parse(&file, &text);
        manifests.extend(ok);
        invalid.extend(bad);
    }
    if !invalid.is_empty() {
        return Err(LoadError::Invalid(invalid));
    }
    if manifests.is_empty() {
        return Err(LoadError::Empty(path.to_path_buf()));
    }
    let mut seen = std::collections::HashMap::new();
    for m in &manifests {
        let key = (m.resource.metadata.namespace.clone(), m.resource.metadata.name.clone());
        if let Some(first) = seen.insert(key, m.location.clone()) {
            invalid.push(DocumentErrors {
                location: m.location.clone(),
                errors: vec![FieldError {
                    path: "metadata.name".into(),
                    message: format!("duplicates the ApiDeployment in {first}"),
                    source: RuleSource::Envelope,
                }],
            });
        }
    }
    if !invalid.is_empty() {
        return Err(LoadError::Invalid(invalid));
    }
    Ok(manifests)
}

/// Parse and validate the documents of one file's text.
pub fn parse(file: &Path, text: &str) -> (Vec<Manifest>, Vec<DocumentErrors>) {
    let mut manifests = Vec::new();
    let mut invalid = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let location = Location { file: file.to_path_buf(), document: i + 1 };
        let value = match Value::deserialize(document) {
            Ok(Value::Null) => continue, // an empty document (`---` at the end)
            Ok(v) => v,
            Err(e) => {
                invalid.push(DocumentErrors {
                    location,
                    errors: vec![FieldError {
                        path: String::new(),
                        message: format!("not valid YAML: {e}"),
                        source: RuleSource::Envelope,
                    }],
                });
                // The YAML stream cannot be resynchronised after a syntax error.
                break;
            }
        };
        match validate_object(&value) {
            Ok(mut resource) => {
                resource.metadata.namespace.get_or_insert_with(|| "default".to_string());
                manifests.push(Manifest { location, resource });
            }
            Err(errors) => invalid.push(DocumentErrors { location, errors }),
        }
    }
    (manifests, invalid)
}

fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}
