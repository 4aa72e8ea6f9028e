//! A coloured-shapes toy dataset for learning tests of the models: one shape (circle, square or
//! triangle) in one of four colours on a light grey or white background, at a random position
//! and size, with captions that name the colour and the shape in varied words.

use image::{Rgb, RgbImage};
use rand::Rng;

use super::SplitMix64;

/// Colour names and their base RGB values (each image jitters them slightly).
pub const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [215, 35, 35]),
    ("green", [35, 165, 55]),
    ("blue", [40, 70, 215]),
    ("yellow", [235, 205, 25]),
];

/// Shape names.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

/// Other words for each shape, used in captions (index as [`SHAPES`]).
const SHAPE_WORDS: [&[&str]; 3] = [
    &["circle", "round shape", "disk", "circle"],
    &["square", "box", "square shape", "square"],
    &[
        "triangle",
        "triangular shape",
        "three sided shape",
        "triangle",
    ],
];

/// What a shapes image shows: indices into [`COLOURS`] and [`SHAPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeLabel {
    pub colour: usize,
    pub shape: usize,
}

impl ShapeLabel {
    /// All colour x shape combinations, colour-major.
    pub fn all() -> Vec<ShapeLabel> {
        (0..COLOURS.len())
            .flat_map(|colour| (0..SHAPES.len()).map(move |shape| ShapeLabel { colour, shape }))
            .collect()
    }

    /// A uniformly drawn colour, then shape.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        ShapeLabel {
            colour: rng.random_range(0..COLOURS.len()),
            shape: rng.random_range(0..SHAPES.len()),
        }
    }

    /// A class index in `0..COLOURS.len() * SHAPES.len()`.
    pub fn class_index(&self) -> usize {
        self.colour * SHAPES.len() + self.shape
    }

    pub fn colour_name(&self) -> &'static str {
        COLOURS[self.colour % COLOURS.len()].0
    }

    pub fn shape_name(&self) -> &'static str {
        SHAPES[self.shape % SHAPES.len()]
    }
}

/// Where and how a shape was drawn (fractions of the image side).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeGeometry {
    pub cx: f32,
    pub cy: f32,
    /// Half-extent of the shape.
    pub radius: f32,
    /// Background grey level.
    pub background: u8,
}

/// `n` images of `size x size` with one caption each, seeded: item `i` depends only on
/// `(seed, i)`, so a longer dataset extends a shorter one.
pub fn shapes_dataset(n: usize, size: u32, seed: u64) -> Vec<(RgbImage, String, ShapeLabel)> {
    (0..n)
        .map(|i| {
            let mut rng = SplitMix64::for_key(seed, &format!("shape/{i}"));
            let label = ShapeLabel::random(&mut rng);
            let (img, geom) = draw_shape(label, size, &mut rng);
            let caption = shape_caption(label, &geom, &mut rng);
            (img, caption, label)
        })
        .collect()
}

/// Background colours of [`shapes_on_backgrounds_dataset`]: neutral, so that the shape is the
/// only saturated region.
pub const BACKGROUNDS: [(&str, [u8; 3]); 3] = [
    ("white", [240, 240, 240]),
    ("grey", [135, 135, 135]),
    ("black", [25, 25, 25]),
];

/// Like [`shapes_dataset`], on a white, grey or black background (the index into
/// [`BACKGROUNDS`] is returned with each item) that every caption names beside the colour and
/// the shape: two words each describing their own region of the image. The colour is the first
/// word and the background the last, where a sentence feature made of an LSTM's end states
/// (DAMSM's) holds them most strongly, even when the encoder is untrained.
pub fn shapes_on_backgrounds_dataset(
    n: usize,
    size: u32,
    seed: u64,
) -> Vec<(RgbImage, String, ShapeLabel, usize)> {
    (0..n)
        .map(|i| {
            let mut rng = SplitMix64::for_key(seed, &format!("shape-on-background/{i}"));
            let label = ShapeLabel::random(&mut rng);
            let background = rng.random_range(0..BACKGROUNDS.len());
            let (img, _) = draw_shape_on(label, size, BACKGROUNDS[background].1, &mut rng);
            let (c, s, bg) = (
                label.colour_name(),
                label.shape_name(),
                BACKGROUNDS[background].0,
            );
            let caption = match rng.random_range(0..4) {
                0 => format!("{c} {s} on {bg}"),
                1 => format!("{c} {s} in front of {bg}"),
                2 => format!("{c} {s} over {bg}"),
                _ => format!("{c} {s} against {bg}"),
            };
            (img, caption, label, background)
        })
        .collect()
}

/// Draws `label` at a random position and size (radius 18–38 % of the side) on a random light
/// background, with the colour jittered by up to ±20 per channel; edges are antialiased.
pub fn draw_shape<R: Rng + ?Sized>(
    label: ShapeLabel,
    size: u32,
    rng: &mut R,
) -> (RgbImage, ShapeGeometry) {
    let (cx, cy, radius) = random_placement(rng);
    let background = 185 + (rng.random::<f32>() * 70.0) as u8;
    let colour = jittered_colour(label, rng);
    let geom = ShapeGeometry {
        cx,
        cy,
        radius,
        background,
    };
    (
        render_shape(label, size, &geom, colour, [background; 3]),
        geom,
    )
}

