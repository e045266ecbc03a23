//! The embedded baseline search is measured against: SQLite FTS5 with its trigram tokenizer
//! (the bundled SQLite of sqlx), over the same items and queries. Trigrams cannot match a word
//! of fewer than three characters, which is most Chinese words; the benchmark shows the cost.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::schema::ItemDoc;
use crate::err;
use crate::error::Result;

pub struct Fts5Index {
    pool: SqlitePool,
}

/// The FTS5 query for a whitespace-separated query: every word as a quoted string, all required.
pub fn match_expression(query: &str) -> String {
    query
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl Fts5Index {
    /// Creates a fresh index file (bulk-load settings: no journal, no fsync).
    pub async fn create(path: &Path) -> Result<Fts5Index> {
        let _ = std::fs::remove_file(path);
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| err!(Internal, "{e}"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE VIRTUAL TABLE items USING fts5(id UNINDEXED, title, body, context, codes, tokenize = 'trigram')",
        )
        .execute(&pool)
        .await?;
        Ok(Fts5Index { pool })
    }

    /// Opens an index file made by `create` (the benchmark's `--reuse`).
    pub async fn open(path: &Path) -> Result<Fts5Index> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| err!(Internal, "{e}"))?
            .filename(path);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Fts5Index { pool })
    }

    pub async fn sqlite_version(&self) -> Result<String> {
        let (version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(version)
    }

    /// Adds items in one transaction.
    pub async fn add(&self, items: &[ItemDoc]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for item in items {
            sqlx::query(
                "INSERT INTO items (id, title, body, context, codes) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&item.id)
            .bind(&item.title)
            .bind(&item.body)
            .bind(&item.context)
            .bind(&item.codes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Merges the index's segments into one (what `optimize` is to tantivy's merges).
    pub async fn optimize(&self) -> Result<()> {
        sqlx::query("INSERT INTO items (items) VALUES ('optimize')")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ids of the best `limit` items by FTS5's bm25 rank.
    pub async fn search(&self, query: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM items WHERE items MATCH ? ORDER BY rank LIMIT ?")
                .bind(match_expression(query))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Number of items matching.
    pub async fn count(&self, query: &str) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items WHERE items MATCH ?")
            .bind(match_expression(query))
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}
