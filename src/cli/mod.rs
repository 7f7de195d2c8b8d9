//! The command line: the clap definitions ([`args`]) and a thin dispatch that turns them into
//! [`commands`] calls and prints what those return. Every flag that changes the config becomes an
//! `Override`, applied after the config file in one path for every subcommand: defaults → file → `--set` →
//! named flags.

mod args;
pub mod commands;

pub use args::{Cli, Command};

use anyhow::{Context, Result};
use args::{
    ExportArgs, LrFindArgs, PredictArgs, ReportArgs, ServeArgs, SweepArgs, TestArgs, TrackArgs,
    TrainArgs,
};
use clap::CommandFactory;
use lenet5_core::run::{NewRunDir, Start};
use lenet5_lab::UsageError;
use std::path::PathBuf;

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train(args),
        Command::Test(args) => test(args),
        Command::Predict(args) => predict(args),
        Command::Export(args) => export(args),
        Command::Report(args) => report(args),
        Command::Sweep(args) => run_sweep(args),
        Command::LrFind(args) => lr_find(args),
        Command::Serve(args) => serve(args),
        Command::Fetch(args) => {
            let dir = commands::fetch(&args.dataset, args.dir.as_deref())?;
            println!("{} is in {}", args.dataset, dir.display());
            Ok(())
        }
        Command::Track(args) => track(args),
        Command::Completions { shell } => completions(shell),
        Command::Man { out } => man(out),
        Command::SweepTask(args) => {
            let options = args.local.options();
            let summary =
                commands::sweep_task(&args.list, args.index, args.runs_per_task, &options)?;
            summary.failure().map_or(Ok(()), Err)
        }
        Command::Config(args) => {
            let overrides = args.flags.overrides()?;
            print!(
                "{}",
                commands::resolved_config(args.config.as_deref(), &overrides)?
            );
            Ok(())
        }
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let overrides = args.flags.overrides()?;
    let start = match (args.resume, args.config) {
        (Some(dir), _) => Start::Resume { dir, overrides },
        (None, Some(path)) => {
            let config = lenet5_lab::config::load(&path, &overrides)?;
            let dir = match (args.run_dir, args.name) {
                (Some(dir), _) => NewRunDir::At(dir),
                (None, Some(name)) => NewRunDir::Named(name),
                (None, None) => NewRunDir::Named(lenet5_lab::rundir::dir::stem(&path, "run")),
            };
            Start::New { config, dir }
        }
        (None, None) => unreachable!("clap requires CONFIG or --resume"),
    };
    let outcome = commands::train(start)?;
    println!("{}", train_summary(&outcome));
    Ok(())
}

/// The line `train` ends with: the test result, the best epoch and where the run is.
pub fn train_summary(outcome: &lenet5_core::run::TrainOutcome) -> String {
    let s = &outcome.state;
    format!(
        "test: loss {}  accuracy {:.2}%  (best epoch {} of {}, {:.0}s training) -> {}",
        lenet5_lab::number(outcome.test.loss),
        100.0 * outcome.test.accuracy,
        s.best_epoch,
        s.epoch,
        s.train_seconds,
        outcome.run.path.display()
    )
}

fn test(args: TestArgs) -> Result<()> {
    let mistakes = (args.mistakes).map(|n| commands::MistakesRequest {
        n,
        out: args.mistakes_out,
    });
    let report = commands::test(&args.model.source(args.run_dir)?, mistakes.as_ref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn export(args: ExportArgs) -> Result<()> {
    let source = args.model.source(args.run_dir)?;
    let exported = commands::export(&source, args.format, args.out.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&exported)?);
    } else {
        println!(
            "wrote {} ({}, {} bytes) from {}",
            exported.out.display(),
            exported.format,
            exported.bytes,
            exported.checkpoint.display()
        );
    }
    Ok(())
}

