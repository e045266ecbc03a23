//! The tokenizers of the search index: 1–2-grams of Chinese text (any substring of a name
//! matches), whole codes and their segments (project numbers, volume ids), and jieba words.
//!
//! The same unit splitting serves indexing and querying, so a query's grams line up with the
//! document's positions exactly.

use tantivy::tokenizer::{LowerCaser, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Tokenizer names registered on the index.
pub const JIEBA: &str = "witness_jieba";
pub const GRAMS: &str = "witness_grams";
pub const CODE: &str = "witness_code";

/// Registers the three tokenizers on an index.
pub fn register(index: &tantivy::Index) {
    let tokenizers = index.tokenizers();
    tokenizers.register(
        JIEBA,
        TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new())
            .filter(LowerCaser)
            .build(),
    );
    tokenizers.register(GRAMS, GramTokenizer);
    tokenizers.register(CODE, CodeTokenizer);
}

/// Han characters (the CJK unified ideographs and their extensions) and the Chinese
/// "〇" used in years written out.
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3007 | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// Full-width ASCII (ＬＫＧＣ－２０２６, common in documents typed with a Chinese input method)
/// as plain ASCII, lower-cased.
fn fold(c: char) -> char {
    let c = match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    c.to_ascii_lowercase()
}

/// One unit of text: a Han character or a run of ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub text: String,
    pub han: bool,
    /// Byte range in the original text.
    pub from: usize,
    pub to: usize,
    /// Position: units count one each, and a run of separators counts one, so that grams never
    /// join across a separator.
    pub position: usize,
}

/// Splits text into units.
pub fn units(text: &str) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    let mut position = 0usize;
    let mut in_gap = false;
    let mut word: Option<Unit> = None;
    for (offset, c) in text.char_indices() {
        let folded = fold(c);
        let end = offset + c.len_utf8();
        if folded.is_ascii_alphanumeric() {
            match &mut word {
                Some(w) => {
                    w.text.push(folded);
                    w.to = end;
                }
                None => {
                    word = Some(Unit {
                        text: folded.to_string(),
                        han: false,
                        from: offset,
                        to: end,
                        position,
                    });
                    position += 1;
                }
            }
            in_gap = false;
            continue;
        }
        if let Some(w) = word.take() {
            out.push(w);
        }
        if is_han(c) {
            out.push(Unit {
                text: c.to_string(),
                han: true,
                from: offset,
                to: end,
                position,
            });
            position += 1;
            in_gap = false;
        } else if !in_gap {
            position += 1;
            in_gap = true;
        }
    }
    if let Some(w) = word.take() {
        out.push(w);
    }
    out
}

/// The grams a query word must find in sequence, as (relative position, gram): each run of
/// adjacent units covered by pair grams, a lone unit as itself.
///
/// Pairs that do not overlap cover a run as exactly as all of them (`河南宏达建设` is
/// `河南@0 宏达@2 建设@4`; an odd run ends with one overlapping pair), and a phrase of half the
/// terms intersects half the posting lists: long names are the slowest queries otherwise.
/// A digit next to a Han character pairs with it (`评标室2` is `评标@0 室2@2`): a lone `2` is in
/// nearly every document, `室2` in few, and the phrase is walked over the rarest gram's list.
pub fn query_grams(word: &str) -> Vec<(usize, String)> {
    let units = units(word);
    let Some(first) = units.first().map(|u| u.position) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < units.len() {
        // The run starting here: units adjacent in position.
        let mut end = i + 1;
        while end < units.len() && units[end].position == units[end - 1].position + 1 {
            end += 1;
        }
        let run = &units[i..end];
        if run.len() == 1 {
            out.push((run[0].position - first, run[0].text.clone()));
        } else {
            let mut starts: Vec<usize> = (0..run.len() - 1).step_by(2).collect();
            if run.len() % 2 == 1 {
                starts.push(run.len() - 2);
            }
            for s in starts {
                out.push((
                    run[s].position - first,
                    format!("{}{}", run[s].text, run[s + 1].text),
                ));
            }
        }
        i = end;
    }
    out
}

/// A token stream over tokens computed up front.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl VecTokenStream {
    fn new(tokens: Vec<Token>) -> VecTokenStream {
        VecTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn token(text: String, from: usize, to: usize, position: usize) -> Token {
    Token {
        offset_from: from,
        offset_to: to,
        position,
        text,
        position_length: 1,
    }
}

/// Units as 1-grams and adjacent units as 2-grams (both at the position of their first unit):
/// Han characters one by one, ASCII words whole, so any substring of a Chinese name is a phrase
/// of these grams. Adjacent units are a Han pair, or a Han character and the ASCII word it
/// touches (two ASCII words are never adjacent: a separator lies between them).
#[derive(Debug, Clone, Copy, Default)]
pub struct GramTokenizer;

impl Tokenizer for GramTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let units = units(text);
        let mut tokens = Vec::with_capacity(units.len() * 2);
        for (i, unit) in units.iter().enumerate() {
            tokens.push(token(unit.text.clone(), unit.from, unit.to, unit.position));
            if let Some(next) = units.get(i + 1).filter(|n| n.position == unit.position + 1) {
                tokens.push(token(
                    format!("{}{}", unit.text, next.text),
                    unit.from,
                    next.to,
                    unit.position,
                ));
            }
        }
        VecTokenStream::new(tokens)
    }
}

