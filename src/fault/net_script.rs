//! The shell script a pod network fault runs in its ephemeral container, written and read in
//! this one place so the fault and the sandbox's kubelet agree on it.
//!
//! The shape is `<apply>; sleep <seconds>; <remove>`, run as `sh -c '<script>'`: the container
//! itself takes the rule away when the window ends, so a steadfast that dies mid-window cannot
//! leave it behind (the dead man's switch is in the pod). Early removal is a second container
//! running `<remove>` alone. `<apply>` and `<remove>` are real `tc`/`iptables` command lines:
//! `tc qdisc add dev eth0 root netem delay 200ms 20ms 25%`, `tc qdisc add dev eth0 root netem
//! loss 30%`, `iptables -A INPUT -p tcp --dport 8080 -j DROP`, and their `del`/`-D` forms.
//!
//! A rule restricted to destinations (`to:`) is written as Chaos Mesh and FIS write it: for tc, a
//! `prio` root qdisc with a fourth band no priority maps to, netem on that band, and one `u32`
//! filter per destination (`match ip dst <cidr>`, `match ip dport <port> 0xffff`) steering
//! matching packets into it; for iptables, one `-d <cidr> -p tcp --dport <port>` rule per
//! destination. `tc qdisc del dev eth0 root` still takes the whole tree away.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

/// The interface the rules go on: a pod's network namespace names its interface `eth0`.
pub const DEVICE: &str = "eth0";

/// Direction of a dropped packet, as iptables names its chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Packets to the pod.
    Input,
    /// Packets from the pod.
    Output,
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Input => "INPUT",
            Chain::Output => "OUTPUT",
        }
    }
}

/// An IPv4 address range, `a.b.c.d/n` (tc's `u32 match ip dst` is IPv4 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    /// The network address (host bits cleared).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The /32 of one address.
    pub fn host(addr: Ipv4Addr) -> Self {
        Self { addr, prefix: 32 }
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether `ip` lies in the range.
    pub fn contains(self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => u32::from(v4) & self.mask() == u32::from(self.addr) & self.mask(),
            IpAddr::V6(_) => false,
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    /// `a.b.c.d/n` or a bare address (a /32).
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv4 address or CIDR"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{s}` has no prefix length in 0..=32"))?;
        let c = Self { addr, prefix };
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & c.mask()),
            prefix,
        })
    }
}

/// One destination a rule is restricted to: an address range, a TCP/UDP port, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dest {
    /// Destination addresses; any if none.
    pub cidr: Option<Ipv4Cidr>,
    /// Destination port; any if none.
    pub port: Option<u16>,
}

impl Dest {
    /// Whether a packet to `to` matches.
    pub fn matches(&self, to: std::net::SocketAddr) -> bool {
        self.cidr.is_none_or(|c| c.contains(to.ip())) && self.port.is_none_or(|p| p == to.port())
    }

    /// The compact form recorded in undo records: `10.0.0.5/32:80`, `10.0.0.0/16`, `:5432`.
    pub fn render(&self) -> String {
        let c = self.cidr.map(|c| c.to_string()).unwrap_or_default();
        match self.port {
            Some(p) => format!("{c}:{p}"),
            None => c,
        }
    }
}

impl FromStr for Dest {
    type Err = String;

    /// Reads [`Dest::render`]'s form.
    fn from_str(s: &str) -> Result<Self, String> {
        let (c, p) = match s.rsplit_once(':') {
            Some((c, p)) => (
                c,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("`{s}`: `{p}` is not a port"))?,
                ),
            ),
            None => (s, None),
        };
        let cidr = if c.is_empty() { None } else { Some(c.parse()?) };
        if cidr.is_none() && p.is_none() {
            return Err("an empty destination".into());
        }
        Ok(Self { cidr, port: p })
    }
}

