//! A TCP balancer on loopback whose truth is known: it counts what it routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::loopback::AbortOnDrop;

/// A TCP balancer on loopback: each connection goes to the next backend of a smooth weighted
/// round robin (nginx's), and stays there. It counts what it routed: the true shares.
pub struct Balancer {
    pub addr: SocketAddr,
    routed: Arc<Vec<AtomicU64>>,
    _task: AbortOnDrop,
}

impl Balancer {
    /// Starts balancing over `backends` with `weights` (one each, in the same order).
    pub async fn start(backends: Vec<SocketAddr>, weights: Vec<i64>) -> Balancer {
        assert_eq!(backends.len(), weights.len());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routed: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let counts = routed.clone();
        let task = tokio::spawn(async move {
            let total: i64 = weights.iter().sum();
            let mut current = vec![0_i64; weights.len()];
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                for (c, w) in current.iter_mut().zip(&weights) {
                    *c += w;
                }
                let pick = (0..current.len()).max_by_key(|i| current[*i]).unwrap();
                current[pick] -= total;
                counts[pick].fetch_add(1, Ordering::SeqCst);
                let backend = backends[pick];
                connections.spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Balancer {
            addr,
            routed,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self) -> http::Uri {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    /// Connections routed to each backend so far.
    pub fn routed(&self) -> Vec<u64> {
        self.routed
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}
