//! The vocabulary of AttnGAN's `captions.pickle`.

use std::path::Path;

use burn::store::pytorch_reader::{PickleValue, PytorchReader};
use t2i::vocab::{END_TOKEN, Vocabulary};

use super::*;

/// AttnGAN's vocabulary from its `captions.pickle` (`[train_captions, test_captions, ixtoword,
/// wordtoix]`): the index-to-word table, checked against the word-to-index one.
pub fn captions_vocabulary(path: &Path) -> Result<Vocabulary, ImportError> {
    std::fs::metadata(path).map_err(|e| ImportError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let root =
        PytorchReader::read_pickle_data(path, None).map_err(|e| ImportError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let shape_error = |found: String| {
        ImportError::invalid(
            path,
            format!(
                "expected AttnGAN's captions pickle, a list [train_captions, test_captions, \
                 ixtoword, wordtoix]; {found}"
            ),
        )
    };
    let PickleValue::List(parts) = root else {
        return Err(shape_error(format!("found {}", describe(&root))));
    };
    let [
        _,
        _,
        PickleValue::Dict(ix_to_word),
        PickleValue::Dict(word_to_ix),
    ] = parts.as_slice()
    else {
        return Err(shape_error(format!(
            "found a list of {} items: {}",
            parts.len(),
            parts.iter().map(describe).collect::<Vec<_>>().join(", ")
        )));
    };
    let word = |value: &PickleValue| match value {
        PickleValue::String(s) => Some(s.clone()),
        PickleValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    };
    let mut words = vec![None; ix_to_word.len()];
    for (index, value) in ix_to_word {
        let slot = index
            .parse::<usize>()
            .ok()
            .filter(|&i| i < words.len())
            .ok_or_else(|| {
                ImportError::invalid(
                    path,
                    format!(
                        "ixtoword has key {index:?}: the keys must be 0..{}",
                        words.len()
                    ),
                )
            })?;
        words[slot] = Some(word(value).ok_or_else(|| {
            ImportError::invalid(
                path,
                format!("ixtoword[{index}] is {}, not a word", describe(value)),
            )
        })?);
    }
    let words: Vec<String> = words.into_iter().map(Option::unwrap_or_default).collect();
    for (w, value) in word_to_ix {
        let agrees = matches!(value, PickleValue::Int(i)
            if usize::try_from(*i).ok().and_then(|i| words.get(i)) == Some(w));
        if !agrees {
            return Err(ImportError::invalid(
                path,
                format!("wordtoix[{w:?}] is {value:?}, which ixtoword does not map back to {w:?}"),
            ));
        }
    }
    if words.first().map(String::as_str) != Some(END_TOKEN) {
        return Err(ImportError::invalid(
            path,
            format!("ixtoword[0] is {:?}, expected {END_TOKEN:?}", words.first()),
        ));
    }
    Vocabulary::from_words(words).map_err(|e| ImportError::invalid(path, e.to_string()))
}
