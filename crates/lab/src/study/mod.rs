//! Studies: many runs, and what they say together. A sweep file expands into run directories ([`sweep`]),
//! which run locally ([`exec`]) or as a Slurm job array ([`slurm`]); finished runs become tables and charts
//! ([`runs`]); a sweep's runs become groups ([`groups`]), each compared with its reference ([`compare`]),
//! a crossed grid's effects estimated ([`contrasts`]) or a crossing read out of variants ([`crossing`]), all of a report's in one family ([`family`]), runs recognised across groups and sweeps
//! ([`identity`]) and trained once ([`reuse`]), and the study report renders them ([`analysis`]) with the statistics in [`stats`].
//! A `tune:` block ([`space`]) runs trials before a variant's seeds ([`tune`]); the report shows them
//! ([`tuning_report`]); runs that recorded calibration get its section ([`calibration_report`]); runs
//! that kept their per-image answers, the test set's own sampling error ([`test_set`]); runs that recorded
//! layer health, theirs ([`layers_report`]).

pub mod analysis;
pub mod calibration_report;
pub mod compare;
pub mod contrasts;
pub mod crossing;
pub mod exec;
pub mod family;
pub mod groups;
pub mod identity;
pub mod layers_report;
pub mod reuse;
pub mod runs;
pub mod selection;
pub mod slurm;
pub mod space;
pub mod stats;
pub mod sweep;
pub mod test_set;
pub mod tune;
pub mod tuning_report;
