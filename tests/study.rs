//! A study report on synthetic data: per-variant references (`compare_to`), the identical-run guard, the
//! verdicts' rules, paired and Welch tests, a crossed grid's contrasts, runs shared across sweeps, one family
//! over several sweeps, groups.csv and comparisons.csv — and every number in them recomputed from the run
//! files with scipy and statsmodels (tests/check_study.py), as a reviewer would.
mod common;
use common::*;

#[test]
fn a_study_report_holds_to_scipy_and_statsmodels() {
    let dir = tiny_project("study_report", 300, 100, "");
    // Four seeds each. `same` differs from `base` only in what cannot change the numbers (early stopping
    // with a patience it never reaches in 3 epochs): identical runs. `sig` is compared with `fast`, and so is
    // `noval`, `fast` without a validation split (against the baseline too: `compare_to` lists both): no
    // convergence to measure, no log-rank test. `ref_only` is a reference only (`compare_to: []`). `sig`
    // trains without early stopping: its best checkpoint is also compared with its last.
    std::fs::write(
        dir.join("sweep.yaml"),
        [
            "base: tiny.yaml",
            "seeds: 4",
            "set: {trainer.epochs: 3, data.batch_size: 32, optimizer.lr: 0.0002}",
            "variants:",
            "  - {name: base}",
            "  - {name: fast, set: {optimizer.lr: 0.0005}}",
            "  - {name: same, set: {trainer.early_stopping.patience: 50}}",
            "  - {name: sig, set: {model.activation: sigmoid, trainer.early_stopping.enabled: false}, compare_to: fast}",
            "  - {name: noval, set: {optimizer.lr: 0.0005, data.validation_split: 0.0}, compare_to: [fast, base]}",
            "  - {name: ref_only, set: {optimizer.lr: 0.0003}, compare_to: []}",
            "baseline: base",
            "equivalence_margin: 5.0",
        ]
        .join("\n"),
    )
    .unwrap();
    ok(lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    ));
    let table = ok(lenet5(&dir, &["report", "study"]));
    let report = dir.join("study/report");
    let read = |name: &str| -> Vec<csv::StringRecord> {
        let mut r = csv::Reader::from_path(report.join(name)).unwrap();
        let header = r.headers().unwrap().clone();
        let mut rows = vec![header];
        rows.extend(r.records().map(|r| r.unwrap()));
        rows
    };
    let groups = read("groups.csv");
    for column in [
        "group",
        "n",
        "test_mean",
        "test_std",
        "test_ci_low",
        "test_ci_high",
        "train_accuracy_mean",
        "gap_mean",
        "epochs_to_98_median",
        "epochs_to_99_median",
        "test_set_se",
    ] {
        assert!(
            groups[0].iter().any(|h| h == column),
            "groups.csv lacks {column}"
        );
    }
    assert_eq!(groups.len(), 7, "a header and six groups");
    let median = groups[0]
        .iter()
        .position(|h| h == "epochs_to_98_median")
        .unwrap();
    let of = |group: &str| groups.iter().find(|r| &r[0] == group).unwrap()[median].to_string();
    assert_eq!(of("noval"), "NaN", "no validation split, no convergence");
    let noval_train: String = (1..=4)
        .map(|seed| {
            let run = dir.join(format!("study/runs/noval-seed{seed}/metrics.csv"));
            std::fs::read_to_string(run).unwrap()
        })
        .collect();
    assert!(
        noval_train
            .lines()
            .filter(|l| !l.starts_with("epoch"))
            .any(|l| {
                let val_accuracy: f64 = l.split(',').nth(5).unwrap().parse().unwrap();
                val_accuracy >= 0.98
            }),
        "a noval run's running training accuracy reaches 98%, so the guard is what empties its median:\n{noval_train}"
    );
    let comparisons = read("comparisons.csv");
    for column in [
        "group",
        "reference",
        "n",
        "n_ref",
        "delta",
        "ci_low",
        "ci_high",
        "p",
        "p_holm",
        "tost_p",
        "mdd",
        "verdict",
        "test_set_low",
        "test_set_high",
        "mcnemar_pairs",
        "mcnemar_pairs_differ",
    ] {
        assert!(
            comparisons[0].iter().any(|h| h == column),
            "comparisons.csv lacks {column}"
        );
    }
    let col = |name: &str| comparisons[0].iter().position(|h| h == name).unwrap();
    let row = |group: &str| comparisons.iter().find(|r| &r[0] == group).unwrap().clone();
    assert_eq!(
        &row("sig")[col("reference")],
        "fast",
        "compare_to names the reference"
    );
    assert_eq!(
        &row("fast")[col("reference")],
        "base",
        "the others, the baseline"
    );
    let references = |group: &str| -> Vec<String> {
        let rows = comparisons.iter().filter(|r| &r[0] == group);
        rows.map(|r| r[col("reference")].to_string()).collect()
    };
    assert_eq!(
        references("noval"),
        ["fast", "base"],
        "a list: one row each"
    );
    assert!(references("ref_only").is_empty(), "[]: a reference only");
    assert_eq!(&row("same")[col("verdict")], "identical runs (not tested)");
    // Only `sig` trained without early stopping: one selection row, tested unless every run's best
    // checkpoint was its last.
    let selection = row("sig @ best_val_loss");
    assert_eq!(&selection[col("reference")], "sig @ last");
    let selection_tested = selection[col("verdict")] != *"identical runs (not tested)";
    let family = 4 + usize::from(selection_tested);
    assert!(comparisons.iter().all(|r| !r[0].contains("base @")));
    assert_eq!(
        row("fast")[col("family")],
        family.to_string(),
        "identical runs leave the family"
    );
    assert_eq!(&row("noval")[col("logrank_98_p")], "NaN");
    assert_ne!(&row("fast")[col("logrank_98_p")], "NaN");
    assert!(
        table.contains("identical runs (not tested)") && table.contains("| base | 4 |"),
        "{table}"
    );
    let markdown = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        markdown.contains("## The test set's own sampling error")
            && report.join("variance.csv").exists(),
        "report.md has the test set's section, and variance.csv is written"
    );
    assert!(
        markdown.contains("**Verdicts**")
            && markdown.contains(&format!(
                "{family} tested comparisons below form one family"
            ))
            && markdown.contains("| noval | 4 |")
    );
    let table_row = |group: &str| {
        let start = format!("| {group} | 4 |");
        markdown
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap()
            .to_string()
    };
    assert!(table_row("noval").ends_with("| no validation split | no validation split |"));
    assert!(!table_row("fast").contains("no validation split"));
    let curves = std::fs::read_to_string(report.join("curves.svg")).unwrap();
    assert!(
        curves.contains("\nnoval (training accuracy: no validation split)\n")
            && curves.contains("\nfast\n"),
        "the curves chart names each group's line, and what a line without validation is"
    );

    if let Some(python) = python_with(
        "a_study_report_holds_to_scipy_and_statsmodels",
        "scipy, statsmodels",
    ) {
        check_study(&python, &report, &[dir.join("study")]);
    }
}

