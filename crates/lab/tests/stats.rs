//! The study's statistics against scipy 1.x on known samples. Each expected number comes from the snippet
//! beside it (`from scipy import stats; import numpy as np`).
use lenet5_lab::study::stats;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-12)
}

const A: [f64; 5] = [0.9881, 0.9874, 0.9890, 0.9869, 0.9885];
const B: [f64; 4] = [0.9841, 0.9856, 0.9838, 0.9850];

#[test]
fn mean_std_and_t_interval_match_scipy() {
    let s = stats::summarize(&A);
    assert_eq!(s.n, 5);
    // np.mean(A), np.std(A, ddof=1)
    assert!(close(s.mean, 0.98798, 1e-12), "{}", s.mean);
    assert!(close(s.std, 0.0008408329203831101, 1e-9), "{}", s.std);
    // stats.t.ppf(0.975, 4) * np.std(A, ddof=1) / np.sqrt(5)
    assert!(close(s.ci95, 0.0010440319657442397, 1e-7), "{}", s.ci95);
    let one = stats::summarize(&[0.99]);
    assert!(
        one.std.is_nan() && one.ci95.is_nan(),
        "one run has no spread"
    );
}

#[test]
fn t_distribution_matches_scipy() {
    for (t, df, expected) in [
        (1.5, 3.0, 0.8847080673775886),  // stats.t.cdf(1.5, 3)
        (-2.2, 7.3, 0.0310845827000118), // stats.t.cdf(-2.2, 7.3)
        // Small |t|, where the incomplete beta takes its other branch (the large p-values a study reports).
        (0.5, 4.0, 0.6783350184090684),  // stats.t.cdf(0.5, 4)
        (-0.3, 9.5, 0.3853191790055902), // stats.t.cdf(-0.3, 9.5)
        (1.2, 2.5, 0.8342805811670612),  // stats.t.cdf(1.2, 2.5)
    ] {
        let got = stats::t_cdf(t, df);
        assert!(
            close(got, expected, 1e-9),
            "cdf({t}, {df}) = {got}, scipy {expected}"
        );
    }
    for (df, expected) in [
        (1.0, 12.706204736174694),  // stats.t.ppf(0.975, 1)
        (4.0, 2.7764451051977934),  // stats.t.ppf(0.975, 4)
        (30.0, 2.0422724563012378), // stats.t.ppf(0.975, 30)
    ] {
        let got = stats::t_quantile(0.975, df);
        assert!(
            close(got, expected, 1e-9),
            "ppf(0.975, {df}) = {got}, scipy {expected}"
        );
    }
}

#[test]
fn welch_test_matches_scipy() {
    // r = stats.ttest_ind(A, B, equal_var=False); r.confidence_interval(0.95)
    let w = stats::welch(&A, &B);
    assert!(close(w.t, 6.006172878899625, 1e-9), "t {}", w.t);
    assert!(close(w.df, 6.621846691564653, 1e-9), "df {}", w.df);
    assert!(close(w.p, 0.0006651727677885609, 1e-6), "p {}", w.p);
    assert!(
        close(w.difference, 0.003355, 1e-9),
        "difference {}",
        w.difference
    );
    assert!(
        close(w.difference - w.ci95, 0.002018693846918504, 1e-7),
        "low {}",
        w.difference - w.ci95
    );
    assert!(
        close(w.difference + w.ci95, 0.0046913061530814894, 1e-7),
        "high {}",
        w.difference + w.ci95
    );
    // Swapping the samples flips the sign, not the p-value.
    let back = stats::welch(&B, &A);
    assert!(close(back.difference, -w.difference, 1e-12) && close(back.p, w.p, 1e-9));
}

