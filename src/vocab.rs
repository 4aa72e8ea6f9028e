//! Caption tokenizer and vocabulary, as AttnGAN prepares text (taoxugit/AttnGAN `datasets.py`):
//! lower-case word tokens (runs of letters and digits), index 0 reserved for `<end>`, which
//! also pads, and at most [`WORDS_NUM`] = 18 words per caption.
//!
//! Unlike the reference code, words outside the vocabulary are not dropped silently:
//! [`Vocabulary::encode`] returns them so the caller can show them to the user. A caption a
//! person typed is read with [`Vocabulary::read`]: an unknown word that means a known one
//! ([`crate::word_map`]: "beak" for "bill") is read as it, and reported as mapped.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// AttnGAN's `TEXT.WORDS_NUM`: captions are cut to this many words.
pub const WORDS_NUM: usize = 18;

/// The token that ends and pads every caption (index 0, as in AttnGAN's `wordtoix`).
pub const END_TOKEN: &str = "<end>";

/// Splits a caption into lower-case word tokens: maximal runs of alphanumeric characters,
/// like the `\w+` tokenizer the reference code uses (without the underscore).
pub fn tokenize(caption: &str) -> Vec<String> {
    caption
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The byte ranges `start..end` of [`tokenize`]'s tokens in `caption`, in order: token `i` is
/// `caption[start..end].to_lowercase()`. What lies between them is separators (anything not
/// alphanumeric), which the model never reads.
pub fn token_spans(caption: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in caption.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, caption.len()));
    }
    spans
}

/// What the model makes of one piece of a caption (see [`Vocabulary::segments`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    /// A word the model reads.
    Word,
    /// A word outside the vocabulary: left out.
    Unknown,
    /// A word outside the vocabulary read as a known word of the same meaning
    /// ([`Segment::read_as`]).
    Mapped,
    /// A known word beyond [`WORDS_NUM`]: cut off.
    Truncated,
    /// Text between words (spaces, punctuation): never read.
    Separator,
}

/// A piece of a caption, as typed (original case), with what the model makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub text: String,
    pub kind: SegmentKind,
    /// For a [`SegmentKind::Mapped`] word: the known word it is read as.
    #[serde(rename = "readAs", skip_serializing_if = "Option::is_none")]
    pub read_as: Option<String>,
}

/// An unknown word of a caption and the known word it was read as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappedWord {
    pub word: String,
    #[serde(rename = "readAs")]
    pub read_as: String,
}

/// A caption turned into token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedCaption {
    /// Token ids of the known words, in order, at most [`WORDS_NUM`] of them; never `0`.
    pub tokens: Vec<u32>,
    /// Words of the caption that are not in the vocabulary (nor mapped onto it), in order of
    /// appearance.
    pub unknown_words: Vec<String>,
    /// Words read as a known word of the same meaning ([`Vocabulary::read`] only).
    pub mapped_words: Vec<MappedWord>,
    /// Known words beyond [`WORDS_NUM`] that were cut off.
    pub truncated_words: usize,
}

/// Errors reading a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("vocabulary JSON is malformed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("vocabulary is invalid: {0}")]
    Invalid(String),
}

/// Word <-> index table. Index 0 is [`END_TOKEN`]; the rest follow the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabularyFile", into = "VocabularyFile")]
pub struct Vocabulary {
    index_to_word: Vec<String>,
    word_to_index: HashMap<String, u32>,
}

/// On-disk form: `{"format": "t2i-vocab", "version": 1, "words": ["<end>", ...]}`.
#[derive(Serialize, Deserialize)]
struct VocabularyFile {
    format: String,
    version: u32,
    words: Vec<String>,
}

const VOCAB_FORMAT: &str = "t2i-vocab";
const VOCAB_VERSION: u32 = 1;

impl TryFrom<VocabularyFile> for Vocabulary {
    type Error = VocabError;
    fn try_from(file: VocabularyFile) -> Result<Self, VocabError> {
        if file.format != VOCAB_FORMAT {
            return Err(VocabError::Invalid(format!(
                "format is {:?}, expected {VOCAB_FORMAT:?}",
                file.format
            )));
        }
        if file.version != VOCAB_VERSION {
            return Err(VocabError::Invalid(format!(
                "version {} is not supported (this build reads version {VOCAB_VERSION})",
                file.version
            )));
        }
        Vocabulary::from_words(file.words)
    }
}

