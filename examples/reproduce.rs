//! The paper's experiment from your own program: a preset, a dataset, one library call. The
//! `ganaug` command (`crates/cli`) does the same with every option; this is what it calls.
//!
//! ```text
//! cargo run --release --example reproduce -- /path/to/covid-ct          # cpu preset
//! cargo run --release --example reproduce                               # phantom stand-in
//! ```

use ganaug::data::DataSource;
use ganaug::experiment::{self, ReproConfig};
use ganaug::train::ConsoleProgress;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let data = DataSource::folder_or_phantom(dir.as_deref())?;
    let cfg = ReproConfig::preset("cpu")?;
    let device = ganaug::device::DeviceChoice::Auto.resolve()?;
    ganaug::init_process_for(device, cfg.largest_image());
    let out = std::path::Path::new("results/example-reproduce");
    let results = experiment::run(&cfg, &data, out, device, &ConsoleProgress::new())?;
    for a in &results.aggregates {
        println!(
            "{} × {}: accuracy {:.3}",
            a.model, a.scenario, a.accuracy.mean
        );
    }
    println!("report: {}", out.join("report.md").display());
    Ok(())
}
