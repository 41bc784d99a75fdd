//! The everyday kubectl workflow, run by each kubectl version under test: reads with selectors
//! and paging, watch, create, apply and diff, the three patch types, scale, rollouts, node
//! maintenance, delete, describe, `auth can-i` and the service proxy.

use std::time::Duration;

use steadfast::sandbox::Sandbox;

use crate::tools::{Kubectl, eventually};

const UI: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: ui, namespace: shop, labels: {app: ui}}
spec:
  replicas: 2
  selector: {matchLabels: {app: ui}}
  template:
    metadata: {labels: {app: ui}}
    spec:
      containers:
        - {name: ui, image: 'ui:v1'}
"#;

const SETTINGS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
"#;

fn rows(out: &str) -> usize {
    out.lines().skip(1).filter(|l| !l.trim().is_empty()).count()
}

/// Runs the workflow; panics with kubectl's output on the first unexpected result.
pub async fn run(k: &Kubectl, sandbox: &Sandbox) {
    reads(k).await;
    writes(k).await;
    nodes(k, sandbox).await;
    let can = k.run(&["auth", "can-i", "get", "pods", "-n", "shop"]).await;
    assert_eq!(
        (can.code, can.stdout.trim()),
        (Some(0), "yes"),
        "{}",
        can.both()
    );
    let proxied = k
        .ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/shop/services/web:80/proxy/ping",
        ])
        .await;
    assert!(proxied.contains("\"path\":\"/ping\""), "{proxied}");
    kubectl_proxy(k).await;
}