/// One network rule.
#[derive(Debug, Clone, PartialEq)]
pub enum NetRule {
    /// `netem delay <delay> <jitter> <correlation>%`.
    Delay {
        /// Added to every packet.
        delay: Duration,
        /// Uniform spread around `delay`.
        jitter: Duration,
        /// How much each jitter draw leans on the previous one, 0..=100.
        correlation: f64,
        /// Only packets to these destinations; all egress if empty.
        to: Vec<Dest>,
    },
    /// `netem loss <percent>%`.
    Loss {
        /// Share of packets dropped, 0..=100.
        percent: f64,
        /// Only packets to these destinations; all egress if empty.
        to: Vec<Dest>,
    },
    /// `iptables -A <chain> [-p tcp --dport <port>] -j DROP`, or with `to`, one
    /// `iptables -A OUTPUT -d <cidr> -p tcp --dport <port> -j DROP` per destination.
    Drop {
        /// Which direction.
        chain: Chain,
        /// Only this TCP port (destination for INPUT, source for OUTPUT); all traffic if none.
        port: Option<u16>,
        /// Only packets to these destinations (OUTPUT only, without `port`).
        to: Vec<Dest>,
    },
}

impl NetRule {
    /// The destinations the rule is restricted to.
    pub fn to(&self) -> &[Dest] {
        match self {
            NetRule::Delay { to, .. } | NetRule::Loss { to, .. } | NetRule::Drop { to, .. } => to,
        }
    }

    /// The same rule restricted to `to`.
    #[must_use]
    pub fn with_to(mut self, dests: Vec<Dest>) -> Self {
        match &mut self {
            NetRule::Delay { to, .. } | NetRule::Loss { to, .. } | NetRule::Drop { to, .. } => {
                *to = dests;
            }
        }
        self
    }
}

/// Which family of rule a removal takes away.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// `tc qdisc del dev <dev> root`: every netem rule (delay and loss).
    Qdisc,
    /// `iptables -D ...`: one drop rule.
    Drop {
        /// Which direction.
        chain: Chain,
        /// Its port, as added.
        port: Option<u16>,
        /// Its destinations, as added.
        to: Vec<Dest>,
    },
}

/// One step of a parsed script.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Add a rule.
    Apply(NetRule),
    /// Wait.
    Sleep(Duration),
    /// Take rules away.
    Remove(Removal),
}

/// A script the sandbox cannot read: the offending command and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot interpret `{command}`: {reason}")]
pub struct ScriptError {
    /// The command line.
    pub command: String,
    /// What is wrong with it.
    pub reason: String,
}

