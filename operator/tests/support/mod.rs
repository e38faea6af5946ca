//! Shared test support.
#![allow(dead_code)]

pub mod corpus;
pub mod deploy;
pub mod examples;

use std::time::Duration;

use ecsop::aws::Calls;
use ecsop::aws::calls::RetryPolicy;
use ecsop::aws::limiter::Limiter;
use ecsop_testkit::{Account, Moto};

/// Adapter calls for tests: no rate limit, retries quick enough for a test.
pub fn fast_calls() -> Calls {
    Calls::new(
        Limiter::unlimited(),
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(10),
        },
    )
}

/// A fresh account (isolated resources and call log) on the shared moto server.
pub async fn account() -> Account {
    Moto::shared().await.expect("moto starts").new_account()
}
