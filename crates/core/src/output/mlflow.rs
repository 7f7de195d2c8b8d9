//! MLflow as a run's output: after each epoch (and at the end) a worker thread logs to the server what it
//! does not have yet ([`lenet5_lab::mlflow::sync`]), so a server that is down or slow never holds training
//! up: the loop only sends a message. The first failure is reported once and ends the tracking of this
//! session; the run's files stay the record, and `lenet5 track RUN_DIR` logs them later. At the run's end
//! the worker gets a bounded time to finish.

use super::{End, Epoch, Sink};
use anyhow::Result;
use lenet5_lab::mlflow::{self, Tracking};
use lenet5_lab::rundir::dir::RunDir;
use lenet5_lab::rundir::state::RunStatus;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the end of a run waits for the server to take its last epoch, test metrics and artifacts.
const END_WAIT: Duration = Duration::from_secs(30);

/// A sync, and how the run ended when it just did (an interrupted or diverged run's state.json is written
/// after its outputs hear of it).
type Job = Option<RunStatus>;

pub struct MlflowSink {
    jobs: Option<Sender<Job>>,
    done: Receiver<()>,
    worker: Option<JoinHandle<()>>,
    run: RunDir,
}

impl MlflowSink {
    /// Starts the worker; the run's first sync (creating the MLflow run) happens on it at once.
    pub fn start(run: &RunDir, tracking: Tracking) -> MlflowSink {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let dir = run.clone();
        let worker = std::thread::spawn(move || work(&dir, &tracking, &rx, &done_tx));
        let _ = jobs.send(None);
        MlflowSink {
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            run: run.clone(),
        }
    }
}

/// Syncs once per message (several waiting are one sync), until the first failure or the channel closes.
fn work(run: &RunDir, tracking: &Tracking, jobs: &Receiver<Job>, done: &Sender<()>) {
    while let Ok(mut ended) = jobs.recv() {
        while let Ok(later) = jobs.try_recv() {
            ended = later.or(ended);
        }
        if let Err(e) = mlflow::sync(run, tracking, ended) {
            eprintln!(
                "warning: MLflow at {}: {e:#}; training goes on without it (the run's files are the record): \
                 `lenet5 track {}` logs the run when the server is back",
                tracking.uri,
                run.path.display()
            );
            break;
        }
    }
    let _ = done.send(());
}

impl Sink for MlflowSink {
    fn epoch(&mut self, _epoch: &Epoch) -> Result<()> {
        // The worker may have stopped after a failure: then nothing is sent anywhere.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(None);
        }
        Ok(())
    }

    fn end(&mut self, end: &End) -> Result<()> {
        // A tested run's state and test results are on disk before the sinks hear of its end.
        let ended = match end {
            End::Tested { .. } => None,
            End::Interrupted => Some(RunStatus::Interrupted),
            End::Diverged => Some(RunStatus::Diverged),
        };
        if let Some(jobs) = self.jobs.take() {
            let _ = jobs.send(ended);
        }
        match self.done.recv_timeout(END_WAIT) {
            Ok(()) => {
                let _ = self.worker.take().map(JoinHandle::join);
            }
            Err(_) => eprintln!(
                "warning: MLflow has not taken the run's end within {}s; `lenet5 track {}` completes it",
                END_WAIT.as_secs(),
                self.run.path.display()
            ),
        }
        Ok(())
    }
}
