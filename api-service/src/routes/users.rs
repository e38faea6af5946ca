//! `POST /api/v1/users` (register) and `POST /api/v1/auth/login` (the users of reference system 004 and
//! the authorizer of reference system 001, see examples/README.md).

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;

use crate::{
    auth::IssuedToken,
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
    Json(input): Json<RegisterInput>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let username = validate_username(&input.username)?;
    let email = validate_email(&input.email)?;
    validate_password(&input.password)?;
    let hash = state.passwords.hash(input.password).await?;
    let user = state.db.create_user(&username, &email, &hash).await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user)))
}

/// `POST /api/v1/auth/login`: a signed HS256 access token. Unknown users and wrong passwords get the
/// same 401 `invalid_credentials`, after the same amount of hashing work.
pub async fn login(
    State(state): State<AppState>,
    Json(input): Json<LoginInput>,
) -> Result<Json<IssuedToken>, ApiError> {
    if input.password.chars().count() > MAX_PASSWORD || input.username.len() > 254 {
        return Err(ApiError::InvalidCredentials);
    }
    let login = input.username.trim().to_lowercase();
    let credentials = state.db.find_credentials(&login).await?;
    let (user, hash) = match credentials {
        Some(c) => (Some((c.id, c.username)), Some(c.password_hash)),
        None => (None, None),
    };
    let valid = state.passwords.verify(input.password, hash).await?;
    match user {
        Some((id, username)) if valid => Ok(Json(state.jwt.issue(id, &username)?)),
        _ => Err(ApiError::InvalidCredentials),
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
