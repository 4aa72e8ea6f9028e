//! English captions synthesised from CUB's per-species attribute table.
//!
//! `cub100` has no human captions. What it has is, for each of the 200 CUB species, the
//! percentage of that species' images annotated with each of 312 attributes
//! (`has_wing_color::blue`, `has_bill_length::shorter_than_head`, …, in 28 groups). From it we
//! write short sentences such as "this small perching bird has a short black cone-shaped bill,
//! blue wings and a white belly".
//!
//! Rules (see [`CaptionSynth`]):
//! * Only attributes *common* in the species are used: percentage >= [`CaptionSynth::threshold`]
//!   (30 by default).
//! * Each caption uses 3–6 attributes from distinct groups (at most one value per group, e.g.
//!   one wing colour), the value drawn in proportion to its percentage; groups are drawn
//!   without replacement with a fixed per-group salience weight times the group's highest
//!   common percentage (so the overall colour, size and wings come up more often than the eye
//!   colour).
//! * Attributes of one body part are merged into one phrase: bill length, colour and shape give
//!   "a short black cone-shaped bill"; wing shape, pattern and colour give "long striped brown
//!   wings"; size and shape qualify the subject ("this small perching bird").
//! * Each attribute and part is said in one of the ways people say it, drawn per caption from
//!   the table of [`super::phrasings`]: "beak" or "bill", "chest" or "breast", "dark" for
//!   black, "tiny" for very small, "streaks on its breast", "a ring around its eye", "a bill
//!   shorter than its head". Every phrasing is true whenever the attribute is.
//! * Ten sentence shapes, with relative clauses ("a bird that has ..."), comma lists and
//!   fragments ("a small bird, black wings and a white belly"), predicates ("and its belly is
//!   white"), colours on parts ("black on its wings") and the overall colour as a predicate
//!   ("mostly black from head to tail", "dressed mostly in black feathers"); at most
//!   [`CaptionSynth::max_words`] words (18: AttnGAN truncates there), counting as the tokenizer
//!   does (runs of letters), dropping attributes when needed (never below 3; at 3, their plain
//!   phrasings in the shortest shape).
//! * Lower case, plain words, no species names.
//! * Seeded per image: the stream depends on the global seed and the image key only, so an
//!   image's captions do not change when other images are added.
//!
//! Such captions describe the species, not the individual photograph.

use std::path::{Path, PathBuf};

use rand::Rng;

use super::phrasings::{
    BARRED, BARS, BILL_LENGTHS, BILL_SHAPES, COLOURS, HEAD_PATTERNS, PATTERNS, Part, SIZES,
};
use super::{DataError, SplitMix64, numbered_lines, read_text_lossy};

/// CUB's attribute names and per-class percentage table.
#[derive(Debug, Clone)]
pub struct AttributeTable {
    /// Attribute names, index = attribute id - 1.
    names: Vec<String>,
    /// Rows, index = class id - 1; each has `names.len()` percentages (0..100).
    rows: Vec<Vec<f32>>,
    /// The percentage file, for error messages.
    table_path: PathBuf,
}

impl AttributeTable {
    /// Reads `<dir>/attributes.txt` (`<id> <name>`, ids 1..n in order) and
    /// `<dir>/class_attribute_labels_continuous.txt` (row k = class id k, n numbers per row).
    pub fn load(dir: &Path) -> Result<Self, DataError> {
        let names_path = dir.join("attributes.txt");
        let table_path = dir.join("class_attribute_labels_continuous.txt");
        let names_text = read_text_lossy(&names_path)?;
        let mut names = Vec::new();
        for (line_no, line) in numbered_lines(&names_text) {
            let mut parts = line.splitn(2, char::is_whitespace);
            let id = parts.next().unwrap_or("");
            let name = parts.next().unwrap_or("").trim();
            let id: usize = id.parse().map_err(|_| {
                DataError::parse(&names_path, line_no, format!("bad attribute id {id:?}"))
            })?;
            if id != names.len() + 1 {
                return Err(DataError::parse(
                    &names_path,
                    line_no,
                    format!(
                        "attribute id {id} out of order (expected {})",
                        names.len() + 1
                    ),
                ));
            }
            if name.is_empty() {
                return Err(DataError::parse(
                    &names_path,
                    line_no,
                    "missing attribute name",
                ));
            }
            names.push(name.to_string());
        }
        if names.is_empty() {
            return Err(DataError::Invalid {
                path: names_path,
                message: "no attributes".into(),
            });
        }
        let table_text = read_text_lossy(&table_path)?;
        let mut rows = Vec::new();
        for (line_no, line) in numbered_lines(&table_text) {
            let row = line
                .split_whitespace()
                .map(|v| v.parse::<f32>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| DataError::parse(&table_path, line_no, "not a number"))?;
            if row.len() != names.len() {
                return Err(DataError::parse(
                    &table_path,
                    line_no,
                    format!("{} values, expected {}", row.len(), names.len()),
                ));
            }
            rows.push(row);
        }
        Ok(AttributeTable {
            names,
            rows,
            table_path,
        })
    }

