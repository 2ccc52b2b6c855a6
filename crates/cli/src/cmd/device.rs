//! `ganaug device`: what libtorch sees — version, CUDA availability, GPU count, threads.

/// `ganaug device` takes no arguments.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Prints what libtorch sees.
pub fn run(_args: Args) {
    println!("ganaug {}", env!("CARGO_PKG_VERSION"));
    println!(
        "libtorch version: {}",
        ganaug::LIBTORCH_VERSION.unwrap_or("unknown")
    );
    println!(
        "libtorch libraries: {}",
        ganaug::LIBTORCH_LIB_DIR.unwrap_or("unknown")
    );
    println!("libtorch built with CUDA: {}", tch::utils::has_cuda());
    println!("CUDA available: {}", tch::Cuda::is_available());
    println!("CUDA devices: {}", tch::Cuda::device_count());
    println!("cuDNN available: {}", tch::Cuda::cudnn_is_available());
    println!(
        "MKL: {}, OpenMP: {}, oneDNN: {}",
        tch::utils::has_mkl(),
        tch::utils::has_openmp(),
        tch::utils::has_mkldnn()
    );
    println!("intra-op threads: {}", tch::get_num_threads());
    println!("inter-op threads: {}", tch::get_num_interop_threads());
    println!("default device: {:?}", tch::Device::cuda_if_available());
}
