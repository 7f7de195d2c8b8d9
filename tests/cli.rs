//! The command line itself: clap's own consistency checks, shell completions and the man page.
mod common;
use clap::CommandFactory;
use common::*;

#[test]
fn clap_definitions_are_consistent() {
    lenet5::cli::Cli::command().debug_assert();
}

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    let dir = scratch("cli");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(lenet5(&dir, &["completions", shell]));
        for sub in [
            "train", "test", "predict", "report", "config", "sweep", "fetch",
        ] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let man = ok(lenet5(&dir, &["man"]));
    assert!(
        man.starts_with(".ie") && man.contains(".SH NAME") && man.contains("sweep"),
        "{}",
        &man[..200]
    );
    let out = lenet5(&dir, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown shell");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let dir = scratch("closed_pipe");
    for args in [&["config"][..], &["man"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lenet5"))
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first write
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}
