//! The Helm chart and the plain manifests, checked offline with the real tools.
//!
//! `scripts/chart_check.py` runs Helm's own library in-process (helm-python-sdk: the same lint
//! and template engine as `helm lint --strict` and `helm template`) and validates every rendered
//! manifest against the Kubernetes OpenAPI schemas in strict mode (kubernetes-validate, which
//! refuses unknown fields). These tests assert on its JSON output: that every manifest is valid,
//! that each experiment in the values becomes the CronJob and ConfigMap it should, that `halt`
//! suspends everything, and that RBAC is granted from the single rules list.
//!
//! The tools live in the project's `.venv` (`scripts/setup`); without it the tests say so on
//! stderr and return, or fail under CI (`support/tools.rs`).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

const CHART: &str = "charts/steadfast";
const THREE_EXPERIMENTS: &str = "charts/steadfast/ci/three-experiments-values.yaml";
const RULES: &str = "charts/steadfast/rbac-rules.yaml";
const RELEASE: &str = "steadfast";
const NAMESPACE: &str = "chaos";
/// One lint or render takes about a second; this is the bound for a loaded machine.
const CHECK_TIMEOUT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chart checker, run with the project's virtualenv.
struct Checker {
    python: PathBuf,
}

/// What one run of the checker produced.
struct Outcome {
    code: i32,
    json: Value,
}

impl Checker {
    /// The checker, or `None` (after saying why on stderr) when the tools are not installed;
    /// a failure instead when tools are required (`support/tools.rs`).
    fn find() -> Option<Checker> {
        let python = tools::require_venv_python(
            "helm-python-sdk and kubernetes-validate",
            &["helm_python", "kubernetes_validate", "yaml"],
        )?;
        Some(Checker { python })
    }

    /// Runs `scripts/chart_check.py ARGS` with a time bound and parses its JSON.
    fn run(&self, args: &[&str]) -> Outcome {
        let stdout = tempfile::tempfile().expect("temporary file for stdout");
        let stderr = tempfile::NamedTempFile::new().expect("temporary file for stderr");
        let mut child = Command::new(&self.python)
            .arg(repo().join("scripts/chart_check.py"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().expect("clone stdout handle"))
            .stderr(File::create(stderr.path()).expect("stderr file"))
            .spawn()
            .expect("start the chart checker");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the chart checker") {
                break status;
            }
            if started.elapsed() > CHECK_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chart_check.py {args:?} ran longer than {CHECK_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = read_from_start(stdout);
        let errors = std::fs::read_to_string(stderr.path()).unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or_else(|err| {
            panic!("chart_check.py {args:?} printed no JSON ({err}); stderr:\n{errors}\nstdout:\n{text}")
        });
        Outcome {
            code: status.code().unwrap_or(-1),
            json,
        }
    }

    /// Renders the chart; panics with Helm's message when it refuses.
    fn render(&self, extra: &[&str]) -> Rendered {
        let mut args = vec!["render", CHART, "--name", RELEASE, "--namespace", NAMESPACE];
        args.extend_from_slice(extra);
        let outcome = self.run(&args);
        assert_eq!(outcome.code, 0, "render {extra:?} failed: {}", outcome.json);
        Rendered(outcome.json)
    }

    /// Renders the chart expecting Helm to refuse; returns its message.
    fn render_error(&self, extra: &[&str]) -> String {
        let mut args = vec!["render", CHART, "--name", RELEASE, "--namespace", NAMESPACE];
        args.extend_from_slice(extra);
        let outcome = self.run(&args);
        assert_eq!(
            outcome.code, 3,
            "render {extra:?} should be refused, got {}",
            outcome.json
        );
        outcome.json["error"]
            .as_str()
            .expect("error message")
            .to_owned()
    }
}

fn read_from_start(mut file: File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).expect("rewind stdout");
    file.read_to_string(&mut text).expect("read stdout");
    text
}

/// The checker's render output.
struct Rendered(Value);

impl Rendered {
    fn objects(&self) -> Vec<&Value> {
        self.0["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| &m["object"])
            .collect()
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects()
            .into_iter()
            .filter(|o| o["kind"] == kind)
            .collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects()
            .into_iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", self.names()))
    }

    fn names(&self) -> Vec<String> {
        self.objects()
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"]
                )
            })
            .collect()
    }

    fn notes(&self) -> &str {
        self.0["notes"].as_str().unwrap_or_default()
    }
}

