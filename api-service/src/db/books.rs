//! The `books` table.

use serde::Serialize;
use sqlx::FromRow;

use super::{Db, Page, conflict_or, now, sqlite_reads::SqliteRow};
use crate::error::ApiError;

/// A stored book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Book {
    /// Identifier.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// ISBN-10 or ISBN-13, digits only (unique).
    pub isbn: String,
    /// Year of publication.
    pub published_year: Option<i64>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update time (RFC 3339).
    pub updated_at: String,
}

/// Validated fields of a book, for create and update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookFields {
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Normalised ISBN.
    pub isbn: String,
    /// Year of publication.
    pub published_year: Option<i64>,
}

const COLUMNS: &str = "id, title, author, isbn, published_year, created_at, updated_at";
const DUPLICATE: &str = "a book with this ISBN already exists";

impl SqliteRow for Book {
    const LIST: &'static str = "SELECT id, title, author, isbn, published_year, created_at, updated_at FROM books ORDER BY id LIMIT ?1 OFFSET ?2";
    const GET: &'static str =
        "SELECT id, title, author, isbn, published_year, created_at, updated_at FROM books WHERE id = ?1";

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Book {
            id: row.get(0)?,
            title: row.get(1)?,
            author: row.get(2)?,
            isbn: row.get(3)?,
            published_year: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    }
}

impl Db {
    /// One page of books, oldest first.
    pub async fn list_books(&self, page: Page) -> Result<Vec<Book>, ApiError> {
        if let Some(reads) = self.sqlite_reads() {
            return reads.page(page.limit, page.offset).await;
        }
        let sql = format!("SELECT {COLUMNS} FROM books ORDER BY id LIMIT $1 OFFSET $2");
        Ok(sqlx::query_as(&sql).bind(page.limit).bind(page.offset).fetch_all(self.pool()).await?)
    }

    /// One book.
    pub async fn get_book(&self, id: i64) -> Result<Book, ApiError> {
        let found = if let Some(reads) = self.sqlite_reads() {
            reads.by_id(id).await?
        } else {
            let sql = format!("SELECT {COLUMNS} FROM books WHERE id = $1");
            sqlx::query_as(&sql).bind(id).fetch_optional(self.pool()).await?
        };
        found.ok_or(ApiError::NotFound("book"))
    }

    /// Inserts a book; 409 on a duplicate ISBN.
    pub async fn create_book(&self, book: &BookFields, owner: i64) -> Result<Book, ApiError> {
        let sql = format!(
            "INSERT INTO books (title, author, isbn, published_year, created_at, updated_at, owner_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING {COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(&book.title)
            .bind(&book.author)
            .bind(&book.isbn)
            .bind(book.published_year)
            .bind(now())
            .bind(owner)
            .fetch_one(self.pool())
            .await
            .map_err(|e| conflict_or(e, DUPLICATE))
    }

    /// Replaces a book's fields; 404 when missing, 409 on a duplicate ISBN.
    pub async fn update_book(&self, id: i64, book: &BookFields) -> Result<Book, ApiError> {
        let sql = format!(
            "UPDATE books SET title = $1, author = $2, isbn = $3, published_year = $4, updated_at = $5 \
             WHERE id = $6 RETURNING {COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(&book.title)
            .bind(&book.author)
            .bind(&book.isbn)
            .bind(book.published_year)
            .bind(now())
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| conflict_or(e, DUPLICATE))?
            .ok_or(ApiError::NotFound("book"))
    }

    /// Who created the book (`None` for rows from before owners were recorded); 404 when missing.
    pub async fn book_owner(&self, id: i64) -> Result<Option<i64>, ApiError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT owner_id FROM books WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        row.map(|(owner,)| owner).ok_or(ApiError::NotFound("book"))
    }

    /// Deletes a book; 404 when missing.
    pub async fn delete_book(&self, id: i64) -> Result<(), ApiError> {
        let done = sqlx::query("DELETE FROM books WHERE id = $1").bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 { Err(ApiError::NotFound("book")) } else { Ok(()) }
    }
}