    /// Builds a table in memory (`rows[k]` = class id `k + 1`).
    pub fn from_parts(names: Vec<String>, rows: Vec<Vec<f32>>) -> Result<Self, DataError> {
        let table_path = PathBuf::from("<in-memory attribute table>");
        for (i, r) in rows.iter().enumerate() {
            if r.len() != names.len() {
                return Err(DataError::parse(
                    &table_path,
                    i + 1,
                    format!("{} values, expected {}", r.len(), names.len()),
                ));
            }
        }
        Ok(AttributeTable {
            names,
            rows,
            table_path,
        })
    }

    /// Attribute names, index = attribute id - 1.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of class rows.
    pub fn n_classes(&self) -> usize {
        self.rows.len()
    }

    /// The percentage of `class_id`'s images showing attribute `attribute_id` (both 1-based).
    pub fn percentage(&self, class_id: u32, attribute_id: u32) -> Option<f32> {
        let row = self.rows.get((class_id as usize).checked_sub(1)?)?;
        row.get((attribute_id as usize).checked_sub(1)?).copied()
    }

    /// The row of `class_id`, or an error naming the table file.
    pub fn row(&self, class_id: u32) -> Result<&[f32], DataError> {
        (class_id as usize)
            .checked_sub(1)
            .and_then(|i| self.rows.get(i))
            .map(Vec::as_slice)
            .ok_or_else(|| DataError::Invalid {
                path: self.table_path.clone(),
                message: format!(
                    "no attribute row for class id {class_id} (the table has {} rows)",
                    self.rows.len()
                ),
            })
    }

