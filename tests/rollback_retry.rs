//! `steadfast rollback` against an AWS endpoint that is briefly unreachable: a partitioned
//! subnet's ACL restore fails while nothing listens, is retried with backoff, and succeeds once
//! the endpoint answers, without a second `rollback`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use steadfast::fault::{SubnetAcl, UndoAction, UndoRecord};
use steadfast::infra::aws::{MANAGED_BY_KEY, MANAGED_BY_VALUE, RUN_ID_TAG};
use steadfast::journal::{FileJournal, JournalEntry, pending, read_entries};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

use support::moto::{Moto, REGION, steadfast_acls, subnet_acl};

const RUN_ID: &str = "retry-run";
/// How long the whole rollback may take, retries included.
const LIMIT: Duration = Duration::from_secs(120);

/// Moves a subnet of the default VPC onto a deny-all ACL tagged as steadfast's, the way an
/// azPartition does; returns the undo record that restores it.
async fn partition(ec2: &aws_sdk_ec2::Client) -> UndoRecord {
    let vpcs = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .expect("moto answers");
    let vpc = vpcs.vpcs()[0].vpc_id().expect("a VPC id").to_owned();
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .expect("moto answers");
    let subnet = subnets.subnets()[0]
        .subnet_id()
        .expect("a subnet id")
        .to_owned();
    let (original, association) = subnet_acl(ec2, &subnet).await;
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let deny = ec2
        .create_network_acl()
        .vpc_id(&vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::NetworkAcl)
                .tags(tag(MANAGED_BY_KEY, MANAGED_BY_VALUE))
                .tags(tag(RUN_ID_TAG, RUN_ID))
                .build(),
        )
        .send()
        .await
        .expect("moto creates the ACL");
    let deny = deny
        .network_acl()
        .and_then(|a| a.network_acl_id())
        .expect("an ACL id")
        .to_owned();
    ec2.replace_network_acl_association()
        .association_id(association)
        .network_acl_id(&deny)
        .send()
        .await
        .expect("moto swaps the ACL");
    UndoRecord {
        id: format!("{RUN_ID}/partition/0/0"),
        run_id: RUN_ID.into(),
        fault: "partition".into(),
        action: UndoAction::RestoreNetworkAcls {
            region: REGION.into(),
            vpc_id: vpc,
            original: vec![SubnetAcl {
                subnet_id: subnet,
                network_acl_id: original,
            }],
        },
        created_at: chrono::Utc::now(),
    }
}

/// Forwards every connection on `listener` to `target` until dropped.
async fn forward(listener: TcpListener, target: String) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let target = target.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_retries_an_acl_restore_until_the_briefly_unreachable_endpoint_answers() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let record = partition(&ec2).await;
    let UndoAction::RestoreNetworkAcls { original, .. } = &record.action else {
        unreachable!()
    };
    let (subnet, original_acl) = (
        original[0].subnet_id.clone(),
        original[0].network_acl_id.clone(),
    );
    assert_ne!(subnet_acl(&ec2, &subnet).await.0, original_acl);

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    FileJournal::open(&journal)
        .unwrap()
        .append(&JournalEntry::Undo(record.clone()))
        .unwrap();
    // The kube client connects lazily and this record needs no cluster.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    // A loopback port nothing listens on yet: the endpoint is unreachable until it does.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");

    let mut child = support::sandbox::command(
        &[
            "rollback",
            "--journal",
            journal.to_str().unwrap(),
            "--no-cluster-journal",
            "--undo-deadline",
            "90s",
        ],
        &[("KUBECONFIG", &kubeconfig)],
    )
    .env("AWS_ENDPOINT_URL", &endpoint)
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_REGION", REGION)
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("STEADFAST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .expect("steadfast rollback starts");
    let started = Instant::now();

    // Bring the endpoint up only once a failed attempt has been retried.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("undo failed; retrying") {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no retry was announced within {LIMIT:?}:\n{seen}"));
    assert!(
        seen.contains("undo failed; retrying"),
        "rollback ended without retrying:\n{seen}"
    );
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the reserved port is still free");
    let target = moto.endpoint.trim_start_matches("http://").to_owned();
    let proxy = tokio::spawn(forward(listener, target));
    let drain = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });

    let output = timeout(
        LIMIT.saturating_sub(started.elapsed()),
        child.wait_with_output(),
    )
    .await
    .expect("rollback finishes within its limit")
    .unwrap();
    proxy.abort();
    let stderr = drain.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("restored: ") && stdout.contains(" attempts)"),
        "{stdout}"
    );
    assert_eq!(subnet_acl(&ec2, &subnet).await.0, original_acl);
    assert!(steadfast_acls(&ec2, None).await.is_empty());
    assert!(pending(&read_entries(&journal).unwrap()).is_empty());
}
