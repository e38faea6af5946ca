//! Rate limits, with `governor` (GCRA, keyed): per client address on login, registration, factorial and
//! uploads; per user for the factorials of authenticated users (a flood of anonymous requests does not
//! starve them); and per account on failed logins (password guessing spread over many addresses). Over a
//! limit the answer is 429 `rate_limited` with `Retry-After`, in the service's JSON error shape.
//!
//! The client address is the connection's peer, or, behind a proxy (`TRUSTED_PROXY_HEADER`, for example
//! `x-forwarded-for` behind an ALB or API Gateway), the address that proxy appended last to the header:
//! the one entry a client cannot forge.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::MethodRouter,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::{auth::AuthUser, config::Config, error::ApiError, startup::AppState};

type Keyed<K> = DefaultKeyedRateLimiter<K>;

/// Past this many keys a limiter forgets those whose quota is whole again (bounded memory under a
/// flood of addresses).
const FORGET_AFTER_KEYS: usize = 10_000;

/// The limiters of one service.
pub struct Limits {
    enabled: bool,
    proxy_header: Option<HeaderName>,
    login: Keyed<IpAddr>,
    register: Keyed<IpAddr>,
    factorial_anonymous: Keyed<IpAddr>,
    factorial_user: Keyed<i64>,
    uploads: Keyed<IpAddr>,
    failures: Keyed<String>,
    /// Accounts whose failures ran out, and until when their logins are refused.
    locked: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("enabled", &self.enabled).field("proxy_header", &self.proxy_header).finish()
    }
}

fn per_minute<K: std::hash::Hash + Eq + Clone>(n: u32) -> Keyed<K> {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(n))
}

/// Which limit a route is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/v1/auth/login`.
    Login,
    /// `POST /api/v1/users`.
    Register,
    /// `GET /api/v1/factorial`.
    Factorial,
    /// `POST /api/v1/uploads`.
    Upload,
}

impl Limits {
    /// The limits `config` sets (`RATE_LIMITS`, `RATE_LIMIT_*`, `TRUSTED_PROXY_HEADER`).
    pub fn new(config: &Config) -> Self {
        Limits {
            enabled: config.rate_limits,
            proxy_header: config.trusted_proxy_header.as_deref().and_then(|h| HeaderName::try_from(h).ok()),
            login: per_minute(config.rate_limit_login_per_minute),
            register: per_minute(config.rate_limit_register_per_minute),
            factorial_anonymous: per_minute(config.rate_limit_factorial_per_minute),
            factorial_user: per_minute(config.rate_limit_factorial_user_per_minute),
            uploads: per_minute(config.rate_limit_uploads_per_minute),
            failures: per_minute(config.login_failures_per_minute),
            locked: Mutex::default(),
        }
    }

    /// The client's address (see the module docs).
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        let forwarded = self.proxy_header.as_ref().and_then(|h| headers.get(h)).and_then(|v| v.to_str().ok());
        forwarded
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .or(peer.map(|p| p.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn check<K: std::hash::Hash + Eq + Clone>(limiter: &Keyed<K>, key: &K) -> Result<(), ApiError> {
        if limiter.len() > FORGET_AFTER_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// Whether logins to `account` are refused for now (after too many failures).
    pub fn account_locked(&self, account: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        match locked.get(account) {
            Some(until) if *until > Instant::now() => {
                let wait = until.saturating_duration_since(Instant::now());
                Err(ApiError::TooManyRequests { retry_after_secs: wait.as_secs().max(1) })
            }
            Some(_) => {
                locked.remove(account);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A failed login for `account`: once its failures exceed the quota, the account is locked until the
    /// quota has room again, and this failure is already answered 429.
    pub fn login_failed(&self, account: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let key = account.to_string();
        Self::check(&self.failures, &key).inspect_err(|e| {
            if let ApiError::TooManyRequests { retry_after_secs } = e {
                let until = Instant::now() + Duration::from_secs(*retry_after_secs);
                let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
                if locked.len() > FORGET_AFTER_KEYS {
                    let now = Instant::now();
                    locked.retain(|_, t| *t > now);
                }
                locked.insert(key.clone(), until);
            }
        })
    }

    fn admit(
        &self,
        route: Route,
        state: &AppState,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let client = self.client(headers, peer);
        match route {
            Route::Login => Self::check(&self.login, &client),
            Route::Register => Self::check(&self.register, &client),
            Route::Upload => Self::check(&self.uploads, &client),
            // An authenticated user's factorials count against their own quota.
            Route::Factorial => match AuthUser::from_headers(headers, state).ok().flatten() {
                Some(user) => Self::check(&self.factorial_user, &user.id),
                None => Self::check(&self.factorial_anonymous, &client),
            },
        }
    }
}

async fn limited(State((state, route)): State<(AppState, Route)>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    match state.limits.admit(route, &state, request.headers(), peer) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// `handler` under `route`'s limits when `RATE_LIMITS` is on; as it is when off, with no middleware at
/// all, so limits that are off cost a request nothing.
pub fn limit(state: &AppState, route: Route, handler: MethodRouter<AppState>) -> MethodRouter<AppState> {
    if !state.limits.enabled {
        return handler;
    }
    handler.route_layer(axum::middleware::from_fn_with_state((state.clone(), route), limited))
}
