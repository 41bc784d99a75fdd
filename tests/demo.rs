//! The README's first command: `steadfast demo` starts the sandbox, runs the demo experiment
//! end to end and leaves a report on disk that validates against the committed schema.

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_runs_end_to_end_and_writes_a_valid_report() {
    let reports = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["demo", "--report-dir"])
        .arg(reports.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("demo-web-pod-kill — passed"), "{stdout}");

    let dirs: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one report directory per run");
    for file in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(dirs[0].join(file).is_file(), "{file} written");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("report.json")).unwrap())
            .unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The pods really died and were really replaced: four kills, each applied.
    let kills = report["faults"][0]["targets"].as_array().unwrap();
    assert_eq!(kills.len(), 4, "{kills:#?}");
    assert!(kills.iter().all(|k| k["effect"] == "applied"));
    let attempts = report["probes"][0]["windows"]["run"]["attempts"]
        .as_u64()
        .unwrap();
    assert!(
        attempts > 4_000,
        "the probe ran at 200/s all along: {attempts}"
    );
    assert_eq!(report["rollback"]["complete"], true);
}
