//! lenet5, the binary's library: the command line ([`cli`]: clap definitions, dispatch, each command a
//! library function) and [`serve`] (the web page that shows each trained net's layers, and its JSON API).
//! Below it: `lenet5_core` (LibTorch: networks, data, the training loop) and `lenet5_lab` (no LibTorch:
//! config, run-directory formats, studies).

#![deny(unreachable_pub)]

pub mod cli;
pub mod serve;
