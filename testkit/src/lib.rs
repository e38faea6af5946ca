//! Local AWS emulator harness for ecsop's tests and local demo.
//!
//! No AWS account exists where ecsop is developed and tested, so this crate runs the real
//! [moto](https://github.com/getmoto/moto) server (pinned in `testkit/python/requirements.txt`,
//! installed on first use into the project-owned virtualenv `.venv-moto/`) and adds, as a thin layer of
//! our own (`testkit/python/ecsop_moto.py`), exactly what moto lacks:
//!
//! - **isolation**: every [`Account`] is a separate moto account, selected by its access key, so tests
//!   run in parallel against one server and a child process (the `ecsop` binary) is isolated through
//!   plain AWS environment variables;
//! - **a call log** ([`Account::calls`]) to count the reads and writes another process made;
//! - **faults** ([`Account::inject`]): throttling, 5xx, AccessDenied and latency per operation, in the
//!   protocol's own error shape so the real SDK classifies them;
//! - **CloudWatch alarms over Smithy RPC v2 CBOR**: the SDK's only protocol for CloudWatch, which moto
//!   does not serve; the layer answers it from moto's CloudWatch backend, and
//!   [`Account::set_alarm_state`] stands in for CloudWatch's evaluation of an alarm;
//! - **an ECS deployment driver** ([`Account::drive`]): moto never progresses ECS deployments; the
//!   driver moves the PRIMARY deployment through progress, completion, failure and circuit-breaker
//!   rollback, writing the service events ECS would.
//!
//! One server is shared by every test process of a run (a lock file guards start-up); it exits by
//! itself after a minute without requests.

mod apigateway;
pub mod fake;
mod fixture;
pub mod iam;
mod images;
mod kube;
mod outage;
pub mod prometheus;
mod server;

pub use apigateway::HttpApi;
pub use fixture::Network;
pub use images::DeploymentView;
pub use kube::{FakeKube, FakeKubeOptions, KubeRequest, KubeStatus};
pub use server::{Account, Call, Drive, Fault, FaultKind, Moto};

/// Errors of the harness itself (not of the AWS calls made through it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Installing moto into the virtualenv failed.
    #[error("installing moto failed: {0}")]
    Install(String),
    /// The server did not become ready in time.
    #[error("moto did not become ready: {0}")]
    NotReady(String),
    /// A control call to the harness failed.
    #[error("harness control call {what} failed: {message}")]
    Control {
        /// The control call.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// An AWS call made while building a fixture failed.
    #[error("fixture step {step} failed: {message}")]
    Fixture {
        /// The step that failed.
        step: &'static str,
        /// The SDK's error, rendered.
        message: String,
    },
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
