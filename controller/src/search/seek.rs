//! Two queries that score like tantivy's `DisjunctionMaxQuery` and a `BooleanQuery` of one MUST
//! and some SHOULD clauses (the same scores, added in the same order), but move their parts by
//! seeking them to the document asked for instead of merging them in windows of 4,096
//! documents. A word's clauses are mostly asked about scattered documents (the ones the other
//! words and the phrase match), and a window merge of common terms (有限公司, 工程, `03`) reads
//! their whole posting lists to answer a few hundred of them: it was most of the time of the
//! slowest queries.

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

/// Scores the best of its parts plus `tie_breaker` times the others that match.
#[derive(Debug)]
pub struct SeekDisMax {
    parts: Vec<Box<dyn Query>>,
    tie_breaker: Score,
}

impl Clone for SeekDisMax {
    fn clone(&self) -> Self {
        SeekDisMax {
            parts: self.parts.iter().map(|p| p.box_clone()).collect(),
            tie_breaker: self.tie_breaker,
        }
    }
}

impl SeekDisMax {
    pub fn new(parts: Vec<Box<dyn Query>>, tie_breaker: Score) -> SeekDisMax {
        SeekDisMax { parts, tie_breaker }
    }
}

/// Matches what `required` matches, scored as it plus the sum of the `optional` parts that
/// match too.
#[derive(Debug)]
pub struct RequiredPlus {
    required: Box<dyn Query>,
    optional: Vec<Box<dyn Query>>,
}

impl Clone for RequiredPlus {
    fn clone(&self) -> Self {
        RequiredPlus {
            required: self.required.box_clone(),
            optional: self.optional.iter().map(|p| p.box_clone()).collect(),
        }
    }
}

impl RequiredPlus {
    pub fn new(required: Box<dyn Query>, optional: Vec<Box<dyn Query>>) -> RequiredPlus {
        RequiredPlus { required, optional }
    }
}

fn weights(
    queries: &[Box<dyn Query>],
    scoring: EnableScoring<'_>,
) -> tantivy::Result<Vec<Box<dyn Weight>>> {
    queries.iter().map(|q| q.weight(scoring)).collect()
}

impl Query for SeekDisMax {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(DisMaxWeight {
            parts: weights(&self.parts, scoring)?,
            tie_breaker: self.tie_breaker,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a tantivy::Term, bool)) {
        for part in &self.parts {
            part.query_terms(visitor);
        }
    }
}

impl Query for RequiredPlus {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let required = self.required.weight(scoring)?;
        if !scoring.is_scoring_enabled() {
            return Ok(required);
        }
        Ok(Box::new(RequiredPlusWeight {
            required,
            optional: weights(&self.optional, scoring)?,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a tantivy::Term, bool)) {
        self.required.query_terms(visitor);
        for part in &self.optional {
            part.query_terms(visitor);
        }
    }
}

struct DisMaxWeight {
    parts: Vec<Box<dyn Weight>>,
    tie_breaker: Score,
}

struct RequiredPlusWeight {
    required: Box<dyn Weight>,
    optional: Vec<Box<dyn Weight>>,
}

fn scorers(
    weights: &[Box<dyn Weight>],
    reader: &SegmentReader,
    boost: Score,
) -> tantivy::Result<Vec<Box<dyn Scorer>>> {
    weights
        .iter()
        .map(|w| w.scorer(reader, boost))
        .filter(|s| !matches!(s, Ok(s) if s.doc() == TERMINATED))
        .collect()
}

/// The score of the document `scorer` is on, computed by seeking to it.
fn explain_by_scoring(
    scorer: &mut dyn Scorer,
    doc: DocId,
    what: &'static str,
) -> tantivy::Result<Explanation> {
    if scorer.doc() > doc || scorer.seek(doc) != doc {
        return Err(tantivy::TantivyError::InvalidArgument(format!(
            "document {doc} does not match"
        )));
    }
    Ok(Explanation::new(what, scorer.score()))
}

impl Weight for DisMaxWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut parts = scorers(&self.parts, reader, boost)?;
        if parts.len() == 1 && self.tie_breaker == 0.0 {
            return Ok(parts.remove(0));
        }
        let mut scorer = DisMaxScorer {
            parts,
            tie_breaker: self.tie_breaker,
            doc: 0,
        };
        scorer.doc = scorer.min_doc();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        explain_by_scoring(scorer.as_mut(), doc, "best of the fields")
    }
}

impl Weight for RequiredPlusWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let required = self.required.scorer(reader, boost)?;
        let optional = scorers(&self.optional, reader, boost)?;
        if optional.is_empty() {
            return Ok(required);
        }
        Ok(Box::new(RequiredPlusScorer { required, optional }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        explain_by_scoring(scorer.as_mut(), doc, "word and its jieba words")
    }
}

struct DisMaxScorer {
    parts: Vec<Box<dyn Scorer>>,
    tie_breaker: Score,
    doc: DocId,
}

