//! One fixed time bucket: counters, first/last instants and a coarse occupancy map, a constant
//! few hundred bytes whatever the probe rate.

use super::sample::FailureKind;
use super::span::Span;

/// Slots per bucket in the occupancy maps: 128 slots of 0.78 ms at the default 100 ms width.
pub(crate) const SLOTS: u64 = 128;

/// Successful and total responses from one backend inside a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackendTally {
    /// Index into the store's backend names.
    pub id: u16,
    /// Successful responses: the basis of load-balance shares.
    pub ok: Span,
    /// Every response the backend gave, failed or not: the basis of "served after deletion".
    pub any: Span,
}

/// Everything the store keeps about the attempts scheduled inside one bucket.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    pub success: Span,
    pub failure: Span,
    /// Failures by [`FailureKind::index`].
    pub kinds: [u32; FailureKind::ALL.len()],
    /// Bit `i` set when slot `i` holds a success; resolves outages that start and end inside
    /// one bucket.
    pub success_slots: u128,
    /// Bit `i` set when slot `i` holds a failure.
    pub failure_slots: u128,
    /// Sorted by `id`; a handful of entries.
    pub backends: Vec<BackendTally>,
}

impl Bucket {
    /// Counts one attempt at `at`, which lies in slot `slot` of this bucket.
    pub fn add(&mut self, at: u64, slot: u64, failure: Option<FailureKind>, backend: Option<u16>) {
        let bit = 1u128 << slot.min(SLOTS - 1);
        match failure {
            None => {
                self.success.add(at);
                self.success_slots |= bit;
            }
            Some(kind) => {
                self.failure.add(at);
                self.failure_slots |= bit;
                let counter = &mut self.kinds[kind.index()];
                *counter = counter.saturating_add(1);
            }
        }
        if let Some(id) = backend {
            let tally = match self.backends.binary_search_by_key(&id, |t| t.id) {
                Ok(i) => &mut self.backends[i],
                Err(i) => {
                    let tally = BackendTally {
                        id,
                        ok: Span::default(),
                        any: Span::default(),
                    };
                    self.backends.insert(i, tally);
                    &mut self.backends[i]
                }
            };
            tally.any.add(at);
            if failure.is_none() {
                tally.ok.add(at);
            }
        }
    }

    /// True when no attempt was scheduled in this bucket.
    pub fn is_empty(&self) -> bool {
        self.success.count == 0 && self.failure.count == 0
    }
}
