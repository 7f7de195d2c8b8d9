//! A crossed grid's contrasts on hand-made groups (no training): the interaction's coefficients, and the
//! Welch–Satterthwaite test when the cells ran different seeds — the path a shared-seed sweep never takes.
use lenet5_lab::config::Config;
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::study::compare::Test;
use lenet5_lab::study::groups::{Group, Study};
use lenet5_lab::study::runs::RunSummary;
use lenet5_lab::study::{contrasts, stats, sweep};

fn run(seed: u64, accuracy: f64) -> RunSummary {
    let mut config = Config::default();
    config.trainer.seed = seed;
    RunSummary {
        name: format!("seed{seed}"),
        config,
        rows: vec![],
        state: None,
        test: Some(Evaluation {
            images: 10000,
            loss: 0.0,
            accuracy,
            top3_accuracy: 1.0,
            per_class_accuracy: vec![],
            confusion: vec![],
            calibration: None,
            most_confused: vec![],
            temperature_scaled: None,
        }),
        train_eval: None,
        selections: vec![],
        layers: vec![],
    }
}

fn group(name: &str, accuracies: &[f64]) -> Group {
    let runs: Vec<RunSummary> = (1..)
        .zip(accuracies)
        .map(|(seed, &a)| run(seed, a))
        .collect();
    let none = stats::summarize(&[]);
    Group {
        name: name.into(),
        planned: runs.len(),
        test: stats::summarize(accuracies),
        runs,
        best_val: none,
        train_clean: none,
        gap: none,
        validated: false,
        convergence: vec![],
    }
}

const A: [f64; 5] = [0.9881, 0.9874, 0.9890, 0.9869, 0.9885];
const B: [f64; 4] = [0.9841, 0.9856, 0.9838, 0.9850];
const C: [f64; 5] = [0.9850, 0.9881, 0.9840, 0.9890, 0.9845];
const D: [f64; 3] = [0.9860, 0.9870, 0.9855];

#[test]
fn an_interaction_over_cells_of_unequal_seeds_is_a_welch_contrast() {
    let spec: sweep::SweepFile = serde_yaml::from_str(
        "seeds: 1\ngrid:\n  model.pooling: [avg, max]\n  optimizer.lr: [0.001, 0.01]\n",
    )
    .unwrap();
    let runs = sweep::expand(&spec).unwrap();
    let name = |pooling: &str, lr: &str| format!("base,model.pooling={pooling},optimizer.lr={lr}");
    let study = Study {
        name: String::new(),
        sweep: sweep::Sweep {
            dir: "unused".into(),
            spec,
            runs,
        },
        groups: vec![
            group(&name("avg", "0.001"), &A),
            group(&name("avg", "0.01"), &B),
            group(&name("max", "0.001"), &C),
            group(&name("max", "0.01"), &D),
        ],
    };
    let rows = contrasts::contrasts(&study);
    let names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(
        names,
        [
            "base: model.pooling=max",
            "base: optimizer.lr=0.01",
            "base: model.pooling=max × optimizer.lr=0.01"
        ]
    );
    let interaction = &rows[2];
    assert_eq!(
        interaction.test,
        Test::WelchContrast,
        "the cells ran 5, 4, 5, 3 seeds"
    );
    assert_eq!(
        (interaction.n, interaction.n_ref, interaction.n_pairs),
        (8, 9, 0)
    );
    // In points: samples = [(A, 1), (B, -1), (C, -1), (D, 1)] (×100); est = sum(c * np.mean(x));
    // v = [c*c*np.var(x, ddof=1)/len(x)]; se = sqrt(sum(v)); df = sum(v)**2 / sum(vi**2/(len(x)-1));
    // 2 * stats.t.sf(abs(est / se), df) = 0.02555528844943837
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-7 * b.abs();
    assert!(
        close(interaction.delta, 0.3401666666666636),
        "{}",
        interaction.delta
    );
    assert!(
        close(interaction.p, 0.02555528844943837),
        "{}",
        interaction.p
    );
    // The main effect of max pooling: ((C + D) − (A + B)) / 2.
    let main = &rows[0];
    let want = 50.0 * (stats::mean(&C) + stats::mean(&D) - stats::mean(&A) - stats::mean(&B));
    assert!(close(main.delta, want), "{} {want}", main.delta);
}
