//! TLS for probes: the system's roots by default, a private CA from a file, or — for test
//! clusters with self-signed certificates — no verification at all.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a probe verifies the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. The handshake is still encrypted, but anyone on the path can
    /// impersonate the server; meant for test clusters only.
    pub insecure_skip_verify: bool,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no PEM certificate.
    #[error(
        "cannot read CA certificates from {path}\nhint: the file must hold PEM `CERTIFICATE` blocks"
    )]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file had no certificate in it.
    #[error("no certificate found in CA file {path}")]
    EmptyCaFile {
        /// The configured path.
        path: PathBuf,
    },
    /// A certificate was not acceptable as a trust anchor.
    #[error("invalid CA certificate in {path}")]
    BadCertificate {
        /// The configured path.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The system trust store had no usable certificate.
    #[error("no usable system CA certificates\nhint: set a CA file or install ca-certificates")]
    NoSystemRoots,
    /// rustls refused the protocol versions of the provider.
    #[error("TLS setup failed")]
    Rustls(#[source] rustls::Error),
}

/// Builds the rustls client configuration for `options`, speaking HTTP/1.1 only.
///
/// # Errors
/// [`TlsError`] when a CA file is unreadable or empty, or no system root is usable.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?;
    let mut config = if options.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(root_store(options)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn root_store(options: &TlsOptions) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match &options.ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|source| TlsError::CaFile {
                    path: path.clone(),
                    source,
                })?;
            if certificates.is_empty() {
                return Err(TlsError::EmptyCaFile { path: path.clone() });
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|source| TlsError::BadCertificate {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots);
            }
        }
    }
    Ok(roots)
}

/// Skips certificate verification but still checks the handshake signatures, so the session is
/// at least bound to the key the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_config_builds_without_roots() {
        let options = TlsOptions {
            ca_file: None,
            insecure_skip_verify: true,
        };
        let config = client_config(&options).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_ca_file_is_reported_with_its_path() {
        let options = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            insecure_skip_verify: false,
        };
        let error = client_config(&options).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate\n").unwrap();
        let options = TlsOptions {
            ca_file: Some(file.path().to_path_buf()),
            insecure_skip_verify: false,
        };
        assert!(matches!(
            client_config(&options),
            Err(TlsError::EmptyCaFile { .. })
        ));
    }
}
