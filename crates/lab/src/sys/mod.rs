//! What lenet5 asks of the operating system, below everything else: files written atomically ([`atomic`]),
//! lock files ([`lock`]), the CPU shared with other processes ([`cpu`]) and Ctrl-C/SIGTERM turned into a clean stop ([`interrupt`]).

pub mod atomic;
pub mod cpu;
pub mod interrupt;
pub mod lock;
