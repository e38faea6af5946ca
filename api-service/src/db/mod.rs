//! Database access: one pool for SQLite or PostgreSQL, migrations, and one module per table.
//!
//! Why sqlx's `Any` driver rather than two pools behind an enum: every query here is portable SQL
//! (`$N` placeholders work in both SQLite and PostgreSQL, and so does `RETURNING`), so one code path
//! serves both databases and each query is written and tested once. The price is that `Any` only
//! carries plain types, so ids and years are `BIGINT` and timestamps are RFC 3339 `TEXT` written by
//! the service (which also keeps them identical across the two backends). The runtime query API is
//! used throughout (no compile-time checked macros, so no database is needed to build).

pub mod books;
pub mod movies;
pub mod sqlite_reads;
pub mod users;

use std::{str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use self::sqlite_reads::SqliteReads;
use crate::error::{ApiError, Error};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (one task).
    Sqlite,
    /// PostgreSQL (any number of tasks).
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config("DATABASE_URL must start with sqlite: or postgres:// (or postgresql://)".into()))
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Maximum connections.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
}

/// The connection pool and the backend behind it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The fast read path of a SQLite file (see [`sqlite_reads`]); `None` on PostgreSQL and for
    /// in-memory SQLite, whose reads go through `pool`.
    reads: Option<SqliteReads>,
}

impl Db {
    /// Connects (creating a SQLite file if missing, in WAL mode) and runs the embedded migrations.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url_with_create(url),
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(Error::Database)?;
        let max_connections = settings.max_connections;
        // An in-memory SQLite database lives as long as its one connection: through `Any`, each new
        // connection parses the URL again and opens a database of its own (without the tables), so it
        // gets exactly one connection that never idles out or expires.
        let sqlite_file = if backend == Backend::Sqlite { sqlite_reads::file_of_url(&url) } else { None };
        let in_memory = backend == Backend::Sqlite && sqlite_file.is_none();
        let (pool_max, pool_min, idle, lifetime) = if in_memory {
            (1, 1, None, None)
        } else {
            (max_connections, 0, Some(Duration::from_secs(600)), Some(Duration::from_secs(1800)))
        };
        let pool = AnyPoolOptions::new()
            .max_connections(pool_max)
            // Checking a connection before each use is a round trip to sqlx's SQLite worker thread per
            // query, and a local file cannot drop a connection the way a network server can.
            .test_before_acquire(backend == Backend::Postgres)
            .min_connections(pool_min)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(idle)
            .max_lifetime(lifetime)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; busy_timeout makes writers queue
                        // instead of failing with SQLITE_BUSY; NORMAL sync is safe with WAL.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(Error::Database)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(Error::Migrate)?;
        let reads = sqlite_file.map(|file| SqliteReads::new(&file, max_connections as usize, settings.acquire_timeout));
        Ok(Self { pool, backend, reads })
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (used by `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// The SQLite read path, when this database has one.
    pub(crate) fn sqlite_reads(&self) -> Option<&SqliteReads> {
        self.reads.as_ref()
    }

    /// Closes every connection (shutdown).
    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close();
        }
        self.pool.close().await;
    }
}

/// `sqlite://api.db` does not create the file by itself: add `mode=rwc` unless a mode is given.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// True when the error is a unique-constraint violation (both backends).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a unique violation to 409 with `message`, anything else to a database error.
pub(crate) fn conflict_or(err: sqlx::Error, message: &'static str) -> ApiError {
    if is_unique_violation(&err) { ApiError::Conflict(message) } else { ApiError::Database(err) }
}

/// The current time as stored in the database (RFC 3339, UTC, milliseconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to return (1..=100).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings { max_connections: 4, acquire_timeout: Duration::from_secs(5) }
    }

    fn book(n: u32) -> books::BookFields {
        books::BookFields {
            title: format!("Book {n}"),
            author: "Ada Lovelace".into(),
            isbn: format!("97800000{n:05}"),
            published_year: Some(1843),
        }
    }

    /// Reads of a SQLite file take the rusqlite path, reads of an in-memory database stay on sqlx:
    /// both answer the same rows, pages and 404s.
    #[tokio::test]
    async fn both_sqlite_read_paths_answer_alike() {
        let dir = tempfile::tempdir().unwrap();
        let file = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), &settings()).await.unwrap();
        let memory = Db::connect("sqlite::memory:", &settings()).await.unwrap();
        assert!(file.sqlite_reads().is_some());
        assert!(memory.sqlite_reads().is_none());
        let mut answers = Vec::new();
        for db in [&file, &memory] {
            let owner = db.create_user("owner", "owner@example.org", "not-a-hash").await.unwrap().id;
            for n in 0..5 {
                db.create_book(&book(n), owner).await.unwrap();
            }
            let page = db.list_books(Page { limit: 2, offset: 3 }).await.unwrap();
            let one = db.get_book(page[0].id).await.unwrap();
            assert!(matches!(db.get_book(999).await, Err(ApiError::NotFound("book"))));
            let strip = |b: &books::Book| (b.id, b.title.clone(), b.isbn.clone(), b.published_year);
            answers.push((page.iter().map(strip).collect::<Vec<_>>(), strip(&one)));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].0.iter().map(|b| b.1.as_str()).collect::<Vec<_>>(), ["Book 3", "Book 4"]);
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(sqlite_url_with_create("sqlite://api.db"), "sqlite://api.db?mode=rwc");
        assert_eq!(sqlite_url_with_create("sqlite://a.db?cache=shared"), "sqlite://a.db?cache=shared&mode=rwc");
        assert_eq!(sqlite_url_with_create("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(sqlite_url_with_create("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn backends_from_urls() {
        assert_eq!(Backend::from_url("sqlite://x").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(Backend::from_url("postgresql://u@h/db").unwrap(), Backend::Postgres);
        assert!(Backend::from_url("mysql://x").is_err());
    }
}
