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
