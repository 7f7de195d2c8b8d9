//! MLflow tracking through its REST API (`/api/2.0/mlflow/…`): a run directory's files logged as an MLflow
//! run — the flattened config as params, every epoch's metrics at their step, tags (lenet5's version and
//! the run's commit, seed, sweep group), and at the end the test metrics and the run's files as artifacts.
//! [`sync`] logs whatever the server does not have yet, so training calls it after each epoch and
//! `lenet5 track` calls it on finished runs; the run's files stay the record (`mlflow.json` says how far the
//! server got).

use crate::config::{self, Config};
use crate::rundir::dir::{self, RunDir};
use crate::rundir::metrics::{self, EpochRow};
use crate::rundir::state::RunStatus;
use crate::study::sweep;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable MLflow's own clients read; used when the config names no server.
pub const URI_ENV: &str = "MLFLOW_TRACKING_URI";
/// The experiment of runs outside a sweep, when the config names none (a sweep's is its directory's name).
pub const DEFAULT_EXPERIMENT: &str = "lenet5";
/// Each request's limit: a server that is down or slow costs at most this per call.
const TIMEOUT: Duration = Duration::from_secs(10);
/// MLflow's log-batch limits: 1000 metrics, 100 params per request.
const METRICS_PER_BATCH: usize = 1000;
const PARAMS_PER_BATCH: usize = 100;
/// The files a finished run uploads, when it has them.
const ARTIFACTS: [&str; 6] = [
    dir::CONFIG_FILE,
    dir::METRICS_FILE,
    dir::STATE_FILE,
    dir::TEST_FILE,
    dir::PROVENANCE_FILE,
    dir::BEST_WEIGHTS,
];

/// Where a run is tracked: the server and, if set, the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub uri: String,
    pub experiment: Option<String>,
}

impl Tracking {
    /// The config's `logging.mlflow`, else `MLFLOW_TRACKING_URI`; `None`: the run is not tracked.
    pub fn of(config: &Config) -> Option<Tracking> {
        let m = &config.logging.mlflow;
        let uri = (m.tracking_uri.clone())
            .or_else(|| std::env::var(URI_ENV).ok().filter(|u| !u.is_empty()))?;
        Some(Tracking {
            uri: uri.trim_end_matches('/').to_string(),
            experiment: m.experiment.clone(),
        })
    }
}

/// What the server has of a run (`mlflow.json` in the run directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub tracking_uri: String,
    pub experiment_id: String,
    pub run_id: String,
    pub artifact_uri: String,
    /// Epochs whose metrics the server has.
    pub logged_epochs: usize,
    /// The run ended and the server has its end: test metrics, artifacts, status.
    pub finished: bool,
}

