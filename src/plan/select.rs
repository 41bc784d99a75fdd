//! Choosing targets among candidates: `one`, `count`, `percent`, `all` or `names`, at seeded
//! random, refused outright when the choice would exceed the safety caps.
//!
//! Pure: the callers list candidates through their clients and hand them in sorted by a stable
//! key, so the same seed picks the same objects on every machine.

use crate::plan::seeded::SeededRng;
use crate::spec::Percent;
use crate::spec::fault::SelectionMode;

/// How many of the candidates to choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The mode.
    pub mode: SelectionMode,
    /// With `count`.
    pub count: Option<u32>,
    /// With `percent`.
    pub percent: Option<Percent>,
    /// With `names`.
    pub names: Vec<String>,
}

/// The blast-radius limits one firing must respect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caps {
    /// Most objects chosen.
    pub max_objects: u32,
    /// Most of the candidates chosen.
    pub max_percent: Percent,
}

/// Why no choice was made; nothing is touched in either case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectionError {
    /// The selection matched nothing.
    #[error("no candidates matched")]
    NoCandidates,
    /// Named objects are not among the candidates.
    #[error("not found among the candidates: {}", .0.join(", "))]
    MissingNames(Vec<String>),
    /// The choice exceeds a cap; the numbers say by how much.
    #[error(
        "would touch {chosen} of {candidates} ({percent:.1}%), over the cap of {max_objects} and {max_percent}%"
    )]
    OverCaps {
        /// How many would be chosen.
        chosen: usize,
        /// Out of how many.
        candidates: usize,
        /// As a percentage.
        percent: f64,
        /// The object cap.
        max_objects: u32,
        /// The percentage cap.
        max_percent: f64,
    },
}

/// Chooses among `candidates` (named by `name_of`), returning the indices chosen in ascending
/// order.
///
/// # Errors
/// No candidates, missing names, or a choice over the caps.
pub fn select<T>(
    candidates: &[T],
    name_of: impl Fn(&T) -> &str,
    selection: &Selection,
    caps: Caps,
    seed: u64,
) -> Result<Vec<usize>, SelectionError> {
    if candidates.is_empty() {
        return Err(SelectionError::NoCandidates);
    }
    let total = candidates.len();
    let mut chosen: Vec<usize> = match selection.mode {
        SelectionMode::All => (0..total).collect(),
        SelectionMode::Names => {
            let missing: Vec<String> = selection
                .names
                .iter()
                .filter(|name| !candidates.iter().any(|c| name_of(c) == name.as_str()))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(SelectionError::MissingNames(missing));
            }
            (0..total)
                .filter(|i| {
                    selection
                        .names
                        .iter()
                        .any(|n| n == name_of(&candidates[*i]))
                })
                .collect()
        }
        mode => {
            let wanted = match mode {
                SelectionMode::Count => selection.count.unwrap_or(1) as usize,
                SelectionMode::Percent => {
                    percent_count(total, selection.percent.map_or(0, Percent::micros)).max(1)
                }
                _ => 1,
            };
            SeededRng::new(seed).sample(total, wanted)
        }
    };
    chosen.sort_unstable();
    // For the message only; the comparison is exact: chosen/total > max% in integers.
    let percent = chosen.len() as f64 * 100.0 / total as f64;
    if over_caps(chosen.len(), total, caps) {
        return Err(SelectionError::OverCaps {
            chosen: chosen.len(),
            candidates: total,
            percent,
            max_objects: caps.max_objects,
            max_percent: caps.max_percent.value(),
        });
    }
    Ok(chosen)
}

/// `ceil(total × percent)` with the percent in millionths, computed in integers so no rounding
/// error ever adds a target: 7% of 100 is 7, not the 8 that `ceil(100.0 * 0.07)` gives.
fn percent_count(total: usize, micros: u64) -> usize {
    let whole = u128::from(Percent::MICROS_WHOLE);
    let count = (total as u128 * u128::from(micros)).div_ceil(whole);
    // At most `total`, as micros never exceed the whole.
    usize::try_from(count).unwrap_or(total)
}

/// Whether `chosen` of `total` exceeds the caps, compared exactly:
/// `chosen / total > max%` as `chosen × whole > max × total` in integers.
fn over_caps(chosen: usize, total: usize, caps: Caps) -> bool {
    chosen > caps.max_objects as usize
        || chosen as u128 * u128::from(Percent::MICROS_WHOLE)
            > u128::from(caps.max_percent.micros()) * total as u128
}