/// tc's time syntax: `200ms`, `1.5s`, `500us`; a bare number is microseconds.
fn tc_time(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

fn percent(p: f64) -> String {
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// The handle of the `prio` root qdisc of a destination-scoped netem rule.
const PRIO_ROOT: &str = "root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1";
/// The band no priority maps to: only filtered packets reach its netem.
const NETEM_PARENT: &str = "parent 1:4 handle 40:";

fn netem_args(rule: &NetRule) -> String {
    match rule {
        NetRule::Delay {
            delay,
            jitter,
            correlation,
            ..
        } => format!(
            "netem delay {} {} {}",
            tc_time(*delay),
            tc_time(*jitter),
            percent(*correlation)
        ),
        NetRule::Loss { percent: p, .. } => format!("netem loss {}", percent(*p)),
        NetRule::Drop { .. } => String::new(),
    }
}

fn u32_filter(d: &Dest) -> String {
    let mut m = String::new();
    if let Some(c) = d.cidr {
        m.push_str(&format!(" match ip dst {c}"));
    }
    if let Some(p) = d.port {
        m.push_str(&format!(" match ip dport {p} 0xffff"));
    }
    format!("tc filter add dev {DEVICE} parent 1: protocol ip prio 1 u32{m} flowid 1:4")
}

/// The commands that add `rule`, in order.
pub fn apply_commands(rule: &NetRule) -> Vec<String> {
    match rule {
        NetRule::Delay { to, .. } | NetRule::Loss { to, .. } if to.is_empty() => {
            vec![format!(
                "tc qdisc add dev {DEVICE} root {}",
                netem_args(rule)
            )]
        }
        NetRule::Delay { to, .. } | NetRule::Loss { to, .. } => {
            let mut v = vec![
                format!("tc qdisc add dev {DEVICE} {PRIO_ROOT}"),
                format!(
                    "tc qdisc add dev {DEVICE} {NETEM_PARENT} {}",
                    netem_args(rule)
                ),
            ];
            v.extend(to.iter().map(u32_filter));
            v
        }
        NetRule::Drop { chain, port, to } => iptables("-A", *chain, *port, to),
    }
}

/// The commands that add `rule`, joined as the script writes them.
pub fn apply_command(rule: &NetRule) -> String {
    apply_commands(rule).join("; ")
}

fn iptables(op: &str, chain: Chain, port: Option<u16>, to: &[Dest]) -> Vec<String> {
    if !to.is_empty() {
        return to
            .iter()
            .map(|d| {
                let mut m = String::new();
                if let Some(c) = d.cidr {
                    m.push_str(&format!(" -d {c}"));
                }
                if let Some(p) = d.port {
                    m.push_str(&format!(" -p tcp --dport {p}"));
                }
                format!("iptables {op} {}{m} -j DROP", chain.name())
            })
            .collect();
    }
    let port = match (chain, port) {
        (_, None) => String::new(),
        (Chain::Input, Some(p)) => format!(" -p tcp --dport {p}"),
        (Chain::Output, Some(p)) => format!(" -p tcp --sport {p}"),
    };
    vec![format!("iptables {op} {}{port} -j DROP", chain.name())]
}

/// The command that takes `rule` away again (all of it: the whole qdisc tree, every iptables
/// line).
pub fn remove_command(rule: &NetRule) -> String {
    match rule {
        NetRule::Delay { .. } | NetRule::Loss { .. } => format!("tc qdisc del dev {DEVICE} root"),
        NetRule::Drop { chain, port, to } => iptables("-D", *chain, *port, to).join("; "),
    }
}

/// The fault's script: apply, hold for `window` (whole seconds, rounded up), remove.
pub fn window_script(rule: &NetRule, window: Duration) -> String {
    let secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
    format!(
        "{}; sleep {secs}; {}",
        apply_command(rule),
        remove_command(rule)
    )
}

/// The container command running `script`.
pub fn container_command(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Reads a container's command (`sh -c '<script>'`, the script's commands separated by `;`).
///
/// # Errors
/// Anything but that shape and the commands this module writes.
pub fn parse(command: &[String]) -> Result<Vec<Step>, ScriptError> {
    let script = match command {
        [sh, c, script] if (sh == "sh" || sh.ends_with("/sh")) && c == "-c" => script,
        _ => {
            return Err(ScriptError {
                command: command.join(" "),
                reason: "expected `sh -c '<script>'`".into(),
            });
        }
    };
    let lines: Vec<&str> = script
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        match parse_command(line)? {
            Line::Step(step) => push_merged(&mut steps, step),
            Line::PrioRoot => {
                let err = |reason: &str| ScriptError {
                    command: line.to_owned(),
                    reason: reason.to_owned(),
                };
                let Some(Line::NetemChild(rule)) =
                    lines.get(i).map(|l| parse_command(l)).transpose()?
                else {
                    return Err(err(
                        "a prio root must be followed by `tc qdisc add dev <dev> parent 1:4 handle 40: netem ...`",
                    ));
                };
                i += 1;
                let mut to = Vec::new();
                while let Some(Line::Filter(d)) =
                    lines.get(i).map(|l| parse_command(l)).transpose()?
                {
                    to.push(d);
                    i += 1;
                }
                if to.is_empty() {
                    return Err(err(
                        "a prio root with netem on band 1:4 needs at least one u32 filter to 1:4",
                    ));
                }
                steps.push(Step::Apply(rule.with_to(to)));
            }
            Line::NetemChild(_) | Line::Filter(_) => {
                return Err(ScriptError {
                    command: line.to_owned(),
                    reason:
                        "only valid right after `tc qdisc add dev <dev> root handle 1: prio ...`"
                            .into(),
                });
            }
        }
    }
    Ok(steps)
}

/// Consecutive `iptables` lines of one chain with `-d`/`--dport` matches make one rule.
fn push_merged(steps: &mut Vec<Step>, step: Step) {
    match (steps.last_mut(), step) {
        (
            Some(Step::Apply(NetRule::Drop {
                chain: c,
                port: None,
                to,
            })),
            Step::Apply(NetRule::Drop {
                chain,
                port: None,
                to: more,
            }),
        )
        | (
            Some(Step::Remove(Removal::Drop {
                chain: c,
                port: None,
                to,
            })),
            Step::Remove(Removal::Drop {
                chain,
                port: None,
                to: more,
            }),
        ) if *c == chain && !to.is_empty() && !more.is_empty() => to.extend(more),
        (_, step) => steps.push(step),
    }
}

/// One command line, before destination-scoped rules are grouped.
enum Line {
    Step(Step),
    /// `tc qdisc add dev <dev> root handle 1: prio bands 4 priomap ...`
    PrioRoot,
    /// `tc qdisc add dev <dev> parent 1:4 handle 40: netem ...`
    NetemChild(NetRule),
    /// `tc filter add dev <dev> parent 1: protocol ip prio 1 u32 match ... flowid 1:4`
    Filter(Dest),
}

fn parse_filter(rest: &[&str]) -> Result<Dest, String> {
    let mut d = Dest {
        cidr: None,
        port: None,
    };
    let mut words = rest;
    loop {
        match words {
            ["match", "ip", "dst", c, more @ ..] if d.cidr.is_none() => {
                d.cidr = Some(c.parse()?);
                words = more;
            }
            ["match", "ip", "dport", p, "0xffff", more @ ..] if d.port.is_none() => {
                d.port = Some(p.parse().map_err(|_| format!("`{p}` is not a port"))?);
                words = more;
            }
            ["flowid", "1:4"] if d.cidr.is_some() || d.port.is_some() => return Ok(d),
            _ => {
                return Err(
                    "expected `u32 [match ip dst <cidr>] [match ip dport <port> 0xffff] flowid 1:4`"
                        .into(),
                );
            }
        }
    }
}

fn parse_iptables_matches(chain: Chain, rest: &[&str]) -> Result<(Option<u16>, Vec<Dest>), String> {
    match rest {
        ["-j", "DROP"] => Ok((None, Vec::new())),
        ["-p", "tcp", flag @ ("--dport" | "--sport"), p, "-j", "DROP"] => {
            let port: u16 = p.parse().map_err(|_| "not a port number".to_owned())?;
            match (chain, *flag) {
                (Chain::Input, "--dport") | (Chain::Output, "--sport") => Ok((Some(port), Vec::new())),
                // Egress to a destination port: a `to: {ports: [...]}` rule.
                (Chain::Output, _) => Ok((
                    None,
                    vec![Dest {
                        cidr: None,
                        port: Some(port),
                    }],
                )),
                (Chain::Input, _) => Err("INPUT matches --dport".into()),
            }
        }
        ["-d", c, more @ ..] if chain == Chain::Output => {
            let cidr = Some(c.parse::<Ipv4Cidr>()?);
            let port = match more {
                ["-j", "DROP"] => None,
                ["-p", "tcp", "--dport", p, "-j", "DROP"] => {
                    Some(p.parse().map_err(|_| "not a port number".to_owned())?)
                }
                _ => return Err("expected `-d <cidr> [-p tcp --dport <port>] -j DROP`".into()),
            };
            Ok((None, vec![Dest { cidr, port }]))
        }
        _ => Err(
            "expected `[-p tcp --dport|--sport <port>] -j DROP` or, on OUTPUT, `-d <cidr> [-p tcp --dport <port>] -j DROP`"
                .into(),
        ),
    }
}

fn parse_command(line: &str) -> Result<Line, ScriptError> {
    let err = |reason: &str| ScriptError {
        command: line.to_owned(),
        reason: reason.to_owned(),
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let step = |s| Ok(Line::Step(s));
    match words.as_slice() {
        ["sleep", n] => n
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Line::Step(Step::Sleep(Duration::from_secs_f64(s))))
            .ok_or_else(|| err("sleep needs a number of seconds")),
        ["tc", "qdisc", "del", "dev", _, "root"] => step(Step::Remove(Removal::Qdisc)),
        ["tc", "qdisc", "add", "dev", _, "root", "netem", rest @ ..] => parse_netem(rest)
            .map(|r| Line::Step(Step::Apply(r)))
            .map_err(|r| err(&r)),
        ["tc", "qdisc", "add", "dev", _, rest @ ..] if rest.join(" ") == PRIO_ROOT => {
            Ok(Line::PrioRoot)
        }
        [
            "tc",
            "qdisc",
            "add",
            "dev",
            _,
            "parent",
            "1:4",
            "handle",
            "40:",
            "netem",
            rest @ ..,
        ] => parse_netem(rest).map(Line::NetemChild).map_err(|r| err(&r)),
        [
            "tc",
            "filter",
            "add",
            "dev",
            _,
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            _,
            "u32",
            rest @ ..,
        ] => parse_filter(rest).map(Line::Filter).map_err(|r| err(&r)),
        ["iptables", op @ ("-A" | "-D"), chain, rest @ ..] => {
            let chain = match *chain {
                "INPUT" => Chain::Input,
                "OUTPUT" => Chain::Output,
                _ => return Err(err("only the INPUT and OUTPUT chains are modelled")),
            };
            let (port, to) = parse_iptables_matches(chain, rest).map_err(|r| err(&r))?;
            step(if *op == "-A" {
                Step::Apply(NetRule::Drop { chain, port, to })
            } else {
                Step::Remove(Removal::Drop { chain, port, to })
            })
        }
        _ => Err(err(
            "not a tc netem, tc u32 filter, iptables DROP or sleep command",
        )),
    }
}

fn parse_time(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1e-6)
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("`{s}` is not a tc time"))
}

