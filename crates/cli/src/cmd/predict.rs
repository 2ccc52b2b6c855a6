//! Classifies a folder of new images with a model saved by `ganaug train-probe`: per-image class
//! probabilities and the decision at the model's stated operating threshold, as CSV or JSON.
//! Images are decoded as in training (grayscale, the model's size and aspect policy).
//!
//! ```text
//! ganaug predict --model runs/probe/model.safetensors --images DIR --out predictions.csv
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ganaug::data::{decode::load_file, ColorMode, ImageSpec};
use ganaug::device::DeviceChoice;
use ganaug::models::ProbeModel;
use tch::{Kind, Tensor};

#[derive(clap::Args, Debug)]
#[command(
    about = "Predict a folder of images with a model saved by `ganaug train-probe` (CSV or JSON)"
)]
pub struct Args {
    /// The model file (`ganaug train-probe`'s model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Folder of images (PNG, JPEG; not searched recursively).
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Output file: .csv or .json.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,
}

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--images {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "--images {}: no {} files",
            dir.display(),
            EXTENSIONS.join("/")
        );
    }
    Ok(files)
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    ganaug::init_process();
    let json = match args.out.extension().and_then(|e| e.to_str()) {
        Some("csv") => false,
        Some("json") => true,
        _ => bail!("--out {}: name a .csv or .json file", args.out.display()),
    };
    if args.out.exists() && !args.overwrite {
        bail!(
            "{} exists: choose another --out or pass --overwrite",
            args.out.display()
        );
    }
    let device = args.device.resolve()?;
    let model = ProbeModel::load(&args.model, device)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let info = model.info().clone();
    let files = image_files(&args.images)?;
    let probs = model.predict_proba(&load_images(&model, &files)?)?;
    let decided = model.decide(&probs);
    let rule = match &info.threshold {
        Some(t) => format!(
            "{} when p({}) ≥ {:.4} ({})",
            info.class_names[t.positive], info.class_names[t.positive], t.value, t.chosen_by
        ),
        None => "the most probable class".into(),
    };
    let rows = Rows {
        files: &files,
        probs: &probs,
        decided: &decided,
        classes: &info.class_names,
    };
    let text = if json {
        serde_json::to_string_pretty(&serde_json::json!({
            "model": args.model, "decision": rule, "threshold": info.threshold,
            "predictions": rows.json(),
        }))?
    } else {
        rows.csv(&rule)
    };
    ganaug::data::io::write_atomic(&args.out, text.as_bytes())?;
    let mut counts = vec![0usize; info.class_names.len()];
    decided.iter().for_each(|&d| counts[d] += 1);
    let summary: Vec<String> = info
        .class_names
        .iter()
        .zip(&counts)
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    println!(
        "{} images: {} (decision: {rule}); wrote {}",
        files.len(),
        summary.join(", "),
        args.out.display()
    );
    Ok(())
}

/// The files read as the model was trained (its size and resize policy, gray or RGB), as one
/// `[N, C, S, S]` batch in [0, 1].
fn load_images(model: &ProbeModel, files: &[PathBuf]) -> Result<Tensor> {
    let cfg = model.backbone().config();
    let color = if cfg.in_channels == 3 {
        ColorMode::Rgb
    } else {
        ColorMode::Gray
    };
    let spec = ImageSpec {
        policy: model.info().resize,
        color,
        ..ImageSpec::with_size(cfg.image_size as u32)
    };
    let (size, c) = (cfg.image_size, cfg.in_channels);
    let mut pixels = Vec::with_capacity(files.len() * (c * size * size) as usize);
    for f in files {
        pixels.extend(load_file(f, &spec)?);
    }
    Ok(Tensor::from_slice(&pixels)
        .view([files.len() as i64, c, size, size])
        .to_kind(Kind::Float)
        / 255.0)
}

/// One prediction per file, written as JSON rows or CSV.
struct Rows<'a> {
    files: &'a [PathBuf],
    probs: &'a ndarray::Array2<f64>,
    decided: &'a [usize],
    classes: &'a [String],
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

impl Rows<'_> {
    fn json(&self) -> Vec<serde_json::Value> {
        self.files
            .iter()
            .zip(self.probs.rows())
            .zip(self.decided)
            .map(|((f, p), &d)| {
                let probs: serde_json::Map<_, _> = self
                    .classes
                    .iter()
                    .zip(p.iter())
                    .map(|(c, v)| (c.clone(), serde_json::json!(v)))
                    .collect();
                serde_json::json!({ "file": file_name(f), "probabilities": probs, "predicted": self.classes[d] })
            })
            .collect()
    }

    fn csv(&self, rule: &str) -> String {
        let mut s = format!("# decision: {rule}\nfile");
        for c in self.classes {
            s.push_str(&format!(",p_{c}"));
        }
        s.push_str(",predicted\n");
        for ((f, p), &d) in self.files.iter().zip(self.probs.rows()).zip(self.decided) {
            s.push_str(&format!("\"{}\"", file_name(f).replace('"', "\"\"")));
            for v in p {
                s.push_str(&format!(",{v:.6}"));
            }
            s.push_str(&format!(",{}\n", self.classes[d]));
        }
        s
    }
}