/// tests/check_study.py REPORT SWEEPS...: scipy and statsmodels recompute every number from the run files.
fn check_study(python: &str, report: &std::path::Path, sweeps: &[std::path::PathBuf]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = vec![
        root.join("tests/check_study.py").display().to_string(),
        report.display().to_string(),
    ];
    args.extend(sweeps.iter().map(|s| s.display().to_string()));
    let out = run_python(python, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("checked "), "{out}");
}

/// `lenet5 report SWEEPS... --out OUT`; asserts OUT's groups.csv and comparisons.csv are `committed`'s, and
/// (with python) that check_study.py agrees with every number; returns the verdicts.
fn reproduce(
    sweeps: &[std::path::PathBuf],
    committed: &std::path::Path,
    out: &std::path::Path,
    python: Option<&str>,
) -> Vec<String> {
    reproduce_crossed(sweeps, &[], committed, out, python)
}

/// [`reproduce`] with `--cross KEYS` (crossed.csv held to the committed one too, when there are keys).
fn reproduce_crossed(
    sweeps: &[std::path::PathBuf],
    cross: &[&str],
    committed: &std::path::Path,
    out: &std::path::Path,
    python: Option<&str>,
) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shown: Vec<String> = sweeps.iter().map(|s| s.display().to_string()).collect();
    let mut args = vec!["report".to_string()];
    args.extend(shown.iter().cloned());
    args.extend(["--out".into(), out.display().to_string()]);
    if !cross.is_empty() {
        args.push("--cross".into());
        args.extend(cross.iter().map(|k| k.to_string()));
    }
    ok(lenet5(
        root,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let crossed = (!cross.is_empty()).then_some("crossed.csv");
    for file in ["groups.csv", "comparisons.csv"].into_iter().chain(crossed) {
        let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
        assert!(
            read(out.join(file)) == read(committed.join(file)),
            "{}/{file} is not what `lenet5 report` makes of its runs today: regenerate it",
            committed.display()
        );
    }
    if let Some(python) = python {
        check_study(python, out, sweeps);
    }
    let comparisons = read_csv(&out.join("comparisons.csv"));
    let at = comparisons[0].iter().position(|h| h == "verdict").unwrap();
    comparisons[1..].iter().map(|r| r[at].to_string()).collect()
}

/// The shipped studies (results/study-2026-12/*): their committed groups.csv and comparisons.csv are what
/// today's `lenet5 report` makes of their run files, so are those of their one-family report
/// (results/study-2026-12/report), and scipy/statsmodels agree with every number and verdict in them — real
/// data, where every verdict the rules know occurs (differs, negligible, equivalent, inconclusive,
/// identical runs).
#[test]
fn the_shipped_studies_hold_to_scipy_and_statsmodels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let studies = root.join("results/study-2026-12");
    let mut names: Vec<String> = std::fs::read_dir(&studies)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| studies.join(n).join("report/comparisons.csv").exists())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "shipped studies with reports: {names:?}");
    let python = python_with(
        "the_shipped_studies_hold_to_scipy_and_statsmodels",
        "scipy, statsmodels",
    );
    let scratch = scratch("shipped_studies");
    let mut verdicts = std::collections::BTreeSet::new();
    for name in &names {
        let sweep = studies.join(name);
        verdicts.extend(reproduce(
            std::slice::from_ref(&sweep),
            &sweep.join("report"),
            &scratch.join(name),
            python.as_deref(),
        ));
    }
    // One family over all of them: the report the README's and docs/results.md's claims come from.
    let all: Vec<_> = names.iter().map(|n| studies.join(n)).collect();
    verdicts.extend(reproduce(
        &all,
        &studies.join("report"),
        &scratch.join("all"),
        python.as_deref(),
    ));
    for verdict in [
        "differs",
        "negligible",
        "equivalent",
        "inconclusive",
        "identical runs (not tested)",
    ] {
        assert!(
            verdicts.contains(verdict),
            "no {verdict} verdict in {verdicts:?}"
        );
    }
}

