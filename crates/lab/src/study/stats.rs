//! The statistics a study needs: mean, sample standard deviation, Student's t distribution (CDF and
//! quantile, through the regularised incomplete beta function), the t confidence interval of a mean,
//! Welch's t-test and its interval at any level, the paired t-test, linear contrasts of group means (paired or
//! Welch–Satterthwaite), Holm's correction, the two one-sided tests of equivalence (TOST), the minimal
//! detectable difference, the probability of improvement with Newcombe's score interval, and for times to an
//! event with censoring the Kaplan–Meier median and the log-rank test.
//! Checked against scipy and statsmodels in `tests/stats.rs`.

/// A sample's summary: size, mean, sample standard deviation (n − 1), 95% confidence interval of the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    /// Half-width of the 95% t interval of the mean (NaN for n < 2).
    pub ci95: f64,
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (divides by n − 1; NaN for n < 2).
pub fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

pub fn summarize(xs: &[f64]) -> Summary {
    let (n, mean, std) = (xs.len(), mean(xs), std(xs));
    let ci95 = if n < 2 {
        f64::NAN
    } else {
        t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt()
    };
    Summary { n, mean, std, ci95 }
}

/// Welch's unequal-variances t-test of mean(a) − mean(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    pub difference: f64,
    /// Standard error of the difference, √(s²ₐ/nₐ + s²ᵦ/nᵦ).
    pub se: f64,
    /// Half-width of the 95% interval of the difference.
    pub ci95: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's test; NaN fields when either sample has fewer than 2 values or both have no spread.
pub fn welch(a: &[f64], b: &[f64]) -> Welch {
    let e = contrast(&[(a, 1.0), (b, -1.0)]);
    Welch {
        difference: e.estimate,
        se: e.se,
        ci95: t_quantile(0.975, e.df) * e.se,
        t: e.estimate / e.se,
        df: e.df,
        p: e.p(),
    }
}

/// An estimated difference (or any linear contrast of group means) with its standard error and degrees of
/// freedom: all that a t-test, its intervals, the TOST and the minimal detectable difference need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub estimate: f64,
    pub se: f64,
    pub df: f64,
}

impl Estimate {
    /// The two-sided p-value of estimate = 0.
    pub fn p(&self) -> f64 {
        2.0 * (1.0 - t_cdf((self.estimate / self.se).abs(), self.df))
    }

    /// The two-sided interval at confidence `level`.
    pub fn interval(&self, level: f64) -> (f64, f64) {
        let half = t_quantile(0.5 + level / 2.0, self.df) * self.se;
        (self.estimate - half, self.estimate + half)
    }

    /// The TOST p-value that |true value| < `margin`: the larger of the two one-sided p-values.
    pub fn tost(&self, margin: f64) -> f64 {
        let lower = 1.0 - t_cdf((self.estimate + margin) / self.se, self.df);
        let upper = t_cdf((self.estimate - margin) / self.se, self.df);
        lower.max(upper)
    }

    /// The smallest margin whose TOST passes at `alpha`: the farther end of the 1 − 2α interval (the TOST
    /// at ±m passes exactly when that interval lies inside ±m).
    pub fn equivalence_bound(&self, alpha: f64) -> f64 {
        let (low, high) = self.interval(1.0 - 2.0 * alpha);
        low.abs().max(high.abs())
    }

    /// The smallest true value a two-sided test at `alpha` detects with probability `power`:
    /// (t₁₋α/₂ + t_power) · se (the usual t approximation to the noncentral t).
    pub fn mdd(&self, alpha: f64, power: f64) -> f64 {
        (t_quantile(1.0 - alpha / 2.0, self.df) + t_quantile(power, self.df)) * self.se
    }
}

/// The one-sample t estimate of mean(d) (scipy `ttest_1samp`); NaN fields for fewer than 2 values.
pub fn one_sample(d: &[f64]) -> Estimate {
    let n = d.len() as f64;
    Estimate {
        estimate: mean(d),
        se: std(d) / n.sqrt(),
        df: n - 1.0,
    }
}

