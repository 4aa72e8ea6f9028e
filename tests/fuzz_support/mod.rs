//! The fuzzing machinery both crates' fuzz targets share (`tests/fuzz.rs`,
//! `train/tests/fuzz.rs`): the corpus, byte and header-field mutations, and a runner that
//! bounds each case's time and reports the counts.

#![allow(dead_code)] // each fuzz target uses its own part

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// No case may take longer.
pub const CASE_SECONDS: f64 = 5.0;

/// `tests/fixtures/fuzz/` of the repository, from either crate.
pub fn corpus_dir() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if here.join("tests/fixtures/fuzz").is_dir() {
        here.to_path_buf()
    } else {
        here.join("..")
    };
    root.join("tests/fixtures/fuzz")
}

/// The committed corpus of one target: every file of its folder.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir().join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Cases per target: `FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Minutes per target at most: `FUZZ_MINUTES`, else no limit. The long runs of
/// `tools/fuzz.sh` stop a target at a million cases or this, whichever comes first.
pub fn minutes() -> Option<f64> {
    std::env::var("FUZZ_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|m: &f64| *m > 0.0)
}

/// Cases per round: a long run is cut into rounds so it can stop at its time limit.
const ROUND_CASES: u32 = 50_000;

/// A runner of `cases` cases drawn from seed `FUZZ_SEED` (else 0), round `round` of it: `make
/// test` draws the same cases on every machine, so it passes or fails the same way;
/// `tools/fuzz.sh` draws new ones each run.
pub fn runner(cases: u32, round: u64) -> TestRunner {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&round.to_le_bytes());
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| ByteEdit::Insert(at, bytes)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, n)| ByteEdit::Remove(at, n)),
    ]
}

/// Applies `edits`; positions fall in the first `focus` bytes (the header) when `focus` is not
/// zero, anywhere otherwise.
pub fn apply(mut bytes: Vec<u8>, edits: &[ByteEdit], focus: usize) -> Vec<u8> {
    for edit in edits {
        let span = if focus > 0 {
            focus.min(bytes.len())
        } else {
            bytes.len()
        };
        let at = |i: usize| if span == 0 { 0 } else { i % span };
        match edit {
            ByteEdit::Set(i, b) if !bytes.is_empty() => {
                let i = at(*i);
                bytes[i] = *b;
            }
            ByteEdit::Truncate(n) => bytes.truncate(at(*n)),
            ByteEdit::Insert(i, more) => {
                let i = at(*i);
                bytes.splice(i..i, more.iter().copied());
            }
            ByteEdit::Remove(i, n) if !bytes.is_empty() => {
                let i = at(*i);
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            _ => {}
        }
    }
    bytes
}

/// A safetensors file's header: its JSON and where the data starts.
pub fn header(bytes: &[u8]) -> Option<(serde_json::Value, usize)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let json = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    Some((json, 8 + n))
}

pub fn with_header(json: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(json).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    out
}

/// Numbers a hostile header would claim.
pub const HOSTILE_NUMBERS: [i64; 9] = [0, 1, -1, 3, 255, 65_536, 1 << 31, 1 << 40, i64::MAX];

/// One change to a safetensors header: a tensor's shape, offsets or dtype, or a number or
/// string inside a `t2i.*` metadata value (the configurations are JSON too).
#[derive(Debug, Clone)]
pub enum FieldEdit {
    Shape(usize, usize, i64),
    Offsets(usize, i64, i64),
    Dtype(usize, &'static str),
    MetadataNumber(usize, usize, i64),
    MetadataText(usize, String),
    DropKey(usize),
}

pub fn field_edit() -> impl Strategy<Value = FieldEdit> {
    let number = proptest::sample::select(HOSTILE_NUMBERS.to_vec());
    prop_oneof![
        (any::<usize>(), 0usize..4, number.clone()).prop_map(|(t, d, v)| FieldEdit::Shape(t, d, v)),
        (any::<usize>(), number.clone(), number.clone())
            .prop_map(|(t, a, b)| FieldEdit::Offsets(t, a, b)),
        (
            any::<usize>(),
            proptest::sample::select(vec![
                "F32", "F16", "BF16", "F64", "I8", "U8", "I64", "BOOL", "X"
            ])
        )
            .prop_map(|(t, d)| FieldEdit::Dtype(t, d)),
        (any::<usize>(), any::<usize>(), number)
            .prop_map(|(k, i, v)| FieldEdit::MetadataNumber(k, i, v)),
        (any::<usize>(), "\\PC{0,40}").prop_map(|(k, s)| FieldEdit::MetadataText(k, s)),
        any::<usize>().prop_map(FieldEdit::DropKey),
    ]
}

/// The `index`-th number of a JSON text (by `i % count`) replaced by `value`.
pub fn replace_number(text: &str, index: usize, value: i64) -> String {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return text.to_string();
    }
    let (a, b) = spans[index % spans.len()];
    format!("{}{value}{}", &text[..a], &text[b..])
}

/// The header's `__metadata__` and its `k`-th key (by `k % count`), if it has one.
fn metadata_entry(
    object: &mut serde_json::Map<String, serde_json::Value>,
    k: usize,
) -> Option<(&mut serde_json::Map<String, serde_json::Value>, String)> {
    let meta = object.get_mut("__metadata__")?.as_object_mut()?;
    let key = meta.keys().nth(k % meta.len().max(1))?.clone();
    Some((meta, key))
}

