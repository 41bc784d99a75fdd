//! A real Pushgateway for tests, on a free loopback port, killed on drop.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running `prometheus-pushgateway`.
pub struct Pushgateway {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `prometheus-pushgateway` (`$PUSHGATEWAY_BIN` or found like every tool) and waits
/// until it is ready; `None` after a loud message when it is missing (a failure under CI).
pub fn start(dir: &Path) -> Option<Pushgateway> {
    let binary = match std::env::var_os("PUSHGATEWAY_BIN") {
        Some(path) => super::tools::require(
            "prometheus-pushgateway (PUSHGATEWAY_BIN)",
            Some(PathBuf::from(path)).filter(|p| p.is_file()),
        )?,
        None => super::tools::require_tool("prometheus-pushgateway")?,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let log_path = dir.join("pushgateway.log");
    let log = std::fs::File::create(&log_path).expect("pushgateway log");
    let gateway = Pushgateway {
        child: std::process::Command::new(&binary)
            .arg(format!("--web.listen-address={address}"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("pushgateway starts"),
        address,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(&gateway.address, "/-/ready"), Ok((200, _))) {
        assert!(
            Instant::now() < deadline,
            "pushgateway not ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(gateway)
}

/// A bounded HTTP/1.0 GET on loopback: status and body.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let address: std::net::SocketAddr = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
