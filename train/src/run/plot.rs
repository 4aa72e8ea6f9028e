//! The pictures a training run leaves on disk: grids of samples with their captions, and loss
//! curves. All text is drawn with the public-domain 8x8 bitmap font of `font8x8`, so nothing
//! here needs a system font (CI machines have none).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use burn::prelude::*;
use image::{Rgb, RgbImage, imageops};
use t2i::generate::to_rgb_bytes;

const GLYPH: u32 = 8;
const LINE_H: u32 = 10;
/// Caption lines under an image; longer captions end in "...".
pub const MAX_CAPTION_LINES: usize = 4;
const PAD: u32 = 4;
const INK: Rgb<u8> = Rgb([20, 20, 20]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const GAP: Rgb<u8> = Rgb([200, 200, 200]);
const GRID: Rgb<u8> = Rgb([232, 232, 232]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);
/// Series colours of loss charts, in order (matplotlib's tab10).
pub const PALETTE: [Rgb<u8>; 10] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
    Rgb([188, 189, 34]),
    Rgb([23, 190, 207]),
];

/// A grid of images, `columns` to a row, each upscaled `scale` times (nearest neighbour) with
/// its caption word-wrapped on a white band below it (at most [`MAX_CAPTION_LINES`] lines).
///
/// Images are meant to be of one size; any that differ are stretched to the largest width and
/// height. Caption `i` goes with image `i`: missing captions are empty, extra ones are ignored.
/// `columns` and `scale` of 0 count as 1. No images give a small "no images" picture.
/// Captions are one 8-pixel glyph per character, so `scale` >= 2 suits 64x64 samples.
pub fn caption_grid(
    images: &[RgbImage],
    captions: &[String],
    columns: usize,
    scale: u32,
) -> RgbImage {
    let tiles: Vec<(&[RgbImage], &str)> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let caption = captions.get(i).map_or("", String::as_str);
            (std::slice::from_ref(image), caption)
        })
        .collect();
    tile_grid(&tiles, columns, scale)
}

/// One row per caption: the row's images side by side (e.g. Stage-I and Stage-II of one
/// sample, or several seeds), all stretched to the largest image size times `scale`, and the
/// caption under them across the row's width. Rows with fewer images leave the rest blank.
pub fn caption_grid_rows(rows: &[(Vec<RgbImage>, String)], scale: u32) -> RgbImage {
    let tiles: Vec<(&[RgbImage], &str)> = rows
        .iter()
        .map(|(images, caption)| (images.as_slice(), caption.as_str()))
        .collect();
    tile_grid(&tiles, 1, scale)
}

fn tile_grid(tiles: &[(&[RgbImage], &str)], columns: usize, scale: u32) -> RgbImage {
    let all = || tiles.iter().flat_map(|(images, _)| images.iter());
    let cell_w = all().map(RgbImage::width).max().unwrap_or(0) * scale.max(1);
    let cell_h = all().map(RgbImage::height).max().unwrap_or(0) * scale.max(1);
    if cell_w == 0 || cell_h == 0 {
        let mut out = RgbImage::from_pixel(96, 16, WHITE);
        draw_text(&mut out, 8, 4, "no images", INK, 1);
        return out;
    }
    let per_tile = tiles
        .iter()
        .map(|(images, _)| images.len())
        .max()
        .unwrap_or(1)
        .max(1) as u32;
    let tile_w = per_tile * cell_w + (per_tile - 1) * PAD / 2;
    let chars = ((tile_w.saturating_sub(2 * PAD)) / GLYPH).max(1) as usize;
    let wrapped: Vec<Vec<String>> = tiles
        .iter()
        .map(|(_, caption)| {
            wrap(
                &caption.replace('\u{2026}', "..."),
                chars,
                MAX_CAPTION_LINES,
            )
        })
        .collect();
    let lines = wrapped.iter().map(Vec::len).max().unwrap_or(0).max(1) as u32;
    let band_h = PAD + lines * LINE_H;
    let tile_h = cell_h + band_h;
    let columns = columns.clamp(1, tiles.len()) as u32;
    let rows = tiles.len().div_ceil(columns as usize) as u32;
    let mut out = RgbImage::from_pixel(
        PAD + columns * (tile_w + PAD),
        PAD + rows * (tile_h + PAD),
        GAP,
    );
    for (i, ((images, _), lines)) in tiles.iter().zip(&wrapped).enumerate() {
        let x0 = PAD + (i as u32 % columns) * (tile_w + PAD);
        let y0 = PAD + (i as u32 / columns) * (tile_h + PAD);
        for (j, image) in images.iter().enumerate() {
            let x = x0 + j as u32 * (cell_w + PAD / 2);
            if image.dimensions() == (cell_w, cell_h) {
                imageops::replace(&mut out, image, x.into(), y0.into());
            } else if image.width() > 0 && image.height() > 0 {
                let big = imageops::resize(image, cell_w, cell_h, imageops::FilterType::Nearest);
                imageops::replace(&mut out, &big, x.into(), y0.into());
            }
        }
        fill(&mut out, x0, y0 + cell_h, tile_w, band_h, WHITE);
        for (k, line) in lines.iter().enumerate() {
            let y = y0 + cell_h + PAD / 2 + k as u32 * LINE_H + 1;
            draw_text(&mut out, x0 + PAD, y, line, INK, 1);
        }
    }
    out
}

