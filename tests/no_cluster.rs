//! Without any Kubernetes configuration (no KUBECONFIG, an empty HOME, no in-cluster
//! environment): experiments of URL probes and AWS faults probe and run anyway, with the run
//! lock, halt switch and journal local; and an incomplete rollback exits 4 even when neither
//! the report nor stdout can be written.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use steadfast::journal::{pending, read_entries};
use support::moto::Moto;
use support::ok_server::ok_server;
use support::sandbox::both;
use tokio::io::AsyncReadExt;

/// A whole run: connecting, a few seconds of probing and faults, rolling back.
const LIMIT: Duration = Duration::from_secs(120);
const AMI: &str = "ami-12c6146b";
const TAG: &str = "chaos-target";

/// `steadfast ARGS` with no way to find a cluster: KUBECONFIG unset, HOME an empty directory,
/// no in-cluster variables.
fn command(home: &Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfast"));
    command
        .args(args)
        .current_dir(support::sandbox::repo())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("STEADFAST_JOURNAL")
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

async fn finish(command: &mut tokio::process::Command) -> Output {
    match tokio::time::timeout(LIMIT, command.output()).await {
        Ok(output) => output.expect("the binary starts"),
        Err(_) => panic!("steadfast ran longer than {LIMIT:?}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_of_urls_needs_no_kubernetes_configuration() {
    let home = tempfile::tempdir().unwrap();
    let (url, served) = ok_server().await;
    let file = write(
        home.path(),
        "urls.yaml",
        &format!(
            r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {{name: urls-only}}
spec:
  duration: 10s
  steadyState:
    probes:
      - name: web
        http: {{url: "{url}", rate: 20/s, timeout: 1s}}
"#
        ),
    );
    let output = finish(&mut command(
        home.path(),
        &["probe", file.to_str().unwrap(), "--for", "1s"],
        &[],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(served.load(Ordering::Relaxed) > 5, "{}", both(&output));
}

/// Moto with one tagged instance; its id.
async fn moto_with_instance() -> Option<(Moto, aws_sdk_ec2::Client, String)> {
    let moto = Moto::start()?;
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let id = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("role").value(TAG).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    Some((moto, ec2, id))
}

async fn state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let described = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    described.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

fn aws_only(url: &str, fault_for: &str) -> String {
    format!(
        r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {{name: aws-only}}
spec:
  duration: {fault_for}
  aws: {{region: us-east-1}}
  steadyState:
    before: 1s
    after: 1s
    recoveryTimeout: 5s
    probes:
      - name: web
        http: {{url: "{url}", rate: 20/s, timeout: 1s}}
  faults:
    - name: stop-one
      at: 0s
      for: {fault_for}
      ec2Stop:
        target: {{tags: {{role: {TAG}}}, mode: one}}
  targets:
    - {{probe: web, availability: ">= 95%"}}
  safety: {{maxNodes: 1, maxPercent: 100%}}
"#
    )
}

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto_endpoint(moto)),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn moto_endpoint(moto: &Moto) -> String {
    moto.options().endpoint_url.expect("moto's endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_of_aws_faults_and_urls_needs_no_kubernetes_configuration() {
    let Some((moto, ec2, id)) = moto_with_instance().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (url, _) = ok_server().await;
    let file = write(home.path(), "aws.yaml", &aws_only(&url, "2s"));
    let journal = home.path().join("journal.jsonl");
    let reports = home.path().join("reports");
    let env = aws_env(&moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = finish(&mut command(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--seed",
            "1",
        ],
        &env,
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let entries = read_entries(&journal).unwrap();
    assert!(
        entries.iter().any(|e| format!("{e:?}").contains(&id)),
        "the stop of {id} was journaled: {entries:?}"
    );
    assert!(pending(&entries).is_empty(), "nothing pending: {entries:?}");
    assert_eq!(state(&ec2, &id).await, "running");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("local to this machine"),
        "the run says its lock, halt switch and journal are local: {stderr}"
    );

    // The dry run needs no cluster either.
    let plan = finish(&mut command(
        home.path(),
        &["plan", file.to_str().unwrap(), "--seed", "1"],
        &env,
    ))
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains(&id),
        "{}",
        both(&plan)
    );

    // A passing run whose report cannot be written keeps the verdict's code, 0, and says why.
    let blocker = write(home.path(), "not-a-dir", "");
    let output = finish(
        command(
            home.path(),
            &[
                "run",
                file.to_str().unwrap(),
                "--journal",
                journal.to_str().unwrap(),
                "--report-dir",
                blocker.join("reports").to_str().unwrap(),
                "--seed",
                "1",
            ],
            &env,
        )
        .stdout(Stdio::null()),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot write the report"),
        "{}",
        both(&output)
    );
    assert!(pending(&read_entries(&journal).unwrap()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_output_json_prints_only_the_report_on_stdout() {
    let Some((moto, _ec2, _id)) = moto_with_instance().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (url, _) = ok_server().await;
    let file = write(home.path(), "aws.yaml", &aws_only(&url, "1s"));
    let journal = home.path().join("journal.jsonl");
    let reports = home.path().join("reports");
    let env = aws_env(&moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = finish(&mut command(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--seed",
            "1",
            "-o",
            "json",
        ],
        &env,
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // stdout is one JSON document, the report; the summary and status lines are on stderr.
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&output)));
    assert_eq!(report["experiment"]["name"], "aws-only");
    assert_eq!(report["exitCode"], 0);
    assert_eq!(report["faults"].as_array().map(Vec::len), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("report: "), "{stderr}");
    // The same content as the report.json written under --report-dir.
    let written = std::fs::read_dir(&reports)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("report.json")))
        .find(|p| p.is_file())
        .expect("a report.json under --report-dir");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(written).unwrap()).unwrap();
    assert_eq!(report, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_rollback_exits_4_even_with_no_report_and_a_closed_stdout() {
    let Some((moto, _ec2, id)) = moto_with_instance().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (url, _) = ok_server().await;
    let file = write(home.path(), "aws.yaml", &aws_only(&url, "20s"));
    let journal = home.path().join("journal.jsonl");
    // A directory cannot be made under a regular file.
    let blocker = write(home.path(), "not-a-dir", "");
    let reports = blocker.join("reports");
    let env = aws_env(&moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = command(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--seed",
            "1",
            // The undo is retried until this deadline: AWS stays away, so give up soon.
            "--undo-deadline",
            "3s",
        ],
        &env,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Nobody reads stdout: the pipe is closed.
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    // Once the stop is journaled, AWS goes away: the undo cannot be applied.
    let started = Instant::now();
    loop {
        let journaled = read_entries(&journal)
            .map(|entries| !pending(&entries).is_empty())
            .unwrap_or(false);
        if journaled {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the stop of {id} was never journaled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(moto);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("the run ends")
        .unwrap();
    let stderr = stderr.await.unwrap();
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot write the report"), "{stderr}");
    assert!(!pending(&read_entries(&journal).unwrap()).is_empty());
}
