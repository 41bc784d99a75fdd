//! Memory and speed of the measurement store for one simulated hour at 1,000 samples/s.
//!
//! Samples are generated on the fly and handed over in completion order (intended start plus
//! latency), as real probes deliver them, so out-of-order arrival is part of the load. Four
//! backends answer round-robin, web-2 three times slower; three outages (0.5 s, 2 s, 5 s) and a
//! deleted backend give every derivation something to find. Prints peak RSS (VmHWM) and timings;
//! the generator runs once alone first, so its cost can be taken out of the store's.
//!
//! Run: `cargo bench --bench measure_memory` (release) or `cargo test --bench measure_memory`
//! (debug, much slower).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steadfast::measure::{
    EndpointEvent, EndpointState, FailureKind, LatencyOf, MeasurementStore, Outcome,
    RecoveryCriteria, Sample, StoreConfig, TimeWindow,
};

const RATE: u64 = 1_000;
const SECONDS: u64 = 3_600;
/// Outages as (start, length) in seconds.
const OUTAGES: [(f64, f64); 3] = [(600.0, 0.5), (1_800.0, 2.0), (3_000.0, 5.0)];

/// Deterministic xorshift, so runs compare.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One hour of samples, handed to `sink` in completion order.
fn generate(backends: &[Arc<str>], mut sink: impl FnMut(&Sample)) {
    let outages = OUTAGES;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut in_flight: BinaryHeap<Reverse<(Duration, u64)>> = BinaryHeap::new();
    let mut pending = std::collections::HashMap::new();
    for k in 0..RATE * SECONDS {
        let intended = Duration::from_nanos(k * 1_000_000_000 / RATE);
        let t = intended.as_secs_f64();
        let down = outages.iter().any(|(at, len)| t >= *at && t < at + len);
        // Round robin over four backends; web-3 is deleted at 2,400 s, yet keeps answering its
        // quarter of the requests for one more second (a stale connection), then three share.
        let served_by = if t < 2_401.0 {
            (k % 4) as usize
        } else {
            (k % 3) as usize
        };
        // Log-normal-ish latency around 4 ms; web-2 is three times slower.
        let z = (-2.0 * dice.unit().ln()).sqrt() * (std::f64::consts::TAU * dice.unit()).cos();
        let mut latency = 0.004 * (0.5 * z).exp();
        if served_by == 2 {
            latency *= 3.0;
        }
        let (outcome, latency, backend) = if down {
            (Outcome::Failure(FailureKind::Connect), 0.0005, None)
        } else if dice.unit() < 0.001 {
            (Outcome::Failure(FailureKind::Timeout), 2.0, None)
        } else {
            (Outcome::Success, latency, Some(backends[served_by].clone()))
        };
        let sample = Sample {
            intended,
            latency: Duration::from_secs_f64(latency),
            outcome,
            backend,
        };
        in_flight.push(Reverse((intended + sample.latency, k)));
        pending.insert(k, sample);
        while let Some(Reverse((done, id))) = in_flight.peek().copied() {
            if done > intended {
                break;
            }
            in_flight.pop();
            if let Some(s) = pending.remove(&id) {
                sink(&s);
            }
        }
    }
    while let Some(Reverse((_, id))) = in_flight.pop() {
        if let Some(s) = pending.remove(&id) {
            sink(&s);
        }
    }
}

fn main() {
    let baseline = peak_rss_kib();
    let backends: Vec<Arc<str>> = (0..4).map(|i| Arc::from(format!("web-{i}"))).collect();
    let mut store = match MeasurementStore::new(StoreConfig::default()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("cannot make the store: {e}");
            return;
        }
    };
    for (i, b) in backends.iter().enumerate() {
        store.record_endpoint_event(EndpointEvent {
            at: Duration::ZERO,
            backend: b.clone(),
            state: EndpointState::Ready,
        });
        if i == 3 {
            store.record_endpoint_event(EndpointEvent {
                at: Duration::from_secs(2_400),
                backend: b.clone(),
                state: EndpointState::Deleted,
            });
        }
    }

    let total = RATE * SECONDS;
    // Generating and reordering the samples costs time too: measure it alone first.
    let started = Instant::now();
    let mut generated = 0u64;
    generate(&backends, |_| generated += 1);
    let generation = started.elapsed();

    let started = Instant::now();
    let mut refused = 0u64;
    generate(&backends, |s| {
        if store.record(s).is_err() {
            refused += 1;
        }
    });
    let feeding = started.elapsed();
    let after_feeding = peak_rss_kib();

    let started = Instant::now();
    let whole = store.covered();
    let stats = store.window(whole);
    let all = store.window_with(whole, LatencyOf::All);
    let longest = store.longest_outage(whole);
    let outages_found = store.outages(whole, Duration::from_millis(100));
    let criteria = RecoveryCriteria::new(0.99, Duration::from_secs(5));
    let recoveries: Vec<_> = OUTAGES
        .iter()
        .map(|(at, _)| {
            criteria
                .as_ref()
                .ok()
                .and_then(|c| store.time_to_recover(Duration::from_secs_f64(*at), *c))
        })
        .collect();
    let shares = store.backend_shares(whole);
    let series = store.series(whole, Duration::from_secs(1));
    let before_fault = TimeWindow::new(Duration::ZERO, Duration::from_secs(600));
    let derive = started.elapsed();
    let after_deriving = peak_rss_kib();

    println!("samples fed:            {total} ({refused} refused)");
    let store_time = feeding.saturating_sub(generation);
    println!(
        "generating alone:       {generation:.2?} ({generated} samples); with the store: {feeding:.2?}"
    );
    println!(
        "store.record:           {:.0} ms per million samples",
        store_time.as_secs_f64() * 1e3 / (total as f64 / 1e6)
    );
    println!("deriving everything:    {derive:.2?}");
    println!(
        "store's own estimate:   {:.1} MiB",
        store.approximate_bytes() as f64 / 1048576.0
    );
    println!("peak RSS before store:  {:?} KiB", baseline);
    println!("peak RSS after feeding: {:?} KiB", after_feeding);
    println!("peak RSS after derive:  {:?} KiB", after_deriving);
    println!(
        "availability {:?}, p50 {:?}, p99 {:?}, p99 all {:?}",
        stats.availability,
        stats.latency.as_ref().map(|l| l.p50),
        stats.latency.as_ref().map(|l| l.p99),
        all.latency.as_ref().map(|l| l.p99)
    );
    println!(
        "longest outage {:?}; outages >= 100 ms: {:?}",
        longest.map(|o| o.length),
        outages_found.iter().map(|o| o.length).collect::<Vec<_>>()
    );
    println!(
        "recoveries after {:?}",
        recoveries
            .iter()
            .map(|r| r.map(|r| r.after))
            .collect::<Vec<_>>()
    );
    println!(
        "max share deviation {:?} pp; served after deletion {:?}",
        shares.max_deviation_pp,
        shares
            .served_after_deletion
            .iter()
            .map(|s| (&s.backend, s.responses))
            .collect::<Vec<_>>()
    );
    println!(
        "series points {:?}; window before first fault {:?}",
        series.map(|s| s.len()).ok(),
        store.window(before_fault).availability
    );
}
