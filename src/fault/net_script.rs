//! The shell script a pod network fault runs in its ephemeral container, written and read in
//! this one place so the fault and the sandbox's kubelet agree on it.
//!
//! The shape is `<apply>; sleep <seconds>; <remove>`, run as `sh -c '<script>'`: the container
//! itself takes the rule away when the window ends, so a steadfast that dies mid-window cannot
//! leave it behind (the dead man's switch is in the pod). Early removal is a second container
//! running `<remove>` alone. `<apply>` and `<remove>` are real `tc`/`iptables` command lines:
//! `tc qdisc add dev eth0 root netem delay 200ms 20ms 25%`, `tc qdisc add dev eth0 root netem
//! loss 30%`, `iptables -A INPUT -p tcp --dport 8080 -j DROP`, and their `del`/`-D` forms.

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
    },
    /// `netem loss <percent>%`.
    Loss {
        /// Share of packets dropped, 0..=100.
        percent: f64,
    },
    /// `iptables -A <chain> [-p tcp --dport <port>] -j DROP`.
    Drop {
        /// Which direction.
        chain: Chain,
        /// Only this TCP port (destination for INPUT, source for OUTPUT); all traffic if none.
        port: Option<u16>,
    },
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

/// The command that adds `rule`.
pub fn apply_command(rule: &NetRule) -> String {
    match rule {
        NetRule::Delay {
            delay,
            jitter,
            correlation,
        } => format!(
            "tc qdisc add dev {DEVICE} root netem delay {} {} {}",
            tc_time(*delay),
            tc_time(*jitter),
            percent(*correlation)
        ),
        NetRule::Loss { percent: p } => {
            format!("tc qdisc add dev {DEVICE} root netem loss {}", percent(*p))
        }
        NetRule::Drop { chain, port } => iptables("-A", *chain, *port),
    }
}

fn iptables(op: &str, chain: Chain, port: Option<u16>) -> String {
    let port = match (chain, port) {
        (_, None) => String::new(),
        (Chain::Input, Some(p)) => format!(" -p tcp --dport {p}"),
        (Chain::Output, Some(p)) => format!(" -p tcp --sport {p}"),
    };
    format!("iptables {op} {}{port} -j DROP", chain.name())
}

/// The command that takes `rule` away again.
pub fn remove_command(rule: &NetRule) -> String {
    match rule {
        NetRule::Delay { .. } | NetRule::Loss { .. } => format!("tc qdisc del dev {DEVICE} root"),
        NetRule::Drop { chain, port } => iptables("-D", *chain, *port),
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
    script
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(parse_command)
        .collect()
}

fn parse_command(line: &str) -> Result<Step, ScriptError> {
    let err = |reason: &str| ScriptError {
        command: line.to_owned(),
        reason: reason.to_owned(),
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["sleep", n] => n
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Step::Sleep(Duration::from_secs_f64(s)))
            .ok_or_else(|| err("sleep needs a number of seconds")),
        ["tc", "qdisc", "del", "dev", _, "root"] => Ok(Step::Remove(Removal::Qdisc)),
        ["tc", "qdisc", "add", "dev", _, "root", "netem", rest @ ..] => {
            parse_netem(rest).map(Step::Apply).map_err(|r| err(&r))
        }
        ["iptables", op @ ("-A" | "-D"), chain, rest @ ..] => {
            let chain = match *chain {
                "INPUT" => Chain::Input,
                "OUTPUT" => Chain::Output,
                _ => return Err(err("only the INPUT and OUTPUT chains are modelled")),
            };
            let port = match rest {
                ["-j", "DROP"] => None,
                ["-p", "tcp", flag @ ("--dport" | "--sport"), p, "-j", "DROP"] => {
                    let wanted = if chain == Chain::Input {
                        "--dport"
                    } else {
                        "--sport"
                    };
                    if *flag != wanted {
                        return Err(err("INPUT matches --dport, OUTPUT --sport"));
                    }
                    Some(p.parse().map_err(|_| err("not a port number"))?)
                }
                _ => return Err(err("expected `[-p tcp --dport|--sport <port>] -j DROP`")),
            };
            Ok(if *op == "-A" {
                Step::Apply(NetRule::Drop { chain, port })
            } else {
                Step::Remove(Removal::Drop { chain, port })
            })
        }
        _ => Err(err("not a tc netem, iptables DROP or sleep command")),
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
            })
        }
        ["loss", p] | ["loss", "random", p] => Ok(NetRule::Loss {
            percent: parse_percent(p)?,
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
        });
        roundtrip(NetRule::Loss { percent: 30.0 });
        roundtrip(NetRule::Drop {
            chain: Chain::Input,
            port: Some(8080),
        });
        roundtrip(NetRule::Drop {
            chain: Chain::Output,
            port: None,
        });
        assert_eq!(
            window_script(
                &NetRule::Delay {
                    delay: Duration::from_millis(200),
                    jitter: Duration::ZERO,
                    correlation: 0.0
                },
                Duration::from_secs(30)
            ),
            "tc qdisc add dev eth0 root netem delay 200ms 0ms 0%; sleep 30; tc qdisc del dev eth0 root"
        );
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
                    correlation: 0.0
                }),
                Step::Apply(NetRule::Loss { percent: 2.5 }),
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
        ] {
            let e = parse(&container_command(bad)).unwrap_err();
            assert!(bad.starts_with(&e.command), "{e}");
        }
        assert!(parse(&["tc".into(), "qdisc".into()]).is_err());
    }
}
