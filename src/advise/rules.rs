//! Every rule over a snapshot, in a stable order: findings sorted by severity (worst first),
//! then rule, then object, so output and tests do not depend on list order.

pub mod cluster;
pub mod workloads;

use super::finding::Finding;
use super::model::Snapshot;

/// Every rule's findings, worst first.
pub fn evaluate(snapshot: &Snapshot) -> Vec<Finding> {
    let mut findings = workloads::check(snapshot);
    findings.extend(cluster::check(snapshot));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.rule.cmp(b.rule))
            .then(a.objects.cmp(&b.objects))
    });
    findings
}
