//! Config loading: shipped configs, defaults → file → overrides, and errors that name the key.
mod common;
use lenet5_lab::config::{
    self, Activation, Monitor, OptimizerKind, Override, Pooling, SchedulerKind,
};
use std::path::Path;

/// `--set` strings as overrides.
fn sets(items: &[&str]) -> Vec<Override> {
    items.iter().map(|s| Override::parse(s).unwrap()).collect()
}

fn err(yaml: &str, overrides: &[&str]) -> String {
    let parsed: Result<Vec<Override>, _> = overrides.iter().map(|s| Override::parse(s)).collect();
    let e = match parsed {
        Ok(list) => config::from_yaml_str(yaml, "test.yaml", &list).unwrap_err(),
        Err(e) => e,
    };
    format!("{e:#}")
}

#[test]
fn every_shipped_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            config::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            count += 1;
        }
    }
    assert!(
        count >= 12,
        "expected the seed's 7 rows and the extra configs, found {count}"
    );
    let sigmoid = config::load(&dir.join("sigmoid_adam.yaml"), &[]).unwrap();
    assert_eq!(sigmoid.model.activation, Activation::Sigmoid);
    assert_eq!(sigmoid.optimizer.kind, OptimizerKind::Adam);
    assert!(sigmoid.optimizer.amsgrad && sigmoid.trainer.early_stopping.enabled);
    assert_eq!(
        (sigmoid.lr_scheduler.step_size, sigmoid.lr_scheduler.gamma),
        (50, 0.1)
    );
    // The speedrun keeps LeNet-5's layout; only the training recipe is free.
    let speedrun = config::load(&dir.join("speedrun.yaml"), &[]).unwrap();
    assert_eq!(speedrun.model.variant, lenet5_lab::config::Variant::Lenet5);
    assert_eq!(speedrun.lr_scheduler.kind, SchedulerKind::Onecycle);
    assert_eq!(
        (speedrun.trainer.epochs, speedrun.data.batch_size),
        (3, 320)
    );
    assert_eq!(speedrun.data.validation_split, 0.0);
}

#[test]
fn defaults_then_file_then_overrides() {
    let c = config::from_yaml_str("", "empty", &[]).unwrap();
    assert_eq!(c, lenet5_lab::config::Config::default());
    assert_eq!(
        (c.data.batch_size, c.trainer.epochs, c.trainer.seed),
        (128, 100, 123)
    );
    // Off by default: on an H200 it cost 0.4–1.6 s of warm-up and bought nothing (docs/performance.md).
    assert!(!c.trainer.cudnn_benchmark);
    let on = config::from_yaml_str("", "f", &sets(&["trainer.cudnn_benchmark=true"])).unwrap();
    assert!(on.trainer.cudnn_benchmark);
    let yaml = "optimizer:\n  lr: 0.01\nmodel:\n  pooling: max\n";
    let c = config::from_yaml_str(
        yaml,
        "f",
        &sets(&["optimizer.lr=0.5", "trainer.device=cpu"]),
    )
    .unwrap();
    assert_eq!(c.optimizer.lr, 0.5, "the override wins over the file");
    assert_eq!(
        c.model.pooling,
        Pooling::Max,
        "the file wins over the default"
    );
    assert_eq!(c.trainer.device, "cpu");
    let c = config::from_yaml_str(
        "",
        "f",
        &sets(&[
            "lr_scheduler.type=plateau",
            "lr_scheduler.monitor=val_accuracy",
        ]),
    )
    .unwrap();
    assert_eq!(
        (c.lr_scheduler.kind, c.lr_scheduler.monitor),
        (SchedulerKind::Plateau, Monitor::ValAccuracy)
    );
}

