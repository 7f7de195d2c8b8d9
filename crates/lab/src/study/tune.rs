//! Tuning before training: a variant with a `tune:` block ([`super::space`]) first trains its trials —
//! ordinary runs of the sweep, `<variant>-trialNN`, each recording its number and sampled values — then its
//! seeds at the trial with the best validation metric (never the test set). With successive halving a
//! trial's config asks for the epochs of its rung; a promoted trial's config is raised to the next rung and
//! the sweep's resume machinery trains it on. Every decision is re-derived from the run directories on each
//! call ([`Tuning::stage`]), so a driver killed at any moment and started again, or a Slurm job per stage,
//! picks up where it stood: rungs are decided once every trial at them has reported (synchronous successive
//! halving), so the promotions never depend on which run happened to finish first.

use super::exec::{self, Options, Summary};
use super::space::{Dist, Trial, TuneSpec};
use super::sweep::{ERROR_FILE, Run, RunState, Sweep};
use crate::config::scalar;
use crate::config::{self, Horizon, Monitor, Override, SchedulerKind};
use crate::rundir::dir::{METRICS_FILE, RunDir};
use crate::rundir::metrics::{self, EpochRow};
use crate::rundir::state::RunStatus;
use crate::sys::atomic;
use crate::sys::interrupt::Interrupt;
use anyhow::{Context, Result};

/// The sweep directory's record of the tuning: one line per trial.
pub const TUNING_FILE: &str = "tuning.csv";

/// A sweep's tuned variants, their trials planned.
pub struct Tuning {
    variants: Vec<Tuned>,
    /// The runs of untuned variants, as expanded.
    others: Vec<Run>,
}

/// One tuned variant.
struct Tuned {
    name: String,
    spec: TuneSpec,
    monitor: Monitor,
    /// Trials at full budget (their configs' epochs are set per stage).
    trials: Vec<Run>,
    /// The variant's seed runs as expanded, without the chosen values yet.
    seeds: Vec<Run>,
    rungs: Vec<usize>,
}

/// Where one trial stands on disk.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Completed epochs' rows.
    rows: Vec<EpochRow>,
    /// It can train no further: early-stopped, diverged or failed.
    ended: bool,
    failed: bool,
}

/// What the directories say about a tuned variant.
#[derive(Debug, Clone)]
struct Decision {
    /// The epochs each trial is to reach now.
    targets: Vec<usize>,
    /// The chosen trial's number, once every trial at the last rung has reported.
    chosen: Option<usize>,
}

impl Tuning {
    /// The tuning of `sweep`; `None` when no variant is tuned. Checks every block and trial config.
    pub fn new(sweep: &Sweep) -> Result<Option<Tuning>> {
        let spec = &sweep.spec;
        anyhow::ensure!(
            (spec.tune.is_none() && spec.variants.iter().all(|v| v.tune.is_none()))
                || spec.grid.is_empty(),
            "tune: cannot be combined with grid: (make each grid point a variant)"
        );
        let names: Vec<String> = if spec.variants.is_empty() {
            vec!["base".into()]
        } else {
            spec.variants.iter().map(|v| v.name.clone()).collect()
        };
        let (mut variants, mut others) = (vec![], vec![]);
        for (i, name) in names.iter().enumerate() {
            let runs: Vec<Run> = sweep
                .runs
                .iter()
                .filter(|r| &r.variant == name)
                .cloned()
                .collect();
            let block = spec
                .variants
                .get(i)
                .and_then(|v| v.tune.clone())
                .or(spec.tune.clone());
            match block {
                Some(block) => variants.push(Tuned::plan(name, block, runs)?),
                None => others.extend(runs),
            }
        }
        Ok((!variants.is_empty()).then_some(Tuning { variants, others }))
    }

    /// The runs before any trial has trained (for `--dry-run`): the untuned runs and every trial, at the
    /// epochs of its first rung.
    pub fn planned(&self) -> Vec<Run> {
        let trials = self.variants.iter().flat_map(|t| {
            t.trials.iter().map(|run| {
                let mut run = run.clone();
                run.config.trainer.epochs = t.rungs[0];
                run
            })
        });
        self.others.iter().cloned().chain(trials).collect()
    }

