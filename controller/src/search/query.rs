//! Queries: every word of the query must match (as a phrase of grams in the item's name, text or
//! context, or as a code), jieba words add to the rank; filters and facets by year, category,
//! item kind and location; dates as a range; matches marked in names and snippets.

use std::ops::Bound;
use std::time::Instant;

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, Occur, PhraseQuery,
    Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::tokenizer::TokenStream;
use tantivy::{TantivyDocument, Term};
use witness_schemas::search::{
    FacetCount, Facets, ItemKind, SearchHit, SearchQuery, SearchResults, SnippetPart,
};

use super::index::{tantivy_error, SearchIndex};
use super::schema::day_number;
use super::seek::{RequiredPlus, SeekDisMax};
use super::sync::parse_category;
use super::tokenize::{self, code_words, query_grams};
use crate::error::Result;
use crate::{bail, err};

/// Weights of where a word matched: an item's own name counts most, its project's words least
/// (so a project ranks above its files for the project's name).
const TITLE_BOOST: f32 = 3.0;
const CODE_BOOST: f32 = 3.0;
const BODY_BOOST: f32 = 1.0;
const CONTEXT_BOOST: f32 = 0.3;
const JIEBA_TITLE_BOOST: f32 = 1.0;
const JIEBA_BODY_BOOST: f32 = 0.3;
/// What a matching project adds to its score: asked for a project's name or number, the
/// archivist wants the project first, then its files (whose short names would otherwise win
/// on BM25's length normalisation).
const PROJECT_PRIOR: f32 = 3.0;
/// How much the other places a word matched add to the best one.
const MATCH_TIE_BREAKER: f32 = 0.1;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 200;
/// Characters of body text shown around the first match.
const SNIPPET_CHARS: usize = 120;

fn boxed(query: impl Query) -> Box<dyn Query> {
    Box::new(query)
}

fn boost(query: Box<dyn Query>, factor: f32) -> Box<dyn Query> {
    if (factor - 1.0).abs() < f32::EPSILON {
        query
    } else {
        boxed(BoostQuery::new(query, factor))
    }
}

/// The grams of a word in a field: one term, or a phrase of terms at their offsets.
fn gram_query(field: Field, grams: &[(usize, String)]) -> Box<dyn Query> {
    if let [(_, gram)] = grams {
        return boxed(TermQuery::new(
            Term::from_field_text(field, gram),
            IndexRecordOption::WithFreqs,
        ));
    }
    boxed(PhraseQuery::new_with_offset(
        grams
            .iter()
            .map(|(offset, gram)| (*offset, Term::from_field_text(field, gram)))
            .collect(),
    ))
}

/// The query of one word, None when it has nothing searchable (punctuation only).
fn word_query(index: &SearchIndex, word: &str) -> Option<Box<dyn Query>> {
    let f = &index.fields;
    let grams = query_grams(word);
    if grams.is_empty() {
        return None;
    }
    let mut matches = vec![
        boost(gram_query(f.title_grams, &grams), TITLE_BOOST),
        boost(gram_query(f.body_grams, &grams), BODY_BOOST),
        boost(gram_query(f.context_grams, &grams), CONTEXT_BOOST),
    ];
    // A word that is one code (LKGC-2026, 2026-0318) also matches the code field whole.
    if let [(_, _, code)] = code_words(word).as_slice() {
        if code.chars().count() == word.chars().count() {
            matches.push(boost(
                boxed(TermQuery::new(
                    Term::from_field_text(f.code, code),
                    IndexRecordOption::WithFreqs,
                )),
                CODE_BOOST,
            ));
        }
    }
    // The best place a word matched counts (plus a little of the others), not the sum: a file
    // whose name, text and project all say 监理 is not three times as relevant as the project
    // named so.
    // A word of one gram (most two-character words) is a union of a few term lists that is
    // walked from end to end: tantivy's merge is the faster there. A phrase is walked over the
    // documents its rarest gram is in, and its jieba words looked up on those only.
    let single_gram = grams.len() == 1;
    let best: Box<dyn Query> = if single_gram {
        boxed(DisjunctionMaxQuery::with_tie_breaker(
            matches,
            MATCH_TIE_BREAKER,
        ))
    } else {
        boxed(SeekDisMax::new(matches, MATCH_TIE_BREAKER))
    };
    let mut optional: Vec<Box<dyn Query>> = Vec::new();
    if let Some(mut analyzer) = index.index.tokenizers().get(tokenize::JIEBA) {
        let mut stream = analyzer.token_stream(word);
        let mut words = Vec::new();
        while stream.advance() {
            let text = stream.token().text.trim().to_string();
            if !text.is_empty() && !words.contains(&text) {
                words.push(text);
            }
        }
        // Likewise only the better of name and text counts for each jieba word.
        for text in words {
            let term = |field: Field, factor: f32| {
                boost(
                    boxed(TermQuery::new(
                        Term::from_field_text(field, &text),
                        IndexRecordOption::WithFreqs,
                    )),
                    factor,
                )
            };
            let terms = vec![
                term(f.title, JIEBA_TITLE_BOOST),
                term(f.body, JIEBA_BODY_BOOST),
            ];
            optional.push(if single_gram {
                boxed(DisjunctionMaxQuery::new(terms))
            } else {
                boxed(SeekDisMax::new(terms, 0.0))
            });
        }
    }
    // Scored as the word plus its jieba words (tantivy's MUST + SHOULD), but the jieba words
    // are only looked up on the documents the word matches.
    if single_gram {
        let clauses = std::iter::once((Occur::Must, best))
            .chain(optional.into_iter().map(|q| (Occur::Should, q)))
            .collect();
        return Some(boxed(BooleanQuery::new(clauses)));
    }
    Some(boxed(RequiredPlus::new(best, optional)))
}