    /// Ids (1-based) of the attributes with percentage >= `threshold` in `class_id`.
    pub fn common_attributes(&self, class_id: u32, threshold: f32) -> Vec<u32> {
        match self.row(class_id) {
            Ok(row) => row
                .iter()
                .enumerate()
                .filter(|(_, p)| **p >= threshold)
                .map(|(i, _)| i as u32 + 1)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// One synthesised caption and the attributes it was written from.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthCaption {
    pub text: String,
    /// 1-based attribute ids, one per group used.
    pub attributes: Vec<u32>,
}

/// An attribute group a caption may mention: its key, its best percentage, and its values
/// with their percentages.
type CandidateGroup = (&'static str, f32, Vec<(usize, f32)>);

/// Writes captions for a species from an [`AttributeTable`]. See the module documentation.
#[derive(Debug, Clone)]
pub struct CaptionSynth {
    table: AttributeTable,
    /// Minimum percentage for an attribute to be used (default 30).
    pub threshold: f32,
    /// Attributes per caption, drawn uniformly in `min_attributes..=max_attributes` (3..=6),
    /// fewer only when the species has fewer common attribute groups.
    pub min_attributes: usize,
    pub max_attributes: usize,
    /// Word limit, counting runs of letters (default 18).
    pub max_words: usize,
    /// Parsed attribute names, index = attribute id - 1 (`None`: group not understood).
    parsed: Vec<Option<Attr>>,
}

impl CaptionSynth {
    pub fn new(table: AttributeTable) -> Self {
        let parsed = table.names.iter().map(|n| parse_attribute(n)).collect();
        CaptionSynth {
            table,
            threshold: 30.0,
            min_attributes: 3,
            max_attributes: 6,
            max_words: 18,
            parsed,
        }
    }

    /// Reads the table from `<cub root>/attributes/`.
    pub fn load(attributes_dir: &Path) -> Result<Self, DataError> {
        Ok(CaptionSynth::new(AttributeTable::load(attributes_dir)?))
    }

    pub fn table(&self) -> &AttributeTable {
        &self.table
    }

    /// `n` captions for the image `key` of class `class_id`, from the stream seeded by
    /// `(seed, key)`. Errors only if the table has no row for `class_id`.
    pub fn captions(
        &self,
        class_id: u32,
        key: &str,
        seed: u64,
        n: usize,
    ) -> Result<Vec<SynthCaption>, DataError> {
        let mut rng = SplitMix64::for_key(seed, key);
        let mut out: Vec<SynthCaption> = Vec::with_capacity(n);
        for _ in 0..n {
            // Avoid repeating a caption of the same image where the species allows it.
            let mut cap = self.caption_with_rng(class_id, &mut rng)?;
            for _ in 0..4 {
                if !out.iter().any(|c| c.text == cap.text) {
                    break;
                }
                cap = self.caption_with_rng(class_id, &mut rng)?;
            }
            out.push(cap);
        }
        Ok(out)
    }

    /// One caption for `class_id` drawn from `rng`.
    pub fn caption_with_rng<R: Rng + ?Sized>(
        &self,
        class_id: u32,
        rng: &mut R,
    ) -> Result<SynthCaption, DataError> {
        let row = self.table.row(class_id)?;
        // Candidate groups: (group key, best percentage, [(attribute index, percentage)]).
        let mut groups: Vec<CandidateGroup> = Vec::new();
        for (i, p) in row.iter().enumerate() {
            if *p < self.threshold || *p <= 0.0 {
                continue;
            }
            let Some(attr) = &self.parsed[i] else {
                continue;
            };
            match groups.iter_mut().find(|g| g.0 == attr.group) {
                Some(g) => g.2.push((i, *p)),
                None => groups.push((attr.group, attr.weight, vec![(i, *p)])),
            }
        }
        if groups.is_empty() {
            return Ok(SynthCaption {
                text: "this is a bird".into(),
                attributes: Vec::new(),
            });
        }
        let lo = self.min_attributes.max(1).min(groups.len());
        let hi = self.max_attributes.max(lo).min(groups.len());
        let k = rng.random_range(lo..=hi);
        // Weighted choice of k groups without replacement.
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        let mut pool: Vec<(usize, f32)> = groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let top = g.2.iter().map(|a| a.1).fold(0.0f32, f32::max);
                (gi, g.1 * top / 100.0)
            })
            .collect();
        while chosen.len() < k && !pool.is_empty() {
            let j = weighted_index(rng, pool.iter().map(|p| p.1));
            chosen.push(pool.swap_remove(j).0);
        }
        // One value per chosen group, in proportion to its percentage.
        let mut picks: Vec<usize> = chosen
            .iter()
            .map(|&gi| {
                let vals = &groups[gi].2;
                vals[weighted_index(rng, vals.iter().map(|v| v.1))].0
            })
            .collect();

        loop {
            let attrs: Vec<&Attr> = picks
                .iter()
                .filter_map(|&i| self.parsed[i].as_ref())
                .collect();
            let mut best: Option<String> = None;
            for _ in 0..4 {
                let said: Vec<Said> = attrs.iter().map(|a| a.say(rng)).collect();
                let parts = part_nouns(&said, rng);
                let template = rng.random_range(0..N_TEMPLATES);
                let text = render(&said, &parts, template);
                let words = count_words(&text);
                if words <= self.max_words {
                    best = Some(text);
                    break;
                }
                if best.as_ref().is_none_or(|b| count_words(b) > words) {
                    best = Some(text);
                }
            }
            let mut text = best.unwrap_or_default();
            if count_words(&text) > self.max_words && picks.len() <= lo {
                // As few attributes as allowed and still too long: their plain phrasings in
                // the shortest sentence shape.
                let said: Vec<Said> = attrs.iter().map(|a| a.plain()).collect();
                let parts = plain_nouns(&said);
                text = (0..N_TEMPLATES)
                    .map(|template| render(&said, &parts, template))
                    .min_by_key(|text| count_words(text))
                    .unwrap_or_default();
            }
            if count_words(&text) <= self.max_words || picks.len() <= lo {
                return Ok(SynthCaption {
                    text,
                    attributes: picks.iter().map(|&i| i as u32 + 1).collect(),
                });
            }
            picks.pop();
        }
    }
}

/// Number of words as the tokenizer sees them: maximal runs of ASCII letters.
pub fn count_words(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .count()
}

/// The plain-English phrase for one attribute name, as captions use it: e.g.
/// `has_bill_shape::cone` → "cone-shaped bill", `has_upperparts_color::grey` → "grey
/// upperparts", `has_size::small_(5_-_9_in)` → "small", `has_shape::perching-like` →
/// "perching", `has_bill_length::shorter_than_head` → "short bill",
/// `has_primary_color::yellow` → "mostly yellow", `has_head_pattern::eyering` → "eye ring".
/// `None` for a group the synthesiser does not know.
pub fn attribute_phrase(name: &str) -> Option<String> {
    let a = parse_attribute(name)?;
    let word = a.words[0].0.clone();
    Some(match a.slot {
        Slot::Size | Slot::Shape | Slot::Head => word,
        Slot::Primary => format!("mostly {word}"),
        Slot::Part(part, _) => format!("{word} {}", part.noun()),
    })
}

fn weighted_index<R: Rng + ?Sized>(
    rng: &mut R,
    weights: impl Iterator<Item = f32> + Clone,
) -> usize {
    let total: f32 = weights.clone().map(|w| w.max(0.0)).sum();
    let n = weights.clone().count();
    if total.is_nan() || total <= 0.0 {
        return rng.random_range(0..n.max(1));
    }
    let mut x = rng.random::<f32>() * total;
    for (i, w) in weights.enumerate() {
        let w = w.max(0.0);
        if x < w {
            return i;
        }
        x -= w;
    }
    n - 1
}

/// How an attribute group enters a sentence.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    /// Qualifies the subject: "small bird".
    Size,
    /// Qualifies the subject after the size: "small perching bird".
    Shape,
    /// "is mostly yellow" / "a mostly yellow body".
    Primary,
    /// A stand-alone noun phrase with its own noun ("eye ring", "crest").
    Head,
    /// An adjective of a body part; the number orders adjectives within the phrase:
    /// 0 length/shape, 1 pattern, 2 colour, 3 bill shape.
    Part(Part, u8),
}