impl DisMaxScorer {
    fn min_doc(&self) -> DocId {
        self.parts
            .iter()
            .map(|p| p.doc())
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for DisMaxScorer {
    fn advance(&mut self) -> DocId {
        let doc = self.doc;
        for part in &mut self.parts {
            if part.doc() == doc {
                part.advance();
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for part in &mut self.parts {
            if part.doc() < target {
                part.seek(target);
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.parts
            .iter()
            .map(|p| p.size_hint())
            .fold(0u32, u32::saturating_add)
    }

    fn cost(&self) -> u64 {
        self.parts.iter().map(|p| p.cost()).sum()
    }
}

impl Scorer for DisMaxScorer {
    /// As `DisjunctionMaxCombiner`: parts in order, max and sum from 0.
    fn score(&mut self) -> Score {
        let (mut max, mut sum): (Score, Score) = (0.0, 0.0);
        for part in &mut self.parts {
            if part.doc() == self.doc {
                let score = part.score();
                max = Score::max(score, max);
                sum += score;
            }
        }
        max + (sum - max) * self.tie_breaker
    }
}

struct RequiredPlusScorer {
    required: Box<dyn Scorer>,
    optional: Vec<Box<dyn Scorer>>,
}

impl DocSet for RequiredPlusScorer {
    fn advance(&mut self) -> DocId {
        self.required.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.required.seek(target)
    }

    fn doc(&self) -> DocId {
        self.required.doc()
    }

    fn size_hint(&self) -> u32 {
        self.required.size_hint()
    }

    fn cost(&self) -> u64 {
        self.required.cost()
    }
}

impl Scorer for RequiredPlusScorer {
    /// As `RequiredOptionalScorer` over a union with `SumCombiner`: the required score plus the
    /// sum (from 0, in order) of the optional parts on this document.
    fn score(&mut self) -> Score {
        let doc = self.required.doc();
        let mut optional: Score = 0.0;
        let mut any = false;
        for part in &mut self.optional {
            if part.doc() < doc {
                part.seek(doc);
            }
            if part.doc() == doc {
                optional += part.score();
                any = true;
            }
        }
        let mut score: Score = 0.0;
        score += self.required.score();
        if any {
            score += optional;
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::{
        BooleanQuery, BoostQuery, DisjunctionMaxQuery, Occur, PhraseQuery, TermQuery,
    };
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{doc, DocAddress, Index, Term};

    /// Both ways of writing a word's query give every document the same score, bit for bit.
    #[test]
    fn scores_equal_tantivys_dismax_and_must_should() {
        let mut builder = Schema::builder();
        let title = builder.add_text_field("title", TEXT);
        let body = builder.add_text_field("body", TEXT);
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 15 << 20).unwrap();
        let words = ["alpha", "beta", "gamma", "delta", "road", "room"];
        for i in 0..3000usize {
            let pick = |k: usize| words[(i * 7 + k * 13 + i / 5) % words.len()];
            let t = format!("{} {} road room {}", pick(0), pick(1), pick(2));
            let b = format!("{} room {} {} {}", pick(3), pick(4), pick(1), pick(0));
            writer.add_document(doc!(title => t, body => b)).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let phrase = |field| -> Box<dyn Query> {
            Box::new(PhraseQuery::new(vec![
                Term::from_field_text(field, "road"),
                Term::from_field_text(field, "room"),
            ]))
        };
        let term = |field, text: &str, factor: f32| -> Box<dyn Query> {
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, text),
                    IndexRecordOption::WithFreqs,
                )),
                factor,
            ))
        };
        let jieba = |text: &str| vec![term(title, text, 1.0), term(body, text, 0.3)];
        let tantivy_way = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(DisjunctionMaxQuery::with_tie_breaker(
                    vec![phrase(title), phrase(body)],
                    0.1,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(jieba("alpha"))),
            ),
            (
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(jieba("gamma"))),
            ),
        ]);
        let seek_way = RequiredPlus::new(
            Box::new(SeekDisMax::new(vec![phrase(title), phrase(body)], 0.1)),
            vec![
                Box::new(SeekDisMax::new(jieba("alpha"), 0.0)),
                Box::new(SeekDisMax::new(jieba("gamma"), 0.0)),
            ],
        );
        let all = |query: &dyn Query| {
            let mut hits: Vec<(DocAddress, u32)> = searcher
                .search(query, &TopDocs::with_limit(10_000).order_by_score())
                .unwrap()
                .into_iter()
                .map(|(score, address): (Score, DocAddress)| (address, score.to_bits()))
                .collect();
            hits.sort();
            hits
        };
        let expected = all(&tantivy_way);
        assert!(expected.len() > 100, "{}", expected.len());
        assert_eq!(all(&seek_way), expected);
        // Matching alone (no scores) is the word's.
        let count = |query: &dyn Query| searcher.search(query, &tantivy::collector::Count).unwrap();
        assert_eq!(count(&seek_way), expected.len());
    }
}
