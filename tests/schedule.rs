//! LR schedules (against PyTorch's formulas), early stopping on scripted validation losses, and each
//! optimizer taking a step.
use lenet5_core::nn::optim;
use lenet5_lab::config::{
    Config, EarlyStoppingConfig, Horizon, LrSchedulerConfig, Monitor, OptimizerConfig,
    OptimizerKind, SchedulerKind,
};
use lenet5_lab::rundir::state::{RunStatus, TrainState};
use lenet5_lab::schedule::LrScheduler;

mod common;

/// The lr used in epochs 1..=n.
fn lrs(cfg: LrSchedulerConfig, monitored: &[f64]) -> Vec<f64> {
    let mut s = LrScheduler::new(&cfg, 1.0, monitored.len());
    let mut out = vec![];
    for (i, m) in monitored.iter().enumerate() {
        out.push(s.lr);
        s.step(i + 1, *m);
    }
    out
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn step_cosine_and_plateau_follow_pytorch() {
    // torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5), lr=1: [1, 1, .5, .5, .25]
    let step = LrSchedulerConfig {
        kind: SchedulerKind::Step,
        step_size: 2,
        gamma: 0.5,
        ..Default::default()
    };
    assert!(close(&lrs(step, &[0.0; 5]), &[1.0, 1.0, 0.5, 0.5, 0.25]));
    // CosineAnnealingLR(T_max=4, eta_min=0): 0.5·(1+cos(π·e/4)) for e = 0..4
    let cos = LrSchedulerConfig {
        kind: SchedulerKind::Cosine,
        t_max: Horizon::Epochs(4),
        eta_min: 0.0,
        ..Default::default()
    };
    let expected: Vec<f64> = (0..5)
        .map(|e| 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / 4.0).cos()))
        .collect();
    assert!(close(&lrs(cos, &[0.0; 5]), &expected));
    // ReduceLROnPlateau(factor=0.1, patience=1, threshold=0): cut after 2 epochs without improvement.
    let plateau = LrSchedulerConfig {
        kind: SchedulerKind::Plateau,
        factor: 0.1,
        patience: 1,
        monitor: Monitor::ValLoss,
        ..Default::default()
    };
    let got = lrs(plateau, &[1.0, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8]);
    assert!(
        close(&got, &[1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01]),
        "{got:?}"
    );
    // The 1998 paper's schedule shape: each lr held for its number of epochs, the last one afterwards.
    let piecewise = LrSchedulerConfig {
        kind: SchedulerKind::Piecewise,
        piecewise: vec![(2, 0.5), (1, 0.2), (2, 0.1)],
        ..Default::default()
    };
    assert!(close(
        &lrs(piecewise, &[0.0; 7]),
        &[0.5, 0.5, 0.2, 0.1, 0.1, 0.1, 0.1]
    ));
    let none = LrSchedulerConfig {
        kind: SchedulerKind::None,
        ..Default::default()
    };
    assert!(close(&lrs(none, &[0.0; 3]), &[1.0; 3]));
}

/// The lr of epochs 1..=`epochs` of a run of `epochs` epochs (the run's budget sets an `auto` horizon).
fn run_lrs(kind: SchedulerKind, t_max: Horizon, eta_min: f64, epochs: usize) -> Vec<f64> {
    let cfg = LrSchedulerConfig {
        kind,
        t_max,
        eta_min,
        ..Default::default()
    };
    lrs(cfg, &vec![0.0; epochs])
}

