//! A crossed grid's contrasts on hand-made groups (no training): the interaction's coefficients, and the
//! Welch–Satterthwaite test when the cells ran different seeds — the path a shared-seed sweep never takes.
use lenet5_lab::config::{Activation, Config, Pooling};
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::study::compare::Test;
use lenet5_lab::study::groups::{Group, Study};
use lenet5_lab::study::runs::RunSummary;
use lenet5_lab::study::{contrasts, crossing, stats, sweep};

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
    let name = |pooling: &str, lr: &str| format!("base,model.pooling={pooling},optimizer.lr={lr}");
    let study = study_of(
        "seeds: 1\ngrid:\n  model.pooling: [avg, max]\n  optimizer.lr: [0.001, 0.01]\n",
        vec![
            group(&name("avg", "0.001"), &A),
            group(&name("avg", "0.01"), &B),
            group(&name("max", "0.001"), &C),
            group(&name("max", "0.01"), &D),
        ],
    );
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

/// A group named `name` whose runs have `activation` and `pooling` in their config.
fn cell(name: &str, activation: Activation, pooling: Pooling, accuracies: &[f64]) -> Group {
    let mut g = group(name, accuracies);
    for r in &mut g.runs {
        (r.config.model.activation, r.config.model.pooling) = (activation, pooling);
    }
    g
}

/// Paired cells: every group ran seeds 1..=5.
const P: [[f64; 5]; 4] = [
    [0.9881, 0.9874, 0.9890, 0.9869, 0.9885],
    [0.9871, 0.9880, 0.9886, 0.9862, 0.9880],
    [0.9850, 0.9861, 0.9840, 0.9858, 0.9845],
    [0.9873, 0.9866, 0.9871, 0.9874, 0.9860],
];

/// A study of the sweep file `yaml` (in directory `sweepdir`) whose groups are `groups`.
fn study_of(yaml: &str, groups: Vec<Group>) -> Study {
    let spec: sweep::SweepFile = serde_yaml::from_str(yaml).unwrap();
    let runs = sweep::expand(&spec).unwrap();
    let sweep = sweep::Sweep {
        dir: "sweepdir".into(),
        spec,
        runs,
    };
    Study {
        name: String::new(),
        sweep,
        groups,
    }
}

/// The four activation × pooling cells as `variants`, and the `extra` groups.
fn variants_study(variants: &str, extra: Vec<Group>) -> Study {
    let yaml =
        format!("seeds: 5\nbaseline: base_cell\nequivalence_margin: 0.1\nvariants:\n{variants}");
    let mut groups = vec![
        cell("base_cell", Activation::Relu, Pooling::Avg, &P[0]),
        cell("relu_max", Activation::Relu, Pooling::Max, &P[1]),
        cell("tanh_avg", Activation::Tanh, Pooling::Avg, &P[2]),
        cell("tanh_max", Activation::Tanh, Pooling::Max, &P[3]),
    ];
    groups.extend(extra);
    study_of(&yaml, groups)
}

const CROSSED: &str = "  - {name: tanh_avg, set: {model.activation: tanh}}\n  - {name: base_cell}\n\
    \x20 - {name: relu_max, set: {model.pooling: max}}\n\
    \x20 - {name: tanh_max, set: {model.activation: tanh, model.pooling: max}, compare_to: tanh_avg}\n\
    \x20 - {name: adamw, set: {optimizer.type: adamw}}\n\
    \x20 - {name: l2, tune: {space: {optimizer.weight_decay: {log_uniform: [1.0e-6, 1.0e-2]}}, trials: 2, metric: val_accuracy, search_seed: 1}}\n";

#[test]
fn a_crossing_of_variants_is_the_grid_it_would_have_been() {
    // adamw and l2 share the base cell's activation and pooling, but set or tune something else: not cells.
    let others = vec![
        cell("adamw", Activation::Relu, Pooling::Avg, &B),
        cell("l2", Activation::Relu, Pooling::Avg, &D),
    ];
    let study = variants_study(CROSSED, others);
    let keys = ["model.activation".to_string(), "model.pooling".to_string()];
    let crossed = crossing::crossed(&study, &keys).unwrap();
    // The same cells as a grid.
    let name = |a: &str, p: &str| format!("base,model.activation={a},model.pooling={p}");
    let grid = study_of(
        "seeds: 5\nequivalence_margin: 0.1\ngrid:\n  model.activation: [relu, tanh]\n  model.pooling: [avg, max]\n",
        vec![
            group(&name("relu", "avg"), &P[0]),
            group(&name("relu", "max"), &P[1]),
            group(&name("tanh", "avg"), &P[2]),
            group(&name("tanh", "max"), &P[3]),
        ],
    );
    let rows = contrasts::contrasts(&grid);
    let names: Vec<&str> = crossed.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(
        names,
        [
            "crossed: model.activation=tanh",
            "crossed: model.pooling=max",
            "crossed: model.activation=tanh × model.pooling=max"
        ],
        "levels start at the baseline's cell (relu, avg), though tanh_avg is listed first"
    );
    assert_eq!(
        crossed[2].reference,
        "crossed: model.activation=relu × model.pooling=avg"
    );
    for (c, g) in crossed.iter().zip(&rows) {
        assert_eq!(c.test, Test::PairedContrast, "{}", c.group);
        assert_eq!(
            (c.n, c.n_ref, c.n_pairs),
            (g.n, g.n_ref, g.n_pairs),
            "{}",
            c.group
        );
        assert!(
            c.delta == g.delta && c.p == g.p && c.tost_p == g.tost_p,
            "{}",
            c.group
        );
        assert_eq!(c.margin, 0.1);
    }
    // (P3 − P2) − (P1 − P0) per seed, in points.
    let values: Vec<f64> = (0..5)
        .map(|s| 100.0 * (P[3][s] - P[2][s] - P[1][s] + P[0][s]))
        .collect();
    assert!((crossed[2].delta - stats::mean(&values)).abs() < 1e-9);
}

