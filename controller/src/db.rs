//! Opens the embedded SQLite catalog (WAL, full sync) and brings its schema up to date.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::Result;

/// Opens (creating if needed) `<data>/catalog.db` and runs the migrations.
pub async fn open(data_dir: &Path) -> Result<SqlitePool> {
    let path = data_dir.join("catalog.db");
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL, not NORMAL: with WAL, NORMAL may lose the last commits on power loss, and a
        // job or disc record the API has acknowledged must survive that.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|e| crate::err!(Internal, "migrating {}: {e}", path.display()))?;
    Ok(pool)
}

/// Begins a transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`), for a
/// transaction that reads and then writes and does nothing slow in between.
///
/// A deferred transaction that reads and then writes must upgrade its read snapshot to a write
/// lock; when another connection committed in between, SQLite refuses the upgrade at once with
/// "database is locked", without waiting out the busy timeout. Taking the lock first makes it
/// queue on the busy timeout instead. Not the default for every transaction: the lock is held
/// from the first statement, so a transaction that waits on anything slow would stall every
/// other writer (tried this session: a page test hung).
pub async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}
