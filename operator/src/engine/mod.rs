//! The engine: observe, plan, act, report. Free of Kubernetes and of the CLI.
//!
//! This module holds the pure parts so far: the AWS names and tags derived from an ApiDeployment, and
//! the task definition rendered from its spec.

pub mod names;
pub mod taskdef;
