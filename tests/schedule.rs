//! `steadfast schedule`: the firing loop on tokio's paused clock with a fake launcher (days of
//! schedule in milliseconds), the HTTP endpoint on loopback, and the real binary firing a real
//! run against the sandbox and rolling it back on SIGTERM.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use steadfast::schedule::metrics::RunResultLabel;
use steadfast::schedule::{
    Clock, Launcher, Overlap, RunOutcome, ScheduleMetrics, ScheduledExperiment, Scheduler,
    SchedulerExit, SchedulerOptions, TokioClock, parse_cron,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn experiment(name: &str, cron: &str, zone: chrono_tz::Tz) -> ScheduledExperiment {
    ScheduledExperiment {
        name: name.into(),
        file: PathBuf::from(format!("{name}.yaml")),
        cron: parse_cron(cron).unwrap(),
        zone,
        jitter: Duration::ZERO,
        run_limit: Duration::from_secs(3600),
    }
}

/// What the fake launcher saw.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Started(String, DateTime<Utc>),
    Stopped(String, DateTime<Utc>),
    Recovered(DateTime<Utc>),
}

/// Runs take `run_time` of (paused) tokio time and end with `outcomes` in turn (then exit 0);
/// a stop request ends a run at once with exit 3, as a rolled-back abort does.
struct FakeLauncher {
    clock: TokioClock,
    run_time: Duration,
    outcomes: Mutex<Vec<RunOutcome>>,
    recoveries: Mutex<Vec<RunOutcome>>,
    events: Mutex<Vec<Event>>,
}

