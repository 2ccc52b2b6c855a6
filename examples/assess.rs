//! Judging synthetic images from any generator with the library: the real training split at
//! the cpu preset's GAN size, the synthetic class folders read at the same size, the gate's
//! measures and verdict. `ganaug assess` adds the report and the grids.
//!
//! ```text
//! cargo run --release --example assess -- /path/to/covid-ct results/reproduce-cpu/synthetic/per-class
//! ```

use ganaug::data::DataSource;
use ganaug::experiment::assess::{self, AssessConfig};
use ganaug::experiment::ReproConfig;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [real, synthetic] = args.as_slice() else {
        anyhow::bail!("usage: assess REAL_DATASET SYNTHETIC_CLASS_FOLDERS");
    };
    let device = tch::Device::Cpu;
    let cfg = AssessConfig::of(&ReproConfig::preset("cpu")?);
    let data = DataSource::folder_or_phantom(Some(std::path::Path::new(real)))?;
    let splits = assess::real_splits(&data, &cfg, device)?;
    let images = assess::synthetic_images(synthetic.as_ref(), &splits.train, cfg.resize, device)?;
    let (assessment, _grids) = assess::assess(&splits, &images, &cfg, device)?;
    println!("verdict: {:?}", assessment.verdict);
    for c in &assessment.classes {
        if let Some(m) = &c.measures {
            println!(
                "{}: recall {:.3} (real {:.3})",
                c.class, m.synthetic.recall, m.real.recall
            );
        }
    }
    Ok(())
}
