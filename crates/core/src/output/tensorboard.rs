//! TensorBoard event files in the run directory, so `tensorboard --logdir runs` (or a sweep directory) shows
//! every run: per-epoch scalars, the training loss at the loop's sync points, the test result, and the
//! run's hyperparameters as HParams plugin session records.
//!
//! The format is TFRecord: each record is its length (u64, little-endian), the masked CRC32C of those 8
//! bytes, the serialized `tensorboard.Event`, and the masked CRC32C of that. The messages are declared here
//! with prost's derive, only the fields lenet5 writes (field numbers from TensorBoard's `event.proto`,
//! `summary.proto`, `plugins/hparams/{api,plugin_data}.proto` and `google/protobuf/struct.proto`), so no
//! code generator runs at build time.

use super::{End, Epoch, Sink};
use anyhow::{Context, Result};
use lenet5_lab::config::Config;
use lenet5_lab::rundir::layers::LayerRow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// TensorBoard's messages, as far as lenet5 uses them.
pub mod proto {
    use prost::{Message, Oneof};
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, Message)]
    pub struct Event {
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        #[prost(int64, tag = "2")]
        pub step: i64,
        #[prost(oneof = "What", tags = "3, 5")]
        pub what: Option<What>,
    }

    #[derive(Clone, PartialEq, Oneof)]
    pub enum What {
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(Summary),
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<SummaryValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct SummaryValue {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<SummaryMetadata>,
        #[prost(float, optional, tag = "2")]
        pub simple_value: Option<f32>,
        #[prost(message, optional, tag = "5")]
        pub histo: Option<HistogramProto>,
        #[prost(message, optional, tag = "4")]
        pub image: Option<Image>,
    }

    /// `tensorboard.Summary.Image`: an encoded PNG and its size.
    #[derive(Clone, PartialEq, Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// `tensorboard.HistogramProto`: bucket `i` counts the values in (bucket_limit[i − 1], bucket_limit[i]].
    #[derive(Clone, PartialEq, Message)]
    pub struct HistogramProto {
        #[prost(double, tag = "1")]
        pub min: f64,
        #[prost(double, tag = "2")]
        pub max: f64,
        #[prost(double, tag = "3")]
        pub num: f64,
        #[prost(double, tag = "4")]
        pub sum: f64,
        #[prost(double, tag = "5")]
        pub sum_squares: f64,
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct SummaryMetadata {
        #[prost(message, optional, tag = "1")]
        pub plugin_data: Option<PluginData>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct PluginData {
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }

    /// `tensorboard.hparams.HParamsPluginData` with a session start or end record.
    #[derive(Clone, PartialEq, Message)]
    pub struct HParamsPluginData {
        #[prost(int32, tag = "1")]
        pub version: i32,
        #[prost(message, optional, tag = "3")]
        pub session_start_info: Option<SessionStartInfo>,
        #[prost(message, optional, tag = "4")]
        pub session_end_info: Option<SessionEndInfo>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct SessionStartInfo {
        #[prost(map = "string, message", tag = "1")]
        pub hparams: HashMap<String, Value>,
        #[prost(string, tag = "4")]
        pub group_name: String,
        #[prost(double, tag = "5")]
        pub start_time_secs: f64,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct SessionEndInfo {
        /// 1 success, 2 failure (`tensorboard.hparams.Status`).
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(double, tag = "2")]
        pub end_time_secs: f64,
    }

    /// `google.protobuf.Value`: a number, a string or a bool.
    #[derive(Clone, PartialEq, Message)]
    pub struct Value {
        #[prost(oneof = "Kind", tags = "2, 3, 4")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, Oneof)]
    pub enum Kind {
        #[prost(double, tag = "2")]
        Number(f64),
        #[prost(string, tag = "3")]
        Text(String),
        #[prost(bool, tag = "4")]
        Bool(bool),
    }
}

use prost::Message;
use proto::{Event, What};

/// The config values a run records as hyperparameters: what studies vary.
pub const HPARAMS: [&str; 18] = [
    "model.variant",
    "model.activation",
    "model.pooling",
    "model.init",
    "model.dropout",
    "optimizer.type",
    "optimizer.lr",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "optimizer.nesterov",
    "regularization.l1",
    "regularization.label_smoothing",
    "lr_scheduler.type",
    "data.dataset",
    "data.batch_size",
    "trainer.epochs",
    "trainer.early_stopping.enabled",
    "trainer.seed",
];

/// `tensorboard.hparams.Status` of a finished session.
pub const SUCCESS: i32 = 1;
pub const FAILURE: i32 = 2;

/// The tag of the per-sync-point training loss; its step is the global batch number, the other tags' the
/// epoch.
pub const STEP_LOSS_TAG: &str = "loss/train_step";
/// The image tag of `lenet5 test --mistakes`'s grid, at the scored checkpoint's epoch.
pub const MISTAKES_TAG: &str = "mistakes/test";
/// The training objective (with label smoothing) where it differs from `loss/train`.
pub const OBJECTIVE_TAG: &str = "objective/train";
const HPARAMS_START_TAG: &str = "_hparams_/session_start_info";
const HPARAMS_END_TAG: &str = "_hparams_/session_end_info";

/// What a resumed run keeps of its earlier events: the session start, and the scalars of its `epochs`
/// completed epochs (`batches` batches each); test results and the session end are written anew.
pub fn keep_completed(epochs: usize, batches: usize) -> impl Fn(&str, i64) -> bool {
    move |tag, step| match tag {
        HPARAMS_START_TAG => true,
        HPARAMS_END_TAG | "accuracy/test" | "loss/test" => false,
        STEP_LOSS_TAG => step <= (epochs * batches) as i64,
        _ => step <= epochs as i64,
    }
}

/// Appends events to this process's event file in a run directory.
pub struct EventWriter {
    file: File,
    path: PathBuf,
    /// Whether the kept events include the HParams session start (written once per run).
    pub has_session_start: bool,
}

impl EventWriter {
    /// Opens the run's event file. Events from earlier processes (a resumed run) are kept where `keep`
    /// says so — those of completed epochs — and rewritten into one new file, so the curves continue
    /// without duplicate steps.
    pub fn open(run_dir: &Path, keep: impl Fn(&str, i64) -> bool) -> Result<Self> {
        let old: Vec<PathBuf> = event_files(run_dir)?;
        let mut kept: Vec<Event> = vec![];
        for path in &old {
            kept.extend(read_events(path)?.into_iter().filter(|e| match &e.what {
                Some(What::Summary(s)) => s.value.iter().all(|v| keep(&v.tag, e.step)),
                _ => false,
            }));
        }
        let path = run_dir.join(format!(
            "events.out.tfevents.{:010}.{}.{}.lenet5",
            now() as u64,
            hostname(),
            std::process::id()
        ));
        let mut bytes = record(&Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        });
        kept.iter().for_each(|e| bytes.extend(record(e)));
        lenet5_lab::sys::atomic::write(&path, &bytes)?;
        for stale in old.iter().filter(|p| **p != path) {
            std::fs::remove_file(stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let has_session_start = kept.iter().any(|e| match &e.what {
            Some(What::Summary(s)) => s.value.iter().any(|v| v.tag == HPARAMS_START_TAG),
            _ => false,
        });
        Ok(Self {
            file,
            path,
            has_session_start,
        })
    }

    /// Scalars at one step.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| proto::SummaryValue {
                tag: tag.to_string(),
                metadata: None,
                simple_value: Some(*v as f32),
                histo: None,
                image: None,
            })
            .collect();
        self.write(step, proto::Summary { value })
    }

    /// Histograms at one step, one per named set of values.
    pub fn histograms(&mut self, step: i64, values: &[(String, Vec<f32>)]) -> Result<()> {
        let value = (values.iter())
            .map(|(tag, v)| proto::SummaryValue {
                tag: tag.clone(),
                metadata: None,
                simple_value: None,
                histo: Some(histogram(v)),
                image: None,
            })
            .collect();
        self.write(step, proto::Summary { value })
    }

    /// An RGB PNG of `size` (width, height) at one step, shown in TensorBoard's Images tab.
    pub fn image(&mut self, step: i64, tag: &str, png: &[u8], size: (u32, u32)) -> Result<()> {
        let image = proto::Image {
            height: size.1 as i32,
            width: size.0 as i32,
            colorspace: 3,
            encoded_image_string: png.to_vec(),
        };
        let value = vec![proto::SummaryValue {
            tag: tag.to_string(),
            metadata: None,
            simple_value: None,
            histo: None,
            image: Some(image),
        }];
        self.write(step, proto::Summary { value })
    }

    /// The run's hyperparameters ([`HPARAMS`]) as an HParams session start record.
    pub fn session_start(&mut self, config: &Config) -> Result<()> {
        let tree = serde_yaml::to_value(config)?;
        let mut hparams = std::collections::HashMap::new();
        for key in HPARAMS {
            let node = key.split('.').try_fold(&tree, |node, part| node.get(part));
            let kind = match node {
                Some(serde_yaml::Value::Bool(b)) => proto::Kind::Bool(*b),
                Some(serde_yaml::Value::Number(n)) => {
                    proto::Kind::Number(n.as_f64().unwrap_or(f64::NAN))
                }
                Some(serde_yaml::Value::String(s)) => proto::Kind::Text(s.clone()),
                _ => continue,
            };
            hparams.insert(key.to_string(), proto::Value { kind: Some(kind) });
        }
        // What made the run, so a study can tell which code produced each session.
        for (key, value) in [
            ("lenet5.version", lenet5_lab::VERSION),
            ("lenet5.commit", lenet5_lab::COMMIT),
        ] {
            let kind = proto::Kind::Text(value.to_string());
            hparams.insert(key.to_string(), proto::Value { kind: Some(kind) });
        }
        let start = proto::SessionStartInfo {
            hparams,
            group_name: String::new(),
            start_time_secs: now(),
        };
        let data = proto::HParamsPluginData {
            version: 0,
            session_start_info: Some(start),
            session_end_info: None,
        };
        self.plugin_record(HPARAMS_START_TAG, data)
    }

    /// The HParams session end record: [`SUCCESS`] or [`FAILURE`].
    pub fn session_end(&mut self, status: i32) -> Result<()> {
        let end = proto::SessionEndInfo {
            status,
            end_time_secs: now(),
        };
        let data = proto::HParamsPluginData {
            version: 0,
            session_start_info: None,
            session_end_info: Some(end),
        };
        self.plugin_record(HPARAMS_END_TAG, data)
    }

    fn plugin_record(&mut self, tag: &str, data: proto::HParamsPluginData) -> Result<()> {
        let plugin_data = proto::PluginData {
            plugin_name: "hparams".into(),
            content: data.encode_to_vec(),
        };
        let value = proto::SummaryValue {
            tag: tag.into(),
            metadata: Some(proto::SummaryMetadata {
                plugin_data: Some(plugin_data),
            }),
            simple_value: None,
            histo: None,
            image: None,
        };
        self.write(0, proto::Summary { value: vec![value] })
    }

    fn write(&mut self, step: i64, summary: proto::Summary) -> Result<()> {
        let event = Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(summary)),
        };
        // One write per record, flushed: a reader (or a kill) sees whole records, but for the last.
        self.file
            .write_all(&record(&event))
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Sink for EventWriter {
    fn epoch(&mut self, e: &Epoch) -> Result<()> {
        for &(step, loss) in e.step_losses {
            self.scalars(step as i64, &[(STEP_LOSS_TAG, loss)])?;
        }
        let r = &e.row;
        let mut scalars = vec![
            ("loss/train", r.loss),
            ("loss/valid", r.val_loss),
            ("accuracy/train", r.accuracy),
            ("accuracy/valid", r.val_accuracy),
            ("lr", r.lr),
            ("epoch_seconds", r.seconds),
        ];
        if let Some(objective) = e.objective {
            scalars.push((OBJECTIVE_TAG, objective));
        }
        self.scalars(r.epoch as i64, &scalars)?;
        let layers = layer_scalars(e.layers);
        let layers: Vec<(&str, f64)> = layers.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.scalars(r.epoch as i64, &layers)?;
        self.histograms(r.epoch as i64, &histogram_values(e))
    }

    fn end(&mut self, end: &End) -> Result<()> {
        match *end {
            End::Tested {
                epoch,
                accuracy,
                loss,
            } => {
                let scalars = [("accuracy/test", accuracy), ("loss/test", loss)];
                self.scalars(epoch as i64, &scalars)?;
                self.session_end(SUCCESS)
            }
            End::Diverged => self.session_end(FAILURE),
            End::Interrupted => Ok(()),
        }
    }
}

/// Buckets in a histogram.
const BUCKETS: usize = 30;

/// `values` in [`BUCKETS`] equal-width buckets from their minimum to their maximum.
fn histogram(values: &[f32]) -> proto::HistogramProto {
    let v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let width = (max - min) / BUCKETS as f64;
    let bucket_limit: Vec<f64> = (1..=BUCKETS)
        .map(|i| {
            if i == BUCKETS {
                max
            } else {
                min + width * i as f64
            }
        })
        .collect();
    let mut bucket = vec![0.0; BUCKETS];
    for &x in &v {
        let i = match width > 0.0 {
            true => (((x - min) / width).ceil() as usize).clamp(1, BUCKETS) - 1,
            false => BUCKETS - 1,
        };
        bucket[i] += 1.0;
    }
    proto::HistogramProto {
        min,
        max,
        num: v.len() as f64,
        sum: v.iter().sum(),
        sum_squares: v.iter().map(|x| x * x).sum(),
        bucket_limit,
        bucket,
    }
}

/// Each weight tensor's values as `weights/{name}`, and its probe gradient as `gradients/{name}`.
fn histogram_values(e: &Epoch) -> Vec<(String, Vec<f32>)> {
    let flat = |t: &tch::Tensor| -> Vec<f32> {
        Vec::try_from(
            t.detach()
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Float)
                .flatten(0, -1),
        )
        .expect("floats")
    };
    let mut out = vec![];
    for (name, g) in e.gradients {
        if let Some((_, w)) = e.weights.iter().find(|(n, _)| n == name) {
            out.push((format!("weights/{name}"), flat(w)));
        }
        out.push((format!("gradients/{name}"), flat(g)));
    }
    out
}

/// Each layer's health as `layers/{layer}/{number}` scalars (TensorBoard groups them by layer).
fn layer_scalars(rows: &[LayerRow]) -> Vec<(String, f64)> {
    let mut out = vec![];
    for r in rows {
        let numbers = [
            ("weight_norm", r.weight_norm),
            ("grad_norm", r.grad_norm),
            ("update_ratio", r.update_ratio),
            ("mean", r.mean),
            ("std", r.std),
            ("saturated", r.saturated),
            ("dead", r.dead),
        ];
        for (name, value) in numbers {
            out.extend(value.map(|v| (format!("layers/{}/{name}", r.layer), v)));
        }
    }
    out
}

/// A run directory's event files, oldest name first.
pub fn event_files(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .with_context(|| format!("cannot read {}", run_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents."))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The events of one file; a torn last record (a kill mid-write) ends the file.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = vec![];
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        let (start, end) = (at + 12, at + 12 + len);
        if end + 4 > bytes.len()
            || masked_crc(&bytes[start..end]).to_le_bytes() != bytes[end..end + 4]
        {
            break;
        }
        events.push(
            Event::decode(&bytes[start..end])
                .with_context(|| format!("{}: bad event", path.display()))?,
        );
        at = end + 4;
    }
    Ok(events)
}

/// One TFRecord.
fn record(event: &Event) -> Vec<u8> {
    let data = event.encode_to_vec();
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&masked_crc(&data).to_le_bytes());
    out
}

/// TFRecord's masked CRC32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into())
}