impl FakeLauncher {
    fn new(clock: TokioClock, run_time: Duration) -> Arc<Self> {
        Arc::new(Self {
            clock,
            run_time,
            outcomes: Mutex::new(Vec::new()),
            recoveries: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
        })
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn starts(&self) -> Vec<(String, DateTime<Utc>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started(name, at) => Some((name, at)),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl Launcher for FakeLauncher {
    async fn run(&self, experiment: &ScheduledExperiment, stop: CancellationToken) -> RunOutcome {
        self.events
            .lock()
            .unwrap()
            .push(Event::Started(experiment.name.clone(), self.clock.now()));
        tokio::select! {
            () = tokio::time::sleep(self.run_time) => {
                let mut outcomes = self.outcomes.lock().unwrap();
                if outcomes.is_empty() { RunOutcome::Exited(0) } else { outcomes.remove(0) }
            }
            () = stop.cancelled() => {
                self.events
                    .lock()
                    .unwrap()
                    .push(Event::Stopped(experiment.name.clone(), self.clock.now()));
                RunOutcome::Exited(3)
            }
        }
    }

    async fn recover(&self) -> RunOutcome {
        self.events
            .lock()
            .unwrap()
            .push(Event::Recovered(self.clock.now()));
        let mut recoveries = self.recoveries.lock().unwrap();
        if recoveries.is_empty() {
            RunOutcome::Exited(0)
        } else {
            recoveries.remove(0)
        }
    }
}

fn options(overlap: Overlap) -> SchedulerOptions {
    SchedulerOptions {
        overlap,
        queue_limit: 8,
        seed: 7,
        fire_on_start: false,
    }
}

/// Runs a scheduler on the paused clock for `span` of schedule time, then shuts it down.
async fn drive(
    experiments: Vec<ScheduledExperiment>,
    clock: TokioClock,
    launcher: &Arc<FakeLauncher>,
    options: SchedulerOptions,
    span: Duration,
) -> (SchedulerExit, ScheduleMetrics) {
    let metrics = ScheduleMetrics::default();
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler::new(
        experiments,
        Arc::new(clock),
        launcher.clone(),
        metrics.clone(),
        options,
    );
    let handle = tokio::spawn(scheduler.run(shutdown.clone()));
    tokio::time::sleep(span).await;
    shutdown.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(3600), handle)
        .await
        .expect("the scheduler stops")
        .expect("the scheduler does not panic");
    (exit, metrics)
}

fn utc_times(starts: &[(String, DateTime<Utc>)]) -> Vec<String> {
    starts
        .iter()
        .map(|(_, t)| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn fires_follow_berlin_wall_time_across_both_daylight_saving_changes() {
    let berlin = chrono_tz::Europe::Berlin;
    // Fall back, 25 October 2026: 02:30 happens twice and fires twice (as CronJobs do).
    let clock = TokioClock::starting_at(at("2026-10-24T12:00:00Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(60));
    let (exit, _) = drive(
        vec![experiment("nightly", "30 2 * * *", berlin)],
        clock,
        &launcher,
        options(Overlap::Skip),
        Duration::from_secs(3 * 86_400),
    )
    .await;
    assert_eq!(
        utc_times(&launcher.starts()),
        [
            "2026-10-25T00:30:00Z", // 02:30 CEST
            "2026-10-25T01:30:00Z", // 02:30 CET
            "2026-10-26T01:30:00Z",
            "2026-10-27T01:30:00Z",
        ]
    );
    assert_eq!(exit.runs, 4);

    // Spring forward, 29 March 2026: 02:30 does not exist and does not fire that day.
    let clock = TokioClock::starting_at(at("2026-03-28T12:00:00Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(60));
    drive(
        vec![experiment("nightly", "30 2 * * *", berlin)],
        clock,
        &launcher,
        options(Overlap::Skip),
        Duration::from_secs(3 * 86_400),
    )
    .await;
    assert_eq!(
        utc_times(&launcher.starts()),
        ["2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    );
}

#[tokio::test(start_paused = true)]
async fn fires_during_a_run_are_skipped_and_counted() {
    // Every minute, each run lasting 150 s: of the fires at 00:01..00:08, those at 00:02, 00:03
    // (during the first run), 00:05, 00:06 (second) and 00:08 (third) are skipped.
    let clock = TokioClock::starting_at(at("2026-01-01T00:00:30Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(150));
    let (exit, metrics) = drive(
        vec![experiment("every-minute", "* * * * *", chrono_tz::UTC)],
        clock,
        &launcher,
        options(Overlap::Skip),
        Duration::from_secs(8 * 60),
    )
    .await;
    assert_eq!(
        utc_times(&launcher.starts()),
        [
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:04:00Z",
            "2026-01-01T00:07:00Z"
        ]
    );
    assert_eq!(exit.runs, 3);
    let text = metrics.render();
    assert!(
        text.contains(
            "steadfast_schedule_fires_skipped_total{experiment=\"every-minute\",reason=\"overlap\"} 5\n"
        ),
        "{text}"
    );
    // The third run was still going at shutdown: it was stopped (rolled back), not abandoned.
    assert!(matches!(
        launcher.events().last(),
        Some(Event::Stopped(name, _)) if name == "every-minute"
    ));
    assert!(
        text.contains("result=\"aborted\",exit_code=\"3\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn fires_during_a_run_are_queued_up_to_the_limit_and_never_overlap() {
    // Two experiments fire at the same minute; runs take 90 s. The second waits for the first.
    let clock = TokioClock::starting_at(at("2026-01-01T00:00:30Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(90));
    let (_, metrics) = drive(
        vec![
            experiment("a", "*/5 * * * *", chrono_tz::UTC),
            experiment("b", "*/5 * * * *", chrono_tz::UTC),
        ],
        clock,
        &launcher,
        options(Overlap::Queue),
        Duration::from_secs(7 * 60),
    )
    .await;
    assert_eq!(
        launcher
            .starts()
            .iter()
            .map(|(name, t)| format!("{name} {}", t.format("%H:%M:%S")))
            .collect::<Vec<_>>(),
        ["a 00:05:00", "b 00:06:30"]
    );
    let text = metrics.render();
    assert!(
        !text.contains("steadfast_schedule_fires_skipped_total{"),
        "{text}"
    );

    // With a queue of one, a third simultaneous fire is dropped as queue_full.
    let clock = TokioClock::starting_at(at("2026-01-01T00:00:30Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(90));
    let (_, metrics) = drive(
        vec![
            experiment("a", "*/5 * * * *", chrono_tz::UTC),
            experiment("b", "*/5 * * * *", chrono_tz::UTC),
            experiment("c", "*/5 * * * *", chrono_tz::UTC),
        ],
        clock,
        &launcher,
        SchedulerOptions {
            queue_limit: 1,
            ..options(Overlap::Queue)
        },
        Duration::from_secs(7 * 60),
    )
    .await;
    let names: Vec<String> = launcher.starts().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b"]);
    let text = metrics.render();
    assert!(
        text.contains(
            "steadfast_schedule_fires_skipped_total{experiment=\"c\",reason=\"queue_full\"} 1\n"
        ),
        "{text}"
    );
    // Never two at once: each start is at least a run time after the previous one.
    let starts = launcher.starts();
    for pair in starts.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= chrono::TimeDelta::seconds(90),
            "{starts:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_fire_within_its_bound_and_is_seeded() {
    let run = |seed: u64| async move {
        let clock = TokioClock::starting_at(at("2026-01-01T00:00:00Z"));
        let launcher = FakeLauncher::new(clock, Duration::from_secs(1));
        let mut hourly = experiment("hourly", "0 * * * *", chrono_tz::UTC);
        hourly.jitter = Duration::from_secs(600);
        drive(
            vec![hourly],
            clock,
            &launcher,
            SchedulerOptions {
                seed,
                ..options(Overlap::Skip)
            },
            Duration::from_secs(10 * 3600 + 601),
        )
        .await;
        launcher.starts()
    };
    let first = run(1).await;
    assert_eq!(first.len(), 10, "{first:?}");
    let mut delays = Vec::new();
    for (_, started) in &first {
        let hour = started
            .format("%Y-%m-%dT%H:00:00Z")
            .to_string()
            .parse::<DateTime<Utc>>()
            .unwrap();
        let delay = *started - hour;
        assert!(
            delay >= chrono::TimeDelta::zero() && delay < chrono::TimeDelta::seconds(600),
            "{started}"
        );
        delays.push(delay);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 5, "jitter varies between fires: {delays:?}");
    assert_eq!(run(1).await, first, "the same seed gives the same delays");
    assert_ne!(run(2).await, first, "another seed gives other delays");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_did_not_roll_back_is_recovered_before_the_next_fire() {
    let clock = TokioClock::starting_at(at("2026-01-01T00:00:30Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(10));
    *launcher.outcomes.lock().unwrap() = vec![RunOutcome::Exited(4), RunOutcome::Killed(Some(9))];
    // The first recovery fails too: the next fire retries it first, and is skipped meanwhile.
    *launcher.recoveries.lock().unwrap() = vec![RunOutcome::Exited(4), RunOutcome::Exited(4)];
    let (exit, metrics) = drive(
        vec![experiment("every-minute", "* * * * *", chrono_tz::UTC)],
        clock,
        &launcher,
        options(Overlap::Skip),
        Duration::from_secs(4 * 60),
    )
    .await;
    let minute = |e: &Event| match e {
        Event::Started(_, t) => format!("run {}", t.format("%H:%M:%S")),
        Event::Stopped(_, t) => format!("stop {}", t.format("%H:%M:%S")),
        Event::Recovered(t) => format!("recover {}", t.format("%H:%M:%S")),
    };
    assert_eq!(
        launcher.events().iter().map(minute).collect::<Vec<_>>(),
        [
            "run 00:01:00",     // exits 4: rollback incomplete
            "recover 00:01:10", // fails
            "recover 00:02:00", // retried before the next fire; fails: fire skipped
            "recover 00:03:00", // succeeds
            "run 00:03:00",     // killed by SIGKILL
            "recover 00:03:10", // succeeds
            "run 00:04:00",
        ]
    );
    assert!(!exit.rollback_pending);
    let text = metrics.render();
    for line in [
        "reason=\"rollback_pending\"} 1\n",
        "result=\"rollback_incomplete\",exit_code=\"4\"} 1\n",
        "result=\"killed\",exit_code=\"\"} 1\n",
        "steadfast_schedule_recoveries_total{outcome=\"incomplete\"} 2\n",
        "steadfast_schedule_recoveries_total{outcome=\"complete\"} 2\n",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn next_fire_times_are_exported_per_experiment() {
    let clock = TokioClock::starting_at(at("2026-01-01T00:00:30Z"));
    let launcher = FakeLauncher::new(clock, Duration::from_secs(1));
    let (_, metrics) = drive(
        vec![
            experiment("daily", "0 3 * * *", chrono_tz::UTC),
            experiment("weekdays", "30 3 * * 1-5", chrono_tz::Europe::Berlin),
        ],
        clock,
        &launcher,
        options(Overlap::Skip),
        Duration::from_secs(60),
    )
    .await;
    let text = metrics.render();
    let daily = at("2026-01-01T03:00:00Z").timestamp();
    // 1 January 2026 is a Thursday; 03:30 CET is 02:30 UTC.
    let weekdays = at("2026-01-01T02:30:00Z").timestamp();
    for line in [
        format!("steadfast_schedule_next_fire_timestamp_seconds{{experiment=\"daily\"}} {daily}\n"),
        format!(
            "steadfast_schedule_next_fire_timestamp_seconds{{experiment=\"weekdays\"}} {weekdays}\n"
        ),
        "steadfast_schedule_running 0\n".to_owned(),
    ] {
        assert!(text.contains(&line), "{line} missing:\n{text}");
    }
    assert!(launcher.starts().is_empty());
}

/// One HTTP/1.1 GET on loopback, bounded in time; returns the status line and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the endpoint answers within 10 s");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn healthz_and_metrics_are_served_over_http() {
    let metrics = ScheduleMetrics::default();
    metrics.run_started("nightly");
    metrics.run_finished(
        "nightly",
        RunResultLabel {
            result: "success",
            exit_code: "0".into(),
        },
    );
    metrics.fire_skipped("nightly", "overlap");
    metrics.set_next_fire("nightly", Some(at("2026-01-02T03:00:00Z")));
    let listener = steadfast::schedule::http::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(steadfast::schedule::http::serve(
        listener,
        metrics.clone(),
        stop.clone(),
    ));

    let (status, body) = get(addr, "/healthz").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.trim(), "ok");
    let (status, body) = get(addr, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("steadfast_schedule_runs_finished_total{experiment=\"nightly\",result=\"success\",exit_code=\"0\"} 1\n"), "{body}");
    assert!(
        body.contains(
            "steadfast_schedule_next_fire_timestamp_seconds{experiment=\"nightly\"} 1767322800\n"
        ),
        "{body}"
    );
    let (status, _) = get(addr, "/nothing").await;
    assert!(status.contains(" 404 "), "{status}");

    // Prometheus's own checker accepts the exposition (when installed; required in CI).
    if let Some(promtool) =
        support::tools::require("promtool", support::prometheus::promtool_binary())
    {
        let mut child = tokio::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(body.as_bytes()).await.unwrap();
        drop(stdin);
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("promtool answers")
            .unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

/// `steadfast schedule` running against a sandbox, its output collected.
struct RunningScheduler {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
    journal: PathBuf,
}

impl RunningScheduler {
    /// Schedules a copy of the sandbox's node-cordon experiment (for a date far away) with
    /// `--fire-on-start`, so one real fire happens at once.
    async fn start(sandbox: &steadfast::sandbox::Sandbox, dir: &std::path::Path) -> Self {
        use tokio::io::AsyncBufReadExt;
        let experiments = dir.join("experiments");
        std::fs::create_dir_all(&experiments).unwrap();
        let text = std::fs::read_to_string(
            support::sandbox::repo().join("experiments/sandbox/node-cordon.yaml"),
        )
        .unwrap()
        .replacen(
            "spec:\n",
            "spec:\n  schedule: {cron: \"0 3 1 1 *\", timeZone: Europe/Berlin}\n",
            1,
        );
        std::fs::write(experiments.join("node-cordon.yaml"), text).unwrap();
        let journal = dir.join("journal.jsonl");
        let reports = dir.join("reports");
        let env = [
            ("KUBECONFIG", sandbox.kubeconfig_path()),
            ("STEADFAST_JOURNAL", journal.as_path()),
            ("STEADFAST_REPORTS_DIR", reports.as_path()),
        ];
        let experiments_arg = experiments.display().to_string();
        let mut child = support::sandbox::command(
            &[
                "schedule",
                "--experiments",
                &experiments_arg,
                "--fire-on-start",
                "--listen",
                "127.0.0.1:0",
            ],
            &env,
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("the scheduler starts within 30 s")
            .unwrap()
            .unwrap_or_default();
        let addr = first
            .rsplit_once("http://")
            .map(|(_, a)| a.trim().parse().expect("an address"))
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let stdout = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Ok(Some(line)) = stdout.next_line().await {
                lines.push(line);
            }
            lines.join("\n")
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            text
        });
        Self {
            child,
            addr,
            stdout,
            stderr,
            journal,
        }
    }

    /// Waits until /metrics contains `line`, for at most `limit`.
    async fn wait_for_metric(&self, line: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (_, body) = get(self.addr, "/metrics").await;
            if body.contains(line) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{line:?} not in /metrics within {limit:?}:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sends SIGTERM and waits (at most 120 s) for the exit; returns (code, stdout, stderr).
    async fn terminate(mut self) -> (Option<i32>, String, String) {
        let pid = i32::try_from(self.child.id().expect("running")).unwrap();
        // SAFETY: the pid of a child this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .expect("the scheduler exits within 120 s of SIGTERM")
            .unwrap();
        (
            status.code(),
            self.stdout.await.unwrap(),
            self.stderr.await.unwrap(),
        )
    }
}

async fn cordoned_nodes(sandbox: &steadfast::sandbox::Sandbox) -> usize {
    use k8s_openapi::api::core::v1::Node;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let nodes: kube::Api<Node> = kube::Api::all(kube::Client::try_from(config).unwrap());
    tokio::time::timeout(Duration::from_secs(30), nodes.list(&Default::default()))
        .await
        .expect("the sandbox answers")
        .unwrap()
        .items
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .count()
}

/// The real binary against the sandbox: `--fire-on-start` makes a real fire happen at once; the
/// run cordons a node; SIGTERM to the scheduler reaches the run, which rolls back (the node is
/// uncordoned, no undo record is left pending) before the scheduler exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_fire_runs_on_the_sandbox_and_sigterm_rolls_it_back_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::sandbox::start_in(dir.path()).await;
    let scheduler = RunningScheduler::start(&sandbox, dir.path()).await;
    // The fault fires 5 s into the fault phase, after 5 s of steady state.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while cordoned_nodes(&sandbox).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no node was cordoned within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, body) = get(scheduler.addr, "/metrics").await;
    assert!(body.contains("steadfast_schedule_running 1\n"), "{body}");
    assert!(
        body.contains(
            "steadfast_schedule_runs_started_total{experiment=\"sandbox-node-cordon\"} 1\n"
        ),
        "{body}"
    );
    let journal = scheduler.journal.clone();
    let (code, out, err) = scheduler.terminate().await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("scheduler stopped after 1 run(s)"), "{out}");
    assert!(err.contains("aborted"), "the run ended as aborted: {err}");
    assert_eq!(
        cordoned_nodes(&sandbox).await,
        0,
        "the run rolled back before the scheduler exited"
    );
    let entries = steadfast::journal::read_entries(&journal).unwrap();
    assert!(!entries.is_empty(), "the run journaled its undo record");
    assert!(
        steadfast::journal::pending(&entries).is_empty(),
        "nothing is left pending"
    );
    sandbox.shutdown().await;
}

/// A real fire that runs to its end: the run's verdict shows in /metrics by result and exit
/// code, its report is written, and an idle scheduler exits at once on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_fire_runs_to_its_verdict_and_metrics_count_it() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::sandbox::start_in(dir.path()).await;
    let scheduler = RunningScheduler::start(&sandbox, dir.path()).await;
    scheduler
        .wait_for_metric(
            "steadfast_schedule_runs_started_total{experiment=\"sandbox-node-cordon\"} 1\n",
            Duration::from_secs(30),
        )
        .await;
    let body = scheduler
        .wait_for_metric("steadfast_schedule_running 0\n", Duration::from_secs(150))
        .await;
    assert!(
        body.contains(
            "steadfast_schedule_runs_finished_total{experiment=\"sandbox-node-cordon\",result=\"success\",exit_code=\"0\"} 1\n"
        ) || body.contains(
            "steadfast_schedule_runs_finished_total{experiment=\"sandbox-node-cordon\",result=\"targets_missed\",exit_code=\"1\"} 1\n"
        ),
        "the run finished with a verdict:\n{body}"
    );
    // 3:00 on 1 January, Berlin time, next year at the latest.
    assert!(
        body.contains(
            "steadfast_schedule_next_fire_timestamp_seconds{experiment=\"sandbox-node-cordon\"} "
        ),
        "{body}"
    );
    let (code, out, err) = scheduler.terminate().await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("report: "), "the run's report: {out}");
    assert!(out.contains("scheduler stopped after 1 run(s)"), "{out}");
    assert_eq!(cordoned_nodes(&sandbox).await, 0);
    sandbox.shutdown().await;
}

/// The child launcher with a stand-in executable (a shell script): the run's exit code and
/// death by signal are told apart, a stop forwards SIGTERM to the child (which "rolls back" and
/// exits 3), and recovery runs `rollback` with the same common arguments.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_runs_get_sigterm_on_stop_and_their_outcomes_are_told_apart() {
    use std::os::unix::fs::PermissionsExt;
    use steadfast::schedule::ChildLauncher;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let exe = dir.path().join("steadfast-stand-in");
    std::fs::write(
        &exe,
        format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
case "$2" in
  *exit1.yaml) exit 1 ;;
  *killed.yaml) kill -KILL $$ ;;
  *slow.yaml) trap 'echo rolled-back >> "{log}"; exit 3' TERM; while true; do sleep 0.1; done ;;
esac
exit 0
"#,
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let launcher = ChildLauncher {
        exe,
        common: vec!["--kubeconfig".into(), "/k".into()],
        run_only: vec!["--report-dir".into(), "/r".into()],
    };
    let run = |file: &str| experiment(file.trim_end_matches(".yaml"), "0 3 * * *", chrono_tz::UTC);
    let limit = Duration::from_secs(30);
    let outcome = tokio::time::timeout(
        limit,
        launcher.run(&run("exit1.yaml"), CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(1));
    let outcome = tokio::time::timeout(
        limit,
        launcher.run(&run("killed.yaml"), CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(outcome, RunOutcome::Killed(Some(9)));
    assert!(outcome.needs_recovery());

    let stop = CancellationToken::new();
    let slow = run("slow.yaml");
    let running = launcher.run(&slow, stop.clone());
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.cancel();
    };
    let (outcome, ()) = tokio::time::timeout(limit, async { tokio::join!(running, stopper) })
        .await
        .expect("the stopped run ends");
    assert_eq!(
        outcome,
        RunOutcome::Exited(3),
        "SIGTERM made it roll back and exit 3"
    );

    let outcome = tokio::time::timeout(limit, launcher.recover())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(0));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "run exit1.yaml --kubeconfig /k --report-dir /r",
            "run killed.yaml --kubeconfig /k --report-dir /r",
            "run slow.yaml --kubeconfig /k --report-dir /r",
            "rolled-back",
            "rollback --kubeconfig /k",
        ]
    );
}
