//! `lenet5`: parse, run, print `Error: …`, exit with 2 (usage/config), 130/143 (signal) or 1 (anything else).

use clap::Parser;
use lenet5::UsageError;
use lenet5::interrupt::Interrupted;

fn main() {
    let cli = lenet5::cli::Cli::parse();
    if let Err(e) = lenet5::cli::run(cli) {
        if let Some(i) = e.downcast_ref::<Interrupted>() {
            eprintln!("{i}");
            std::process::exit(i.exit_code);
        }
        eprintln!("Error: {e:#}");
        let usage = e.chain().any(|c| c.is::<UsageError>());
        std::process::exit(if usage { 2 } else { 1 });
    }
}
