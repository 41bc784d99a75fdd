//! The S3 report store against moto: a sandbox run uploads its four files and its index entry,
//! `gate` reads the bucket exactly as it reads the same reports on disk, two runs at once into
//! one prefix both land, and a failed upload is logged and counted without changing the exit
//! code.

mod support;

#[path = "support/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::moto::{Moto, REGION};
use support::ok_server::ok_server;
use support::sandbox::both;
use world::{World, start_world};

const BUCKET: &str = "steadfast-reports";
const EXPERIMENT: &str = "store-pod-kill";

/// Kills one web pod; judged on a loopback server outside the sandbox so the verdict does not
/// depend on the cluster's timing. `latency` adds a target the run can be made to miss.
fn experiment(url: &str, extra_target: &str) -> String {
    format!(
        r#"apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata:
  name: {EXPERIMENT}
  labels: {{suite: store}}
spec:
  duration: 3s
  steadyState:
    before: 1s
    after: 1s
    recoveryTimeout: 20s
    probes:
      - name: service
        http: {{url: "{url}", rate: 20/s, timeout: 1s}}
  faults:
    - name: kill-one
      at: 0s
      for: 2s
      podKill:
        target: {{namespaces: [shop], selector: app=web, mode: one}}
  targets:
    - {{name: avail, probe: service, availability: ">= 99%"}}
{extra_target}
  safety:
    allowNamespaces: [shop]
    maxPods: 1
"#
    )
}

fn s3_client(moto: &Moto) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn create_bucket(s3: &aws_sdk_s3::Client) {
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket created");
}

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .expect("listing");
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// A `steadfast` command against the world, with moto as its AWS.
fn command(world: &World, moto: &Moto, args: &[&str], namespace: &str) -> tokio::process::Command {
    let command = world.command(args, namespace);
    with_moto(command, moto)
}

/// A `steadfast` command that needs no cluster (`gate`, `report`), with moto as its AWS.
fn offline(moto: &Moto, args: &[&str]) -> tokio::process::Command {
    with_moto(support::sandbox::command(args, &[]), moto)
}

