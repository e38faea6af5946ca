//! The read path of the SQLite backend: a small pool of rusqlite connections with cached prepared
//! statements.
//!
//! Why not sqlx for these reads: sqlx's SQLite driver gives every connection a worker thread and talks
//! to it over channels (one message per row), and its `Any` layer copies every value once more. On a
//! one-core task that cost about 45 µs per book read and 90 µs per 20-row list, several times the
//! query itself. Writes stay on sqlx (one code path with PostgreSQL, unique-violation
//! mapping, `RETURNING`); WAL mode lets these readers run beside the writer, and every statement here
//! starts its own read transaction, so a read that follows a committed write sees it.
//!
//! Where a read runs: a read by primary key or a short page from a warm file takes a few
//! microseconds, less than the two thread switches of a hop to tokio's blocking pool (which, measured
//! on one core, cost more than the read). So a read first runs on the request's own task, with two
//! guards that keep it from stalling the other requests of that worker: it may not wait for a lock
//! (busy timeout 0) and it may not run longer than [`INLINE_BUDGET_OPS`] SQLite VM steps (a progress
//! handler interrupts it; a deep `OFFSET` is such a read). A read stopped by either guard runs again
//! on the blocking pool, without the step limit and with the normal busy timeout. What the guards do
//! not cover is a page that is not in memory (the first reads after start), which blocks like a page
//! fault would.
//!
//! The connections are opened read-write but with `PRAGMA query_only`, so no statement sent through
//! them can change the database, and opening never depends on the `-wal` and `-shm` files existing.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Prepared statements kept per connection (the service has a handful of read queries).
const STATEMENT_CACHE: usize = 16;

/// SQLite VM steps a read may take on the request's task before it is moved to the blocking pool.
/// A 100-row page takes about 2,000; 20,000 steps are in the order of 100 µs.
pub const INLINE_BUDGET_OPS: i32 = 20_000;

