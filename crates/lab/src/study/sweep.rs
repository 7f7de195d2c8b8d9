//! Studies: a sweep file expands into runs (variants × grid × seeds), each an ordinary run directory under
//! one sweep directory, with a manifest that says where every run stands. Running them is [`exec`]'s job
//! (locally or as Slurm array tasks, [`slurm`]); reading them back is [`crate::study`]'s.
//!
//! ```text
//! SWEEP_DIR/
//!   sweep.yaml      the sweep as resolved: base, overrides, variants, grid, seeds, baseline, runs
//!   manifest.csv    one line per run: id, group, variant, overrides, seed, status, test accuracy, error
//!   runs/<id>/      an ordinary run directory (config.yaml written before anything runs)
//!   runs/<id>/train.log   the run's output; error.txt when it failed
//! ```

use super::space::{Trial, TuneSpec};
use crate::UsageError;
use crate::config::{self, Config, Override, scalar};
use crate::rundir::dir::{self, RUNS_DIR, RunDir};
use crate::sys::atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// What a run failed with, beside its other files.
pub const ERROR_FILE: &str = "error.txt";
pub const MANIFEST_FILE: &str = "manifest.csv";
pub const SWEEP_FILE: &str = "sweep.yaml";

/// A variant's `compare_to`: one reference, several (`[a, b]`: a comparison with each), or none (`[]`: the
/// group is only a reference, not compared with the baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a variant or group name, or a list of them")]
pub enum CompareTo {
    One(String),
    Many(Vec<String>),
}

impl CompareTo {
    pub fn names(&self) -> &[String] {
        match self {
            CompareTo::One(name) => std::slice::from_ref(name),
            CompareTo::Many(names) => names,
        }
    }
}

/// A sweep file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Config every run starts from (a path; a relative one is relative to the sweep file's directory, as
    /// Hydra resolves a config's defaults against the config).
    pub base: Option<PathBuf>,
    /// Overrides for every run, `key.path: value`.
    #[serde(default)]
    pub set: Mapping,
    /// Named override sets; one-factor-at-a-time studies are a list of these.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
    /// `key.path: [values]`: every combination runs (in every variant).
    #[serde(default)]
    pub grid: Mapping,
    /// A count N (seeds 1..=N) or a list; each goes to `trainer.seed`. `data.seed` stays as configured, so
    /// every run of a study sees the same train/validation split, unless `split_follows_seed`.
    pub seeds: Seeds,
    /// Each run's `data.seed` (its train/validation split) is its seed too, so the split varies with the
    /// seed and a group's spread includes the split's share (default false: one split for every run).
    #[serde(default)]
    pub split_follows_seed: bool,
    /// The group the report compares every other group against (unless a variant names its own).
    pub baseline: Option<String>,
    /// The margin within which a difference counts as none, fixed before the runs: points of test
    /// accuracy (`0.25`), or a share of the reference group's error rate (`"10%"`: 10% of 100 − its mean
    /// test accuracy). Default [`crate::study::compare::DEFAULT_MARGIN`] points.
    pub equivalence_margin: Option<Margin>,
    /// Why this margin: the report prints it beside the margin.
    pub margin_reason: Option<String>,
    /// Tune every variant (that has no `tune:` of its own) before training its seeds ([`super::tune`]).
    pub tune: Option<TuneSpec>,
}

/// An equivalence margin as the sweep file states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Margin {
    /// Points of test accuracy.
    Points(f64),
    /// `"N%"`: N percent of the reference group's error rate.
    Relative(String),
}