fn with_moto(mut command: tokio::process::Command, moto: &Moto) -> tokio::process::Command {
    command
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

async fn finish(command: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the command ends within 2 minutes")
        .expect("the binary starts")
}

/// The run prefixes (`<prefix>/<experiment>/<timestamp>-<run-id>`) that hold a report.json.
fn runs_in(keys: &[String]) -> BTreeSet<String> {
    keys.iter()
        .filter_map(|k| k.strip_suffix("/report.json").map(str::to_owned))
        .collect()
}

/// One world at a time: three sandboxes at once on a small machine would only slow each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const POLICY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: GatePolicy
metadata: {name: store}
spec:
  maxAge: 1d
  require: [{experiment: store-pod-kill}]
  score: ">= 90"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_run_uploads_its_report_and_gate_reads_the_bucket_as_the_disk() {
    let _serial = SERIAL.lock().await;
    let Some(world) = start_world(false).await else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    let s3 = s3_client(&moto);
    create_bucket(&s3).await;
    let (url, _) = ok_server().await;
    let file = world.dir.path().join("store.yaml");
    std::fs::write(&file, experiment(&url, "")).unwrap();
    world.namespace("steadfast-store-1").await;
    let location = format!("s3://{BUCKET}/ci/nightly");
    let output = finish(&mut command(
        &world,
        &moto,
        &["run", file.to_str().unwrap(), "--report-dir", &location],
        "steadfast-store-1",
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    let keys = keys(&s3, "ci/nightly/").await;
    let runs = runs_in(&keys);
    assert_eq!(runs.len(), 1, "{keys:#?}");
    let run = runs.iter().next().unwrap();
    let name = run.rsplit('/').next().unwrap();
    assert!(
        run.starts_with(&format!("ci/nightly/{EXPERIMENT}/")),
        "{run}"
    );
    let expected: BTreeSet<String> = ["report.json", "junit.xml", "summary.md", "report.html"]
        .iter()
        .map(|f| format!("{run}/{f}"))
        .chain([
            format!("ci/nightly/{EXPERIMENT}/index/{name}.json"),
            format!("ci/nightly/{EXPERIMENT}/index.json"),
        ])
        .collect();
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("report: s3://{BUCKET}/{run}/")),
        "{stdout}"
    );
    // Encrypted at rest by default.
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(format!("{run}/report.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    let index: serde_json::Value = serde_json::from_slice(
        &s3.get_object()
            .bucket(BUCKET)
            .key(format!("ci/nightly/{EXPERIMENT}/index.json"))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes(),
    )
    .unwrap();
    assert_eq!(index["runs"], serde_json::json!([name]));

    // The same objects on disk, under the same keys.
    let disk = world.dir.path().join("mirror");
    for key in &keys {
        let bytes = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let path = disk.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let policy = world.dir.path().join("gate.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let gate = |target: String| {
        let mut command = offline(
            &moto,
            &["gate", "--policy", policy.to_str().unwrap(), &target],
        );
        async move { finish(&mut command).await }
    };
    let from_s3 = gate(location.clone()).await;
    let on_disk_root = disk.join("ci/nightly");
    let from_disk = gate(on_disk_root.display().to_string()).await;
    assert_eq!(from_s3.status.code(), Some(0), "{}", both(&from_s3));
    assert_eq!(from_disk.status.code(), from_s3.status.code());
    let s3_table = String::from_utf8_lossy(&from_s3.stdout)
        .replace(&location, &on_disk_root.display().to_string());
    let disk_table = String::from_utf8_lossy(&from_disk.stdout).into_owned();
    assert_eq!(s3_table, disk_table);
    assert!(s3_table.contains("score"), "{s3_table}");
    assert!(s3_table.contains("gate store: PASS"), "{s3_table}");

    // The history reads the bucket too.
    let history = finish(&mut offline(
        &moto,
        &["report", "--history", &format!("{location}/{EXPERIMENT}")],
    ))
    .await;
    assert_eq!(history.status.code(), Some(0), "{}", both(&history));
    let table = String::from_utf8_lossy(&history.stdout);
    assert!(
        table.contains("passed") && table.ends_with("1 run(s)\n"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_into_one_prefix_both_land() {
    let _serial = SERIAL.lock().await;
    let Some(world) = start_world(false).await else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    let s3 = s3_client(&moto);
    create_bucket(&s3).await;
    let (url, _) = ok_server().await;
    let file = world.dir.path().join("store.yaml");
    std::fs::write(&file, experiment(&url, "")).unwrap();
    let location = format!("s3://{BUCKET}/shared");
    // Separate state namespaces: each run holds its own lock, so both run at the same time.
    let mut children = Vec::new();
    for namespace in ["steadfast-store-a", "steadfast-store-b"] {
        world.namespace(namespace).await;
        let mut command = command(
            &world,
            &moto,
            &["run", file.to_str().unwrap(), "--report-dir", &location],
            namespace,
        );
        children.push(command.output());
    }
    let (a, b) = tokio::time::timeout(
        Duration::from_secs(150),
        futures::future::join(children.remove(0), children.remove(0)),
    )
    .await
    .expect("both runs end");
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", both(&a));
    assert_eq!(b.status.code(), Some(0), "{}", both(&b));

    let keys = keys(&s3, "shared/").await;
    let runs = runs_in(&keys);
    assert_eq!(runs.len(), 2, "{keys:#?}");
    for run in &runs {
        for file in ["report.json", "junit.xml", "summary.md", "report.html"] {
            assert!(keys.contains(&format!("{run}/{file}")), "{run}/{file} lost");
        }
        let name = run.rsplit('/').next().unwrap();
        assert!(
            keys.contains(&format!("shared/{EXPERIMENT}/index/{name}.json")),
            "index entry of {name} lost: {keys:#?}"
        );
    }
    // The gate sees both runs through the listing.
    let policy = world.dir.path().join("gate.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let gate = finish(&mut offline(
        &moto,
        &["gate", "--policy", policy.to_str().unwrap(), &location],
    ))
    .await;
    let table = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(0), "{}", both(&gate));
    assert!(table.contains("newest of 2"), "{table}");
    assert!(table.contains("2 report(s) read"), "{table}");
}

fn metric(textfile: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(textfile).ok()?;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_keeps_the_verdicts_exit_code_and_is_counted() {
    let _serial = SERIAL.lock().await;
    let Some(world) = start_world(false).await else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    // No bucket is created: every upload fails (after the store's retries).
    let (url, _) = ok_server().await;
    let missed = "    - {name: impossible, probe: service, latency: \"p99 < 1us\"}";
    for (i, (extra, verdict)) in [("", 0), (missed, 1)].into_iter().enumerate() {
        let file = world.dir.path().join(format!("store-{i}.yaml"));
        std::fs::write(&file, experiment(&url, extra)).unwrap();
        let namespace = format!("steadfast-store-fail-{i}");
        world.namespace(&namespace).await;
        let textfile = world.dir.path().join(format!("metrics-{i}.prom"));
        let output = finish(&mut command(
            &world,
            &moto,
            &[
                "run",
                file.to_str().unwrap(),
                "--report-dir",
                "s3://no-such-bucket/x",
                "--metrics-textfile",
                textfile.to_str().unwrap(),
                "-o",
                "json",
            ],
            &namespace,
        ))
        .await;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("report JSON on stdout ({e}): {}", both(&output)));
        assert_eq!(report["exitCode"], verdict, "{}", both(&output));
        assert_eq!(output.status.code(), Some(verdict), "{}", both(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("report upload failed") && stderr.contains("no-such-bucket"),
            "{stderr}"
        );
        // Four files and the index entry.
        assert_eq!(
            metric(&textfile, "steadfast_report_upload_failures"),
            Some(5.0),
            "{}",
            std::fs::read_to_string(&textfile).unwrap_or_default()
        );
        let score = metric(&textfile, "steadfast_experiment_resilience_score");
        assert_eq!(score, report["resilienceScore"].as_f64());
        if verdict == 0 {
            assert_eq!(score, Some(100.0));
        } else {
            assert!(score.is_some_and(|s| s < 100.0), "{score:?}");
        }
    }
}
