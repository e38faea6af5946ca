//! Authentication: argon2id password hashes, HS256 JWT access tokens, and the [`AuthUser`] extractor
//! that guards every write.

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
use tokio::sync::{OnceCell, Semaphore};

use crate::{error::ApiError, startup::AppState};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// The username.
    pub name: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// Signs and checks access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("keys", &"[redacted]").field("ttl_secs", &self.ttl_secs).finish()
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
    /// Keys from a shared secret; tokens live `ttl_secs` seconds.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        }
    }

    /// A random 256-bit secret (development only: tokens die with the process and differ per task).
    pub fn random_secret() -> Vec<u8> {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    }

    /// Issues a token for a user.
    pub fn issue(&self, user_id: i64, username: &str) -> Result<IssuedToken, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            name: username.to_owned(),
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
        };
        let access_token = encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing token: {e}")))?;
        Ok(IssuedToken { access_token, token_type: "Bearer", expires_in: self.ttl_secs })
    }

    /// Checks a token's signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
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
        let value = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::Unauthorized("malformed authorization header")),
        };
        let claims = state.jwt.verify(token)?;
        let id = claims.sub.parse().map_err(|_| ApiError::Unauthorized("invalid or expired token"))?;
        Ok(Self { id, username: claims.name })
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
        let claims = Claims { sub: "1".into(), name: "x".into(), iat: now - 120, exp: now - 60 };
        let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"secret")).unwrap();
        assert!(keys.verify(&token).is_err());
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