/// The words that join a part to its pattern's marks: "a breast with streaks", "a breast
/// covered in streaks".
const MARK_CONNECTORS: [&str; 2] = ["with", "covered in"];

/// What may follow a part's noun instead of an adjective.
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    /// A bill length as a clause: "shorter than its head".
    Clause(&'static str),
    /// A pattern as its marks after a connector ("with streaks", "covered in streaks"), or
    /// alone ("streaks on its breast"): the connector and the marks.
    Marks(&'static str, &'static str),
}

#[derive(Debug, Clone)]
struct Attr {
    group: &'static str,
    slot: Slot,
    weight: f32,
    /// The ways to say it ([`super::phrasings`]), each with whether it takes an article (head
    /// patterns only); the first is the plain one.
    words: Vec<(String, bool)>,
    /// The way to say it after the part's noun, if it has one.
    after: Option<After>,
}

/// One attribute as one caption says it.
#[derive(Debug, Clone)]
struct Said {
    slot: Slot,
    word: String,
    /// Head patterns: whether the phrase takes "a".
    article: bool,
    /// Said after the noun instead of as `word`.
    after: Option<After>,
}

impl Attr {
    /// One of the attribute's phrasings, drawn uniformly from `rng` (the clause or marks form
    /// counting as one of them).
    fn say<R: Rng + ?Sized>(&self, rng: &mut R) -> Said {
        let forms = self.words.len() + usize::from(self.after.is_some());
        let pick = rng.random_range(0..forms);
        match self.words.get(pick) {
            Some((word, article)) => Said {
                slot: self.slot,
                word: word.clone(),
                article: *article,
                after: None,
            },
            None => Said {
                slot: self.slot,
                word: String::new(),
                article: true,
                after: self.after.map(|after| match after {
                    After::Marks(_, marks) => {
                        After::Marks(MARK_CONNECTORS[rng.random_range(0..2)], marks)
                    }
                    clause => clause,
                }),
            },
        }
    }
}

impl Attr {
    /// The attribute's plain phrasing (the first).
    fn plain(&self) -> Said {
        Said {
            slot: self.slot,
            word: self.words[0].0.clone(),
            article: self.words[0].1,
            after: None,
        }
    }
}

