//! What lenet5 asks of the operating system, below everything else: files written atomically ([`atomic`]),
//! user-named files read only when regular and bounded ([`read`]), lock files ([`lock`]) and
//! Ctrl-C/SIGTERM/SIGHUP turned into a clean stop ([`interrupt`]).

pub mod atomic;
pub mod interrupt;
pub mod lock;
pub mod read;
