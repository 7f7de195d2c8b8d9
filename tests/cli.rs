//! The command line itself: clap's own consistency checks, shell completions, the man page, the lines it prints.
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
            "train", "test", "predict", "export", "report", "config", "sweep", "fetch", "track",
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

#[test]
fn one_man_page_per_subcommand_and_completions_that_know_keys_and_devices() {
    let dir = scratch("man_pages");
    let out = dir.join("man1");
    ok(lenet5(&dir, &["man", "--out", out.to_str().unwrap()]));
    let main = std::fs::read_to_string(out.join("lenet5.1")).unwrap();
    for sub in [
        "train", "test", "predict", "export", "report", "config", "sweep", "fetch", "track",
    ] {
        // The main page refers to lenet5-SUB(1); that page exists and is titled so.
        assert!(
            main.contains(&format!("lenet5\\-{sub}(1)")),
            "lenet5.1 lacks lenet5-{sub}(1)"
        );
        let page = std::fs::read_to_string(out.join(format!("lenet5-{sub}.1")))
            .unwrap_or_else(|e| panic!("lenet5-{sub}.1: {e}"));
        assert!(
            page.contains(&format!(".TH lenet5-{sub} 1")),
            "{}",
            &page[..200]
        );
    }
    assert!(
        !out.join("lenet5-sweep-task.1").exists(),
        "the hidden command has no page"
    );
    let bash = ok(lenet5(&dir, &["completions", "bash"]));
    for word in [
        "optimizer.lr=",
        "model.activation=",
        "trainer.device=",
        "cuda:0",
    ] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    // Candidates only: any device string and any key still parse (and are checked by the config).
    let out = lenet5(
        &dir,
        &["config", "--device", "cuda:3", "--set", "trainer.seed=7"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let help = ok(lenet5(&dir, &["train", "--help"]));
    assert!(
        !help.contains("possible values"),
        "the key list stays out of --help"
    );
}

#[test]
fn messages_suggest_the_command_the_user_runs() {
    let dir = scratch("command_name");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(["test", "--runs-dir", "nowhere"])
        .current_dir(&dir)
        .env("LENET5_COMMAND", "scripts/lenet5")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("`scripts/lenet5 train CONFIG`"), "{err}");
}

#[test]
fn bash_completes_yaml_files_where_a_config_goes() {
    let dir = scratch("complete_yaml");
    let script = ok(lenet5(&dir, &["completions", "bash"]));
    std::fs::write(dir.join("lenet5.bash"), script).unwrap();
    for name in ["relu.yaml", "notes.txt"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    for sub in ["train", "config"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                // The function bash itself calls: the one `complete -F` registered last.
                "source lenet5.bash; f=$(complete -p lenet5 | sed -E 's/.*-F ([^ ]+).*/\\1/'); COMP_WORDS=(lenet5 {sub} ''); COMP_CWORD=2; $f lenet5 '' {sub}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .current_dir(&dir)
            .output()
            .unwrap();
        let mut offered: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        offered.sort();
        assert_eq!(offered, ["configs", "relu.yaml"], "{sub}: {}", stderr(&out));
    }
    // Everywhere else clap_complete's own function answers: options after `train --`.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("source lenet5.bash; f=$(complete -p lenet5 | sed -E 's/.*-F ([^ ]+).*/\\1/'); COMP_WORDS=(lenet5 train --ep); COMP_CWORD=2; $f lenet5 --ep train; printf '%s\\n' \"${COMPREPLY[@]}\"")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "--epochs", "{}", stderr(&out));
}

#[test]
fn the_train_line_gives_the_loss_in_a_readable_number_of_digits() {
    use lenet5_lab::rundir::{dir::RunDir, evaluation::Evaluation, state::TrainState};
    let outcome = |loss: f64| lenet5_core::run::TrainOutcome {
        run: RunDir {
            path: "runs/x".into(),
        },
        state: TrainState::new(&lenet5_lab::config::Config::default()),
        test: Evaluation {
            images: 1,
            loss,
            accuracy: 1.0,
            top3_accuracy: 1.0,
            per_class_accuracy: vec![1.0],
            confusion: vec![vec![1]],
            calibration: None,
            most_confused: vec![],
            temperature_scaled: None,
        },
    };
    let line = lenet5::cli::train_summary(&outcome(1.234_567_890_1e-30));
    assert!(
        line.starts_with("test: loss 1.235e-30  accuracy 100.00%"),
        "{line}"
    );
    let line = lenet5::cli::train_summary(&outcome(2.5e31));
    assert!(line.starts_with("test: loss 2.500e31  accuracy"), "{line}");
    let line = lenet5::cli::train_summary(&outcome(0.0523));
    assert!(line.starts_with("test: loss 0.0523  accuracy"), "{line}");
}

/// The environment the process `pid` was (last) exec'd with, once it holds `key` or the process ends.
fn environ_once(child: &mut std::process::Child, key: &str) -> String {
    let path = format!("/proc/{}/environ", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let env = std::fs::read(&path).map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"));
        let done = child.try_wait().unwrap().is_some();
        if let Ok(env) = env
            && (env.contains(key) || done || std::time::Instant::now() > deadline)
        {
            return env;
        }
        if done {
            return String::new();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn training_starts_with_openmp_spinning_limited_unless_the_user_chose() {
    let dir = tiny_project("cli_spin", 2000, 100, "");
    let train = |env: Option<(&str, &str)>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lenet5"));
        cmd.current_dir(&dir)
            .args(["train", "tiny.yaml", "--epochs", "3"])
            .env_remove("GOMP_SPINCOUNT")
            .env_remove("OMP_WAIT_POLICY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    };
    let mut child = train(None);
    let env = environ_once(&mut child, "GOMP_SPINCOUNT=");
    child.wait().unwrap();
    assert!(env.contains("GOMP_SPINCOUNT=10000"), "{env}");
    // The user's own wait policy stands: no second start, no spin count.
    let mut child = train(Some(("OMP_WAIT_POLICY", "PASSIVE")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let env = environ_once(&mut child, "GOMP_SPINCOUNT=");
    child.wait().unwrap();
    assert!(env.is_empty() || !env.contains("GOMP_SPINCOUNT="), "{env}");
}