/// Each part's first noun.
fn plain_nouns(said: &[Said]) -> Vec<PartName> {
    part_names(said, PartName::plain)
}

/// One name for each part `said` names, in the order they come, from `name`.
fn part_names(said: &[Said], mut name: impl FnMut(Part) -> PartName) -> Vec<PartName> {
    let mut names: Vec<PartName> = Vec::new();
    for s in said {
        if let Slot::Part(part, _) = s.slot
            && !names.iter().any(|n| n.part == part)
        {
            names.push(name(part));
        }
    }
    names
}

/// How a caption names one part: a noun with its number, and where it is ("on its wings",
/// "below").
#[derive(Debug, Clone)]
struct PartName {
    part: Part,
    noun: &'static str,
    plural: bool,
    place: String,
}

impl PartName {
    fn plain(part: Part) -> Self {
        let (noun, plural) = part.nouns()[0];
        Self {
            part,
            noun,
            plural,
            place: format!("on its {noun}"),
        }
    }
}

/// One name for each part the caption names, drawn from `rng`.
fn part_nouns<R: Rng + ?Sized>(said: &[Said], rng: &mut R) -> Vec<PartName> {
    part_names(said, |part| {
        let nouns = part.nouns();
        let (noun, plural) = nouns[rng.random_range(0..nouns.len())];
        let places = part.places();
        let pick = rng.random_range(0..=places.len());
        let place = places
            .get(pick)
            .map_or_else(|| format!("on its {noun}"), |p| p.to_string());
        PartName {
            part,
            noun,
            plural,
            place,
        }
    })
}

const COLOUR_GROUPS: [(&str, Part, f32); 15] = [
    ("has_wing_color", Part::Wings, 2.0),
    ("has_upperparts_color", Part::Upperparts, 1.0),
    ("has_underparts_color", Part::Underparts, 1.0),
    ("has_back_color", Part::Back, 1.2),
    ("has_upper_tail_color", Part::Tail, 1.0),
    ("has_breast_color", Part::Breast, 1.5),
    ("has_throat_color", Part::Throat, 1.2),
    ("has_eye_color", Part::Eyes, 0.5),
    ("has_forehead_color", Part::Forehead, 0.8),
    ("has_under_tail_color", Part::Undertail, 0.6),
    ("has_nape_color", Part::Nape, 0.8),
    ("has_belly_color", Part::Belly, 1.5),
    ("has_leg_color", Part::Legs, 0.6),
    ("has_bill_color", Part::Bill, 1.0),
    ("has_crown_color", Part::Crown, 1.5),
];

const PATTERN_GROUPS: [(&str, Part, f32); 5] = [
    ("has_breast_pattern", Part::Breast, 1.0),
    ("has_back_pattern", Part::Back, 0.8),
    ("has_tail_pattern", Part::Tail, 0.8),
    ("has_belly_pattern", Part::Belly, 0.8),
    ("has_wing_pattern", Part::Wings, 1.2),
];

/// The phrasings of `value` in a table of [`super::phrasings`], or `None`.
fn phrasings_of(table: &[(&str, &[&str])], value: &str) -> Option<Vec<(String, bool)>> {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, ways)| ways.iter().map(|w| (w.to_string(), true)).collect())
}