#[test]
fn a_crossing_with_a_cell_missing_or_twice_is_refused_naming_it() {
    let keys = ["model.activation".to_string(), "model.pooling".to_string()];
    let without = CROSSED.replace("  - {name: tanh_max, set: {model.activation: tanh, model.pooling: max}, compare_to: tanh_avg}\n", "");
    let study = variants_study(&without, vec![]);
    let err = crossing::crossed(&study, &keys).unwrap_err().to_string();
    assert_eq!(
        err,
        "sweepdir: --cross: no variant has model.activation=tanh, model.pooling=max and the base otherwise"
    );
    let twice = format!(
        "{CROSSED}  - {{name: tanh_max2, set: {{model.pooling: max, model.activation: tanh}}}}\n"
    );
    let again = cell("tanh_max2", Activation::Tanh, Pooling::Max, &P[3]);
    let study = variants_study(&twice, vec![again]);
    let err = crossing::crossed(&study, &keys).unwrap_err().to_string();
    assert_eq!(
        err,
        "sweepdir: --cross: variants tanh_max and tanh_max2 both have model.activation=tanh, model.pooling=max"
    );
    let one_level = ["model.activation".to_string(), "model.init".to_string()];
    let study = variants_study(CROSSED, vec![]);
    let err = crossing::crossed(&study, &one_level)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "sweepdir: --cross model.init: the variants that differ from the base only in model.activation, \
         model.init do not vary it"
    );
}

#[test]
fn a_crossed_key_may_be_a_section_named_by_its_values() {
    let variants = "  - {name: base_cell}\n  - {name: relu_max, set: {model.pooling: max}}\n\
        \x20 - {name: tanh_avg, set: {data.augment.rotate: 10.0}}\n\
        \x20 - {name: tanh_max, set: {data.augment.rotate: 10.0, model.pooling: max}}\n";
    let mut study = variants_study(variants, vec![]);
    for g in study
        .groups
        .iter_mut()
        .filter(|g| g.name.starts_with("tanh"))
    {
        for r in &mut g.runs {
            (r.config.model.activation, r.config.data.augment.rotate) = (Activation::Relu, 10.0);
        }
    }
    let keys = ["model.pooling".to_string(), "data.augment".to_string()];
    let rows = crossing::crossed(&study, &keys).unwrap();
    // The section's level names only what a cell sets inside it.
    let (none, rotate) = ("{rotate: 0.0}", "{rotate: 10.0}");
    assert_eq!(rows[1].group, format!("crossed: data.augment={rotate}"));
    assert_eq!(rows[1].reference, format!("crossed: data.augment={none}"));
    assert_eq!(
        rows[2].group,
        format!("crossed: model.pooling=max × data.augment={rotate}")
    );
    assert_eq!(rows[2].test, Test::PairedContrast);
}

#[test]
fn a_list_valued_level_is_named_as_a_list() {
    let variants = "  - {name: base_cell}\n  - {name: relu_max, set: {model.pooling: max}}\n\
        \x20 - {name: tanh_avg, set: {optimizer.betas: [0.8, 0.9]}}\n\
        \x20 - {name: tanh_max, set: {optimizer.betas: [0.8, 0.9], model.pooling: max}}\n";
    let study = variants_study(variants, vec![]);
    let keys = ["optimizer.betas".to_string(), "model.pooling".to_string()];
    let rows = crossing::crossed(&study, &keys).unwrap();
    assert_eq!(rows[0].group, "crossed: optimizer.betas=[0.8, 0.9]");
    assert_eq!(rows[0].reference, "crossed: optimizer.betas=[0.9, 0.999]");
}

#[test]
fn a_key_every_variant_sets_is_each_cells_own_setting() {
    // Each arm at its own learning rate (a tuning written out): still the crossing; a variant that also
    // sets something else is still no cell.
    let variants = "  - {name: base_cell, set: {optimizer.lr: 0.004}}\n\
        \x20 - {name: relu_max, set: {model.pooling: max, optimizer.lr: 0.006}}\n\
        \x20 - {name: tanh_avg, set: {model.activation: tanh, optimizer.lr: 0.004}}\n\
        \x20 - {name: tanh_max, set: {model.activation: tanh, model.pooling: max, optimizer.lr: 0.002}}\n\
        \x20 - {name: adamw, set: {optimizer.type: adamw, optimizer.lr: 0.004}}\n";
    let study = variants_study(
        variants,
        vec![cell("adamw", Activation::Relu, Pooling::Avg, &B)],
    );
    let keys = ["model.activation".to_string(), "model.pooling".to_string()];
    let rows = crossing::crossed(&study, &keys).unwrap();
    let values: Vec<f64> = (0..5)
        .map(|s| 100.0 * (P[3][s] - P[2][s] - P[1][s] + P[0][s]))
        .collect();
    assert!((rows[2].delta - stats::mean(&values)).abs() < 1e-9);
    // Where one variant leaves it unset, a cell that sets it is no cell.
    let unset = variants.replace(
        "{name: base_cell, set: {optimizer.lr: 0.004}}",
        "{name: base_cell}",
    );
    let err = crossing::crossed(&variants_study(&unset, vec![]), &keys).unwrap_err();
    assert!(err.to_string().contains("do not vary it"), "{err}");
}
