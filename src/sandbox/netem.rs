//! A sandbox pod's network rules: what `tc netem` and `iptables` would do to its traffic,
//! applied by its backend on every request (the machines running the sandbox have no netem).
//!
//! Each rule carries its own end: the instant its ephemeral container's `sleep` runs out. The
//! backend ignores a rule past its end, so the effect stops on time even between two kubelet
//! passes; a removal container takes rules away early.
//!
//! Each rule draws its loss and jitter from its own stream, seeded by the rule's parameters: the
//! n-th exchange under a rule meets the same fate on every run. Two runs of one experiment (a
//! friendly and a hostile control plane, say) then differ by what they did, not by the dice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fault::net_script::{NetRule, Removal};
use crate::plan::seeded::SeededRng;

/// Where an exchange came from, each with its own draws: the `k`-th request a Service routes to
/// a pod then meets the same fate on every run, however direct traffic (per-endpoint probes,
/// other pods) interleaves with it. Every exchange still meets the rule's odds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Routed by a Service load balancer.
    Service,
    /// Sent to the pod's address, or by the pod itself.
    Direct,
}

/// One active rule, when it ends, and its draws per [`Lane`].
#[derive(Debug, Clone)]
struct Active {
    rule: NetRule,
    until: Instant,
    draws: [SeededRng; 2],
}

/// The stream of a rule on `lane`: the same parameters give the same draws.
fn stream(rule: &NetRule, lane: Lane) -> SeededRng {
    const NETEM: u64 = 0x6e65_7465_6d00_0000;
    let key = match rule {
        NetRule::Delay {
            delay,
            jitter,
            correlation,
            ..
        } => {
            (delay.as_nanos() as u64)
                ^ (jitter.as_nanos() as u64).rotate_left(21)
                ^ correlation.to_bits().rotate_left(42)
        }
        NetRule::Loss { percent, .. } => percent.to_bits(),
        NetRule::Drop { .. } => 0,
    };
    let lane = match lane {
        Lane::Service => 0x5e,
        Lane::Direct => 0xd1,
    };
    SeededRng::new(NETEM ^ key ^ lane)
}

/// The rules of one pod, and the last jitter draw per [`Lane`] (netem correlates successive
/// draws).
#[derive(Debug, Default)]
pub(crate) struct PodNetwork {
    rules: Vec<Active>,
    last_jitter: [f64; 2],
}

/// What a request meets on its way in and out.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Verdict {
    /// Added before the answer.
    pub delay: Duration,
    /// The request is lost: the connection dies without an answer.
    pub lost: bool,
    /// Traffic is dropped: the request waits as TCP retransmits would.
    pub blackholed: bool,
}

/// A pod's rules, shared by its kubelet (writer) and its backend (reader).
pub(crate) type NetworkCell = Arc<Mutex<PodNetwork>>;

impl PodNetwork {
    /// Adds `rule` until `until`. Like `tc qdisc add` on a root that has one, a second netem
    /// rule replaces neither: delay and loss add up.
    pub fn apply(&mut self, rule: NetRule, until: Instant) {
        let draws = [stream(&rule, Lane::Service), stream(&rule, Lane::Direct)];
        self.rules.push(Active { rule, until, draws });
    }

    /// Takes rules away; returns whether any was there (tc and iptables fail otherwise).
    pub fn remove(&mut self, removal: &Removal) -> bool {
        let before = self.rules.len();
        self.rules.retain(|a| match (removal, &a.rule) {
            (Removal::Qdisc, NetRule::Delay { .. } | NetRule::Loss { .. }) => false,
            (
                Removal::Drop { chain, port, to },
                NetRule::Drop {
                    chain: c,
                    port: p,
                    to: t,
                },
            ) => !(chain == c && port == p && to == t),
            _ => true,
        });
        self.rules.len() != before
    }

    /// What one request from `peer` to this pod's `port` meets: its answer leaves through the
    /// pod's root qdisc towards `peer`, so destination-scoped rules apply only when `peer`
    /// matches one of their destinations (netem on the root acts on egress, as on Linux).
    pub fn judge_inbound(&mut self, port: u16, peer: SocketAddr, lane: Lane) -> Verdict {
        self.judge(lane, |rule| match rule {
            NetRule::Delay { to, .. } | NetRule::Loss { to, .. } => {
                to.is_empty() || to.iter().any(|d| d.matches(peer))
            }
            // The request in (INPUT, --dport = our port) or the answer out (OUTPUT, --sport =
            // our port, or -d matching the peer): either cuts the exchange.
            NetRule::Drop { port: p, to, .. } if to.is_empty() => p.is_none_or(|p| p == port),
            NetRule::Drop { to, .. } => to.iter().any(|d| d.matches(peer)),
        })
    }

    /// What one call from this pod to `dest` meets: the request leaves through the root qdisc
    /// towards `dest`; the answer comes back in to an ephemeral port (which no `--dport` or
    /// `--sport` rule of ours names).
    pub fn judge_outbound(&mut self, dest: SocketAddr) -> Verdict {
        self.judge(Lane::Direct, |rule| match rule {
            NetRule::Delay { to, .. } | NetRule::Loss { to, .. } => {
                to.is_empty() || to.iter().any(|d| d.matches(dest))
            }
            NetRule::Drop { port: None, to, .. } if to.is_empty() => true,
            NetRule::Drop { to, .. } => to.iter().any(|d| d.matches(dest)),
        })
    }