/// Every manifest passes strict schema validation for every Kubernetes version checked.
fn assert_all_valid(output: &Value) {
    let manifests = output["manifests"].as_array().expect("manifests");
    assert!(!manifests.is_empty(), "nothing rendered");
    let mut failures = Vec::new();
    for manifest in manifests {
        let versions = manifest["validation"]
            .as_object()
            .expect("validation results");
        assert!(!versions.is_empty(), "no Kubernetes version checked");
        for (version, result) in versions {
            if !result.is_null() {
                failures.push(format!(
                    "{} {} {} (Kubernetes {version}): {result}",
                    manifest["template"],
                    manifest["object"]["kind"],
                    manifest["object"]["metadata"]["name"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invalid manifests:\n{}",
        failures.join("\n")
    );
}

fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::to_value(yaml).expect("YAML with string keys")
}

fn chart_defaults() -> Value {
    yaml_file("charts/steadfast/values.yaml")
}

/// The rules file as Kubernetes PolicyRules, optionally only those of one scope.
fn rules(scope: Option<&str>) -> Vec<Value> {
    yaml_file(RULES)["rules"]
        .as_array()
        .expect("rules list")
        .iter()
        .filter(|r| scope.is_none_or(|s| r["scope"] == s))
        .map(|r| json!({"apiGroups": r["apiGroups"], "resources": r["resources"], "verbs": r["verbs"]}))
        .collect()
}

/// Seconds in a steadfast duration such as `10m` or `1h30m`.
fn seconds(duration: &Value) -> u64 {
    let text = duration.as_str().expect("duration string");
    humantime::parse_duration(text)
        .unwrap_or_else(|e| panic!("duration {text}: {e}"))
        .as_secs()
}

/// The longest a run may take before steadfast aborts it: `spec.timeout`, which defaults to
/// 3 × duration + 5m.
fn experiment_seconds(doc: &Value) -> u64 {
    let spec = &doc["spec"];
    if spec["timeout"].is_null() {
        3 * seconds(&spec["duration"]) + 300
    } else {
        seconds(&spec["timeout"])
    }
}

fn as_u64(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a whole number: {value}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

#[test]
fn chart_lints_clean_in_strict_mode() {
    let Some(checker) = Checker::find() else {
        return;
    };
    for values in [None, Some(THREE_EXPERIMENTS)] {
        let mut args = vec!["lint", CHART];
        if let Some(file) = values {
            args.extend(["-f", file]);
        }
        let outcome = checker.run(&args);
        assert_eq!(outcome.code, 0, "lint refused the chart: {}", outcome.json);
        let report = &outcome.json;
        assert_eq!(
            report["errors"],
            json!([]),
            "lint errors with {values:?}: {report}"
        );
        let findings: Vec<&Value> = report["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["severity"].as_u64().unwrap_or(0) >= 2)
            .collect();
        assert!(
            findings.is_empty(),
            "lint warnings or errors with {values:?}: {findings:?}"
        );
    }
}

#[test]
fn default_values_render_valid_manifests_and_schedule_nothing() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let rendered = checker.render(&[]);
    assert_all_valid(&rendered.0);
    let kinds: BTreeSet<&str> = rendered
        .objects()
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]),
        "defaults should install only the identity and its permissions"
    );
    let account = rendered.get("ServiceAccount", RELEASE);
    assert_eq!(account["metadata"]["namespace"], NAMESPACE);
}

#[test]
fn three_experiments_become_matching_cronjobs_and_configmaps() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let rendered = checker.render(&["-f", THREE_EXPERIMENTS]);
    assert_all_valid(&rendered.0);

    let values = yaml_file(THREE_EXPERIMENTS);
    let defaults = chart_defaults();
    let job = &defaults["job"];
    let experiments = values["experiments"].as_object().expect("experiments map");
    assert_eq!(
        experiments.len(),
        3,
        "the values file should hold three experiments"
    );
    assert_eq!(
        rendered.of_kind("CronJob").len(),
        3,
        "{:?}",
        rendered.names()
    );
    assert_eq!(
        rendered.of_kind("ConfigMap").len(),
        3,
        "{:?}",
        rendered.names()
    );

    let shared_args = strings(&values["extraArgs"]);
    for (name, entry) in experiments {
        let resource = format!("{RELEASE}-{name}");
        let file_text = entry["file"].as_str().map(|file| {
            std::fs::read_to_string(repo().join(CHART).join(file)).expect("chart file")
        });
        let doc = match &file_text {
            Some(text) => serde_json::to_value(
                serde_yaml::from_str::<serde_yaml::Value>(text).expect("experiment file is YAML"),
            )
            .expect("string keys"),
            None => entry["spec"].clone(),
        };

        // The ConfigMap holds exactly the experiment, under <name>.yaml.
        let config_map = rendered.get("ConfigMap", &resource);
        let key = format!("{name}.yaml");
        let stored = config_map["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("{resource} lacks {key}"));
        match &file_text {
            Some(text) => assert_eq!(
                stored.trim_end(),
                text.trim_end(),
                "{name}: file not stored verbatim"
            ),
            None => {
                let parsed: serde_yaml::Value = serde_yaml::from_str(stored).expect("stored YAML");
                assert_eq!(
                    serde_json::to_value(parsed).expect("string keys"),
                    doc,
                    "{name}: spec changed"
                );
            }
        }

        // Schedule and time zone: the values entry wins, the experiment's own schedule is the default.
        let cron = rendered.get("CronJob", &resource);
        let spec = &cron["spec"];
        let schedule = entry
            .get("schedule")
            .unwrap_or(&doc["spec"]["schedule"]["cron"]);
        assert_eq!(spec["schedule"], *schedule, "{name}: schedule");
        let zone = entry
            .get("timeZone")
            .unwrap_or(&doc["spec"]["schedule"]["timeZone"]);
        assert!(
            !zone.is_null(),
            "{name}: the fixture should give every experiment a time zone"
        );
        assert_eq!(spec["timeZone"], *zone, "{name}: time zone");
        let suspended = entry["suspend"].as_bool().unwrap_or(false);
        assert_eq!(spec["suspend"], suspended, "{name}: suspend");

        // Run policy: never two at once, never retried, skipped when too late.
        assert_eq!(spec["concurrencyPolicy"], "Forbid", "{name}");
        assert_eq!(
            spec["startingDeadlineSeconds"], job["startingDeadlineSeconds"],
            "{name}"
        );
        assert_eq!(
            spec["successfulJobsHistoryLimit"], job["successfulJobsHistoryLimit"],
            "{name}"
        );
        assert_eq!(
            spec["failedJobsHistoryLimit"], job["failedJobsHistoryLimit"],
            "{name}"
        );
        let job_spec = &spec["jobTemplate"]["spec"];
        assert_eq!(job_spec["backoffLimit"], 0, "{name}");

        // The deadline leaves the whole experiment plus the rollback grace period.
        let pod = &job_spec["template"]["spec"];
        let grace = as_u64(&pod["terminationGracePeriodSeconds"]);
        assert_eq!(
            grace,
            as_u64(&job["terminationGracePeriodSeconds"]),
            "{name}: grace period"
        );
        assert!(grace >= 120, "{name}: {grace}s is too short to roll back");
        let length = experiment_seconds(&doc);
        assert!(length > 0, "{name}: the fixture's experiment has a length");
        let deadline = as_u64(&job_spec["activeDeadlineSeconds"]);
        let expected = entry
            .get("activeDeadlineSeconds")
            .map(as_u64)
            .unwrap_or(length + as_u64(&job["deadlineMarginSeconds"]));
        assert_eq!(deadline, expected, "{name}: activeDeadlineSeconds");
        assert!(
            deadline >= length + grace,
            "{name}: deadline {deadline}s < {length}s + {grace}s"
        );

        // The container runs this experiment's file from its own ConfigMap.
        let containers = pod["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "{name}");
        let container = &containers[0];
        let mut args = vec!["run".to_owned(), format!("/experiments/{name}.yaml")];
        args.extend(shared_args.iter().cloned());
        args.extend(strings(&entry["args"]));
        assert_eq!(strings(&container["args"]), args, "{name}: args");
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["configMap"]["name"] == resource.as_str())
            .unwrap_or_else(|| panic!("{name}: no volume from ConfigMap {resource}"));
        let mount = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == volume["name"])
            .unwrap_or_else(|| panic!("{name}: the experiment volume is not mounted"));
        assert_eq!(mount["mountPath"], "/experiments", "{name}");
        assert_eq!(mount["readOnly"], true, "{name}");

        // Restricted security context.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");

        // Settings from values reach the process.
        assert_eq!(
            env_value(container, "AWS_REGION"),
            Some(&values["aws"]["region"]),
            "{name}"
        );
        assert_eq!(
            env_value(container, "STEADFAST_PROMETHEUS_URL"),
            Some(&values["prometheus"]["url"]),
            "{name}"
        );
        assert_eq!(
            env_value(container, "STEADFAST_PUSHGATEWAY_URL"),
            Some(&values["pushgateway"]["url"]),
            "{name}"
        );
        let state = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "state");
        assert_eq!(
            state.map(|v| &v["persistentVolumeClaim"]["claimName"]),
            Some(&json!(format!("{RELEASE}-reports"))),
            "{name}: reports go to the claim when persistence is on"
        );
    }

    let claim = rendered.get("PersistentVolumeClaim", &format!("{RELEASE}-reports"));
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        values["reports"]["persistence"]["size"]
    );
    let account = rendered.get("ServiceAccount", RELEASE);
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"],
        "IRSA annotation"
    );
}

