//! How a probe request reaches its target.
//!
//! The probe owns the schedule, the timeout and the expectations; a transport only carries one
//! request and brings back one response. [`DirectTransport`](super::direct::DirectTransport)
//! connects straight to the URL; a transport through the Kubernetes API server's service proxy
//! (for Services that are not reachable from where steadfast runs) plugs in behind the same
//! trait.

use std::error::Error as StdError;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::measure::FailureKind;

/// A boxed error from a transport's underlying client.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The request a probe sends on every attempt; cheap to share between attempts.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL (`http` or `https`).
    pub uri: Uri,
    /// Extra request headers; `host` is derived from the URL unless set here.
    pub headers: HeaderMap,
    /// Request body, empty for none.
    pub body: Bytes,
}

/// What came back, with the body read to its end (or to the transport's size limit).
#[derive(Debug, Clone)]
pub struct ProbeResponse {
    /// Response status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, or its first part when [`truncated`](Self::truncated).
    pub body: Bytes,
    /// True when the body was longer than the limit; the rest was read and discarded so the
    /// latency still covers the whole response.
    pub truncated: bool,
}

/// Carries one probe request.
///
/// Implementations must be cheap to call concurrently: the probe runs many attempts at once.
/// They need not enforce the overall timeout (the probe does), but every connection attempt they
/// make must be bounded.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and reads the whole response.
    fn send<'a>(
        &'a self,
        request: &'a ProbeRequest,
    ) -> BoxFuture<'a, Result<ProbeResponse, TransportError>>;
}

/// Why a request got no complete response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection: refused, unreachable, DNS, TLS handshake, or reset before any response.
    #[error("cannot connect to {authority}")]
    Connect {
        /// `host:port` that was dialled.
        authority: String,
        /// What the connector said.
        #[source]
        source: BoxError,
    },
    /// The connection could not be made within the connect timeout.
    #[error("connecting to {authority} timed out")]
    ConnectTimeout {
        /// `host:port` that was dialled.
        authority: String,
    },
    /// The connection broke mid-response, or the peer spoke bad HTTP.
    #[error("HTTP exchange failed")]
    Protocol(#[source] BoxError),
    /// The request cannot be sent at all (bad URL scheme, missing host); a configuration error.
    #[error("invalid probe request: {0}")]
    InvalidRequest(String),
}

/// Reads `body` to its end, keeping at most `limit` bytes.
///
/// The rest is read and discarded rather than left unread, so a probe's latency covers the whole
/// response whatever the transport.
///
/// # Errors
/// [`TransportError::Protocol`] when the body breaks off.
pub async fn read_limited<B>(mut body: B, limit: usize) -> Result<(Bytes, bool), TransportError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;

    let mut kept = bytes::BytesMut::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| TransportError::Protocol(error.into()))?;
        if let Ok(data) = frame.into_data() {
            let room = limit.saturating_sub(kept.len());
            if data.len() > room {
                truncated = true;
            }
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((kept.freeze(), truncated))
}

impl TransportError {
    /// The failure this error counts as in a [`Sample`](crate::measure::Sample).
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            TransportError::Connect { .. } => FailureKind::Connect,
            TransportError::ConnectTimeout { .. } => FailureKind::Timeout,
            TransportError::Protocol(_) | TransportError::InvalidRequest(_) => {
                FailureKind::Protocol
            }
        }
    }
}