/// The tuned studies the README and docs/results.md cite — MNIST (results/study-tuned, and its regularizer
/// arms) and its Fashion-MNIST replication (results/study-tuned-fashion*: 15 epochs, the regularizer arms,
/// 45 epochs), and the confirmation of its activation × pooling crossing on new seeds
/// (results/study-activation-pooling) — their committed reports are what today's `lenet5 report`
/// makes of their run files (the tuning trials kept apart from the groups), and scipy/statsmodels agree
/// with every number and verdict in them.
#[test]
fn the_tuned_studies_hold_to_scipy_and_statsmodels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = python_with(
        "the_tuned_studies_hold_to_scipy_and_statsmodels",
        "scipy, statsmodels",
    );
    // (study, sweep directory, --cross keys, arms compared with a reference + checkpoint-selection rows)
    let crossing: &[&str] = &["model.activation", "model.pooling"];
    let studies = [
        ("results/study-tuned", "mnist", crossing, 24 + 25),
        ("results/study-tuned-fashion", "fashion-mnist", &[], 5 + 6),
        (
            "results/study-tuned-fashion-regularizers",
            "fashion-mnist",
            &[],
            4 + 5,
        ),
        (
            "results/study-tuned-fashion-45",
            "fashion-mnist",
            &[],
            3 + 4,
        ),
        ("results/study-tuned-regularizers", "mnist", &[], 3 + 4),
        ("results/study-activation-pooling", "mnist", crossing, 5 + 6),
    ];
    for (name, sweep, cross, rows) in studies {
        let study = root.join(name);
        let out = scratch(&name.replace("results/", ""));
        let verdicts = reproduce_crossed(
            &[study.join(sweep)],
            cross,
            &study.join("report"),
            &out,
            python.as_deref(),
        );
        assert_eq!(verdicts.len(), rows, "{sweep}: {verdicts:?}");
        assert!(
            verdicts.iter().any(|v| v == "differs"),
            "{sweep}: {verdicts:?}"
        );
        if !cross.is_empty() {
            // Two activations against ReLU, max pooling, and two interactions with it.
            assert_eq!(read_csv(&out.join("crossed.csv")).len(), 1 + 5);
        }
    }
    // The MNIST study and its regularizer arms as one family (two sweeps both called mnist: each is
    // named parent/mnist).
    let joint = root.join("results/study-tuned-regularizers/report-with-mnist");
    let sweeps = [
        root.join("results/study-tuned/mnist"),
        root.join("results/study-tuned-regularizers/mnist"),
    ];
    let verdicts = reproduce(
        &sweeps,
        &joint,
        &scratch("tuned_mnist_joint"),
        python.as_deref(),
    );
    assert_eq!(verdicts.len(), 24 + 25 + 3 + 4, "{verdicts:?}");
    // The modern recipe taken apart (not tuned): both datasets' sweeps as one family, 8 comparisons and 8
    // checkpoint rows each.
    let ablation = root.join("results/study-modern-ablation");
    let sweeps = [ablation.join("mnist"), ablation.join("fashion-mnist")];
    let verdicts = reproduce(
        &sweeps,
        &ablation.join("report"),
        &scratch("modern_ablation"),
        python.as_deref(),
    );
    assert_eq!(verdicts.len(), 2 * (8 + 8), "{verdicts:?}");
    assert!(verdicts.iter().any(|v| v == "negligible"), "{verdicts:?}");
    // Its missing cell, dropout × distortions on Fashion-MNIST: the new cell against each single removal,
    // 4 checkpoint rows, and the crossing (two main effects, one interaction) as a family of its own.
    let crossed = root.join("results/study-modern-ablation-crossed");
    let out = scratch("modern_ablation_crossed");
    let verdicts = reproduce_crossed(
        &[crossed.join("fashion-mnist")],
        &["model.dropout", "data.augment"],
        &crossed.join("report"),
        &out,
        python.as_deref(),
    );
    assert_eq!(verdicts.len(), 2 + 4, "{verdicts:?}");
    assert_eq!(read_csv(&out.join("crossed.csv")).len(), 1 + 3);
}