/// An MLflow server's REST API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(uri: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: uri.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// POSTs `body` to `/api/2.0/mlflow/{path}`; the reply's JSON, or an error with MLflow's message.
    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let reply = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string());
        self.json(&url, reply)
    }

    fn json(
        &self,
        url: &str,
        reply: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut reply = reply.map_err(|e| anyhow!("{url}: {e}"))?;
        let status = reply.status();
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["message"].as_str().unwrap_or(&text).to_string();
            bail!("{url}: HTTP {}: {message}", status.as_u16());
        }
        Ok(value)
    }

    /// The id of experiment `name`, created when the server has none of that name.
    pub fn experiment_id(&self, name: &str) -> Result<String> {
        let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", self.base);
        let reply = self.agent.get(&url).query("experiment_name", name).call();
        let found = match self.json(&url, reply) {
            Ok(v) => v["experiment"]["experiment_id"].as_str().map(str::to_owned),
            Err(e) if e.to_string().contains("HTTP 404") => None,
            Err(e) => return Err(e),
        };
        match found {
            Some(id) => Ok(id),
            None => {
                let created = self.post("experiments/create", &json!({"name": name}))?;
                string(
                    &created["experiment_id"],
                    "experiments/create: experiment_id",
                )
            }
        }
    }

    /// A new run in experiment `experiment_id`: its id and artifact URI.
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<(String, String)> {
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": now_ms(),
            "tags": pairs(tags),
        });
        let info = &self.post("runs/create", &body)?["run"]["info"];
        Ok((
            string(&info["run_id"], "runs/create: run_id")?,
            string(&info["artifact_uri"], "runs/create: artifact_uri")?,
        ))
    }

    /// Params and metrics `(key, value, step)`, in batches within MLflow's limits.
    pub fn log(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[(String, f64, usize)],
    ) -> Result<()> {
        for chunk in params.chunks(PARAMS_PER_BATCH) {
            self.post(
                "runs/log-batch",
                &json!({"run_id": run_id, "params": pairs(chunk)}),
            )?;
        }
        let stamp = now_ms();
        for chunk in metrics.chunks(METRICS_PER_BATCH) {
            let metrics: Vec<Value> = (chunk.iter())
                .map(|(k, v, step)| json!({"key": k, "value": v, "timestamp": stamp, "step": step}))
                .collect();
            self.post(
                "runs/log-batch",
                &json!({"run_id": run_id, "metrics": metrics}),
            )?;
        }
        Ok(())
    }

    /// Sets the run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`), with its end time unless running.
    pub fn set_status(&self, run_id: &str, status: &str) -> Result<()> {
        let mut body = json!({"run_id": run_id, "status": status});
        if status != "RUNNING" {
            body["end_time"] = json!(now_ms());
        }
        self.post("runs/update", &body).map(drop)
    }

    /// Uploads `bytes` as artifact `name` through the server's artifact proxy (`mlflow server`'s default,
    /// `--serve-artifacts`); a run whose artifacts the server does not proxy cannot be uploaded to.
    pub fn upload(&self, artifact_uri: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let Some(path) = artifact_uri.strip_prefix("mlflow-artifacts:") else {
            bail!(
                "the server stores artifacts at {artifact_uri}, which lenet5 cannot write to; run the server with \
                 --serve-artifacts to have them uploaded"
            );
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{name}",
            self.base,
            path.trim_start_matches('/')
        );
        let reply = self.agent.put(&url).send(bytes);
        self.json(&url, reply).map(drop)
    }
}

/// Logs to `tracking` whatever of `run` the server does not have yet (creating the MLflow run on the first
/// call) and records how far it got in `mlflow.json`. The run's own files are never changed. `ended`: how
/// the run just ended, when its state.json does not say so yet.
pub fn sync(run: &RunDir, tracking: &Tracking, ended: Option<RunStatus>) -> Result<Record> {
    let client = Client::new(&tracking.uri);
    let config = run.config()?;
    let mut record = match read_record(run)? {
        Some(r) if r.tracking_uri == tracking.uri => r,
        _ => start(&client, run, &config, tracking)?,
    };
    let state = run.state()?;
    let rows = metrics::read(&run.file(dir::METRICS_FILE))?;
    let new: Vec<&EpochRow> = rows
        .iter()
        .filter(|r| r.epoch > record.logged_epochs)
        .collect();
    if !new.is_empty() {
        client.log(&record.run_id, &[], &epoch_metrics(&new))?;
        record.logged_epochs = new.iter().map(|r| r.epoch).max().unwrap_or(0);
        write_record(run, &record)?;
    }
    let status = ended.or(state.map(|s| s.status));
    if !record.finished && status.is_some_and(|s| s != RunStatus::Running) {
        finish(&client, run, &mut record, status.expect("some"))?;
    }
    Ok(record)
}

/// A new MLflow run for `run`: its experiment, tags and params.
fn start(client: &Client, run: &RunDir, config: &Config, tracking: &Tracking) -> Result<Record> {
    let (sweep_name, group) = sweep_of(&run.path);
    let experiment = (tracking.experiment.clone())
        .or(sweep_name)
        .unwrap_or_else(|| DEFAULT_EXPERIMENT.to_string());
    let experiment_id = client.experiment_id(&experiment)?;
    let commit = (run.provenance()?.last()).map_or(crate::COMMIT.to_string(), |p| p.commit.clone());
    let mut tags = vec![
        ("lenet5.version".to_string(), crate::VERSION.to_string()),
        ("lenet5.commit".to_string(), commit),
        ("lenet5.seed".to_string(), config.trainer.seed.to_string()),
        ("lenet5.run_dir".to_string(), run.path.display().to_string()),
    ];
    tags.extend(group.map(|g| ("lenet5.group".to_string(), g)));
    let name = run
        .path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let (run_id, artifact_uri) = client.create_run(&experiment_id, &name, &tags)?;
    client.log(&run_id, &params(config)?, &[])?;
    let record = Record {
        tracking_uri: tracking.uri.clone(),
        experiment_id,
        run_id,
        artifact_uri,
        logged_epochs: 0,
        finished: false,
    };
    write_record(run, &record)?;
    Ok(record)
}