/// A bounded pool of read-only rusqlite connections to one SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct SqliteReads {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    /// Connections not in use. Opened lazily, so an idle service holds none beyond the first read.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection that may exist: bounds open connections and blocking threads.
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for SqliteReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReads").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteReads {
    /// A pool of at most `max_connections` readers of the file at `path` (which must exist and be
    /// migrated: connections are opened on first use).
    pub fn new(path: &Path, max_connections: usize, acquire_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                busy_timeout: Duration::from_secs(5),
                acquire_timeout,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_connections.max(1))),
            }),
        }
    }

    /// Runs `read` with a connection: on this task while it is cheap, else on the blocking pool (see
    /// the module documentation). Waiting for a free connection longer than the acquire timeout
    /// answers 503, like sqlx's pool timeout.
    pub async fn run<T, F>(&self, read: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => match self.inner.read_inline(&read) {
                Err(e) if moved_off_task(&e) => permit,
                done => return done.map_err(ApiError::from),
            },
            // Every connection is busy (so the blocking pool is in use): queue for one.
            Err(_) => tokio::time::timeout(self.inner.acquire_timeout, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| ApiError::Database(sqlx::Error::PoolTimedOut))?
                .map_err(|_| ApiError::Database(sqlx::Error::PoolClosed))?,
        };
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let result = inner.read_blocking(&read);
            drop(permit);
            result
        })
        .await;
        match joined {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::Internal(format!("a database read did not complete: {e}"))),
        }
    }

    /// One page of `T`'s rows ([`SqliteRow::LIST`]).
    pub async fn page<T: SqliteRow>(&self, limit: i64, offset: i64) -> Result<Vec<T>, ApiError> {
        self.run(move |conn| conn.prepare_cached(T::LIST)?.query_map([limit, offset], T::from_row)?.collect()).await
    }

    /// The row of `T` with this id ([`SqliteRow::GET`]), if any.
    pub async fn by_id<T: SqliteRow>(&self, id: i64) -> Result<Option<T>, ApiError> {
        use rusqlite::OptionalExtension;
        self.run(move |conn| conn.prepare_cached(T::GET)?.query_row([id], T::from_row).optional()).await
    }

    /// Closes every idle connection (shutdown).
    pub fn close(&self) {
        self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl Inner {
    /// `read` on this thread, under the inline guards.
    fn read_inline<T>(&self, read: impl Fn(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.with_connection(|conn| {
            conn.busy_timeout(Duration::ZERO)?;
            conn.progress_handler(INLINE_BUDGET_OPS, Some(|| true));
            let result = read(conn);
            conn.progress_handler(0, None::<fn() -> bool>);
            result
        })
    }

    /// `read` without a step limit, waiting for locks up to the busy timeout (blocking pool only).
    fn read_blocking<T>(&self, read: impl Fn(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.with_connection(|conn| {
            conn.busy_timeout(self.busy_timeout)?;
            read(conn)
        })
    }

    /// Runs `f` with an idle connection (or a new one). A connection goes back to the pool after a
    /// clean read or one stopped by the inline guards; after any other error it is dropped, so a
    /// broken handle cannot poison the pool.
    fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = f(&conn);
        if result.as_ref().is_ok() || result.as_ref().is_err_and(moved_off_task) {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
        result
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // NO_MUTEX: a connection is used by one thread at a time (it is taken out of `idle`).
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// A row type read through [`SqliteReads::page`] and [`SqliteReads::by_id`].
pub trait SqliteRow: Sized + Send + 'static {
    /// `SELECT <columns> ... ORDER BY id LIMIT ?1 OFFSET ?2`.
    const LIST: &'static str;
    /// `SELECT <columns> ... WHERE id = ?1`.
    const GET: &'static str;
    /// One row of either statement.
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// True when an inline read was stopped by a guard (step budget or a lock it may not wait for).
fn moved_off_task(err: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, OperationInterrupted};
    matches!(err.sqlite_error_code(), Some(OperationInterrupted | DatabaseBusy | DatabaseLocked))
}

/// The file behind a `sqlite:` URL, or `None` for in-memory databases (each connection to
/// `:memory:` would see a database of its own, so those keep every query on sqlx's pool).
pub fn file_of_url(url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_from_urls() {
        assert_eq!(file_of_url("sqlite://api.db"), Some(PathBuf::from("api.db")));
        assert_eq!(file_of_url("sqlite:///var/lib/api/api.db?mode=rwc"), Some(PathBuf::from("/var/lib/api/api.db")));
        assert_eq!(file_of_url("sqlite::memory:"), None);
        assert_eq!(file_of_url("sqlite://shared?mode=memory&cache=shared"), None);
    }

    #[tokio::test]
    async fn reads_see_committed_writes_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);").unwrap();
        let reads = SqliteReads::new(&path, 2, Duration::from_secs(1));
        let count = |reads: SqliteReads| async move {
            reads.run(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))).await.unwrap()
        };
        assert_eq!(count(reads.clone()).await, 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(reads.clone()).await, 2);
        let write = reads.run(|c| c.execute("INSERT INTO t VALUES (3)", [])).await;
        assert!(matches!(write, Err(ApiError::Sqlite(_))), "{write:?}");
        assert_eq!(count(reads.clone()).await, 2);
    }

    #[tokio::test]
    async fn long_reads_leave_the_task_and_still_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let reads = SqliteReads::new(&path, 2, Duration::from_secs(1));
        // Far more VM steps than the inline budget: the task's attempt is interrupted...
        let long = |c: &Connection| {
            c.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) SELECT sum(i) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )
        };
        let inline = reads.inner.read_inline(long).unwrap_err();
        assert!(moved_off_task(&inline), "{inline:?}");
        // ...and `run` answers anyway, from the blocking pool, on the same (returned) connection.
        assert_eq!(reads.run(long).await.unwrap(), 200_000 * 200_001 / 2);
        assert_eq!(reads.inner.idle.lock().unwrap().len(), 1);
        // A short read is not interrupted (the handler was removed after the inline attempt).
        assert_eq!(reads.inner.read_inline(|c| c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))).unwrap(), 7);
    }

    #[tokio::test]
    async fn a_locked_database_moves_the_read_off_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // Rollback journal (not WAL): a writer's exclusive lock blocks readers, so the inline
        // attempt (busy timeout 0) gets SQLITE_BUSY and the blocking one waits for the lock.
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);").unwrap();
        writer.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);").unwrap();
        let reads = SqliteReads::new(&path, 2, Duration::from_secs(1));
        let count = |c: &Connection| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
        let busy = reads.inner.read_inline(count).unwrap_err();
        assert!(moved_off_task(&busy), "{busy:?}");
        let waiting = tokio::spawn({
            let reads = reads.clone();
            async move { reads.run(count).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn waiting_longer_than_the_acquire_timeout_is_503() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let reads = SqliteReads::new(&path, 1, Duration::from_millis(50));
        // The only connection is in use (as by a read on the blocking pool).
        let held = reads.inner.permits.clone().try_acquire_owned().unwrap();
        let timed_out = reads.run(|_| Ok(())).await.unwrap_err();
        assert_eq!(timed_out.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(held);
        reads.run(|_| Ok(())).await.unwrap();
    }
}