/// `report --cross` refuses, in one line and before writing anything, keys that are not config keys or are
/// given twice, run directories instead of sweeps, and a sweep whose variants do not cross the keys.
#[test]
fn a_crossing_that_cannot_be_read_is_refused_in_one_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = scratch("crossing_refused").join("report");
    let sweep = root.join("results/study-tuned/mnist");
    let run = root.join("results/runs/relu_adam");
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec!["model.activation", "model.pool"],
            "Error: --cross model.pool: not a config key or section".into(),
        ),
        (
            vec!["data.augment", "data.augment.rotate"],
            "Error: --cross data.augment.rotate: the same key as data.augment, or inside it".into(),
        ),
        (
            vec!["model.activation", "model.init"],
            format!(
                "Error: {}: --cross: no variant has model.activation=tanh, model.init=default and the base \
                 otherwise",
                sweep.display()
            ),
        ),
        (
            vec!["model.activation", "model.pooling"],
            "Error: --cross tests a crossing over a sweep's variants: give sweep directories"
                .into(),
        ),
    ];
    for (i, (keys, want)) in cases.iter().enumerate() {
        let dir = if i == 3 { &run } else { &sweep };
        let mut args = vec![
            "report",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--cross",
        ];
        args.extend(keys);
        let refused = lenet5(root, &args);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert_eq!(stderr(&refused).trim(), want);
        assert!(!out.exists(), "{keys:?} wrote {}", out.display());
    }
}