/// The run's end: test metrics, its files as artifacts (completed runs), its MLflow status.
fn finish(client: &Client, run: &RunDir, record: &mut Record, status: RunStatus) -> Result<()> {
    let mlflow_status = match status {
        s if s.is_finished() => "FINISHED",
        RunStatus::Interrupted => "KILLED",
        _ => "FAILED",
    };
    if status.is_finished() {
        if let Some(test) = run.test()? {
            let step = record.logged_epochs;
            let metrics = [("test_accuracy", test.accuracy), ("test_loss", test.loss)];
            let metrics: Vec<_> = metrics
                .iter()
                .map(|(k, v)| (k.to_string(), *v, step))
                .collect();
            client.log(&record.run_id, &[], &metrics)?;
        }
        for name in ARTIFACTS {
            let path = run.file(name);
            if path.is_file() {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                client.upload(&record.artifact_uri, name, &bytes)?;
            }
        }
    }
    client.set_status(&record.run_id, mlflow_status)?;
    // An interrupted run is resumed later: it goes on in the same MLflow run.
    record.finished = status.is_finished();
    write_record(run, record)
}

/// Each epoch's numbers as `(key, value, step)`, the step being the epoch.
fn epoch_metrics(rows: &[&EpochRow]) -> Vec<(String, f64, usize)> {
    let mut out = vec![];
    for r in rows {
        let values = [
            ("loss", r.loss),
            ("accuracy", r.accuracy),
            ("val_loss", r.val_loss),
            ("val_accuracy", r.val_accuracy),
            ("lr", r.lr),
            ("epoch_seconds", r.seconds),
        ];
        out.extend(
            (values.iter())
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| (k.to_string(), *v, r.epoch)),
        );
    }
    out
}

/// The resolved config, flattened to `key.path: value` (YAML's spelling of each scalar).
fn params(config: &Config) -> Result<Vec<(String, String)>> {
    let tree = serde_yaml::to_value(config)?;
    Ok(config::keys()
        .into_iter()
        .filter_map(|key| {
            let value = config::value_at(&tree, &key)?;
            // A list (betas, a piecewise schedule) as JSON, on one line: `[0.9,0.999]`.
            let text = match value.is_sequence() {
                true => serde_json::to_string(value).unwrap_or_default(),
                false => config::scalar(value),
            };
            Some((key, text))
        })
        .collect())
}

/// The sweep a run directory belongs to (`SWEEP/runs/ID`), by name, and the run's group in it.
fn sweep_of(run_dir: &Path) -> (Option<String>, Option<String>) {
    let Some(sweep_dir) = (run_dir.parent())
        .filter(|p| p.ends_with(dir::RUNS_DIR))
        .and_then(Path::parent)
    else {
        return (None, None);
    };
    let Ok(sweep) = sweep::open(sweep_dir) else {
        return (None, None);
    };
    let id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let group = (sweep.runs.iter())
        .find(|r| Some(&r.id) == id.as_ref())
        .map(|r| r.group.clone());
    let name = sweep_dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    (name, group)
}

pub fn read_record(run: &RunDir) -> Result<Option<Record>> {
    let path = run.file(dir::MLFLOW_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: not an MLflow record", path.display()))
}

fn write_record(run: &RunDir, record: &Record) -> Result<()> {
    crate::sys::atomic::write(
        &run.file(dir::MLFLOW_FILE),
        serde_json::to_string_pretty(record)?.as_bytes(),
    )
}

fn pairs(kv: &[(String, String)]) -> Vec<Value> {
    kv.iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

fn string(v: &Value, what: &str) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what} missing from the server's reply"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
