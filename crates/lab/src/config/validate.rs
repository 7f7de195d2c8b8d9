//! What serde's types cannot express: ranges as tables of (key, value, rule), the rules between keys, and
//! keys the chosen variant, optimizer or schedule never reads (each kind declares what it reads). Errors
//! name the key.

use super::{
    Config, DataConfig, LrSchedulerConfig, OptimizerKind, SchedulerKind, TrainerConfig, Variant,
};

/// What a numeric key must satisfy.
#[derive(Clone, Copy)]
enum Rule {
    /// > 0 and finite
    Positive,
    /// >= 0 and finite
    NonNegative,
    /// [0, 1)
    Fraction,
    /// (0, 1)
    Open01,
    /// (0, 1]
    Factor,
}

impl Rule {
    fn holds(self, v: f64) -> bool {
        match self {
            Rule::Positive => v > 0.0 && v.is_finite(),
            Rule::NonNegative => v >= 0.0 && v.is_finite(),
            Rule::Fraction => (0.0..1.0).contains(&v),
            Rule::Open01 => v > 0.0 && v < 1.0,
            Rule::Factor => v > 0.0 && v <= 1.0,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Rule::Positive => "must be > 0",
            Rule::NonNegative => "must be >= 0",
            Rule::Fraction => "must be in [0, 1)",
            Rule::Open01 => "must be in (0, 1)",
            Rule::Factor => "must be in (0, 1]",
        }
    }
}

impl Config {
    /// Checks every range, then the rules between keys; the error names the first key that fails.
    pub fn validate(&self) -> Result<(), String> {
        let mut rules = self.ranges();
        if self.trainer.early_stopping.enabled {
            let es = &self.trainer.early_stopping;
            rules.push(rule(
                "trainer.early_stopping.patience",
                es.patience as f64,
                Rule::Positive,
            ));
            rules.push(rule(
                "trainer.early_stopping.min_delta",
                es.min_delta,
                Rule::NonNegative,
            ));
        }
        rules.extend(scheduler_ranges(&self.lr_scheduler)?);
        if let Some((key, v, rule)) = rules.iter().find(|(_, v, rule)| !rule.holds(*v)) {
            return Err(format!("{key} = {v} {}", rule.describe()));
        }
        self.check_combinations()
    }

    /// The ranges of the keys every config has.
    fn ranges(&self) -> Vec<(String, f64, Rule)> {
        use Rule::*;
        let (o, d, t) = (&self.optimizer, &self.data, &self.trainer);
        let (a, r) = (&d.augment, &self.regularization);
        [
            ("optimizer.lr", o.lr, Positive),
            ("optimizer.weight_decay", o.weight_decay, NonNegative),
            ("optimizer.momentum", o.momentum, NonNegative),
            ("optimizer.eps", o.eps, Positive),
            ("optimizer.betas[0]", o.betas[0], Fraction),
            ("optimizer.betas[1]", o.betas[1], Fraction),
            ("optimizer.alpha", o.alpha, Fraction),
            ("regularization.l1", r.l1, NonNegative),
            (
                "regularization.label_smoothing",
                r.label_smoothing,
                Fraction,
            ),
            ("model.dropout", self.model.dropout, Fraction),
            ("data.augment.translate", a.translate, NonNegative),
            ("data.augment.scale", a.scale, Fraction),
            ("data.augment.squeeze", a.squeeze, Fraction),
            ("data.augment.shear", a.shear, NonNegative),
            ("data.augment.rotate", a.rotate, NonNegative),
            ("data.batch_size", d.batch_size as f64, Positive),
            ("data.validation_split", d.validation_split, Fraction),
            ("trainer.epochs", t.epochs as f64, Positive),
        ]
        .into_iter()
        .map(|(k, v, r)| rule(k, v, r))
        .collect()
    }