    /// Reads every trial's directory, promotes and chooses, sets `sweep.runs` (untuned runs, trials at
    /// their current epochs, chosen seed runs), prepares the sweep directory and writes `tuning.csv`.
    /// Returns the ids of the runs left to train now (empty: everything is done).
    pub fn stage(&self, sweep: &mut Sweep) -> Result<Vec<String>> {
        let mut runs = self.others.clone();
        let mut lines = vec![];
        for t in &self.variants {
            let progress: Vec<Progress> = t
                .trials
                .iter()
                .map(|r| read(sweep, r))
                .collect::<Result<_>>()?;
            let decision = t.decide(&progress);
            for (run, target) in t.trials.iter().zip(&decision.targets) {
                runs.push(t.at_epochs(sweep, run, *target)?);
            }
            if let Some(number) = decision.chosen {
                runs.extend(t.seeds_at(&t.trials[number - 1])?);
            }
            lines.extend(t.lines(&progress, &decision));
        }
        sweep.runs = runs;
        sweep.prepare()?;
        atomic::write(&sweep.dir.join(TUNING_FILE), &tuning_csv(&lines)?)?;
        Ok(sweep
            .runs
            .iter()
            .filter(|r| sweep.state(r) == RunState::Unfinished)
            .map(|r| r.id.clone())
            .collect())
    }

    /// Runs the whole tuned sweep here: stage after stage until every run has trained, or one could not.
    pub fn run(&self, sweep: &mut Sweep, opts: &Options, interrupt: &Interrupt) -> Result<Summary> {
        // What the last stage asked for: a run id with its epochs (a promoted trial keeps its id).
        let mut last: Option<Vec<(String, usize)>> = None;
        loop {
            let pending = self.stage(sweep)?;
            let asked: Vec<(String, usize)> = (sweep.runs.iter())
                .filter(|r| pending.contains(&r.id))
                .map(|r| (r.id.clone(), r.config.trainer.epochs))
                .collect();
            if pending.is_empty() || last.as_ref() == Some(&asked) {
                // Nothing left to train: the summary of every run (none is started again).
                let all: Vec<&Run> = sweep.runs.iter().collect();
                let opts = Options {
                    retry_failed: false,
                    ..opts.clone()
                };
                let mut summary = without_trials(sweep, exec::run(sweep, &all, &opts, interrupt)?);
                // A variant none of whose trials could be chosen has no seed runs: a failure, not a silence.
                for t in &self.variants {
                    if !sweep
                        .runs
                        .iter()
                        .any(|r| r.variant == t.name && r.trial.is_none())
                    {
                        let why = "no trial finished its budget, so no setting was chosen";
                        eprintln!("FAILED {}: {why}", t.name);
                        summary.failed.push((t.name.clone(), why.into()));
                    }
                }
                return Ok(summary);
            }
            let runs: Vec<&Run> = sweep
                .runs
                .iter()
                .filter(|r| pending.contains(&r.id))
                .collect();
            let summary = without_trials(sweep, exec::run(sweep, &runs, opts, interrupt)?);
            if summary.failure().is_some() || interrupt.requested().is_some() {
                return Ok(summary);
            }
            last = Some(asked);
        }
    }
}

/// `summary` without its failed trials: a trial that diverges is a result of its sampled values.
fn without_trials(sweep: &Sweep, mut summary: Summary) -> Summary {
    let trial = |id: &str| sweep.runs.iter().any(|r| r.id == id && r.trial.is_some());
    summary.failed.retain(|(id, _)| !trial(id));
    summary
}

