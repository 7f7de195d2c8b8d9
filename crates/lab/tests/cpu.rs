//! Sharing the CPU: the thread count a training takes when the config leaves it to lenet5, and the claims
//! other trainings see.

use lenet5_lab::sys::cpu::{Claim, choose_threads, claimed_by_others};
use std::process::{Child, Command};

#[test]
fn a_training_takes_the_cores_nothing_else_uses_and_at_least_one() {
    // (cores, other runnable threads, threads claimed by other lenet5 trainings) → threads
    for (cores, runnable, claimed, want) in [
        (2, 0, 0, 2),
        (2, 1, 0, 1),
        (2, 0, 1, 1),
        (2, 0, 2, 1),
        (2, 5, 0, 1),
        (16, 3, 8, 8),
        (16, 9, 8, 7),
        (1, 0, 0, 1),
    ] {
        assert_eq!(
            choose_threads(cores, runnable, claimed),
            want,
            "{cores} {runnable} {claimed}"
        );
    }
}

fn sleeper() -> Child {
    Command::new("sleep").arg("30").spawn().expect("sleep")
}

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lenet5-cpu-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn claims_of_live_processes_count_and_dead_ones_are_removed() {
    let dir = dir("claims");
    let mut live = sleeper();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(dir.join(live.id().to_string()), "2").unwrap();
    std::fs::write(dir.join(dead_pid.to_string()), "5").unwrap();
    std::fs::write(dir.join("not-a-pid"), "7").unwrap();
    assert_eq!(claimed_by_others(&dir), 2);
    assert!(
        !dir.join(dead_pid.to_string()).exists(),
        "a dead process's claim is removed"
    );

    // This process's own claim is not another's; dropping it removes its file.
    let own = Claim::register(&dir, 3).expect("a claim");
    assert!(dir.join(std::process::id().to_string()).exists());
    assert_eq!(claimed_by_others(&dir), 2);
    drop(own);
    assert!(!dir.join(std::process::id().to_string()).exists());
    live.kill().unwrap();
    live.wait().unwrap();
    assert_eq!(claimed_by_others(&dir), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_training_sees_the_first_ones_claim() {
    let dir = dir("auto");
    let mut other = sleeper();
    let cores = lenet5_lab::sys::cpu::cores();
    std::fs::write(dir.join(other.id().to_string()), cores.to_string()).unwrap();
    let (threads, claim) = Claim::auto(&dir);
    assert_eq!(threads, 1, "every core is claimed by another training");
    assert!(claim.is_some());
    let read = std::fs::read_to_string(dir.join(std::process::id().to_string())).unwrap();
    assert_eq!(read, "1");
    other.kill().unwrap();
    other.wait().unwrap();
    drop(claim);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_claims_directory_that_is_a_link_is_not_used() {
    let real = dir("link-target");
    let link = std::env::temp_dir().join(format!("lenet5-cpu-test-{}-link", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(
        Claim::register(&link, 1).is_none(),
        "no claim through a link"
    );
    assert_eq!(
        std::fs::read_dir(&real).unwrap().count(),
        0,
        "nothing written there"
    );
    std::fs::remove_file(&link).unwrap();
    std::fs::remove_dir_all(&real).unwrap();
}

#[test]
fn busy_processes_are_counted_as_other_runnable_threads() {
    let spin = || {
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap()
    };
    let mut busy = [spin(), spin(), spin()];
    std::thread::sleep(std::time::Duration::from_millis(200));
    let seen = lenet5_lab::sys::cpu::other_runnable().expect("Linux tells");
    for child in &mut busy {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Three spinning shells are runnable (on 2 cores at least one waits, still runnable).
    assert!(
        seen >= 3,
        "{seen} other runnable threads seen with three spinning"
    );
}