#[test]
fn cosine_and_linear_anneal_to_the_runs_last_epoch() {
    use SchedulerKind::{Cosine, Linear};
    // CosineAnnealingLR(T_max=epochs, eta_min=0.1), lr 1: 0.1 + 0.9·(1+cos(π·e/epochs))/2, e = 0..epochs-1.
    for epochs in [5, 15, 45] {
        let expected: Vec<f64> = (0..epochs)
            .map(|e| {
                0.1 + 0.9 * (1.0 + (std::f64::consts::PI * e as f64 / epochs as f64).cos()) / 2.0
            })
            .collect();
        assert!(close(
            &run_lrs(Cosine, Horizon::Auto, 0.1, epochs),
            &expected
        ));
        // LinearLR(start_factor=1, end_factor=0.1, total_iters=epochs): 1 + (0.1 − 1)·e/epochs.
        let expected: Vec<f64> = (0..epochs)
            .map(|e| 1.0 + (0.1 - 1.0) * e as f64 / epochs as f64)
            .collect();
        assert!(close(
            &run_lrs(Linear, Horizon::Auto, 0.1, epochs),
            &expected
        ));
    }
    // A fixed horizon ignores the budget; linear holds eta_min after it (LinearLR past total_iters).
    assert!(close(
        &run_lrs(Linear, Horizon::Epochs(2), 0.0, 4),
        &[1.0, 0.5, 0.0, 0.0]
    ));
    // `auto` is the default and reads as text; a number stays a number.
    assert_eq!(LrSchedulerConfig::default().t_max, Horizon::Auto);
    let set = |v: &str| {
        lenet5_lab::config::apply(
            &Config::default(),
            &[lenet5_lab::config::Override::parse(&format!("lr_scheduler.t_max={v}")).unwrap()],
            "test",
        )
    };
    assert_eq!(set("7").unwrap().lr_scheduler.t_max, Horizon::Epochs(7));
    assert_eq!(set("auto").unwrap().lr_scheduler.t_max, Horizon::Auto);
    let err = format!("{:#}", set("soon").unwrap_err());
    assert!(err.contains("whole number of epochs or `auto`"), "{err}");
}

#[test]
fn a_resume_cannot_move_an_auto_horizon() {
    let mut saved = Config::default();
    saved.lr_scheduler.kind = SchedulerKind::Cosine;
    let mut longer = saved.clone();
    longer.trainer.epochs += 5;
    let err = lenet5_lab::config::check_resumable(&saved, &longer, &[], "RUN").unwrap_err();
    assert!(format!("{err}").contains("t_max = auto"), "{err}");
    // A fixed horizon, or a schedule without one, may train further.
    saved.lr_scheduler.t_max = Horizon::Epochs(100);
    longer.lr_scheduler.t_max = Horizon::Epochs(100);
    lenet5_lab::config::check_resumable(&saved, &longer, &[], "RUN").unwrap();
    saved.lr_scheduler.kind = SchedulerKind::Step;
    saved.lr_scheduler.t_max = Horizon::Auto;
    longer.lr_scheduler = saved.lr_scheduler.clone();
    lenet5_lab::config::check_resumable(&saved, &longer, &[], "RUN").unwrap();
}

#[test]
fn cosine_and_linear_match_pytorch() {
    let Some(python) = common::python_with_torch("cosine_and_linear_match_pytorch") else {
        return;
    };
    let script = "import torch\n\
        def lrs(make):\n    p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=1.0); s = make(opt); out = []\n    for _ in range(9):\n        out.append(opt.param_groups[0]['lr']); opt.step(); s.step()\n    return out\n\
        c = lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=9, eta_min=0.05))\n\
        l = lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=6))\n\
        print(' '.join(repr(x) for x in c + l))\n";
    let torch: Vec<f64> = String::from_utf8(common::run_python(&python, &["-c", script]))
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let mut ours = run_lrs(SchedulerKind::Cosine, Horizon::Auto, 0.05, 9);
    ours.extend(run_lrs(SchedulerKind::Linear, Horizon::Epochs(6), 0.05, 9));
    assert_eq!(torch.len(), ours.len());
    for (t, o) in torch.iter().zip(&ours) {
        assert!((t - o).abs() < 1e-9, "torch {torch:?}\nours {ours:?}");
    }
}

/// One-cycle over `total` batches with PyTorch's defaults (pct_start 0.3, div 25, final div 1e4), lr 1.
fn one_cycle(total: usize) -> Vec<f64> {
    let cfg = LrSchedulerConfig {
        kind: SchedulerKind::Onecycle,
        ..Default::default()
    };
    let s = LrScheduler::new(&cfg, 1.0, 10);
    (0..total).map(|i| s.batch_lr(i, total).unwrap()).collect()
}