/// `kubectl proxy` on a free loopback port, then the Service by name and port through it.
async fn kubectl_proxy(k: &Kubectl) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let mut child = k
        .command(&["proxy", "--port=0", "--address=127.0.0.1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl proxy starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("kubectl proxy announces its port")
    .expect("stdout reads");
    let addr = first
        .trim()
        .strip_prefix("Starting to serve on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_string();
    let get = |path: &'static str| {
        let addr = addr.clone();
        async move {
            let exchange = async {
                let mut stream = tokio::net::TcpStream::connect(&addr).await?;
                let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                stream.write_all(request.as_bytes()).await?;
                let mut reply = String::new();
                stream.read_to_string(&mut reply).await?;
                Ok::<_, std::io::Error>(reply)
            };
            tokio::time::timeout(Duration::from_secs(10), exchange)
                .await
                .expect("the proxy answers in time")
                .expect("the proxy exchange succeeds")
        }
    };
    let named = get("/api/v1/namespaces/shop/services/web:http/proxy/through").await;
    assert!(
        named.starts_with("HTTP/1.0 200") || named.starts_with("HTTP/1.1 200"),
        "{named}"
    );
    assert!(named.contains("\"path\":\"/through\""), "{named}");
    let wrong = get("/api/v1/namespaces/shop/services/web:9999/proxy/through").await;
    assert!(wrong.contains(" 503 "), "{wrong}");
    child.kill().await.expect("kubectl proxy stops");
}

async fn reads(k: &Kubectl) {
    let zone = k
        .ok(&[
            "get",
            "nodes",
            "-l",
            "topology.kubernetes.io/zone=us-east-1a",
        ])
        .await;
    assert_eq!(rows(&zone), 2, "{zone}");
    let paged = k
        .ok(&[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "app=web",
            "--chunk-size=1",
        ])
        .await;
    assert_eq!(rows(&paged), 3, "three pages of one pod: {paged}");
    let none = k
        .run(&["get", "pods", "-n", "shop", "-l", "app notin (web)"])
        .await;
    assert_eq!(none.code, Some(0), "{}", none.both());
    assert!(
        none.stderr
            .contains("No resources found in shop namespace."),
        "{}",
        none.both()
    );
    let running = k
        .ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        running
            .lines()
            .filter(|l| l.starts_with("pod/web-"))
            .count(),
        3,
        "{running}"
    );
    // A watch prints the current rows, then the changes: a scale-up's new pod shows up.
    watch_sees_a_new_pod(k).await;
    k.ok(&["scale", "deploy/web", "-n", "shop", "--replicas=3"])
        .await;
    eventually(
        "web back to three pods",
        Duration::from_secs(20),
        || async {
            let out = k
                .ok(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"])
                .await;
            (out.lines().count() == 3).then_some(())
        },
    )
    .await;
}

async fn writes(k: &Kubectl) {
    let settings = k.manifest("settings.yaml", SETTINGS);
    let created = k.ok(&["create", "-f", &settings]).await;
    assert_eq!(created.trim(), "configmap/settings created");
    let dup = k.run(&["create", "-f", &settings]).await;
    assert_eq!(dup.code, Some(1), "{}", dup.both());
    assert!(
        dup.stderr
            .contains("configmaps \"settings\" already exists"),
        "{}",
        dup.both()
    );

    let ui = k.manifest("ui.yaml", UI);
    assert_eq!(
        k.ok(&["apply", "-f", &ui]).await.trim(),
        "deployment.apps/ui created"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &ui]).await.trim(),
        "deployment.apps/ui unchanged"
    );
    let same = k.run(&["diff", "-f", &ui]).await;
    assert_eq!(same.code, Some(0), "no difference: {}", same.both());
    let changed = k.manifest("ui-3.yaml", &UI.replace("replicas: 2", "replicas: 3"));
    let diff = k.run(&["diff", "-f", &changed]).await;
    assert_eq!(diff.code, Some(1), "a difference: {}", diff.both());
    assert!(
        diff.stdout.contains("-  replicas: 2") && diff.stdout.contains("+  replicas: 3"),
        "{}",
        diff.both()
    );
    let replicas = [
        "get",
        "deploy/ui",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.replicas}",
    ];
    assert_eq!(k.ok(&replicas).await, "2", "diff is a dry run");
    let status = [
        "rollout",
        "status",
        "deploy/ui",
        "-n",
        "shop",
        "--timeout=30s",
    ];
    assert!(k.ok(&status).await.contains("successfully rolled out"));

    let merge = k
        .ok(&[
            "patch",
            "deploy/ui",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":"front"}}}"#,
        ])
        .await;
    assert_eq!(merge.trim(), "deployment.apps/ui patched");
    let strategic = k
        .ok(&[
            "patch",
            "deploy/ui",
            "-n",
            "shop",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"ui","env":[{"name":"MODE","value":"fast"}]}]}}}}"#,
        ])
        .await;
    assert_eq!(strategic.trim(), "deployment.apps/ui patched");
    let json = k
        .ok(&[
            "patch",
            "deploy/ui",
            "-n",
            "shop",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
        ])
        .await;
    assert_eq!(json.trim(), "deployment.apps/ui patched");
    let shown = k
        .ok(&[
            "get",
            "deploy/ui",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.labels.tier} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].value} {.spec.replicas}",
        ])
        .await;
    assert_eq!(
        shown, "front ui:v1 fast 3",
        "the strategic patch merged by name"
    );
    let noop = k
        .ok(&[
            "patch",
            "deploy/ui",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ])
        .await;
    assert_eq!(noop.trim(), "deployment.apps/ui patched (no change)");

    assert_eq!(
        k.ok(&["scale", "deploy/ui", "-n", "shop", "--replicas=1"])
            .await
            .trim(),
        "deployment.apps/ui scaled"
    );
    eventually("ui scaled to one pod", Duration::from_secs(20), || async {
        let pods = k
            .ok(&["get", "pods", "-n", "shop", "-l", "app=ui", "-o", "name"])
            .await;
        (pods.lines().count() == 1).then_some(())
    })
    .await;
    assert_eq!(
        k.ok(&["rollout", "restart", "deploy/ui", "-n", "shop"])
            .await
            .trim(),
        "deployment.apps/ui restarted"
    );
    assert!(k.ok(&status).await.contains("successfully rolled out"));
    let undo = k.ok(&["rollout", "undo", "deploy/ui", "-n", "shop"]).await;
    assert_eq!(undo.trim(), "deployment.apps/ui rolled back");
    assert!(k.ok(&status).await.contains("successfully rolled out"));

    let described = k.ok(&["describe", "deploy/ui", "-n", "shop"]).await;
    assert!(
        described.contains(
            "Replicas:               1 desired | 1 updated | 1 total | 1 available | 0 unavailable"
        ),
        "{described}"
    );

    let deleted = k.ok(&["delete", "deploy/ui", "-n", "shop"]).await;
    assert_eq!(deleted.trim(), "deployment.apps \"ui\" deleted");
    let gone = k.run(&["get", "deploy/ui", "-n", "shop"]).await;
    assert_eq!(gone.code, Some(1), "{}", gone.both());
    assert!(
        gone.stderr
            .contains("Error from server (NotFound): deployments.apps \"ui\" not found"),
        "{}",
        gone.both()
    );
}

