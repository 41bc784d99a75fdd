//! A private moto server per test: started on a free loopback port, killed when dropped.
//!
//! The server is `<repo>/.venv/bin/moto_server` when present, else `moto_server` on `PATH`.
//! When neither exists the test says so loudly and returns, so machines without Python still
//! run the rest of the suite; under CI it fails instead (see `support::tools`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use steadfast::infra::aws::{AwsClients, AwsOptions, StaticCredentials};

/// The region every moto test uses.
pub const REGION: &str = "us-east-1";

/// How long a server may take to accept connections on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

fn find_binary() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Moto {
    /// Starts a server, or returns `None` (after saying so on stderr) when moto is not
    /// installed.
    ///
    /// # Panics
    /// When moto is installed but does not come up, or is missing and tools are required.
    pub fn start() -> Option<Moto> {
        let binary = super::tools::require("moto_server", find_binary())?;
        // The port is free when chosen but another process could take it before moto binds;
        // a few attempts make that race harmless.
        for _ in 0..3 {
            let port = free_port().expect("a free loopback port");
            let mut child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let started = Instant::now();
            while started.elapsed() < READY_TIMEOUT {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Some(Moto {
                        child,
                        endpoint: format!("http://{addr}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server at {} did not come up", binary.display());
    }

    /// Options pointing the SDK at this server with dummy credentials.
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            region: Some(REGION.into()),
            endpoint_url: Some(self.endpoint.clone()),
            credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
            }),
            ..AwsOptions::default()
        }
    }

    /// steadfast's clients for this server.
    pub async fn clients(&self) -> AwsClients {
        AwsClients::connect(&self.options())
            .await
            .expect("clients for moto")
    }

    /// A raw SDK configuration for this server, for tests that build topology.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .endpoint_url(self.endpoint.clone())
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The network ACL `subnet` is associated with, and that association's id (which changes at
/// every replacement).
pub async fn subnet_acl(ec2: &aws_sdk_ec2::Client, subnet: &str) -> (String, String) {
    let out = ec2
        .describe_network_acls()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("association.subnet-id")
                .values(subnet)
                .build(),
        )
        .send()
        .await
        .expect("moto answers");
    out.network_acls()
        .iter()
        .find_map(|acl| {
            let association = acl
                .associations()
                .iter()
                .find(|a| a.subnet_id() == Some(subnet))?;
            Some((
                acl.network_acl_id()?.to_owned(),
                association.network_acl_association_id()?.to_owned(),
            ))
        })
        .unwrap_or_else(|| panic!("{subnet} is associated with no network ACL"))
}

/// The ids of the network ACLs tagged as steadfast's, in `vpc` when given.
pub async fn steadfast_acls(ec2: &aws_sdk_ec2::Client, vpc: Option<&str>) -> Vec<String> {
    use aws_sdk_ec2::types::Filter;
    use steadfast::infra::aws::{MANAGED_BY_KEY, MANAGED_BY_VALUE};

    let mut request = ec2.describe_network_acls().filters(
        Filter::builder()
            .name(format!("tag:{MANAGED_BY_KEY}"))
            .values(MANAGED_BY_VALUE)
            .build(),
    );
    if let Some(vpc) = vpc {
        request = request.filters(Filter::builder().name("vpc-id").values(vpc).build());
    }
    let out = request.send().await.expect("moto answers");
    out.network_acls()
        .iter()
        .filter_map(|a| a.network_acl_id().map(str::to_owned))
        .collect()
}
