//! The `movies` table.

use serde::Serialize;
use sqlx::FromRow;

use super::{Db, Page, conflict_or, now, sqlite_reads::SqliteRow};
use crate::error::ApiError;

/// A stored movie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Movie {
    /// Identifier.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Release year (title and year are unique together).
    pub year: i64,
    /// Director.
    pub director: Option<String>,
    /// Genre.
    pub genre: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update time (RFC 3339).
    pub updated_at: String,
}

/// Validated fields of a movie, for create and update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovieFields {
    /// Title.
    pub title: String,
    /// Release year.
    pub year: i64,
    /// Director.
    pub director: Option<String>,
    /// Genre.
    pub genre: Option<String>,
}

const COLUMNS: &str = "id, title, year, director, genre, created_at, updated_at";
const DUPLICATE: &str = "a movie with this title and year already exists";

impl SqliteRow for Movie {
    const LIST: &'static str =
        "SELECT id, title, year, director, genre, created_at, updated_at FROM movies ORDER BY id LIMIT ?1 OFFSET ?2";
    const GET: &'static str =
        "SELECT id, title, year, director, genre, created_at, updated_at FROM movies WHERE id = ?1";

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Movie {
            id: row.get(0)?,
            title: row.get(1)?,
            year: row.get(2)?,
            director: row.get(3)?,
            genre: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    }
}

impl Db {
    /// One page of movies, oldest first.
    pub async fn list_movies(&self, page: Page) -> Result<Vec<Movie>, ApiError> {
        if let Some(reads) = self.sqlite_reads() {
            return reads.page(page.limit, page.offset).await;
        }
        let sql = format!("SELECT {COLUMNS} FROM movies ORDER BY id LIMIT $1 OFFSET $2");
        Ok(sqlx::query_as(&sql).bind(page.limit).bind(page.offset).fetch_all(self.pool()).await?)
    }

    /// One movie.
    pub async fn get_movie(&self, id: i64) -> Result<Movie, ApiError> {
        let found = if let Some(reads) = self.sqlite_reads() {
            reads.by_id(id).await?
        } else {
            let sql = format!("SELECT {COLUMNS} FROM movies WHERE id = $1");
            sqlx::query_as(&sql).bind(id).fetch_optional(self.pool()).await?
        };
        found.ok_or(ApiError::NotFound("movie"))
    }

    /// Inserts a movie; 409 on a duplicate title and year.
    pub async fn create_movie(&self, movie: &MovieFields, owner: i64) -> Result<Movie, ApiError> {
        let sql = format!(
            "INSERT INTO movies (title, year, director, genre, created_at, updated_at, owner_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING {COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(&movie.title)
            .bind(movie.year)
            .bind(&movie.director)
            .bind(&movie.genre)
            .bind(now())
            .bind(owner)
            .fetch_one(self.pool())
            .await
            .map_err(|e| conflict_or(e, DUPLICATE))
    }

    /// Replaces a movie's fields; 404 when missing, 409 on a duplicate title and year.
    pub async fn update_movie(&self, id: i64, movie: &MovieFields) -> Result<Movie, ApiError> {
        let sql = format!(
            "UPDATE movies SET title = $1, year = $2, director = $3, genre = $4, updated_at = $5 \
             WHERE id = $6 RETURNING {COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(&movie.title)
            .bind(movie.year)
            .bind(&movie.director)
            .bind(&movie.genre)
            .bind(now())
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| conflict_or(e, DUPLICATE))?
            .ok_or(ApiError::NotFound("movie"))
    }

    /// Who created the movie (`None` for rows from before owners were recorded); 404 when missing.
    pub async fn movie_owner(&self, id: i64) -> Result<Option<i64>, ApiError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT owner_id FROM movies WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        row.map(|(owner,)| owner).ok_or(ApiError::NotFound("movie"))
    }

    /// Deletes a movie; 404 when missing.
    pub async fn delete_movie(&self, id: i64) -> Result<(), ApiError> {
        let done = sqlx::query("DELETE FROM movies WHERE id = $1").bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 { Err(ApiError::NotFound("movie")) } else { Ok(()) }
    }
}
