//! The cloud link against moto on loopback: instances become nodes, a terminated instance's
//! node goes away and its replacement joins, a deny-all subnet ACL partitions a zone.

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use steadfast::sandbox::cloud::CloudOptions;

use crate::support::{eventually, get_fresh, kube_client, start};

/// A moto server on a free loopback port, stopped on drop.
struct Moto {
    url: String,
    _child: tokio::process::Child,
}

async fn moto() -> Option<Moto> {
    let binary = crate::tools::require_tool("moto_server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = tokio::process::Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("moto_server starts");
    let url = format!("http://127.0.0.1:{port}");
    // Up to a minute: moto imports slowly on a loaded machine.
    for _ in 0..600 {
        if get_fresh(&format!("{url}/moto-api/")).await.is_ok() {
            return Some(Moto { url, _child: child });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not answer on {url}");
}

fn clients(url: &str) -> (aws_sdk_ec2::Client, aws_sdk_autoscaling::Client) {
    let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test");
    let ec2 = aws_sdk_ec2::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds.clone())
        .build();
    let asg = aws_sdk_autoscaling::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_autoscaling::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    (
        aws_sdk_ec2::Client::from_conf(ec2),
        aws_sdk_autoscaling::Client::from_conf(asg),
    )
}

fn ready(n: &Node) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn provider(n: &Node) -> String {
    n.spec
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default()
}

async fn association_of(ec2: &aws_sdk_ec2::Client, subnet: &str) -> String {
    let acls = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(subnet)
                .build(),
        )
        .send()
        .await
        .unwrap();
    acls.network_acls()
        .iter()
        .flat_map(|a| a.associations())
        .find(|a| a.subnet_id() == Some(subnet))
        .and_then(|a| a.network_acl_association_id())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_link_mirrors_instances_and_subnet_acls() {
    let Some(moto) = moto().await else { return };
    let run = start().await;
    let link = run
        .sandbox
        .link_cloud(CloudOptions::new(&moto.url, "test"))
        .await
        .unwrap();
    let (ec2, asg) = clients(&moto.url);
    let client = kube_client(&run.sandbox).await;
    let nodes: Api<Node> = Api::all(client.clone());

    // Every node carries the provider id of an InService instance of its zone's group.
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    assert_eq!(groups.auto_scaling_groups().len(), 3);
    let instances: Vec<(String, String)> = groups
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .map(|i| {
            (
                i.availability_zone().unwrap_or_default().to_string(),
                i.instance_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(instances.len(), 6);
    let listed = nodes.list(&ListParams::default()).await.unwrap();
    for n in &listed.items {
        let p = provider(n);
        assert!(
            instances
                .iter()
                .any(|(az, id)| p == format!("aws:///{az}/{id}")),
            "{p} matches an instance"
        );
    }

    // Terminate one instance; the group replaces it (moto does so at once).
    let (zone, victim_id) = instances[0].clone();
    let victim = listed
        .items
        .iter()
        .find(|n| provider(n).ends_with(&victim_id))
        .unwrap()
        .name_any();
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(&victim_id)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    eventually(
        "terminated node removed and replacement Ready",
        Duration::from_secs(20),
        || async {
            let list = nodes.list(&ListParams::default()).await.ok()?;
            let gone = list.items.iter().all(|n| n.name_any() != victim);
            let in_zone_ready = list
                .items
                .iter()
                .filter(|n| {
                    n.labels().get("topology.kubernetes.io/zone") == Some(&zone)
                        && ready(n) == "True"
                })
                .count();
            let replacement = list.items.iter().any(|n| {
                provider(n).starts_with(&format!("aws:///{zone}/"))
                    && !instances.iter().any(|(_, id)| provider(n).ends_with(id))
            });
            (gone && replacement && in_zone_ready == 2).then_some(())
        },
    )
    .await;

    // A deny-all ACL on one zone's subnet partitions its nodes; restoring the default heals.
    let cut_zone = "us-east-1c";
    let subnet = link.resources.subnets[cut_zone].clone();
    let deny = ec2
        .create_network_acl()
        .vpc_id(&link.resources.vpc_id)
        .send()
        .await
        .unwrap();
    let deny_id = deny
        .network_acl()
        .and_then(|a| a.network_acl_id())
        .unwrap()
        .to_string();
    let default_acl = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(&link.resources.vpc_id)
                .build(),
        )
        .filters(Filter::builder().name("default").values("true").build())
        .send()
        .await
        .unwrap();
    let default_id = default_acl.network_acls()[0]
        .network_acl_id()
        .unwrap()
        .to_string();
    let assoc = association_of(&ec2, &subnet).await;
    ec2.replace_network_acl_association()
        .association_id(assoc)
        .network_acl_id(&deny_id)
        .send()
        .await
        .unwrap();
    let cut: Vec<String> = run.sandbox.nodes_in_zone(cut_zone);
    eventually(
        "partitioned zone Unknown",
        Duration::from_secs(15),
        || async {
            for n in &cut {
                if ready(&nodes.get(n).await.ok()?) != "Unknown" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    // The association id changed with the replace: look it up again, as a rollback must.
    let assoc = association_of(&ec2, &subnet).await;
    ec2.replace_network_acl_association()
        .association_id(assoc)
        .network_acl_id(&default_id)
        .send()
        .await
        .unwrap();
    eventually("zone healed", Duration::from_secs(15), || async {
        for n in &cut {
            if ready(&nodes.get(n).await.ok()?) != "True" {
                return None;
            }
        }
        Some(())
    })
    .await;
    link.stop().await;
    run.sandbox.shutdown().await;
}

/// `steadfast sandbox up --aws-endpoint` keeps mirroring the cloud for as long as it runs, not
/// only at start: a terminated instance's node leaves the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_up_keeps_its_cloud_link_while_it_runs() {
    let Some(moto) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["sandbox", "up", "--aws-endpoint", &moto.url, "--dir"])
        .arg(dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // The ready banner names the kubeconfig; it is printed once the nodes are Ready.
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("sandbox ready") {
                return;
            }
        }
        panic!("sandbox up ended before it was ready");
    })
    .await
    .expect("the sandbox is ready within 60s");
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.path().join("kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let nodes: Api<Node> = Api::all(kube::Client::try_from(config).unwrap());
    let victim = nodes.list(&ListParams::default()).await.unwrap().items[0].clone();
    let instance = provider(&victim).rsplit('/').next().unwrap().to_owned();
    let (_, asg) = clients(&moto.url);
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(&instance)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("moto terminates the instance");
    let name = victim.name_any();
    eventually(
        "the terminated instance's node leaves",
        Duration::from_secs(30),
        || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move {
                let list = nodes.list(&ListParams::default()).await.ok()?;
                list.items
                    .iter()
                    .all(|n| n.name_any() != name)
                    .then_some(())
            }
        },
    )
    .await;
    child.kill().await.unwrap();
}
