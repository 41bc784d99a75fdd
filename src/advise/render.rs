//! The three renderings of findings: a text table for people, JSON for machines, Markdown for
//! pull requests and wikis.

use std::io::Write;

use serde::Serialize;

use super::finding::{Finding, Severity};

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdviceDocument<'a> {
    /// Findings, worst first.
    pub findings: &'a [Finding],
    /// How many of each severity.
    pub counts: Counts,
    /// Whether node groups were read from AWS (otherwise the node-group rule had nothing to see).
    pub node_groups_read: bool,
}

/// Findings per severity.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Infos.
    pub info: usize,
}

impl Counts {
    /// Counts `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let mut c = Counts::default();
        for f in findings {
            match f.severity {
                Severity::Error => c.error += 1,
                Severity::Warning => c.warning += 1,
                Severity::Info => c.info += 1,
            }
        }
        c
    }
}

/// Writes the JSON document.
///
/// # Errors
/// When `out` fails.
pub fn json(
    findings: &[Finding],
    node_groups_read: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let doc = AdviceDocument {
        findings,
        counts: Counts::of(findings),
        node_groups_read,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// Writes one block per finding: a header line (severity, rule, objects), then why, fix and
/// the experiment, indented; a summary line last.
///
/// # Errors
/// When `out` fails.
pub fn text(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    let width = findings.iter().map(|f| f.rule.len()).max().unwrap_or(0);
    for f in findings {
        writeln!(
            out,
            "{:<7}  {:<width$}  {}",
            f.severity.as_str().to_uppercase(),
            f.rule,
            f.objects.join(", ")
        )?;
        writeln!(out, "         why:   {}", f.why)?;
        writeln!(out, "         fix:   {}", f.fix)?;
        writeln!(
            out,
            "         prove: {} (e.g. {})",
            f.experiment.kind, f.experiment.example
        )?;
    }
    let c = Counts::of(findings);
    writeln!(
        out,
        "{} finding(s): {} error, {} warning, {} info",
        findings.len(),
        c.error,
        c.warning,
        c.info
    )
}

/// Writes a Markdown table.
///
/// # Errors
/// When `out` fails.
pub fn markdown(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    let c = Counts::of(findings);
    writeln!(out, "# HA findings\n")?;
    writeln!(
        out,
        "{} error, {} warning, {} info.\n",
        c.error, c.warning, c.info
    )?;
    if findings.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "| Severity | Rule | Objects | Why | Fix | Experiment |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for f in findings {
        writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | `{}` ({}) |",
            f.severity.as_str(),
            f.rule,
            f.objects
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", "),
            cell(&f.why),
            cell(&f.fix),
            f.experiment.kind,
            f.experiment.example
        )?;
    }
    Ok(())
}

/// Escapes what would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advise::finding::experiments;

    fn finding() -> Finding {
        Finding {
            rule: "single-replica",
            severity: Severity::Error,
            objects: vec!["Deployment/shop/web".into()],
            why: "a | b".into(),
            fix: "scale".into(),
            experiment: experiments::POD_KILL,
        }
    }

    #[test]
    fn each_format_carries_rule_object_and_experiment() {
        let findings = [finding()];
        let mut t = Vec::new();
        text(&findings, &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(
            t.starts_with("ERROR    single-replica  Deployment/shop/web"),
            "{t}"
        );
        assert!(t.contains("prove: podKill"), "{t}");
        assert!(
            t.ends_with("1 finding(s): 1 error, 0 warning, 0 info\n"),
            "{t}"
        );
        let mut m = Vec::new();
        markdown(&findings, &mut m).unwrap();
        let m = String::from_utf8(m).unwrap();
        assert!(
            m.contains("| error | `single-replica` | `Deployment/shop/web` | a \\| b |"),
            "{m}"
        );
        let mut j = Vec::new();
        json(&findings, false, &mut j).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(v["findings"][0]["rule"], "single-replica");
        assert_eq!(v["findings"][0]["experiment"]["kind"], "podKill");
        assert_eq!(v["counts"]["error"], 1);
        assert_eq!(v["nodeGroupsRead"], false);
    }
}