/// The paired t estimate of mean(a − b) over pairs (a[i], b[i]) (scipy `ttest_rel`).
pub fn paired(a: &[f64], b: &[f64]) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    one_sample(&d)
}

/// Σ cᵢ·mean(xᵢ) over independent samples, with the Welch–Satterthwaite standard error and degrees of
/// freedom (Welch's test is the contrast (1, −1)).
pub fn contrast(samples: &[(&[f64], f64)]) -> Estimate {
    let terms: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(_, c)| *c != 0.0)
        .map(|(xs, c)| {
            (
                c * c * std(xs).powi(2) / xs.len() as f64,
                xs.len() as f64 - 1.0,
            )
        })
        .collect();
    let variance: f64 = terms.iter().map(|t| t.0).sum();
    let df = variance.powi(2) / terms.iter().map(|(v, dof)| v * v / dof).sum::<f64>();
    Estimate {
        estimate: samples.iter().map(|(xs, c)| c * mean(xs)).sum(),
        se: variance.sqrt(),
        df,
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if !t.is_finite() || !df.is_finite() || df <= 0.0 {
        return if t.is_finite() || t.is_nan() {
            f64::NAN
        } else if t > 0.0 {
            1.0
        } else {
            0.0
        };
    }
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (bisection on [`t_cdf`]).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p <= 0.0 || p >= 1.0 || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid
        } else {
            hi = mid
        }
    }
    0.5 * (lo + hi)
}

/// The regularised incomplete beta function I_x(a, b) (Numerical Recipes' continued fraction).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The two-sided Welch interval of mean(a) − mean(b) at confidence `level` (0.95: the usual one; 1 − 0.05/m:
/// Bonferroni's simultaneous interval over m comparisons). NaN ends when either sample has < 2 values.
pub fn welch_interval(a: &[f64], b: &[f64], level: f64) -> (f64, f64) {
    contrast(&[(a, 1.0), (b, -1.0)]).interval(level)
}

/// Holm's step-down adjusted p-values (statsmodels `multipletests(p, method="holm")`), in the input's
/// order. NaN p-values are left out of the family and stay NaN.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The p-value of the two one-sided Welch tests that |mean(a) − mean(b)| < `margin` (statsmodels
/// `ttost_ind(a, b, -margin, margin, usevar="unequal")`): the larger of the two one-sided p-values. Small
/// means "equivalent within the margin".
pub fn tost(a: &[f64], b: &[f64], margin: f64) -> f64 {
    contrast(&[(a, 1.0), (b, -1.0)]).tost(margin)
}

/// The smallest true difference that a two-sided Welch test at level `alpha` detects with probability
/// `power`, for samples of these sizes and spreads, with Welch's df.
pub fn mdd(a: &[f64], b: &[f64], alpha: f64, power: f64) -> f64 {
    contrast(&[(a, 1.0), (b, -1.0)]).mdd(alpha, power)
}

/// P(a run of `a` beats a run of `b`): over all pairs, wins plus half the ties (Agarwal et al. 2021; the
/// Mann–Whitney U over n·m).
pub fn probability_of_improvement(a: &[f64], b: &[f64]) -> f64 {
    let score: f64 = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .map(|(x, y)| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    score / (a.len() * b.len()) as f64
}

/// The 95% interval of [`probability_of_improvement`] θ by Newcombe's score method (Newcombe 2006, Part 2,
/// Method 5): the θ with |θ̂ − θ| = z·√V(θ), where V(θ) = θ(1 − θ)/(mn) · [1 + (N* − 1)(1 − θ)/(2 − θ) +
/// (N* − 1)θ/(1 + θ)] and N* = (m + n)/2 (Hanley and McNeil's variance, both sizes replaced by their
/// mean). Unlike a bootstrap it stays an interval when the groups do not overlap (θ̂ = 0 or 1).
pub fn probability_of_improvement_interval(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let theta = probability_of_improvement(a, b);
    let (m, n) = (a.len() as f64, b.len() as f64);
    let star = (m + n) / 2.0 - 1.0;
    let z = 1.959963984540054;
    let half_width = |t: f64| {
        let v =
            t * (1.0 - t) / (m * n) * (1.0 + star * (1.0 - t) / (2.0 - t) + star * t / (1.0 + t));
        z * v.max(0.0).sqrt()
    };
    // Each end is the root of a function that changes sign once between θ̂ and 0 or 1.
    let root = |mut inside: f64, mut outside: f64| {
        for _ in 0..200 {
            let mid = 0.5 * (inside + outside);
            if (mid - theta).abs() <= half_width(mid) {
                inside = mid
            } else {
                outside = mid
            }
        }
        0.5 * (inside + outside)
    };
    (root(theta, 0.0), root(theta, 1.0))
}

/// A time to an event, or the last time seen without it (censored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duration {
    pub time: f64,
    pub observed: bool,
}

