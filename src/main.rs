//! `lenet5`: parse, run, print `Error: …`, exit with the code [`lenet5::exit_code`] gives.

use clap::Parser;
use lenet5::sys::interrupt::Interrupted;

fn main() {
    let cli = lenet5::cli::Cli::parse();
    if let Err(e) = lenet5::cli::run(cli) {
        match e.downcast_ref::<Interrupted>() {
            Some(i) => eprintln!("{i}"),
            None => eprintln!("Error: {e:#}"),
        }
        std::process::exit(lenet5::exit_code(&e));
    }
}
