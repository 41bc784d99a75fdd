//! Reports built from a synthetic run: the JSON validates against the committed schema, JUnit
//! counts match the targets, Markdown shows the verdict, and secrets never appear.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use steadfast::engine::{Event, EventKind, Phase, RunOutcome};
use steadfast::fault::{Effect, Healing, TargetEffect, TargetKind, TargetRef};
use steadfast::measure::{FailureKind, MeasurementStore, Outcome, Sample, StoreConfig};
use steadfast::report::{ProbeData, ReportInput, build_report, json, junit, markdown};
use steadfast::spec::parse_experiment;
use steadfast::verdict::{Evidence, RunWindows, TimeWindow, Verdict, evaluate};

const SPEC: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: report-test, labels: {suite: unit}}
spec:
  description: A synthetic run.
  duration: 20s
  steadyState:
    probes:
      - name: web
        http:
          url: "http://127.0.0.1:9/"
          headers: {authorization: "Bearer s3cr3t-token"}
          backendHeader: x-pod
  faults:
    - {name: kill, at: 5s, for: 10s, podKill: {target: {namespaces: [shop]}}}
  targets:
    - {name: avail, probe: web, availability: ">= 99%"}
    - {name: outage, probe: web, longestOutage: "<= 500ms"}
    - {name: p99, probe: web, window: run, latency: "p99 < 50ms"}
"#;

/// 40 s at 100/s over three pods, with a 1 s outage at 17 s.
fn store() -> MeasurementStore {
    let mut store = MeasurementStore::new(StoreConfig::default()).unwrap();
    let pods: Vec<Arc<str>> = ["web-a", "web-b", "web-c"]
        .iter()
        .map(|p| Arc::from(*p))
        .collect();
    for i in 0..4000u64 {
        let intended = Duration::from_millis(i * 10);
        let down = (17_000..18_000).contains(&(i * 10));
        store
            .record(&Sample {
                intended,
                latency: Duration::from_millis(3 + i % 7),
                outcome: if down {
                    Outcome::Failure(FailureKind::Connect)
                } else {
                    Outcome::Success
                },
                backend: (!down).then(|| pods[(i % 3) as usize].clone()),
            })
            .unwrap();
    }
    store
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn outcome(store: &MeasurementStore, spec: &steadfast::spec::ExperimentSpec) -> RunOutcome {
    let windows = RunWindows {
        before: Some(TimeWindow::new(secs(0), secs(10))),
        during: Some(TimeWindow::new(secs(10), secs(30))),
        after: Some(TimeWindow::new(secs(30), secs(40))),
        run: Some(TimeWindow::new(secs(0), secs(40))),
        faults: BTreeMap::from([("kill".to_owned(), TimeWindow::new(secs(15), secs(25)))]),
    };
    let mut evidence = Evidence::default();
    evidence.http.insert("web".into(), store);
    let results = evaluate(spec, &windows, &evidence);
    let target = TargetRef {
        kind: TargetKind::Pod,
        name: "web-a".into(),
        namespace: Some("shop".into()),
        node: Some("n1".into()),
        zone: Some("a".into()),
    };
    let events = vec![
        Event {
            at: secs(0),
            kind: EventKind::PhaseStarted {
                phase: Phase::SteadyBefore,
            },
        },
        Event {
            at: secs(15),
            kind: EventKind::FaultInjected {
                fault: "kill".into(),
                firing: 0,
                targets: vec![target.clone()],
                effects: vec![TargetEffect {
                    target,
                    effect: Effect::Applied,
                    at: std::time::SystemTime::now(),
                }],
                seed: 42,
            },
        },
    ];
    RunOutcome {
        run_id: "run-1".into(),
        seed: 42,
        started_at: Utc::now(),
        finished_at: Utc::now(),
        verdict: Verdict::from_results(&results),
        windows,
        results,
        events,
        healing: BTreeMap::from([(
            "kill".to_owned(),
            Healing::Healed {
                after: Duration::from_millis(2500),
            },
        )]),
        pending: Vec::new(),
    }
}

#[test]
fn the_report_validates_against_the_committed_schema_and_renders_every_format() {
    let (spec, _) = parse_experiment("t.yaml", SPEC).unwrap();
    let store = store();
    let outcome = outcome(&store, &spec);
    let mut probes = ProbeData::default();
    probes.http.insert("web".into(), &store);
    let report = build_report(&ReportInput {
        spec: &spec,
        file: Some("t.yaml".into()),
        cluster: None,
        outcome: &outcome,
        probes,
    });

    let text = json::render(&report);
    assert!(!text.contains("s3cr3t"), "secrets never reach the report");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema.json"))
            .unwrap(),
    )
    .unwrap();
    let instance: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json::parse(&text).unwrap(), report, "the JSON reads back");

    // The 1 s outage fails `outage` and `avail` (17..18 s is inside `during`), p99 passes.
    let by_name = |n: &str| report.targets.iter().find(|t| t.name == n).unwrap();
    assert!(!by_name("outage").passed);
    assert!(
        (by_name("outage").value.unwrap() - 1.0).abs() < 0.02,
        "{:?}",
        by_name("outage")
    );
    assert!(!by_name("avail").passed);
    assert!(by_name("p99").passed);
    assert_eq!(report.verdict.outcome, "failed");
    assert_eq!(report.exit_code, 1);
    let web = &report.probes[0];
    assert_eq!(web.backends.len(), 3);
    assert_eq!(web.windows["run"].attempts, 4000);
    assert_eq!(web.windows["run"].failures["connect"], 100);
    assert!(
        web.series.len() >= 79,
        "half-second points: {}",
        web.series.len()
    );
    assert_eq!(report.faults[0].targets[0].name, "shop/web-a");
    assert_eq!(report.faults[0].healed_after_seconds, Some(2.5));

    let xml = junit::render(&[&report]);
    assert!(
        xml.contains("tests=\"4\" failures=\"2\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"measured 1010.0ms, required &lt;= 500ms\""),
        "{xml}"
    );

    let md = markdown::render(&report);
    assert!(md.starts_with("## ❌ report-test — failed"), "{md}");
    assert!(
        md.contains("| outage | web | during | `<= 500ms` |"),
        "{md}"
    );
}

#[test]
fn the_report_schema_is_committed_and_current() {
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema.json"))
            .unwrap();
    assert!(
        committed == steadfast::report::model::report_schema_text(),
        "reports/schema.json drifted: run `cargo run -q -- schema --report > reports/schema.json`"
    );
}