/// `image` lit by one word's attention `map` (`size x size` weights, row-major, over the
/// image's area): the map is stretched to the image (bilinear), scaled so its largest weight
/// is 1, and each pixel is blended toward a dark blue by one minus its weight, so where the
/// word is attended the image shows and elsewhere it fades. A map that is not `size * size`
/// long, or is all zero, leaves the image faded throughout.
pub fn attention_overlay(image: &RgbImage, map: &[f32], size: usize) -> RgbImage {
    let (width, height) = image.dimensions();
    let valid = size > 0 && map.len() == size * size;
    let peak = if valid {
        map.iter().cloned().fold(0.0f32, f32::max)
    } else {
        0.0
    };
    let weight = |x: u32, y: u32| -> f32 {
        if peak <= 0.0 {
            return 0.0;
        }
        // Pixel centres in map coordinates, clamped to the map's centres.
        let at = |p: u32, extent: u32| {
            ((p as f32 + 0.5) * size as f32 / extent as f32 - 0.5).clamp(0.0, (size - 1) as f32)
        };
        let (mx, my) = (at(x, width), at(y, height));
        let (x0, y0) = (mx.floor() as usize, my.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
        let (fx, fy) = (mx - x0 as f32, my - y0 as f32);
        let v = |xx: usize, yy: usize| map[yy * size + xx];
        let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
        let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
        (top * (1.0 - fy) + bottom * fy) / peak
    };
    const SHADE: [f32; 3] = [10.0, 20.0, 60.0];
    RgbImage::from_fn(width, height, |x, y| {
        let w = weight(x, y).clamp(0.0, 1.0);
        let p = image.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|c| {
            (p[c] as f32 * w + SHADE[c] * (1.0 - w)).round() as u8
        }))
    })
}

/// Greedy word wrap to `width` characters over at most `max_lines` lines; words longer than
/// a line are split, and text that does not fit ends in "...".
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = current.chars().count();
            if used > 0 && used + 1 + word.len() <= width {
                current.push(' ');
                current.extend(word);
                break;
            } else if used == 0 && word.len() <= width {
                current.extend(word);
                break;
            } else if used == 0 {
                current.extend(word.drain(..width));
            }
            lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        let last: Vec<char> = lines[max_lines - 1].chars().collect();
        let keep = last.len().min(width.saturating_sub(3));
        let kept: String = last[..keep].iter().collect();
        lines[max_lines - 1] = format!("{}...", kept.trim_end());
    }
    lines
}

/// The 8x8 bitmap of `c` (row by row, bit 0 leftmost); '?' for characters the font lacks.
fn glyph(c: char) -> [u8; 8] {
    use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
    let c = match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{2032}' => '\'',
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{2033}' => '"',
        other => other,
    };
    match c as u32 {
        code @ 0x20..0x7f => BASIC_LEGACY[code as usize],
        code @ 0xa0..=0xff => LATIN_LEGACY[code as usize - 0xa0],
        _ => BASIC_LEGACY[b'?' as usize],
    }
}

/// Writes `text` with its top-left corner at (x, y), each font pixel `size` pixels wide;
/// whatever falls outside the image is dropped.
fn draw_text(image: &mut RgbImage, x: u32, y: u32, text: &str, colour: Rgb<u8>, size: u32) {
    for (i, c) in text.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8u32 {
                if bits & (1 << col) != 0 {
                    let px = x + (i as u32 * GLYPH + col) * size;
                    fill(image, px, y + row as u32 * size, size, size, colour);
                }
            }
        }
    }
}

