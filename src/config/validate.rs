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
        if self.model.variant == Variant::Lenet1998 && d.dataset.shape().side != 28 {
            return Err(format!(
                "model.variant = lenet5_1998 takes 28×28 grey images; data.dataset = {} is not",
                d.dataset.name()
            ));
        }
        Ok(())
    }
}
