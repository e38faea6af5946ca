//! `/api/v1/movies` (reference system 004, see examples/README.md): list, create, read, update, delete.
//! Writes need a token.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
};
use serde::Deserialize;

use super::{ListQuery, PageOf, optional_text, required_text};
use crate::{
    auth::AuthUser,
    db::movies::{Movie, MovieFields},
    error::{ApiError, Json, Path, Query},
    startup::AppState,
};

/// Earliest accepted release year (the first motion pictures).
pub const MIN_YEAR: i64 = 1888;
/// Latest accepted release year.
pub const MAX_YEAR: i64 = 2100;

/// A movie as sent by clients (create and full update).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovieInput {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Release year, 1888 to 2100 (title and year are unique together).
    pub year: i64,
    /// Director, up to 200 characters.
    pub director: Option<String>,
    /// Genre, up to 50 characters.
    pub genre: Option<String>,
}

impl MovieInput {
    /// Validates and normalises (422 on failure).
    pub fn validate(&self) -> Result<MovieFields, ApiError> {
        let title = required_text("title", &self.title, 200)?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&self.year) {
            return Err(ApiError::Validation(format!("year must be between {MIN_YEAR} and {MAX_YEAR}")));
        }
        let director = optional_text("director", self.director.as_deref(), 200)?;
        let genre = optional_text("genre", self.genre.as_deref(), 50)?;
        Ok(MovieFields { title, year: self.year, director, genre })
    }
}

/// `GET /api/v1/movies`: one page, oldest first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<PageOf<Movie>>, ApiError> {
    let page = query.page()?;
    let rows = state.db.list_movies(crate::db::Page { limit: page.limit + 1, ..page }).await?;
    Ok(Json(PageOf::new(rows, page)))
}

/// `GET /api/v1/movies/{id}`.
pub async fn read(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Movie>, ApiError> {
    Ok(Json(state.db.get_movie(id).await?))
}

/// `POST /api/v1/movies`: 201 with a `Location` header.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<MovieInput>,
) -> Result<(StatusCode, HeaderMap, Json<Movie>), ApiError> {
    let movie = state.db.create_movie(&input.validate()?, user.id).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/movies/{}", movie.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(movie)))
}

/// `PUT /api/v1/movies/{id}`: replaces every field.
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(input): Json<MovieInput>,
) -> Result<Json<Movie>, ApiError> {
    let fields = input.validate()?;
    user.may_change(&state, state.db.movie_owner(id).await?).await?;
    Ok(Json(state.db.update_movie(id, &fields).await?))
}

/// `DELETE /api/v1/movies/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    user.may_change(&state, state.db.movie_owner(id).await?).await?;
    state.db.delete_movie(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
