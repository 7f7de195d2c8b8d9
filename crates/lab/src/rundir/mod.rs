//! One run's directory and the formats of its files: where they live and what they are called ([`dir`]),
//! the training state `--resume` continues from ([`state`]), one row per epoch ([`metrics`]) and per layer and epoch ([`layers`]), a scored split
//! ([`evaluation`]) and its calibration ([`calibration`]), the test set's three checkpoint selections and per-image answers ([`selections`]), the
//! dataset it trained on ([`fingerprint`]). Reading them needs no LibTorch; the weights' bytes are the core crate's.

pub mod calibration;
pub mod dir;
pub mod evaluation;
pub mod fingerprint;
pub mod layers;
pub mod metrics;
pub mod selections;
pub mod state;