fn facet_filter(field: Field, path: [&str; 2]) -> Box<dyn Query> {
    boxed(TermQuery::new(
        Term::from_facet(field, &Facet::from_path(path)),
        IndexRecordOption::Basic,
    ))
}

fn parse_day(text: &str, what: &str) -> Result<i64> {
    let day = day_number(text);
    if day == 0 || text.trim().len() != 10 {
        bail!(
            InvalidArgument,
            "{what} {text:?} 不是日期（例如 2019-05-01）"
        );
    }
    Ok(day)
}

/// The whole query: words and filters.
pub fn build_query(index: &SearchIndex, request: &SearchQuery) -> Result<Box<dyn Query>> {
    let f = &index.fields;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in request.q.split_whitespace() {
        if let Some(query) = word_query(index, word) {
            clauses.push((Occur::Must, query));
        }
    }
    if let Some(year) = request.year {
        clauses.push((
            Occur::Must,
            facet_filter(f.facets, ["year", &year.to_string()]),
        ));
    }
    if let Some(category) = request.category.as_deref().filter(|c| !c.is_empty()) {
        let category = parse_category(category)
            .ok_or_else(|| err!(InvalidArgument, "未知的项目类别 {category:?}"))?;
        clauses.push((
            Occur::Must,
            facet_filter(f.facets, ["category", category.as_str()]),
        ));
    }
    if let Some(kind) = request.kind.as_deref().filter(|k| !k.is_empty()) {
        let kind = ItemKind::parse(kind)
            .ok_or_else(|| err!(InvalidArgument, "未知的条目类型 {kind:?}"))?;
        clauses.push((Occur::Must, facet_filter(f.facets, ["kind", kind.as_str()])));
    }
    if let Some(location) = request.location.as_deref().filter(|l| !l.is_empty()) {
        clauses.push((Occur::Must, facet_filter(f.facets, ["location", location])));
    }
    let from = match request.from.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => Bound::Included(Term::from_field_i64(f.day, parse_day(d, "起始日期")?)),
        None => Bound::Unbounded,
    };
    let to = match request.to.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => Bound::Included(Term::from_field_i64(f.day, parse_day(d, "截止日期")?)),
        None => Bound::Unbounded,
    };
    if !matches!((&from, &to), (Bound::Unbounded, Bound::Unbounded)) {
        clauses.push((Occur::Must, boxed(RangeQuery::new(from, to))));
    }
    if clauses.is_empty() {
        return Ok(boxed(AllQuery));
    }
    clauses.push((
        Occur::Should,
        boxed(ConstScoreQuery::new(
            boxed(TermQuery::new(
                Term::from_field_text(f.kind, ItemKind::Project.as_str()),
                IndexRecordOption::Basic,
            )),
            PROJECT_PRIOR,
        )),
    ));
    Ok(boxed(BooleanQuery::new(clauses)))
}

