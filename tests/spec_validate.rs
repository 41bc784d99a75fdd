//! Experiment files broken on purpose: every diagnostic must name the file, the line and column
//! of the problem, the field path, and give a hint. Bad input of any shape gets a clear error,
//! never a panic.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use steadfast::spec::{Diagnostic, load_file, parse_experiment};

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    steadfast::spec::collect_experiment_files(&[root]).expect("the shipped experiments exist")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("readable example")
}

/// 1-based line and column of the first occurrence of `needle`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle in text");
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn errors_of(name: &str, text: &str) -> Vec<Diagnostic> {
    match parse_experiment(name, text) {
        Ok((_, warnings)) => panic!("{name} should be invalid; warnings: {warnings:?}"),
        Err(diagnostics) => diagnostics,
    }
}

#[test]
fn every_shipped_experiment_is_valid() {
    let files = examples();
    assert!(
        files.len() >= 8,
        "at least 8 examples, found {}",
        files.len()
    );
    for file in files {
        if let Err(diagnostics) = load_file(&file) {
            let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            panic!("{} is invalid:\n{}", file.display(), text.join("\n"));
        }
    }
}

#[test]
fn examples_cover_every_probe_and_fault_kind() {
    let all: String = examples().iter().map(|p| read(p)).collect();
    for key in ["http:", "prometheus:", "kubernetes:", "autoscaling:"] {
        assert!(all.contains(key), "no example has a `{key}` probe");
    }
    for key in steadfast::spec::fault::FAULT_KINDS {
        assert!(
            all.contains(&format!("{key}:")),
            "no example has a `{key}` fault"
        );
    }
}

/// One deliberate break: the text to replace, its replacement, and what the diagnostic must say.
struct Break {
    find: &'static str,
    replace: &'static str,
    path_ends_with: &'static str,
    hint_contains: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        find: "        direction: ingress",
        replace: "        to: {ports: [5432]}\n        direction: ingress",
        path_ends_with: ".podNetworkBlackhole.to",
        hint_contains: "direction: egress",
    },
    Break {
        find: "service: {namespace: shop, name: api}",
        replace: "cidrs: [10.0.0.0/33]",
        path_ends_with: ".podNetworkLoss.to.cidrs[0]",
        hint_contains: "IPv4 range",
    },
    Break {
        find: "service: {namespace: shop, name: api}",
        replace: "service: {namespace: shop, name: \"\"}",
        path_ends_with: ".podNetworkLoss.to.service",
        hint_contains: "name: api",
    },
    Break {
        find: "service: {namespace: shop, name: api}",
        replace: "ports: [0]",
        path_ends_with: ".podNetworkLoss.to.ports[0]",
        hint_contains: "5432",
    },
    Break {
        find: "delay: 200ms",
        replace: "delay: 0ms",
        path_ends_with: ".podNetworkLatency.delay",
        hint_contains: "e.g. 1s",
    },
    Break {
        find: "jitter: 0ms",
        replace: "jitter: 900ms",
        path_ends_with: ".podNetworkLatency.jitter",
        hint_contains: "at most delay",
    },
    Break {
        find: "percent: 30%",
        replace: "percent: 0%",
        path_ends_with: ".podNetworkLoss.percent",
        hint_contains: "percent: 30%",
    },
    Break {
        find: "podKill:",
        replace: "podKil:",
        path_ends_with: ".podKil",
        hint_contains: "did you mean `podKill`",
    },
    Break {
        find: "steadyState:",
        replace: "steadySate:",
        path_ends_with: "spec.steadySate",
        hint_contains: "did you mean `steadyState`",
    },
    Break {
        find: "mode: one",
        replace: "mode: single",
        path_ends_with: ".mode",
        hint_contains: "allowed values: one, count, percent, all, names",
    },
    Break {
        find: "rate: 200/s",
        replace: "rate: 200",
        path_ends_with: ".rate",
        hint_contains: "200/s",
    },
    Break {
        find: "rate: 100/s",
        replace: "rate: 100 per second",
        path_ends_with: ".rate",
        hint_contains: "200/s",
    },
    Break {
        find: "duration: 2m",
        replace: "duration: 2 mins",
        path_ends_with: "spec.duration",
        hint_contains: "30s",
    },
    Break {
        find: "at: 10s",
        replace: "at: 10",
        path_ends_with: ".at",
        hint_contains: "30s",
    },
    Break {
        find: "availability: \">= 99.5%\"",
        replace: "availability: \">= 99.5\"",
        path_ends_with: ".availability",
        hint_contains: "%",
    },
    Break {
        find: "availability: \">= 99%\"",
        replace: "availability: \"99%\"",
        path_ends_with: ".availability",
        hint_contains: "operator",
    },
    Break {
        find: "latency: \"p99 < 500ms\"",
        replace: "latency: \"99 < 500ms\"",
        path_ends_with: ".latency",
        hint_contains: "p99",
    },
    Break {
        find: "selector: app=web",
        replace: "selector: app in web",
        path_ends_with: ".selector",
        hint_contains: "k in (a,b)",
    },
    Break {
        find: "zone: eu-west-1a",
        replace: "zone: \"\"",
        path_ends_with: ".zone",
        hint_contains: "eu-west-1a",
    },
    Break {
        find: "kind: Deployment",
        replace: "kind: Deploy",
        path_ends_with: ".kind",
        hint_contains: "Deployment",
    },
    Break {
        find: "newConnectionPerRequest: true",
        replace: "newConnectionPerRequest: sometimes",
        path_ends_with: ".newConnectionPerRequest",
        hint_contains: "",
    },
];

