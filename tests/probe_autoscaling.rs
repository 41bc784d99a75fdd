//! The Auto Scaling probe against moto: a full group holds; an Unhealthy instance is a shortfall
//! named in the detail; a terminated instance is seen gone (moto replaces it at once, so the
//! group holds again with a new member).

mod support;

use std::sync::Arc;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as GroupTag};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use steadfast::probe::autoscaling::{AutoscalingCondition, GroupSource};
use steadfast::probe::set::Condition;
use steadfast::spec::probe::AutoscalingProbeSpec;
use support::moto::{Moto, REGION};

const AMI: &str = "ami-12c6146b";

async fn create_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    template: &str,
    subnet: &str,
    desired: i32,
    team: &str,
) {
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(template)
                .build(),
        )
        .min_size(0)
        .max_size(desired + 1)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet)
        .tags(
            GroupTag::builder()
                .key("team")
                .value(team)
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .expect("group created");
}

/// A VPC with one subnet in zone a and the launch template `workers`: what every group here
/// launches from. Returns the Auto Scaling client and the subnet id.
async fn workers_subnet(moto: &Moto) -> (aws_sdk_autoscaling::Client, String) {
    let config = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .availability_zone(format!("{REGION}a"))
        .send()
        .await
        .unwrap()
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_owned();
    ec2.create_launch_template()
        .launch_template_name("workers")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    (asg, subnet)
}

async fn members(asg: &aws_sdk_autoscaling::Client, group: &str) -> Vec<String> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("described");
    out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

fn spec(yaml: &str) -> AutoscalingProbeSpec {
    serde_yaml::from_str(yaml).expect("an autoscaling probe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_group_holds_and_a_shortfall_is_reported() {
    let Some(moto) = Moto::start() else { return };
    let (asg, subnet) = workers_subnet(&moto).await;
    create_group(&asg, "workers-a", "workers", &subnet, 3, "platform").await;
    create_group(&asg, "batch", "workers", &subnet, 1, "data").await;

    let clients = moto.clients().await;
    let source: Arc<dyn GroupSource> = Arc::new(clients.autoscaling.clone());
    let by_tag = AutoscalingCondition::new(source.clone(), spec("tags: {team: platform}"));
    let by_name = AutoscalingCondition::new(source.clone(), spec("groups: [workers-a, batch]"));

    let (held, value, detail) = by_tag.evaluate().await;
    assert!(held, "{detail}");
    assert_eq!(value, Some(3.0));
    assert_eq!(
        detail, "workers-a 3/3 InService",
        "the tag selects one group"
    );
    let (held, _, detail) = by_name.evaluate().await;
    assert!(held, "{detail}");
    assert_eq!(detail, "batch 1/1 InService; workers-a 3/3 InService");

    // An instance the group marks Unhealthy no longer counts.
    let before = members(&asg, "workers-a").await;
    let sick = before[0].clone();
    asg.set_instance_health()
        .instance_id(&sick)
        .health_status("Unhealthy")
        .send()
        .await
        .expect("health set");
    let (held, value, detail) = by_tag.evaluate().await;
    eprintln!("after SetInstanceHealth Unhealthy: {detail}");
    assert!(!held);
    assert_eq!(value, Some(2.0));
    assert_eq!(
        detail,
        format!("workers-a 2/3 InService (1 short: {sick} InService/Unhealthy)")
    );
    let (held, _, detail) = by_name.evaluate().await;
    assert!(!held, "{detail}");
    asg.set_instance_health()
        .instance_id(&sick)
        .health_status("Healthy")
        .send()
        .await
        .expect("health set");
    assert!(by_tag.evaluate().await.0);

    // moto replaces a terminated group member at once (real groups take minutes, and the unit
    // tests cover the Terminating and Pending members they show meanwhile): the probe must see
    // the victim gone and the group whole with its replacement.
    let victim = before[1].clone();
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("terminated");
    let after = members(&asg, "workers-a").await;
    assert!(!after.contains(&victim), "{after:?}");
    let (held, value, detail) = by_tag.evaluate().await;
    eprintln!("after TerminateInstanceInAutoScalingGroup: {detail}");
    assert!(held, "moto replaced {victim} at once: {detail}");
    assert_eq!(value, Some(3.0));

    // A named group that does not exist is a failure, not an empty success.
    let missing = AutoscalingCondition::new(source, spec("groups: [workers-a, gone]"));
    let (held, _, detail) = missing.evaluate().await;
    assert!(!held);
    assert!(detail.ends_with("not found: gone"), "{detail}");
}

/// A kubeconfig no request goes to: an autoscaling-only experiment never calls Kubernetes.
const IDLE_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: idle
  cluster: {server: 'http://127.0.0.1:9'}
contexts:
- name: idle
  context: {cluster: idle, user: idle}
current-context: idle
users:
- name: idle
  user: {}
";

const GROUPS_EXPERIMENT: &str = "apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: node-groups}
spec:
  duration: 1m
  aws: {region: us-east-1}
  steadyState:
    probes:
      - name: node-groups
        autoscaling:
          tags: {team: platform}
          every: 500ms
";

async fn probe_command(moto: &Moto, dir: &std::path::Path) -> std::process::Output {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, IDLE_KUBECONFIG).unwrap();
    let experiment = dir.join("groups.yaml");
    std::fs::write(&experiment, GROUPS_EXPERIMENT).unwrap();
    let mut command = support::sandbox::command(
        &[
            "probe",
            experiment.to_str().unwrap(),
            "--for",
            "2s",
            "-o",
            "json",
        ],
        &[("KUBECONFIG", kubeconfig.as_path())],
    );
    command
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE");
    tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("steadfast probe finished in time")
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_command_judges_groups_through_the_run_wiring() {
    let Some(moto) = Moto::start() else { return };
    let (asg, subnet) = workers_subnet(&moto).await;
    create_group(&asg, "workers-a", "workers", &subnet, 2, "platform").await;
    let dir = tempfile::tempdir().unwrap();

    let output = probe_command(&moto, dir.path()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let probe = &report["probes"][0];
    assert_eq!(probe["kind"], "autoscaling");
    assert!(probe["windows"]["probe"]["attempts"].as_u64().unwrap() >= 3);

    let sick = members(&asg, "workers-a").await[0].clone();
    asg.set_instance_health()
        .instance_id(&sick)
        .health_status("Unhealthy")
        .send()
        .await
        .expect("health set");
    let output = probe_command(&moto, dir.path()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let reason = report["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "workers-a 1/2 InService (1 short: {sick} InService/Unhealthy)"
        )),
        "{reason}"
    );
}
