//! Authentication: argon2id password hashes, JWT access tokens (HS256 with a shared secret, or ES256 or
//! RS256 with a published key, see [`crate::signing`]), and the [`AuthUser`] extractor that guards
//! every write.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, Semaphore};

use crate::{
    config::{Config, Environment},
    error::ApiError,
    signing::SigningKey,
    startup::AppState,
};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// The username.
    pub name: String,
    /// Issuer (`JWT_ISSUER`), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (the first of `JWT_AUDIENCE`), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// How tokens are signed and checked.
enum Keys {
    /// HS256 with a shared secret (never published).
    Shared { encoding: EncodingKey, decoding: DecodingKey },
    /// An asymmetric key whose public half is published at `/.well-known/jwks.json`.
    Published(SigningKey),
}

/// Signs and checks access tokens.
pub struct JwtKeys {
    keys: Keys,
    issuer: Option<String>,
    audiences: Vec<String>,
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm())
            .field("kid", &self.kid())
            .field("keys", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

/// An issued token.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: i64,
}

impl JwtKeys {
    /// HS256 keys from a shared secret; tokens live `ttl_secs` seconds.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let keys =
            Keys::Shared { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) };
        Self::with_keys(keys, ttl_secs)
    }

    /// Keys that sign with `key` (its algorithm, with its `kid` in the header); tokens live `ttl_secs`
    /// seconds.
    pub fn signed_with(key: SigningKey, ttl_secs: u64) -> Self {
        Self::with_keys(Keys::Published(key), ttl_secs)
    }

    fn with_keys(keys: Keys, ttl_secs: u64) -> Self {
        let mut this = Self {
            keys,
            issuer: None,
            audiences: Vec::new(),
            validation: Validation::default(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        };
        this.validation = this.build_validation();
        this
    }

    /// Tokens carry `iss` = `issuer`, and only tokens with that `iss` are accepted.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self.validation = self.build_validation();
        self
    }

    /// Tokens carry `aud` = the first audience, and only tokens whose `aud` is (or contains) one of
    /// them are accepted. An empty list means no `aud` at all (and tokens that have one are refused).
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = audiences;
        self.validation = self.build_validation();
        self
    }

    /// The keys the configuration asks for: ES256 or RS256 with `JWT_SIGNING_KEY` when set, else HS256 with
    /// `JWT_SECRET` (a random secret in development when that is unset too), plus `JWT_ISSUER` and
    /// `JWT_AUDIENCE`.
    pub fn from_config(config: &Config) -> Result<Self, crate::Error> {
        let keys = match (&config.jwt_signing_key, &config.jwt_secret) {
            (Some(pem), secret) => {
                let key = SigningKey::from_pem(pem.expose())
                    .map_err(|e| crate::Error::Config(format!("JWT_SIGNING_KEY: {e}")))?;
                if secret.is_some() {
                    tracing::warn!("JWT_SIGNING_KEY is set: JWT_SECRET is ignored and HS256 tokens are refused");
                }
                tracing::info!(algorithm = ?key.algorithm(), kid = key.kid(), "signing tokens with JWT_SIGNING_KEY");
                Self::signed_with(key, config.jwt_ttl_secs)
            }
            (None, Some(secret)) => Self::new(secret.expose().as_bytes(), config.jwt_ttl_secs),
            (None, None) => {
                debug_assert!(config.environment == Environment::Development);
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret; tokens will not survive a restart \
                     or work across tasks (set JWT_SECRET or JWT_SIGNING_KEY, required with APP_ENV=production)"
                );
                Self::new(&Self::random_secret(), config.jwt_ttl_secs)
            }
        };
        let keys = match &config.jwt_issuer {
            Some(issuer) => keys.with_issuer(issuer.clone()),
            None => keys,
        };
        Ok(keys.with_audiences(config.jwt_audience.clone()))
    }

    fn build_validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithm());
        validation.leeway = 5;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// A random 256-bit secret (development only: tokens die with the process and differ per task).
    pub fn random_secret() -> Vec<u8> {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        match &self.keys {
            Keys::Shared { .. } => jsonwebtoken::Algorithm::HS256,
            Keys::Published(key) => key.algorithm(),
        }
    }

    /// The `kid` of the published key (none for HS256).
    pub fn kid(&self) -> Option<&str> {
        match &self.keys {
            Keys::Shared { .. } => None,
            Keys::Published(key) => Some(key.kid()),
        }
    }

    /// The configured issuer.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The JWK Set to publish (`{"keys": [...]}`): `None` for HS256, whose secret must never be published.
    pub fn jwks(&self) -> Option<Value> {
        match &self.keys {
            Keys::Shared { .. } => None,
            Keys::Published(key) => Some(json!({"keys": [key.public_jwk()]})),
        }
    }

    /// The OpenID Connect discovery document (the metadata a JWT authorizer reads: `issuer` and
    /// `jwks_uri`), when there is both a published key and an issuer.
    pub fn openid_configuration(&self) -> Option<Value> {
        let (Keys::Published(key), Some(issuer)) = (&self.keys, &self.issuer) else {
            return None;
        };
        // OpenID Connect Discovery §4: a terminating `/` of the issuer is removed before appending.
        let base = issuer.trim_end_matches('/');
        Some(json!({
            "issuer": issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": [key.public_jwk()["alg"]],
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "name", "iss", "aud", "iat", "exp"]
        }))
    }

    /// Issues a token for a user.
    pub fn issue(&self, user_id: i64, username: &str) -> Result<IssuedToken, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            name: username.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audiences.first().cloned(),
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
        };
        let (header, key) = match &self.keys {
            Keys::Shared { encoding, .. } => (Header::new(jsonwebtoken::Algorithm::HS256), encoding),
            Keys::Published(key) => {
                let mut header = Header::new(key.algorithm());
                header.kid = Some(key.kid().to_owned());
                (header, key.encoding())
            }
        };
        let access_token =
            encode(&header, &claims, key).map_err(|e| ApiError::Internal(format!("signing token: {e}")))?;
        Ok(IssuedToken { access_token, token_type: "Bearer", expires_in: self.ttl_secs })
    }

    /// Checks a token's signature, algorithm, expiry, and issuer and audience when configured.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let decoding = match &self.keys {
            Keys::Shared { decoding, .. } => decoding,
            Keys::Published(key) => key.decoding(),
        };
        decode::<Claims>(token, decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthorized("invalid or expired token"))
    }
}