#[test]
fn one_cycle_warms_up_then_anneals_per_batch() {
    let lrs = one_cycle(50);
    // Starts at lr/25, peaks at lr at batch 0.3·50 − 1 = 14, ends at lr/25/1e4.
    assert!((lrs[0] - 1.0 / 25.0).abs() < 1e-12);
    assert!((lrs[14] - 1.0).abs() < 1e-12);
    assert!((lrs[49] - 1.0 / 25.0 / 1e4).abs() < 1e-12);
    assert!(lrs[..15].windows(2).all(|w| w[0] < w[1]));
    assert!(lrs[14..].windows(2).all(|w| w[0] > w[1]));
    // Runs too short for a warm-up still get finite learning rates.
    for (pct_start, total) in [(0.3, 1), (0.5, 2), (0.3, 3)] {
        let cfg = LrSchedulerConfig {
            kind: SchedulerKind::Onecycle,
            pct_start,
            ..Default::default()
        };
        let s = LrScheduler::new(&cfg, 1.0, 10);
        assert!((0..total).all(|i| s.batch_lr(i, total).unwrap().is_finite()));
    }
    // Per-epoch schedules have no per-batch lr.
    let cos = LrScheduler::new(&LrSchedulerConfig::default(), 1.0, 10);
    assert_eq!(cos.batch_lr(0, 50), None);
}

#[test]
fn one_cycle_matches_pytorch_one_cycle_lr() {
    let Some(python) = common::python_with_torch("one_cycle_matches_pytorch_one_cycle_lr") else {
        return;
    };
    let script = "import torch\n\
        p = torch.nn.Parameter(torch.zeros(1))\n\
        opt = torch.optim.SGD([p], lr=1.0)\n\
        s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=50, cycle_momentum=False)\n\
        lrs = []\n\
        for _ in range(50):\n    lrs.append(opt.param_groups[0]['lr']); opt.step(); s.step()\n\
        print(' '.join(repr(x) for x in lrs))\n";
    let torch: Vec<f64> = String::from_utf8(common::run_python(&python, &["-c", script]))
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let ours = one_cycle(50);
    assert!(
        ours.iter().zip(&torch).all(|(a, b)| (a - b).abs() < 1e-9) && ours.len() == torch.len(),
        "ours {ours:?}\ntorch {torch:?}"
    );
}

/// Feeds `values` until early stopping fires; returns (stop epoch, best epoch).
fn run_early_stopping(es: &EarlyStoppingConfig, values: &[f64]) -> (Option<usize>, usize) {
    let mut state = TrainState::new(&Config::default());
    for (i, v) in values.iter().enumerate() {
        state.record(es, (i + 1, 100), (*v, 0.0), 1.0);
        if state.status == RunStatus::EarlyStopped {
            return (Some(i + 1), state.best_epoch);
        }
    }
    (None, state.best_epoch)
}

#[test]
fn the_other_metric_keeps_its_own_best_epoch() {
    let es = Config::default().trainer.early_stopping; // monitors val_loss: the other is val_accuracy
    let mut state = TrainState::new(&Config::default());
    let epochs = [
        (0.5, 0.90),
        (0.4, 0.92),
        (0.45, 0.95),
        (0.3, 0.95),
        (0.35, 0.94),
    ];
    let improved: Vec<(bool, bool)> = epochs
        .iter()
        .enumerate()
        .map(|(i, &v)| state.record(&es, (i + 1, 100), v, 1.0))
        .collect();
    let expected = [
        (true, true),
        (true, true),
        (false, true),
        (true, false),
        (false, false),
    ];
    assert_eq!(improved, expected);
    assert_eq!((state.best_epoch, state.other_best), (4, Some((3, 0.95))));
}

#[test]
fn a_state_resumed_from_before_the_other_best_was_kept_keeps_none() {
    let es = Config::default().trainer.early_stopping;
    let mut state = TrainState::new(&Config::default());
    state.epoch = 3;
    assert_eq!(state.record(&es, (4, 100), (0.3, 0.99), 1.0), (true, false));
    assert_eq!(state.other_best, None);
}