fn text_width(text: &str, size: u32) -> u32 {
    text.chars().count() as u32 * GLYPH * size
}

/// Fills a rectangle, clipped to the image.
fn fill(image: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    for py in y..(y.saturating_add(h)).min(image.height()) {
        for px in x..(x.saturating_add(w)).min(image.width()) {
            image.put_pixel(px, py, colour);
        }
    }
}

/// One line of a chart: `faint` ones are thin, pale and left out of the legend.
struct Line<'a> {
    label: &'a str,
    points: &'a [(f64, f64)],
    colour: Rgb<u8>,
    faint: bool,
}

/// A line chart of named series of (step, loss) points: axes with tick labels, a legend in
/// [`PALETTE`] colours, and the title. Non-finite points are skipped; a series of one point is
/// a dot, an empty one only has its legend entry. Sizes below 200x150 are raised to it.
pub fn loss_curves(
    series: &[(&str, Vec<(f64, f64)>)],
    title: &str,
    width: u32,
    height: u32,
) -> RgbImage {
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(i, (label, points))| Line {
            label,
            points,
            colour: PALETTE[i % PALETTE.len()],
            faint: false,
        })
        .collect();
    chart(&lines, title, width, height)
}

fn chart(lines: &[Line], title: &str, width: u32, height: u32) -> RgbImage {
    let (width, height) = (width.max(200), height.max(150));
    let mut out = RgbImage::from_pixel(width, height, WHITE);
    let title_size = if text_width(title, 2) + 16 <= width {
        2
    } else {
        1
    };
    let title_x = width.saturating_sub(text_width(title, title_size)) / 2;
    draw_text(&mut out, title_x, 6, title, INK, title_size);

    // Legend: rows of swatch + name under the title.
    let (mut lx, mut ly) = (12, 12 + 8 * title_size);
    for line in lines.iter().filter(|l| !l.faint) {
        let w = 20 + text_width(line.label, 1) + 16;
        if lx > 12 && lx + w > width - 8 {
            (lx, ly) = (12, ly + 12);
        }
        fill(&mut out, lx, ly + 3, 16, 3, line.colour);
        draw_text(&mut out, lx + 20, ly, line.label, INK, 1);
        lx += w;
    }

    let finite = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values
            .map(|v| v.clamp(-1e300, 1e300))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            (0.0, 1.0)
        } else if hi - lo <= 1e-12 * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
            (lo - pad, hi + pad)
        } else {
            (lo, hi)
        }
    };
    let (x_lo, x_hi) = range(&mut finite().map(|p| p.0));
    let (y_lo, y_hi) = range(&mut finite().map(|p| p.1));
    let top = ly + 20;
    let plot_h = height.saturating_sub(top + 34).max(20);
    let (y_ticks, y_step) = ticks(y_lo, y_hi, (plot_h / 45).clamp(2, 8) as usize);
    let y_labels: Vec<String> = y_ticks.iter().map(|&v| tick_label(v, y_step)).collect();
    let left = 12 + y_labels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0);
    let plot_w = width.saturating_sub(left + 24).max(20);
    let (x_ticks, x_step) = ticks(x_lo, x_hi, (plot_w / 90).clamp(2, 10) as usize);
    let (x0, x1) = (*x_ticks.first().unwrap(), *x_ticks.last().unwrap());
    let (y0, y1) = (*y_ticks.first().unwrap(), *y_ticks.last().unwrap());
    let to_px = |x: f64, y: f64| {
        let px = left as f64 + (x - x0) / (x1 - x0) * plot_w as f64;
        let py = (top + plot_h) as f64 - (y - y0) / (y1 - y0) * plot_h as f64;
        (px, py)
    };

    for (&v, label) in y_ticks.iter().zip(&y_labels) {
        let py = to_px(x0, v).1.round() as u32;
        fill(&mut out, left, py, plot_w, 1, GRID);
        fill(&mut out, left - 4, py, 4, 1, AXIS);
        draw_text(
            &mut out,
            left - 6 - text_width(label, 1),
            py.saturating_sub(4),
            label,
            INK,
            1,
        );
    }
    let mut free_from = 0;
    for &v in &x_ticks {
        let px = to_px(v, y0).0.round() as u32;
        fill(&mut out, px, top, 1, plot_h, GRID);
        fill(&mut out, px, top + plot_h, 1, 4, AXIS);
        let label = tick_label(v, x_step);
        let lx = px.saturating_sub(text_width(&label, 1) / 2);
        if lx >= free_from {
            draw_text(&mut out, lx, top + plot_h + 7, &label, INK, 1);
            free_from = lx + text_width(&label, 1) + 8;
        }
    }
    let axis_label_x = left + plot_w.saturating_sub(text_width("step", 1)) / 2;
    draw_text(&mut out, axis_label_x, top + plot_h + 20, "step", INK, 1);
    fill(&mut out, left, top, 1, plot_h + 1, AXIS);
    fill(&mut out, left, top + plot_h, plot_w + 1, 1, AXIS);
    fill(&mut out, left + plot_w, top, 1, plot_h + 1, AXIS);
    fill(&mut out, left, top, plot_w + 1, 1, AXIS);
    if finite().next().is_none() {
        let msg = "no data";
        let x = left + plot_w.saturating_sub(text_width(msg, 1)) / 2;
        draw_text(&mut out, x, top + plot_h / 2, msg, AXIS, 1);
    }

    let clip = (left, top, left + plot_w, top + plot_h);
    for line in lines
        .iter()
        .filter(|l| l.faint)
        .chain(lines.iter().filter(|l| !l.faint))
    {
        let (alpha, thick) = if line.faint { (0.3, 1) } else { (1.0, 2) };
        let pixels: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| to_px(x, y))
            .collect();
        if let [(px, py)] = pixels[..] {
            for dy in -2..=2 {
                for dx in -2..=2 {
                    plot(
                        &mut out,
                        px + dx as f64,
                        py + dy as f64,
                        line.colour,
                        alpha,
                        clip,
                    );
                }
            }
        }
        for pair in pixels.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            let n = (bx - ax).abs().max((by - ay).abs()).ceil().max(1.0) as usize;
            // Skip the segment's first pixel: the previous segment drew it (matters when faint).
            for k in 1..=n {
                let t = k as f64 / n as f64;
                let (px, py) = (ax + t * (bx - ax), ay + t * (by - ay));
                for d in 0..thick {
                    plot(&mut out, px, py - d as f64, line.colour, alpha, clip);
                }
            }
        }
    }
    out
}

