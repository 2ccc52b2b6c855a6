//! Training on a folder larger than memory: the splits streamed from the decode cache (the
//! images stay on disk as `u8`/`u16`; each batch is read, converted and sent on while the
//! previous one trains), one GAN epoch on the first class, its generator's samples saved.
//!
//! ```text
//! cargo run --release --example stream -- /path/to/class-folders [SIZE] [EPOCHS]
//! ```

use ganaug::data::{DataSource, ImageSource, ImageSpec, Split, Streaming};
use ganaug::gan::{Arch, GanConfig, GanTrainer, TrainConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        anyhow::bail!("usage: stream CLASS_FOLDERS [SIZE] [EPOCHS]");
    };
    let size: u32 = args.get(1).map_or(Ok(64), |s| s.parse())?;
    let epochs: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let device = ganaug::device::DeviceChoice::Auto.resolve()?;
    let data = DataSource::folder_or_phantom(Some(std::path::Path::new(dir)))?;
    let (splits, decision) = data.open_spec(ImageSpec::with_size(size), device, Streaming::On)?;
    println!("{decision}; {:.1} s to open", splits.report().seconds);
    let train = splits.get(Split::Train);
    let ganaug::data::LoadedSplits::Stream(s) = &splits else {
        anyhow::bail!("{dir}: not streamed");
    };
    let first = s.train.class_subset(0)?;
    let gan = GanConfig {
        arch: Arch::Dcgan { ngf: 32, ndf: 32 },
        size: i64::from(size),
        channels: train.channels(),
        ..GanConfig::default()
    };
    let cfg = TrainConfig {
        epochs,
        checkpoint_every: 0,
        sample_every: 0,
        ..TrainConfig::default()
    };
    let mut trainer = GanTrainer::new(gan, cfg, device)?;
    let t0 = std::time::Instant::now();
    trainer.fit_source(&first, None, &ganaug::train::ConsoleProgress::new())?;
    let stats = trainer.history().last().cloned();
    println!(
        "{} images of {}: {epochs} epoch(s) in {:.1} s; last {stats:?}",
        first.len(),
        train.class_names()[0],
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
