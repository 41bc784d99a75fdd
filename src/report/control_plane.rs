//! The control planes' behaviour during a run: API errors and retries per endpoint, gathered
//! by the adapters in `infra` and handed over as plain [`EndpointCalls`], so no SDK type
//! reaches the report.

use super::model::{ControlPlaneReport, EndpointCalls};

/// The report's section for `calls`; `None` when no endpoint saw an error or a retry.
pub fn control_plane(calls: &[EndpointCalls]) -> Option<ControlPlaneReport> {
    let mut endpoints: Vec<EndpointCalls> = calls
        .iter()
        .filter(|c| c.errors > 0 || c.retries > 0)
        .cloned()
        .collect();
    if endpoints.is_empty() {
        return None;
    }
    endpoints.sort();
    let errors = endpoints.iter().map(|e| e.errors).sum();
    let retries = endpoints.iter().map(|e| e.retries).sum();
    Some(ControlPlaneReport {
        misbehaved: errors > 0,
        errors,
        retries,
        endpoints,
    })
}

/// One line for the verdict's summary: the verdict was reached while the control plane
/// misbehaved, and how much.
pub fn verdict_note(report: &ControlPlaneReport) -> Option<String> {
    if !report.misbehaved {
        return None;
    }
    let apis: Vec<&str> = {
        let mut apis: Vec<&str> = report.endpoints.iter().map(|e| e.api.as_str()).collect();
        apis.dedup();
        apis
    };
    Some(format!(
        "reached while the control plane misbehaved ({} API error(s), {} retr{} on {})",
        report.errors,
        report.retries,
        if report.retries == 1 { "y" } else { "ies" },
        apis.join(" and ")
    ))
}

/// `api endpoint: N errors, M retries` per endpoint, for the text outputs.
pub fn endpoint_lines(report: &ControlPlaneReport) -> Vec<String> {
    report
        .endpoints
        .iter()
        .map(|e| {
            format!(
                "{} {}: {} error(s), {} retr{}",
                e.api,
                e.endpoint,
                e.errors,
                e.retries,
                if e.retries == 1 { "y" } else { "ies" }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::model::Api;

    fn calls(api: Api, endpoint: &str, errors: u64, retries: u64) -> EndpointCalls {
        EndpointCalls {
            api,
            endpoint: endpoint.into(),
            errors,
            retries,
        }
    }

    #[test]
    fn clean_calls_leave_no_section() {
        assert_eq!(control_plane(&[]), None);
        assert_eq!(
            control_plane(&[calls(Api::Aws, "ec2:DescribeInstances", 0, 0)]),
            None
        );
    }

    #[test]
    fn errors_and_retries_are_summed_and_the_verdict_says_so() {
        let report = control_plane(&[
            calls(Api::Kubernetes, "list pods", 3, 3),
            calls(Api::Aws, "ec2:CreateNetworkAcl", 1, 1),
            calls(Api::Aws, "ec2:DescribeSubnets", 0, 0),
        ])
        .expect("a section");
        assert!(report.misbehaved);
        assert_eq!((report.errors, report.retries), (4, 4));
        assert_eq!(report.endpoints.len(), 2, "clean endpoints are left out");
        assert_eq!(report.endpoints[0].api, Api::Aws, "sorted by API");
        let note = verdict_note(&report).unwrap();
        assert_eq!(
            note,
            "reached while the control plane misbehaved (4 API error(s), 4 retries on aws and kubernetes)"
        );
        assert_eq!(
            endpoint_lines(&report)[1],
            "kubernetes list pods: 3 error(s), 3 retries"
        );
    }
}
