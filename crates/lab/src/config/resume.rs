//! What a resumed run may change: only what cannot change the numbers its finished epochs made. A resume
//! that asks for anything else is refused before any file of the run is touched.

use super::{Config, Horizon, Override, SchedulerKind, join, scalar};
use crate::UsageError;
use anyhow::Result;
use serde_yaml::Value;

/// The keys a resumed run may change: none of them changes the numbers its finished epochs made (how far
/// to train and when to stop, where and how fast it runs, what it logs). Everything else is the experiment.
pub const RESUMABLE_KEYS: [&str; 14] = [
    "trainer.epochs",
    "trainer.early_stopping.enabled",
    "trainer.early_stopping.patience",
    "trainer.save_period",
    "trainer.device",
    "trainer.threads",
    "trainer.cudnn_benchmark",
    "trainer.runs_dir",
    "trainer.tensorboard",
    "trainer.layer_health",
    "data.dir",
    "data.download",
    "logging.mlflow.tracking_uri",
    "logging.mlflow.experiment",
];

/// Refuses a resume whose config differs from the run's saved one in a key outside [`RESUMABLE_KEYS`],
/// naming the key, both values and the override that changed it.
pub fn check_resumable(
    saved: &Config,
    resumed: &Config,
    overrides: &[Override],
    run: &str,
) -> Result<()> {
    let s = &saved.lr_scheduler;
    let anneals = matches!(s.kind, SchedulerKind::Cosine | SchedulerKind::Linear);
    if anneals && s.t_max == Horizon::Auto && saved.trainer.epochs != resumed.trainer.epochs {
        return Err(UsageError::error(format!(
            "cannot change `trainer.epochs` when resuming {run}: its {} schedule anneals to the epochs it \
             started with (lr_scheduler.t_max = auto, {} epochs); start a new run instead",
            s.kind.name(),
            saved.trainer.epochs
        )));
    }
    let (old, new) = (serde_yaml::to_value(saved)?, serde_yaml::to_value(resumed)?);
    let mut changed = vec![];
    leaf_changes(&old, &new, "", &mut changed);
    let Some((key, was, now)) = changed
        .into_iter()
        .find(|(key, _, _)| !RESUMABLE_KEYS.contains(&key.as_str()))
    else {
        return Ok(());
    };
    let by = overrides
        .iter()
        .rev()
        .find(|o| o.key == key || key.starts_with(&format!("{}.", o.key)))
        .map_or(String::new(), |o| format!("{}: ", o.origin));
    Err(UsageError::error(format!(
        "{by}cannot change `{key}` when resuming {run} (it trained with {was}, not {now}): the epochs already \
         trained would no longer match the config; start a new run instead. A resume may change only: {}",
        RESUMABLE_KEYS.join(", ")
    )))
}

/// The keys that decide what a checkpoint is scored as, where `now` differs from the run's `saved` config:
/// the network (`model.*`) and the dataset (`data.dataset`), as `key: old -> new`. (`data.dir` is judged by
/// the data's fingerprint instead: a moved copy of the same files is the same data.)
pub fn scoring_changes(saved: &Config, now: &Config) -> Result<Vec<String>> {
    let (old, new) = (serde_yaml::to_value(saved)?, serde_yaml::to_value(now)?);
    let mut changed = vec![];
    leaf_changes(&old, &new, "", &mut changed);
    Ok(changed
        .into_iter()
        .filter(|(key, _, _)| key.starts_with("model.") || key == "data.dataset")
        .map(|(key, was, now)| format!("{key}: {was} -> {now}"))
        .collect())
}

/// Every leaf whose value differs between `a` and `b`, as (dotted key, old, new) in YAML.
fn leaf_changes(a: &Value, b: &Value, prefix: &str, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            for (k, va) in x {
                let key = join(prefix, k.as_str().unwrap_or_default());
                match y.get(k) {
                    Some(vb) => leaf_changes(va, vb, &key, out),
                    None => out.push((key, scalar(va), "nothing".into())),
                }
            }
        }
        _ if a != b => out.push((prefix.to_string(), scalar(a), scalar(b))),
        _ => {}
    }
}

/// `config` without the keys that cannot change what a run computes (where and how fast it runs, what it
/// logs, which extra checkpoint copies it keeps).
fn numbers_only(config: &Config) -> Config {
    let mut c = config.clone();
    c.trainer.threads = 0;
    c.trainer.device = "auto".into();
    c.trainer.runs_dir = std::path::PathBuf::new();
    c.trainer.tensorboard = false;
    c.trainer.layer_health = false;
    c.trainer.save_period = 0;
    c.logging = Default::default();
    c
}

/// Two configs describe the same experiment when they differ at most in where and how a run is kept
/// and how fast it runs.
pub fn same_experiment(a: &Config, b: &Config) -> bool {
    numbers_only(a) == numbers_only(b)
}