#[test]
fn halt_suspends_every_cronjob() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let running = checker.render(&["-f", THREE_EXPERIMENTS]);
    let armed = running
        .of_kind("CronJob")
        .iter()
        .filter(|c| c["spec"]["suspend"] == false)
        .count();
    assert!(
        armed > 0,
        "the fixture should have armed experiments for halt to stop"
    );

    let halted = checker.render(&["-f", THREE_EXPERIMENTS, "--set", "halt=true"]);
    assert_all_valid(&halted.0);
    let cronjobs = halted.of_kind("CronJob");
    assert_eq!(cronjobs.len(), 3);
    for cron in cronjobs {
        assert_eq!(
            cron["spec"]["suspend"], true,
            "{} still scheduled",
            cron["metadata"]["name"]
        );
    }
    assert!(
        halted.notes().contains("HALTED"),
        "NOTES should say so:\n{}",
        halted.notes()
    );
}

#[test]
fn cluster_scope_grants_the_rules_file_through_one_cluster_role() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let rendered = checker.render(&[]);
    let role_name = format!("{NAMESPACE}-{RELEASE}");
    let role = rendered.get("ClusterRole", &role_name);
    assert_eq!(role["rules"], json!(rules(None)));
    assert!(
        rendered.of_kind("Role").is_empty(),
        "cluster scope needs no Roles"
    );
    let binding = rendered.get("ClusterRoleBinding", &role_name);
    assert_eq!(binding["roleRef"]["name"], role_name);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );
}

