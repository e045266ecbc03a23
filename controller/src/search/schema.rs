//! The index schema: which fields an item has, how each is tokenized, and how an `ItemDoc`
//! becomes a tantivy document.

use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing,
    TextOptions, STORED, STRING,
};
use tantivy::TantivyDocument;
use witness_schemas::search::ItemKind;

use super::tokenize;

/// Bumped whenever the schema or the tokenizers change: an index of another version is rebuilt.
/// 2: Han–ASCII pairs (`室2`) in the gram fields.
pub const SCHEMA_VERSION: u32 = 2;

/// Body text is indexed whole but only this much is stored for snippets.
const STORED_BODY_CHARS: usize = 20_000;

/// One searchable item, as the catalog sync and the benchmark generator produce it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemDoc {
    /// `project:<number>`, `file:<id>`, `disc:<id>`.
    pub id: String,
    pub project_id: i64,
    pub kind: Option<ItemKind>,
    /// The item's name: project name, file path, disc label.
    pub title: String,
    /// The item's text: metadata of a project, extracted text of a document.
    pub body: String,
    /// What the item belongs to (its project's number, name, category, date); matches here
    /// count little, so an item is found by its project's words but ranks below the project.
    pub context: String,
    /// Codes: project number, volume id, date, file name.
    pub codes: String,
    pub project_number: String,
    pub project_name: String,
    /// Category code (construction …).
    pub category: String,
    /// YYYY-MM-DD.
    pub date: String,
    pub location: Option<String>,
    pub item_link: String,
}

/// The fields, looked up once.
#[derive(Debug, Clone)]
pub struct Fields {
    pub id: Field,
    pub project_id: Field,
    pub kind: Field,
    pub title: Field,
    pub title_grams: Field,
    pub body: Field,
    pub body_grams: Field,
    pub context_grams: Field,
    pub code: Field,
    pub project_number: Field,
    pub project_name: Field,
    pub category: Field,
    pub date: Field,
    pub day: Field,
    pub location: Field,
    pub item_link: Field,
    pub facets: Field,
}

fn text(tokenizer: &str, record: IndexRecordOption, stored: bool) -> TextOptions {
    let options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    );
    if stored {
        options.set_stored()
    } else {
        options
    }
}

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let positions = IndexRecordOption::WithFreqsAndPositions;
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        project_id: builder.add_i64_field(
            "project_id",
            NumericOptions::default().set_indexed().set_stored(),
        ),
        kind: builder.add_text_field("kind", STRING | STORED),
        // jieba words only rank (the grams decide what matches), so no positions are needed.
        title: builder.add_text_field(
            "title",
            text(tokenize::JIEBA, IndexRecordOption::WithFreqs, true),
        ),
        title_grams: builder.add_text_field("title_grams", text(tokenize::GRAMS, positions, false)),
        body: builder.add_text_field(
            "body",
            text(tokenize::JIEBA, IndexRecordOption::WithFreqs, true),
        ),
        body_grams: builder.add_text_field("body_grams", text(tokenize::GRAMS, positions, false)),
        context_grams: builder
            .add_text_field("context_grams", text(tokenize::GRAMS, positions, false)),
        code: builder.add_text_field(
            "code",
            text(tokenize::CODE, IndexRecordOption::WithFreqs, false),
        ),
        project_number: builder.add_text_field("project_number", STORED),
        project_name: builder.add_text_field("project_name", STORED),
        category: builder.add_text_field("category", STORED),
        date: builder.add_text_field("date", STORED),
        day: builder.add_i64_field("day", NumericOptions::default().set_indexed().set_fast()),
        location: builder.add_text_field("location", STORED),
        item_link: builder.add_text_field("item_link", STORED),
        facets: builder.add_facet_field("facets", FacetOptions::default()),
    };
    (builder.build(), fields)
}

/// YYYYMMDD of a YYYY-MM-DD date (0 when there is none).
pub fn day_number(date: &str) -> i64 {
    let digits: String = date.chars().filter(char::is_ascii_digit).take(8).collect();
    if digits.len() == 8 {
        digits.parse().unwrap_or(0)
    } else {
        0
    }
}

impl Fields {
    pub fn document(&self, item: &ItemDoc) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        let kind = item.kind.unwrap_or(ItemKind::Other);
        doc.add_text(self.id, &item.id);
        doc.add_i64(self.project_id, item.project_id);
        doc.add_text(self.kind, kind.as_str());
        doc.add_text(self.title, &item.title);
        doc.add_text(self.title_grams, &item.title);
        if kind == ItemKind::Project {
            // A project is named by its number as much as by its name (the stored title's
            // first value stays the name, which is what hits show).
            doc.add_text(self.title, &item.project_number);
            doc.add_text(self.title_grams, &item.project_number);
        }
        let stored_body: String = item.body.chars().take(STORED_BODY_CHARS).collect();
        doc.add_text(self.body, &stored_body);
        doc.add_text(self.body_grams, &item.body);
        doc.add_text(self.context_grams, &item.context);
        doc.add_text(self.code, &item.codes);
        doc.add_text(self.project_number, &item.project_number);
        doc.add_text(self.project_name, &item.project_name);
        doc.add_text(self.category, &item.category);
        doc.add_text(self.date, &item.date);
        doc.add_i64(self.day, day_number(&item.date));
        if let Some(location) = &item.location {
            doc.add_text(self.location, location);
            doc.add_facet(
                self.facets,
                Facet::from_path(["location", location.as_str()]),
            );
        }
        doc.add_text(self.item_link, &item.item_link);
        if item.date.len() >= 4 {
            doc.add_facet(self.facets, Facet::from_path(["year", &item.date[..4]]));
        }
        if !item.category.is_empty() {
            doc.add_facet(
                self.facets,
                Facet::from_path(["category", item.category.as_str()]),
            );
        }
        doc.add_facet(self.facets, Facet::from_path(["kind", kind.as_str()]));
        doc
    }
}
