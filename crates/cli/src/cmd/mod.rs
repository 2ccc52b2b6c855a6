//! One module per subcommand: its arguments and `run`.

pub mod assess;
pub mod augment;
pub mod device;
pub mod make_dataset;
pub mod predict;
pub mod probe_ablation;
pub mod reproduce;
pub mod summary;
pub mod synthesize;
pub mod synthetic_sweep;
pub mod train_classifier;
pub mod train_gan;
pub mod train_probe;
pub mod watch;