/// Like [`draw_shape`], on a background of the given colour instead of a random grey
/// (`ShapeGeometry::background` is then its mean level).
pub fn draw_shape_on<R: Rng + ?Sized>(
    label: ShapeLabel,
    size: u32,
    background: [u8; 3],
    rng: &mut R,
) -> (RgbImage, ShapeGeometry) {
    let (cx, cy, radius) = random_placement(rng);
    let colour = jittered_colour(label, rng);
    let geom = ShapeGeometry {
        cx,
        cy,
        radius,
        background: (background.iter().map(|&v| v as u32).sum::<u32>() / 3) as u8,
    };
    (render_shape(label, size, &geom, colour, background), geom)
}

/// Centre and half-extent (fractions of the side): radius 18–38 %, the shape inside the image.
fn random_placement<R: Rng + ?Sized>(rng: &mut R) -> (f32, f32, f32) {
    let radius = 0.18 + 0.20 * rng.random::<f32>();
    let cx = radius + (1.0 - 2.0 * radius) * rng.random::<f32>();
    let cy = radius + (1.0 - 2.0 * radius) * rng.random::<f32>();
    (cx, cy, radius)
}

/// The label's colour jittered by up to ±20 per channel.
fn jittered_colour<R: Rng + ?Sized>(label: ShapeLabel, rng: &mut R) -> [u8; 3] {
    let base = COLOURS[label.colour % COLOURS.len()].1;
    std::array::from_fn(|c| {
        let j = rng.random::<f32>() * 40.0 - 20.0;
        (base[c] as f32 + j).clamp(0.0, 255.0) as u8
    })
}

/// The shape of `label` at `geom` in `colour` over `background`, antialiased (16 samples per
/// pixel).
fn render_shape(
    label: ShapeLabel,
    size: u32,
    geom: &ShapeGeometry,
    colour: [u8; 3],
    background: [u8; 3],
) -> RgbImage {
    let s = size as f32;
    let (pcx, pcy, r) = (geom.cx * s, geom.cy * s, geom.radius * s);
    let inside = |x: f32, y: f32| -> bool {
        let (dx, dy) = (x - pcx, y - pcy);
        match label.shape % SHAPES.len() {
            0 => dx * dx + dy * dy <= r * r,
            1 => dx.abs() <= 0.85 * r && dy.abs() <= 0.85 * r,
            _ => {
                // Apex up; base at 0.8 r below the centre, half-width 0.95 r.
                let top = -r;
                let bottom = 0.8 * r;
                if dy < top || dy > bottom {
                    return false;
                }
                let half = 0.95 * r * (dy - top) / (bottom - top);
                dx.abs() <= half
            }
        }
    };
    const SUB: [f32; 4] = [0.125, 0.375, 0.625, 0.875];
    let mut img = RgbImage::from_pixel(size, size, Rgb(background));
    for y in 0..size {
        for x in 0..size {
            let mut hits = 0u32;
            for sy in SUB {
                for sx in SUB {
                    if inside(x as f32 + sx, y as f32 + sy) {
                        hits += 1;
                    }
                }
            }
            if hits > 0 {
                let a = hits as f32 / 16.0;
                let px: [u8; 3] = std::array::from_fn(|c| {
                    (a * colour[c] as f32 + (1.0 - a) * background[c] as f32).round() as u8
                });
                img.put_pixel(x, y, Rgb(px));
            }
        }
    }
    img
}

/// A caption naming the colour and the shape, in one of ten sentence shapes, sometimes with the
/// size, position or background.
pub fn shape_caption<R: Rng + ?Sized>(
    label: ShapeLabel,
    geom: &ShapeGeometry,
    rng: &mut R,
) -> String {
    let c = label.colour_name();
    let words = SHAPE_WORDS[label.shape % SHAPES.len()];
    let s = words[rng.random_range(0..words.len())];
    // The word for a value below `low`, above `high` or between them.
    let band = |value: f32, low, high, [below, between, above]: [&'static str; 3]| {
        if value < low {
            below
        } else if value > high {
            above
        } else {
            between
        }
    };
    let size_word = band(geom.radius, 0.24, 0.32, ["small", "medium sized", "large"]);
    let horiz = band(geom.cx, 0.4, 0.6, ["left", "middle", "right"]);
    let vert = band(geom.cy, 0.4, 0.6, ["top", "middle", "bottom"]);
    let position = match (vert, horiz) {
        ("middle", "middle") => "in the middle".to_string(),
        ("middle", h) => format!("on the {h}"),
        (v, "middle") => format!("at the {v}"),
        (v, h) => format!("in the {v} {h}"),
    };
    let bg = if geom.background >= 235 {
        "white"
    } else {
        "grey"
    };
    match rng.random_range(0..10) {
        0 => format!("a {c} {s}"),
        1 => format!("a {size_word} {c} {s}"),
        2 => format!("there is a {c} {s} on the picture"),
        3 => format!("a {c} {s} on a {bg} background"),
        4 => format!("the picture shows a {c} {s}"),
        5 => format!("one {c} {s} {position}"),
        6 => format!("a {s} that is {c}"),
        7 => format!("a {c} {s} {position} of the image"),
        8 => format!("this image has a {size_word} {s} coloured {c}"),
        _ => format!("a {bg} picture with a {c} {s}"),
    }
}