impl Margin {
    /// The share of the error rate a relative margin names (0.1 for "10%"), or why it is not one.
    fn share(text: &str) -> Result<f64> {
        let share = text
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| *n > 0.0 && n.is_finite())
            .with_context(|| {
                format!(
                    "equivalence_margin = {text:?}: give points of test accuracy (0.25) or a share of the \
                     reference's error rate (\"10%\")"
                )
            })?;
        Ok(share / 100.0)
    }

    /// Checks the margin as written.
    pub fn validate(&self) -> Result<()> {
        match self {
            Margin::Points(m) => anyhow::ensure!(
                *m > 0.0 && m.is_finite(),
                "equivalence_margin = {m} must be > 0 (points of test accuracy)"
            ),
            Margin::Relative(text) => {
                Margin::share(text)?;
            }
        }
        Ok(())
    }

    /// The margin in points, for a reference whose mean test accuracy is `reference_accuracy` (percent).
    pub fn points(&self, reference_accuracy: f64) -> f64 {
        match self {
            Margin::Points(m) => *m,
            Margin::Relative(text) => {
                Margin::share(text).unwrap_or(f64::NAN) * (100.0 - reference_accuracy)
            }
        }
    }

    /// The margin as a report states it: "±0.25 points", "±10% of the reference's error rate".
    pub fn describe(&self) -> String {
        match self {
            Margin::Points(m) => format!("±{m} points"),
            Margin::Relative(text) => format!("±{} of the reference's error rate", text.trim()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub name: String,
    /// This variant's own base config, instead of the sweep's.
    pub base: Option<PathBuf>,
    /// This variant's own seeds, instead of the sweep's (e.g. fewer for its longest runs).
    pub seeds: Option<Seeds>,
    /// The variant (or group) this one is compared with in the report, instead of the sweep's baseline:
    /// the group it differs from in one factor (sigmoid + weight decay against sigmoid, not against ReLU).
    pub compare_to: Option<CompareTo>,
    #[serde(default)]
    pub set: Mapping,
    /// Tune this variant before training its seeds, instead of the sweep's `tune:`.
    pub tune: Option<TuneSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

impl Seeds {
    pub fn list(&self) -> Vec<u64> {
        match self {
            Seeds::Count(n) => (1..=*n).collect(),
            Seeds::List(list) => list.clone(),
        }
    }
}

/// One run of a sweep, expanded and validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Directory name under `runs/`: the group and the seed (stable across invocations).
    pub id: String,
    /// Everything but the seed: the variant and the grid values.
    pub group: String,
    pub variant: String,
    /// The overrides over the base config, as `key=value`, without the seed.
    pub overrides: Vec<String>,
    pub seed: u64,
    /// A tuning trial's number and sampled values; `None` for the runs the study compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    #[serde(skip)]
    pub config: Config,
}

/// A sweep: its directory and its runs.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub dir: PathBuf,
    pub spec: SweepFile,
    pub runs: Vec<Run>,
}

/// Where a run stands on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Trained to its end and tested.
    Finished { test_accuracy: f64 },
    /// Stopped by an error (divergence, bad data); `--retry-failed` runs it again.
    Failed(String),
    /// Not started, or stopped part-way (resumed next time).
    Unfinished,
}

impl RunState {
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Finished { .. } => "finished",
            RunState::Failed(_) => "failed",
            RunState::Unfinished => "unfinished",
        }
    }
}

/// Reads and expands `path`; every run's config is resolved and validated before anything runs.
pub fn load(path: &Path, dir: &Path) -> Result<Sweep> {
    let text = crate::sys::read::text(path, crate::sys::read::CONFIG_LIMIT)?;
    let mut spec: SweepFile = serde_yaml::from_str(&text)
        .map_err(|e| UsageError::error(format!("{}: {e}", path.display())))?;
    let here = path.parent().unwrap_or(Path::new(""));
    let beside = |base: &mut Option<PathBuf>| {
        if let Some(b) = base.as_mut().filter(|b| b.is_relative()) {
            *b = here.join(&*b);
        }
    };
    beside(&mut spec.base);
    spec.variants.iter_mut().for_each(|v| beside(&mut v.base));
    let runs =
        expand(&spec).map_err(|e| UsageError::error(format!("{}: {e:#}", path.display())))?;
    Ok(Sweep {
        dir: dir.to_path_buf(),
        spec,
        runs,
    })
}

