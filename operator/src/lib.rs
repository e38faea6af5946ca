//! ecsop: deploys HTTP API services to AWS ECS Fargate from `ApiDeployment` resources.
//!
//! One engine, two front ends: the Kubernetes controller (`ecsop run`) and the one-shot CLI
//! (`ecsop apply|diff|delete|status -f PATH`). The contracts are in `docs/`.

pub mod admin;
pub mod analysis;
pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod error;
pub mod manifest;
pub mod metrics;
pub mod telemetry;

pub use error::{Error, Result};