#[test]
fn namespaced_scope_grants_namespaced_rules_in_each_target_namespace() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let rendered = checker.render(&[
        "--set",
        "rbac.scope=namespaced",
        "--set-json",
        r#"rbac.namespaces=["shop","payments"]"#,
    ]);
    assert_all_valid(&rendered.0);
    let cluster_rules = rules(Some("cluster"));
    assert!(!cluster_rules.is_empty() && cluster_rules.len() < rules(None).len());
    let role = rendered.get("ClusterRole", &format!("{NAMESPACE}-{RELEASE}"));
    assert_eq!(
        role["rules"],
        json!(cluster_rules),
        "only cluster-scoped resources cluster-wide"
    );

    let namespaced_rules = json!(rules(Some("namespaced")));
    let roles = rendered.of_kind("Role");
    let namespaces: BTreeSet<&str> = roles
        .iter()
        .filter_map(|r| r["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(namespaces, BTreeSet::from(["shop", "payments", NAMESPACE]));
    for role in roles {
        assert_eq!(
            role["rules"], namespaced_rules,
            "{}",
            role["metadata"]["namespace"]
        );
    }
    let bindings = rendered.of_kind("RoleBinding");
    assert_eq!(bindings.len(), 3);
    for binding in bindings {
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        assert_eq!(binding["roleRef"]["kind"], "Role");
    }
}

#[test]
fn deadline_shorter_than_the_experiment_is_refused() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let experiment = json!({
        "short": {
            "schedule": "0 1 * * *",
            "activeDeadlineSeconds": 600,
            "spec": {
                "apiVersion": "steadfast.dev/v1alpha1",
                "kind": "Experiment",
                "metadata": {"name": "short"},
                "spec": {"duration": "10m", "steadyState": {"before": "1m", "after": "1m"}},
            }
        }
    });
    let set = format!("experiments={experiment}");
    let message = checker.render_error(&["--set-json", &set]);
    assert!(
        message.contains("experiments.short.activeDeadlineSeconds"),
        "{message}"
    );
    assert!(message.contains("hint:"), "{message}");
}

#[test]
fn values_schema_refuses_unknown_keys_and_bad_experiment_names() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let message = checker.render_error(&["--set", "halted=true"]);
    assert!(message.contains("halted"), "{message}");
    let message =
        checker.render_error(&["--set-json", r#"experiments={"Nightly_Run":{"file":"x"}}"#]);
    assert!(message.contains("Nightly_Run"), "{message}");
    let message = checker.render_error(&[
        "--set-json",
        r#"experiments={"nightly":{"schedule":"0 1 * * *"}}"#,
    ]);
    assert!(message.contains("nightly"), "{message}");
}

#[test]
fn plain_manifests_are_valid_and_grant_the_chart_rules() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let dir = repo().join("deploy/manifests");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/manifests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let outcome = checker.run(&args);
    assert_eq!(outcome.code, 0, "{}", outcome.json);
    assert_all_valid(&outcome.json);
    let manifests = Rendered(outcome.json);

    assert_eq!(
        manifests.get("ClusterRole", "steadfast")["rules"],
        json!(rules(None))
    );
    manifests.get("Namespace", "steadfast");
    manifests.get("ServiceAccount", "steadfast");
    let experiments = manifests.get("ConfigMap", "steadfast-experiments");
    let cronjobs = manifests.of_kind("CronJob");
    assert!(!cronjobs.is_empty(), "an example CronJob ships");
    for cron in cronjobs {
        let name = &cron["metadata"]["name"];
        assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid", "{name}");
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], 0,
            "{name}"
        );
        let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        let args = strings(&pod["containers"][0]["args"]);
        let file = args.get(1).and_then(|a| a.strip_prefix("/experiments/"));
        assert_eq!(
            args.first().map(String::as_str),
            Some("run"),
            "{name}: {args:?}"
        );
        let key = file.unwrap_or_else(|| panic!("{name}: runs no /experiments file: {args:?}"));
        let stored = experiments["data"][key].as_str();
        let doc: serde_yaml::Value = serde_yaml::from_str(
            stored.unwrap_or_else(|| panic!("{name}: {key} not in the ConfigMap")),
        )
        .expect("experiment YAML");
        let doc = serde_json::to_value(doc).expect("string keys");
        assert_eq!(
            cron["spec"]["schedule"], doc["spec"]["schedule"]["cron"],
            "{name}"
        );
        assert_eq!(
            cron["spec"]["timeZone"], doc["spec"]["schedule"]["timeZone"],
            "{name}"
        );
        let deadline = as_u64(&cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]);
        let grace = as_u64(&pod["terminationGracePeriodSeconds"]);
        assert!(
            deadline >= experiment_seconds(&doc) + grace,
            "{name}: deadline too short"
        );
    }
}

