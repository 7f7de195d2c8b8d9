//! Ctrl-C, SIGTERM and SIGHUP (the terminal closed): the first one asks the training loop (or a sweep
//! driver, or the server) to stop after the current batch (it then saves and exits 130 / 143 / 129); a
//! second one exits at once. Every file is written atomically, so even then only
//! complete files are left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The exit code after SIGINT (Ctrl-C): 128 + the signal's number, as shells report it.
pub const SIGINT_EXIT: i32 = 128 + SIGINT;
/// The exit code after SIGTERM.
pub const SIGTERM_EXIT: i32 = 128 + SIGTERM;
/// The exit code after SIGHUP.
pub const SIGHUP_EXIT: i32 = 128 + SIGHUP;

/// Flags set by the signal handlers, polled by the training loop between batches.
#[derive(Clone, Default)]
pub struct Interrupt {
    sigint: Arc<AtomicBool>,
    sigterm: Arc<AtomicBool>,
    sighup: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers. Without this call, [`Interrupt::requested`] is always `None`.
    pub fn install() -> std::io::Result<Self> {
        let this = Self::default();
        let flags = [
            (SIGINT, &this.sigint),
            (SIGTERM, &this.sigterm),
            (SIGHUP, &this.sighup),
        ];
        for (signal, flag) in flags {
            // Registered first, so it runs before the flag is set: a second signal exits at once.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(flag),
            )?;
            signal_hook::flag::register(signal, Arc::clone(flag))?;
        }
        Ok(this)
    }

    /// The exit code the process should end with ([`SIGINT_EXIT`], [`SIGTERM_EXIT`], [`SIGHUP_EXIT`]),
    /// once a signal came.
    pub fn requested(&self) -> Option<i32> {
        [
            (&self.sigint, SIGINT_EXIT),
            (&self.sigterm, SIGTERM_EXIT),
            (&self.sighup, SIGHUP_EXIT),
        ]
        .into_iter()
        .find_map(|(flag, code)| flag.load(Ordering::Relaxed).then_some(code))
    }
}

/// The error a run ends with after a signal; `main` exits with its code.
#[derive(Debug)]
pub struct Interrupted {
    pub exit_code: i32,
    pub message: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}
