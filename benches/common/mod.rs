//! Shared by the benches.

use std::time::Duration;

/// The process set-up the examples also do first ([`ganaug::init_process`]);
/// `GANAUG_DEFAULT_MALLOC=1` measures with glibc's allocator defaults instead.
pub fn setup() {
    ganaug::init_process();
}

/// Measurement time per bench: `default` seconds, or `GANAUG_BENCH_SECS` (short runs on a
/// borrowed GPU, quick looks).
pub fn measurement_time(default: u64) -> Duration {
    let secs = std::env::var("GANAUG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}