/// The seed of one firing: the run's seed mixed with the fault and the repetition, so faults
/// and repetitions choose independently yet repeatably.
pub fn firing_seed(run_seed: u64, fault: &str, firing: u32) -> u64 {
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ run_seed;
    for byte in fault.bytes().chain(firing.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("pod-{i}")).collect()
    }

    fn caps(max: u32, percent: f64) -> Caps {
        Caps {
            max_objects: max,
            max_percent: Percent::new(percent),
        }
    }

    fn sel(mode: SelectionMode) -> Selection {
        Selection {
            mode,
            count: None,
            percent: None,
            names: Vec::new(),
        }
    }

    #[test]
    fn the_same_seed_chooses_the_same_targets() {
        let pods = names(20);
        let s = Selection {
            count: Some(3),
            ..sel(SelectionMode::Count)
        };
        let a = select(&pods, |p| p, &s, caps(10, 100.0), 42).unwrap();
        let b = select(&pods, |p| p, &s, caps(10, 100.0), 42).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        let others: Vec<_> = (0..20u64)
            .map(|seed| select(&pods, |p| p, &s, caps(10, 100.0), seed).unwrap())
            .collect();
        assert!(
            others.iter().any(|o| o != &a),
            "different seeds choose differently"
        );
    }

    /// Pinned picks: a change here changes which objects a re-played seed touches.
    #[test]
    fn seed_42_picks_the_same_five_of_twenty_in_every_release() {
        let s = Selection {
            count: Some(5),
            ..sel(SelectionMode::Count)
        };
        let picked = select(&names(20), |p| p, &s, caps(20, 100.0), 42).unwrap();
        assert_eq!(picked, vec![5, 6, 13, 16, 18]);
    }

    #[test]
    fn percent_rounds_up_and_caps_refuse_with_numbers() {
        let pods = names(10);
        let s = Selection {
            percent: Some(Percent::new(25.0)),
            ..sel(SelectionMode::Percent)
        };
        assert_eq!(
            select(&pods, |p| p, &s, caps(10, 50.0), 1).unwrap().len(),
            3
        );
        let err = select(&pods, |p| p, &sel(SelectionMode::All), caps(5, 100.0), 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "would touch 10 of 10 (100.0%), over the cap of 5 and 100%"
        );
        let err = select(&pods, |p| p, &s, caps(10, 20.0), 1).unwrap_err();
        assert!(matches!(err, SelectionError::OverCaps { chosen: 3, .. }));
    }

    /// Every (total, percent) pair up to 1000 candidates: the count is exactly
    /// `ceil(total * p / 100)`, never more, and a cap of the same percentage refuses exactly
    /// the counts that round above it.
    #[test]
    fn percent_counts_exactly_the_ceiling_and_caps_compare_exactly() {
        let mut wrong = Vec::new();
        for p in 1..=100usize {
            let percent: Percent = format!("{p}%").parse().unwrap();
            let capped = Caps {
                max_objects: u32::MAX,
                max_percent: percent,
            };
            for total in 1..=1000usize {
                let exact = (total * p).div_ceil(100);
                let counted = percent_count(total, percent.micros());
                let refused = over_caps(counted, total, capped);
                let fits = (total * p).is_multiple_of(100);
                if counted != exact || refused == fits {
                    wrong.push((total, p, counted, refused));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "(total, percent, chosen, refused): {wrong:?}"
        );
    }

    /// The same through `select` itself, for every pair up to 100 candidates (where the
    /// floating-point count was wrong thirteen times).
    #[test]
    fn percent_selections_choose_exactly_the_ceiling() {
        let pods = names(100);
        let mut wrong = Vec::new();
        for total in 1..=100usize {
            for p in 1..=100usize {
                let s = Selection {
                    percent: Some(format!("{p}%").parse().unwrap()),
                    ..sel(SelectionMode::Percent)
                };
                let chosen = select(&pods[..total], |p| p, &s, caps(u32::MAX, 100.0), 7)
                    .unwrap()
                    .len();
                if chosen != (total * p).div_ceil(100) {
                    wrong.push((total, p, chosen));
                }
            }
        }
        assert!(wrong.is_empty(), "(total, percent, chosen): {wrong:?}");
    }

    #[test]
    fn fractional_percents_count_exactly() {
        for (total, text, expected) in [
            (1000, "33.3%", 333),
            (1000, "0.1%", 1),
            (8, "12.5%", 1),
            (3, "33.333333%", 1),
            (1000, "99.9%", 999),
        ] {
            let s = Selection {
                percent: Some(text.parse().unwrap()),
                ..sel(SelectionMode::Percent)
            };
            let chosen = select(&names(total), |p| p, &s, caps(u32::MAX, 100.0), 3).unwrap();
            assert_eq!(chosen.len(), expected, "{text} of {total}");
        }
        // 33.3% of 1000 is exactly 333: a cap of 33.3% admits it.
        let s = Selection {
            count: Some(333),
            ..sel(SelectionMode::Count)
        };
        let cap: Percent = "33.3%".parse().unwrap();
        assert!(
            select(
                &names(1000),
                |p| p,
                &s,
                Caps {
                    max_objects: 1000,
                    max_percent: cap
                },
                3
            )
            .is_ok()
        );
    }

    #[test]
    fn names_must_all_exist() {
        let pods = names(3);
        let s = Selection {
            names: vec!["pod-2".into(), "pod-9".into()],
            ..sel(SelectionMode::Names)
        };
        assert_eq!(
            select(&pods, |p| p, &s, caps(10, 100.0), 0).unwrap_err(),
            SelectionError::MissingNames(vec!["pod-9".into()])
        );
        let s = Selection {
            names: vec!["pod-2".into()],
            ..sel(SelectionMode::Names)
        };
        assert_eq!(
            select(&pods, |p| p, &s, caps(10, 100.0), 0).unwrap(),
            vec![2]
        );
    }

    #[test]
    fn nothing_to_choose_is_an_error() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            select(&none, |p| p, &sel(SelectionMode::One), caps(1, 100.0), 0).unwrap_err(),
            SelectionError::NoCandidates
        );
    }

    #[test]
    fn firing_seeds_differ_per_fault_and_firing() {
        assert_ne!(firing_seed(7, "a", 0), firing_seed(7, "a", 1));
        assert_ne!(firing_seed(7, "a", 0), firing_seed(7, "b", 0));
        assert_eq!(firing_seed(7, "a", 3), firing_seed(7, "a", 3));
    }
}
