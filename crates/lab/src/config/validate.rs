//! Range checks that serde's types cannot express, as one table of (key, value, rule). Errors name the key.

use super::{Config, OptimizerKind, SchedulerKind, Variant};

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
    /// Checks every range; the error names the first key out of range.
    pub fn validate(&self) -> Result<(), String> {
        use Rule::*;
        let (o, s, d, t) = (
            &self.optimizer,
            &self.lr_scheduler,
            &self.data,
            &self.trainer,
        );
        let (a, es) = (&d.augment, &t.early_stopping);
        let mut rules: Vec<(String, f64, Rule)> = [
            ("optimizer.lr", o.lr, Positive),
            ("optimizer.weight_decay", o.weight_decay, NonNegative),
            ("optimizer.momentum", o.momentum, NonNegative),
            ("optimizer.eps", o.eps, Positive),
            ("optimizer.betas[0]", o.betas[0], Fraction),
            ("optimizer.betas[1]", o.betas[1], Fraction),
            ("optimizer.alpha", o.alpha, Fraction),
            ("regularization.l1", self.regularization.l1, NonNegative),
            (
                "regularization.label_smoothing",
                self.regularization.label_smoothing,
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
        .map(|(k, v, r)| (k.to_string(), v, r))
        .collect();
        let mut add = |key: &str, v: f64, rule| rules.push((key.to_string(), v, rule));
        if es.enabled {
            add(
                "trainer.early_stopping.patience",
                es.patience as f64,
                Positive,
            );
            add(
                "trainer.early_stopping.min_delta",
                es.min_delta,
                NonNegative,
            );
        }
        match s.kind {
            SchedulerKind::Step => {
                add("lr_scheduler.step_size", s.step_size as f64, Positive);
                add("lr_scheduler.gamma", s.gamma, Factor);
            }
            SchedulerKind::Cosine => {
                add("lr_scheduler.t_max", s.t_max as f64, Positive);
                add("lr_scheduler.eta_min", s.eta_min, NonNegative);
            }
            SchedulerKind::Plateau => add("lr_scheduler.factor", s.factor, Open01),
            SchedulerKind::Onecycle => {
                add("lr_scheduler.pct_start", s.pct_start, Open01);
                add("lr_scheduler.div_factor", s.div_factor, Positive);
                add(
                    "lr_scheduler.final_div_factor",
                    s.final_div_factor,
                    Positive,
                );
            }
            SchedulerKind::Piecewise => {
                if s.piecewise.is_empty() {
                    return Err(
                        "lr_scheduler.piecewise = [] needs at least one [epochs, lr]".into(),
                    );
                }
                for (i, (epochs, lr)) in s.piecewise.iter().enumerate() {
                    add(
                        &format!("lr_scheduler.piecewise[{i}] epochs"),
                        *epochs as f64,
                        Positive,
                    );
                    add(&format!("lr_scheduler.piecewise[{i}] lr"), *lr, Positive);
                }
            }
            SchedulerKind::None => {}
        }
        if let Some((key, v, rule)) = rules.iter().find(|(_, v, rule)| !rule.holds(*v)) {
            return Err(format!("{key} = {v} {}", rule.describe()));
        }
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
        if self.model.variant == Variant::Lenet1998 && d.dataset.shape().side != 28 {
            return Err(format!(
                "model.variant = lenet5_1998 takes 28×28 grey images; data.dataset = {} is not",
                d.dataset.name()
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Keys set away from their defaults that the chosen variant, optimizer or schedule never reads, as
    /// `key = value (reason)`: a typo in an experiment's intent, worth a warning before hours of training.
    pub fn ineffective(&self) -> Vec<String> {
        let default = Config::default();
        let (m, dm) = (&self.model, &default.model);
        let (o, od) = (&self.optimizer, &default.optimizer);
        let (s, sd) = (&self.lr_scheduler, &default.lr_scheduler);
        let variant = m.variant.name();
        let optimizer = o.kind.name();
        let scheduler = s.kind.name();
        let modern = m.variant == Variant::Lenet5Modern;
        let old = m.variant == Variant::Lenet1998;
        let adam_like = matches!(o.kind, OptimizerKind::Adam | OptimizerKind::Adamw);
        let checks: Vec<(&str, bool, bool, &str)> = vec![
            (
                "model.activation",
                m.activation != dm.activation,
                modern || old,
                &variant,
            ),
            (
                "model.pooling",
                m.pooling != dm.pooling,
                modern || old,
                &variant,
            ),
            ("model.init", m.init != dm.init, old, &variant),
            ("model.dropout", m.dropout != dm.dropout, !modern, &variant),
            (
                "optimizer.momentum",
                o.momentum != od.momentum,
                !matches!(o.kind, OptimizerKind::Sgd | OptimizerKind::Rmsprop),
                &optimizer,
            ),
            (
                "optimizer.nesterov",
                o.nesterov != od.nesterov,
                o.kind != OptimizerKind::Sgd,
                &optimizer,
            ),
            (
                "optimizer.betas",
                o.betas != od.betas,
                !adam_like,
                &optimizer,
            ),
            (
                "optimizer.amsgrad",
                o.amsgrad != od.amsgrad,
                !adam_like,
                &optimizer,
            ),
            (
                "optimizer.eps",
                o.eps != od.eps,
                o.kind == OptimizerKind::Sgd,
                &optimizer,
            ),
            (
                "optimizer.alpha",
                o.alpha != od.alpha,
                o.kind != OptimizerKind::Rmsprop,
                &optimizer,
            ),
            (
                "optimizer.centered",
                o.centered != od.centered,
                o.kind != OptimizerKind::Rmsprop,
                &optimizer,
            ),
            (
                "lr_scheduler.step_size",
                s.step_size != sd.step_size,
                s.kind != SchedulerKind::Step,
                &scheduler,
            ),
            (
                "lr_scheduler.gamma",
                s.gamma != sd.gamma,
                s.kind != SchedulerKind::Step,
                &scheduler,
            ),
            (
                "lr_scheduler.t_max",
                s.t_max != sd.t_max,
                s.kind != SchedulerKind::Cosine,
                &scheduler,
            ),
            (
                "lr_scheduler.eta_min",
                s.eta_min != sd.eta_min,
                s.kind != SchedulerKind::Cosine,
                &scheduler,
            ),
            (
                "lr_scheduler.factor",
                s.factor != sd.factor,
                s.kind != SchedulerKind::Plateau,
                &scheduler,
            ),
            (
                "lr_scheduler.patience",
                s.patience != sd.patience,
                s.kind != SchedulerKind::Plateau,
                &scheduler,
            ),
            (
                "lr_scheduler.monitor",
                s.monitor != sd.monitor,
                s.kind != SchedulerKind::Plateau,
                &scheduler,
            ),
            (
                "lr_scheduler.piecewise",
                s.piecewise != sd.piecewise,
                s.kind != SchedulerKind::Piecewise,
                &scheduler,
            ),
            (
                "lr_scheduler.pct_start",
                s.pct_start != sd.pct_start,
                s.kind != SchedulerKind::Onecycle,
                &scheduler,
            ),
            (
                "lr_scheduler.div_factor",
                s.div_factor != sd.div_factor,
                s.kind != SchedulerKind::Onecycle,
                &scheduler,
            ),
            (
                "lr_scheduler.final_div_factor",
                s.final_div_factor != sd.final_div_factor,
                s.kind != SchedulerKind::Onecycle,
                &scheduler,
            ),
        ];
        checks
            .into_iter()
            .filter(|(_, changed, ignored, _)| *changed && *ignored)
            .map(|(key, _, _, by)| {
                let section = key.split('.').next().unwrap_or_default();
                let chooser = match section {
                    "model" => "model.variant",
                    "optimizer" => "optimizer.type",
                    _ => "lr_scheduler.type",
                };
                format!("{key} has no effect with {chooser} = {by}")
            })
            .collect()
    }
}
