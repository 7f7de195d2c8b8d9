//! lenet5: LeNet-5 on MNIST with LibTorch (tch), and the experiments that show what modern techniques change.
//!
//! The pipeline is a chain of typed stages: [`cli`] parses and calls [`commands`]; [`config`] resolves and
//! validates a [`Config`]; [`train`] runs the loop over [`data`] and [`model`] with [`optim`], [`schedule`]
//! and [`loss`]; [`evaluate`] scores a split; [`metrics`] and [`checkpoint`] write the run directory
//! (through [`atomic`]); [`report`] turns run directories into tables and charts. `main.rs` only calls
//! [`cli::run`].

pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
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
pub mod train;

pub use config::Config;

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
