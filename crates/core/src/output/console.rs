//! The console: one line per epoch on stdout, and the early-stopping decision when it is made.

use super::{End, Epoch, Sink};
use anyhow::Result;
use lenet5_lab::number;

/// Prints each epoch's numbers.
pub struct Console {
    /// The monitored value's name, for the early-stopping line.
    pub monitor: String,
}

impl Sink for Console {
    fn epoch(&mut self, e: &Epoch) -> Result<()> {
        let r = &e.row;
        println!(
            "epoch {:>3}/{}  lr {:.2e}  loss {}  acc {:.2}%  val_loss {}  val_acc {:.2}%  {:.1}s{}",
            r.epoch,
            e.planned_epochs,
            r.lr,
            number(r.loss),
            100.0 * r.accuracy,
            number(r.val_loss),
            100.0 * r.val_accuracy,
            r.seconds,
            if e.improved { "  *best" } else { "" }
        );
        if let Some(waited) = e.stops_early {
            println!(
                "early stopping: no {} improvement for {waited} epochs; best epoch {}",
                self.monitor, e.best_epoch
            );
        }
        Ok(())
    }

    fn end(&mut self, _end: &End) -> Result<()> {
        Ok(())
    }
}
