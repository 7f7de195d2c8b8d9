//! A sweep's `tune:` block as typed values — the search space, the number of trials, the validation metric
//! that chooses, the search seed, the optional successive-halving rule — and the seeded sampler that turns
//! trial k into its values. Pure: running the trials is [`super::tune`]'s job.

use crate::config::Monitor;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

/// A `tune:` block, for one variant or for every variant of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// `config.key: {log_uniform: [a, b]} | {uniform: [a, b]} | {choice: [v, ...]}`.
    pub space: Mapping,
    /// Trials per tuned variant.
    pub trials: usize,
    /// `val_accuracy` (higher is better) or `val_loss`: validation only, the test set chooses nothing.
    pub metric: String,
    /// Seeds the sampler (apart from the training seeds): trial k's values and training seed depend only on
    /// it and k, so more trials keep the first ones.
    #[serde(default)]
    pub search_seed: u64,
    /// Successive halving: trials stop at rungs unless they are among the best.
    pub asha: Option<Asha>,
}

/// Successive halving (Jamieson & Talwalkar 2016; Li et al. 2020's ASHA): rungs at `min_epochs`·η^k epochs
/// below the budget, and the budget itself; a trial trains past rung k only if it is in the top 1/η of the
/// trials that reached rung k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asha {
    pub min_epochs: usize,
    /// η, at least 2.
    pub reduction_factor: usize,
}

/// Where a key's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// exp(U(ln a, ln b)): learning rates, weight decay.
    LogUniform([f64; 2]),
    /// U(a, b): momentum.
    Uniform([f64; 2]),
    /// One of the values, each equally likely.
    Choice(Vec<Value>),
}

/// What a trial run records: its number and its sampled values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub number: usize,
    pub values: Mapping,
}

impl Dist {
    /// `{log_uniform: [a, b]}`, `{uniform: [a, b]}` or `{choice: [...]}`; `None` for anything else.
    fn parse(v: &Value) -> Option<Dist> {
        let map = v.as_mapping().filter(|m| m.len() == 1)?;
        let (name, args) = map.iter().next()?;
        let pair = || -> Option<[f64; 2]> {
            match args.as_sequence()?.as_slice() {
                [a, b] => Some([a.as_f64()?, b.as_f64()?]),
                _ => None,
            }
        };
        match name.as_str()? {
            "log_uniform" => Some(Dist::LogUniform(pair()?)),
            "uniform" => Some(Dist::Uniform(pair()?)),
            "choice" => Some(Dist::Choice(args.as_sequence()?.clone())),
            _ => None,
        }
    }
}

impl TuneSpec {
    /// The space as (key, distribution) in the file's order, every block checked; an error names the key.
    pub fn check(&self) -> Result<Vec<(String, Dist)>, String> {
        if self.trials == 0 {
            return Err("tune.trials must be at least 1".into());
        }
        self.monitor()?;
        if let Some(a) = self.asha
            && (a.min_epochs == 0 || a.reduction_factor < 2)
        {
            return Err(format!(
                "tune.asha: min_epochs = {} must be at least 1 and reduction_factor = {} at least 2",
                a.min_epochs, a.reduction_factor
            ));
        }
        if self.space.is_empty() {
            return Err("tune.space is empty: name at least one key to search".into());
        }
        let mut space = vec![];
        for (k, v) in &self.space {
            let key = k
                .as_str()
                .ok_or_else(|| format!("tune.space: key {k:?} is not text"))?;
            let dist = Dist::parse(v).ok_or_else(|| {
                format!(
                    "tune.space.{key}: {} is not a distribution (write {{log_uniform: [a, b]}}, {{uniform: [a, b]}} or {{choice: [...]}})",
                    crate::config::scalar(v)
                )
            })?;
            let bad = match &dist {
                Dist::LogUniform([a, b]) => !(*a > 0.0 && a < b && b.is_finite()),
                Dist::Uniform([a, b]) => !(a.is_finite() && a < b && b.is_finite()),
                Dist::Choice(values) => values.is_empty(),
            };
            if bad {
                return Err(format!(
                    "tune.space.{key}: {} is not a range to sample (log_uniform: 0 < a < b; uniform: a < b; choice: not empty)",
                    crate::config::scalar(v)
                ));
            }
            space.push((key.to_string(), dist));
        }
        Ok(space)
    }

    /// The metric as the direction it improves in; test metrics are refused.
    pub fn monitor(&self) -> Result<Monitor, String> {
        match self.metric.as_str() {
            "val_accuracy" => Ok(Monitor::ValAccuracy),
            "val_loss" => Ok(Monitor::ValLoss),
            m if m.starts_with("test") => Err(format!(
                "tune.metric = {m}: the test set never chooses anything; use val_accuracy or val_loss"
            )),
            m => Err(format!(
                "tune.metric = {m}: expected val_accuracy or val_loss"
            )),
        }
    }

    /// Trial `number`'s values (floats to 4 significant digits, so what is recorded is what trains) and
    /// its training seed, from the search seed alone.
    pub fn sample(&self, space: &[(String, Dist)], number: usize) -> (Mapping, u64) {
        let mut rng =
            SplitMix(self.search_seed ^ (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let seed = 1_000 + rng.next() % 1_000_000;
        let mut values = Mapping::new();
        for (key, dist) in space {
            let u = rng.unit();
            let value = match dist {
                Dist::LogUniform([a, b]) => round((a.ln() + u * (b.ln() - a.ln())).exp()).into(),
                Dist::Uniform([a, b]) => round(a + u * (b - a)).into(),
                Dist::Choice(values) => {
                    values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone()
                }
            };
            values.insert(key.as_str().into(), value);
        }
        (values, seed)
    }

    /// The rungs, in epochs, for a budget of `epochs`: min·η^k below it, then the budget; just the budget
    /// without successive halving.
    pub fn rungs(&self, epochs: usize) -> Vec<usize> {
        let mut rungs = vec![];
        if let Some(a) = self.asha {
            let mut e = a.min_epochs;
            while e < epochs {
                rungs.push(e);
                e *= a.reduction_factor;
            }
        }
        rungs.push(epochs);
        rungs
    }
}

/// `x` to 4 significant digits.
fn round(x: f64) -> f64 {
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// Steele et al.'s SplitMix64: a few lines, seeded by one number, good enough to sample a search space.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