    /// Combines the active rules `applies` selects.
    fn judge(&mut self, lane: Lane, applies: impl Fn(&NetRule) -> bool) -> Verdict {
        let now = Instant::now();
        let mut v = Verdict::default();
        let lane = lane as usize;
        // Rules past their end stay listed until removed, as a script's own removal expects.
        for a in self
            .rules
            .iter_mut()
            .filter(|a| a.until > now && applies(&a.rule))
        {
            match &a.rule {
                NetRule::Delay {
                    delay,
                    jitter,
                    correlation,
                    ..
                } => {
                    let fresh = a.draws[lane].unit() * 2.0 - 1.0;
                    let rho = (correlation / 100.0).clamp(0.0, 1.0);
                    let draw = rho * self.last_jitter[lane] + (1.0 - rho) * fresh;
                    let secs = (delay.as_secs_f64() + draw * jitter.as_secs_f64()).max(0.0);
                    v.delay += Duration::from_secs_f64(secs);
                    self.last_jitter[lane] = draw;
                }
                NetRule::Loss { percent, .. } => {
                    // A request and its answer each cross the lossy link once; the model drops
                    // the exchange with the stated probability, the share a client sees.
                    if a.draws[lane].unit() * 100.0 < *percent {
                        v.lost = true;
                    }
                }
                NetRule::Drop { .. } => v.blackholed = true,
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::net_script::Chain;

    fn dest(s: &str) -> crate::fault::net_script::Dest {
        s.parse().unwrap()
    }

    #[test]
    fn scoped_netem_acts_only_on_packets_to_its_destinations() {
        let mut n = PodNetwork::default();
        let until = Instant::now() + Duration::from_secs(60);
        n.apply(
            NetRule::Delay {
                delay: Duration::from_millis(200),
                jitter: Duration::ZERO,
                correlation: 0.0,
                to: vec![dest("127.0.0.1/32:9000")],
            },
            until,
        );
        let api = "127.0.0.1:9000".parse().unwrap();
        let prober = "127.0.0.1:51000".parse().unwrap();
        assert_eq!(n.judge_outbound(api).delay, Duration::from_millis(200));
        assert_eq!(
            n.judge_outbound("127.0.0.1:9001".parse().unwrap()).delay,
            Duration::ZERO
        );
        // The answer to a prober goes to its ephemeral port: not a listed destination.
        assert_eq!(
            n.judge_inbound(8080, prober, Lane::Direct).delay,
            Duration::ZERO
        );
        assert!(n.remove(&Removal::Qdisc));
        assert_eq!(n.judge_outbound(api), Verdict::default());
    }

    #[test]
    fn unscoped_rules_keep_their_meaning_and_scoped_drops_need_their_exact_removal() {
        let mut n = PodNetwork::default();
        let until = Instant::now() + Duration::from_secs(60);
        let prober = "127.0.0.1:51000".parse().unwrap();
        n.apply(
            NetRule::Loss {
                percent: 100.0,
                to: vec![],
            },
            until,
        );
        assert!(n.judge_inbound(8080, prober, Lane::Direct).lost);
        assert!(n.judge_outbound("10.0.0.1:80".parse().unwrap()).lost);
        n.remove(&Removal::Qdisc);
        let to = vec![dest("10.0.0.0/8")];
        n.apply(
            NetRule::Drop {
                chain: Chain::Output,
                port: None,
                to: to.clone(),
            },
            until,
        );
        assert!(n.judge_outbound("10.1.2.3:80".parse().unwrap()).blackholed);
        assert!(!n.judge_outbound("127.0.0.1:80".parse().unwrap()).blackholed);
        assert!(!n.judge_inbound(8080, prober, Lane::Direct).blackholed);
        assert!(!n.remove(&Removal::Drop {
            chain: Chain::Output,
            port: None,
            to: vec![],
        }));
        assert!(n.remove(&Removal::Drop {
            chain: Chain::Output,
            port: None,
            to,
        }));
    }

    /// A pod losing `percent` of its exchanges for the next minute.
    fn lossy(percent: f64) -> PodNetwork {
        let mut n = PodNetwork::default();
        let rule = NetRule::Loss {
            percent,
            to: vec![],
        };
        n.apply(rule, Instant::now() + Duration::from_secs(60));
        n
    }

    #[test]
    fn a_loss_rule_loses_the_same_exchanges_on_every_run_and_about_its_share() {
        let fates = || {
            let mut n = lossy(30.0);
            let prober = "127.0.0.1:51000".parse().unwrap();
            (0..2_000)
                .map(|_| n.judge_inbound(8080, prober, Lane::Direct).lost)
                .collect::<Vec<bool>>()
        };
        let first = fates();
        assert_eq!(first, fates());
        let lost = first.iter().filter(|l| **l).count();
        assert!((540..=660).contains(&lost), "{lost} of 2000 lost at 30%");
    }

    #[test]
    fn direct_traffic_does_not_change_the_fate_of_service_routed_requests() {
        let fates = |direct_between: usize| {
            let mut n = lossy(30.0);
            let peer = "127.0.0.1:51000".parse().unwrap();
            (0..500)
                .map(|_| {
                    for _ in 0..direct_between {
                        n.judge_inbound(8080, peer, Lane::Direct);
                    }
                    n.judge_inbound(8080, peer, Lane::Service).lost
                })
                .collect::<Vec<bool>>()
        };
        let alone = fates(0);
        assert_eq!(alone, fates(3), "per-endpoint probes interleaved");
        let lost = alone.iter().filter(|l| **l).count();
        assert!((110..=190).contains(&lost), "{lost} of 500 lost at 30%");
    }
}
