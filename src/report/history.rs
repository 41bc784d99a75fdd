//! An experiment's history: the runs a store holds, as a compact trend table for the terminal
//! (`steadfast report --history`) and a small score chart for `report.html`.

use std::fmt::Write as _;

use super::escape::markup;
use super::model::{Outcome, Report};
use super::score;

/// Most runs shown: the table and chart are for a glance, not an archive.
pub const MAX_RUNS: usize = 50;

/// One run in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRun {
    /// Start, `YYYY-MM-DD HH:MM`.
    pub started: String,
    /// Run id.
    pub run_id: String,
    /// Verdict.
    pub outcome: Outcome,
    /// Resilience score.
    pub score: f64,
    /// Each target's measured value as shown in the report, by target name.
    pub values: Vec<(String, Option<String>)>,
}

/// The newest [`MAX_RUNS`] runs of `experiment` (all experiments when `None`), oldest first.
pub fn runs(reports: &[Report], experiment: Option<&str>) -> Vec<HistoryRun> {
    let mut chosen: Vec<&Report> = reports
        .iter()
        .filter(|r| experiment.is_none_or(|e| r.experiment.name == e))
        .collect();
    chosen.sort_by_key(|r| r.run.started_at);
    let skip = chosen.len().saturating_sub(MAX_RUNS);
    chosen
        .into_iter()
        .skip(skip)
        .map(|r| HistoryRun {
            started: r.run.started_at.format("%Y-%m-%d %H:%M").to_string(),
            run_id: r.run.id.clone(),
            outcome: r.verdict.outcome,
            score: score::of(r),
            values: r
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.measured.clone()))
                .collect(),
        })
        .collect()
}

/// The trend table: a row per run, a column per target of the newest run.
pub fn table(runs: &[HistoryRun]) -> String {
    let targets: Vec<String> = runs
        .last()
        .map(|r| r.values.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(runs.len() + 1);
    let mut header = vec!["STARTED".to_owned(), "VERDICT".into(), "SCORE".into()];
    header.extend(targets.iter().map(|t| t.to_uppercase()));
    rows.push(header);
    for run in runs {
        let mut row = vec![
            run.started.clone(),
            run.outcome.to_string(),
            format!("{:.1}", run.score),
        ];
        for target in &targets {
            let value = run
                .values
                .iter()
                .find(|(n, _)| n == target)
                .and_then(|(_, v)| v.clone());
            row.push(value.unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(out, "{} run(s)", runs.len());
    out
}

/// A small SVG of the score per run, oldest left; each point's tooltip names the run.
pub fn chart(runs: &[HistoryRun]) -> String {
    const W: f64 = 960.0;
    const H: f64 = 140.0;
    const LEFT: f64 = 40.0;
    const PAD: f64 = 12.0;
    let n = runs.len().max(1) as f64;
    let x = |i: usize| {
        if n <= 1.0 {
            LEFT + (W - LEFT - PAD) / 2.0
        } else {
            LEFT + i as f64 / (n - 1.0) * (W - LEFT - PAD)
        }
    };
    let y = |score: f64| PAD + (100.0 - score.clamp(0.0, 100.0)) / 100.0 * (H - 2.0 * PAD);
    let mut out = format!(
        "<svg class=\"chart history\" id=\"history-chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>Resilience score of the last {} run(s)</title>",
        runs.len()
    );
    for level in [0.0, 50.0, 100.0] {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{level}</text>",
            W - PAD,
            LEFT - 6.0,
            y(level) + 4.0,
            y0 = y(level)
        );
    }
    let points: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(r.score)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#4e79a7\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    for (i, run) in runs.iter().enumerate() {
        let colour = if run.outcome == Outcome::Passed {
            "#59a14f"
        } else {
            "#e15759"
        };
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{} {} — {} — score {:.1}</title></circle>",
            x(i),
            y(run.score),
            markup(&run.started),
            markup(&run.run_id),
            markup(run.outcome.as_str()),
            run.score
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(started: &str, score: f64, recovery: &str) -> HistoryRun {
        HistoryRun {
            started: started.into(),
            run_id: format!("r-{started}"),
            outcome: Outcome::Passed,
            score,
            values: vec![("recovery".into(), Some(recovery.into()))],
        }
    }

    #[test]
    fn the_table_has_a_row_per_run_and_a_column_per_target() {
        let text = table(&[
            run("2026-01-01 00:00", 100.0, "10s"),
            run("2026-01-02 00:00", 45.0, "14s"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("STARTED") && lines[0].ends_with("RECOVERY"),
            "{text}"
        );
        assert!(
            lines[2].contains("45.0") && lines[2].ends_with("14s"),
            "{text}"
        );
        assert_eq!(lines[3], "2 run(s)");
    }

    #[test]
    fn the_chart_has_a_point_per_run() {
        let svg = chart(&[
            run("a", 100.0, "1s"),
            run("b", 50.0, "2s"),
            run("c", 0.0, "3s"),
        ]);
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
