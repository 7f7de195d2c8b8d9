//! The study's statistics against scipy 1.x on known samples. Each expected number comes from the snippet
//! beside it (`from scipy import stats; import numpy as np`).
use lenet5::study::stats;

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