#[test]
fn checker_reports_invalid_manifests() {
    // Guards the guard: a manifest with an unknown field must come back invalid.
    let Some(checker) = Checker::find() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nbogusField: 1\n",
    )
    .expect("write manifest");
    let outcome = checker.run(&["validate", path_str(&path)]);
    assert_eq!(outcome.code, 0);
    let validation = &outcome.json["manifests"][0]["validation"];
    let results = validation.as_object().expect("validation");
    assert!(!results.is_empty());
    for (version, result) in results {
        let message = result
            .as_str()
            .unwrap_or_else(|| panic!("{version}: accepted an unknown field"));
        assert!(message.contains("bogusField"), "{version}: {message}");
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Parses experiment text with steadfast's own loader; panics with every diagnostic.
fn assert_valid_experiment(origin: &str, text: &str) {
    if let Err(diagnostics) = steadfast::spec::parse_experiment(origin, text) {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("{origin} is not a valid experiment:\n{}", lines.join("\n"));
    }
}

fn assert_valid_schedule(origin: &str, cron: &Value, zone: &Value) {
    let cron = cron
        .as_str()
        .unwrap_or_else(|| panic!("{origin}: no schedule"));
    if let Err(err) = steadfast::schedule::parse_cron(cron) {
        panic!("{origin}: schedule `{cron}` is invalid: {err}");
    }
    if let Some(zone) = zone.as_str() {
        assert!(
            zone.parse::<chrono_tz::Tz>().is_ok(),
            "{origin}: unknown time zone {zone}"
        );
    }
}

#[test]
fn every_experiment_shipped_for_deployment_is_valid() {
    // Needs no Python: steadfast's own parser and validator judge the experiments that the
    // chart's files, its CI values and the plain manifests carry.
    let mut checked = 0;

    let chart_files = repo().join(CHART).join("experiments");
    for entry in std::fs::read_dir(&chart_files).expect("chart experiments directory") {
        let path = entry.expect("directory entry").path();
        let text = std::fs::read_to_string(&path).expect("chart experiment");
        assert_valid_experiment(&path.display().to_string(), &text);
        // A chart cannot reach files outside its directory, so it carries copies; they must not
        // drift from the originals.
        let file_name = path.file_name().expect("file name");
        let original = std::fs::read_to_string(repo().join("experiments").join(file_name))
            .unwrap_or_else(|e| panic!("{}: no original in experiments/: {e}", path.display()));
        assert_eq!(
            text,
            original,
            "{} differs from experiments/",
            path.display()
        );
        checked += 1;
    }

    let values = yaml_file(THREE_EXPERIMENTS);
    for (name, entry) in values["experiments"].as_object().expect("experiments") {
        let origin = format!("{THREE_EXPERIMENTS}: experiments.{name}");
        let doc = if entry["spec"].is_null() {
            let file = entry["file"].as_str().expect("spec or file");
            let text = std::fs::read_to_string(repo().join(CHART).join(file)).expect("chart file");
            serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).expect("YAML"))
                .expect("string keys")
        } else {
            let text = serde_yaml::to_string(&entry["spec"]).expect("spec as YAML");
            assert_valid_experiment(&origin, &text);
            checked += 1;
            entry["spec"].clone()
        };
        let schedule = entry
            .get("schedule")
            .unwrap_or(&doc["spec"]["schedule"]["cron"]);
        let zone = entry
            .get("timeZone")
            .unwrap_or(&doc["spec"]["schedule"]["timeZone"]);
        assert_valid_schedule(&origin, schedule, zone);
    }

    let config_map = yaml_file("deploy/manifests/30-experiments.yaml");
    for (key, text) in config_map["data"].as_object().expect("ConfigMap data") {
        let origin = format!("deploy/manifests/30-experiments.yaml: {key}");
        let text = text.as_str().expect("experiment text");
        assert_valid_experiment(&origin, text);
        let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
        let doc = serde_json::to_value(doc).expect("string keys");
        let schedule = &doc["spec"]["schedule"];
        assert_valid_schedule(&origin, &schedule["cron"], &schedule["timeZone"]);
        checked += 1;
    }

    assert!(checked >= 4, "only {checked} experiments found to check");
}