#[test]
fn early_stopping_stops_at_the_right_epoch() {
    let es = EarlyStoppingConfig {
        enabled: true,
        monitor: Monitor::ValLoss,
        patience: 3,
        min_delta: 0.0,
    };
    // Best at epoch 3; epochs 4, 5, 6 do not improve (epoch 5 ties, which does not count) → stop after 6.
    assert_eq!(
        run_early_stopping(&es, &[1.0, 0.8, 0.5, 0.6, 0.5, 0.7, 0.1]),
        (Some(6), 3)
    );
    // Improvements keep resetting the count.
    assert_eq!(
        run_early_stopping(&es, &[1.0, 0.9, 0.95, 0.96, 0.8, 0.85, 0.86]),
        (None, 5)
    );
    // min_delta: 0.5 → 0.45 is not an improvement of more than 0.1.
    let es_delta = EarlyStoppingConfig {
        min_delta: 0.1,
        ..es.clone()
    };
    assert_eq!(
        run_early_stopping(&es_delta, &[0.5, 0.45, 0.42, 0.41]),
        (Some(4), 1)
    );
    // Accuracy is maximised.
    let es_acc = EarlyStoppingConfig {
        monitor: Monitor::ValAccuracy,
        patience: 2,
        ..es.clone()
    };
    assert_eq!(
        run_early_stopping(&es_acc, &[0.9, 0.95, 0.94, 0.95, 0.99]),
        (Some(4), 2)
    );
    // Disabled never stops.
    let off = EarlyStoppingConfig {
        enabled: false,
        ..es
    };
    assert_eq!(
        run_early_stopping(&off, &[1.0, 2.0, 3.0, 4.0, 5.0]),
        (None, 1)
    );
}

#[test]
fn every_optimizer_builds_and_takes_a_step() {
    use tch::nn::{self, Module};
    for kind in [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
        OptimizerKind::Rmsprop,
    ] {
        for (momentum, nesterov, amsgrad, centered) in
            [(0.0, false, false, false), (0.9, true, true, true)]
        {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let layer = nn::linear(vs.root() / "fc", 4, 2, Default::default());
            let cfg = OptimizerConfig {
                kind,
                lr: 0.1,
                weight_decay: 0.01,
                momentum,
                nesterov,
                amsgrad,
                centered,
                ..Default::default()
            };
            let mut opt = optim::build(&vs, &cfg).unwrap();
            let before = layer.ws.copy();
            let loss = layer
                .forward(&tch::Tensor::ones([3, 4], tch::kind::FLOAT_CPU))
                .sum(tch::Kind::Float);
            opt.backward_step(&loss);
            let moved = f64::try_from((&layer.ws - before).abs().sum(tch::Kind::Float)).unwrap();
            assert!(
                moved > 0.0,
                "{kind:?} momentum {momentum} did not move the weights"
            );
        }
    }
}

/// The seed's LeNet-5 from fixed initial weights (a deterministic function, not LibTorch's RNG, which tests
/// running in parallel threads move), trained five steps on deterministic batches with a decaying lr by the
/// optimizer `make` builds; its variables, sorted by name, and how far `fc1.weight` moved.
fn five_steps(
    make: &dyn Fn(&tch::nn::VarStore) -> optim::Optimizer,
) -> (Vec<(String, tch::Tensor)>, f64) {
    use lenet5_lab::config::ModelConfig;
    use tch::nn::ModuleT;
    const MNIST: lenet5_core::data::Shape = lenet5_core::data::Dataset::Mnist.shape();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = lenet5_core::nn::lenet5::lenet5(&vs.root(), &ModelConfig::default(), MNIST);
    let mut names: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (i, (_, v)) in names.iter().enumerate() {
            let values = (tch::Tensor::arange(v.numel() as i64, tch::kind::FLOAT_CPU)
                * (0.7 + i as f64))
                .sin();
            let fan_in = (v.size().iter().skip(1).product::<i64>().max(1)) as f64;
            v.shallow_clone()
                .copy_(&(values.view(v.size().as_slice()) / fan_in.sqrt()));
        }
    });
    let before = vs.variables()["fc1.weight"].copy();
    let mut opt = make(&vs);
    for step in 0..5 {
        let xs = (tch::Tensor::arange(8 * 784, tch::kind::FLOAT_CPU) * (0.37 + step as f64))
            .sin()
            .view([8, 1, 28, 28]);
        let ys = (tch::Tensor::arange(8, (tch::Kind::Int64, tch::Device::Cpu)) * (step + 3))
            .remainder(10);
        opt.set_lr(0.01 / (step + 1) as f64);
        opt.backward_step(&net.forward_t(&xs, true).cross_entropy_for_logits(&ys));
    }
    let moved = f64::try_from((&vs.variables()["fc1.weight"] - before).abs().max()).unwrap();
    (names, moved)
}

