//! Reading an IAM policy document far enough to tell which actions it allows, so tests (and
//! operators, through `steadfast plan`) can check that a policy covers every call steadfast
//! makes.

use serde_json::Value;

/// The least-privilege policy shipped in `deploy/aws/iam-policy.json`.
pub const SHIPPED_POLICY: &str = include_str!("../../../deploy/aws/iam-policy.json");

/// Why a policy document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON.
    #[error("the policy is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not shaped like a policy.
    #[error("the policy has no Statement list")]
    NoStatements,
}

/// One `Allow` statement: its action patterns, resources and condition block (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct AllowStatement {
    /// Action patterns as written, e.g. `ec2:Describe*`.
    pub actions: Vec<String>,
    /// Resource patterns as written, e.g. `arn:aws:ec2:*:*:network-acl/*`.
    pub resources: Vec<String>,
    /// The statement's `Condition` object, `Null` when absent.
    pub condition: Value,
}

/// The `Allow` statements of a policy document.
///
/// # Errors
/// When the text is not a policy document.
pub fn allow_statements(policy: &str) -> Result<Vec<AllowStatement>, PolicyError> {
    let doc: Value = serde_json::from_str(policy)?;
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => return Err(PolicyError::NoStatements),
    };
    Ok(statements
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| AllowStatement {
            actions: strings(&s["Action"]),
            resources: strings(&s["Resource"]),
            condition: s["Condition"].clone(),
        })
        .collect())
}

/// A policy field that may be one string or a list of them.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether an IAM action pattern (`*` and `?` wildcards, case-insensitive) covers `action`.
pub fn pattern_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

/// The actions of `needed` that no `Allow` statement of `policy` covers.
///
/// # Errors
/// When the text is not a policy document.
pub fn missing_actions(policy: &str, needed: &[&str]) -> Result<Vec<String>, PolicyError> {
    let statements = allow_statements(policy)?;
    Ok(needed
        .iter()
        .filter(|action| {
            !statements
                .iter()
                .flat_map(|s| s.actions.iter())
                .any(|p| pattern_matches(p, action))
        })
        .map(|a| (*a).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::infra::aws::{ACTIONS, MANAGED_BY_KEY, MANAGED_BY_VALUE};

    /// `describe_auto_scaling_groups` → `DescribeAutoScalingGroups`.
    fn operation_name(method: &str) -> String {
        method
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    }

    /// The SDK operations an adapter's source calls through `self.client`.
    fn calls_in(source: &str, service: &str) -> BTreeSet<String> {
        let call = regex::Regex::new(r"\.client\s*\.\s*([a-z0-9_]+)\s*\(").unwrap();
        call.captures_iter(source)
            .map(|c| format!("{service}:{}", operation_name(&c[1])))
            .collect()
    }

    #[test]
    fn the_action_list_matches_the_calls_in_the_adapters() {
        let mut called = calls_in(include_str!("ec2.rs"), "ec2");
        called.extend(calls_in(include_str!("autoscaling.rs"), "autoscaling"));
        let listed: BTreeSet<String> = ACTIONS.iter().map(|a| (*a).to_owned()).collect();
        assert!(
            called.len() >= 10,
            "the scan finds the calls ({called:?}); has the adapters' field been renamed?"
        );
        assert_eq!(
            called, listed,
            "ACTIONS must list exactly the SDK operations the adapters call"
        );
        for other in [
            include_str!("config.rs"),
            include_str!("context.rs"),
            include_str!("mod.rs"),
        ] {
            assert!(
                !other.contains(".send()"),
                "SDK calls belong in ec2.rs and autoscaling.rs, where the scan sees them"
            );
        }
    }

    #[test]
    fn the_shipped_policy_allows_every_call_and_nothing_else_that_writes() {
        assert_eq!(
            missing_actions(SHIPPED_POLICY, ACTIONS).unwrap(),
            Vec::<String>::new()
        );
        let statements = allow_statements(SHIPPED_POLICY).unwrap();
        for pattern in statements.iter().flat_map(|s| s.actions.iter()) {
            let known =
                ACTIONS.iter().any(|a| pattern_matches(pattern, a)) || pattern == "ec2:CreateTags";
            assert!(
                known,
                "the policy grants {pattern}, which steadfast never calls"
            );
            assert!(
                !pattern.contains('*') || pattern.contains(":Describe"),
                "only read actions may be wildcards: {pattern}"
            );
        }
    }

    /// The one statement granting `action` on resources other than VPCs (creating an ACL also
    /// authorises against its VPC, which carries no request tag).
    fn statement_for<'a>(statements: &'a [AllowStatement], action: &str) -> &'a AllowStatement {
        let found: Vec<&AllowStatement> = statements
            .iter()
            .filter(|s| s.actions.iter().any(|p| pattern_matches(p, action)))
            .filter(|s| !s.resources.iter().all(|r| r.ends_with(":vpc/*")))
            .collect();
        assert_eq!(found.len(), 1, "exactly one statement grants {action}");
        found[0]
    }

    #[test]
    fn writes_are_scoped_by_tags() {
        let statements = allow_statements(SHIPPED_POLICY).unwrap();
        let create = statement_for(&statements, "ec2:CreateNetworkAcl");
        assert_eq!(
            create.condition["StringEquals"][format!("aws:RequestTag/{MANAGED_BY_KEY}")],
            MANAGED_BY_VALUE
        );
        assert_eq!(create.resources, vec!["arn:aws:ec2:*:*:network-acl/*"]);
        let tag = statement_for(&statements, "ec2:CreateTags");
        assert_eq!(
            tag.condition["StringEquals"]["ec2:CreateAction"],
            "CreateNetworkAcl"
        );
        assert_eq!(
            tag.condition["StringEquals"][format!("aws:RequestTag/{MANAGED_BY_KEY}")],
            MANAGED_BY_VALUE
        );
        let delete = statement_for(&statements, "ec2:DeleteNetworkAcl");
        assert_eq!(
            delete.condition["StringEquals"][format!("ec2:ResourceTag/{MANAGED_BY_KEY}")],
            MANAGED_BY_VALUE
        );
        for action in [
            "ec2:TerminateInstances",
            "ec2:StopInstances",
            "ec2:StartInstances",
        ] {
            let s = statement_for(&statements, action);
            assert_eq!(
                s.condition["StringEquals"]["ec2:ResourceTag/steadfast.dev/allowed"],
                "true"
            );
        }
        let asg = statement_for(
            &statements,
            "autoscaling:TerminateInstanceInAutoScalingGroup",
        );
        assert_eq!(
            asg.condition["StringEquals"]["autoscaling:ResourceTag/steadfast.dev/allowed"],
            "true"
        );
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(pattern_matches("ec2:Describe*", "ec2:DescribeSubnets"));
        assert!(pattern_matches("EC2:describe*", "ec2:DescribeSubnets"));
        assert!(!pattern_matches("ec2:Describe*", "ec2:DeleteNetworkAcl"));
        assert!(pattern_matches("*", "autoscaling:Anything"));
        assert!(!pattern_matches("ec2:StopInstances", "ec2:StartInstances"));
        assert_eq!(
            missing_actions(
                r#"{"Statement":{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}"#,
                &["ec2:DescribeInstances", "ec2:StopInstances"]
            )
            .unwrap(),
            vec!["ec2:StopInstances".to_owned()]
        );
    }
}
