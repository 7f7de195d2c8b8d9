//! MLflow tracking against a real `mlflow server` (PyPI's mlflow, in the venv scripts/setup-libtorch makes;
//! without it the test is skipped), started on 127.0.0.1 with a SQLite store and stopped by its PID: a run
//! and a sweep read back through MLflow's own client equal their files (tests/check_mlflow.py); a run whose
//! server is down finishes with one warning, and `lenet5 track` logs it once the server is there.
mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// An `mlflow server` this test started; killed (by its PID) when dropped.
struct Server {
    child: Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // `mlflow server` runs its workers as child processes: end its whole process group (its own).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(venv: &Path, dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(venv.join("bin/mlflow"))
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("artifacts"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .expect("start mlflow server");
    let server = Server {
        child,
        uri: format!("http://127.0.0.1:{port}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "mlflow server did not listen within 120 s: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    server
}

fn check(venv: &Path, uri: &str, experiment: &str, group: &str, runs: &[PathBuf]) {
    let mut args = vec![
        root().join("tests/check_mlflow.py").display().to_string(),
        uri.into(),
        experiment.into(),
        group.into(),
    ];
    args.extend(runs.iter().map(|r| r.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_python(&venv.join("bin/python").display().to_string(), &args);
    assert!(String::from_utf8_lossy(&out).starts_with("checked "));
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn runs_and_sweeps_appear_in_a_real_mlflow_server_and_a_down_server_costs_one_warning() {
    const TEST: &str =
        "runs_and_sweeps_appear_in_a_real_mlflow_server_and_a_down_server_costs_one_warning";
    let venv = option_env!("LENET5_MLFLOW_VENV").map(PathBuf::from);
    let Some(venv) = venv.filter(|v| v.join("bin/mlflow").is_file()) else {
        return skip(TEST, "no mlflow venv (scripts/setup-libtorch installs one)");
    };
    let dir = tiny_project("mlflow", 200, 100, "");
    let server = start_server(&venv, &dir);

    // One run, the server named in the config: its experiment is lenet5's default.
    let set = format!("logging.mlflow.tracking_uri={}", server.uri);
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--run-dir", "runs/one", "--set", &set],
    ));
    check(&venv, &server.uri, "lenet5", "-", &[dir.join("runs/one")]);

    // A sweep, the server from MLFLOW_TRACKING_URI: the sweep's name is the experiment, each run's group a tag.
    std::fs::write(
        dir.join("sweep.yaml"),
        "base: tiny.yaml\nseeds: 2\nvariants:\n  - name: small\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(["sweep", "sweep.yaml", "--out", "mysweep"])
        .current_dir(&dir)
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .output()
        .unwrap();
    ok(out);
    let sweep_runs = [
        dir.join("mysweep/runs/small-seed1"),
        dir.join("mysweep/runs/small-seed2"),
    ];
    check(&venv, &server.uri, "mysweep", "small", &sweep_runs);

    // The server down: the run finishes, with one warning that says how to log it later.
    let down = format!(
        "logging.mlflow.tracking_uri=http://127.0.0.1:{}",
        free_port()
    );
    let out = lenet5(
        &dir,
        &[
            "train",
            "tiny.yaml",
            "--run-dir",
            "runs/offline",
            "--set",
            &down,
        ],
    );
    let err = stderr(&out);
    ok(out);
    assert_eq!(err.matches("warning: MLflow").count(), 1, "{err}");
    assert!(err.contains("lenet5 track"), "{err}");
    assert!(dir.join("runs/offline/test.json").is_file());
    let out = ok(lenet5(
        &dir,
        &[
            "track",
            "runs/offline",
            "--tracking-uri",
            &server.uri,
            "--experiment",
            "later",
        ],
    ));
    assert!(out.contains("(2 epochs, finished)"), "{out}");
    check(
        &venv,
        &server.uri,
        "later",
        "-",
        &[dir.join("runs/offline")],
    );
    // Tracked again, nothing is logged twice (the record says the server has it all).
    let again = ok(lenet5(
        &dir,
        &["track", "runs/offline", "--tracking-uri", &server.uri],
    ));
    assert_eq!(again, out);
    check(
        &venv,
        &server.uri,
        "later",
        "-",
        &[dir.join("runs/offline")],
    );
}
