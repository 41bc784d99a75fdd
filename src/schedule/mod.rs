//! Cron schedules: parsing the five-field expressions Kubernetes CronJobs take, and computing
//! the next firing in a time zone.

pub mod cron;

pub use cron::{CronError, CronSchedule, parse_cron};
