//! `POST /api/v1/users` (register) and `POST /api/v1/auth/login` (the users of reference system 004 and
//! the authorizer of reference system 001, see examples/README.md).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::Deserialize;

use crate::{
    auth::{AuthUser, IssuedToken},
    config::Registration,
    db::users::User,
    error::{ApiError, Json},
    startup::AppState,
};

/// Shortest accepted password.
pub const MIN_PASSWORD: usize = 8;
/// Longest accepted password (bounds hashing work).
pub const MAX_PASSWORD: usize = 128;

/// Registration request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// 3 to 32 characters of `a-z 0-9 _ . -` (stored lower case).
    pub username: String,
    /// E-mail address (stored lower case).
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// The invitation token, when registration is by invitation (`REGISTRATION=invitation`).
    #[serde(default)]
    pub invitation: Option<String>,
}

/// Login request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// Username or e-mail address.
    pub username: String,
    /// Password.
    pub password: String,
}

fn validate_username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_ascii_lowercase();
    let ok_chars =
        name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    if !(3..=32).contains(&name.len()) || !ok_chars {
        return Err(ApiError::Validation(
            "username must be 3 to 32 characters of letters, digits, '_', '.' or '-'".into(),
        ));
    }
    Ok(name)
}

fn validate_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !valid {
        return Err(ApiError::Validation("email must be a valid e-mail address".into()));
    }
    Ok(email)
}

fn validate_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(ApiError::Validation(format!("password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")));
    }
    Ok(())
}

/// `POST /api/v1/users`: 201 with the user (never the hash); 409 when the username or e-mail is taken.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(input): Json<RegisterInput>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    may_register(&state, &headers, input.invitation.as_deref()).await?;
    let username = validate_username(&input.username)?;
    let email = validate_email(&input.email)?;
    validate_password(&input.password)?;
    let hash = state.passwords.hash(input.password).await?;
    let user = state.db.create_user(&username, &email, &hash).await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Whether this registration may go ahead (`REGISTRATION`): always when open; with the invitation token
/// when by invitation; and, whatever the mode, when an admin registers someone. 403 otherwise.
async fn may_register(state: &AppState, headers: &HeaderMap, invitation: Option<&str>) -> Result<(), ApiError> {
    let invited = || match (&state.config.registration_invitation_token, invitation) {
        (Some(token), Some(given)) => constant_time_eq(token.expose().as_bytes(), given.as_bytes()),
        _ => false,
    };
    match state.config.registration {
        Registration::Open => return Ok(()),
        Registration::Invitation if invited() => return Ok(()),
        Registration::Invitation | Registration::Closed => {}
    }
    match AuthUser::from_headers(headers, state)? {
        Some(admin) if admin.is_admin(state).await? => Ok(()),
        _ => Err(ApiError::Forbidden(match state.config.registration {
            Registration::Invitation => "registration needs a valid invitation",
            _ => "registration is closed: an admin creates users",
        })),
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /api/v1/auth/login`: a signed HS256 access token. Unknown users and wrong passwords get the
/// same 401 `invalid_credentials`, after the same amount of hashing work.
pub async fn login(
    State(state): State<AppState>,
    Json(input): Json<LoginInput>,
) -> Result<([(header::HeaderName, &'static str); 2], Json<IssuedToken>), ApiError> {
    if input.password.chars().count() > MAX_PASSWORD || input.username.len() > 254 {
        return Err(ApiError::InvalidCredentials);
    }
    let login = input.username.trim().to_lowercase();
    // An account whose failed logins ran out is refused without checking the password.
    state.limits.account_locked(&login)?;
    let credentials = state.db.find_credentials(&login).await?;
    let (user, hash) = match credentials {
        Some(c) => (Some((c.id, c.username)), Some(c.password_hash)),
        None => (None, None),
    };
    let valid = state.passwords.verify(input.password, hash).await?;
    match user {
        // A token is a credential: no cache (browser, proxy) may keep it.
        Some((id, username)) if valid => Ok((
            [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
            Json(state.jwt.issue(id, &username)?),
        )),
        _ => {
            state.limits.login_failed(&login)?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails_are_validated() {
        assert_eq!(validate_username(" Ada_L ").unwrap(), "ada_l");
        assert!(validate_username("ab").is_err());
        assert!(validate_username("bad name").is_err());
        assert!(validate_username(&"x".repeat(33)).is_err());
        assert_eq!(validate_email("Ada@Example.org").unwrap(), "ada@example.org");
        for bad in ["", "no-at", "@x.org", "a@b", "a@.org", "a@b..org", "a b@c.org", "a@b@c.org"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
