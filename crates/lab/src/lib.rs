//! lenet5-lab: everything about an experiment that needs no LibTorch — the config, the run directory's
//! formats, sweeps and Slurm, statistics, the study report and its charts. Its tests run without LibTorch.
//!
//! Modules, each importing only the ones listed below it:
//!
//! ```text
//! study/    many runs: sweep files, the local and Slurm runners, run tables, statistics, the study report
//! lr_range  the learning-rate range test's arithmetic: its rates, smoothed loss, suggestions, CSV, chart
//! grid      a grid of captioned images (the test set's worst mistakes), drawn as a chart
//! heatmap   an attribution map over the digit it explains, as a PNG
//! mistakes  the worst-scored test digits as rows (mistakes.csv) and captions
//! mlflow    MLflow tracking through its REST API: a run directory logged as an MLflow run
//! chart     line charts (SVG, PNG) of finished runs and studies
//! rundir/   one run's directory: its files and their formats (state, metrics, test results, provenance)
//! schedule  learning-rate schedules, as numbers (the training loop applies them)
//! config/   defaults → file → overrides → validation; the device a config names
//! sys/      atomic files, locks and Ctrl-C
//! ```
//!
//! Here: the error type and exit codes every layer shares, and what built this binary ([`VERSION`],
//! [`COMMIT`]), which every run records.

#![deny(unreachable_pub)]

pub mod chart;
pub mod config;
pub mod grid;
pub mod heatmap;
pub mod lr_range;
pub mod mistakes;
pub mod mlflow;
pub mod rundir;
pub mod schedule;
pub mod study;
pub mod sys;

/// lenet5's version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from, with `-dirty` when the work tree had changes (build.rs);
/// `unknown` when it was built outside a git checkout.
pub const COMMIT: &str = env!("LENET5_COMMIT");

/// How the user runs lenet5, for commands they can paste from a message: `$LENET5_COMMAND` (which
/// `scripts/lenet5` sets to itself), else the path the `lenet5` binary was started by when it has a `/`
/// (`./target/release/lenet5`), else `lenet5` (on the PATH, or the library inside another program).
pub fn command_name() -> String {
    if let Some(name) = std::env::var("LENET5_COMMAND")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return name;
    }
    std::env::args()
        .next()
        .filter(|a| a.ends_with("/lenet5"))
        .unwrap_or_else(|| "lenet5".to_string())
}

/// A number for a person: four decimals in the usual range, scientific notation where that is shorter
/// (a learning rate of 1e-4, a loss of 1.7e31 after a bad learning rate).
pub fn number(x: f64) -> String {
    if x == 0.0 || (1e-3..1e5).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// The exit code of `train` when another process holds the run's lock (BSD's EX_TEMPFAIL: try again).
pub const LOCKED_EXIT: i32 = 75;

/// The process exit code for an error: 130/143 after SIGINT/SIGTERM, [`LOCKED_EXIT`] when another process
/// trains the run, 2 for a mistake in what the user typed or wrote, 1 for anything else.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(i) = e.downcast_ref::<sys::interrupt::Interrupted>() {
        i.exit_code
    } else if e.chain().any(|c| c.is::<RunLocked>()) {
        LOCKED_EXIT
    } else if e.chain().any(|c| c.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// A mistake in what the user typed or wrote (flags, config, paths): exit code 2, like clap's own errors.
/// Everything else is a runtime failure: exit code 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl UsageError {
    /// The error, ready to return.
    pub fn error(msg: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(UsageError(msg.into()))
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Another process holds the run's lock: exit code [`LOCKED_EXIT`].
#[derive(Debug)]
pub struct RunLocked(pub String);

impl std::fmt::Display for RunLocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunLocked {}