/// Blends `colour` into the pixel nearest (x, y) if it lies within `clip` (x0, y0, x1, y1).
fn plot(
    image: &mut RgbImage,
    x: f64,
    y: f64,
    colour: Rgb<u8>,
    alpha: f64,
    clip: (u32, u32, u32, u32),
) {
    let inside = |v: f64, lo: u32, hi: u32| v >= lo as f64 && v <= hi as f64;
    if !(inside(x, clip.0, clip.2) && inside(y, clip.1, clip.3)) {
        return;
    }
    let pixel = image.get_pixel_mut(x.round() as u32, y.round() as u32);
    for (old, new) in pixel.0.iter_mut().zip(colour.0) {
        *old = (alpha * new as f64 + (1.0 - alpha) * *old as f64).round() as u8;
    }
}

/// Round tick values covering [lo, hi], about `target` of them, and their spacing.
fn ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / target as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = magnitude
        * match raw / magnitude {
            n if n < 1.5 => 1.0,
            n if n < 3.0 => 2.0,
            n if n < 7.0 => 5.0,
            _ => 10.0,
        };
    let first = (lo / step).floor() as i64;
    let last = ((hi / step).ceil() as i64).max(first + 1);
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

fn tick_label(v: f64, step: f64) -> String {
    if v.abs() < step * 1e-6 {
        "0".into()
    } else if v.abs() >= 1e7 || step < 1e-4 {
        format!("{v:.1e}")
    } else {
        format!("{v:.*}", (-step.log10() - 1e-9).ceil().max(0.0) as usize)
    }
}

