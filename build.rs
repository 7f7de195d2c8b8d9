//! Link settings for the `lenet5` binary that torch-sys cannot set for us.
//!
//! - rpath to the libtorch lib dir, so the binary runs without `LD_LIBRARY_PATH`.
//! - `torch_cuda` linked with `--no-as-needed` when the libtorch has it: nothing in our code calls into it
//!   directly, so the linker would drop it and LibTorch would then report no CUDA device on a GPU machine
//!   (tch-rs issues #177, #907, #980).
//!
//! The lib dir arrives as `DEP_TCH_LIBTORCH_LIB` because torch-sys (`links = "tch"`) is a direct dependency.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        // torch-sys always exports it on Linux and macOS; on other targets there is nothing to add.
        return;
    };
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "macos" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    }
    if os == "linux" && lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