/// The authenticated caller of a write endpoint. Extracting it answers 401 when the
/// `Authorization: Bearer <token>` header is missing, malformed, forged or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user id.
    pub id: i64,
    /// The username.
    pub username: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers, state)?.ok_or(ApiError::Unauthorized("missing bearer token"))
    }
}

impl AuthUser {
    /// The user a request's bearer token names: `None` without an `Authorization` header, 401 when the
    /// header or the token is not valid.
    pub fn from_headers(headers: &axum::http::HeaderMap, state: &AppState) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
        let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::Unauthorized("malformed authorization header")),
        };
        let claims = state.jwt.verify(token)?;
        let id = claims.sub.parse().map_err(|_| ApiError::Unauthorized("invalid or expired token"))?;
        Ok(Some(Self { id, username: claims.name }))
    }
}

impl AuthUser {
    /// Whether the user is an admin: named in `ADMIN_USERS`, or granted the role (`api-service admin`).
    /// A token of a user that no longer exists is refused.
    pub async fn is_admin(&self, state: &AppState) -> Result<bool, ApiError> {
        if state.config.admin_users.iter().any(|a| a.eq_ignore_ascii_case(&self.username)) {
            return Ok(true);
        }
        match state.db.role(self.id).await? {
            Some(role) => Ok(role == "admin"),
            None => Err(ApiError::Unauthorized("invalid or expired token")),
        }
    }

    /// Allow a change of a row `owner` created: its owner may, and admins may (rows from before owners
    /// were recorded have none: only admins). 403 otherwise.
    pub async fn may_change(&self, state: &AppState, owner: Option<i64>) -> Result<(), ApiError> {
        if owner == Some(self.id) || self.is_admin(state).await? {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only its owner or an admin may change this"))
        }
    }
}

/// Argon2id hashing on the blocking pool, with a bound on concurrent hashes (each one holds the
/// configured memory cost, so an unbounded login storm could exhaust the task's memory).
pub struct Passwords {
    argon2: Argon2<'static>,
    permits: Semaphore,
    /// A hash of a random password, verified against when the user does not exist so that unknown
    /// users and wrong passwords take the same time. Computed on first use (not at start-up, which
    /// must stay fast).
    dummy_hash: OnceCell<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").field("params", self.argon2.params()).finish_non_exhaustive()
    }
}

