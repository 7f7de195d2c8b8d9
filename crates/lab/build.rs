//! `LENET5_COMMIT`: the git commit the workspace is built from (`-dirty` with uncommitted changes to tracked
//! files; `unknown` outside a checkout), which every run records (`lenet5_lab::COMMIT`).

fn main() {
    println!("cargo:rustc-env=LENET5_COMMIT={}", commit());
}

/// `git rev-parse HEAD`, `-dirty` when tracked files differ from it. Re-run when HEAD moves or a source file
/// of the workspace changes, so the stamp never describes an older tree.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let git_dir = git(&["rev-parse", "--absolute-git-dir"]);
    let common_dir = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watched: Vec<String> = [
        "../../src",
        "../../Cargo.toml",
        "../core",
        "src",
        "Cargo.toml",
        "build.rs",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    if let Some(g) = &git_dir {
        watched.extend([format!("{g}/HEAD"), format!("{g}/index")]);
    }
    if let Some(c) = &common_dir {
        watched.push(format!("{c}/packed-refs"));
        watched.extend(branch.map(|b| format!("{c}/{b}")));
    }
    for path in watched {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".to_string(),
    }
}