#[test]
fn bad_configs_name_the_key_and_allowed_values() {
    let e = err("model:\n  activaton: relu\n", &[]);
    assert!(
        e.contains("test.yaml") && e.contains("activaton") && e.contains("activation"),
        "{e}"
    );
    let e = err("model:\n  activation: swish\n", &[]);
    assert!(
        e.contains("swish") && e.contains("sigmoid") && e.contains("relu") && e.contains("tanh"),
        "{e}"
    );
    assert!(
        e.contains("model.activation"),
        "type errors carry the key path: {e}"
    );
    let e = err("optimizer:\n  lr: fast\n", &[]);
    assert!(e.contains("optimizer.lr") && e.contains("fast"), "{e}");
    let e = err("model:\n  activation: relu\n  activation: tanh\n", &[]);
    assert!(e.contains("line"), "syntax errors carry the line: {e}");
    let e = err("model: [unclosed\n", &[]);
    assert!(e.contains("test.yaml") && e.contains("line"), "{e}");
    for (yaml, key) in [
        ("optimizer:\n  lr: 0\n", "optimizer.lr"),
        ("optimizer:\n  lr: -1\n", "optimizer.lr"),
        (
            "optimizer:\n  weight_decay: -0.1\n",
            "optimizer.weight_decay",
        ),
        ("data:\n  batch_size: 0\n", "data.batch_size"),
        ("data:\n  validation_split: 1.0\n", "data.validation_split"),
        ("data:\n  validation_split: -0.1\n", "data.validation_split"),
        ("trainer:\n  epochs: 0\n", "trainer.epochs"),
        (
            "trainer:\n  early_stopping:\n    patience: 0\n",
            "trainer.early_stopping.patience",
        ),
        ("trainer:\n  device: gpu\n", "trainer.device"),
        (
            "trainer:\n  cudnn_benchmark: often\n",
            "trainer.cudnn_benchmark",
        ),
        (
            "optimizer:\n  type: sgd\n  nesterov: true\n",
            "optimizer.nesterov",
        ),
        (
            "lr_scheduler:\n  type: onecycle\n  pct_start: 1.0\n",
            "lr_scheduler.pct_start",
        ),
        (
            "lr_scheduler:\n  type: onecycle\n  div_factor: 0\n",
            "lr_scheduler.div_factor",
        ),
    ] {
        let e = err(yaml, &[]);
        assert!(e.contains(key) && e.contains("test.yaml"), "{yaml:?}: {e}");
    }
    // patience 0 is fine when early stopping is off.
    config::from_yaml_str(
        "trainer:\n  early_stopping:\n    enabled: false\n    patience: 0\n",
        "f",
        &[],
    )
    .unwrap();
}