/// The Kaplan–Meier survival curve: (time, S(t), Greenwood's Σ d/(n(n−d))) at each event time.
pub fn kaplan_meier(data: &[Duration]) -> Vec<(f64, f64, f64)> {
    let mut times: Vec<f64> = data.iter().filter(|d| d.observed).map(|d| d.time).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let (mut s, mut greenwood) = (1.0, 0.0);
    times
        .into_iter()
        .map(|t| {
            let at_risk = data.iter().filter(|d| d.time >= t).count() as f64;
            let events = data.iter().filter(|d| d.observed && d.time == t).count() as f64;
            s *= 1.0 - events / at_risk;
            if at_risk > events {
                greenwood += events / (at_risk * (at_risk - events));
            }
            (t, s, greenwood)
        })
        .collect()
}

/// The Kaplan–Meier median (first time S(t) ≤ 0.5; NaN when fewer than half the runs got there) with its
/// 95% Brookmeyer–Crowley interval from the log-log pointwise band (scipy's `confidence_interval(method=
/// "log-log")`): from the first time the band's lower edge is ≤ 0.5 to the first time its upper edge is
/// (NaN: not within the runs' time, an open end). Where S(t) = 0 the band is undefined, as in scipy.
pub fn km_median(data: &[Duration]) -> (f64, f64, f64) {
    let curve = kaplan_meier(data);
    let z = 1.959963984540054;
    // S^exp(±z·σ), σ = √Greenwood / |ln S|: the lower edge with +, the upper with −.
    let edge = |s: f64, g: f64, sign: f64| {
        if s <= 0.0 {
            return f64::NAN;
        }
        s.powf((sign * z * g.sqrt() / s.ln().abs()).exp())
    };
    let first = |f: &dyn Fn(f64, f64) -> bool| {
        curve
            .iter()
            .find(|&&(_, s, g)| f(s, g))
            .map_or(f64::NAN, |c| c.0)
    };
    // S is a product of rationals: an exact 1/2 (e.g. 0.9 · 6/9 · 5/6) can come out a rounding above it.
    let half = 0.5 + 1e-12;
    let median = first(&|s, _| s <= half);
    let low = first(&|s, g| edge(s, g, 1.0) <= half);
    let high = first(&|s, g| edge(s, g, -1.0) <= half);
    (median, low, high)
}

/// The log-rank test of two groups' times to an event (scipy `stats.logrank`): the chi-square statistic
/// with one degree of freedom and its two-sided p-value.
pub fn logrank(a: &[Duration], b: &[Duration]) -> (f64, f64) {
    let mut times: Vec<f64> = a
        .iter()
        .chain(b)
        .filter(|d| d.observed)
        .map(|d| d.time)
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let (mut observed_minus_expected, mut variance) = (0.0, 0.0);
    for t in times {
        let at_risk = |g: &[Duration]| g.iter().filter(|d| d.time >= t).count() as f64;
        let events = |g: &[Duration]| g.iter().filter(|d| d.observed && d.time == t).count() as f64;
        let (na, nb, da, db) = (at_risk(a), at_risk(b), events(a), events(b));
        let (n, d) = (na + nb, da + db);
        observed_minus_expected += da - d * na / n;
        if n > 1.0 {
            variance += d * (na / n) * (nb / n) * (n - d) / (n - 1.0);
        }
    }
    let chi2 = observed_minus_expected.powi(2) / variance;
    (chi2, erfc((chi2 / 2.0).sqrt()))
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}