/// Maps `has_<group>::<value>` to its sentence role and its phrasings. All 28 CUB groups are
/// handled: 15 colour groups, 5 pattern groups, bill shape/length, wing shape, tail shape,
/// size, shape, primary colour and head pattern. A value the tables do not list is said in
/// its own words ([`generic_words`]).
fn parse_attribute(name: &str) -> Option<Attr> {
    let (group, value) = name.trim().split_once("::")?;
    let value = value.trim();
    let attr = |group: &'static str,
                slot: Slot,
                weight: f32,
                words: Option<Vec<(String, bool)>>,
                after: Option<After>| {
        let words = words.unwrap_or_else(|| vec![(generic_words(value), true)]);
        (!words.is_empty() && !words[0].0.is_empty()).then_some(Attr {
            group,
            slot,
            weight,
            words,
            after,
        })
    };
    if let Some(&(g, part, w)) = COLOUR_GROUPS.iter().find(|c| c.0 == group) {
        return attr(
            g,
            Slot::Part(part, 2),
            w,
            phrasings_of(&COLOURS, value),
            None,
        );
    }
    if let Some(&(g, part, w)) = PATTERN_GROUPS.iter().find(|c| c.0 == group) {
        let found = PATTERNS.iter().find(|p| p.0 == value);
        let words = found.map(|p| {
            let barred = (value == "striped" && part.barred_when_striped()).then_some(BARRED);
            p.1.iter()
                .chain(barred.as_ref())
                .map(|w| (w.to_string(), true))
                .collect()
        });
        let marks = found.and_then(|p| p.2).map(|marks| {
            if value == "striped" && part.barred_when_striped() {
                BARS
            } else {
                marks
            }
        });
        let marks = marks.map(|marks| After::Marks(MARK_CONNECTORS[0], marks));
        return attr(g, Slot::Part(part, 1), w, words, marks);
    }
    // A part's shape, said in one word before the part.
    let part_shape = |group, part, word: &str| {
        let words = Some(vec![(word.to_string(), true)]);
        attr(group, Slot::Part(part, 0), 0.8, words, None)
    };
    match group {
        "has_primary_color" => attr(
            "has_primary_color",
            Slot::Primary,
            3.0,
            phrasings_of(&COLOURS, value),
            None,
        ),
        "has_bill_shape" => attr(
            "has_bill_shape",
            Slot::Part(Part::Bill, 3),
            1.5,
            Some(phrasings_of(&BILL_SHAPES, value).unwrap_or_default()),
            None,
        ),
        "has_bill_length" => {
            let found = BILL_LENGTHS.iter().find(|l| l.0 == value);
            attr(
                "has_bill_length",
                Slot::Part(Part::Bill, 0),
                1.2,
                Some(
                    found
                        .map(|l| l.1.iter().map(|w| (w.to_string(), true)).collect())
                        .unwrap_or_default(),
                ),
                found.map(|l| After::Clause(l.2)),
            )
        }
        // "rounded-wings" -> "rounded wings"; "squared_tail" -> "square tail".
        "has_wing_shape" => part_shape(
            "has_wing_shape",
            Part::Wings,
            value.strip_suffix("-wings").unwrap_or(""),
        ),
        "has_tail_shape" => part_shape(
            "has_tail_shape",
            Part::Tail,
            match value.strip_suffix("_tail").unwrap_or("") {
                "squared" => "square",
                w => w,
            },
        ),
        "has_size" => attr(
            "has_size",
            Slot::Size,
            2.0,
            Some(phrasings_of(&SIZES, value).unwrap_or_default()),
            None,
        ),
        "has_shape" => {
            let w = match value {
                "upright-perching_water-like" => "upright water",
                "chicken-like-marsh" => "marsh",
                "long-legged-like" => "long-legged",
                "duck-like" => "duck-like",
                "owl-like" => "owl-like",
                "gull-like" => "gull-like",
                "hummingbird-like" => "hummingbird-like",
                "pigeon-like" => "pigeon-like",
                "tree-clinging-like" => "tree-clinging",
                "hawk-like" => "hawk-like",
                "sandpiper-like" => "sandpiper-like",
                "upland-ground-like" => "ground",
                "swallow-like" => "swallow-like",
                "perching-like" => "perching",
                _ => "",
            };
            attr(
                "has_shape",
                Slot::Shape,
                1.0,
                Some(vec![(w.to_string(), true)]),
                None,
            )
        }
        "has_head_pattern" => {
            let words = HEAD_PATTERNS
                .iter()
                .find(|h| h.0 == value)
                .map(|h| h.1.iter().map(|(w, a)| (w.to_string(), *a)).collect())
                .unwrap_or_else(|| vec![(format!("{} head", generic_words(value)), true)]);
            attr("has_head_pattern", Slot::Head, 1.2, Some(words), None)
        }
        _ => None,
    }
}