#[test]
fn bad_overrides_name_the_override() {
    let e = err("", &["optimizer.learning_rate=0.1"]);
    assert!(
        e.contains("--set optimizer.learning_rate=0.1") && e.contains("lr"),
        "{e}"
    );
    let e = err("", &["optimizer.lr"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = err("", &["optimizer.type=lbfgs"]);
    assert!(e.contains("lbfgs") && e.contains("rmsprop"), "{e}");
    let e = err("", &["optimizer.lr=-3"]);
    assert!(e.contains("optimizer.lr"), "{e}");
}

#[test]
fn the_hand_written_step_s_key_is_gone() {
    // Every run trains through LibTorch; a config that still names the old switch is told so.
    let e = err("trainer:\n  fused_cpu: false\n", &[]);
    assert!(e.contains("unknown key `trainer.fused_cpu`"), "{e}");
}

#[test]
fn type_errors_speak_plainly_and_say_each_thing_once() {
    let e = err("", &["trainer.epochs=1e3"]);
    assert_eq!(
        e,
        "--set trainer.epochs=1e3: expected a whole number (0 or more)"
    );
    let e = err("", &["optimizer.lr=abc"]);
    assert_eq!(e, "--set optimizer.lr=abc: expected a number");
    let e = err("", &["optimizer.lr=1e400"]);
    assert!(e.contains("too large"), "{e}");
    let long = format!("optimizer.lr={}", "x".repeat(20_000));
    let e = err("", &[long.as_str()]);
    assert!(
        e.len() < 200 && e.matches("more characters").count() == 1,
        "{}",
        &e[..e.len().min(300)]
    );
    // In a file, the key and the value it found.
    let e = format!(
        "{:#}",
        config::from_yaml_str("trainer:\n  epochs: 2.5\n", "f.yaml", &[]).unwrap_err()
    );
    assert_eq!(
        e,
        "f.yaml: trainer.epochs: expected a whole number (0 or more), found 2.5"
    );
}

#[test]
fn resolved_config_round_trips_through_yaml() {
    // cuda:1 is a valid config value even without CUDA; only resolving the device checks that it exists.
    let c = config::from_yaml_str("", "f", &sets(&["trainer.device=cuda:1"])).unwrap();
    assert_eq!(c.trainer.device, "cuda:1");
    let c = config::from_yaml_str(
        "model:\n  init: he_normal\noptimizer:\n  betas: [0.8, 0.9]\n",
        "f",
        &[],
    )
    .unwrap();
    let again = config::from_yaml_str(&c.to_yaml().unwrap(), "again", &[]).unwrap();
    assert_eq!(c, again);
}

#[test]
fn defaults_yaml_is_the_default_config_and_renders_itself() {
    let defaults = lenet5_lab::config::Config::default();
    // Every key of the defaults file is a config key, and the rendering of the defaults is the file itself.
    assert_eq!(defaults.to_yaml().unwrap(), config::DEFAULTS_YAML);
    // A resolved config keeps the comments and reads back as itself, whatever the values (1e30 stays a float).
    let c = config::from_yaml_str(
        "lr_scheduler:\n  type: piecewise\n  piecewise: [[2, 0.0005], [3, 0.0002]]\ndata:\n  dir: /tmp/x y\n",
        "f",
        &[Override::new("optimizer.lr", 1e30, "--lr 1e30")],
    )
    .unwrap();
    let text = c.to_yaml().unwrap();
    assert!(
        text.contains("  lr: 1e30") && text.contains("# > 0;"),
        "{text}"
    );
    assert_eq!(config::from_yaml_str(&text, "again", &[]).unwrap(), c);
}

#[test]
fn configuration_page_reference_is_the_defaults_file() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    assert!(
        page.contains(&format!("```yaml\n{}```", config::DEFAULTS_YAML)),
        "docs/configuration.md's configuration block differs from src/config/defaults.yaml; paste `lenet5 config` output"
    );
}

#[test]
fn config_refuses_what_train_refuses_and_names_keys_that_do_nothing() {
    let e = err("", &["data.batch_size=10000000"]);
    assert!(
        e.contains("data.batch_size") && e.contains("training split"),
        "{e}"
    );
    let c = config::from_yaml_str(
        "model: {variant: lenet5_1998, pooling: max}\noptimizer: {type: sgd, betas: [0.8, 0.9]}\n\
         regularization: {label_smoothing: 0.1}\n",
        "f",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.ineffective(),
        [
            "model.pooling has no effect with model.variant = lenet5_1998",
            "optimizer.betas has no effect with optimizer.type = sgd",
            "regularization.label_smoothing has no effect with model.variant = lenet5_1998"
        ]
    );
    // What the shipped configs set, they use.
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let c = config::load(&path, &[]).unwrap();
        assert!(
            c.ineffective().is_empty(),
            "{}: {:?}",
            path.display(),
            c.ineffective()
        );
    }
    // The binary's `config` warns as `train` does.
    let dir = common::scratch("config_warns");
    let out = common::lenet5(
        &dir,
        &[
            "config",
            "--set",
            "model.variant=lenet5_modern",
            "--set",
            "model.activation=tanh",
        ],
    );
    assert!(out.status.success());
    assert!(
        common::stderr(&out)
            .contains("warning: model.activation has no effect with model.variant = lenet5_modern"),
        "{}",
        common::stderr(&out)
    );
}
