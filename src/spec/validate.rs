//! Semantic checks: everything a well-typed experiment can still get wrong, found without I/O so
//! `validate` gives the same answer on a laptop as in CI.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use super::diagnostic::{Issue, did_you_mean};
use super::experiment::{API_VERSION, ExperimentSpec, KIND, ScheduleSpec};
use super::fault::{
    FAULT_KINDS, FaultSpec, InstanceTargetSpec, NodeTargetSpec, PodTargetSpec, SelectionMode,
};
use super::probe::{
    HttpProbeSpec, KubernetesProbeSpec, PROBE_KINDS, ProbeKind, ProbeSpec, PrometheusProbeSpec,
};
use super::safety::SafetySpec;
use super::selector::{
    FIELD_SELECTOR_HINT, FieldSelector, LABEL_SELECTOR_HINT, LabelSelector, is_dns_label,
};
use super::target::{MEASURES, Measure, TargetSpec, Window};

/// The namespace faults never touch unless `safety.allowNamespaces` names it.
pub const PROTECTED_NAMESPACE: &str = "kube-system";

/// Every semantic problem of `spec`, in document order of discovery.
pub fn validate(spec: &ExperimentSpec) -> Vec<Issue> {
    let mut v = Validator::default();
    v.header(spec);
    v.spec(spec);
    v.issues
}

#[derive(Default)]
struct Validator {
    issues: Vec<Issue>,
}

impl Validator {
    fn error(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let hint = hint.into();
        let issue = Issue::error(path, message);
        self.issues.push(if hint.is_empty() {
            issue
        } else {
            issue.hint(hint)
        });
    }

    fn warn(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.issues.push(Issue::warning(path, message).hint(hint));
    }

