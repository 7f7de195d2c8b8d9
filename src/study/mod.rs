//! Studies: many runs, and what they say together. A sweep file expands into run directories ([`sweep`]),
//! which run locally ([`exec`]) or as a Slurm job array ([`slurm`]); finished runs become tables and charts
//! ([`runs`]), and a sweep's groups become its study report ([`analysis`]) with the statistics in [`stats`].

pub mod analysis;
pub mod exec;
pub mod runs;
pub mod slurm;
pub mod stats;
pub mod sweep;