/// Codes (project numbers like LKGC-2026-0318, volume ids, dates) whole and as every run of
/// their segments, so `lkgc-2026`, `2026-0318` and `0318` all find `LKGC-2026-0318`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeTokenizer;

/// Characters that join the segments of a code.
fn is_code_joiner(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '/' | ':')
}

/// Segments of one code are indexed in runs of at most this many (a long path is no code).
const MAX_CODE_SEGMENTS: usize = 8;

/// The code words of a text: maximal runs of ASCII letters, digits and joiners.
pub fn code_words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    for (offset, c) in text.char_indices() {
        let folded = fold(c);
        if folded.is_ascii_alphanumeric() || is_code_joiner(folded) {
            let entry = current.get_or_insert_with(|| (offset, offset, String::new()));
            entry.1 = offset + c.len_utf8();
            entry.2.push(folded);
        } else if let Some(word) = current.take() {
            out.push(word);
        }
    }
    out.extend(current);
    out.into_iter()
        .filter_map(|(from, to, word)| {
            let trimmed = word.trim_matches(is_code_joiner);
            (!trimmed.is_empty()).then(|| (from, to, trimmed.to_string()))
        })
        .collect()
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        for (position, (from, to, word)) in code_words(text).into_iter().enumerate() {
            // Segment boundaries as byte offsets into `word` (ASCII only, so bytes are chars).
            let mut bounds = vec![0];
            for (i, c) in word.char_indices() {
                if is_code_joiner(c) {
                    bounds.push(i);
                    bounds.push(i + 1);
                }
            }
            bounds.push(word.len());
            let segments: Vec<(usize, usize)> = bounds
                .chunks(2)
                .map(|p| (p[0], p[1]))
                .filter(|(a, b)| a < b)
                .collect();
            for start in 0..segments.len() {
                let last = segments.len().min(start + MAX_CODE_SEGMENTS);
                for end in start..last {
                    let text = word[segments[start].0..segments[end].1].to_string();
                    tokens.push(token(text, from, to, position));
                }
            }
        }
        tokens.sort_by(|a, b| a.position.cmp(&b.position).then(a.text.cmp(&b.text)));
        tokens.dedup_by(|a, b| a.position == b.position && a.text == b.text);
        VecTokenStream::new(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(mut tokenizer: impl Tokenizer, text: &str) -> Vec<String> {
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(format!(
                "{}@{}",
                stream.token().text,
                stream.token().position
            ));
        }
        out
    }

    #[test]
    fn grams_cover_every_substring() {
        assert_eq!(
            texts(GramTokenizer, "兰考县 道路2019"),
            [
                "兰@0",
                "兰考@0",
                "考@1",
                "考县@1",
                "县@2",
                "道@4",
                "道路@4",
                "路@5",
                "路2019@5",
                "2019@6"
            ]
        );
        assert_eq!(query_grams("考县"), [(0, "考县".to_string())]);
        assert_eq!(
            query_grams("兰考县"),
            [(0, "兰考".to_string()), (1, "考县".to_string())]
        );
        assert_eq!(query_grams("2019年"), [(0, "2019年".to_string())]);
        assert_eq!(
            query_grams("评标室2"),
            [(0, "评标".to_string()), (2, "室2".to_string())]
        );
        assert_eq!(query_grams("ＬＫＧＣ"), [(0, "lkgc".to_string())]);
        let grams: Vec<(usize, String)> = ["河南@0", "宏达@2", "建设@4", "设有@5"]
            .iter()
            .map(|g| {
                let (text, at) = g.split_once('@').unwrap();
                (at.parse().unwrap(), text.to_string())
            })
            .collect();
        assert_eq!(query_grams("河南宏达建设有"), grams);
    }

    #[test]
    fn codes_are_indexed_whole_and_by_segment_runs() {
        let tokens = texts(CodeTokenizer, "编号 LKGC-2026-0318。");
        for expected in [
            "lkgc@0",
            "2026@0",
            "0318@0",
            "lkgc-2026@0",
            "2026-0318@0",
            "lkgc-2026-0318@0",
        ] {
            assert!(
                tokens.contains(&expected.to_string()),
                "{expected} in {tokens:?}"
            );
        }
        assert_eq!(tokens.len(), 6);
    }
}
