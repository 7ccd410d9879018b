//! The kubelet API's TLS: the serving certificate (files, or a self-signed one for the node's
//! IP and name) and the client-certificate verifier (the cluster's client CA; clients without
//! a certificate are let through to token authentication, as a kubelet does).

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::WebPkiClientVerifier,
};

use super::KubeletError;

/// The files a serving certificate is read from, as bytes, to notice a change (a renewed
/// certificate written by cert-manager or a kubelet-style rotation); `None` for a generated one.
pub(super) fn file_contents(cert: &ServingCert) -> Option<(Vec<u8>, Vec<u8>)> {
    match cert {
        ServingCert::Files { cert, key } => Some((
            std::fs::read(cert).unwrap_or_default(),
            std::fs::read(key).unwrap_or_default(),
        )),
        ServingCert::SelfSigned { .. } => None,
    }
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert {
    /// PEM files: a certificate chain and its private key.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated at start, valid for these IPs and DNS names.
    SelfSigned {
        /// IP addresses.
        ips: Vec<IpAddr>,
        /// DNS names.
        names: Vec<String>,
    },
}

/// A certificate chain and its key.
pub(super) type Keyed = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The serving certificate and key now: read from the files, or generated (once: the caller
/// keeps a generated one).
///
/// # Errors
/// [`KubeletError::Tls`] when a file cannot be read or parsed.
pub(super) fn load(cert: &ServingCert) -> Result<Keyed, KubeletError> {
    match cert {
        ServingCert::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|error| KubeletError::Tls {
                    what: format!("cannot read the certificate {}: {error}", cert.display()),
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|error| KubeletError::Tls {
                what: format!("cannot read the private key {}: {error}", key.display()),
            })?;
            Ok((chain, key))
        }
        ServingCert::SelfSigned { ips, names } => {
            let sans: Vec<String> = ips
                .iter()
                .map(ToString::to_string)
                .chain(names.iter().cloned())
                .collect();
            let generated =
                rcgen::generate_simple_self_signed(sans).map_err(|error| KubeletError::Tls {
                    what: format!("cannot generate a self-signed certificate: {error}"),
                })?;
            let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
            Ok((vec![generated.cert.der().clone()], key))
        }
    }
}

/// The server's TLS settings. With `client_ca` (PEM bytes), client certificates signed by it
/// are verified and others refused; without one, client certificates are not asked for.
///
/// # Errors
/// [`KubeletError::Tls`] when a file cannot be read or the CA / key is unusable.
pub fn server_config(
    cert: &ServingCert,
    client_ca: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, KubeletError> {
    server_config_of(load(cert)?, client_ca)
}

/// [`server_config`] of a certificate already loaded.
///
/// # Errors
/// [`KubeletError::Tls`] when the CA or the key is unusable.
pub(super) fn server_config_of(
    (chain, key): Keyed,
    client_ca: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, KubeletError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| KubeletError::Tls {
            what: error.to_string(),
        })?;
    let builder = match client_ca {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|error| KubeletError::Tls {
                    what: format!("the client CA is not PEM: {error}"),
                })?;
                roots.add(cert).map_err(|error| KubeletError::Tls {
                    what: format!("the client CA is unusable: {error}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|error| KubeletError::Tls {
                    what: format!("the client CA is unusable: {error}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| KubeletError::Tls {
            what: format!("the serving certificate and key do not fit: {error}"),
        })?;
    // HTTP/1.1 only: exec and attach are HTTP/1.1 upgrades.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_serves() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = ServingCert::SelfSigned {
            ips: vec!["127.0.0.1".parse().expect("ip")],
            names: vec!["vk-1".into()],
        };
        server_config(&cert, None).expect("config");
    }

    #[test]
    fn missing_files_are_named() {
        let cert = ServingCert::Files {
            cert: "/nonexistent/tls.crt".into(),
            key: "/nonexistent/tls.key".into(),
        };
        let error = server_config(&cert, None).expect_err("no files");
        assert!(
            error.to_string().contains("/nonexistent/tls.crt"),
            "{error}"
        );
    }
}
