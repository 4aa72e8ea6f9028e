//! The ways people say what CUB's attributes say: every word the caption synthesiser
//! ([`super::captions`]) may write for an attribute value or a body part, in one table.
//!
//! Each entry starts from one value of CUB's attribute table and lists phrasings that are true
//! whenever that value is: a synonym ("beak" for the bill, "chest" for the breast), a broader
//! word ("dark" for black, "pale" for white and buff, "big" for large), a word for a
//! sub-range that CUB's value already names ("tiny" for very small, 3-5 in), or the same fact
//! as a clause ("a ring around its eye" for the eye ring, "a bill shorter than its head" for a
//! short bill). Nothing here adds a fact the table does not hold: a phrasing never names a
//! colour, pattern or part the attribute value does not. Two judgement calls, kept narrow:
//! "bright" goes only with CUB's saturated hues (yellow, red, orange, blue: the dull ones have
//! their own values, olive, buff and rufous), and "bars" only with striped wings and tails,
//! where CUB's stripes are wing bars and tail bands.
//!
//! The first phrasing of each entry is the plain one ([`super::captions::attribute_phrase`]).
//! Where the synthesiser writes a phrase, it picks one phrasing per caption from the caption's
//! seeded stream, uniformly.

/// CUB's 15 colour values and the words that say each.
pub const COLOURS: [(&str, &[&str]); 15] = [
    ("black", &["black", "dark"]),
    ("white", &["white", "pale", "whitish"]),
    ("grey", &["grey", "gray", "greyish"]),
    ("brown", &["brown", "brownish"]),
    ("buff", &["buff", "tan", "pale brown"]),
    (
        "rufous",
        &["rufous", "rusty", "reddish brown", "chestnut", "warm brown"],
    ),
    ("iridescent", &["iridescent", "glossy", "shiny"]),
    ("olive", &["olive", "olive green", "greenish"]),
    (
        "yellow",
        &[
            "yellow",
            "bright yellow",
            "yellowish",
            "golden yellow",
            "lemon yellow",
        ],
    ),
    ("red", &["red", "bright red", "reddish", "rosy red"]),
    ("orange", &["orange", "bright orange", "orangish"]),
    ("blue", &["blue", "bright blue", "bluish"]),
    ("green", &["green", "greenish"]),
    ("purple", &["purple", "purplish"]),
    ("pink", &["pink", "pinkish"]),
];

/// The CUB colours a colour word may stand for (the inverse of [`COLOURS`], word by word):
/// "dark" stands for black, "pale" for white or buff. `None` for a word that is not a colour
/// word of the table.
pub fn colours_of_word(word: &str) -> Option<Vec<&'static str>> {
    let colours: Vec<&'static str> = COLOURS
        .iter()
        .filter(|(_, ways)| {
            ways.iter()
                .any(|way| way.split(' ').any(|w| w == word) && !is_modifier(word))
        })
        .map(|(colour, _)| *colour)
        .collect();
    (!colours.is_empty()).then_some(colours)
}

/// Words of [`COLOURS`]' phrasings that qualify a colour rather than name one.
fn is_modifier(word: &str) -> bool {
    word == "bright"
}

/// CUB's four pattern values (wing, tail, back, breast and belly patterns): the adjectives
/// that say each, and the noun for the marks when the pattern is said as "with streaks" or
/// "streaks on its breast" (`None`: no such noun).
pub const PATTERNS: [(&str, &[&str], Option<&str>); 4] = [
    (
        "striped",
        &["striped", "streaked", "streaky"],
        Some("streaks"),
    ),
    ("spotted", &["spotted", "speckled"], Some("spots")),
    (
        "multi-colored",
        &["multi-colored", "patterned", "patchy", "mottled"],
        Some("patches"),
    ),
    ("solid", &["plain", "solid", "unmarked"], None),
];

/// The mark noun of striped wings and tails: CUB's wing stripes are wing bars, its tail stripes
/// tail bands.
pub const BARS: &str = "bars";

/// The adjective of striped wings and tails, besides [`PATTERNS`]' ("barred wings").
pub const BARRED: &str = "barred";

/// CUB's five sizes (`has_size`) and the words that say each.
pub const SIZES: [(&str, &[&str]); 5] = [
    ("very_small_(3_-_5_in)", &["very small", "tiny", "little"]),
    ("small_(5_-_9_in)", &["small", "little"]),
    ("medium_(9_-_16_in)", &["medium-sized", "mid-sized"]),
    ("large_(16_-_32_in)", &["large", "big"]),
    ("very_large_(32_-_72_in)", &["very large", "huge", "big"]),
];

/// CUB's bill shapes (`has_bill_shape`) and the adjectives that say each.
pub const BILL_SHAPES: [(&str, &[&str]); 9] = [
    ("curved_(up_or_down)", &["curved"]),
    ("dagger", &["dagger-shaped", "pointed", "sharp", "straight"]),
    ("hooked", &["hooked"]),
    ("hooked_seabird", &["hooked"]),
    ("needle", &["needle-like", "thin", "slender"]),
    ("spatulate", &["flat", "broad", "wide"]),
    ("all-purpose", &["all-purpose"]),
    (
        "cone",
        &["cone-shaped", "conical", "thick", "stout", "heavy"],
    ),
    ("specialized", &["specialized"]),
];