impl From<Vocabulary> for VocabularyFile {
    fn from(vocab: Vocabulary) -> Self {
        VocabularyFile {
            format: VOCAB_FORMAT.into(),
            version: VOCAB_VERSION,
            words: vocab.index_to_word,
        }
    }
}

impl Vocabulary {
    /// Builds the vocabulary of a caption corpus: every word that occurs at least `min_count`
    /// times (AttnGAN keeps every word, i.e. `min_count = 1`), sorted by descending frequency
    /// and then alphabetically so that the result does not depend on caption order.
    pub fn build<'a>(captions: impl IntoIterator<Item = &'a str>, min_count: usize) -> Self {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for caption in captions {
            for word in tokenize(caption) {
                *counts.entry(word).or_default() += 1;
            }
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, n)| *n >= min_count.max(1))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut index_to_word = vec![END_TOKEN.to_string()];
        index_to_word.extend(words.into_iter().map(|(w, _)| w));
        Self::from_words(index_to_word).expect("built words are unique and start with <end>")
    }

    /// A vocabulary from an index-ordered word list whose first entry is [`END_TOKEN`]
    /// (the layout of AttnGAN's `ixtoword`).
    pub fn from_words(index_to_word: Vec<String>) -> Result<Self, VocabError> {
        if index_to_word.first().map(String::as_str) != Some(END_TOKEN) {
            return Err(VocabError::Invalid(format!(
                "the first word must be {END_TOKEN:?}"
            )));
        }
        let mut word_to_index = HashMap::with_capacity(index_to_word.len());
        for (i, word) in index_to_word.iter().enumerate() {
            if word_to_index.insert(word.clone(), i as u32).is_some() {
                return Err(VocabError::Invalid(format!(
                    "word {word:?} appears twice (again at index {i})"
                )));
            }
        }
        Ok(Self {
            index_to_word,
            word_to_index,
        })
    }

    /// Number of entries, `<end>` included (the embedding table's row count).
    pub fn len(&self) -> usize {
        self.index_to_word.len()
    }

    /// True when the vocabulary holds only `<end>`.
    pub fn is_empty(&self) -> bool {
        self.index_to_word.len() <= 1
    }

    /// The id of a word, if known.
    pub fn index(&self, word: &str) -> Option<u32> {
        self.word_to_index.get(word).copied()
    }

    /// The word of an id, if in range.
    pub fn word(&self, index: u32) -> Option<&str> {
        self.index_to_word.get(index as usize).map(String::as_str)
    }

    /// Every word, by index.
    pub fn words(&self) -> &[String] {
        &self.index_to_word
    }

    /// Tokenizes and looks up a caption. Unknown words are reported, not encoded; known words
    /// past [`WORDS_NUM`] are cut (AttnGAN samples 18 of them at random during training; for
    /// inference the first 18 are the deterministic choice). Training reads captions this way.
    pub fn encode(&self, caption: &str) -> EncodedCaption {
        self.encode_words(caption, false)
    }

    /// [`Vocabulary::encode`] for a caption a person typed: an unknown word the word map
    /// ([`crate::word_map`]) reads as a known word is encoded as that word and reported in
    /// [`EncodedCaption::mapped_words`].
    pub fn read(&self, caption: &str) -> EncodedCaption {
        self.encode_words(caption, true)
    }

    /// The id `word` (lower case) is read as, and the known word when it was mapped.
    fn lookup(&self, word: &str, map: bool) -> Option<(u32, Option<&str>)> {
        match self.index(word) {
            Some(id) if id != 0 => Some((id, None)),
            _ if map => crate::word_map::read_as(word, self).map(|(known, id)| (id, Some(known))),
            _ => None,
        }
    }

    fn encode_words(&self, caption: &str, map: bool) -> EncodedCaption {
        let mut tokens = Vec::new();
        let mut unknown_words = Vec::new();
        let mut mapped_words = Vec::new();
        let mut truncated_words = 0;
        for word in tokenize(caption) {
            match self.lookup(&word, map) {
                Some(_) if tokens.len() >= WORDS_NUM => truncated_words += 1,
                Some((id, read_as)) => {
                    tokens.push(id);
                    if let Some(known) = read_as {
                        mapped_words.push(MappedWord {
                            read_as: known.to_string(),
                            word,
                        });
                    }
                }
                None => unknown_words.push(word),
            }
        }
        EncodedCaption {
            tokens,
            unknown_words,
            mapped_words,
            truncated_words,
        }
    }

    /// The whole caption cut into words and separators, in order (the texts concatenate to
    /// `caption`), each word marked as [`Vocabulary::read`] treats it: read, read as a known
    /// word, unknown or truncated. For showing a caption the way the model reads it.
    pub fn segments(&self, caption: &str) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut read = 0;
        let mut last = 0;
        let push = |out: &mut Vec<Segment>, text: &str, kind, read_as: Option<&str>| {
            if !text.is_empty() {
                out.push(Segment {
                    text: text.to_string(),
                    kind,
                    read_as: read_as.map(str::to_string),
                });
            }
        };
        for (start, end) in token_spans(caption) {
            push(
                &mut out,
                &caption[last..start],
                SegmentKind::Separator,
                None,
            );
            let text = &caption[start..end];
            let (kind, read_as) = match self.lookup(&text.to_lowercase(), true) {
                Some(_) if read >= WORDS_NUM => (SegmentKind::Truncated, None),
                Some((_, read_as)) => {
                    read += 1;
                    match read_as {
                        Some(known) => (SegmentKind::Mapped, Some(known)),
                        None => (SegmentKind::Word, None),
                    }
                }
                None => (SegmentKind::Unknown, None),
            };
            push(&mut out, text, kind, read_as);
            last = end;
        }
        push(&mut out, &caption[last..], SegmentKind::Separator, None);
        out
    }

    /// Serialises to the versioned JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a vocabulary always serialises")
    }

    /// Reads the versioned JSON form.
    pub fn from_json(json: &str) -> Result<Self, VocabError> {
        Ok(serde_json::from_str(json)?)
    }
}