/// Opens an existing sweep directory: the runs its `sweep.yaml` lists, with the configs their directories
/// hold (no base config needs to be reachable from here).
pub fn open(dir: &Path) -> Result<Sweep> {
    let path = dir.join(SWEEP_FILE);
    let bad = |e: String| UsageError::error(format!("{}: {e}", path.display()));
    if !path.exists() {
        return Err(UsageError::error(format!(
            "{} is not a sweep directory (no {SWEEP_FILE})",
            dir.display()
        )));
    }
    // A regular file of bounded size: a FIFO or a device there is refused, not read forever.
    let text = crate::sys::read::text(&path, crate::sys::read::RUN_FILE_LIMIT)?;
    let mut tree: Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let runs = tree
        .as_mapping_mut()
        .and_then(|m| m.remove("runs"))
        .ok_or_else(|| bad("no runs".into()))?;
    let spec: SweepFile = serde_yaml::from_value(tree).map_err(|e| bad(e.to_string()))?;
    let mut runs: Vec<Run> = serde_yaml::from_value(runs).map_err(|e| bad(e.to_string()))?;
    for run in &mut runs {
        run.config = RunDir::open(&dir.join(RUNS_DIR).join(&run.id))?.config()?;
    }
    Ok(Sweep {
        dir: dir.to_path_buf(),
        spec,
        runs,
    })
}

/// True when `dir` holds a sweep.
pub fn is_sweep_dir(dir: &Path) -> bool {
    // Present, whatever it is: `open` then refuses one that is not a regular file, naming it.
    dir.join(SWEEP_FILE).exists()
}

/// Runs = variants × grid × seeds, in that order.
pub fn expand(spec: &SweepFile) -> Result<Vec<Run>> {
    let implicit = [VariantSpec {
        name: "base".into(),
        base: None,
        seeds: None,
        set: Mapping::new(),
        compare_to: None,
        tune: None,
    }];
    let variants = if spec.variants.is_empty() {
        &implicit[..]
    } else {
        &spec.variants[..]
    };
    check_variant_names(variants)?;
    let mut runs = vec![];
    for variant in variants {
        for point in grid_points(&spec.grid)? {
            runs.extend(expand_point(spec, variant, &point)?);
        }
    }
    check_unique_ids(&runs)?;
    check_references(spec, &runs)?;
    Ok(runs)
}

/// Every run names its own directory: a seed listed twice, or grid values that write the same id (`a/b`
/// and `a_b`), would make two runs one and count it twice.
fn check_unique_ids(runs: &[Run]) -> Result<()> {
    let mut seen: std::collections::HashMap<&str, &Run> = std::collections::HashMap::new();
    for run in runs {
        if let Some(first) = seen.insert(&run.id, run) {
            anyhow::ensure!(
                first.group != run.group,
                "run id {:?} twice: seed {} is listed twice for group `{}`",
                run.id,
                run.seed,
                run.group
            );
            anyhow::bail!(
                "run id {:?} twice: groups `{}` and `{}` write the same directory name; give their values \
                 distinct names",
                run.id,
                first.group,
                run.group
            );
        }
    }
    Ok(())
}

/// Variant names name directories: allowed characters only, each once.
fn check_variant_names(variants: &[VariantSpec]) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    for v in variants {
        anyhow::ensure!(
            !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            "variant name {:?}: use letters, digits, _ - . only (it names directories)",
            v.name
        );
        anyhow::ensure!(
            names.insert(&v.name),
            "variant name {:?} is used twice",
            v.name
        );
    }
    Ok(())
}

