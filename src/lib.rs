//! lenet5: LeNet-5 on MNIST with LibTorch (tch), and the experiments that show what modern techniques change.
//!
//! The pipeline is a chain of typed stages: [`cli`] parses and calls [`commands`]; [`config`] resolves and
//! validates a [`Config`]; [`train`] runs the loop over [`data`] and [`model`] with [`optim`], [`schedule`]
//! and [`loss`]; [`evaluate`] scores a split; [`metrics`] and [`checkpoint`] write the run directory
//! (through [`atomic`]); [`report`] turns run directories into tables and charts. [`sweep`] expands a
//! study into runs and runs them (locally or through Slurm); [`study`] reports on it with [`stats`]. `main.rs` only calls
//! [`cli::run`].

pub mod atomic;
pub mod augment;
pub mod chart;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cpu_step;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod interrupt;
pub mod lenet1998;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod predict;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod study;
pub mod sweep;
pub mod tensorboard;
pub mod train;

pub use config::Config;

/// The process exit code for an error: 130/143 after SIGINT/SIGTERM, 75 when another process trains the
/// run (try again later), 2 for a mistake in what the user typed or wrote, 1 for anything else.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(i) = e.downcast_ref::<interrupt::Interrupted>() {
        i.exit_code
    } else if sweep::exec::is_locked(e) {
        sweep::exec::LOCKED_EXIT
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
