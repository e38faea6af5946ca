//! `/api/v1/books` (reference systems 001 and 003, see examples/README.md): list, create, read, update,
//! delete. Writes need a token.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
};
use serde::Deserialize;

use super::{ListQuery, PageOf, required_text};
use crate::{
    auth::AuthUser,
    db::books::{Book, BookFields},
    error::{ApiError, Json, Path, Query},
    startup::AppState,
};

/// Earliest accepted publication year (movable type).
pub const MIN_YEAR: i64 = 1450;
/// Latest accepted publication year.
pub const MAX_YEAR: i64 = 2100;

/// A book as sent by clients (create and full update).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookInput {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Author, 1 to 200 characters.
    pub author: String,
    /// ISBN-10 or ISBN-13 (hyphens and spaces allowed; the check digit must be right).
    pub isbn: String,
    /// Year of publication, 1450 to 2100.
    pub published_year: Option<i64>,
}

impl BookInput {
    /// Validates and normalises (422 on failure).
    pub fn validate(&self) -> Result<BookFields, ApiError> {
        let title = required_text("title", &self.title, 200)?;
        let author = required_text("author", &self.author, 200)?;
        let isbn = normalize_isbn(&self.isbn)
            .ok_or_else(|| ApiError::Validation("isbn must be a valid ISBN-10 or ISBN-13".into()))?;
        if let Some(year) = self.published_year
            && !(MIN_YEAR..=MAX_YEAR).contains(&year)
        {
            return Err(ApiError::Validation(format!("published_year must be between {MIN_YEAR} and {MAX_YEAR}")));
        }
        Ok(BookFields { title, author, isbn, published_year: self.published_year })
    }
}

/// Digits of a valid ISBN-10 (last may be `X`) or ISBN-13, without separators.
pub fn normalize_isbn(raw: &str) -> Option<String> {
    if raw.len() > 32 {
        return None;
    }
    let compact: String = raw.chars().filter(|c| *c != '-' && *c != ' ').collect::<String>().to_ascii_uppercase();
    let digits: Vec<u32> = compact.chars().map(|c| if c == 'X' { 10 } else { c.to_digit(10).unwrap_or(99) }).collect();
    if digits.contains(&99) {
        return None;
    }
    let valid = match digits.len() {
        10 => {
            digits[..9].iter().all(|d| *d < 10)
                && digits.iter().zip((1..=10).rev()).map(|(d, w)| d * w).sum::<u32>() % 11 == 0
        }
        13 => {
            digits.iter().all(|d| *d < 10)
                && digits.iter().enumerate().map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 }).sum::<u32>() % 10 == 0
        }
        _ => false,
    };
    valid.then_some(compact)
}

/// `GET /api/v1/books`: one page, oldest first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<PageOf<Book>>, ApiError> {
    let page = query.page()?;
    let rows = state.db.list_books(crate::db::Page { limit: page.limit + 1, ..page }).await?;
    Ok(Json(PageOf::new(rows, page)))
}

/// `GET /api/v1/books/{id}`.
pub async fn read(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Book>, ApiError> {
    Ok(Json(state.db.get_book(id).await?))
}

/// `POST /api/v1/books`: 201 with a `Location` header.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<BookInput>,
) -> Result<(StatusCode, HeaderMap, Json<Book>), ApiError> {
    let book = state.db.create_book(&input.validate()?, user.id).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/books/{}", book.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(book)))
}

/// `PUT /api/v1/books/{id}`: replaces every field.
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(input): Json<BookInput>,
) -> Result<Json<Book>, ApiError> {
    let fields = input.validate()?;
    user.may_change(&state, state.db.book_owner(id).await?).await?;
    Ok(Json(state.db.update_book(id, &fields).await?))
}

/// `DELETE /api/v1/books/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    user.may_change(&state, state.db.book_owner(id).await?).await?;
    state.db.delete_book(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::normalize_isbn;

    #[test]
    fn isbns_are_checked() {
        assert_eq!(normalize_isbn("978-0-306-40615-7").as_deref(), Some("9780306406157"));
        assert_eq!(normalize_isbn("0-306-40615-2").as_deref(), Some("0306406152"));
        assert_eq!(normalize_isbn("0-8044-2957-x").as_deref(), Some("080442957X"));
        assert_eq!(normalize_isbn("978-0-306-40615-8"), None);
        assert_eq!(normalize_isbn("X306406152"), None);
        assert_eq!(normalize_isbn("abc"), None);
        assert_eq!(normalize_isbn(""), None);
    }
}