#[test]
fn holm_bonferroni_tost_and_mdd_match_statsmodels_and_scipy() {
    // from statsmodels.stats.multitest import multipletests
    // multipletests([0.01, 0.04, 0.03, 0.005], method="holm")[1]
    let adjusted = stats::holm(&[0.01, 0.04, 0.03, 0.005]);
    for (got, want) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
        assert!(close(*got, want, 1e-12), "{adjusted:?}");
    }
    let with_nan = stats::holm(&[0.01, f64::NAN, 0.04]);
    assert!(
        with_nan[1].is_nan() && close(with_nan[0], 0.02, 1e-12) && close(with_nan[2], 0.04, 1e-12)
    );
    // stats.ttest_ind(A, B, equal_var=False).confidence_interval(1 - 0.05 / 3)
    let (low, high) = stats::welch_interval(&A, &B, 1.0 - 0.05 / 3.0);
    assert!(close(low, 0.0015781738725161422, 1e-7), "{low}");
    assert!(close(high, 0.005131826127483854, 1e-7), "{high}");
    // from statsmodels.stats.weightstats import ttost_ind
    // ttost_ind(A, B, -0.004, 0.004, usevar="unequal")[0]
    let p = stats::tost(&A, &B, 0.004);
    assert!(close(p, 0.14409020991884636, 1e-6), "{p}");
    // ttost_ind(A, B, -0.002, 0.002, usevar="unequal")[0]
    let p = stats::tost(&A, &B, 0.002);
    assert!(close(p, 0.9761684442528695, 1e-6), "{p}");
    // Equal means (Welch's t is 0): ttost_ind([1, 2, 3, 6], [2, 4, 3], -2, 2, usevar="unequal")[0]
    let p = stats::tost(&[1.0, 2.0, 3.0, 6.0], &[2.0, 4.0, 3.0], 2.0);
    assert!(close(p, 0.08551755057573063, 1e-6), "{p}");
    // se, df = Welch's; (stats.t.ppf(1 - 0.05 / 2, df) + stats.t.ppf(0.8, df)) * se
    let d = stats::mdd(&A, &B, 0.05, 0.8);
    assert!(close(d, 0.001838661562345813, 1e-7), "{d}");
}

#[test]
fn probability_of_improvement_is_mann_whitney_over_pairs() {
    const C: [f64; 5] = [0.9850, 0.9881, 0.9840, 0.9890, 0.9845];
    // stats.mannwhitneyu(C, B).statistic / (5 * 4)
    assert!(close(
        stats::probability_of_improvement(&C, &B),
        0.675,
        1e-12
    ));
    // Newcombe (2006) Method 5, solved with scipy: th = 0.675, m, n = 5, 4, ns = (m + n) / 2,
    // z = stats.norm.ppf(0.975), V = lambda t: t*(1-t)/(m*n)*(1 + (ns-1)*(1-t)/(2-t) + (ns-1)*t/(1+t)),
    // f = lambda t: abs(t - th) - z*np.sqrt(V(t)); optimize.brentq(f, 0, th), optimize.brentq(f, th, 1)
    let (low, high) = stats::probability_of_improvement_interval(&C, &B);
    assert!(close(low, 0.3094046027240999, 1e-9), "{low}");
    assert!(close(high, 0.9008719750708508, 1e-9), "{high}");
    // Every run of A beats every run of B: θ̂ = 1, yet an interval, not [1, 1] (a bootstrap's collapse):
    // the same with th = 1, optimize.brentq(f, 0, 1 - 1e-12)
    let (low, high) = stats::probability_of_improvement_interval(&A, &B);
    assert!(close(low, 0.6115232307964543, 1e-9), "{low}");
    assert!(close(high, 1.0, 1e-12), "{high}");
    // And the mirror image.
    let (low, high) = stats::probability_of_improvement_interval(&B, &A);
    assert!(
        close(low, 0.0, 1e-9) && close(high, 1.0 - 0.6115232307964543, 1e-9),
        "{low} {high}"
    );
    // No runs on a side: no interval.
    let (low, high) = stats::probability_of_improvement_interval(&[], &B);
    assert!(low.is_nan() && high.is_nan());
    let (low, high) = stats::probability_of_improvement_interval(&A, &[]);
    assert!(low.is_nan() && high.is_nan());
}