    /// Rules between keys: Nesterov needs momentum, a batch fits the training split, seeds stay distinct, the
    /// 1998 net takes 28×28 grey images, the device is one lenet5 knows.
    fn check_combinations(&self) -> Result<(), String> {
        let (o, d, t) = (&self.optimizer, &self.data, &self.trainer);
        if o.kind == OptimizerKind::Sgd && o.nesterov && o.momentum <= 0.0 {
            return Err("optimizer.nesterov = true needs optimizer.momentum > 0".into());
        }
        crate::config::device::parse(&t.device).map_err(|e| format!("trainer.device: {e}"))?;
        let train = (d.dataset.train_images() as f64 * (1.0 - d.validation_split)).floor();
        if d.batch_size as f64 > train {
            return Err(format!(
                "data.batch_size = {} is larger than {}'s training split ({train} images)",
                d.batch_size,
                d.dataset.name()
            ));
        }
        check_seeds(d, t)?;
        if self.model.variant == Variant::Lenet1998 && d.dataset.shape().side != 28 {
            return Err(format!(
                "model.variant = lenet5_1998 takes 28×28 grey images; data.dataset = {} is not",
                d.dataset.name()
            ));
        }
        Ok(())
    }
}

/// Seeds LibTorch can tell apart. Its CPU generator (mt19937) keeps the low 32 bits of a seed, so seeds 1
/// and 2^32 + 1 would train identically.
const SEED_LIMIT: u64 = 1 << 32;

fn check_seeds(d: &DataConfig, t: &TrainerConfig) -> Result<(), String> {
    let why = "LibTorch's CPU generator keeps 32 bits of a seed, so a larger one would repeat a smaller one";
    let seeds = [
        ("data.seed", Some(d.seed)),
        ("trainer.seed", Some(t.seed)),
        ("trainer.init_seed", t.init_seed),
        ("trainer.order_seed", t.order_seed),
    ];
    for (key, seed) in seeds {
        if let Some(seed) = seed.filter(|&s| s >= SEED_LIMIT) {
            return Err(format!(
                "{key} = {seed} must be below 2^32 = {SEED_LIMIT} ({why})"
            ));
        }
    }
    Ok(())
}

fn rule(key: &str, value: f64, rule: Rule) -> (String, f64, Rule) {
    (key.to_string(), value, rule)
}

/// The ranges of the keys the chosen schedule reads.
fn scheduler_ranges(s: &LrSchedulerConfig) -> Result<Vec<(String, f64, Rule)>, String> {
    use Rule::*;
    Ok(match s.kind {
        SchedulerKind::Step => vec![
            rule("lr_scheduler.step_size", s.step_size as f64, Positive),
            rule("lr_scheduler.gamma", s.gamma, Factor),
        ],
        SchedulerKind::Cosine | SchedulerKind::Linear => vec![
            rule("lr_scheduler.t_max", s.t_max.epochs(1) as f64, Positive),
            rule("lr_scheduler.eta_min", s.eta_min, NonNegative),
        ],
        SchedulerKind::Plateau => vec![rule("lr_scheduler.factor", s.factor, Open01)],
        SchedulerKind::Onecycle => vec![
            rule("lr_scheduler.pct_start", s.pct_start, Open01),
            rule("lr_scheduler.div_factor", s.div_factor, Positive),
            rule(
                "lr_scheduler.final_div_factor",
                s.final_div_factor,
                Positive,
            ),
        ],
        SchedulerKind::Piecewise if s.piecewise.is_empty() => {
            return Err("lr_scheduler.piecewise = [] needs at least one [epochs, lr]".into());
        }
        SchedulerKind::Piecewise => (s.piecewise.iter().enumerate())
            .flat_map(|(i, (epochs, lr))| {
                [
                    rule(
                        &format!("lr_scheduler.piecewise[{i}] epochs"),
                        *epochs as f64,
                        Positive,
                    ),
                    rule(&format!("lr_scheduler.piecewise[{i}] lr"), *lr, Positive),
                ]
            })
            .collect(),
        SchedulerKind::None => vec![],
    })
}

