//! The tantivy index on disk (`<data>/search/`) or in RAM: opening (and starting afresh when the
//! stored schema version differs), replacing a project's items, and commits that carry the
//! catalog fingerprint they reflect.

use std::path::Path;
use std::sync::Mutex;

use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::schema::{self, Fields, ItemDoc, SCHEMA_VERSION};
use super::tokenize;
use crate::err;
use crate::error::{io_error, Result};

/// How the index writer may use the machine.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub threads: usize,
    /// Memory for all threads together (tantivy needs at least 15 MB per thread).
    pub heap_bytes: usize,
}

impl Default for WriterConfig {
    /// The daemon's writer: one thread and a small heap, since catalog changes are a project at
    /// a time and backups need the cores.
    fn default() -> Self {
        WriterConfig {
            threads: 1,
            heap_bytes: 50 << 20,
        }
    }
}

/// Threads one query may use, one segment each at a time.
const SEARCH_THREADS: usize = 2;

pub struct SearchIndex {
    pub index: Index,
    pub fields: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
}

pub(crate) fn tantivy_error(e: tantivy::TantivyError) -> crate::error::Error {
    err!(Internal, "搜索索引：{e}")
}

/// The commit payload: schema version and catalog fingerprint.
fn payload(fingerprint: &str) -> String {
    format!("v{SCHEMA_VERSION} {fingerprint}")
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it when missing or when it was written by another
    /// schema version (it is rebuilt from the catalog anyway).
    pub fn open_or_create(dir: &Path, config: WriterConfig) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir.display(), e))?;
        let (schema, fields) = schema::build();
        let existing = if dir.join("meta.json").exists() {
            match Index::open_in_dir(dir) {
                Ok(index) if same_schema(&index.schema(), &schema) => Some(index),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "search index unreadable, starting afresh");
                    None
                }
            }
        } else {
            None
        };
        let index = match existing {
            Some(index) => index,
            None => {
                std::fs::remove_dir_all(dir).map_err(|e| io_error(dir.display(), e))?;
                std::fs::create_dir_all(dir).map_err(|e| io_error(dir.display(), e))?;
                Index::create_in_dir(dir, schema).map_err(tantivy_error)?
            }
        };
        SearchIndex::with_index(index, fields, config)
    }

    pub fn in_ram(config: WriterConfig) -> Result<SearchIndex> {
        let (schema, fields) = schema::build();
        SearchIndex::with_index(Index::create_in_ram(schema), fields, config)
    }

    fn with_index(mut index: Index, fields: Fields, config: WriterConfig) -> Result<SearchIndex> {
        tokenize::register(&index);
        // A query runs over the index's segments (a few after merges) on up to two threads: on
        // the two-core appliance this halves the slowest queries, whose cost is visiting every
        // hit (exact totals, facet counts).
        // WITNESS_SEARCH_THREADS overrides (1: one thread, as the benchmark's comparison).
        let threads = std::env::var("WITNESS_SEARCH_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .min(SEARCH_THREADS)
            });
        if threads > 1 {
            index
                .set_multithread_executor(threads)
                .map_err(tantivy_error)?;
        }
        let writer = index
            .writer_with_num_threads(config.threads, config.heap_bytes)
            .map_err(tantivy_error)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_error)?;
        Ok(SearchIndex {
            index,
            fields,
            reader,
            writer: Mutex::new(writer),
        })
    }

    /// The fingerprint of the catalog the last commit reflects (None: never committed, or by
    /// another schema version).
    pub fn stored_fingerprint(&self) -> Option<String> {
        let metas = self.index.load_metas().ok()?;
        let payload = metas.payload?;
        let (version, fingerprint) = payload.split_once(' ')?;
        (version == format!("v{SCHEMA_VERSION}")).then(|| fingerprint.to_string())
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds items without committing (bulk loads).
    pub fn add(&self, items: &[ItemDoc]) -> Result<()> {
        let writer = self.writer();
        for item in items {
            writer
                .add_document(self.fields.document(item))
                .map_err(tantivy_error)?;
        }
        Ok(())
    }

    /// Replaces every item of these projects by `items`, in one commit.
    pub fn replace_projects(
        &self,
        project_ids: &[i64],
        items: &[ItemDoc],
        fingerprint: &str,
    ) -> Result<()> {
        let mut writer = self.writer();
        for id in project_ids {
            writer.delete_term(Term::from_field_i64(self.fields.project_id, *id));
        }
        for item in items {
            writer
                .add_document(self.fields.document(item))
                .map_err(tantivy_error)?;
        }
        self.commit_locked(&mut writer, fingerprint)
    }

    /// Removes everything (a rebuild follows with `add` and `commit`).
    pub fn clear(&self) -> Result<()> {
        self.writer()
            .delete_all_documents()
            .map_err(tantivy_error)?;
        Ok(())
    }

    pub fn commit(&self, fingerprint: &str) -> Result<()> {
        let mut writer = self.writer();
        self.commit_locked(&mut writer, fingerprint)
    }

    fn commit_locked(
        &self,
        writer: &mut IndexWriter<TantivyDocument>,
        fingerprint: &str,
    ) -> Result<()> {
        let mut prepared = writer.prepare_commit().map_err(tantivy_error)?;
        // The fingerprint is written with the commit itself, so after a crash the index claims
        // exactly the catalog state it holds.
        prepared.set_payload(&payload(fingerprint));
        prepared.commit().map_err(tantivy_error)?;
        self.reader.reload().map_err(tantivy_error)?;
        Ok(())
    }

    /// Waits for background merges (benchmarks measure a settled index).
    pub fn wait_merging(self) -> Result<()> {
        let writer = self.writer.into_inner().unwrap_or_else(|p| p.into_inner());
        writer.wait_merging_threads().map_err(tantivy_error)
    }

    pub fn num_docs(&self) -> u64 {
        self.searcher().num_docs()
    }
}

fn same_schema(a: &Schema, b: &Schema) -> bool {
    serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
}