#[test]
fn paired_test_matches_scipy_ttest_rel_and_statsmodels_ttost_paired() {
    const C: [f64; 5] = [0.9850, 0.9881, 0.9840, 0.9890, 0.9845];
    // r = stats.ttest_rel(A, C); r.statistic, r.df, r.pvalue, r.confidence_interval(0.95)
    let e = stats::paired(&A, &C);
    assert!(close(e.estimate / e.se, 1.3456374257762742, 1e-9));
    assert_eq!(e.df, 4.0);
    assert!(close(e.p(), 0.2496341352169295, 1e-7), "{}", e.p());
    let (low, high) = e.interval(0.95);
    assert!(close(low, -0.001977726119046364, 1e-7), "{low}");
    assert!(close(high, 0.005697726119046399, 1e-7), "{high}");
    // ttost_paired(np.array(A), np.array(C), -0.002, 0.002)[0]
    assert!(
        close(e.tost(0.002), 0.4620992549455003, 1e-6),
        "{}",
        e.tost(0.002)
    );
    // ci = r.confidence_interval(0.90); max(abs(ci.low), abs(ci.high))
    let bound = e.equivalence_bound(0.05);
    assert!(close(bound, 0.004806733604916015, 1e-7), "{bound}");
}

#[test]
fn the_equivalence_bound_is_where_the_tost_passes() {
    // ci = stats.ttest_ind(A, B, equal_var=False).confidence_interval(0.9); max(abs(ci.low), abs(ci.high))
    let e = stats::contrast(&[(&A, 1.0), (&B, -1.0)]);
    let bound = e.equivalence_bound(0.05);
    assert!(close(bound, 0.0044224600394439, 1e-7), "{bound}");
    // ttost_ind(A, B, -bound, bound, usevar="unequal")[0] == 0.05 (to rounding)
    assert!(close(stats::tost(&A, &B, bound), 0.05, 1e-6));
    assert!(stats::tost(&A, &B, bound * 1.01) < 0.05 && stats::tost(&A, &B, bound * 0.99) > 0.05);
}

#[test]
fn a_welch_contrast_of_four_means_matches_welch_satterthwaite() {
    const C: [f64; 5] = [0.9850, 0.9881, 0.9840, 0.9890, 0.9845];
    const D: [f64; 3] = [0.9860, 0.9870, 0.9855];
    // samples = [(A, 1), (B, -1), (C, -1), (D, 1)]; est = sum(c * np.mean(x));
    // v = [c*c*np.var(x, ddof=1)/len(x)]; se = sqrt(sum(v)); df = sum(v)**2 / sum(vi**2/(len(x)-1));
    // p = 2 * stats.t.sf(abs(est / se), df)
    let e = stats::contrast(&[(&A, 1.0), (&B, -1.0), (&C, -1.0), (&D, 1.0)]);
    assert!(close(e.estimate, 0.003401666666666636, 1e-9));
    assert!(close(e.se, 0.001239301998886642, 1e-9));
    assert!(close(e.df, 7.901881553149424, 1e-9));
    assert!(close(e.p(), 0.02555528844943837, 1e-6), "{}", e.p());
    // Welch's test is the contrast (1, −1).
    assert_eq!(
        stats::welch(&A, &B).p,
        stats::contrast(&[(&A, 1.0), (&B, -1.0)]).p()
    );
}

/// Two groups' epochs to a threshold; `false` marks a run that ended without reaching it (censored).
fn durations(times: &[f64], observed: &[bool]) -> Vec<stats::Duration> {
    times
        .iter()
        .zip(observed)
        .map(|(&time, &observed)| stats::Duration { time, observed })
        .collect()
}