/// The largest difference between two runs' variables, naming the variable where it is.
fn largest_difference(a: &[(String, tch::Tensor)], b: &[(String, tch::Tensor)]) -> (f64, String) {
    (a.iter().zip(b))
        .map(|((name, x), (_, y))| (f64::try_from((x - y).abs().max()).unwrap(), name.clone()))
        .fold((0.0, String::new()), |m, d| if d.0 > m.0 { d } else { m })
}

#[test]
fn flat_adam_matches_libtorch_adam() {
    // FlatAdam's one Rust pass (the CPU's) and its LibTorch ops (other devices'), each against LibTorch.
    let cases = [(true, 0.0), (false, 0.01), (true, 0.001)];
    for ((amsgrad, weight_decay), one_pass) in
        cases.into_iter().flat_map(|c| [(c, true), (c, false)])
    {
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: 0.01,
            amsgrad,
            weight_decay,
            ..Default::default()
        };
        let (flat, moved) = five_steps(&|vs| {
            let mut opt = optim::build(vs, &cfg).unwrap();
            let optim::Optimizer::FlatAdam(adam) = &mut opt else {
                panic!("Adam is FlatAdam")
            };
            adam.one_pass = one_pass;
            opt
        });
        let (torch, _) = five_steps(&|vs| {
            let [beta1, beta2] = cfg.betas;
            let (wd, eps, amsgrad) = (cfg.weight_decay, cfg.eps, cfg.amsgrad);
            let adam = tch::nn::Adam {
                beta1,
                beta2,
                wd,
                eps,
                amsgrad,
            };
            optim::Optimizer::Torch(tch::nn::OptimizerConfig::build(adam, vs, cfg.lr).unwrap())
        });
        // Float rounding only (lerp_ vs mul_+add_, the step size folded into the numerator).
        let (diff, name) = largest_difference(&flat, &torch);
        assert!(
            diff < 1e-5,
            "amsgrad {amsgrad} wd {weight_decay} one pass {one_pass}: {name} differs by {diff}"
        );
        // The updates really moved the weights, so the comparison can fail.
        assert!(moved > 1e-3);
    }
}

#[test]
fn stateful_optimizers_match_libtorchs() {
    // SGD with momentum or Nesterov, AdamW and RMSprop as lenet5 writes them out (their state saved on
    // resume), each against LibTorch's own, over the options that change the arithmetic.
    let sgd = |momentum, nesterov, weight_decay| OptimizerConfig {
        kind: OptimizerKind::Sgd,
        lr: 0.05,
        momentum,
        nesterov,
        weight_decay,
        ..Default::default()
    };
    let adamw = |amsgrad| OptimizerConfig {
        kind: OptimizerKind::Adamw,
        lr: 0.01,
        amsgrad,
        weight_decay: 0.05,
        ..Default::default()
    };
    let rmsprop = |momentum, centered, weight_decay| OptimizerConfig {
        kind: OptimizerKind::Rmsprop,
        lr: 0.01,
        momentum,
        centered,
        weight_decay,
        ..Default::default()
    };
    let cases = [
        sgd(0.9, false, 0.0),
        sgd(0.9, true, 0.01),
        adamw(false),
        adamw(true),
        rmsprop(0.0, false, 0.0),
        rmsprop(0.5, true, 0.01),
    ];
    for cfg in cases {
        let (ours, moved) = five_steps(&|vs| {
            let opt = optim::build(vs, &cfg).unwrap();
            assert!(matches!(opt, optim::Optimizer::Stateful(_)), "{cfg:?}");
            opt
        });
        let (torch, _) = five_steps(&|vs| optim::build_torch(vs, &cfg).unwrap());
        let (diff, name) = largest_difference(&ours, &torch);
        // Rounding only: a thousandth of how far the weights moved (SGD's steps are small at this lr).
        assert!(
            diff < 1e-3 * moved,
            "{cfg:?}: {name} differs by {diff}, fc1 moved {moved}"
        );
    }
}

