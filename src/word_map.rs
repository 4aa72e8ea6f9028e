//! Words a caption may use for the words a model knows: "beak" for "bill", "chest" for
//! "breast", "wing" for "wings". [`read_as`] gives the vocabulary word an unknown word is read
//! as, and the tokenizer says so ("beak -> bill") instead of leaving the word out.
//!
//! The table (`src/word_map.tsv`, 23 kB, compiled in; one table over every shipped vocabulary,
//! each bundle taking the first target it knows) is written by `tools/make_word_map.py`
//! from WordNet 3.0 (Princeton University, a permissive licence kept in the table's header) by
//! three relations only: another form of the same word, a synonym among the word's first
//! senses about bodies, animals, shapes, attributes or adjectives, and an adjective WordNet
//! marks as similar to a vocabulary word's first sense. Function words and colour modifiers
//! (dark, pale, bright) are never mapped, nor mapped onto. `tests/word_map.rs` checks words
//! that must and must not map.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::vocab::Vocabulary;

/// Word -> the words it may be read as, in order of preference.
static TABLE: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    include_str!("word_map.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let word = fields.next()?;
            let targets = fields.next()?.split(' ').collect();
            Some((word, targets))
        })
        .collect()
});

/// The word of `vocabulary` that `word` (lower case, not in the vocabulary) is read as, and
/// its id: the first of the table's targets the vocabulary knows.
pub fn read_as<'v>(word: &str, vocabulary: &'v Vocabulary) -> Option<(&'v str, u32)> {
    TABLE
        .get(word)?
        .iter()
        .find_map(|target| vocabulary.index(target).filter(|&id| id != 0))
        .and_then(|id| Some((vocabulary.word(id)?, id)))
}

/// How many words the table maps.
pub fn len() -> usize {
    TABLE.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_maps_onto_the_vocabulary_it_is_given() {
        assert!(len() > 500, "{} words", len());
        let vocabulary = Vocabulary::build(["a bird with a bill and a breast"], 1);
        assert_eq!(read_as("beak", &vocabulary).map(|(w, _)| w), Some("bill"));
        assert_eq!(
            read_as("chest", &vocabulary).map(|(w, _)| w),
            Some("breast")
        );
        // A target the vocabulary lacks maps nothing.
        assert_eq!(read_as("tiny", &vocabulary), None);
        assert_eq!(read_as("zzyzx", &vocabulary), None);
    }
}