fn track(args: TrackArgs) -> Result<()> {
    let tracked = commands::track(&args.run_dirs, args.tracking_uri, args.experiment)?;
    let mut failed = 0;
    for (dir, outcome) in &tracked {
        match outcome {
            Ok(r) => println!(
                "{} -> {} run {} ({} epochs{})",
                dir.display(),
                r.tracking_uri,
                r.run_id,
                r.logged_epochs,
                if r.finished { ", finished" } else { "" }
            ),
            Err(e) => {
                failed += 1;
                eprintln!("Error: {}: {e:#}", dir.display());
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(anyhow::anyhow!("{n} of {} runs not tracked", tracked.len())),
    }
}

fn predict(args: PredictArgs) -> Result<()> {
    use lenet5_core::run::explain::Method;
    let explain = (args.explain.as_deref()).map(|name| commands::ExplainRequest {
        method: match name {
            "saliency" => Method::Saliency,
            _ => Method::IntegratedGradients { steps: args.steps },
        },
        out: args.explain_out.clone(),
    });
    let found = commands::predict(&args.model.source(None)?, &args.paths, explain.as_ref())?;
    for f in &found.failed {
        eprintln!("Error: {}", f.error);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        eprintln!("{}", found.source_text());
        found
            .predictions
            .iter()
            .for_each(|p| println!("{}", p.to_text()));
        for e in &found.explanations {
            eprintln!(
                "{}: {} of digit {} -> {} (sum {:.4}, f(image) − f(black) {:.4}){}",
                e.file,
                e.method,
                e.target,
                e.heatmap.display(),
                e.sum,
                e.delta,
                match e.method == "integrated-gradients"
                    && (e.sum - e.delta).abs() > 0.01 * e.delta.abs()
                {
                    true => "; completeness off by more than 1%: raise --steps",
                    false => "",
                }
            );
        }
    }
    found.failure().map_or(Ok(()), Err)
}

fn report(args: ReportArgs) -> Result<()> {
    use lenet5_lab::study::{analysis, runs, sweep};
    match args.run_dirs.as_slice() {
        dirs if dirs.iter().all(|d| sweep::is_sweep_dir(d)) => {
            let out = match dirs {
                [dir] => args.out.unwrap_or_else(|| dir.join("report")),
                _ => args.out.unwrap_or_else(|| PathBuf::from("report")),
            };
            let report = commands::study_report(dirs, &args.cross, &out)?;
            print!("{}", analysis::render_table(&report.groups));
            println!();
            print!("{}", analysis::render_comparisons(&report.comparisons));
            if !report.crossed.is_empty() {
                println!(
                    "\ncrossed after the runs ({}), a family of its own:",
                    args.cross.join(" × ")
                );
                print!("{}", analysis::render_comparisons(&report.crossed));
            }
            eprintln!("wrote {} files to {}", report.written.len(), out.display());
        }
        _ if !args.cross.is_empty() => Err(UsageError::error(
            "--cross tests a crossing over a sweep's variants: give sweep directories",
        ))?,
        dirs => {
            let out = args.out.unwrap_or_else(|| PathBuf::from("report"));
            let outcome = commands::report(dirs, &out)?;
            print!(
                "{}",
                runs::render_table(&outcome.runs, runs::TableEpoch::Best)
            );
            for run in outcome.runs.iter().filter(|r| !r.status().is_finished()) {
                eprintln!("note: {} is {}", run.name, run.status());
            }
            eprintln!("wrote {} files to {}", outcome.written.len(), out.display());
        }
    }
    Ok(())
}

fn serve(args: ServeArgs) -> Result<()> {
    let runs = crate::serve::api::load(&args.run_dirs, &args.runs_dir, &args.flags.overrides()?)?;
    let options = crate::serve::Options {
        host: args.host,
        port: args.port,
        timeout: std::time::Duration::from_secs(args.timeout),
    };
    crate::serve::serve(runs, &options)?;
    // A stopped server has nothing left to write; LibTorch's static destructors would hold the exit for a
    // few hundred milliseconds on a busy machine (its operator registry), past `serve`'s one-second promise.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: ends the process; nothing after this runs, and every output is flushed above (stderr is not
    // buffered).
    unsafe { libc::_exit(0) }
}

/// clap_complete's script, and for bash a completion function of ours in front of it that offers `.yaml`
/// files and directories where `train` and `config` take their CONFIG file (clap_complete offers only
/// options there; zsh and fish complete any file).
fn completions(shell: clap_complete::Shell) -> Result<()> {
    // Into memory first: clap_complete panics on a failed write (e.g. a closed pipe).
    let mut script = vec![];
    clap_complete::generate(shell, &mut Cli::command(), "lenet5", &mut script);
    if shell == clap_complete::Shell::Bash {
        script.extend_from_slice(BASH_CONFIG_FILES.as_bytes());
    }
    Ok(std::io::Write::write_all(&mut std::io::stdout(), &script)?)
}

/// Registered after clap_complete's `_lenet5`, which it calls for everything but a CONFIG position.
const BASH_CONFIG_FILES: &str = r#"
_lenet5_config_files() {
    if [[ ${COMP_CWORD} -eq 2 && ( ${COMP_WORDS[1]} == train || ${COMP_WORDS[1]} == config ) && ${COMP_WORDS[2]} != -* ]]; then
        COMPREPLY=( $(compgen -f -X '!*.yaml' -- "${COMP_WORDS[2]}") $(compgen -d -- "${COMP_WORDS[2]}") )
        return 0
    fi
    _lenet5 "$@"
}
complete -F _lenet5_config_files -o nosort -o bashdefault -o default lenet5
"#;

fn man(out: Option<PathBuf>) -> Result<()> {
    let Some(dir) = out else {
        return Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, page) in man_pages()? {
        lenet5_lab::sys::atomic::write(&dir.join(&name), &page)?;
    }
    eprintln!("wrote the man pages to {}", dir.display());
    Ok(())
}

fn lr_find(args: LrFindArgs) -> Result<()> {
    let test = lenet5_lab::lr_range::RangeTest {
        min_lr: args.min_lr,
        max_lr: args.max_lr,
        steps: args.steps,
    };
    let out = args.out.unwrap_or_else(|| {
        let stem = lenet5_lab::rundir::dir::stem(&args.config, "config");
        PathBuf::from(lenet5_lab::rundir::dir::RUNS_DIR).join(format!("lr_find-{stem}"))
    });
    let found = commands::lr_find(&args.config, &args.flags.overrides()?, &test, &out)?;
    let steps = found.points.len();
    let end = if found.diverged {
        "diverged"
    } else {
        "did not diverge"
    };
    println!(
        "{steps} batches, the smoothed loss {end}; wrote lr_find.csv, .svg, .png to {}",
        out.display()
    );
    let lr = |i: Option<usize>| i.map(|i| found.points[i].lr);
    let (valley, steepest) = (lr(found.suggestions.valley), lr(found.suggestions.steepest));
    if let Some(lr) = steepest {
        println!(
            "steepest descent of the smoothed loss (Lightning's rule): {}",
            lenet5_lab::number(lr)
        );
    }
    match valley.or(steepest) {
        Some(lr) => {
            let rule = if valley.is_some() {
                "valley (fastai's rule)"
            } else {
                "steepest descent"
            };
            println!("suggested, by {rule}: {}", lenet5_lab::number(lr));
            println!("--set optimizer.lr={lr:.3e}");
        }
        None => println!(
            "too few batches before divergence for a suggestion: lower --min-lr or --max-lr"
        ),
    }
    Ok(())
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    use commands::{SweepMode, SweepOutcome};
    let mode = if args.dry_run {
        SweepMode::DryRun
    } else if args.slurm {
        let options = lenet5_lab::study::slurm::Options {
            partition: args.partition,
            time: args.time,
            cpus_per_task: args.cpus_per_task,
            gpus_per_task: args.gpus_per_task,
            max_parallel: args.max_parallel,
            runs_per_task: args.runs_per_task,
            account: args.account,
            qos: args.qos,
            mem: args.mem,
            sbatch_args: args.sbatch_args,
            setup: args.setup,
        };
        if let Some(partition) = options.gpu_partition_without_gpus() {
            eprintln!(
                "warning: partition {partition} looks like a GPU partition, but no GPUs are asked for: the runs will train on the CPU; add --gpus-per-task N"
            );
        }
        SweepMode::Slurm {
            options,
            submit: args.submit,
        }
    } else {
        SweepMode::Local(args.local.options())
    };
    let (sweep, outcome) = commands::sweep(&args.sweep, args.out.as_deref(), mode)?;
    let dir = sweep.dir.display();
    let lenet5 = lenet5_lab::command_name();
    match outcome {
        SweepOutcome::DryRun => {
            for run in &sweep.runs {
                println!("{}  seed {}  {}", run.id, run.seed, run.overrides.join(" "));
            }
            println!("{} runs into {dir}", sweep.runs.len());
            if sweep.runs.iter().any(|r| r.trial.is_some()) {
                println!("then each tuned variant's seeds, at its chosen trial's values");
            }
        }
        SweepOutcome::Local(summary) => {
            let reused = match summary.reused {
                0 => String::new(),
                n => format!(" ({n} copied from identical runs, not trained again)"),
            };
            println!(
                "{} of {} runs finished in {dir}{reused}; report: {lenet5} report {dir}",
                summary.finished,
                sweep.runs.len()
            );
            if let Some(e) = summary.failure() {
                return Err(e);
            }
        }
        SweepOutcome::Slurm { job: None, .. } => {
            println!("every run in {dir} is finished; report: {lenet5} report {dir}")
        }
        SweepOutcome::Slurm {
            job: Some(job),
            job_id,
        } => {
            println!("wrote {} ({} array tasks)", job.script.display(), job.tasks);
            match job_id {
                Some(id) => println!("submitted job {id}; when it is done: {lenet5} report {dir}"),
                None => println!("submit it with: sbatch {}", job.script.display()),
            }
        }
    }
    Ok(())
}

/// `lenet5.1` and one `lenet5-SUBCOMMAND.1` per visible subcommand (the main page refers to them).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let render = |cmd: clap::Command| -> Result<Vec<u8>> {
        let mut page = vec![];
        clap_mangen::Man::new(cmd).render(&mut page)?;
        Ok(page)
    };
    let mut cli = Cli::command();
    cli.build();
    let mut pages = vec![("lenet5.1".to_string(), render(cli.clone())?)];
    for sub in cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("lenet5-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone()))?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}
