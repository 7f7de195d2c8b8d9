//! `lenet5`: parse, run, print `Error: …`, exit with the code [`lenet5_lab::exit_code`] gives.

use clap::Parser;
use lenet5_lab::sys::interrupt::Interrupted;

fn main() {
    // A closed stdout (`lenet5 test --json | head -c 300`) ends the process quietly, as it does `ls`:
    // Rust ignores SIGPIPE, and `println!` would then panic on the broken pipe.
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = lenet5::cli::Cli::parse();
    if cli.trains() {
        lenet5_lab::sys::cpu::reexec_with_spin_limit();
    }
    if let Err(e) = lenet5::cli::run(cli) {
        match e.downcast_ref::<Interrupted>() {
            Some(i) => eprintln!("{i}"),
            None => eprintln!("Error: {e:#}"),
        }
        std::process::exit(lenet5_lab::exit_code(&e));
    }
}
