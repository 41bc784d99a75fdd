//! Scheduled experiments: the five-field cron expressions Kubernetes CronJobs take, and
//! `steadfast schedule`, a long-running mode that fires each experiment of a directory at its
//! `spec.schedule`, one at a time, with `/healthz` and `/metrics`.
//!
//! The firing loop ([`daemon`]) is pure: it sees time through [`Clock`] and runs through
//! [`Launcher`]. The command plugs in the wall clock and [`ChildLauncher`], which runs each
//! experiment as a child `steadfast run` process.

pub mod catalog;
pub mod child;
pub mod cron;
pub mod daemon;
pub mod http;
pub mod metrics;

pub use catalog::{Catalog, CatalogError, ScheduledExperiment, load_catalog};
pub use child::ChildLauncher;
pub use cron::{CronError, CronSchedule, parse_cron};
pub use daemon::{
    Clock, Launcher, Overlap, RunOutcome, Scheduler, SchedulerExit, SchedulerOptions, SystemClock,
    TokioClock,
};
pub use metrics::ScheduleMetrics;