/// The plateau scheduler watches `lr_scheduler.monitor`, whichever metric early stopping watches.
#[test]
fn the_plateau_scheduler_watches_its_own_monitor() {
    // Epochs 1-4: both metrics improve (no cut). Epochs 5-7: the watched one stalls, the other improves
    // (a cut after patience 1, at the end of epoch 6).
    let improving = |e: usize| (1.0 / e as f64, 0.5 + 0.05 * e as f64);
    let series = |watched: Monitor, e: usize| -> (f64, f64) {
        let (loss, accuracy) = improving(e);
        match (watched, e > 4) {
            (_, false) => (loss, accuracy),
            (Monitor::ValLoss, true) => (improving(4).0, accuracy),
            (Monitor::ValAccuracy, true) => (loss, improving(4).1),
        }
    };
    for (watched, es_monitor) in [
        (Monitor::ValAccuracy, Monitor::ValLoss),
        (Monitor::ValLoss, Monitor::ValAccuracy),
        (Monitor::ValLoss, Monitor::ValLoss),
    ] {
        let mut config = Config::default();
        config.optimizer.lr = 1.0;
        config.lr_scheduler = LrSchedulerConfig {
            kind: SchedulerKind::Plateau,
            factor: 0.1,
            patience: 1,
            monitor: watched,
            ..Default::default()
        };
        config.trainer.early_stopping.monitor = es_monitor;
        let es = config.trainer.early_stopping.clone();
        let mut state = TrainState::new(&config);
        let mut lrs = vec![];
        for epoch in 1..=7 {
            let (loss, accuracy) = series(watched, epoch);
            let values = match es_monitor {
                Monitor::ValLoss => (loss, accuracy),
                Monitor::ValAccuracy => (accuracy, loss),
            };
            state.record(&es, (epoch, 7), values, 0.0);
            lrs.push(state.scheduler.lr);
        }
        let want = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1];
        assert!(
            close(&lrs, &want),
            "{watched:?} (early stopping: {es_monitor:?}): {lrs:?}"
        );
    }
}

#[test]
fn a_stateful_optimizers_state_round_trips_and_a_bad_one_changes_nothing() {
    // The state is kept in flat buffers and saved per parameter: what `state` writes, `load_state` must
    // put back; a missing or mis-sized tensor is refused by name, before anything moves.
    use lenet5_lab::config::ModelConfig;
    use std::collections::HashMap;
    use tch::nn::ModuleT;
    const MNIST: lenet5_core::data::Shape = lenet5_core::data::Dataset::Mnist.shape();
    let cfg = OptimizerConfig {
        kind: OptimizerKind::Adamw,
        lr: 0.01,
        amsgrad: true,
        ..Default::default()
    };
    let build = || {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = lenet5_core::nn::lenet5::lenet5(&vs.root(), &ModelConfig::default(), MNIST);
        let opt = optim::build(&vs, &cfg).unwrap();
        (vs, net, opt)
    };
    let states = |opt: &optim::Optimizer| -> HashMap<String, tch::Tensor> {
        opt.state().unwrap().into_iter().collect()
    };
    let (_vs, net, mut opt) = build();
    let xs = (tch::Tensor::arange(8 * 784, tch::kind::FLOAT_CPU) * 0.37)
        .sin()
        .view([8, 1, 28, 28]);
    let ys = tch::Tensor::arange(8, (tch::Kind::Int64, tch::Device::Cpu)).remainder(10);
    for _ in 0..2 {
        opt.backward_step(&net.forward_t(&xs, true).cross_entropy_for_logits(&ys));
    }
    let saved = states(&opt);
    let sum = |t: &tch::Tensor| f64::try_from(t.abs().sum(tch::Kind::Double)).unwrap();
    assert!(saved.len() > 10 && saved.values().any(|t| sum(t) > 0.0));

    let (_fresh_vs, _, mut fresh) = build();
    let zeros = states(&fresh);
    fresh.load_state(&saved).unwrap();
    let restored = states(&fresh);
    for (key, t) in &saved {
        assert!(t.equal(&restored[key]), "{key} restored differently");
    }

    let key = "4.exp_avg_sq";
    let without: HashMap<String, tch::Tensor> = (saved.iter())
        .filter(|(k, _)| k.as_str() != key)
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    let mut mis_sized: HashMap<String, tch::Tensor> = (without.iter())
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    mis_sized.insert(key.to_string(), saved[key].flatten(0, -1).narrow(0, 0, 1));
    for (bad, says) in [(without, "missing"), (mis_sized, "has shape")] {
        let (_again_vs, _, mut again) = build();
        let err = again.load_state(&bad).unwrap_err();
        assert!(err.contains(key) && err.contains(says), "{err}");
        let after = states(&again);
        for (k, t) in &zeros {
            assert!(t.equal(&after[k]), "{k} changed by a refused load");
        }
    }
}