/// One variant at one grid point, over its seeds: every run's config resolved and validated.
fn expand_point(
    spec: &SweepFile,
    variant: &VariantSpec,
    point: &[(String, Value)],
) -> Result<Vec<Run>> {
    let group = group_name(&variant.name, point);
    let mut pairs: Vec<(String, Value)> = vec![];
    for map in [&spec.set, &variant.set] {
        for (k, v) in map {
            let key = k
                .as_str()
                .with_context(|| format!("set: key {k:?} is not text"))?;
            pairs.push((key.to_string(), v.clone()));
        }
    }
    pairs.extend(point.iter().cloned());
    let overrides: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", scalar(v)))
        .collect();
    let origin = format!("variant `{}`", variant.name);
    let base = variant.base.as_ref().or(spec.base.as_ref());
    let seeds = variant.seeds.as_ref().unwrap_or(&spec.seeds).list();
    anyhow::ensure!(!seeds.is_empty(), "{origin}: needs at least one seed");
    let mut runs = vec![];
    for &seed in &seeds {
        let mut list: Vec<Override> = pairs
            .iter()
            .map(|(k, v)| Override::new(k, v.clone(), format!("{origin}: {k}")))
            .collect();
        list.push(Override::new(
            "trainer.seed",
            seed,
            format!("{origin}: seed {seed}"),
        ));
        if spec.split_follows_seed {
            let origin = format!("{origin}: split_follows_seed, seed {seed}");
            list.push(Override::new("data.seed", seed, origin));
        }
        let config = match base {
            Some(path) => config::load(path, &list),
            None => config::apply(&Config::default(), &list, "defaults"),
        }
        // Each context once: an override's error already names its variant.
        .map_err(|e| match format!("{e:#}").contains(&origin) {
            true => e,
            false => e.context(origin.clone()),
        })?;
        runs.push(Run {
            id: format!("{}-seed{seed}", group.replace('/', "_")),
            group: group.clone(),
            variant: variant.name.clone(),
            overrides: overrides.clone(),
            seed,
            trial: None,
            config,
        });
    }
    Ok(runs)
}

/// `compare_to` and `baseline` name groups or variants of the sweep; the margin is a positive number.
fn check_references(spec: &SweepFile, runs: &[Run]) -> Result<()> {
    for v in &spec.variants {
        for to in v.compare_to.iter().flat_map(CompareTo::names) {
            anyhow::ensure!(
                runs.iter().any(|r| &r.group == to || &r.variant == to),
                "variant `{}`: compare_to: {to:?} is not a variant or group of this sweep",
                v.name
            );
        }
    }
    if let Some(margin) = &spec.equivalence_margin {
        margin.validate()?;
    }
    if let Some(baseline) = &spec.baseline {
        anyhow::ensure!(
            runs.iter()
                .any(|r| &r.group == baseline || &r.variant == baseline),
            "baseline: {baseline:?} is not a variant or group of this sweep"
        );
    }
    Ok(())
}

/// A group's name: its variant and its grid values, `relu,optimizer.lr=0.01`.
pub fn group_name(variant: &str, point: &[(String, Value)]) -> String {
    std::iter::once(variant.to_string())
        .chain(point.iter().map(|(k, v)| format!("{k}={}", scalar(v))))
        .collect::<Vec<_>>()
        .join(",")
}

/// The variants' names (`base` when the sweep lists none).
pub fn variant_names(spec: &SweepFile) -> Vec<String> {
    match spec.variants.is_empty() {
        true => vec!["base".into()],
        false => spec.variants.iter().map(|v| v.name.clone()).collect(),
    }
}

/// The cartesian product of the grid, in the file's key order.
pub fn grid_points(grid: &Mapping) -> Result<Vec<Vec<(String, Value)>>> {
    let mut points = vec![vec![]];
    for (k, values) in grid {
        let key = k
            .as_str()
            .with_context(|| format!("grid: key {k:?} is not text"))?;
        let values = values
            .as_sequence()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("grid: {key} needs a non-empty list of values"))?;
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((key.to_string(), v.clone()));
                    p
                })
            })
            .collect();
    }
    Ok(points)
}

