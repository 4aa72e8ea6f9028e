//! Native generation speed of a GAN bundle on the flex backend: ms per 64x64 image at batch 1
//! and batch 8 (caption encoding included).
//!   cargo run --release -p t2i-train --example bench_generate -- weights/gan_int_cls_birds_small.int8.safetensors

use std::time::Instant;

use burn::prelude::*;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "weights/gan_int_cls_birds_small.int8.safetensors".to_string());
    let device = Device::flex();
    let start = Instant::now();
    let bundle =
        t2i::bundle::load_bundle::<t2i::bundle::GanIntClsWeights>(&std::fs::read(&path)?, &device)?;
    println!(
        "loaded {path} ({}) in {:.0} ms",
        bundle.precision,
        start.elapsed().as_secs_f64() * 1e3
    );
    let caption = "a small red bird with black wings and a short bill";
    for batch in [1usize, 8] {
        let captions = vec![caption; batch];
        let seeds: Vec<u64> = (0..batch as u64).collect();
        bundle.generate(&captions, &seeds, &device)?; // warm-up
        let runs = if batch == 1 { 20 } else { 5 };
        let start = Instant::now();
        for _ in 0..runs {
            bundle.generate(&captions, &seeds, &device)?;
        }
        let per_image = start.elapsed().as_secs_f64() * 1e3 / (runs * batch) as f64;
        println!("batch {batch}: {per_image:.1} ms per image ({runs} runs)");
    }
    Ok(())
}