/// Pads encoded captions into a `[B, T]` id matrix (row-major, `T` = longest caption, at least
/// one column), returning the matrix, `T` and each caption's length. Empty captions keep
/// length 0 and an all-`<end>` row; the text encoder treats them as a single `<end>` token.
pub fn pad_batch(captions: &[&[u32]]) -> (Vec<u32>, usize, Vec<usize>) {
    let width = captions.iter().map(|c| c.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; captions.len() * width];
    let mut lengths = Vec::with_capacity(captions.len());
    for (row, caption) in captions.iter().enumerate() {
        ids[row * width..row * width + caption.len()].copy_from_slice(caption);
        lengths.push(caption.len());
    }
    (ids, width, lengths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_like_attngan() {
        assert_eq!(
            tokenize("This bird's wings are Blue-grey, and it has 2 spots."),
            [
                "this", "bird", "s", "wings", "are", "blue", "grey", "and", "it", "has", "2",
                "spots"
            ]
        );
        assert!(tokenize("  ,,; ").is_empty());
    }

    const TRICKY: &[&str] = &[
        "",
        "   ",
        "<img src=x onerror=alert(1)>",
        "a large duck-like bird, its bill's tip: yellow!",
        "Ünïcödé Straße ΣΊΣΥΦΟΣ 鳥 and émoji🐦bird x²",
        "İstanbul ǅemal: combining e\u{301} mark",
        "tabs\tand\nnewlines\r\n  end",
        "__snake_case__ 3.14 a-b_c",
    ];

    #[test]
    fn token_spans_agree_with_tokenize() {
        for caption in TRICKY {
            let from_spans: Vec<String> = token_spans(caption)
                .into_iter()
                .map(|(a, b)| caption[a..b].to_lowercase())
                .collect();
            assert_eq!(from_spans, tokenize(caption), "{caption:?}");
        }
        assert_eq!(token_spans("src=x"), [(0, 3), (4, 5)]);
        assert_eq!(tokenize("src=x"), ["src", "x"]);
        assert_eq!(token_spans("duck-like"), [(0, 4), (5, 9)]);
        assert_eq!(token_spans("é-b"), [(0, 2), (3, 4)]); // byte offsets
    }

    #[test]
    fn segments_cover_the_caption_and_agree_with_encode() {
        let vocab = Vocabulary::build(["a red bird with a duck like bill", "src x"], 1);
        let long = format!("{} zzyzx", "Red bird, ".repeat(12));
        let mut captions: Vec<&str> = TRICKY.to_vec();
        captions.push(&long);
        for caption in captions {
            let segments = vocab.segments(caption);
            let text: String = segments.iter().map(|s| s.text.as_str()).collect();
            assert_eq!(text, caption);
            let words = |kind| {
                segments
                    .iter()
                    .filter(move |s| s.kind == kind)
                    .map(|s| s.text.to_lowercase())
            };
            let encoded = vocab.encode(caption);
            assert_eq!(
                words(SegmentKind::Unknown).collect::<Vec<_>>(),
                encoded.unknown_words
            );
            assert_eq!(
                words(SegmentKind::Truncated).count(),
                encoded.truncated_words
            );
            assert_eq!(words(SegmentKind::Word).count(), encoded.tokens.len());
            assert!(
                segments
                    .iter()
                    .filter(|s| s.kind == SegmentKind::Separator)
                    .all(|s| !s.text.chars().any(char::is_alphanumeric))
            );
        }
        use SegmentKind::*;
        // The segments written out: separators in brackets, unknown words with a `?`.
        let kinds = |c| -> String {
            let shown = |s: Segment| match s.kind {
                Separator => format!("[{}]", s.text),
                Unknown => format!("{}?", s.text),
                Word => s.text,
                Truncated => format!("{}~", s.text),
                Mapped => format!("{}>{}", s.text, s.read_as.unwrap_or_default()),
            };
            vocab.segments(c).into_iter().map(shown).collect()
        };
        assert_eq!(kinds("<img src=x>"), "[<]img?[ ]src[=]x[>]");
        assert_eq!(kinds("A Duck-like bird"), "A[ ]Duck[-]like[ ]bird");
        let long = vocab.segments(&long);
        assert_eq!(
            long.iter().filter(|s| s.kind == Truncated).count(),
            24 - WORDS_NUM
        );
        assert_eq!(long.last().unwrap().kind, Unknown);
    }

    #[test]
    fn encode_reports_unknown_and_truncates() {
        let vocab = Vocabulary::build(["a red bird", "a blue bird bird"], 1);
        assert_eq!(vocab.word(0), Some(END_TOKEN));
        assert_eq!(vocab.word(1), Some("bird")); // most frequent first
        let enc = vocab.encode("A purple bird");
        assert_eq!(enc.tokens, vec![vocab.index("a").unwrap(), 1]);
        assert_eq!(enc.unknown_words, vec!["purple".to_string()]);
        let long = "bird ".repeat(25);
        let enc = vocab.encode(&long);
        assert_eq!(enc.tokens.len(), WORDS_NUM);
        assert_eq!(enc.truncated_words, 25 - WORDS_NUM);
        // `<end>` typed by a user is not a word of the caption.
        assert_eq!(vocab.encode("<end>").unknown_words, vec!["end".to_string()]);
    }

    #[test]
    fn json_round_trip_and_errors() {
        let vocab = Vocabulary::build(["a red bird"], 1);
        assert_eq!(Vocabulary::from_json(&vocab.to_json()).unwrap(), vocab);
        let bad_version = vocab.to_json().replace("\"version\":1", "\"version\":9");
        assert!(
            Vocabulary::from_json(&bad_version)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        assert!(Vocabulary::from_json("{").is_err());
        assert!(Vocabulary::from_words(vec!["a".into()]).is_err());
        assert!(Vocabulary::from_words(vec![END_TOKEN.into(), "a".into(), "a".into()]).is_err());
    }

    #[test]
    fn pads_batches() {
        let (ids, width, lengths) = pad_batch(&[&[3, 4, 5], &[7], &[]]);
        assert_eq!(width, 3);
        assert_eq!(lengths, vec![3, 1, 0]);
        assert_eq!(ids, vec![3, 4, 5, 7, 0, 0, 0, 0, 0]);
    }
}
