//! Resolves a pod network fault's `to:` into the CIDRs and ports its rules match, when the
//! fault is planned, so the undo record names exactly what was put in place.
//!
//! - `pods`: each matching pod's IPv4 pod IPs (`/32`).
//! - `service`: its ClusterIP on each Service port, and each ready endpoint's IP on its endpoint
//!   port. A pod's packets to a Service still carry the ClusterIP when they leave its network
//!   namespace (kube-proxy translates them on the node), so both are needed.
//! - `zone`: the `spec.podCIDRs` of the zone's Ready nodes (the pods of that zone). Subnet CIDRs
//!   from AWS are not added: host-network and non-pod traffic of the zone is not covered.
//! - `cidrs`: as written.
//!
//! `ports` narrows every address above to those ports (the Service's own ports are replaced);
//! with nothing else, it matches any address on those ports.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::fault::FaultError;
use crate::fault::net_script::{Dest, Ipv4Cidr};
use crate::infra::kube::KubeClient;
use crate::spec::fault::DestinationSpec;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// `to:` that resolves to nothing: refusing is safer than a rule matching no traffic.
fn empty(what: &str) -> FaultError {
    FaultError::Refused(format!(
        "to.{what}: resolved to no address; check the selector, or remove it from `to:`"
    ))
}

fn api(e: crate::infra::kube::KubeError) -> FaultError {
    crate::fault::kube_context::api(e)
}

fn v4(ip: &str) -> Option<Ipv4Cidr> {
    ip.parse::<Ipv4Addr>().ok().map(Ipv4Cidr::host)
}

/// The destinations `spec` names now, sorted and without duplicates.
///
/// # Errors
/// API errors, and a part of `to:` that resolves to no address.
pub async fn resolve(kube: &KubeClient, spec: &DestinationSpec) -> Result<Vec<Dest>, FaultError> {
    let mut addrs: BTreeSet<Dest> = BTreeSet::new();
    if let Some(p) = &spec.pods {
        let before = addrs.len();
        for ns in &p.namespaces {
            let pods = kube
                .list_pods(Some(ns), p.selector.as_deref(), None)
                .await
                .map_err(api)?;
            for pod in pods {
                let st = pod.status.unwrap_or_default();
                let ips = st.pod_ips.unwrap_or_default();
                for ip in ips
                    .iter()
                    .map(|i| i.ip.as_str())
                    .chain(st.pod_ip.as_deref())
                {
                    if let Some(cidr) = v4(ip) {
                        addrs.insert(Dest {
                            cidr: Some(cidr),
                            port: None,
                        });
                    }
                }
            }
        }
        if addrs.len() == before {
            return Err(empty("pods"));
        }
    }
    if let Some(s) = &spec.service {
        let before = addrs.len();
        let svc = kube
            .list_services(&s.namespace)
            .await
            .map_err(api)?
            .into_iter()
            .find(|x| x.metadata.name.as_deref() == Some(s.name.as_str()))
            .ok_or_else(|| {
                FaultError::Refused(format!(
                    "to.service: no Service {}/{}; name an existing one",
                    s.namespace, s.name
                ))
            })?;
        let sspec = svc.spec.unwrap_or_default();
        let ports: Vec<u16> = sspec
            .ports
            .unwrap_or_default()
            .iter()
            .filter_map(|p| u16::try_from(p.port).ok())
            .collect();
        for ip in sspec
            .cluster_ips
            .unwrap_or_default()
            .iter()
            .chain(&sspec.cluster_ip)
        {
            if let Some(cidr) = v4(ip) {
                for p in &ports {
                    addrs.insert(Dest {
                        cidr: Some(cidr),
                        port: Some(*p),
                    });
                }
            }
        }
        for slice in kube
            .list_endpoint_slices(&s.namespace, &s.name)
            .await
            .map_err(api)?
        {
            let eports: Vec<u16> = slice
                .ports
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.port.and_then(|p| u16::try_from(p).ok()))
                .collect();
            for ep in slice.endpoints.into_iter().flatten() {
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                for ip in &ep.addresses {
                    if let Some(cidr) = v4(ip) {
                        for p in &eports {
                            addrs.insert(Dest {
                                cidr: Some(cidr),
                                port: Some(*p),
                            });
                        }
                    }
                }
            }
        }
        if addrs.len() == before {
            return Err(empty("service"));
        }
    }
    if let Some(zone) = &spec.zone {
        let before = addrs.len();
        let nodes = kube
            .list_nodes(Some(&format!("{ZONE_LABEL}={zone}")))
            .await
            .map_err(api)?;
        for node in nodes {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                continue;
            }
            let ns = node.spec.unwrap_or_default();
            for c in ns.pod_cidrs.unwrap_or_default().iter().chain(&ns.pod_cidr) {
                if let Ok(cidr) = c.parse::<Ipv4Cidr>() {
                    addrs.insert(Dest {
                        cidr: Some(cidr),
                        port: None,
                    });
                }
            }
        }
        if addrs.len() == before {
            return Err(FaultError::Refused(format!(
                "to.zone: no Ready node in zone `{zone}` has an IPv4 spec.podCIDR; use `to.cidrs` with the zone's pod ranges"
            )));
        }
    }
    for (i, c) in spec.cidrs.iter().enumerate() {
        let cidr = c
            .parse::<Ipv4Cidr>()
            .map_err(|e| FaultError::Refused(format!("to.cidrs[{i}]: {e}")))?;
        addrs.insert(Dest {
            cidr: Some(cidr),
            port: None,
        });
    }
    Ok(narrow(addrs, &spec.ports))
}

/// Applies `ports` to every address (or, with no address, matches them on any address).
fn narrow(addrs: BTreeSet<Dest>, ports: &[u16]) -> Vec<Dest> {
    if ports.is_empty() {
        return addrs.into_iter().collect();
    }
    if addrs.is_empty() {
        return ports
            .iter()
            .map(|p| Dest {
                cidr: None,
                port: Some(*p),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    }
    let cidrs: BTreeSet<_> = addrs.iter().filter_map(|d| d.cidr).collect();
    cidrs
        .into_iter()
        .flat_map(|c| {
            ports.iter().map(move |p| Dest {
                cidr: Some(c),
                port: Some(*p),
            })
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_narrow_every_address() {
        let a: BTreeSet<Dest> = ["10.0.0.1/32:80", "10.0.0.1/32:81", "10.1.0.0/16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = narrow(a.clone(), &[5432])
            .iter()
            .map(Dest::render)
            .collect();
        assert_eq!(got, ["10.0.0.1/32:5432", "10.1.0.0/16:5432"]);
        assert_eq!(narrow(a, &[]).len(), 3);
        let only: Vec<String> = narrow(BTreeSet::new(), &[53, 53, 443])
            .iter()
            .map(Dest::render)
            .collect();
        assert_eq!(only, [":53", ":443"]);
    }
}
