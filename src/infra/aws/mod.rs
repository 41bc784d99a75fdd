//! AWS: the EC2 and Auto Scaling calls the faults and the zone model make, behind two small
//! adapters ([`Ec2`], [`AutoScaling`]) that speak the crate's own types, so no SDK type leaves
//! this module.
//!
//! Every call the adapters make is listed in [`ACTIONS`]; a test checks the list against the
//! source (so it cannot drift) and against `deploy/aws/iam-policy.json` (so the shipped policy
//! grants everything steadfast does and nothing it does not need).
//!
//! The policy's scoping choices:
//! - network ACLs: steadfast may create an ACL only when the request tags it
//!   `managed-by=steadfast` (`aws:RequestTag`; the VPC side of the same call is unconditioned,
//!   as in AWS FIS's own managed policy), may tag only while creating (`ec2:CreateAction`), and
//!   may delete only ACLs that carry the tag (`ec2:ResourceTag`) — so it can never delete a
//!   VPC's own ACLs. Re-associating subnets needs `ec2:ReplaceNetworkAclAssociation` on the
//!   original (untagged) ACLs too, so that action is not tag-scoped.
//! - instances: terminate, stop and start only instances tagged `steadfast.dev/allowed=true`;
//!   Auto Scaling terminations only in groups tagged the same way. Operators opt a node group
//!   in by tagging the group with `PropagateAtLaunch`, which reaches its instances as well. A
//!   per-cluster tag (`kubernetes.io/cluster/<name>`) would need a per-cluster policy; the
//!   explicit opt-in tag works for every cluster and keeps a mistyped target harmless.

pub mod autoscaling;
pub mod calls;
pub mod config;
pub mod context;
pub mod ec2;
pub mod error;
pub mod policy;
pub mod s3;

pub use autoscaling::AutoScaling;
pub use calls::AwsCallCounts;
pub use config::{AwsClients, AwsOptions, StaticCredentials};
pub use context::AwsContext;
pub use ec2::{AclAssociation, AclFilter, Ec2, NetworkAcl};
pub use error::AwsError;
pub use s3::S3Store;

/// Tag key every network ACL steadfast creates carries, with value [`MANAGED_BY_VALUE`].
pub const MANAGED_BY_KEY: &str = "managed-by";
/// Value of [`MANAGED_BY_KEY`] on steadfast's resources.
pub const MANAGED_BY_VALUE: &str = "steadfast";
/// Tag key holding the run that created an ACL.
pub const RUN_ID_TAG: &str = "steadfast/run-id";
/// Prefix of the tags `steadfast/original/<subnet-id>=<acl-id>` that let the cloud itself say
/// how to heal a partition when the journal is lost.
pub const ORIGINAL_ACL_TAG_PREFIX: &str = "steadfast/original/";

/// Every IAM action the adapters call, `service:Operation`. Kept in sync with the source and
/// with the shipped policy by tests in [`policy`].
pub const ACTIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeSubnets",
    "ec2:DescribeNetworkAcls",
    "ec2:CreateNetworkAcl",
    "ec2:ReplaceNetworkAclAssociation",
    "ec2:DeleteNetworkAcl",
    "ec2:TerminateInstances",
    "ec2:StopInstances",
    "ec2:StartInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
];
