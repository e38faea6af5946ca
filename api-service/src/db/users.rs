//! The `users` table.

use serde::Serialize;
use sqlx::FromRow;

use super::{Db, conflict_or, now};
use crate::error::ApiError;

/// A registered user, as shown to clients (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct User {
    /// Identifier.
    pub id: i64,
    /// Login name (lower case, unique).
    pub username: String,
    /// E-mail address (lower case, unique).
    pub email: String,
    /// Registration time (RFC 3339).
    pub created_at: String,
}

/// What login needs to check a password.
#[derive(Debug, Clone, FromRow)]
pub struct Credentials {
    /// Identifier.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// PHC-format argon2 hash.
    pub password_hash: String,
}

/// The answer to a registration whose username or e-mail address is taken: the same for both, so that
/// it does not tell which one exists.
pub const REGISTRATION_CONFLICT: &str = "this username or e-mail address cannot be registered";

impl Db {
    /// Inserts a user; 409 when the username or e-mail address is taken.
    pub async fn create_user(&self, username: &str, email: &str, password_hash: &str) -> Result<User, ApiError> {
        sqlx::query_as(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, username, email, created_at",
        )
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(now())
        .fetch_one(self.pool())
        .await
        .map_err(|e| conflict_or(e, REGISTRATION_CONFLICT))
    }

    /// The role of a user (`user` or `admin`); `None` when the user no longer exists.
    pub async fn role(&self, id: i64) -> Result<Option<String>, ApiError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT role FROM users WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        Ok(row.map(|(role,)| role))
    }

    /// Sets a user's role (`api-service admin`); false when there is no such user.
    pub async fn set_role(&self, username: &str, role: &str) -> Result<bool, ApiError> {
        let done = sqlx::query("UPDATE users SET role = $1 WHERE username = $2")
            .bind(role)
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The credentials of the user with this username or e-mail address, if any.
    pub async fn find_credentials(&self, login: &str) -> Result<Option<Credentials>, ApiError> {
        Ok(sqlx::query_as("SELECT id, username, password_hash FROM users WHERE username = $1 OR email = $1 LIMIT 1")
            .bind(login)
            .fetch_optional(self.pool())
            .await?)
    }
}