/// The (verb, resource) pairs a list of PolicyRules grants, in the terms of `rbac::RULES`.
fn granted(rules: &[&Value]) -> BTreeSet<steadfast::infra::kube::access::ApiAccess> {
    let mut out = BTreeSet::new();
    for rule in rules {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert(steadfast::infra::kube::access::ApiAccess {
                        group: group.clone(),
                        resource: resource.clone(),
                        verb,
                    });
                }
            }
        }
    }
    out
}

fn assert_same_accesses(what: &str, granted: &BTreeSet<steadfast::infra::kube::access::ApiAccess>) {
    let used = steadfast::infra::kube::rbac::all_accesses();
    let missing: Vec<String> = used.difference(granted).map(ToString::to_string).collect();
    let extra: Vec<String> = granted.difference(&used).map(ToString::to_string).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what} differs from rbac::RULES\nused by the code but not granted: {missing:?}\ngranted but never used: {extra:?}"
    );
}

/// The rendered RBAC (both scopes) and the plain manifests grant exactly what the code uses:
/// nothing missing, nothing extra.
#[test]
fn rendered_rbac_rules_equal_the_rules_the_code_uses() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let cluster = checker.render(&[]);
    let role = cluster.get("ClusterRole", &format!("{NAMESPACE}-{RELEASE}"));
    let rules: Vec<&Value> = role["rules"].as_array().expect("rules").iter().collect();
    assert_same_accesses(
        "the chart's ClusterRole (rbac.scope=cluster)",
        &granted(&rules),
    );

    let namespaced = checker.render(&["--set", "rbac.scope=namespaced"]);
    let mut rules: Vec<&Value> = Vec::new();
    for object in namespaced
        .of_kind("ClusterRole")
        .into_iter()
        .chain(namespaced.of_kind("Role"))
    {
        rules.extend(object["rules"].as_array().expect("rules"));
    }
    assert_same_accesses(
        "the chart's ClusterRole and Roles (rbac.scope=namespaced)",
        &granted(&rules),
    );

    let text = std::fs::read_to_string(repo().join("deploy/manifests/20-rbac.yaml"))
        .expect("deploy/manifests/20-rbac.yaml");
    let mut rules = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc: Value = serde::Deserialize::deserialize(doc).expect("manifest YAML");
        if let Some(list) = doc["rules"].as_array() {
            rules.extend(list.clone());
        }
    }
    assert!(
        !rules.is_empty(),
        "deploy/manifests/20-rbac.yaml grants nothing"
    );
    assert_same_accesses(
        "deploy/manifests/20-rbac.yaml",
        &granted(&rules.iter().collect::<Vec<_>>()),
    );
}

const SCHEDULER_VALUES: &str = "charts/steadfast/ci/scheduler-values.yaml";

/// `scheduler.enabled` renders one `steadfast schedule` Deployment (and its metrics Service)
/// instead of CronJobs, mounting every experiment at /experiments/<name>.yaml, with the
/// schedule flags from values; it lints clean and validates; `halt` scales it to zero.
#[test]
fn scheduler_mode_renders_one_deployment_instead_of_cronjobs() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let lint = checker.run(&["lint", CHART, "-f", SCHEDULER_VALUES]);
    assert_eq!(lint.code, 0, "{}", lint.json);
    assert_eq!(lint.json["errors"], json!([]), "{}", lint.json);

    let rendered = checker.render(&["-f", SCHEDULER_VALUES]);
    assert_all_valid(&rendered.0);
    assert!(
        rendered.of_kind("CronJob").is_empty(),
        "no CronJobs: the scheduler fires the experiments"
    );
    let name = format!("{RELEASE}-scheduler");
    let deployment = rendered.get("Deployment", &name);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(as_u64(&pod["terminationGracePeriodSeconds"]) >= 120);
    let container = &pod["containers"][0];
    assert_eq!(
        strings(&container["args"]),
        [
            "schedule",
            "--experiments",
            "/experiments",
            "--listen",
            "0.0.0.0:9464",
            "--overlap",
            "queue",
            "--queue-limit",
            "4",
            "--jitter",
            "2m"
        ]
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(env_value(container, "STEADFAST_JOURNAL").is_some());
    let values = yaml_file(SCHEDULER_VALUES);
    assert_eq!(
        env_value(container, "STEADFAST_PUSHGATEWAY_URL"),
        Some(&values["pushgateway"]["url"]),
        "the runs the scheduler starts inherit the Pushgateway"
    );
    let sources: Vec<String> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "experiments")
        .expect("the experiments volume")["projected"]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["configMap"]["name"].as_str().expect("name").to_owned())
        .collect();
    let experiments = values["experiments"].as_object().expect("experiments");
    assert_eq!(sources.len(), experiments.len());
    for (key, entry) in experiments {
        let config_map = rendered.get("ConfigMap", &format!("{RELEASE}-{key}"));
        assert!(sources.contains(&format!("{RELEASE}-{key}")), "{key}");
        let stored: serde_yaml::Value = serde_yaml::from_str(
            config_map["data"][format!("{key}.yaml")]
                .as_str()
                .expect("the experiment file"),
        )
        .expect("YAML");
        let stored = serde_json::to_value(stored).expect("JSON");
        assert_eq!(
            stored["spec"]["schedule"], entry["spec"]["spec"]["schedule"],
            "{key}: the scheduler reads the experiment's own schedule"
        );
    }
    let service = rendered.get("Service", &name);
    assert_eq!(service["spec"]["ports"][0]["port"], 9464);

    let halted = checker.render(&["-f", SCHEDULER_VALUES, "--set", "halt=true"]);
    assert_eq!(halted.get("Deployment", &name)["spec"]["replicas"], 0);

    // Off by default: no Deployment.
    assert!(checker.render(&[]).of_kind("Deployment").is_empty());
}