#[test]
fn kaplan_meier_median_and_log_rank_match_scipy() {
    // x = stats.CensoredData(uncensored=[3, 5, 8, 12], right=[5, 10]); stats.ecdf(x).sf: 3 → 0.8333,
    // 5 → 0.6667, 8 → 0.4444, 12 → 0; .confidence_interval(method="log-log"): lower edge 0.2731 at 3,
    // upper edge never ≤ 0.5 (0.9747, 0.9044, 0.7849, 0.7849, nan).
    let a = durations(
        &[3.0, 5.0, 5.0, 8.0, 10.0, 12.0],
        &[true, true, false, true, false, true],
    );
    let curve = stats::kaplan_meier(&a);
    let s: Vec<f64> = curve.iter().map(|c| c.1).collect();
    for (got, want) in s.iter().zip([
        0.8333333333333334,
        0.6666666666666667,
        0.4444444444444445,
        0.0,
    ]) {
        assert!(close(*got, want, 1e-12), "{s:?}");
    }
    let (median, low, high) = stats::km_median(&a);
    assert_eq!(median, 8.0);
    assert_eq!(low, 3.0, "the lower edge 0.2731 is below 0.5 from t = 3");
    assert!(high.is_nan(), "the upper edge stays above 0.5: an open end");
    // y = stats.CensoredData(uncensored=[2, 3, 4, 6, 7, 9], right=[4]); median 6 (S = 0.381)
    let b = durations(
        &[2.0, 3.0, 4.0, 4.0, 6.0, 7.0, 9.0],
        &[true, true, true, false, true, true, true],
    );
    assert_eq!(stats::km_median(&b).0, 6.0);
    // stats.logrank(x, y): statistic −1.455805675527483 (z), pvalue 0.14544634638140277
    let (chi2, p) = stats::logrank(&a, &b);
    assert!(close(chi2, 1.455805675527483f64.powi(2), 1e-9), "{chi2}");
    assert!(close(p, 0.14544634638140277, 1e-6), "{p}");
    // Both ends finite: t = [2, 3, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 12, 14], observed =
    // [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0]; scipy's sf: median 8; its log-log band's lower edge
    // first ≤ 0.5 at 4 (0.4879), the upper edge at 11 (0.4806; 0.5736 at 9 and 10).
    let c = durations(
        &[
            2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0, 8.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0,
        ],
        &[
            true, true, false, true, true, true, false, true, true, true, true, false, true, true,
            false,
        ],
    );
    assert_eq!(stats::km_median(&c), (8.0, 4.0, 11.0));
    // S falls to exactly 1/2 at 9 (0.9 · 6/9 · 5/6), which the float product overshoots by a rounding; scipy's
    // median is 9 (the tuned study's relu_max, epochs to 99%).
    let exact_half = durations(
        &[10.0, 12.0, 8.0, 9.0, 8.0, 10.0, 11.0, 11.0, 8.0, 6.0],
        &[true; 10],
    );
    assert_eq!(stats::km_median(&exact_half).0, 9.0);
    // Fewer than half reach it: no median.
    let never = durations(&[10.0, 10.0, 4.0], &[false, false, true]);
    assert!(stats::km_median(&never).0.is_nan());
}

#[test]
fn an_accuracy_interval_stays_within_0_and_100_percent() {
    use lenet5_lab::study::analysis::test_interval;
    // Three runs at 99.9%, 100% and 100%: the t interval's upper end, 100.04%, is clipped to 100%.
    let s = stats::summarize(&[0.999, 1.0, 1.0]);
    assert!(
        s.mean + s.ci95 > 1.0,
        "the unclipped interval leaves the range"
    );
    let (low, high) = test_interval(&s);
    assert_eq!(high, 1.0);
    assert!(close(low, s.mean - s.ci95, 1e-12));
    // And at the other end.
    let (low, _) = test_interval(&stats::summarize(&[0.001, 0.0, 0.0]));
    assert_eq!(low, 0.0);
}
