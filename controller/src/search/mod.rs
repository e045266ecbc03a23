//! Search (搜索): a tantivy index of projects, their documents, videos, discs and disk copies that
//! follows the catalog, with Chinese words through jieba, 1–2-grams so any substring of a name
//! matches, and codes whole and by segment.
//!
//! `tokenize` and `schema` define what is indexed and how, `extract` reads document text,
//! `sync` turns catalog rows into items, `index` writes them, `query` searches, `service` keeps
//! the index following the catalog, `web` and `cli` are its faces, and `baseline` is the SQLite
//! FTS5 index the benchmark compares against.

pub mod baseline;
pub mod cli;
pub mod extract;
pub mod index;
pub mod query;
pub mod schema;
pub mod seek;
pub mod service;
pub mod sync;
pub mod tokenize;
pub mod web;

pub use schema::ItemDoc;
pub use service::{notify, service_for, Change, SearchService};
