//! Which backends were ready when: the yardstick for load-balance shares and for spotting a
//! backend that still serves after it was deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::units;

/// A backend's readiness as the endpoint controller published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointState {
    /// In the ready endpoints: should get its fair share.
    Ready,
    /// Listed but not ready (terminating, failing readiness): should get nothing.
    NotReady,
    /// Gone from the endpoints (pod deleted): anything it serves after this is a finding.
    Deleted,
}

/// One change of one backend's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointEvent {
    /// Offset from the run origin.
    #[serde(rename = "atMs", serialize_with = "units::millis")]
    pub at: Duration,
    /// Backend identity, as the probes' identity header names it.
    #[serde(serialize_with = "serialize_name")]
    pub backend: Arc<str>,
    /// The state it entered.
    pub state: EndpointState,
}

fn serialize_name<S: serde::Serializer>(name: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name)
}

/// Readiness changes ordered by time. A backend not yet mentioned counts as not ready, so the
/// engine records each backend's state at the run's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointTimeline {
    events: Vec<EndpointEvent>,
}

impl EndpointTimeline {
    /// A timeline from events in any order (same-instant events keep their given order).
    pub fn new(mut events: Vec<EndpointEvent>) -> Self {
        events.sort_by_key(|e| e.at);
        EndpointTimeline { events }
    }

    /// Adds an event, keeping time order.
    pub fn push(&mut self, event: EndpointEvent) {
        let at = self.events.partition_point(|e| e.at <= event.at);
        self.events.insert(at, event);
    }

    /// The events in time order.
    pub fn events(&self) -> &[EndpointEvent] {
        &self.events
    }

    /// True when nothing was recorded; shares then assume every answering backend was ready.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Stretches of constant readiness covering `[from, to)` nanoseconds: `(start, end, ready
    /// backends)` with the ready set sorted by name.
    pub(crate) fn ready_stretches(&self, from: u64, to: u64) -> Vec<(u64, u64, Vec<Arc<str>>)> {
        let mut state: BTreeMap<Arc<str>, EndpointState> = BTreeMap::new();
        let mut out = Vec::new();
        let mut cursor = from;
        let ready = |state: &BTreeMap<Arc<str>, EndpointState>| {
            state
                .iter()
                .filter(|(_, s)| **s == EndpointState::Ready)
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>()
        };
        for event in &self.events {
            let at = units::nanos(event.at);
            if at > cursor && at < to {
                out.push((cursor, at, ready(&state)));
                cursor = at;
            }
            if at >= to {
                break;
            }
            state.insert(event.backend.clone(), event.state);
        }
        if cursor < to {
            out.push((cursor, to, ready(&state)));
        }
        out
    }

    /// For each backend deleted at some point: the stretches `[deleted, re-added)` in
    /// nanoseconds during which it should have served nothing.
    pub(crate) fn deleted_stretches(&self) -> Vec<(Arc<str>, u64, u64)> {
        let mut open: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for event in &self.events {
            let at = units::nanos(event.at);
            match event.state {
                EndpointState::Deleted => {
                    open.entry(event.backend.clone()).or_insert(at);
                }
                EndpointState::Ready | EndpointState::NotReady => {
                    if let Some(since) = open.remove(&event.backend) {
                        out.push((event.backend.clone(), since, at));
                    }
                }
            }
        }
        out.extend(
            open.into_iter()
                .map(|(name, since)| (name, since, u64::MAX)),
        );
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_ms: u64, backend: &str, state: EndpointState) -> EndpointEvent {
        EndpointEvent {
            at: Duration::from_millis(at_ms),
            backend: Arc::from(backend),
            state,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn stretches_follow_the_events() {
        let timeline = EndpointTimeline::new(vec![
            event(5_000, "b", EndpointState::NotReady),
            event(0, "a", EndpointState::Ready),
            event(0, "b", EndpointState::Ready),
            event(8_000, "b", EndpointState::Deleted),
            event(9_000, "b", EndpointState::Ready),
        ]);
        let stretches = timeline.ready_stretches(1_000 * MS, 10_000 * MS);
        let names: Vec<(u64, u64, Vec<&str>)> = stretches
            .iter()
            .map(|(a, b, r)| (a / MS, b / MS, r.iter().map(|n| &**n).collect()))
            .collect();
        assert_eq!(
            names,
            vec![
                (1_000, 5_000, vec!["a", "b"]),
                (5_000, 8_000, vec!["a"]),
                (8_000, 9_000, vec!["a"]),
                (9_000, 10_000, vec!["a", "b"]),
            ]
        );
        let deleted = timeline.deleted_stretches();
        assert_eq!(deleted, vec![(Arc::from("b"), 8_000 * MS, 9_000 * MS)]);
    }

    #[test]
    fn unknown_backends_are_not_ready() {
        let timeline = EndpointTimeline::new(vec![event(2_000, "a", EndpointState::Ready)]);
        let stretches = timeline.ready_stretches(0, 3_000 * MS);
        assert_eq!(stretches.len(), 2);
        assert!(stretches[0].2.is_empty());
        assert_eq!(stretches[1].2.len(), 1);
    }
}
