//! JSON bodies of the search API (`GET /api/search`, `POST /api/search/reindex`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// What a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// 项目
    Project,
    /// 文档 (PDF, DOCX, XLSX, TXT and other documents)
    Document,
    /// 录像
    Video,
    /// 录音
    Audio,
    /// 其他文件
    Other,
    /// 光盘
    Disc,
    /// 硬盘副本
    DiskCopy,
    /// 专家 (name only)
    Expert,
}

impl ItemKind {
    pub const ALL: [ItemKind; 8] = [
        ItemKind::Project,
        ItemKind::Document,
        ItemKind::Video,
        ItemKind::Audio,
        ItemKind::Other,
        ItemKind::Disc,
        ItemKind::DiskCopy,
        ItemKind::Expert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Project => "project",
            ItemKind::Document => "document",
            ItemKind::Video => "video",
            ItemKind::Audio => "audio",
            ItemKind::Other => "other",
            ItemKind::Disc => "disc",
            ItemKind::DiskCopy => "disk_copy",
            ItemKind::Expert => "expert",
        }
    }

    pub fn parse(text: &str) -> Option<ItemKind> {
        ItemKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text || k.label_zh() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ItemKind::Project => "项目",
            ItemKind::Document => "文档",
            ItemKind::Video => "录像",
            ItemKind::Audio => "录音",
            ItemKind::Other => "其他文件",
            ItemKind::Disc => "光盘",
            ItemKind::DiskCopy => "硬盘副本",
            ItemKind::Expert => "专家",
        }
    }
}

/// The query string of `GET /api/search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words separated by spaces; every word must match (项目名称、编号片段、投标人、文件名……).
    #[serde(default)]
    pub q: String,
    /// Year of the bid opening, e.g. 2019.
    pub year: Option<i32>,
    /// Category code (construction …) or its Chinese name.
    pub category: Option<String>,
    /// Item kind code (project, document, video, audio, other, disc, disk_copy, expert).
    pub kind: Option<String>,
    /// Disc or copy location (exact).
    pub location: Option<String>,
    /// First day, inclusive, YYYY-MM-DD.
    pub from: Option<String>,
    /// Last day, inclusive, YYYY-MM-DD.
    pub to: Option<String>,
    /// Number of hits to return (default 20, at most 200; 0: only the total and the facets).
    pub limit: Option<usize>,
    /// Hits to skip (paging).
    pub offset: Option<usize>,
    /// Whether to count the hits per year, category, kind and location (default true). Counting
    /// visits every hit; the search page asks for the hits first with `facets=false` and for
    /// the counts in a second request (`limit=0`).
    pub facets: Option<bool>,
}

/// A part of a snippet: `hit` parts are what matched the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnippetPart {
    pub text: String,
    pub hit: bool,
}

/// One search result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// Stable id of the item: `project:<number>`, `file:<id>`, `disc:<id>`.
    pub id: String,
    pub kind: ItemKind,
    pub score: f32,
    /// The item's name (project name, file path, disc label) with its matches marked.
    pub title: Vec<SnippetPart>,
    /// A fragment of the item's text around the matches (may be empty).
    pub snippet: Vec<SnippetPart>,
    pub project_number: String,
    pub project_name: String,
    pub category: String,
    /// Bid opening day, YYYY-MM-DD.
    pub date: String,
    /// Where the item is shelved (discs and copies).
    pub location: Option<String>,
    /// The UI page of the item's project.
    pub project_link: String,
    /// The UI page that shows the item itself (the file in its project, the disc list).
    pub item_link: String,
}

/// Number of hits per value of a facet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    pub year: Vec<FacetCount>,
    pub category: Vec<FacetCount>,
    pub kind: Vec<FacetCount>,
    pub location: Vec<FacetCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// Hits matching the query and filters in all.
    pub total: u64,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
    /// Time spent in the index, in milliseconds.
    pub took_ms: f64,
}

/// Answer of `POST /api/search/reindex`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReindexReport {
    pub projects: u64,
    pub items: u64,
    pub took_ms: f64,
}
