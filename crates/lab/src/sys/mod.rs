//! What lenet5 asks of the operating system, below everything else: files written atomically ([`atomic`]),
//! user-named files read only when regular and bounded ([`read`]), lock files ([`lock`]), the CPU shared
//! with other processes ([`cpu`]) and Ctrl-C/SIGTERM/SIGHUP turned into a clean stop ([`interrupt`]).

pub mod atomic;
pub mod cpu;
pub mod interrupt;
pub mod lock;
pub mod read;
