//! Sharing the CPU with whatever else runs: how many intra-op threads a training takes when the config
//! leaves it to lenet5 (`trainer.threads: 0`), and how LibTorch's OpenMP threads wait between parallel
//! regions.
//!
//! Why: OpenMP threads spin while they wait. Two trainings with a thread per core each on the same cores
//! spin against each other and collapse (14–58 s an epoch instead of 1.1 s, docs/performance.md). So a
//! training takes the cores nothing else is using ([`auto_threads`]): other runnable threads, sampled, and
//! the threads that other lenet5 trainings have claimed ([`Claim`]), so two started at once see each other.
//! The count is chosen once, at the start: LibTorch's sums depend on it, and a run's numbers must not
//! depend on when the machine got busy.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable libgomp reads, at load time, for how long a waiting thread spins before it
/// sleeps. Its default (300 000 iterations, ~0.1–1 ms) is what makes oversubscribed trainings collapse.
pub const SPIN_VAR: &str = "GOMP_SPINCOUNT";

/// [`SPIN_VAR`]'s value for lenet5: spin ~10 µs (longer than the gap between a training step's parallel
/// regions, so a training alone keeps its threads hot), then sleep (so a busy machine is not burnt spinning).
pub const SPIN_COUNT: &str = "10000";

/// Runs this program again, at once, with [`SPIN_VAR`] set to [`SPIN_COUNT`], unless the environment
/// already says how OpenMP threads wait (`OMP_WAIT_POLICY` or [`SPIN_VAR`] set: the user's choice stands).
/// libgomp reads it only when it is loaded, before `main`, hence the second start (~0.1 s; only commands
/// that train call this). Returns when nothing is to be done or the exec failed.
pub fn reexec_with_spin_limit() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() || std::env::var_os(SPIN_VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // exec returns only on failure; then the process goes on with libgomp's default.
    let _ = std::process::Command::new(exe)
        .arg0(argv0)
        .args(args)
        .env(SPIN_VAR, SPIN_COUNT)
        .exec();
}

/// The CPUs this process may run on (cgroup and affinity limits included).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads for a training that leaves the count to lenet5: the cores minus those busy, at least one. Busy
/// is the larger of the other runnable threads (median of a few samples of the kernel's count, less this
/// process's own) and the threads other live lenet5 trainings have claimed.
pub fn choose_threads(cores: usize, other_runnable: usize, claimed: usize) -> usize {
    cores
        .saturating_sub(other_runnable.max(claimed))
        .clamp(1, cores.max(1))
}

/// Other runnable threads on the machine now: the median of five samples, 10 ms apart, of the kernel's
/// count of runnable threads (`procs_running` in /proc/stat), less this process's own running ones. None
/// where /proc does not tell (not Linux).
pub fn other_runnable() -> Option<usize> {
    let mut samples = Vec::with_capacity(5);
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let all = procs_running()?;
        samples.push(all.saturating_sub(own_running().max(1)));
    }
    samples.sort_unstable();
    Some(samples[samples.len() / 2])
}

fn procs_running() -> Option<usize> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("procs_running "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's threads in state R (running or runnable).
fn own_running() -> usize {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 1;
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("stat")).ok())
        // The state follows the command name's closing parenthesis.
        .filter(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('R'))
        })
        .count()
}

/// A live training's claim on some threads: a file `<pid>` holding the count in a directory shared by
/// every lenet5 of this user, removed when the claim is dropped; a claim whose process is gone is ignored
/// (and removed by the next one to look).
pub struct Claim {
    path: PathBuf,
}

impl Claim {
    /// Chooses the thread count for this process ([`choose_threads`]) and claims it, under a lock on the
    /// directory so that two trainings starting together choose one after the other. Without a usable
    /// directory the choice is made unclaimed.
    pub fn auto(dir: &Path) -> (usize, Option<Claim>) {
        let runnable = other_runnable().unwrap_or(0);
        let Some(_lock) = lock(dir) else {
            return (choose_threads(cores(), runnable, 0), None);
        };
        let threads = choose_threads(cores(), runnable, claimed_by_others(dir));
        (threads, Claim::write(dir, threads))
    }

    /// Claims `threads` chosen by the user, so that trainings choosing their own count see them.
    pub fn register(dir: &Path, threads: usize) -> Option<Claim> {
        let _lock = lock(dir)?;
        Claim::write(dir, threads)
    }

    fn write(dir: &Path, threads: usize) -> Option<Claim> {
        let path = dir.join(std::process::id().to_string());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // Never through a link another user left under this name.
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        write!(file, "{threads}").ok()?;
        Some(Claim { path })
    }
}

/// The claims directory, created when missing (mode 0700), locked (blocking) while the returned file
/// lives; None unless it is a real directory of this user's (in a shared /tmp another user could have made
/// it, or put a link there).
fn lock(dir: &Path) -> Option<fs::File> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let meta = fs::symlink_metadata(dir).ok()?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let mine = meta.uid() == unsafe { libc::getuid() };
    if !meta.is_dir() || !mine {
        return None;
    }
    let file = crate::sys::lock::open(&dir.join(".lock")).ok()?;
    file.lock().ok()?;
    Some(file)
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The directory of claims: per user, in the runtime directory when there is one.
pub fn claims_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    // SAFETY: getuid has no preconditions and cannot fail.
    base.join(format!("lenet5-threads-{}", unsafe { libc::getuid() }))
}

/// Threads claimed by other live processes in `dir`; the files of dead ones are removed.
pub fn claimed_by_others(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut total = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if !alive(pid) {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        total += fs::read_to_string(entry.path())
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
    }
    total
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