/// In scheduler mode a schedule set in values (which only CronJobs can use) is refused by name.
#[test]
fn scheduler_mode_refuses_schedules_set_only_in_values() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let message =
        checker.render_error(&["-f", THREE_EXPERIMENTS, "--set", "scheduler.enabled=true"]);
    assert!(message.contains("experiments.payments-evict"), "{message}");
    assert!(message.contains("hint:"), "{message}");
}

/// Each CronJob's journal is on the state volume (the PVC when persistence is on), not in the
/// pod's /tmp, so undo records of a run killed mid-rollback outlive the pod.
#[test]
fn cronjob_journals_live_on_the_state_volume() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let rendered = checker.render(&["-f", THREE_EXPERIMENTS]);
    let cronjobs = rendered.of_kind("CronJob");
    assert!(!cronjobs.is_empty());
    for cron in cronjobs {
        let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let journal = env_value(container, "STEADFAST_JOURNAL")
            .and_then(Value::as_str)
            .expect("STEADFAST_JOURNAL is set");
        let state = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == "state")
            .expect("the state mount")["mountPath"]
            .as_str()
            .expect("path")
            .to_owned();
        assert!(
            journal.starts_with(&format!("{state}/")),
            "{journal} not under {state}"
        );
        let claim = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "state")
            .expect("the state volume");
        assert!(
            claim.get("persistentVolumeClaim").is_some(),
            "persistence is on in these values: {claim}"
        );
    }
}

/// The variable the chart sets for the Pushgateway is the one `steadfast run --pushgateway`
/// reads, in both the CronJob and the scheduler Deployment (whose runs inherit it).
#[test]
fn the_chart_sets_the_pushgateway_variable_that_run_reads() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["run", "--help"])
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let variable = help
        .split("--pushgateway")
        .nth(1)
        .and_then(|rest| rest.split("[env: ").nth(1))
        .and_then(|rest| rest.split(['=', ']']).next())
        .unwrap_or_else(|| panic!("`run --help` names no env for --pushgateway:\n{help}"));
    for template in ["cronjob.yaml", "deployment-scheduler.yaml"] {
        let text = std::fs::read_to_string(repo().join(CHART).join("templates").join(template))
            .expect("template");
        assert!(
            text.contains(&format!("- name: {variable}\n")),
            "{template} does not set {variable}"
        );
    }
}

const MONITORING: [&str; 4] = [
    "--set",
    "grafana.dashboard.enabled=true",
    "--set",
    "prometheusRule.enabled=true",
];

/// Every manifest but the PrometheusRule (a CRD kubernetes-validate has no schema for; its
/// rules go through `promtool check rules` instead) passes strict validation.
fn assert_valid_except_prometheus_rule(rendered: &Rendered) {
    let mut output = rendered.0.clone();
    output["manifests"]
        .as_array_mut()
        .expect("manifests")
        .retain(|m| m["object"]["kind"] != "PrometheusRule");
    assert_all_valid(&output);
}