/// A report without `--cross` into a directory that held one's crossing removes its crossed.csv: what the
/// directory holds is this report's.
#[test]
fn a_report_without_a_crossing_leaves_none_behind() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = scratch("crossing_stale").join("report");
    let sweep = root.join("results/study-tuned/mnist");
    let (sweep, out_arg) = (sweep.to_str().unwrap(), out.to_str().unwrap());
    let cross = ["--cross", "model.activation", "model.pooling"];
    let table = ok(lenet5(
        root,
        &[&["report", sweep, "--out", out_arg][..], &cross].concat(),
    ));
    assert!(table.contains(
        "crossed after the runs (model.activation × model.pooling), a family of its own:"
    ));
    assert!(out.join("crossed.csv").exists());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for part in [
        "--cross model.activation model.pooling --out",
        "## Crossed after the runs: `model.activation` × `model.pooling`",
        "The 5 tested rows of the 5 below are a family of their own",
        "| crossed: model.activation=tanh × model.pooling=max | crossed: model.activation=relu × model.pooling=avg |",
    ] {
        assert!(report.contains(part), "{part}");
    }
    let table = ok(lenet5(root, &["report", sweep, "--out", out_arg]));
    assert!(!table.contains("crossed after the runs"));
    assert!(!out.join("crossed.csv").exists());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!report.contains("Crossed after the runs") && !report.contains("--cross"));
    // What cannot be removed is said, not passed over.
    std::fs::create_dir(out.join("crossed.csv")).unwrap();
    let refused = lenet5(root, &["report", sweep, "--out", out_arg]);
    assert_ne!(refused.status.code(), Some(0));
    let crossed = out.join("crossed.csv");
    assert!(
        stderr(&refused).starts_with(&format!("Error: cannot remove {}: ", crossed.display())),
        "{}",
        stderr(&refused)
    );
}

/// Reads a report's CSV: the header, then the rows.
fn read_csv(path: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let mut rows = vec![header];
    rows.extend(r.records().map(|r| r.unwrap()));
    rows
}