impl Tuned {
    /// The trials of `name` (seed runs `runs`, as expanded) under `spec`.
    fn plan(name: &str, spec: TuneSpec, seeds: Vec<Run>) -> Result<Tuned> {
        let origin = format!("variant `{name}`");
        let space: Vec<(String, Dist)> =
            spec.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let monitor = spec
            .monitor()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let first = seeds
            .first()
            .with_context(|| format!("{origin}: no runs to tune"))?;
        let epochs = first.config.trainer.epochs;
        anyhow::ensure!(
            first.config.data.validation_split > 0.0,
            "{origin}: tune: chooses by validation, but data.validation_split is 0 (its val_* numbers would be training ones)"
        );
        if let Some(a) = spec.asha {
            anyhow::ensure!(
                first.config.lr_scheduler.kind != crate::config::SchedulerKind::Onecycle,
                "{origin}: tune.asha with lr_scheduler.type onecycle: a promoted trial's cycle would be bent to the new budget; use cosine or linear with t_max: auto"
            );
            anyhow::ensure!(
                a.min_epochs < epochs,
                "{origin}: tune.asha.min_epochs = {} must be below trainer.epochs = {epochs}",
                a.min_epochs
            );
        }
        let mut trials = vec![];
        for number in 1..=spec.trials {
            let (values, seed) = spec.sample(&space, number);
            let mut list: Vec<Override> = values
                .iter()
                .map(|(k, v)| {
                    let key = k.as_str().unwrap_or_default();
                    Override::new(key, v.clone(), format!("{origin}: trial {number}: {key}"))
                })
                .collect();
            list.push(Override::new(
                "trainer.seed",
                seed,
                format!("{origin}: trial {number}: seed"),
            ));
            let mut config = config::apply(&first.config, &list, &origin)?;
            // A trial stopped at a rung anneals as the full run would.
            let s = &mut config.lr_scheduler;
            if matches!(s.kind, SchedulerKind::Cosine | SchedulerKind::Linear)
                && s.t_max == Horizon::Auto
            {
                s.t_max = Horizon::Epochs(epochs);
            }
            let mut overrides = first.overrides.clone();
            overrides.extend(
                values
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or_default(), scalar(v))),
            );
            trials.push(Run {
                id: format!("{name}-trial{number:02}"),
                group: format!("{name}-trial{number:02}"),
                variant: name.to_string(),
                overrides,
                seed,
                trial: Some(Trial { number, values }),
                config,
            });
        }
        Ok(Tuned {
            name: name.to_string(),
            rungs: spec.rungs(epochs),
            spec,
            monitor,
            trials,
            seeds,
        })
    }

    /// Successive halving over the trials' progress: every trial aims at the first rung; once every trial
    /// at rung k has reached it (or ended), the top ⌊n/η⌋ (at least one) by their best metric up to rung k
    /// aim at rung k + 1. The choice is the best of the trials at the last rung, once all have reported.
    fn decide(&self, progress: &[Progress]) -> Decision {
        let eta = self.spec.asha.map_or(1, |a| a.reduction_factor);
        let mut targets = vec![self.rungs[0]; progress.len()];
        let mut alive: Vec<usize> = (0..progress.len()).collect();
        let reported =
            |i: &usize, epochs: usize| progress[*i].ended || progress[*i].rows.len() >= epochs;
        let mut chosen = None;
        for (k, &rung) in self.rungs.iter().enumerate() {
            if !alive.iter().all(|i| reported(i, rung)) {
                break;
            }
            let mut ranked: Vec<usize> = alive.clone();
            ranked.retain(|&i| !progress[i].failed);
            ranked.sort_by(|&a, &b| {
                self.order(
                    best(&progress[a].rows, rung, self.monitor),
                    best(&progress[b].rows, rung, self.monitor),
                )
            });
            if k + 1 == self.rungs.len() {
                chosen = ranked.first().map(|&i| i + 1);
                break;
            }
            let keep = (alive.len() / eta).max(1);
            alive = ranked
                .into_iter()
                .take(keep)
                .filter(|&i| !progress[i].ended)
                .collect();
            alive.iter().for_each(|&i| targets[i] = self.rungs[k + 1]);
        }
        Decision { targets, chosen }
    }

    /// Best first; a trial without a number last.
    fn order(&self, a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
        match (a, b) {
            (Some(a), Some(b)) if self.monitor.improves(a, b, 0.0) => std::cmp::Ordering::Less,
            (Some(a), Some(b)) if self.monitor.improves(b, a, 0.0) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal, // stable: the lower trial number first
        }
    }

    /// `trial` asking for `target` epochs (never fewer than its directory already asks for); its
    /// directory's config is raised when it is promoted.
    fn at_epochs(&self, sweep: &Sweep, trial: &Run, target: usize) -> Result<Run> {
        let mut run = trial.clone();
        let dir = sweep.run_dir(trial);
        let on_disk = RunDir::open(&dir).ok().and_then(|d| d.config().ok());
        run.config.trainer.epochs = target.max(on_disk.as_ref().map_or(0, |c| c.trainer.epochs));
        if on_disk.is_some_and(|c| c.trainer.epochs < run.config.trainer.epochs) {
            RunDir::open(&dir)?.write_config(&run.config)?;
        }
        Ok(run)
    }

    /// The variant's seed runs at the chosen trial's values.
    fn seeds_at(&self, chosen: &Run) -> Result<Vec<Run>> {
        let trial = chosen.trial.as_ref().expect("a trial");
        let origin = format!("variant `{}`: chosen trial {}", self.name, trial.number);
        let list: Vec<Override> = (trial.values.iter())
            .map(|(k, v)| Override::new(k.as_str().unwrap_or_default(), v.clone(), origin.clone()))
            .collect();
        self.seeds
            .iter()
            .map(|run| {
                let mut run = run.clone();
                run.config = config::apply(&run.config, &list, &origin)?;
                (run.overrides).extend(
                    list.iter()
                        .map(|o| format!("{}={}", o.key, scalar(&o.value))),
                );
                Ok(run)
            })
            .collect()
    }

    /// `tuning.csv`'s lines for this variant.
    fn lines(&self, progress: &[Progress], decision: &Decision) -> Vec<[String; 8]> {
        let last = *self.rungs.last().unwrap_or(&0);
        (self.trials.iter().zip(progress).zip(&decision.targets))
            .map(|((run, p), target)| {
                let trial = run.trial.as_ref().expect("a trial");
                let values: Vec<String> = trial
                    .values
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or_default(), scalar(v)))
                    .collect();
                let status = match () {
                    _ if p.failed => "failed",
                    _ if p.ended => "stopped early",
                    _ if p.rows.len() >= last => "full budget",
                    _ if p.rows.len() >= *target => "stopped at its rung",
                    _ => "training",
                };
                let metric = best(&p.rows, usize::MAX, self.monitor)
                    .map_or(String::new(), |v| v.to_string());
                [
                    self.name.clone(),
                    trial.number.to_string(),
                    run.seed.to_string(),
                    values.join("; "),
                    p.rows.len().to_string(),
                    status.to_string(),
                    metric,
                    (decision.chosen == Some(trial.number)).to_string(),
                ]
            })
            .collect()
    }
}

