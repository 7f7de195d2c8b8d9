//! A finished run scored on the test set under each checkpoint selection — the best validation loss, the
//! best validation accuracy, the last epoch — with every image's answer kept (`predictions.csv.gz`); the
//! monitored best stays test.json's headline. Shared by the end of training and `lenet5 test`.

use super::{evaluate, temperature, weights};
use crate::data::Split;
use crate::nn::Net;
use anyhow::Result;
use lenet5_lab::config::Monitor;
use lenet5_lab::rundir::dir::{self, BEST_WEIGHTS, LAST_WEIGHTS, PREDICTIONS_FILE, RunDir};
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::rundir::selections::{Predictions, Scored, Selection};
use lenet5_lab::rundir::state::TrainState;
use tch::nn::VarStore;

/// Loads each selection's checkpoint into `vs` (`net`'s variables), scores it on `test`, and writes
/// predictions.csv.gz and then test.json. Returns the headline (the monitored best), with its calibration
/// after temperature scaling fitted on `validation` when there is one; `vs` ends holding it.
pub fn score_selections(
    (vs, net): (&mut VarStore, &Net),
    run: &RunDir,
    (state, monitor): (&TrainState, Monitor),
    (test, validation): (&Split, Option<&Split>),
) -> Result<Evaluation> {
    let labels: Vec<i64> = Vec::try_from(test.labels.to_device(tch::Device::Cpu))?;
    let mut table = Predictions {
        labels: labels.into_iter().map(|l| l as u8).collect(),
        columns: vec![],
    };
    let (mut scored, mut headline) = (vec![], None);
    for selection in Selection::ALL {
        let Some((file, epoch)) = checkpoint(selection, run, state, monitor) else {
            continue;
        };
        weights::load(vs, &run.file(file))?;
        let (evaluation, answers) = evaluate::evaluate_with_answers(net, test);
        scored.push(Scored {
            selection,
            epoch,
            checkpoint: file.to_string(),
            loss: evaluation.loss,
            accuracy: evaluation.accuracy,
        });
        table.columns.push((selection, answers));
        if file == BEST_WEIGHTS {
            headline = Some(evaluation);
        }
    }
    weights::load(vs, &run.file(BEST_WEIGHTS))?;
    let mut headline = match headline {
        Some(h) => h,
        None => evaluate::evaluate(net, test),
    };
    let validation = validation.filter(|v| !v.is_empty());
    headline.temperature_scaled = validation.map(|v| temperature::scale(net, v, test));
    table.write(&run.file(PREDICTIONS_FILE))?;
    run.write_test(&headline, &scored)?;
    Ok(headline)
}

/// The checkpoint file and epoch of `selection`, when the run kept it.
fn checkpoint(
    selection: Selection,
    run: &RunDir,
    state: &TrainState,
    monitor: Monitor,
) -> Option<(&'static str, usize)> {
    let watched = match monitor {
        Monitor::ValLoss => Selection::BestValLoss,
        Monitor::ValAccuracy => Selection::BestValAccuracy,
    };
    let (file, epoch) = match selection {
        Selection::Last => (LAST_WEIGHTS, state.epoch),
        s if s == watched => (BEST_WEIGHTS, state.best_epoch),
        _ => (dir::other_best_weights(monitor), state.other_best?.0),
    };
    run.file(file).is_file().then_some((file, epoch))
}
