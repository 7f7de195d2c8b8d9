//! A finished run copied into a never-started one: every file but the source's config, lock and MLflow
//! record, the target's own config kept, the source named; a run another process holds is refused as
//! locked; one that started meanwhile is left as it is.
use lenet5_lab::study::reuse::{REUSED_FILE, copy_run, never_started};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lenet5-reuse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn a_finished_run_is_copied_into_a_never_started_one() {
    let dir = scratch("copy");
    let (from, to, tmp) = (dir.join("a"), dir.join("runs/b"), dir.join(".reusing"));
    for (name, text) in [
        ("config.yaml", "source config"),
        ("metrics.csv", "epoch\n1\n"),
        ("state.json", "{}"),
        ("test.json", "{\"accuracy\": 0.5}"),
        ("mlflow.json", "{}"),
        (".lock", ""),
        ("mistakes/mistakes.png", "png"),
    ] {
        write(&from.join(name), text);
    }
    write(&to.join("config.yaml"), "target config");
    std::fs::create_dir_all(&tmp).unwrap();
    assert!(never_started(&to));
    copy_run(&from, &to, &tmp).unwrap();
    assert!(!never_started(&to));
    assert_eq!(
        read(&to.join("config.yaml")).as_deref(),
        Some("target config")
    );
    assert_eq!(read(&to.join("metrics.csv")).as_deref(), Some("epoch\n1\n"));
    assert_eq!(read(&to.join("test.json")), read(&from.join("test.json")));
    assert_eq!(
        read(&to.join("mistakes/mistakes.png")).as_deref(),
        Some("png")
    );
    assert_eq!(read(&to.join("mlflow.json")), None, "tracked as itself");
    let source = std::fs::canonicalize(&from).unwrap();
    assert_eq!(
        read(&to.join(REUSED_FILE)),
        Some(format!("{}\n", source.display()))
    );
    // Nothing left beside the runs: the replaced directory is gone.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_in_training_is_refused_and_a_started_one_left_alone() {
    let dir = scratch("locked");
    let (from, to, tmp) = (dir.join("a"), dir.join("b"), dir.join(".reusing"));
    write(&from.join("metrics.csv"), "epoch\n1\n");
    write(&to.join("config.yaml"), "target config");
    std::fs::create_dir_all(&tmp).unwrap();
    let held = lenet5_lab::rundir::dir::RunDir::open(&to)
        .unwrap()
        .lock()
        .unwrap();
    let err = copy_run(&from, &to, &tmp).unwrap_err();
    assert!(err.is::<lenet5_lab::RunLocked>(), "{err:#}");
    drop(held);
    write(&to.join("state.json"), "{}");
    copy_run(&from, &to, &tmp).unwrap();
    assert_eq!(
        read(&to.join("metrics.csv")),
        None,
        "a started run stays as it is"
    );
    assert_eq!(read(&to.join(REUSED_FILE)), None);
    let _ = std::fs::remove_dir_all(&dir);
}