/// Lower-case letters, `-` and single spaces; parenthesised parts dropped.
fn generic_words(value: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if c.is_ascii_alphabetic() || c == '-' => out.push(c.to_ascii_lowercase()),
            _ => out.push(' '),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

const N_TEMPLATES: usize = 10;

/// A noun phrase for a body part or head pattern.
struct Phrase {
    adjs: Vec<String>,
    noun: String,
    plural: bool,
    /// Takes "a"/"an" when singular (head patterns such as "spots on its head" do not).
    article: bool,
    /// A bill length's clause, said after the noun.
    clause: Option<&'static str>,
    /// A pattern's marks, said after the noun ("with streaks") or alone ("streaks on its
    /// breast").
    marks: Option<(&'static str, &'static str)>,
    /// Where the part is: "on its wings", "on the back of its neck", "below".
    place: String,
    /// Says only a colour: what "black on its wings" can say.
    colour_only: bool,
}

impl Phrase {
    fn bare(&self) -> String {
        if self.adjs.is_empty()
            && self.clause.is_none()
            && let Some((_, marks)) = self.marks
        {
            return format!("{marks} {}", self.place);
        }
        let mut s = self.adjs.join(" ");
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&self.noun);
        if let Some(clause) = self.clause {
            s.push(' ');
            s.push_str(clause);
        }
        if let Some((connector, marks)) = self.marks {
            s.push_str(&format!(" {connector} {marks}"));
        }
        s
    }

    fn with_article(&self) -> String {
        let bare = self.bare();
        let alone_marks = self.adjs.is_empty() && self.clause.is_none() && self.marks.is_some();
        if self.plural || !self.article || alone_marks {
            bare
        } else {
            format!("{} {bare}", article(&bare))
        }
    }

    /// "its bill is short, black and cone-shaped"; `None` without an adjective or clause.
    fn predicate(&self) -> Option<String> {
        let mut adjs = self.adjs.clone();
        adjs.extend(self.clause.map(str::to_string));
        if adjs.is_empty() {
            return None;
        }
        let marks = self
            .marks
            .map(|(connector, m)| format!(" {connector} {m}"))
            .unwrap_or_default();
        Some(format!(
            "its {} {} {}{marks}",
            self.noun,
            if self.plural { "are" } else { "is" },
            join_list(&adjs)
        ))
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Renders the attributes as said, with each part's noun from `nouns`, in sentence shape
/// `template` (0..N_TEMPLATES).
fn render(said: &[Said], names: &[PartName], template: usize) -> String {
    let mut size = None;
    let mut shape = None;
    let mut primary = None;
    let mut primary_colour = None;
    let mut phrases: Vec<Phrase> = Vec::new();
    let mut part_adjs: Vec<(Part, Vec<&Said>)> = Vec::new();
    // Phrase order follows the order the attributes were drawn in.
    let mut order: Vec<Result<Part, &Said>> = Vec::new();
    for a in said {
        match a.slot {
            Slot::Size => size = Some(a.word.clone()),
            Slot::Shape => shape = Some(a.word.clone()),
            Slot::Primary => {
                primary = Some(format!("mostly {}", a.word));
                primary_colour = Some(a.word.clone());
            }
            Slot::Head => order.push(Err(a)),
            Slot::Part(part, _) => match part_adjs.iter_mut().find(|p| p.0 == part) {
                Some(p) => p.1.push(a),
                None => {
                    part_adjs.push((part, vec![a]));
                    order.push(Ok(part));
                }
            },
        }
    }
    for o in order {
        match o {
            Err(head) => phrases.push(Phrase {
                adjs: Vec::new(),
                noun: head.word.clone(),
                plural: false,
                article: head.article,
                clause: None,
                marks: None,
                place: String::new(),
                colour_only: false,
            }),
            Ok(part) => {
                let mut attrs = part_adjs
                    .iter()
                    .find(|p| p.0 == part)
                    .map(|p| p.1.clone())
                    .unwrap_or_default();
                attrs.sort_by_key(|a| match a.slot {
                    Slot::Part(_, rank) => rank,
                    _ => 0,
                });
                let has_colour = attrs
                    .iter()
                    .any(|a| matches!(a.slot, Slot::Part(_, 2)) && a.after.is_none());
                let colour_only = has_colour && attrs.len() == 1;
                let mut phrase = Phrase {
                    adjs: Vec::new(),
                    noun: String::new(),
                    plural: false,
                    article: true,
                    clause: None,
                    marks: None,
                    place: String::new(),
                    colour_only: false,
                };
                for a in attrs {
                    match a.after {
                        Some(After::Clause(clause)) => phrase.clause = Some(clause),
                        Some(After::Marks(connector, marks)) => {
                            phrase.marks = Some((connector, marks))
                        }
                        // "solid" without a colour reads as "plain".
                        None if a.slot == Slot::Part(part, 1)
                            && a.word == "solid"
                            && !has_colour =>
                        {
                            phrase.adjs.push("plain".to_string())
                        }
                        None => phrase.adjs.push(a.word.clone()),
                    }
                }
                let name = names
                    .iter()
                    .find(|n| n.part == part)
                    .cloned()
                    .unwrap_or_else(|| PartName::plain(part));
                phrase.noun = name.noun.to_string();
                phrase.plural = name.plural;
                phrase.place = name.place;
                phrase.colour_only = colour_only;
                phrases.push(phrase);
            }
        }
    }

    let subject = [size, shape]
        .into_iter()
        .flatten()
        .chain(std::iter::once("bird".to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let a_subject = format!("{} {subject}", article(&subject));

    // Templates that do not use the primary colour as a predicate list it as a body phrase.
    let uses_primary = matches!(template, 2 | 3 | 7) && primary.is_some();
    let mut list: Vec<String> = Vec::new();
    if !uses_primary && let Some(p) = &primary {
        list.push(format!("a {p} body"));
    }
    let first_phrase = list.len();
    list.extend(phrases.iter().map(Phrase::with_article));

    if list.is_empty() {
        // Only subject-level attributes: "this small perching bird is mostly yellow".
        return match (&primary, template % 3) {
            (Some(p), 0) => format!("this {subject} is {p} from head to tail"),
            (Some(p), 1) => format!("{a_subject} that is {p}"),
            (Some(p), _) => format!("the {subject} is {p}"),
            (None, 0) => format!("this is {a_subject}"),
            (None, _) => format!("the picture shows {a_subject}"),
        };
    }
    let all = join_list(&list);
    match template {
        0 => format!("this {subject} has {all}"),
        1 => format!("{a_subject} with {all}"),
        2 => match &primary {
            Some(p) => format!("the {subject} is {p} with {all}"),
            None => format!("the {subject} has {all}"),
        },
        3 => match &primary_colour {
            // "this is a small bird dressed mostly in black feathers, with ...".
            Some(c) => format!("this is {a_subject} dressed mostly in {c} feathers, with {all}"),
            None => format!("this is {a_subject} with {all}"),
        },
        4 => format!("{a_subject} that has {all}"),
        5 => {
            // "... and its belly is white": the last phrase as a predicate.
            let predicate = phrases.last().and_then(Phrase::predicate);
            match predicate {
                Some(pred) if list.len() >= 2 => {
                    let head = join_list(&list[..list.len() - 1]);
                    format!("this {subject} has {head}, and {pred}")
                }
                _ => format!("this {subject} has {all}"),
            }
        }
        6 => {
            // "this bird has wings that are blue and a white belly".
            match phrases.first() {
                Some(p) if !p.adjs.is_empty() && first_phrase == 0 => {
                    let noun = if p.plural || !p.article {
                        p.noun.clone()
                    } else {
                        format!("{} {}", article(&p.noun), p.noun)
                    };
                    let mut items = vec![format!(
                        "{noun} that {} {}",
                        if p.plural { "are" } else { "is" },
                        join_list(&p.adjs)
                    )];
                    items.extend(list[1..].iter().cloned());
                    format!("this {subject} has {}", join_list(&items))
                }
                _ => format!("here is {a_subject} with {all}"),
            }
        }
        7 => match &primary {
            Some(p) => format!("this {subject} is {p} from head to tail, and it has {all}"),
            None => format!("the {subject} has {all}"),
        },
        8 => {
            // A fragment, as a list: "a small bird, black wings, a white belly and a short bill".
            format!("{a_subject}, {all}")
        }
        _ => {
            // Colours on parts: "this bird is black on its wings and white on its belly, with a
            // short bill".
            let (on, rest): (Vec<&Phrase>, Vec<&Phrase>) =
                phrases.iter().partition(|p| p.colour_only);
            if on.is_empty() {
                return format!("{a_subject} with {all}");
            }
            let on: Vec<String> = on
                .iter()
                .map(|p| format!("{} {}", p.adjs[0], p.place))
                .collect();
            let mut rest: Vec<String> = rest.iter().map(|p| p.with_article()).collect();
            if let Some(p) = &primary {
                rest.insert(0, format!("a {p} body"));
            }
            if rest.is_empty() {
                format!("this {subject} is {}", join_list(&on))
            } else {
                format!(
                    "this {subject} is {}, with {}",
                    join_list(&on),
                    join_list(&rest)
                )
            }
        }
    }
}