/// Two sweeps in one report: a 2×3 grid over three shared seeds (paired comparisons, main effects and
/// interactions), and a second sweep whose `copy` recomputes the grid's first cell (shared runs across
/// sweeps), whose `near` differs from `copy` only in an early stopping that never acts (identical), and
/// whose `shifted` runs other seeds (Welch), with a margin relative to the reference's error rate.
#[test]
fn two_sweeps_and_a_crossed_grid_make_one_family_held_to_scipy() {
    let dir = tiny_project("study_family", 200, 100, "");
    let common = "set: {trainer.epochs: 2, data.batch_size: 32, optimizer.lr: 0.0002}";
    std::fs::write(
        dir.join("grid.yaml"),
        format!(
            "base: tiny.yaml\nseeds: 3\n{common}\ngrid:\n  model.pooling: [avg, max]\n  optimizer.lr: [0.0002, 0.0005, 0.001]\n\
             baseline: base,model.pooling=avg,optimizer.lr=0.0002\nequivalence_margin: 5.0\nmargin_reason: wide on purpose\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("copy.yaml"),
        format!(
            "base: tiny.yaml\nseeds: 3\n{common}\nvariants:\n  - {{name: copy}}\
             \n  - {{name: near, set: {{trainer.early_stopping.patience: 50}}}}\
             \n  - {{name: shifted, seeds: [2, 3, 4], set: {{optimizer.lr: 0.001}}}}\n\
             baseline: copy\nequivalence_margin: \"50%\"\n"
        ),
    )
    .unwrap();
    for name in ["grid", "copy"] {
        ok(lenet5(
            &dir,
            &[
                "sweep",
                &format!("{name}.yaml"),
                "--out",
                name,
                "--jobs",
                "2",
            ],
        ));
    }
    let table = ok(lenet5(&dir, &["report", "grid", "copy", "--out", "both"]));
    // One sweep given twice is refused, in one line (two of one name: commands.rs' unit test).
    let same = lenet5(&dir, &["report", "grid", "./grid", "--out", "twice"]);
    assert_eq!(same.status.code(), Some(2), "{}", stderr(&same));
    assert!(
        stderr(&same).trim() == "Error: ./grid: the same sweep as grid; give each sweep once",
        "{}",
        stderr(&same)
    );
    assert!(!dir.join("twice").exists());
    let comparisons = read_csv(&dir.join("both/comparisons.csv"));
    let col = |name: &str| comparisons[0].iter().position(|h| h == name).unwrap();
    let row = |group: &str| {
        let found = comparisons.iter().find(|r| &r[0] == group);
        found
            .unwrap_or_else(|| panic!("no row {group}: {comparisons:?}"))
            .clone()
    };
    // 5 cells against the baseline, main effects 1 + 2, interactions 1 × 2, and shifted: 11, one family.
    assert_eq!(&row("copy/shifted")[col("family")], "11");
    assert_eq!(
        &row("grid/base,model.pooling=max,optimizer.lr=0.001")[col("test")],
        "paired"
    );
    assert_eq!(
        &row("copy/shifted")[col("test")],
        "welch",
        "2 of 3 seeds shared: not a paired design"
    );
    assert_eq!(&row("copy/shifted")[col("n_pairs")], "2");
    assert_eq!(
        &row("copy/near")[col("verdict")],
        "identical runs (not tested)"
    );
    let interaction = row("grid/base: model.pooling=max × optimizer.lr=0.001");
    assert_eq!(&interaction[col("test")], "paired_contrast");
    assert_eq!(
        &interaction[col("reference")],
        "grid/base: model.pooling=avg × optimizer.lr=0.0002"
    );
    assert_eq!(
        &row("grid/base: optimizer.lr=0.0005")[col("test")],
        "paired_contrast"
    );
    // The relative margin: 50% of the reference's error rate.
    let groups = read_csv(&dir.join("both/groups.csv"));
    let copy_mean: f64 = groups.iter().find(|r| &r[0] == "copy/copy").unwrap()[2]
        .parse()
        .unwrap();
    let margin: f64 = row("copy/shifted")[col("margin")].parse().unwrap();
    assert!(
        (margin - 0.5 * (100.0 - copy_mean)).abs() < 1e-9,
        "{margin} {copy_mean}"
    );
    assert_eq!(
        &row("grid/base,model.pooling=max,optimizer.lr=0.0002")[col("margin")],
        "5.0"
    );
    let markdown = std::fs::read_to_string(dir.join("both/report.md")).unwrap();
    assert!(
        markdown
            .contains("- copy/copy and grid/base,model.pooling=avg,optimizer.lr=0.0002: 3 runs")
            || markdown.contains(
                "- grid/base,model.pooling=avg,optimizer.lr=0.0002 and copy/copy: 3 runs"
            ),
        "runs shared across the sweeps are named:\n{markdown}"
    );
    assert!(
        markdown.contains("`grid`: ±5 points, because: wide on purpose")
            && markdown.contains(
                "`copy`: ±50% of the reference's error rate (the sweep file gives no reason for it)"
            )
            && markdown
                .contains("11 tested comparisons below form one family, over all the sweeps"),
        "{markdown}"
    );
    assert!(table.contains("| paired contrast |"), "{table}");
    if let Some(python) = python_with(
        "two_sweeps_and_a_crossed_grid_make_one_family_held_to_scipy",
        "scipy, statsmodels",
    ) {
        check_study(
            &python,
            &dir.join("both"),
            &[dir.join("grid"), dir.join("copy")],
        );
    }
}