impl Passwords {
    /// Argon2id with the given memory cost (KiB) and iterations; `max_concurrent` 0 means one per CPU.
    pub fn new(memory_kib: u32, iterations: u32, max_concurrent: usize) -> Result<Self, crate::Error> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| crate::Error::Config(format!("argon2 parameters: {e}")))?;
        let max_concurrent = if max_concurrent == 0 {
            std::thread::available_parallelism().map(usize::from).unwrap_or(2)
        } else {
            max_concurrent
        };
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Semaphore::new(max_concurrent),
            dummy_hash: OnceCell::new(),
        })
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self.permits.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&this.argon2))
            .await
            .map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))
    }

    /// Hashes a password (PHC string with a random salt).
    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String, ApiError> {
        self.blocking(move |argon2| {
            let salt = SaltString::generate(&mut OsRng);
            argon2.hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("hashing password: {e}")))
    }

    /// Verifies a password against a stored hash, or against a dummy hash when there is none (and then
    /// answers false), so both failures cost the same time.
    pub async fn verify(self: &Arc<Self>, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let (hash, known) = match stored {
            Some(hash) => (hash, true),
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_try_init(|| async {
                        let random = uuid::Uuid::new_v4().to_string();
                        self.hash(random).await
                    })
                    .await?;
                (dummy.clone(), false)
            }
        };
        let matches = self
            .blocking(move |argon2| match PasswordHash::new(&hash) {
                // The stored hash carries its own parameters, so changing ARGON2_* keeps old hashes valid.
                Ok(parsed) => argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = keys.issue(42, "ada").unwrap();
        let claims = keys.verify(&token.access_token).unwrap();
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.name, "ada");
        let other = JwtKeys::new(b"another-secret-another-secret-xx", 60);
        assert!(other.verify(&token.access_token).is_err());
        assert!(keys.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let keys = JwtKeys::new(b"secret", 60);
        let now = chrono::Utc::now().timestamp();
        let claims = Claims { sub: "1".into(), name: "x".into(), iss: None, aud: None, iat: now - 120, exp: now - 60 };
        let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"secret")).unwrap();
        assert!(keys.verify(&token).is_err());
    }

    /// An HS256 token with `secret` and the given issuer and audience claims, valid for a minute.
    fn forged(secret: &[u8], iss: Option<&str>, aud: Option<&str>) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "7".into(),
            name: "x".into(),
            iss: iss.map(Into::into),
            aud: aud.map(Into::into),
            iat: now,
            exp: now + 60,
        };
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn issuer_and_audience_are_carried_and_required() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = JwtKeys::new(secret, 60)
            .with_issuer("https://api.example.org")
            .with_audiences(vec!["api".into(), "old-api".into()]);
        let token = keys.issue(7, "ada").unwrap().access_token;
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.iss.as_deref(), Some("https://api.example.org"));
        assert_eq!(claims.aud.as_deref(), Some("api"), "tokens carry the first audience");

        let iss = Some("https://api.example.org");
        keys.verify(&forged(secret, iss, Some("old-api"))).expect("any configured audience is accepted");
        for (iss, aud) in [
            (iss, Some("other-api")),
            (iss, None),
            (Some("https://evil.example.org"), Some("api")),
            (None, Some("api")),
        ] {
            assert!(keys.verify(&forged(secret, iss, aud)).is_err(), "iss {iss:?}, aud {aud:?}");
        }
        // Without a configured audience, a token that names one is refused (RFC 7519 §4.1.3).
        let plain = JwtKeys::new(secret, 60);
        assert!(plain.verify(&forged(secret, None, Some("api"))).is_err());
        plain.verify(&forged(secret, None, None)).unwrap();
    }

    #[test]
    fn es256_tokens_carry_the_kid_and_refuse_other_algorithms() {
        let key = SigningKey::from_pem(crate::signing::TEST_EC_PEM).unwrap();
        let kid = key.kid().to_owned();
        let keys = JwtKeys::signed_with(key, 60).with_issuer("https://api.example.org/");
        let token = keys.issue(7, "ada").unwrap().access_token;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(keys.verify(&token).unwrap().sub, "7");
        // An HS256 token is refused, whatever its secret (no algorithm confusion with the public key).
        let x = keys.jwks().unwrap()["keys"][0]["x"].as_str().unwrap().to_owned();
        for secret in [b"secret".as_slice(), x.as_bytes()] {
            assert!(keys.verify(&forged(secret, Some("https://api.example.org/"), None)).is_err());
        }

        let discovery = keys.openid_configuration().unwrap();
        assert_eq!(discovery["issuer"], "https://api.example.org/");
        assert_eq!(discovery["jwks_uri"], "https://api.example.org/.well-known/jwks.json");
        assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["ES256"]));
        assert_eq!(keys.jwks().unwrap()["keys"][0]["kid"], kid.as_str());
    }

    #[test]
    fn shared_secrets_and_issuerless_keys_publish_nothing() {
        let hs256 = JwtKeys::new(b"hunter2-hunter2", 60).with_issuer("https://api.example.org");
        assert!(hs256.jwks().is_none() && hs256.openid_configuration().is_none());
        assert!(!format!("{hs256:?}").contains("hunter2"));
        let es256 = JwtKeys::signed_with(SigningKey::from_pem(crate::signing::TEST_EC_PEM).unwrap(), 60);
        assert!(es256.jwks().is_some());
        assert!(es256.openid_configuration().is_none(), "no discovery document without an issuer");
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let passwords = Arc::new(Passwords::new(1024, 1, 0).unwrap());
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!passwords.verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!passwords.verify("correct horse".into(), None).await.unwrap());
    }
}
