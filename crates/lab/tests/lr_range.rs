//! The range test's arithmetic against the code it follows: Lightning's smoothing and divergence rule and
//! `np.gradient(loss).argmin()`, fastai's `valley`. Expected numbers come from the snippet beside them.
use lenet5_lab::lr_range::{self, RangeTest, Smoother};

/// A loss curve with a plateau, a descent around step 40, noise, and a rise after step 80.
fn curve() -> Vec<f64> {
    (0..120)
        .map(|i| {
            let i = i as f64;
            let rise = if i > 80.0 {
                0.002 * (i - 80.0).powi(2)
            } else {
                0.0
            };
            2.3 - 1.5 / (1.0 + (-(i - 40.0) / 6.0).exp()) + rise + 0.02 * (i * 1.7).sin()
        })
        .collect()
}

fn smoothed(raw: &[f64]) -> (Vec<lr_range::Point>, Option<usize>) {
    let test = RangeTest {
        steps: raw.len(),
        ..Default::default()
    };
    let mut s = Smoother::default();
    let mut points = vec![];
    for (i, &loss) in raw.iter().enumerate() {
        let (p, stop) = s.push(test.lr(i), loss);
        points.push(p);
        if stop {
            return (points, Some(i));
        }
    }
    (points, None)
}

#[test]
fn smoothing_and_both_rules_match_lightning_and_fastai() {
    // beta = 0.98; avg = beta·avg + (1−beta)·loss; smoothed = avg / (1 − beta^(i+1)) (Lightning), then
    // np.gradient(np.array(sm[10:-1])).argmin() + 10 → 50, and fastai's valley(sm[12:-5]) + 12 → 51.
    let (points, stop) = smoothed(&curve());
    assert_eq!(stop, None);
    assert!((points[5].smoothed - 2.300704387376746).abs() < 1e-12);
    assert!((points[119].smoothed - 1.7471926620644633).abs() < 1e-12);
    let s = lr_range::suggest(&points);
    assert_eq!(s.steepest, Some(50));
    assert_eq!(s.valley, Some(51));
}

#[test]
fn the_test_stops_when_the_smoothed_loss_passes_four_times_its_best() {
    // A loss that falls to 0.5 and then explodes: the smoothed loss passes 4 × its best a few steps on.
    let raw: Vec<f64> = (0..100)
        .map(|i| {
            if i < 50 {
                2.0 - 0.03 * i as f64
            } else {
                0.5 * 1.5f64.powi(i - 49)
            }
        })
        .collect();
    let (points, stop) = smoothed(&raw);
    let stop = stop.expect("diverges");
    let best = points[..stop]
        .iter()
        .map(|p| p.smoothed)
        .fold(f64::INFINITY, f64::min);
    assert!(points[stop].smoothed > 4.0 * best);
    assert!(points[stop - 1].smoothed <= 4.0 * best);
    // A NaN stops it at once.
    let mut s = Smoother::default();
    assert!(!s.push(1e-3, 2.0).1);
    assert!(s.push(1e-2, f64::NAN).1);
}

#[test]
fn rates_grow_exponentially_from_min_to_max_and_bad_ranges_are_refused() {
    let t = RangeTest {
        min_lr: 1e-6,
        max_lr: 1.0,
        steps: 7,
    };
    let lrs: Vec<f64> = (0..7).map(|i| t.lr(i)).collect();
    for (i, lr) in lrs.iter().enumerate() {
        assert!(
            (lr / 10f64.powi(i as i32 - 6) - 1.0).abs() < 1e-12,
            "{lrs:?}"
        );
    }
    assert!(t.check().unwrap_err().contains("--steps 7"));
    let backwards = RangeTest {
        min_lr: 1.0,
        max_lr: 1e-3,
        steps: 100,
    };
    assert!(backwards.check().unwrap_err().contains("--min-lr 1"));
    assert!(RangeTest::default().check().is_ok());
}

#[test]
fn csv_and_chart_hold_every_point() {
    let (points, _) = smoothed(&curve());
    let csv = String::from_utf8(lr_range::to_csv(&points).unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 121);
    assert!(
        csv.starts_with("step,lr,loss,smoothed_loss\n1,1e-7,"),
        "{csv:.60}"
    );
    let s = lr_range::suggest(&points);
    let svg = lenet5_lab::chart::render_svg(&lr_range::chart(&points, &s), (640, 400)).unwrap();
    assert!(svg.contains("valley: ") && svg.contains("steepest: "));
}