#[test]
fn each_example_broken_on_purpose_is_placed_and_explained() {
    let mut applied = 0;
    for file in examples() {
        let text = read(&file);
        let name = file.display().to_string();
        for b in BREAKS {
            if !text.contains(b.find) {
                continue;
            }
            applied += 1;
            let broken = text.replacen(b.find, b.replace, 1);
            let (line, _) = position_of(&broken, b.replace);
            let diagnostics = errors_of(&name, &broken);
            let hit = diagnostics
                .iter()
                .find(|d| d.path.ends_with(b.path_ends_with))
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: breaking `{}` gave no diagnostic at *{}: {diagnostics:#?}",
                        b.find, b.path_ends_with
                    )
                });
            assert_eq!(hit.file, name);
            assert_eq!(
                hit.line, line,
                "{name}: `{}` reported at the wrong line: {hit}",
                b.replace
            );
            assert!(hit.column >= 1);
            let hint = hit.hint.as_deref().unwrap_or_default();
            assert!(
                hit.hint.is_some(),
                "{name}: no hint for `{}`: {hit}",
                b.replace
            );
            assert!(
                hint.contains(b.hint_contains),
                "{name}: hint for `{}` lacks `{}`: {hit}",
                b.replace,
                b.hint_contains
            );
            let rendered = hit.to_string();
            assert!(
                rendered.starts_with(&format!("{name}:{line}:")),
                "{rendered}"
            );
            assert!(rendered.contains("\n  hint: "), "{rendered}");
        }
    }
    assert!(
        applied >= 20,
        "only {applied} breaks applied: the examples changed?"
    );
}

const VALID: &str = r#"apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: mini}
spec:
  duration: 1m
  steadyState:
    probes:
      - name: web
        http: {url: "http://127.0.0.1:8080/"}
  faults:
    - name: kill
      at: 10s
      for: 30s
      podKill:
        target: {namespaces: [shop], selector: app=web}
  targets:
    - probe: web
      availability: ">= 99%"
"#;

