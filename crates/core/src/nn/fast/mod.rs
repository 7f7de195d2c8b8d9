//! Speed forms: the same functions as the plain definitions in `nn`, computed faster through LibTorch's
//! operators (no hand-written gradients). Each is held equal to its plain form by a test.
//!
//! - [`lenet5`]: LeNet-5's conv → average pool as one stride-2 convolution, conv → max pool through the
//!   window's four positions, in training by one matrix product (tests/model.rs);
//! - [`lenet1998`]: the 1998 net with C1 by window position, the squash's constants in the weights, C5 as
//!   a fully connected layer (tests/lenet1998.rs);
//! - [`modern`]: the modern variant with conv1 by window position and cheaper max pools (tests/model.rs);
//! - [`flat_adam`]: PyTorch's Adam on one flat buffer, one Rust pass on the CPU (tests/schedule.rs).

pub mod flat_adam;
pub mod lenet1998;
pub mod lenet5;
pub mod modern;