/// Reads `keys` against `step` from a metrics file of JSON lines (one object per line, such as
/// `{"step":1,"loss_d":1.2,"loss_g":3.4}`). Lines without a key, and values that are null
/// (serde_json writes NaN so) or not finite, are skipped; blank lines too, and an unfinished
/// last line (a run still writing). Other bad lines are errors naming the file and line.
pub fn read_metrics(jsonl: &Path, keys: &[&str]) -> Result<Vec<Vec<(f64, f64)>>> {
    let text = std::fs::read_to_string(jsonl)
        .with_context(|| format!("cannot read {}", jsonl.display()))?;
    let mut series = vec![Vec::new(); keys.len()];
    let count = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", jsonl.display(), i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) if i + 1 == count && !text.ends_with('\n') => break,
            Err(e) => return Err(anyhow!("{}: not JSON: {e}", at())),
        };
        let object = value
            .as_object()
            .ok_or_else(|| anyhow!("{}: not a JSON object", at()))?;
        let step = object
            .get("step")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| anyhow!("{}: no numeric \"step\"", at()))?;
        for (key, points) in keys.iter().zip(&mut series) {
            let y = match object.get(*key) {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                Some(serde_json::Value::String(s)) => s.parse().unwrap_or(f64::NAN),
                Some(other) => return Err(anyhow!("{}: \"{key}\" is not a number: {other}", at())),
            };
            if y.is_finite() {
                points.push((step, y));
            }
        }
    }
    Ok(series)
}

/// Centred running mean over `window` points (fewer at the ends).
fn running_mean(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut sums = vec![0.0];
    for &(_, y) in points {
        sums.push(sums.last().unwrap() + y);
    }
    let n = points.len();
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(window / 2);
            let hi = (lo + window).min(n);
            (points[i].0, (sums[hi] - sums[lo]) / (hi - lo) as f64)
        })
        .collect()
}

/// Loss curves of `keys` from a metrics file (see [`read_metrics`]), 960x540: each key is
/// smoothed by a centred running mean over 1% of its points, drawn over its raw values in a
/// faint line of the same colour.
pub fn loss_curves_from_metrics(jsonl: &Path, keys: &[&str], title: &str) -> Result<RgbImage> {
    let raw = read_metrics(jsonl, keys)?;
    let smooth: Vec<Vec<(f64, f64)>> = raw
        .iter()
        .map(|points| running_mean(points, (points.len() / 100).max(1)))
        .collect();
    let mut lines = Vec::new();
    for (i, (key, (raw, smooth))) in keys.iter().zip(raw.iter().zip(&smooth)).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if smooth.len() >= 200 {
            lines.push(Line {
                label: key,
                points: raw,
                colour,
                faint: true,
            });
        }
        lines.push(Line {
            label: key,
            points: smooth,
            colour,
            faint: false,
        });
    }
    Ok(chart(&lines, title, 960, 540))
}

/// `[B, 3, H, W]` in [-1, 1] -> RGB images, decoded as the page decodes them
/// ([`t2i::generate::to_rgb_bytes`]).
pub fn tensor_to_images(images: Tensor<4>) -> Result<Vec<RgbImage>> {
    let [_, _, height, width] = images.dims();
    to_rgb_bytes(images)?
        .pixels
        .into_iter()
        .map(|rgb| {
            RgbImage::from_raw(width as u32, height as u32, rgb)
                .context("an image's bytes do not fill its size")
        })
        .collect()
}