fn parse_percent(s: &str) -> Result<f64, String> {
    s.strip_suffix('%')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| format!("`{s}` is not a percentage"))
}

fn parse_netem(args: &[&str]) -> Result<NetRule, String> {
    match args {
        ["delay", rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {
            let delay = parse_time(rest[0])?;
            let jitter = rest.get(1).map(|j| parse_time(j)).transpose()?;
            let correlation = rest.get(2).map(|c| parse_percent(c)).transpose()?;
            Ok(NetRule::Delay {
                delay,
                jitter: jitter.unwrap_or_default(),
                correlation: correlation.unwrap_or(0.0),
                to: Vec::new(),
            })
        }
        ["loss", p] | ["loss", "random", p] => Ok(NetRule::Loss {
            percent: parse_percent(p)?,
            to: Vec::new(),
        }),
        _ => Err("only `netem delay <time> [<jitter> [<correlation>%]]` and `netem loss <p>%` are modelled".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(rule: NetRule) {
        let script = window_script(&rule, Duration::from_millis(29_500));
        let steps = parse(&container_command(&script)).expect("parses");
        assert_eq!(steps[0], Step::Apply(rule.clone()), "{script}");
        assert_eq!(steps[1], Step::Sleep(Duration::from_secs(30)), "{script}");
        let removal = parse(&container_command(&remove_command(&rule))).expect("parses");
        assert_eq!(steps[2], removal[0]);
    }

    #[test]
    fn every_script_the_fault_writes_reads_back() {
        roundtrip(NetRule::Delay {
            delay: Duration::from_millis(200),
            jitter: Duration::from_micros(1500),
            correlation: 25.0,
            to: vec![],
        });
        roundtrip(NetRule::Loss {
            percent: 30.0,
            to: vec![],
        });
        roundtrip(NetRule::Drop {
            chain: Chain::Input,
            port: Some(8080),
            to: vec![],
        });
        roundtrip(NetRule::Drop {
            chain: Chain::Output,
            port: None,
            to: vec![],
        });
        assert_eq!(
            window_script(
                &NetRule::Delay {
                    delay: Duration::from_millis(200),
                    jitter: Duration::ZERO,
                    correlation: 0.0,
                    to: vec![],
                },
                Duration::from_secs(30)
            ),
            "tc qdisc add dev eth0 root netem delay 200ms 0ms 0%; sleep 30; tc qdisc del dev eth0 root"
        );
    }

    fn dests() -> Vec<Dest> {
        vec![
            "10.96.0.10/32:80".parse().unwrap(),
            "10.244.1.7/32:8080".parse().unwrap(),
            "10.244.2.0/24".parse().unwrap(),
            ":5432".parse().unwrap(),
        ]
    }

    #[test]
    fn destination_scoped_scripts_read_back() {
        roundtrip(NetRule::Delay {
            delay: Duration::from_millis(200),
            jitter: Duration::ZERO,
            correlation: 0.0,
            to: dests(),
        });
        roundtrip(NetRule::Loss {
            percent: 30.0,
            to: dests(),
        });
        roundtrip(NetRule::Drop {
            chain: Chain::Output,
            port: None,
            to: dests(),
        });
        let rule = NetRule::Loss {
            percent: 30.0,
            to: dests()[..2].to_vec(),
        };
        assert_eq!(
            window_script(&rule, Duration::from_secs(30)),
            "tc qdisc add dev eth0 root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1; \
             tc qdisc add dev eth0 parent 1:4 handle 40: netem loss 30%; \
             tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.96.0.10/32 match ip dport 80 0xffff flowid 1:4; \
             tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.244.1.7/32 match ip dport 8080 0xffff flowid 1:4; \
             sleep 30; tc qdisc del dev eth0 root"
        );
        let drop = NetRule::Drop {
            chain: Chain::Output,
            port: None,
            to: vec![dests()[2], dests()[3]],
        };
        assert_eq!(
            apply_command(&drop),
            "iptables -A OUTPUT -d 10.244.2.0/24 -j DROP; iptables -A OUTPUT -p tcp --dport 5432 -j DROP"
        );
        assert_eq!(
            remove_command(&drop),
            "iptables -D OUTPUT -d 10.244.2.0/24 -j DROP; iptables -D OUTPUT -p tcp --dport 5432 -j DROP"
        );
    }

    #[test]
    fn destinations_match_address_and_port() {
        let d: Dest = "10.0.0.0/8:80".parse().unwrap();
        assert!(d.matches("10.1.2.3:80".parse().unwrap()));
        assert!(!d.matches("10.1.2.3:81".parse().unwrap()));
        assert!(!d.matches("11.0.0.1:80".parse().unwrap()));
        assert_eq!(
            "10.1.2.3/8".parse::<Ipv4Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!("10.0.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("::1/128".parse::<Ipv4Cidr>().is_err());
        assert!("".parse::<Dest>().is_err());
    }

    #[test]
    fn real_tc_syntax_is_read() {
        let steps = parse(&container_command(
            "tc qdisc add dev eth0 root netem delay 1s; tc qdisc add dev eth0 root netem loss random 2.5%",
        ))
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Apply(NetRule::Delay {
                    delay: Duration::from_secs(1),
                    jitter: Duration::ZERO,
                    correlation: 0.0,
                    to: vec![],
                }),
                Step::Apply(NetRule::Loss {
                    percent: 2.5,
                    to: vec![],
                }),
            ]
        );
    }

    #[test]
    fn unknown_commands_are_errors_naming_the_line() {
        for bad in [
            "rm -rf /",
            "tc qdisc add dev eth0 root netem rate 1mbit",
            "tc qdisc add dev eth0 root netem loss 130%",
            "iptables -A FORWARD -j DROP",
            "sleep forever",
            // Half a destination-scoped tree, or filters the model does not read.
            "tc qdisc add dev eth0 root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1",
            "tc qdisc add dev eth0 root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1; tc qdisc add dev eth0 parent 1:4 handle 40: netem loss 5%",
            "tc qdisc add dev eth0 parent 1:4 handle 40: netem loss 5%",
            "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:4",
            "tc qdisc add dev eth0 root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1; tc qdisc add dev eth0 parent 1:4 handle 40: netem loss 5%; tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip src 10.0.0.1/32 flowid 1:4",
            "iptables -A INPUT -d 10.0.0.1/32 -j DROP",
            "iptables -A OUTPUT -d 10.0.0.1/32 -p udp --dport 53 -j DROP",
        ] {
            let e = parse(&container_command(bad)).unwrap_err();
            assert!(bad.contains(&e.command), "{e}");
        }
        assert!(parse(&["tc".into(), "qdisc".into()]).is_err());
    }
}