/// Runs a search: the page of hits asked for, the total, and the facets unless
/// `facets=false`.
pub fn search(index: &SearchIndex, request: &SearchQuery) -> Result<SearchResults> {
    let started = Instant::now();
    let f = &index.fields;
    let query = build_query(index, request)?;
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let offset = request.offset.unwrap_or(0);
    let with_facets = request.facets.unwrap_or(true);
    let searcher = index.searcher();
    let top_docs = (limit > 0).then(|| {
        TopDocs::with_limit(limit)
            .and_offset(offset)
            .order_by_score()
    });
    let facet_collector = with_facets.then(|| {
        let mut collector = FacetCollector::for_field("facets");
        for facet in ["/year", "/category", "/kind", "/location"] {
            collector.add_facet(facet);
        }
        collector
    });
    let (top, total, facet_counts) = searcher
        .search(&query, &(top_docs, Count, facet_collector))
        .map_err(tantivy_error)?;
    let top = top.unwrap_or_default();
    let words: Vec<&str> = request.q.split_whitespace().collect();
    let mut hits = Vec::with_capacity(top.len());
    for (score, address) in top {
        let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_error)?;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let number = text(f.project_number);
        let location = text(f.location);
        hits.push(SearchHit {
            id: text(f.id),
            kind: ItemKind::parse(&text(f.kind)).unwrap_or(ItemKind::Other),
            score,
            title: mark(&text(f.title), &words),
            snippet: snippet(&text(f.body), &words),
            project_link: super::sync::project_link(&number),
            project_number: number,
            project_name: text(f.project_name),
            category: text(f.category),
            date: text(f.date),
            location: (!location.is_empty()).then_some(location),
            item_link: text(f.item_link),
        });
    }
    let counts = |root: &str, newest_first: bool| {
        let Some(facet_counts) = &facet_counts else {
            return Vec::new();
        };
        let mut out: Vec<FacetCount> = facet_counts
            .get(root)
            .map(|(facet, count)| FacetCount {
                value: facet
                    .to_path()
                    .last()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                count,
            })
            .collect();
        if newest_first {
            out.sort_by(|a, b| b.value.cmp(&a.value));
        } else {
            out.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        }
        out
    };
    Ok(SearchResults {
        total: total as u64,
        facets: Facets {
            year: counts("/year", true),
            category: counts("/category", false),
            kind: counts("/kind", false),
            location: counts("/location", false),
        },
        hits,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Folded characters (full-width to ASCII, lower case) of a text, as the tokenizers see them.
fn folded(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Which characters of `text` are part of an occurrence of a query word.
fn marks(text: &[char], words: &[&str]) -> Vec<bool> {
    let mut marked = vec![false; text.len()];
    for word in words {
        let word = folded(word);
        if word.is_empty() || word.len() > text.len() {
            continue;
        }
        for start in 0..=text.len() - word.len() {
            if text[start..start + word.len()] == word[..] {
                marked[start..start + word.len()]
                    .iter_mut()
                    .for_each(|m| *m = true);
            }
        }
    }
    marked
}

fn parts(chars: &[char], marked: &[bool]) -> Vec<SnippetPart> {
    let mut out: Vec<SnippetPart> = Vec::new();
    for (c, hit) in chars.iter().zip(marked) {
        match out.last_mut() {
            Some(last) if last.hit == *hit => last.text.push(*c),
            _ => out.push(SnippetPart {
                text: c.to_string(),
                hit: *hit,
            }),
        }
    }
    out
}

/// A text with the query's words marked.
pub fn mark(text: &str, words: &[&str]) -> Vec<SnippetPart> {
    let chars: Vec<char> = text.chars().collect();
    parts(&chars, &marks(&folded(text), words))
}

/// A window of the text around its first match (or its beginning), with matches marked.
pub fn snippet(text: &str, words: &[&str]) -> Vec<SnippetPart> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let marked = marks(&folded(&chars.iter().collect::<String>()), words);
    let first = marked.iter().position(|m| *m).unwrap_or(0);
    let start = first.saturating_sub(SNIPPET_CHARS / 4);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut out = parts(&chars[start..end], &marked[start..end]);
    if start > 0 {
        out.insert(
            0,
            SnippetPart {
                text: "…".into(),
                hit: false,
            },
        );
    }
    if end < chars.len() {
        out.push(SnippetPart {
            text: "…".into(),
            hit: false,
        });
    }
    out
}