impl Variant {
    /// The `model.*` keys this network reads (besides `variant`): the one declaration that warnings about
    /// ineffective keys come from.
    pub const fn reads(self) -> &'static [&'static str] {
        match self {
            Variant::Lenet5 => &["activation", "pooling", "init", "dropout", "batch_norm"],
            Variant::Lenet5Modern => &["init", "dropout"],
            Variant::Lenet1998 => &[],
        }
    }
}

impl OptimizerKind {
    /// The `optimizer.*` keys this optimizer reads (besides `type`).
    pub const fn reads(self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd => &["lr", "weight_decay", "momentum", "nesterov"],
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                &["lr", "weight_decay", "betas", "eps", "amsgrad"]
            }
            OptimizerKind::Rmsprop => {
                &["lr", "weight_decay", "momentum", "eps", "alpha", "centered"]
            }
        }
    }
}

impl SchedulerKind {
    /// The `lr_scheduler.*` keys this schedule reads (besides `type`).
    pub const fn reads(self) -> &'static [&'static str] {
        match self {
            SchedulerKind::None => &[],
            SchedulerKind::Step => &["step_size", "gamma"],
            SchedulerKind::Cosine | SchedulerKind::Linear => &["t_max", "eta_min"],
            SchedulerKind::Plateau => &["factor", "patience", "monitor"],
            SchedulerKind::Piecewise => &["piecewise"],
            SchedulerKind::Onecycle => &["pct_start", "div_factor", "final_div_factor"],
        }
    }
}

impl Config {
    /// Keys set away from their defaults that the chosen variant, optimizer or schedule never reads (by
    /// their [`reads`](OptimizerKind::reads) declarations), as `key has no effect with chooser = name`: a
    /// typo in an experiment's intent, worth a warning before hours of training.
    pub fn ineffective(&self) -> Vec<String> {
        let (m, o, s) = (&self.model, &self.optimizer, &self.lr_scheduler);
        let sections = [
            ("model", "variant", m.variant.name(), m.variant.reads()),
            ("optimizer", "type", o.kind.name(), o.kind.reads()),
            ("lr_scheduler", "type", s.kind.name(), s.kind.reads()),
        ];
        let (this, base) = (section_values(self), section_values(&Config::default()));
        let mut warnings = vec![];
        for (section, chooser, name, reads) in sections {
            let (Some(set), Some(defaults)) = (this.get(section), base.get(section)) else {
                continue;
            };
            for (key, value) in set {
                let ignored = key != chooser && !reads.contains(&key.as_str());
                let default = defaults.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                if ignored && default != Some(value) {
                    warnings.push(format!(
                        "{section}.{key} has no effect with {section}.{chooser} = {name}"
                    ));
                }
            }
        }
        // The 1998 net trains on the paper's loss (eq. 9 over its RBF outputs), which has no smoothing.
        if m.variant == Variant::Lenet1998 && self.regularization.label_smoothing != 0.0 {
            warnings.push(
                "regularization.label_smoothing has no effect with model.variant = lenet5_1998"
                    .into(),
            );
        }
        warnings
    }
}

impl Config {
    /// Prints a warning for each key the config sets that nothing reads ([`Config::ineffective`]),
    /// after `context` (a sweep's group, say).
    pub fn warn_ineffective(&self, context: &str) {
        for warning in self.ineffective() {
            eprintln!("warning: {context}{warning}");
        }
    }
}

/// Each section of `config` as (key, value) pairs in file order.
fn section_values(
    config: &Config,
) -> std::collections::HashMap<String, Vec<(String, serde_yaml::Value)>> {
    let tree = serde_yaml::to_value(config).unwrap_or_default();
    let mut sections = std::collections::HashMap::new();
    for (name, section) in tree.as_mapping().into_iter().flatten() {
        let pairs = section
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
            .collect();
        sections.insert(name.as_str().unwrap_or_default().to_string(), pairs);
    }
    sections
}
