//! Speed forms: the same functions as the plain definitions in `nn`, computed faster through LibTorch's
//! operators (no hand-written gradients). Each is held equal to its plain form by a test.
//!
//! - [`lenet5`]: LeNet-5's conv → average pool as one stride-2 convolution (tests/model.rs);
//! - [`flat_adam`]: PyTorch's Adam on one flat buffer, one Rust pass on the CPU (tests/schedule.rs).

pub mod flat_adam;
pub mod lenet5;
