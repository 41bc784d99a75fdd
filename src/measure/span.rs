//! A count of instants with the first and last of them, and what that says about any part of
//! the stretch they cover.
//!
//! Probes run at a constant rate, so the instants of one class (successes, failures, one
//! backend's answers) inside a bucket are close to evenly spaced between the first and the last.
//! That lets a window that cuts through a bucket be counted without keeping the samples: the
//! estimate is exact for an evenly spaced class and never off by more than the class's count in
//! that one bucket otherwise.

/// How many instants of one class a bucket saw, and the earliest and latest (nanoseconds from
/// the run origin). `first` and `last` mean nothing while `count` is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub count: u32,
    pub first: u64,
    pub last: u64,
}

impl Span {
    /// Adds one instant; order of arrival does not matter.
    pub fn add(&mut self, at: u64) {
        if self.count == 0 {
            self.first = at;
            self.last = at;
        } else {
            self.first = self.first.min(at);
            self.last = self.last.max(at);
        }
        self.count = self.count.saturating_add(1);
    }

    /// Instants strictly before `t`, assuming even spacing between `first` and `last`.
    pub fn before(&self, t: u64) -> u64 {
        let n = u64::from(self.count);
        if n == 0 || t <= self.first {
            return 0;
        }
        if t > self.last {
            return n;
        }
        // first < t <= last, hence n >= 2 and last > first. Instant k sits at
        // first + k * (last - first) / (n - 1); count the k with that below t.
        let elapsed = u128::from(t - self.first) * u128::from(n - 1);
        let spread = u128::from(self.last - self.first);
        elapsed.div_ceil(spread) as u64
    }

    /// Instants in `[from, to)`, under the same assumption as [`Span::before`].
    pub fn between(&self, from: u64, to: u64) -> u64 {
        if to <= from {
            return 0;
        }
        self.before(to) - self.before(from)
    }

    /// Where the `k`-th instant (from zero) sits under even spacing.
    fn position(&self, k: u64) -> u64 {
        let n = u64::from(self.count);
        if n <= 1 {
            return self.first;
        }
        let offset = u128::from(self.last - self.first) * u128::from(k) / u128::from(n - 1);
        self.first + offset as u64
    }

    /// The earliest instant at or after `t`, exact when it is `first`, estimated otherwise.
    pub fn first_at_or_after(&self, t: u64) -> Option<u64> {
        let n = u64::from(self.count);
        let k = self.before(t);
        (k < n).then(|| self.position(k).max(t))
    }

    /// The latest instant before `t`, exact when it is `last`, estimated otherwise.
    pub fn last_before(&self, t: u64) -> Option<u64> {
        let k = self.before(t);
        (k > 0).then(|| self.position(k - 1).min(t.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn even(first: u64, step: u64, n: u32) -> Span {
        let mut span = Span::default();
        for k in 0..u64::from(n) {
            span.add(first + k * step);
        }
        span
    }

    #[test]
    fn counts_evenly_spaced_instants_exactly() {
        let span = even(1_000, 10, 20); // 1000, 1010, ..., 1190
        for t in 900..1_300 {
            let naive = (0..20u64).filter(|k| 1_000 + k * 10 < t).count() as u64;
            assert_eq!(span.before(t), naive, "cut at {t}");
        }
        assert_eq!(span.between(1_050, 1_100), 5);
        assert_eq!(span.between(1_100, 1_050), 0);
    }

    #[test]
    fn single_and_empty_spans() {
        assert_eq!(Span::default().before(10), 0);
        let one = even(50, 1, 1);
        assert_eq!(one.before(50), 0);
        assert_eq!(one.before(51), 1);
        assert_eq!(one.first_at_or_after(10), Some(50));
        assert_eq!(one.first_at_or_after(51), None);
        assert_eq!(one.last_before(51), Some(50));
        assert_eq!(one.last_before(50), None);
    }

    #[test]
    fn finds_neighbours_of_a_cut() {
        let span = even(0, 5, 21); // 0, 5, ..., 100
        assert_eq!(span.first_at_or_after(12), Some(15));
        assert_eq!(span.first_at_or_after(15), Some(15));
        assert_eq!(span.last_before(15), Some(10));
        assert_eq!(span.last_before(16), Some(15));
        assert_eq!(span.first_at_or_after(101), None);
    }

    #[test]
    fn arrival_order_does_not_matter() {
        let mut span = Span::default();
        for at in [30, 10, 20] {
            span.add(at);
        }
        assert_eq!((span.count, span.first, span.last), (3, 10, 30));
    }
}
