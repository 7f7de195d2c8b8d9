//! Link settings for the `lenet5` binary that torch-sys cannot set for us.
//!
//! - rpath to the libtorch lib dir, so the binary runs without `LD_LIBRARY_PATH`.
//! - `LENET5_COMMIT`: the git commit the binary is built from (`-dirty` with uncommitted changes to tracked
//!   files; `unknown` outside a checkout), which every run records (`lenet5::COMMIT`).
//! - `torch_cuda` linked with `--no-as-needed` when the libtorch has it: nothing in our code calls into it
//!   directly, so the linker would drop it and LibTorch would then report no CUDA device on a GPU machine
//!   (tch-rs issues #177, #907, #980).
//!
//! The lib dir arrives as `DEP_TCH_LIBTORCH_LIB` because torch-sys (`links = "tch"`) is a direct dependency.
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-env=LENET5_COMMIT={}", commit());
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

/// `git rev-parse HEAD`, `-dirty` when tracked files differ from it. Re-run when HEAD moves or a source file
/// changes, so the stamp never describes an older tree.
fn commit() -> String {
    let branch = std::fs::read_to_string(".git/HEAD").ok().and_then(|h| {
        h.strip_prefix("ref: ")
            .map(|r| format!(".git/{}", r.trim()))
    });
    let watched = [
        ".git/HEAD",
        ".git/index",
        ".git/packed-refs",
        "src",
        "Cargo.toml",
        "build.rs",
    ];
    for path in watched.iter().map(|p| p.to_string()).chain(branch) {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".to_string(),
    }
}