impl Sweep {
    /// Pairs of runs (ids) that are the same experiment under two names: each would be trained twice.
    pub fn same_experiments(&self) -> Vec<(&str, &str)> {
        let mut out = vec![];
        for (i, a) in self.runs.iter().enumerate() {
            let first = self.runs[..i]
                .iter()
                .find(|b| crate::config::same_experiment(&a.config, &b.config));
            if let Some(b) = first {
                out.push((b.id.as_str(), a.id.as_str()));
            }
        }
        out
    }

    pub fn run_dir(&self, run: &Run) -> PathBuf {
        self.dir.join(RUNS_DIR).join(&run.id)
    }

    /// Creates the sweep directory: the resolved sweep file and, for each run not there yet, its directory
    /// with its config. A run directory that holds another config is an error (use another `--out`).
    pub fn prepare(&self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join(RUNS_DIR))
            .with_context(|| format!("cannot create sweep directory {}", self.dir.display()))?;
        for run in &self.runs {
            let dir = self.run_dir(run);
            if dir.join(dir::CONFIG_FILE).is_file() {
                let existing = RunDir::open(&dir)?.config()?;
                if !crate::config::same_experiment(&existing, &run.config) {
                    return Err(UsageError::error(format!(
                        "{} holds a run with another config than this sweep's `{}`; use another --out",
                        dir.display(),
                        run.id
                    )));
                }
                continue;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            atomic::write(
                &dir.join(dir::CONFIG_FILE),
                run.config.to_yaml()?.as_bytes(),
            )?;
        }
        let resolved = Resolved {
            spec: &self.spec,
            runs: &self.runs,
        };
        atomic::write(
            &self.dir.join(SWEEP_FILE),
            serde_yaml::to_string(&resolved)?.as_bytes(),
        )?;
        self.write_manifest()
    }

    /// Where `run` stands, from its directory.
    pub fn state(&self, run: &Run) -> RunState {
        let dir = self.run_dir(run);
        let Ok(run_dir) = RunDir::open(&dir) else {
            return RunState::Unfinished;
        };
        // Finished as far as its config asks: a tuning trial promoted to more epochs trains on.
        let finished = run_dir
            .state()
            .ok()
            .flatten()
            .is_some_and(|s| s.is_trained(&run.config));
        match (finished, run_dir.test().ok().flatten()) {
            (true, Some(test)) => RunState::Finished {
                test_accuracy: test.accuracy,
            },
            _ => match std::fs::read_to_string(dir.join(ERROR_FILE)) {
                Ok(e) => RunState::Failed(e.trim().to_string()),
                Err(_) => RunState::Unfinished,
            },
        }
    }

    /// Rewrites `manifest.csv` from the run directories (so it is right whoever wrote last).
    pub fn write_manifest(&self) -> Result<()> {
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record([
            "id",
            "group",
            "variant",
            "overrides",
            "seed",
            "status",
            "test_accuracy",
            "error",
        ])?;
        for run in &self.runs {
            let state = self.state(run);
            let (accuracy, error) = match &state {
                RunState::Finished { test_accuracy } => (test_accuracy.to_string(), String::new()),
                RunState::Failed(e) => (String::new(), e.clone()),
                RunState::Unfinished => (String::new(), String::new()),
            };
            let seed = run.seed.to_string();
            let overrides = run.overrides.join("; ");
            w.write_record([
                &run.id,
                &run.group,
                &run.variant,
                &overrides,
                &seed,
                state.name(),
                &accuracy,
                &error,
            ])?;
        }
        atomic::write(&self.dir.join(MANIFEST_FILE), &w.into_inner()?)
    }
}

/// What `sweep.yaml` holds in the sweep directory: the file as given, and the runs it expanded to.
#[derive(Serialize)]
struct Resolved<'a> {
    #[serde(flatten)]
    spec: &'a SweepFile,
    runs: &'a [Run],
}