#[test]
fn the_minimal_experiment_is_valid() {
    let (spec, warnings) = parse_experiment("mini.yaml", VALID).expect("valid");
    assert_eq!(spec.metadata.name, "mini");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn all_unknown_keys_are_reported_not_only_the_first() {
    let text = VALID
        .replace("  duration: 1m", "  duration: 1m\n  durration: 2m")
        .replace("      at: 10s", "      at: 10s\n      fro: 30s");
    let diagnostics = errors_of("x.yaml", &text);
    let paths: Vec<&str> = diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert!(paths.contains(&"spec.durration"), "{paths:?}");
    assert!(paths.contains(&"spec.faults[0].fro"), "{paths:?}");
    let fro = diagnostics
        .iter()
        .find(|d| d.path == "spec.faults[0].fro")
        .unwrap();
    assert_eq!(fro.hint.as_deref(), Some("did you mean `for`?"));
}

#[test]
fn semantic_problems_are_all_reported_with_positions() {
    let text = VALID
        .replace("      for: 30s", "      for: 2m")
        .replace("    - probe: web", "    - probe: wbe")
        .replace("namespaces: [shop]", "namespaces: [kube-system]");
    let diagnostics = errors_of("x.yaml", &text);
    let find = |suffix: &str| {
        diagnostics
            .iter()
            .find(|d| d.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix}: {diagnostics:#?}"))
    };
    let late = find("faults[0].for");
    assert!(late.message.contains("after the duration"), "{late}");
    assert_eq!(late.line, position_of(&text, "for: 2m").0);
    let probe = find("targets[0].probe");
    assert_eq!(probe.hint.as_deref(), Some("did you mean `web`?"));
    let protected = find("namespaces[0]");
    assert!(protected.message.contains("kube-system"), "{protected}");
}

#[test]
fn exactly_one_fault_kind_is_required() {
    let two = VALID.replace(
        "      podKill:",
        "      nodeCordon: {target: {mode: one}}\n      podKill:",
    );
    let diagnostics = errors_of("x.yaml", &two);
    assert!(
        diagnostics
            .iter()
            .any(|d| d.path == "spec.faults[0]" && d.message.contains("exactly one")),
        "{diagnostics:#?}"
    );
    let none = VALID.replace(
        "      podKill:\n        target: {namespaces: [shop], selector: app=web}\n",
        "",
    );
    let diagnostics = errors_of("x.yaml", &none);
    assert!(
        diagnostics.iter().any(|d| d.message == "no fault kind"),
        "{diagnostics:#?}"
    );
}

#[test]
fn bad_cron_and_time_zone_are_caught() {
    let text = VALID.replace(
        "  duration: 1m",
        "  duration: 1m\n  schedule: {cron: \"0 3 * *\", timeZone: Mars/Olympus}",
    );
    let diagnostics = errors_of("x.yaml", &text);
    assert!(
        diagnostics.iter().any(|d| d.path == "spec.schedule.cron"),
        "{diagnostics:#?}"
    );
    assert!(
        diagnostics
            .iter()
            .any(|d| d.path == "spec.schedule.timeZone"),
        "{diagnostics:#?}"
    );
}

#[test]
fn malformed_files_get_one_clear_error() {
    let cases: &[(&str, &str)] = &[
        ("", "no YAML document"),
        ("# just a comment\n", "no YAML document"),
        ("apiVersion: [unclosed\n", "YAML syntax"),
        ("a: 1\n---\nb: 2\n", "second YAML document"),
        ("- just\n- a list\n", "invalid type"),
        ("apiVersion: 3\nkind: Experiment\n", "missing field"),
    ];
    for (text, expected) in cases {
        let diagnostics = errors_of("bad.yaml", text);
        assert!(!diagnostics.is_empty());
        let first = diagnostics[0].to_string();
        assert!(first.starts_with("bad.yaml:"), "{first}");
        assert!(first.contains(expected), "{text:?} → {first}");
    }
}

#[test]
fn non_utf8_and_oversized_files_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, b"apiVersion: x\nkind: \xff\xfe\n").unwrap();
    let diagnostics = load_file(&binary).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0].message.contains("UTF-8"));
    assert_eq!((diagnostics[0].line, diagnostics[0].column), (2, 7));

    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, "#".repeat(1024 * 1024 + 1)).unwrap();
    let diagnostics = load_file(&huge).unwrap_err();
    assert!(
        diagnostics[0].message.contains("1 MiB"),
        "{}",
        diagnostics[0]
    );
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = steadfast::spec::collect_experiment_files(&[dir.path().to_owned()]).unwrap_err();
    assert!(err.to_string().contains("no experiments found"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Any text, however broken, yields diagnostics or a spec: never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse_experiment("fuzz.yaml", &text);
    }

    /// Mutating a valid file at any byte never panics, and errors always carry a position.
    #[test]
    fn mutated_experiments_never_panic(cut in 0usize..VALID.len(), insert in "[ \\-:\\[\\]{}\"'a-z0-9\\n]{0,8}") {
        let cut = (0..=cut).rev().find(|i| VALID.is_char_boundary(*i)).unwrap_or(0);
        let text = format!("{}{}{}", &VALID[..cut], insert, &VALID[cut..]);
        if let Err(diagnostics) = parse_experiment("fuzz.yaml", &text) {
            prop_assert!(!diagnostics.is_empty());
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.column >= 1, "{}", d);
            }
        }
    }
}