/// CUB's bill lengths (`has_bill_length`): the adjectives that say each, and the clause that
/// says it after the noun ("a black bill shorter than its head").
pub const BILL_LENGTHS: [(&str, &[&str], &str); 3] = [
    (
        "about_the_same_as_head",
        &["medium-length"],
        "as long as its head",
    ),
    ("longer_than_head", &["long"], "longer than its head"),
    (
        "shorter_than_head",
        &["short", "small", "stubby"],
        "shorter than its head",
    ),
];

/// CUB's head patterns (`has_head_pattern`): noun phrases, each with whether it takes "a".
pub const HEAD_PATTERNS: [(&str, &[(&str, bool)]); 11] = [
    (
        "spotted",
        &[("spotted head", true), ("spots on its head", false)],
    ),
    (
        "malar",
        &[("malar stripe", true), ("moustache stripe", true)],
    ),
    (
        "crested",
        &[
            ("crest", true),
            ("crest on its head", true),
            ("crested head", true),
        ],
    ),
    (
        "masked",
        &[
            ("mask", true),
            ("mask across its face", true),
            ("masked face", true),
        ],
    ),
    (
        "unique_pattern",
        &[
            ("distinctive head pattern", true),
            ("bold head pattern", true),
            ("boldly marked face", true),
        ],
    ),
    (
        "eyebrow",
        &[
            ("eyebrow stripe", true),
            ("bold eyebrow stripe", true),
            ("stripe over its eye", true),
            ("line above its eye", true),
        ],
    ),
    (
        "eyering",
        &[("eye ring", true), ("ring around its eye", true)],
    ),
    ("plain", &[("plain head", true), ("plain face", true)]),
    (
        "eyeline",
        &[
            ("eye line", true),
            ("line through its eye", true),
            ("stripe through its eye", true),
            ("stripe across its face", true),
        ],
    ),
    (
        "striped",
        &[("striped head", true), ("stripes on its head", false)],
    ),
    (
        "capped",
        &[
            ("cap", true),
            ("cap on its head", true),
            ("capped head", true),
        ],
    ),
];

/// The body parts CUB's colour, pattern and shape groups describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Bill,
    Wings,
    Tail,
    Undertail,
    Back,
    Breast,
    Belly,
    Throat,
    Eyes,
    Forehead,
    Nape,
    Legs,
    Crown,
    Upperparts,
    Underparts,
}

impl Part {
    /// The nouns that name the part, each with whether it is plural. The first is CUB's. A
    /// wider word is used only where it names the same parts ("feet" with the legs: CUB's leg
    /// colour is that of the bare legs and feet; "belly and sides" with the underparts, which
    /// take in the flanks; "chin and throat" and "bib" with the throat, whose region runs from
    /// the bill down), and "patch" only for parts small enough to be one (throat, crown).
    pub fn nouns(self) -> &'static [(&'static str, bool)] {
        match self {
            Part::Bill => &[("bill", false), ("beak", false)],
            Part::Wings => &[("wings", true), ("wing feathers", true)],
            Part::Tail => &[("tail", false), ("tail feathers", true)],
            Part::Undertail => &[("undertail", false)],
            Part::Back => &[("back", false)],
            Part::Breast => &[("breast", false), ("chest", false)],
            Part::Belly => &[("belly", false)],
            Part::Throat => &[
                ("throat", false),
                ("throat patch", false),
                ("chin and throat", true),
                ("bib", false),
            ],
            Part::Eyes => &[("eyes", true), ("eye", false)],
            Part::Forehead => &[("forehead", false), ("brow", false)],
            Part::Nape => &[("nape", false), ("hindneck", false)],
            Part::Legs => &[("legs", true), ("feet", true), ("legs and feet", true)],
            Part::Crown => &[("crown", false), ("cap", false), ("crown patch", false)],
            Part::Upperparts => &[("upperparts", true), ("upper side", false)],
            Part::Underparts => &[
                ("underparts", true),
                ("underside", false),
                ("belly and sides", true),
            ],
        }
    }

    /// Where on the bird the part is, said besides "on its <noun>" ("black on the back of its
    /// neck", "brown above", "white below").
    pub fn places(self) -> &'static [&'static str] {
        match self {
            Part::Nape => &["on the back of its neck"],
            Part::Crown => &["on the top of its head"],
            Part::Undertail => &["on the underside of its tail"],
            Part::Upperparts => &["on its upper body", "above"],
            Part::Underparts => &["on its lower body", "below", "underneath"],
            _ => &[],
        }
    }

    /// The part's first noun.
    pub fn noun(self) -> &'static str {
        self.nouns()[0].0
    }

    /// Whether a pattern mark of this part is said as [`BARS`] when striped.
    pub fn barred_when_striped(self) -> bool {
        matches!(self, Part::Wings | Part::Tail)
    }

    /// The noun a compound takes ("wing bars"), when the part has one.
    pub fn compound(self) -> Option<&'static str> {
        match self {
            Part::Wings => Some("wing"),
            Part::Tail => Some("tail"),
            _ => None,
        }
    }
}
