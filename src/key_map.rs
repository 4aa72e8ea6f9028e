//! Tensor names of the authors' PyTorch state dicts against this crate's module paths, written
//! once as a table of `(theirs, ours)` name patterns and read either way: theirs to ours when
//! importing a checkpoint, ours to theirs to name what a checkpoint lacks. The inverse is
//! derived, never written by hand.
//!
//! A pattern is a piece of a tensor name: literal characters, `{n}` for a run of digits
//! (possibly none) and `{w}` for a run of word characters, each captured and carried to the
//! other side in order; a leading `^` anchors it at the start of the name. Rules apply in table
//! order, each to every match in the name.

/// A table of `(theirs, ours)` name patterns.
pub type KeyTable = &'static [(&'static str, &'static str)];

/// Which way a table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The authors' names to this crate's module paths.
    ToModule,
    /// Module paths to the authors' names.
    ToCheckpoint,
}

/// The table as (regex, replacement) pairs in the given direction, for `regex::Regex` or
/// burn's key remapping.
///
/// # Panics
/// On a malformed table (a character other than a word character or `.`, or sides whose
/// placeholders differ): tables are constants, and a test reads every one.
pub fn remapping(table: KeyTable, direction: Direction) -> Vec<(String, String)> {
    table
        .iter()
        .map(|&(theirs, ours)| {
            let (from, to) = match direction {
                Direction::ToModule => (theirs, ours),
                Direction::ToCheckpoint => (ours, theirs),
            };
            let (from_pieces, from_holes) = pieces(from);
            let (to_pieces, to_holes) = pieces(to);
            assert_eq!(
                from_holes, to_holes,
                "key rule {theirs:?} <-> {ours:?}: both sides need the same placeholders"
            );
            let anchor = if from.starts_with('^') { "^" } else { "" };
            let mut pattern = anchor.to_string();
            let mut replacement = String::new();
            for (k, piece) in from_pieces.iter().enumerate() {
                pattern.push_str(&piece.replace('.', r"\."));
                if let Some(hole) = from_holes.get(k) {
                    pattern.push_str(match hole {
                        'n' => r"(\d*)",
                        _ => r"(\w*)",
                    });
                }
            }
            for (k, piece) in to_pieces.iter().enumerate() {
                replacement.push_str(piece);
                if k < to_holes.len() {
                    replacement.push_str(&format!("${{{}}}", k + 1));
                }
            }
            (pattern, replacement)
        })
        .collect()
}

/// A pattern's literal pieces and, between them, its placeholders (`n` or `w`).
fn pieces(pattern: &str) -> (Vec<String>, Vec<char>) {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let mut pieces = vec![String::new()];
    let mut holes = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                let kind = chars.next();
                assert!(
                    matches!(kind, Some('n' | 'w')) && chars.next() == Some('}'),
                    "key pattern {pattern:?}: placeholders are {{n}} and {{w}}"
                );
                holes.push(kind.unwrap_or('w'));
                pieces.push(String::new());
            }
            c if c == '.' || c == '_' || c.is_ascii_alphanumeric() => {
                pieces.last_mut().expect("starts with one piece").push(c);
            }
            other => panic!("key pattern {pattern:?}: {other:?} is not a name character"),
        }
    }
    (pieces, holes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_anchored_regexes_with_numbered_captures() {
        const TABLE: KeyTable = &[("^net.{n}.block.0.", "^net.{n}.conv1."), (".fc.1.", ".bn.")];
        assert_eq!(
            remapping(TABLE, Direction::ToModule),
            vec![
                (r"^net\.(\d*)\.block\.0\.".into(), "net.${1}.conv1.".into()),
                (r"\.fc\.1\.".into(), ".bn.".into()),
            ]
        );
        assert_eq!(
            remapping(TABLE, Direction::ToCheckpoint)[0],
            (r"^net\.(\d*)\.conv1\.".into(), "net.${1}.block.0.".into())
        );
    }

    #[test]
    #[should_panic(expected = "same placeholders")]
    fn sides_with_other_placeholders_are_refused() {
        remapping(&[("a.{n}.", "b.")], Direction::ToModule);
    }
}
