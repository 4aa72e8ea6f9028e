//! Inception-v3 throughput on the CPU (flex):
//! `cargo run --release -p t2i-train --example bench_inception -- [batch] [batches]`.
//! Needs `../shared/models/inception-2015-12-05.safetensors`.

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use t2i::inception::{INPUT_SIZE, Inception};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let batches: usize = args.next().map_or(Ok(4), |a| a.parse())?;
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/models/inception-2015-12-05.safetensors");
    let device = Device::flex();
    let inception = Inception::load(&weights, &device)?;
    let input = || {
        Tensor::<4>::random(
            [batch, 3, INPUT_SIZE, INPUT_SIZE],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        )
    };
    // One warm-up batch, then the timed ones (reading pool3 back forces the work).
    inception.forward(input()).pool3.into_data();
    let start = Instant::now();
    for _ in 0..batches {
        inception.forward(input()).pool3.into_data();
    }
    let seconds = start.elapsed().as_secs_f64();
    let images = batch * batches;
    println!(
        "inception-v3 flex: {images} images in {seconds:.2} s = {:.2} images/s (batch {batch}, {} threads available)",
        images as f64 / seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