/// `promtool check rules` on the rule groups of a rendered PrometheusRule.
fn assert_promtool_accepts_rules(rule: &Value) {
    let Some(promtool) = tools::require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("rules.yaml");
    let groups = json!({"groups": rule["spec"]["groups"]});
    // JSON is YAML: promtool reads it as a rule file.
    std::fs::write(&file, groups.to_string()).expect("write the rule file");
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check rules refuses the PrometheusRule: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn alerts(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect()
}

#[test]
fn dashboard_and_prometheus_rule_render_only_when_enabled() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let off = checker.render(&["-f", THREE_EXPERIMENTS]);
    assert!(
        off.of_kind("PrometheusRule").is_empty(),
        "{:?}",
        off.names()
    );
    assert!(
        !off.names().iter().any(|n| n.contains("dashboard")),
        "{:?}",
        off.names()
    );

    let mut args = vec!["-f", THREE_EXPERIMENTS];
    args.extend(MONITORING);
    let mut lint = vec!["lint", CHART];
    lint.extend(&args);
    let outcome = checker.run(&lint);
    assert_eq!(outcome.code, 0, "lint refused the chart: {}", outcome.json);
    assert_eq!(outcome.json["errors"], json!([]), "{}", outcome.json);

    let on = checker.render(&args);
    assert_valid_except_prometheus_rule(&on);
    let dashboard = on.get("ConfigMap", "steadfast-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(CHART).join("dashboards/steadfast.json"))
            .expect("dashboard file"),
    )
    .expect("dashboard JSON");
    let in_map: Value = serde_json::from_str(
        dashboard["data"]["steadfast.json"]
            .as_str()
            .expect("dashboard data"),
    )
    .expect("the ConfigMap holds the dashboard JSON");
    assert_eq!(in_map, shipped);

    let rule = on.get("PrometheusRule", RELEASE);
    assert_promtool_accepts_rules(rule);
    let rules = alerts(rule);
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert!(names.contains(&"SteadfastExperimentFailed"), "{names:?}");
    assert!(names.contains(&"SteadfastUndoRecordsPending"), "{names:?}");
    // One stale rule per scheduled experiment at twice its longest cron gap: weekdays-only
    // and weekly count as a week, daily as a day.
    let stale: BTreeSet<(String, String)> = rules
        .iter()
        .filter(|r| r["alert"] == "SteadfastExperimentStale")
        .map(|r| {
            (
                r["labels"]["experiment"].as_str().unwrap_or("?").to_owned(),
                r["expr"]
                    .as_str()
                    .and_then(|e| e.rsplit("> ").next())
                    .unwrap_or("?")
                    .to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("checkout-pod-kill", "1209600"),
        ("payments-evict", "172800"),
        ("zone-outage-eu-west-1a", "1209600"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(stale, expected);

    // A per-experiment threshold replaces the cron estimate.
    let mut args = args.clone();
    args.extend([
        "--set",
        "prometheusRule.staleAfterSeconds.checkout-pod-kill=90000",
    ]);
    let overridden = checker.render(&args);
    let rule = overridden.get("PrometheusRule", RELEASE);
    assert!(
        alerts(rule)
            .iter()
            .any(|r| r["labels"]["experiment"] == "checkout-pod-kill"
                && r["expr"].as_str().is_some_and(|e| e.ends_with("> 90000"))),
        "{rule}"
    );
}

#[test]
fn report_store_values_point_every_run_at_the_bucket() {
    let Some(checker) = Checker::find() else {
        return;
    };
    let s3 = [
        "--set",
        "reports.s3.bucket=steadfast-reports",
        "--set",
        "reports.s3.prefix=ci/nightly/",
        "--set",
        "reports.s3.region=eu-west-1",
    ];
    for values in [THREE_EXPERIMENTS, SCHEDULER_VALUES] {
        let mut args = vec!["lint", CHART, "-f", values];
        args.extend(s3);
        let lint = checker.run(&args);
        assert_eq!(lint.code, 0, "{}", lint.json);
        assert_eq!(lint.json["errors"], json!([]), "{}", lint.json);

        let mut args = vec!["-f", values];
        args.extend(s3);
        let rendered = checker.render(&args);
        assert_all_valid(&rendered.0);
        let mut containers = Vec::new();
        for kind in ["CronJob", "Deployment"] {
            for object in rendered.of_kind(kind) {
                let pod = if kind == "CronJob" {
                    &object["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                } else {
                    &object["spec"]["template"]["spec"]
                };
                containers.push(&pod["containers"][0]);
            }
        }
        assert!(!containers.is_empty(), "{values}: nothing runs experiments");
        for container in containers {
            assert_eq!(
                env_value(container, "STEADFAST_REPORTS_DIR"),
                Some(&json!("s3://steadfast-reports/ci/nightly")),
                "{values}: {container}"
            );
            assert_eq!(
                env_value(container, "STEADFAST_REPORT_REGION"),
                Some(&json!("eu-west-1")),
                "{values}"
            );
        }
    }
    // Without a bucket, the state volume as before.
    let plain = checker.render(&["-f", THREE_EXPERIMENTS]);
    for cron in plain.of_kind("CronJob") {
        let container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            env_value(container, "STEADFAST_REPORTS_DIR"),
            Some(&json!("/var/lib/steadfast/reports"))
        );
        assert_eq!(env_value(container, "STEADFAST_REPORT_REGION"), None);
    }
    let refused = checker.render_error(&["--set", "reports.s3.bucket=Not_A_Bucket"]);
    assert!(refused.contains("bucket"), "{refused}");
}
