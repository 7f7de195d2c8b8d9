//! The layer-health section of a study report, on hand-written `layers.csv` rows: its table holds each
//! group's last-epoch numbers (mean ± std over runs) for the right layers, and both charts are drawn; a study
//! without layer health gets neither.
use lenet5_lab::config::Config;
use lenet5_lab::rundir::layers::LayerRow;
use lenet5_lab::study::groups::Group;
use lenet5_lab::study::layers_report;
use lenet5_lab::study::runs::RunSummary;
use lenet5_lab::study::stats;

fn weight(epoch: usize, layer: &str, grad: f64) -> LayerRow {
    LayerRow {
        epoch,
        layer: layer.into(),
        weight_norm: Some(1.0),
        grad_norm: Some(grad),
        update_ratio: Some(0.5 / epoch as f64),
        mean: None,
        std: None,
        saturated: None,
        dead: None,
    }
}

fn activation(epoch: usize, layer: &str, dead: f64) -> LayerRow {
    LayerRow {
        weight_norm: None,
        grad_norm: None,
        update_ratio: None,
        mean: Some(0.3),
        std: Some(0.5),
        dead: Some(dead),
        ..weight(epoch, layer, 0.0)
    }
}

/// A run of two epochs whose conv1 gradient norm ends at `grad` and whose S2 is `dead` dead at the end.
fn run(grad: f64, dead: f64) -> RunSummary {
    let mut layers = vec![];
    for epoch in 1..=2 {
        let g = if epoch == 2 { grad } else { 9.0 };
        layers.extend([
            weight(epoch, "conv1.weight", g),
            weight(epoch, "fc1.weight", 0.1),
        ]);
        layers.extend([activation(epoch, "S2", dead), activation(epoch, "F6", 0.0)]);
    }
    RunSummary {
        name: "r".into(),
        config: Config::default(),
        rows: vec![],
        state: None,
        test: None,
        train_eval: None,
        selections: vec![],
        layers,
    }
}

fn group(name: &str, runs: Vec<RunSummary>) -> Group {
    let none = stats::summarize(&[]);
    Group {
        name: name.into(),
        planned: runs.len(),
        runs,
        test: none,
        best_val: none,
        train_clean: none,
        gap: none,
        validated: true,
        convergence: vec![],
    }
}

#[test]
fn the_section_holds_each_group_s_last_epoch_and_draws_both_charts() {
    let groups = [group("relu", vec![run(0.2, 0.05), run(0.4, 0.15)])];
    let md = layers_report::render_markdown(&groups);
    assert!(md.contains("## Layer health"), "{md}");
    // conv1 at epoch 2: 0.2 and 0.4 → 0.300 ± 0.141; update ratio 0.25; S2 dead 5% and 15% → 10.000 ± 7.071.
    assert!(
        md.contains("| relu | conv1.weight | 0.300 ± 0.141 | 0.250 ± 0.000 | S2: 10.000 ± 7.071 | F6: 0.000 ± 0.000 |"),
        "{md}"
    );
    let files: Vec<&str> = (layers_report::files(&groups).unwrap().iter())
        .map(|f| f.0)
        .collect();
    assert_eq!(
        files,
        [
            "layer_gradients.svg",
            "layer_gradients.png",
            "layer_stuck.svg",
            "layer_stuck.png"
        ]
    );
    let without = [group(
        "old",
        vec![RunSummary {
            layers: vec![],
            ..run(0.1, 0.1)
        }],
    )];
    assert!(layers_report::render_markdown(&without).is_empty());
    assert!(layers_report::files(&without).unwrap().is_empty());
}
