//! The tuning report's numbers: the expected best of n trials (Dodge et al. 2019, without replacement)
//! against a brute-force enumeration of every n-subset.
use lenet5_lab::study::tuning_report::expected_max;

/// Mean and population std of max over every n-subset of `values`.
fn brute(values: &[f64], n: usize) -> (f64, f64) {
    let big_n = values.len();
    let mut maxima = vec![];
    for mask in 0u32..(1 << big_n) {
        if mask.count_ones() as usize == n {
            let max = (0..big_n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| values[i])
                .fold(f64::NEG_INFINITY, f64::max);
            maxima.push(max);
        }
    }
    let mean = maxima.iter().sum::<f64>() / maxima.len() as f64;
    let var = maxima.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / maxima.len() as f64;
    (mean, var.sqrt())
}

#[test]
fn expected_best_of_n_equals_the_enumeration_of_every_subset() {
    // Ties included (0.97 twice), unsorted.
    let values = [
        0.97, 0.91, 0.985, 0.97, 0.42, 0.99, 0.88, 0.955, 0.975, 0.93, 0.989, 0.9,
    ];
    for n in 1..=values.len() {
        let (m, s) = expected_max(&values, n);
        let (bm, bs) = brute(&values, n);
        assert!((m - bm).abs() < 1e-12, "n = {n}: {m} vs {bm}");
        assert!((s - bs).abs() < 1e-9, "n = {n}: {s} vs {bs}");
    }
    // One trial: the mean of all; all of them: the maximum, with no spread.
    let (m1, _) = expected_max(&values, 1);
    assert!((m1 - values.iter().sum::<f64>() / 12.0).abs() < 1e-12);
    assert_eq!(expected_max(&values, 12), (0.99, 0.0));
    assert!(expected_max(&values, 13).0.is_nan());
}