/// A trial's directory: its completed epochs' rows, and whether it has ended for good.
fn read(sweep: &Sweep, run: &Run) -> Result<Progress> {
    let dir = sweep.run_dir(run);
    let Ok(run_dir) = RunDir::open(&dir) else {
        return Ok(Progress::default());
    };
    let Some(state) = run_dir.state().ok().flatten() else {
        return Ok(Progress::default());
    };
    let mut rows = match dir.join(METRICS_FILE).is_file() {
        true => metrics::read(&dir.join(METRICS_FILE))?,
        false => vec![],
    };
    rows.retain(|r| r.epoch <= state.epoch);
    let failed = dir.join(ERROR_FILE).is_file() || state.status == RunStatus::Diverged;
    Ok(Progress {
        rows,
        ended: failed || state.status == RunStatus::EarlyStopped,
        failed,
    })
}

/// The best value of `monitor` over the epochs up to `epochs`.
fn best(rows: &[EpochRow], epochs: usize, monitor: Monitor) -> Option<f64> {
    (rows.iter().filter(|r| r.epoch <= epochs))
        .map(|r| match monitor {
            Monitor::ValAccuracy => r.val_accuracy,
            Monitor::ValLoss => r.val_loss,
        })
        .filter(|v| v.is_finite())
        .reduce(|a, b| if monitor.improves(b, a, 0.0) { b } else { a })
}

fn tuning_csv(lines: &[[String; 8]]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record([
        "variant", "trial", "seed", "values", "epochs", "status", "best_val", "chosen",
    ])?;
    for line in lines {
        w.write_record(line)?;
    }
    Ok(w.into_inner()?)
}
