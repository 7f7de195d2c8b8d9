//! `layers.csv`: each layer's health after every epoch, measured on a fixed probe batch (the first images of
//! the validation split) so it costs little and compares across runs. Two kinds of rows, by `layer`: a
//! weight tensor (`conv1.weight`: its norm, the probe batch's gradient norm, and how far the epoch moved it,
//! ‖Δw‖/‖w‖) and an activation layer (`S2`, `F5`: the mean and spread of its outputs, the share of saturated
//! units for sigmoid and tanh, the share of dead units for ReLU); the other kind's columns are empty.
//! Written like metrics.csv (appended and fsynced before the epoch is committed; a resume keeps the rows of
//! the epochs the state counts).

use super::metrics::Row;
use serde::{Deserialize, Serialize};

/// One layer's numbers after one epoch; `None` where the row's kind has no such number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    pub epoch: usize,
    pub layer: String,
    pub weight_norm: Option<f64>,
    pub grad_norm: Option<f64>,
    /// ‖w after the epoch − w before it‖ / ‖w before it‖.
    pub update_ratio: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Share of the outputs where sigmoid or tanh is flat (within 2% of its bounds).
    pub saturated: Option<f64>,
    /// Share of ReLU units (a channel at a position) that are 0 for every probe image.
    pub dead: Option<f64>,
}

impl Row for LayerRow {
    const HEADER: &'static [&'static str] = &[
        "epoch",
        "layer",
        "weight_norm",
        "grad_norm",
        "update_ratio",
        "mean",
        "std",
        "saturated",
        "dead",
    ];
    fn epoch(&self) -> usize {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::metrics::{RowWriter, read_rows};

    #[test]
    fn rows_round_trip_with_empty_columns_and_resume_keeps_the_counted_epochs() {
        let dir = std::env::temp_dir().join(format!("lenet5-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("layers.csv");
        let row = |epoch, layer: &str| LayerRow {
            epoch,
            layer: layer.into(),
            weight_norm: Some(1.5),
            grad_norm: Some(0.25),
            update_ratio: None,
            mean: None,
            std: None,
            saturated: None,
            dead: Some(0.125),
        };
        let mut w = RowWriter::<LayerRow>::create(&path).unwrap();
        w.append(&[row(1, "conv1.weight"), row(1, "S2")]).unwrap();
        w.append(&[row(2, "conv1.weight")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("epoch,layer,weight_norm,grad_norm,update_ratio,mean,std,saturated,dead\n1,conv1.weight,1.5,0.25,,,,,0.125\n"), "{text}");
        assert_eq!(read_rows::<LayerRow>(&path).unwrap().len(), 3);
        RowWriter::<LayerRow>::resume(&path, 1).unwrap();
        assert_eq!(
            read_rows::<LayerRow>(&path).unwrap(),
            [row(1, "conv1.weight"), row(1, "S2")]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