    fn header(&mut self, spec: &ExperimentSpec) {
        if spec.api_version != API_VERSION {
            self.error(
                "apiVersion",
                format!("unsupported apiVersion `{}`", spec.api_version),
                format!("use `apiVersion: {API_VERSION}`"),
            );
        }
        if spec.kind != KIND {
            self.error(
                "kind",
                format!("kind is `{}`, not `{KIND}`", spec.kind),
                format!("use `kind: {KIND}`"),
            );
        }
        if !is_dns_label(&spec.metadata.name) {
            self.error(
                "metadata.name",
                format!("name `{}` is not a DNS label", spec.metadata.name),
                "use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        }
        for key in spec.metadata.labels.keys() {
            if LabelSelector::parse(&format!("{key}=x")).is_err() {
                self.error(
                    format!("metadata.labels.{key}"),
                    format!("label key `{key}` is not a valid Kubernetes label key"),
                    "use an optional DNS prefix and a name of letters, digits, '-', '_' and '.'",
                );
            }
        }
    }

    fn spec(&mut self, experiment: &ExperimentSpec) {
        let spec = &experiment.spec;
        if spec.duration.get().is_zero() {
            self.error(
                "spec.duration",
                "the duration is zero",
                "give the fault phase a length, e.g. 2m",
            );
        }
        if let Some(timeout) = spec.timeout
            && timeout.get() <= spec.duration.get()
        {
            self.error(
                "spec.timeout",
                format!("timeout {timeout} is not longer than the duration {}", spec.duration),
                "the timeout covers steady-state checks and recovery too; make it longer than the duration",
            );
        }
        if let Some(schedule) = &spec.schedule {
            self.schedule(schedule);
        }

        let probes = &spec.steady_state.probes;
        if probes.is_empty() {
            self.error(
                "spec.steadyState.probes",
                "no probes: nothing would tell whether the system stays available",
                "add at least one probe, e.g. an http probe of the Service under test",
            );
        }
        self.unique_names(
            probes.iter().map(|p| p.name.as_str()),
            "spec.steadyState.probes",
            "probe",
        );
        for (i, probe) in probes.iter().enumerate() {
            self.probe(&format!("spec.steadyState.probes[{i}]"), probe);
        }

        self.unique_names(
            spec.faults.iter().map(|f| f.name.as_str()),
            "spec.faults",
            "fault",
        );
        for (i, fault) in spec.faults.iter().enumerate() {
            self.fault(&format!("spec.faults[{i}]"), fault, experiment);
        }

        let probe_kinds: BTreeMap<&str, Option<ProbeKind>> = probes
            .iter()
            .map(|p| (p.name.as_str(), single(p.kinds())))
            .collect();
        let mut target_names = HashSet::new();
        for (i, target) in spec.targets.iter().enumerate() {
            let path = format!("spec.targets[{i}]");
            if !target_names.insert(target.display_name()) {
                self.error(
                    format!("{path}.name"),
                    format!("a second target named `{}`", target.display_name()),
                    "give each target a unique name",
                );
            }
            self.target(&path, target, &probe_kinds, experiment);
        }
        if spec.targets.is_empty() {
            self.warn(
                "spec.targets",
                "no targets: the verdict only says whether the steady state held",
                "add availability targets, e.g. `availability: \">= 99.5%\"` for an http probe",
            );
        }
        self.safety(&spec.safety, &probe_kinds);
    }

    fn schedule(&mut self, schedule: &ScheduleSpec) {
        if let Err(reason) = crate::schedule::parse_cron(&schedule.cron) {
            self.error(
                "spec.schedule.cron",
                format!("invalid cron expression `{}`: {reason}", schedule.cron),
                "use five fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * 1-5`",
            );
        }
        if let Some(zone) = &schedule.time_zone
            && chrono_tz::Tz::from_str(zone).is_err()
        {
            self.error(
                "spec.schedule.timeZone",
                format!("unknown time zone `{zone}`"),
                "use an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`",
            );
        }
    }

    fn unique_names<'a>(&mut self, names: impl Iterator<Item = &'a str>, path: &str, what: &str) {
        let mut seen = HashSet::new();
        for (i, name) in names.enumerate() {
            if !is_dns_label(name) {
                self.error(
                    format!("{path}[{i}].name"),
                    format!("{what} name `{name}` is not a DNS label"),
                    "use lowercase letters, digits and '-'",
                );
            }
            if !seen.insert(name) {
                self.error(
                    format!("{path}[{i}].name"),
                    format!("a second {what} named `{name}`"),
                    format!("give each {what} a unique name"),
                );
            }
        }
    }

    fn probe(&mut self, path: &str, probe: &ProbeSpec) {
        let kinds = probe.kinds();
        if kinds.len() != 1 {
            self.exactly_one(path, kinds.len(), PROBE_KINDS, "probe kind");
        }
        if let Some(http) = &probe.http {
            self.http_probe(&format!("{path}.http"), http);
        }
        if let Some(prom) = &probe.prometheus {
            self.prometheus_probe(&format!("{path}.prometheus"), prom);
        }
        if let Some(kube) = &probe.kubernetes {
            self.kubernetes_probe(&format!("{path}.kubernetes"), kube);
        }
        if let Some(asg) = &probe.autoscaling {
            let path = format!("{path}.autoscaling");
            if asg.groups.is_empty() && asg.tags.is_empty() {
                self.error(
                    &path,
                    "no groups and no tags: which Auto Scaling groups?",
                    "list `groups` or `tags`",
                );
            }
            self.positive(&format!("{path}.every"), asg.every.get());
        }
    }

    fn exactly_one(&mut self, path: &str, found: usize, allowed: &[&str], what: &str) {
        let message = if found == 0 {
            format!("no {what}")
        } else {
            format!("{found} {what}s; exactly one is allowed")
        };
        self.error(
            path,
            message,
            format!("give exactly one of: {}", allowed.join(", ")),
        );
    }

    fn positive(&mut self, path: &str, value: std::time::Duration) {
        if value.is_zero() {
            self.error(path, "must be longer than zero", "e.g. 1s");
        }
    }

    fn http_probe(&mut self, path: &str, http: &HttpProbeSpec) {
        match (&http.url, &http.service) {
            (Some(_), Some(_)) => self.error(path, "both `url` and `service`", "give one of them"),
            (None, None) => self.error(
                path,
                "no `url` and no `service`: what to probe?",
                "give `url` or `service`",
            ),
            (Some(url), None) => {
                if http.per_endpoint {
                    self.error(
                        format!("{path}.perEndpoint"),
                        "perEndpoint needs `service`: a bare URL has no endpoints to list",
                        "name the Service with `service`, or drop perEndpoint",
                    );
                }
                let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                if !scheme_ok || url.parse::<http::Uri>().is_err() {
                    self.error(
                        format!("{path}.url"),
                        format!("`{url}` is not an http(s) URL"),
                        "write e.g. http://web.shop.svc:8080/healthz",
                    );
                }
            }
            (None, Some(service)) => {
                if !is_dns_label(&service.namespace) || !is_dns_label(&service.name) {
                    self.error(
                        format!("{path}.service"),
                        "namespace and name must be DNS labels",
                        "lowercase letters, digits and '-'",
                    );
                }
                if !service.path.starts_with('/') {
                    self.error(
                        format!("{path}.service.path"),
                        "the path must start with `/`",
                        "e.g. /healthz",
                    );
                }
                if !matches!(service.scheme.as_str(), "http" | "https") {
                    self.error(
                        format!("{path}.service.scheme"),
                        format!("unknown scheme `{}`", service.scheme),
                        "use http or https",
                    );
                }
            }
        }
        if http::Method::from_bytes(http.method.as_bytes()).is_err() {
            self.error(
                format!("{path}.method"),
                format!("`{}` is not an HTTP method", http.method),
                "e.g. GET, HEAD, POST",
            );
        }
        for name in http.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.error(
                    format!("{path}.headers.{name}"),
                    format!("`{name}` is not a valid header name"),
                    "",
                );
            }
        }
        if let Some(header) = &http.backend_header
            && http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            self.error(
                format!("{path}.backendHeader"),
                format!("`{header}` is not a valid header name"),
                "",
            );
        }
        for (i, status) in http.expect.status.iter().enumerate() {
            let valid = status.bounds().is_some_and(|(low, high)| {
                (100..=599).contains(&low) && (100..=599).contains(&high)
            });
            if !valid {
                self.error(
                    format!("{path}.expect.status[{i}]"),
                    "not a status code or range within 100-599",
                    "write a code such as 200 or a range such as \"200-299\"",
                );
            }
        }
        if let Some(pattern) = &http.expect.body_regex
            && let Err(err) = regex::Regex::new(pattern)
        {
            self.error(
                format!("{path}.expect.bodyRegex"),
                format!("invalid regular expression: {err}"),
                "",
            );
        }
        if let Some(json) = &http.expect.json
            && !(json.pointer.is_empty() || json.pointer.starts_with('/'))
        {
            self.error(
                format!("{path}.expect.json.pointer"),
                "a JSON pointer starts with `/`",
                "e.g. /status",
            );
        }
        if http.concurrency == 0 {
            self.error(
                format!("{path}.concurrency"),
                "must be at least 1",
                "e.g. 64",
            );
        }
        self.positive(&format!("{path}.timeout"), http.timeout.get());
        if http.rate.as_per_second() > 100_000.0 {
            self.error(
                format!("{path}.rate"),
                "above 100000/s: a probe, not a load test",
                "probe at 10/s to 2000/s",
            );
        }
    }

    fn prometheus_probe(&mut self, path: &str, prom: &PrometheusProbeSpec) {
        if let Some(url) = &prom.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.error(
                format!("{path}.url"),
                format!("`{url}` is not an http(s) URL"),
                "e.g. http://prometheus.monitoring:9090",
            );
        }
        if prom.query.trim().is_empty() {
            self.error(
                format!("{path}.query"),
                "the query is empty",
                "write PromQL, e.g. sum(rate(http_requests_total[$window]))",
            );
        }
        self.positive(&format!("{path}.every"), prom.every.get());
        self.positive(&format!("{path}.step"), prom.step.get());
        if let Some(auth) = &prom.auth {
            if auth.bearer_token_env.is_some() && auth.bearer_token_file.is_some() {
                self.error(
                    format!("{path}.auth"),
                    "both bearerTokenEnv and bearerTokenFile",
                    "give one of them",
                );
            }
            if auth.username.is_some() != auth.password_env.is_some() {
                self.error(
                    format!("{path}.auth"),
                    "basic auth needs both username and passwordEnv",
                    "",
                );
            }
            if auth.username.is_some()
                && (auth.bearer_token_env.is_some() || auth.bearer_token_file.is_some())
            {
                self.error(
                    format!("{path}.auth"),
                    "both basic and bearer auth",
                    "give one kind of credentials",
                );
            }
        }
    }

    fn kubernetes_probe(&mut self, path: &str, kube: &KubernetesProbeSpec) {
        let count = [
            kube.workload.is_some(),
            kube.nodes.is_some(),
            kube.pods.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            self.exactly_one(path, count, &["workload", "nodes", "pods"], "object kind");
        }
        if let Some(nodes) = &kube.nodes {
            if let Some(selector) = &nodes.selector {
                self.label_selector(&format!("{path}.nodes.selector"), selector);
            }
            if let Some(zone) = &nodes.zone {
                self.zone(&format!("{path}.nodes.zone"), zone);
            }
        }
        if let Some(pods) = &kube.pods {
            self.label_selector(&format!("{path}.pods.selector"), &pods.selector);
        }
    }

    fn label_selector(&mut self, path: &str, selector: &str) {
        if let Err(err) = LabelSelector::parse(selector) {
            self.error(path, err.to_string(), LABEL_SELECTOR_HINT);
        }
    }

    fn fault(&mut self, path: &str, fault: &FaultSpec, experiment: &ExperimentSpec) {
        let kinds = fault.kinds();
        if kinds.len() != 1 {
            self.exactly_one(path, kinds.len(), FAULT_KINDS, "fault kind");
        }
        let duration = experiment.spec.duration.get();
        let end = fault.at.get() + fault.for_.get();
        if end > duration {
            self.error(
                format!("{path}.for"),
                format!(
                    "the fault ends at {} (at {} + for {}), after the duration {}",
                    fmt_duration(end),
                    fault.at,
                    fault.for_,
                    experiment.spec.duration
                ),
                "shorten `at`/`for` or lengthen spec.duration",
            );
        }
        self.positive(&format!("{path}.effectTimeout"), fault.effect_timeout.get());
        if let Some(kind) = fault.kind() {
            if !kind.is_instant() {
                self.positive(&format!("{path}.for"), fault.for_.get());
            }
            if let Some(every) = fault.every {
                if !kind.is_instant() {
                    self.error(
                        format!("{path}.every"),
                        format!(
                            "`every` repeats instant faults; {} lasts for its whole window",
                            kind.key()
                        ),
                        "remove `every`, or use podKill, podEvict or ec2Terminate",
                    );
                } else if every.get().is_zero() || every.get() > fault.for_.get() {
                    self.error(
                        format!("{path}.every"),
                        format!("every {every} does not fit in for {}", fault.for_),
                        "make it longer than zero and at most `for`",
                    );
                }
            }
        }
        let safety = &experiment.spec.safety;
        if let Some(kill) = &fault.pod_kill {
            self.pod_target(&format!("{path}.podKill.target"), &kill.target, safety);
        }
        if let Some(evict) = &fault.pod_evict {
            self.pod_target(&format!("{path}.podEvict.target"), &evict.target, safety);
        }
        if let Some(drain) = &fault.node_drain {
            self.node_target(&format!("{path}.nodeDrain.target"), &drain.target);
            self.positive(&format!("{path}.nodeDrain.timeout"), drain.timeout.get());
        }
        if let Some(cordon) = &fault.node_cordon {
            self.node_target(&format!("{path}.nodeCordon.target"), &cordon.target);
        }
        if let Some(zone) = &fault.zone_outage {
            self.zone(&format!("{path}.zoneOutage.zone"), &zone.zone);
            if let Some(selector) = &zone.node_selector {
                self.label_selector(&format!("{path}.zoneOutage.nodeSelector"), selector);
            }
        }
        if let Some(term) = &fault.ec2_terminate {
            self.instance_target(&format!("{path}.ec2Terminate.target"), &term.target);
        }
        if let Some(stop) = &fault.ec2_stop {
            self.instance_target(&format!("{path}.ec2Stop.target"), &stop.target);
        }
        if let Some(partition) = &fault.az_partition {
            self.zone(&format!("{path}.azPartition.zone"), &partition.zone);
        }
        if let Some(latency) = &fault.pod_network_latency {
            let at = format!("{path}.podNetworkLatency");
            self.pod_target(&format!("{at}.target"), &latency.target, safety);
            self.positive(&format!("{at}.delay"), latency.delay.get());
            if latency.jitter.get() > latency.delay.get() {
                self.error(
                    format!("{at}.jitter"),
                    format!(
                        "jitter {} is larger than delay {}: netem would clip the spread at zero",
                        latency.jitter, latency.delay
                    ),
                    "make jitter at most delay",
                );
            }
            self.destinations(&format!("{at}.to"), latency.to.as_ref());
            self.image(&format!("{at}.image"), &latency.image);
        }
        if let Some(blackhole) = &fault.pod_network_blackhole {
            let at = format!("{path}.podNetworkBlackhole");
            self.pod_target(&format!("{at}.target"), &blackhole.target, safety);
            if blackhole.port == Some(0) {
                self.error(
                    format!("{at}.port"),
                    "port 0 matches no traffic",
                    "name the pod's port, e.g. port: 8080, or drop `port` to cut all traffic",
                );
            }
            if let Some(to) = &blackhole.to {
                if blackhole.direction != crate::spec::fault::TrafficDirection::Egress {
                    self.error(
                        format!("{at}.to"),
                        "`to:` names destinations, which only egress traffic has",
                        "add `direction: egress`, or drop `to:` and use `port` for ingress",
                    );
                } else if blackhole.port.is_some() {
                    self.error(
                        format!("{at}.port"),
                        "`port` (the pod's own source port) cannot be combined with `to:`",
                        "put destination ports in `to.ports` and drop `port`",
                    );
                }
                self.destinations(&format!("{at}.to"), Some(to));
            }
            self.image(&format!("{at}.image"), &blackhole.image);
        }
        if let Some(loss) = &fault.pod_network_loss {
            let at = format!("{path}.podNetworkLoss");
            self.pod_target(&format!("{at}.target"), &loss.target, safety);
            if loss.percent.value() <= 0.0 {
                self.error(
                    format!("{at}.percent"),
                    "a loss of 0% changes nothing",
                    "e.g. percent: 30%",
                );
            }
            self.destinations(&format!("{at}.to"), loss.to.as_ref());
            self.image(&format!("{at}.image"), &loss.image);
        }
    }

    fn destinations(&mut self, path: &str, to: Option<&crate::spec::fault::DestinationSpec>) {
        let Some(to) = to else { return };
        if to.pods.is_none()
            && to.service.is_none()
            && to.zone.is_none()
            && to.cidrs.is_empty()
            && to.ports.is_empty()
        {
            self.error(
                path,
                "`to:` names no destination",
                "add one of pods, service, zone, cidrs or ports, or drop `to:`",
            );
        }
        if let Some(p) = &to.pods
            && p.namespaces.is_empty()
        {
            self.error(
                format!("{path}.pods.namespaces"),
                "no namespace to look for destination pods in",
                "add e.g. `namespaces: [shop]`",
            );
        }
        if let Some(s) = &to.service
            && (s.namespace.trim().is_empty() || s.name.trim().is_empty())
        {
            self.error(
                format!("{path}.service"),
                "the Service needs a namespace and a name",
                "e.g. `service: {namespace: shop, name: api}`",
            );
        }
        if let Some(z) = &to.zone {
            self.zone(&format!("{path}.zone"), z);
        }
        for (i, c) in to.cidrs.iter().enumerate() {
            if let Err(e) = c.parse::<crate::fault::net_script::Ipv4Cidr>() {
                self.error(
                    format!("{path}.cidrs[{i}]"),
                    e,
                    "write an IPv4 range, e.g. 10.0.0.0/16 (tc u32 and these rules are IPv4 only)",
                );
            }
        }
        for (i, p) in to.ports.iter().enumerate() {
            if *p == 0 {
                self.error(
                    format!("{path}.ports[{i}]"),
                    "port 0 matches no traffic",
                    "name the destination port, e.g. 5432",
                );
            }
        }
    }

    fn image(&mut self, path: &str, image: &str) {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            self.error(
                path,
                format!("`{image}` is not an image reference"),
                "name an image carrying sh, tc and iptables, e.g. nicolaka/netshoot:v0.13",
            );
        }
    }

    fn zone(&mut self, path: &str, zone: &str) {
        if zone.trim().is_empty() {
            self.error(path, "the zone is empty", "name a zone, e.g. eu-west-1a");
        }
    }

    fn selection(
        &mut self,
        path: &str,
        mode: SelectionMode,
        count: Option<u32>,
        percent: Option<super::quantity::Percent>,
        names: &[String],
    ) {
        match mode {
            SelectionMode::Count => match count {
                None | Some(0) => self.error(
                    format!("{path}.count"),
                    "mode `count` needs a count of at least 1",
                    "add e.g. `count: 2`",
                ),
                Some(_) => {}
            },
            SelectionMode::Percent => match percent {
                None => self.error(
                    format!("{path}.percent"),
                    "mode `percent` needs a percent",
                    "add e.g. `percent: 30%`",
                ),
                Some(p) if p.value() <= 0.0 => {
                    self.error(format!("{path}.percent"), "must be above 0%", "")
                }
                Some(_) => {}
            },
            SelectionMode::Names if names.is_empty() => {
                self.error(
                    format!("{path}.names"),
                    "mode `names` needs names",
                    "list the objects by name",
                );
            }
            _ => {}
        }
        if count.is_some() && mode != SelectionMode::Count {
            self.error(
                format!("{path}.count"),
                "`count` is only read with `mode: count`",
                "set `mode: count` or remove `count`",
            );
        }
        if percent.is_some() && mode != SelectionMode::Percent {
            self.error(
                format!("{path}.percent"),
                "`percent` is only read with `mode: percent`",
                "set `mode: percent` or remove `percent`",
            );
        }
        if !names.is_empty() && mode != SelectionMode::Names {
            self.error(
                format!("{path}.names"),
                "`names` is only read with `mode: names`",
                "set `mode: names` or remove `names`",
            );
        }
    }

    fn pod_target(&mut self, path: &str, target: &PodTargetSpec, safety: &SafetySpec) {
        if target.namespaces.is_empty() && target.namespace_selector.is_none() {
            self.error(
                path,
                "no namespaces: a pod fault must say where it may act",
                "add `namespaces: [my-app]` or a `namespaceSelector`",
            );
        }
        for (i, ns) in target.namespaces.iter().enumerate() {
            let ns_path = format!("{path}.namespaces[{i}]");
            if !is_dns_label(ns) {
                self.error(
                    &ns_path,
                    format!("`{ns}` is not a namespace name"),
                    "lowercase letters, digits and '-'",
                );
            }
            self.namespace_allowed(&ns_path, ns, safety);
        }
        if let Some(selector) = &target.namespace_selector {
            self.label_selector(&format!("{path}.namespaceSelector"), selector);
        }
        if let Some(selector) = &target.selector {
            self.label_selector(&format!("{path}.selector"), selector);
        }
        if let Some(selector) = &target.node_selector {
            self.label_selector(&format!("{path}.nodeSelector"), selector);
        }
        if let Some(fields) = &target.field_selector
            && let Err(err) = FieldSelector::parse(fields)
        {
            self.error(
                format!("{path}.fieldSelector"),
                err.to_string(),
                FIELD_SELECTOR_HINT,
            );
        }
        self.selection(
            path,
            target.mode,
            target.count,
            target.percent,
            &target.names,
        );
    }

    fn namespace_allowed(&mut self, path: &str, ns: &str, safety: &SafetySpec) {
        let allowed_explicitly = safety.allow_namespaces.iter().any(|a| a == ns);
        if safety.deny_namespaces.iter().any(|d| d == ns) {
            self.error(
                path,
                format!("namespace `{ns}` is in safety.denyNamespaces"),
                "remove it here or from the deny list",
            );
        } else if ns == PROTECTED_NAMESPACE && !allowed_explicitly {
            self.error(
                path,
                "kube-system is protected",
                "list kube-system in spec.safety.allowNamespaces if you really mean it",
            );
        } else if !safety.allow_namespaces.is_empty() && !allowed_explicitly {
            self.error(
                path,
                format!("namespace `{ns}` is not in safety.allowNamespaces"),
                format!("allowed: {}", safety.allow_namespaces.join(", ")),
            );
        }
    }

    fn node_target(&mut self, path: &str, target: &NodeTargetSpec) {
        if let Some(selector) = &target.selector {
            self.label_selector(&format!("{path}.selector"), selector);
        }
        if let Some(zone) = &target.zone {
            self.zone(&format!("{path}.zone"), zone);
        }
        self.selection(
            path,
            target.mode,
            target.count,
            target.percent,
            &target.names,
        );
    }

    fn instance_target(&mut self, path: &str, target: &InstanceTargetSpec) {
        let chooses_something = !target.instance_ids.is_empty()
            || !target.tags.is_empty()
            || !target.auto_scaling_groups.is_empty()
            || target.zone.is_some()
            || target.node_selector.is_some();
        if !chooses_something {
            self.error(
                path,
                "no instanceIds, tags, autoScalingGroups, zone or nodeSelector: every instance of the account would match",
                "narrow the target, e.g. `autoScalingGroups: [my-cluster-nodes]`",
            );
        }
        for (i, id) in target.instance_ids.iter().enumerate() {
            if !id.starts_with("i-") {
                self.error(
                    format!("{path}.instanceIds[{i}]"),
                    format!("`{id}` is not an instance id"),
                    "instance ids look like i-0abc123",
                );
            }
        }
        if let Some(selector) = &target.node_selector {
            self.label_selector(&format!("{path}.nodeSelector"), selector);
        }
        self.selection(path, target.mode, target.count, target.percent, &[]);
    }

    fn target(
        &mut self,
        path: &str,
        target: &TargetSpec,
        probes: &BTreeMap<&str, Option<ProbeKind>>,
        experiment: &ExperimentSpec,
    ) {
        let measures = target.measures();
        if measures.len() != 1 {
            self.exactly_one(path, measures.len(), MEASURES, "measure");
        }
        let Some(probe_kind) = probes.get(target.probe.as_str()) else {
            let hint = match did_you_mean(&target.probe, probes.keys().copied()) {
                Some(name) => format!("did you mean `{name}`?"),
                None => format!(
                    "probes: {}",
                    probes.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            };
            self.error(
                format!("{path}.probe"),
                format!("no probe named `{}`", target.probe),
                hint,
            );
            return;
        };
        let faults = &experiment.spec.faults;
        if let Some(fault) = &target.fault
            && !faults.iter().any(|f| &f.name == fault)
        {
            let hint = did_you_mean(fault, faults.iter().map(|f| f.name.as_str())).map_or_else(
                || "name a fault of spec.faults".to_owned(),
                |n| format!("did you mean `{n}`?"),
            );
            self.error(
                format!("{path}.fault"),
                format!("no fault named `{fault}`"),
                hint,
            );
        }
        if target.fault.is_some()
            && matches!(target.window, Window::Before | Window::After | Window::Run)
        {
            self.error(
                format!("{path}.fault"),
                format!(
                    "`fault` narrows the `during` window, not `{}`",
                    target.window.name()
                ),
                "use `window: during` or remove `fault`",
            );
        }
        let Some(measure) = target.measure() else {
            return;
        };
        let is_http = *probe_kind == Some(ProbeKind::Http);
        if measure.needs_http_probe() && !is_http {
            self.error(
                format!("{path}.{}", measure.key()),
                format!(
                    "`{}` is measured from an http probe; `{}` is not one",
                    measure.key(),
                    target.probe
                ),
                "use `satisfied` for prometheus, kubernetes and autoscaling probes",
            );
        }
        if measure == Measure::Satisfied && is_http {
            self.error(
                format!("{path}.satisfied"),
                "`satisfied` judges condition probes; this is an http probe",
                "use `availability` for http probes",
            );
        }
        if measure == Measure::Detection {
            let noticing = |f: &&FaultSpec| f.kind() != Some(crate::spec::FaultKind::NodeCordon);
            let named = faults
                .iter()
                .filter(|f| target.fault.as_ref().is_none_or(|n| &f.name == n));
            if !faults.is_empty() && !named.clone().any(|f| noticing(&f)) {
                self.error(
                    format!("{path}.detection"),
                    "a nodeCordon disrupts no running pod, so there is nothing to detect",
                    "point `fault` at a fault that takes pods, nodes or a zone down",
                );
            }
        }
        if matches!(
            measure,
            Measure::Recovery | Measure::SelfHealing | Measure::Detection
        ) && faults.is_empty()
        {
            self.error(
                format!("{path}.{}", measure.key()),
                "there are no faults to recover from",
                "add a fault or remove this target",
            );
        }
        if measure == Measure::Balance {
            let has_header = experiment
                .spec
                .steady_state
                .probes
                .iter()
                .find(|p| p.name == target.probe)
                .and_then(|p| p.http.as_ref())
                .is_some_and(|h| h.backend_header.is_some());
            if is_http && !has_header {
                self.error(
                    format!("{path}.balance"),
                    format!(
                        "probe `{}` has no backendHeader, so backends cannot be told apart",
                        target.probe
                    ),
                    "set `backendHeader` on the probe (the response header naming the backend)",
                );
            }
        }
        if measure != Measure::Recovery
            && (target.recovered_at.is_some() || target.stable_for.is_some())
        {
            self.error(
                path,
                "`recoveredAt` and `stableFor` only apply to `recovery` targets",
                "remove them",
            );
        }
    }

    fn safety(&mut self, safety: &SafetySpec, probes: &BTreeMap<&str, Option<ProbeKind>>) {
        for ns in &safety.allow_namespaces {
            if safety.deny_namespaces.contains(ns) {
                self.error(
                    "spec.safety.denyNamespaces",
                    format!("`{ns}` is both allowed and denied"),
                    "keep it in one list",
                );
            }
        }
        if let Some(label) = &safety.opt_in_label {
            let valid = LabelSelector::parse(label).is_ok_and(|s| s.requirements.len() == 1);
            if !valid {
                self.error(
                    "spec.safety.optInLabel",
                    format!("`{label}` is not `key` or `key=value`"),
                    "e.g. steadfast.dev/opt-in=true",
                );
            }
        }
        if safety.max_percent.value() <= 0.0 {
            self.error(
                "spec.safety.maxPercent",
                "0% allows no fault at all",
                "e.g. 50%",
            );
        }
        if safety.api_qps == 0 || safety.api_burst == 0 {
            self.error(
                "spec.safety.apiQps",
                "apiQps and apiBurst must be at least 1",
                "client-go's defaults are 5 and 10",
            );
        }
        for (i, condition) in safety.abort_when.iter().enumerate() {
            let path = format!("spec.safety.abortWhen[{i}]");
            match (&condition.availability, &condition.alert) {
                (Some(_), Some(_)) => self.error(
                    &path,
                    "both `availability` and `alert`",
                    "one condition per entry",
                ),
                (None, None) => self.error(
                    &path,
                    "no condition",
                    "give `availability` (with `probe`) or `alert`",
                ),
                (Some(_), None) => match condition.probe.as_deref() {
                    None => self.error(
                        &path,
                        "`availability` needs the `probe` it watches",
                        "add `probe: <http probe name>`",
                    ),
                    Some(name) => match probes.get(name) {
                        None => self.error(
                            format!("{path}.probe"),
                            format!("no probe named `{name}`"),
                            "",
                        ),
                        Some(kind) if *kind != Some(ProbeKind::Http) => self.error(
                            format!("{path}.probe"),
                            format!("`{name}` is not an http probe"),
                            "availability comes from http probes",
                        ),
                        Some(_) => {}
                    },
                },
                (None, Some(alert)) => {
                    if alert.name.trim().is_empty() {
                        self.error(format!("{path}.alert.name"), "the alert name is empty", "");
                    }
                }
            }
            if let Some(over) = condition.over {
                self.positive(&format!("{path}.over"), over.get());
            }
        }
    }
}

fn single(kinds: Vec<ProbeKind>) -> Option<ProbeKind> {
    match kinds[..] {
        [kind] => Some(kind),
        _ => None,
    }
}

fn fmt_duration(d: std::time::Duration) -> String {
    super::quantity::DurationSpec(d).to_string()
}