async fn nodes(k: &Kubectl, sandbox: &Sandbox) {
    let node = sandbox.nodes_in_zone("us-east-1b")[0].clone();
    let node_ref = format!("node/{node}");
    assert_eq!(
        k.ok(&["cordon", &node]).await.trim(),
        format!("{node_ref} cordoned")
    );
    let tainted = k
        .ok(&["taint", "node", &node, "dedicated=infra:NoSchedule"])
        .await;
    assert_eq!(tainted.trim(), format!("{node_ref} tainted"));
    let described = k.ok(&["describe", "node", &node]).await;
    assert!(
        described.contains("dedicated=infra:NoSchedule")
            && described.contains("node.kubernetes.io/unschedulable:NoSchedule")
            && described.contains("Unschedulable:      true"),
        "{described}"
    );
    let drained = k
        .run(&[
            "drain",
            &node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ])
        .await;
    assert_eq!(drained.code, Some(0), "{}", drained.both());
    assert!(
        drained.stdout.contains(&format!("{node_ref} drained")),
        "{}",
        drained.both()
    );
    let left = k
        .ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "name",
        ])
        .await;
    assert_eq!(left.trim(), "", "nothing left on the drained node");
    let untainted = k.ok(&["taint", "node", &node, "dedicated-"]).await;
    assert_eq!(untainted.trim(), format!("{node_ref} untainted"));
    assert_eq!(
        k.ok(&["uncordon", &node]).await.trim(),
        format!("{node_ref} uncordoned")
    );
    let shown = k.ok(&["get", "node", &node]).await;
    assert!(
        shown.contains(" Ready ") && !shown.contains("SchedulingDisabled"),
        "{shown}"
    );
}

/// `kubectl get -w`: once the three current rows are printed, a scale-up's fourth pod follows.
async fn watch_sees_a_new_pod(k: &Kubectl) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = k
        .command(&[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "app=web",
            "-w",
            "--request-timeout=30s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get -w starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut pods = std::collections::BTreeSet::new();
    let mut header = None;
    let mut scaled = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pods.len() < 4 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no fourth pod in the watch: {pods:?}"))
            .expect("stdout reads")
            .unwrap_or_else(|| panic!("the watch ended early: {pods:?}"));
        if header.is_none() {
            header = Some(line);
            continue;
        }
        if let Some(name) = line.split_whitespace().next() {
            pods.insert(name.to_string());
        }
        if pods.len() == 3 && !scaled {
            let out = k
                .ok(&["scale", "deploy/web", "-n", "shop", "--replicas=4"])
                .await;
            assert_eq!(out.trim(), "deployment.apps/web scaled");
            scaled = true;
        }
    }
    assert!(header.is_some_and(|h| h.starts_with("NAME")));
    child.kill().await.expect("the watch stops");
}