pub fn edit_fields(bytes: &[u8], edits: &[FieldEdit]) -> Vec<u8> {
    let Some((mut json, start)) = header(bytes) else {
        return bytes.to_vec();
    };
    let data = bytes[start..].to_vec();
    let Some(object) = json.as_object_mut() else {
        return bytes.to_vec();
    };
    let tensors: Vec<String> = object
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    for edit in edits {
        let tensor = |t: usize| tensors.get(t % tensors.len().max(1)).cloned();
        match edit {
            FieldEdit::Shape(t, d, v) => {
                if let Some(name) = tensor(*t)
                    && let Some(shape) = object[&name]["shape"].as_array_mut()
                {
                    if shape.is_empty() {
                        shape.push((*v).into());
                    } else {
                        let d = d % shape.len();
                        shape[d] = (*v).into();
                    }
                }
            }
            FieldEdit::Offsets(t, a, b) => {
                if let Some(name) = tensor(*t) {
                    object[&name]["data_offsets"] = serde_json::json!([a, b]);
                }
            }
            FieldEdit::Dtype(t, d) => {
                if let Some(name) = tensor(*t) {
                    object[&name]["dtype"] = (*d).into();
                }
            }
            FieldEdit::MetadataNumber(k, i, v) => {
                if let Some((meta, key)) = metadata_entry(object, *k) {
                    let text = meta[&key].as_str().unwrap_or("").to_string();
                    meta[&key] = replace_number(&text, *i, *v).into();
                }
            }
            FieldEdit::MetadataText(k, s) => {
                if let Some((meta, key)) = metadata_entry(object, *k) {
                    meta[&key] = s.clone().into();
                }
            }
            FieldEdit::DropKey(k) => {
                if let Some((meta, key)) = metadata_entry(object, *k) {
                    meta.remove(&key);
                }
            }
        }
    }
    with_header(&json, &data)
}

/// `mutations` nine times in ten, else up to `max_len` random bytes.
pub fn or_random_bytes(
    mutations: impl Strategy<Value = Vec<u8>>,
    max_len: usize,
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        9 => mutations,
        1 => proptest::collection::vec(any::<u8>(), 0..max_len),
    ]
}

/// Fuzzes the readers of a file named `name` (in a temporary folder) with `strategy`'s bytes:
/// `read` gives the messages of the errors they returned, and each must name the file.
pub fn fuzz_file(
    target: &str,
    default_cases: u32,
    name: &str,
    strategy: impl Strategy<Value = Vec<u8>>,
    read: impl Fn(&std::path::Path) -> Vec<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fuzz(target, default_cases, strategy, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        for message in read(&path) {
            prop_assert!(message.contains(name), "{message}");
        }
        Ok(())
    });
}

/// A corpus file changed by byte edits (mostly in the header) and field edits.
pub fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = corpus.len();
    (
        0..n,
        proptest::collection::vec(field_edit(), 0..4),
        proptest::collection::vec(byte_edit(), 0..4),
        any::<bool>(),
    )
        .prop_map(move |(i, fields, edits, in_header)| {
            let bytes = edit_fields(&corpus[i], &fields);
            let focus = if in_header {
                header(&bytes).map_or(0, |(_, start)| start)
            } else {
                0
            };
            apply(bytes, &edits, focus)
        })
}

/// A corpus file changed by byte edits anywhere (formats without a safetensors header).
pub fn mutated_bytes(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = corpus.len();
    (0..n, proptest::collection::vec(byte_edit(), 1..6))
        .prop_map(move |(i, edits)| apply(corpus[i].clone(), &edits, 0))
}

/// Runs `check` on `FUZZ_CASES` (else `default_cases`) cases of `strategy`, each within
/// [`CASE_SECONDS`], in rounds of [`ROUND_CASES`] until the cases are done or `FUZZ_MINUTES`
/// have passed; prints the count.
pub fn fuzz<T: std::fmt::Debug>(
    target: &str,
    default_cases: u32,
    strategy: impl Strategy<Value = T>,
    check: impl Fn(&T) -> Result<(), TestCaseError>,
) {
    let started = Instant::now();
    let total = cases(default_cases);
    let limit = minutes().map(|m| std::time::Duration::from_secs_f64(m * 60.0));
    let count = std::cell::Cell::new(0u64);
    let slowest = std::cell::Cell::new(0.0f64);
    let (mut drawn, mut round) = (0u32, 0u64);
    while drawn < total && limit.is_none_or(|limit| started.elapsed() < limit) {
        let cases = (total - drawn).min(ROUND_CASES);
        runner(cases, round)
            .run(&strategy, |input| {
                let t = Instant::now();
                check(&input)?;
                let seconds = t.elapsed().as_secs_f64();
                slowest.set(slowest.get().max(seconds));
                count.set(count.get() + 1);
                prop_assert!(seconds < CASE_SECONDS, "a case took {seconds:.1} s");
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        drawn += cases;
        round += 1;
    }
    eprintln!(
        "fuzz {target}: {} cases in {:.1} s (slowest {:.3} s)",
        count.get(),
        started.elapsed().as_secs_f64(),
        slowest.get()
    );
}