/// Draws the losses `keys` of a run's `metrics.jsonl` into `out`.
pub fn write_loss_curve(metrics: &Path, out: &Path, keys: &[&str], title: &str) -> Result<()> {
    if !metrics.exists() {
        return Ok(());
    }
    let chart = crate::run::plot::loss_curves_from_metrics(metrics, keys, title)?;
    chart
        .save(out)
        .with_context(|| format!("cannot write {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    fn dark_pixels(image: &RgbImage, x: u32, y: u32, w: u32, h: u32) -> usize {
        (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .filter(|&(px, py)| image.get_pixel(px, py).0.iter().all(|&c| c < 80))
            .count()
    }

    fn has_colour(image: &RgbImage, colour: Rgb<u8>) -> bool {
        image.pixels().any(|p| *p == colour)
    }

    #[test]
    fn grid_dimensions() {
        let images: Vec<RgbImage> = (0..5).map(|_| grey(64, 64, 128)).collect();
        let captions: Vec<String> = (0..5).map(|i| format!("bird {i}")).collect();
        // 3 columns, 2 rows, one caption line: tile 128 x (128 + 4 + 10).
        let grid = caption_grid(&images, &captions, 3, 2);
        assert_eq!(grid.dimensions(), (4 + 3 * 132, 4 + 2 * (142 + 4)));
        let grid = caption_grid(&images, &captions, 10, 1);
        assert_eq!(grid.dimensions(), (4 + 5 * 68, 4 + 78 + 4));
        let grid = caption_grid(&images[..1], &[], 0, 0);
        assert_eq!(grid.dimensions(), (4 + 68, 4 + 78 + 4));
        let long = vec!["word ".repeat(100)];
        let grid = caption_grid(&images[..1], &long, 4, 2);
        assert_eq!(
            grid.height(),
            4 + 128 + 4 + 10 * MAX_CAPTION_LINES as u32 + 4
        );
        let rows = vec![
            (
                vec![grey(64, 64, 100), grey(256, 256, 200)],
                "a".to_string(),
            ),
            (vec![grey(64, 64, 100)], String::new()),
        ];
        let grid = caption_grid_rows(&rows, 1);
        assert_eq!(
            grid.dimensions(),
            (4 + 2 * 256 + 2 + 4, 4 + 2 * (256 + 14 + 4))
        );
        for odd in [caption_grid(&[], &[], 3, 2), caption_grid_rows(&[], 2)] {
            assert!(odd.width() > 0 && odd.height() > 0);
        }
        let empty_rows = vec![(Vec::new(), "nothing".to_string())];
        assert!(caption_grid_rows(&empty_rows, 2).width() > 0);
    }

    #[test]
    fn captions_are_drawn_only_when_present() {
        let images = vec![grey(64, 64, 160), grey(64, 64, 160)];
        let captions = vec!["a small yellow bird".to_string(), String::new()];
        let grid = caption_grid(&images, &captions, 2, 2);
        let band = |column: u32| dark_pixels(&grid, 4 + column * 132, 4 + 128, 128, 14);
        assert!(
            band(0) > 50,
            "caption text expected, got {} dark pixels",
            band(0)
        );
        assert_eq!(band(1), 0);
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4, 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("  ", 4, 4), Vec::<String>::new());
        let lines = wrap(&"word ".repeat(50), 12, 3);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[2].ends_with("...") && lines[2].len() <= 12,
            "{lines:?}"
        );
        assert_eq!(wrap("héllo wörld", 1, 2), ["h", "..."]);
    }

    #[test]
    fn chart_shows_both_series() {
        let d: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 1.0 + (i as f64 * 0.1).sin()))
            .collect();
        let g: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 3.0 - i as f64 * 0.01))
            .collect();
        let image = loss_curves(&[("loss_d", d), ("loss_g", g)], "losses", 640, 360);
        assert_eq!(image.dimensions(), (640, 360));
        assert!(has_colour(&image, PALETTE[0]) && has_colour(&image, PALETTE[1]));
        assert!(!has_colour(&image, PALETTE[2]));
    }

    #[test]
    fn odd_chart_inputs_do_not_panic() {
        let nan = vec![
            (f64::NAN, 1.0),
            (1.0, f64::NAN),
            (2.0, f64::INFINITY),
            (3.0, 2.0),
        ];
        type Series<'a> = Vec<(&'a str, Vec<(f64, f64)>)>;
        let cases: Vec<Series> = vec![
            vec![("nan", nan)],
            vec![("all nan", vec![(f64::NAN, f64::NAN)])],
            vec![("one", vec![(5.0, 0.5)])],
            vec![("empty", vec![])],
            vec![],
            vec![
                ("flat", vec![(0.0, 0.0), (1.0, 0.0)]),
                ("huge", vec![(0.0, 1e30), (1e9, -1e30)]),
            ],
            vec![("tiny", vec![(0.0, 1e-9), (1.0, 2e-9)])],
        ];
        for series in cases {
            let image = loss_curves(&series, "", 0, 0);
            assert!(image.width() >= 200);
            if let Some((_, points)) = series.first().filter(|(_, p)| !p.is_empty()) {
                assert!(has_colour(&image, PALETTE[0]), "{points:?}");
            }
        }
    }

    #[test]
    fn metrics_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let good = "{\"step\":1,\"loss_d\":1.0}\n";
        std::fs::write(&path, format!("{good}\n{{\"step\":2,\"loss_d\":\n{good}")).unwrap();
        let error = format!("{:#}", read_metrics(&path, &["loss_d"]).unwrap_err());
        assert!(error.contains("metrics.jsonl:3:"), "{error}");
        std::fs::write(&path, format!("{good}{{\"loss_d\":1}}\n")).unwrap();
        let error = format!("{:#}", read_metrics(&path, &["loss_d"]).unwrap_err());
        assert!(
            error.contains("metrics.jsonl:2:") && error.contains("step"),
            "{error}"
        );
        // An unfinished last line is a run still writing: ignored. Null (NaN) values skipped.
        std::fs::write(
            &path,
            format!("{good}{{\"step\":2,\"loss_d\":null}}\n{{\"step\":3,"),
        )
        .unwrap();
        assert_eq!(
            read_metrics(&path, &["loss_d", "x"]).unwrap(),
            [vec![(1.0, 1.0)], vec![]]
        );
    }

    #[test]
    fn running_mean_smooths() {
        let points: Vec<(f64, f64)> = (0..6).map(|i| (i as f64, (i % 2) as f64)).collect();
        assert_eq!(running_mean(&points, 1), points);
        let smooth = running_mean(&points, 2);
        assert!(smooth[1..5].iter().all(|&(_, y)| y == 0.5), "{smooth:?}");
    }

    /// Writes one picture of each kind to <temp>/plot_examples/ to look at.
    #[test]
    fn writes_examples() {
        let dir = std::env::temp_dir().join("plot_examples");
        std::fs::create_dir_all(&dir).unwrap();
        let sample = |seed: u32, size: u32| {
            RgbImage::from_fn(size, size, |x, y| {
                let v = (x * 7 + y * 3 + seed * 40) % 256;
                Rgb([v as u8, (255 - v) as u8, ((x ^ y) * 4 % 256) as u8])
            })
        };
        let captions = [
            "this bird has a bright red crown, black wings with white wingbars and a short pointed beak",
            "a small yellow bird",
            "",
            "the flower has petals that are pink and white with yellow stamen in the centre, and long stems",
            "Übergrößenvögel™ — “unicode” …",
            "a",
        ];
        let images: Vec<RgbImage> = (0..6).map(|i| sample(i, 64)).collect();
        let captions: Vec<String> = captions.iter().map(|c| c.to_string()).collect();
        caption_grid(&images, &captions, 3, 2)
            .save(dir.join("caption_grid.png"))
            .unwrap();
        let rows: Vec<(Vec<RgbImage>, String)> = (0..3)
            .map(|i| {
                (
                    vec![sample(i, 64), sample(i, 256)],
                    captions[i as usize].clone(),
                )
            })
            .collect();
        caption_grid_rows(&rows, 1)
            .save(dir.join("caption_grid_rows.png"))
            .unwrap();
        let series: Vec<(&str, Vec<(f64, f64)>)> = vec![
            (
                "loss_d",
                (0..50)
                    .map(|i| (i as f64 * 20.0, 1.5 / (1.0 + i as f64 * 0.1)))
                    .collect(),
            ),
            (
                "loss_g",
                (0..50)
                    .map(|i| (i as f64 * 20.0, 2.0 + (i as f64 * 0.3).sin()))
                    .collect(),
            ),
            ("kl", vec![(100.0, 0.2), (500.0, f64::NAN), (900.0, 0.4)]),
        ];
        loss_curves(&series, "GAN losses", 640, 360)
            .save(dir.join("loss_curves.png"))
            .unwrap();
        let mut jsonl = String::new();
        for step in 1..=3000u32 {
            let t = step as f64;
            let noise = ((t * 12.9898).sin() * 43758.5453).fract();
            let d = 1.4 * (-t / 800.0).exp() + 0.3 + 0.3 * noise;
            let g = 2.0 + 2.0 * (1.0 - (-t / 600.0).exp()) + 0.8 * noise;
            jsonl += &format!(
                "{{\"step\":{step},\"epoch\":{},\"loss_d\":{d},\"loss_g\":{g}}}\n",
                step / 100
            );
        }
        let path = dir.join("metrics.jsonl");
        std::fs::write(&path, jsonl).unwrap();
        let chart = loss_curves_from_metrics(&path, &["loss_d", "loss_g"], "stage I").unwrap();
        chart
            .save(dir.join("loss_curves_from_metrics.png"))
            .unwrap();
    }
}
