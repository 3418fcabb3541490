//! PEM and X.509 inspection: what a certificate is, whether its key matches, which
//! hosts it covers. Pure functions on bytes; no I/O.

use pkcs1::der::Decode;
use sha2::{Digest, Sha256};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// Why a PEM document could not be used. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM CERTIFICATE block found; provide the certificate chain in PEM form")]
    NoCertificate,
    #[error("certificate {index} of the chain does not parse as X.509: {reason}")]
    InvalidCertificate { index: usize, reason: String },
    #[error("no PEM private key block found; provide an unencrypted PKCS#1, SEC1 or PKCS#8 key")]
    NoPrivateKey,
    #[error("the private key is encrypted; provide it unencrypted (EdgeOne needs the plain key)")]
    EncryptedPrivateKey,
    #[error("the private key does not parse: {0}")]
    InvalidPrivateKey(String),
    #[error("the private key does not contain its public part; re-encode it (e.g. `openssl pkey`)")]
    PrivateKeyWithoutPublicKey,
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
}

/// The public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `EC`, `DSA`, or the algorithm OID for anything else.
    pub algorithm: String,
    pub bits: usize,
}

/// What one certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Lower-case hex SHA-256 of the DER encoding.
    pub fingerprint_sha256: String,
    pub subject_common_name: Option<String>,
    /// DNS names of the subject alternative names, in certificate order.
    pub dns_names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `basicConstraints CA:TRUE`.
    pub is_ca: bool,
    pub key: KeyInfo,
    /// e.g. `RSA 2048`, `ECC 256`, the way EdgeOne shows `SignAlgo`.
    pub sign_algo: String,
    der: Vec<u8>,
}

impl CertificateInfo {
    /// Host names the certificate speaks for: the SAN DNS names, or the common name
    /// when there are none (as TLS clients no longer accept, but EdgeOne still shows).
    pub fn names(&self) -> Vec<String> {
        if self.dns_names.is_empty() {
            self.subject_common_name.iter().cloned().collect()
        } else {
            self.dns_names.clone()
        }
    }

    /// True when every name in `hosts` is covered by one of the certificate's names.
    pub fn covers(&self, host: &str) -> bool {
        self.names().iter().any(|name| name_covers(name, host))
    }

    pub fn is_valid_at(&self, unix_seconds: i64) -> bool {
        self.not_before <= unix_seconds && unix_seconds <= self.not_after
    }
}

/// Parses every CERTIFICATE block of a PEM document, leaf first.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateInfo>, CertError> {
    let chain: Vec<CertificateInfo> = pem_blocks(pem)
        .filter(|block| block.label == "CERTIFICATE")
        .enumerate()
        .map(|(index, block)| parse_der(&block.contents, index))
        .collect::<Result<_, _>>()?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(chain)
}

/// Checks that the first private key in `key_pem` belongs to `leaf`.
pub fn check_private_key(leaf: &CertificateInfo, key_pem: &[u8]) -> Result<(), CertError> {
    let key_public = private_key_public_part(key_pem)?;
    let (_, cert) =
        X509Certificate::from_der(&leaf.der).map_err(|e| CertError::InvalidCertificate {
            index: 0,
            reason: e.to_string(),
        })?;
    let matches = match (&key_public, cert.public_key().parsed()) {
        (PublicPart::Rsa { modulus, exponent }, Ok(PublicKey::RSA(rsa))) => {
            strip_zeros(rsa.modulus) == strip_zeros(modulus)
                && strip_zeros(rsa.exponent) == strip_zeros(exponent)
        }
        (PublicPart::Ec(point), Ok(PublicKey::EC(ec))) => ec.data() == point.as_slice(),
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(CertError::KeyMismatch)
    }
}

/// Whether a certificate name covers a host. A wildcard covers exactly one label
/// (`*.example.com` covers `a.example.com` and the host `*.example.com`, not
/// `example.com` or `a.b.example.com`). Comparison ignores case and a trailing dot.
pub fn name_covers(cert_name: &str, host: &str) -> bool {
    let cert_name = cert_name.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if cert_name == host {
        return true;
    }
    match (cert_name.strip_prefix("*."), host.split_once('.')) {
        (Some(cert_parent), Some((label, host_parent))) => {
            !label.is_empty() && label != "*" && cert_parent == host_parent
        }
        _ => false,
    }
}

fn pem_blocks(pem: &[u8]) -> impl Iterator<Item = Pem> + '_ {
    // A block that fails to decode ends the iteration; what was read before it is kept,
    // and a missing certificate or key is then reported by the caller.
    Pem::iter_from_buffer(pem).map_while(Result::ok)
}

fn parse_der(der: &[u8], index: usize) -> Result<CertificateInfo, CertError> {
    let invalid = |reason: String| CertError::InvalidCertificate { index, reason };
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| invalid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the certificate".into()));
    }
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(invalid(format!("subject alternative names: {e}"))),
    };
    let subject_common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let key = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyInfo {
            algorithm: "RSA".into(),
            bits: rsa.key_size(),
        },
        Ok(PublicKey::EC(ec)) => KeyInfo {
            algorithm: "EC".into(),
            bits: ec.key_size(),
        },
        Ok(PublicKey::DSA(y)) => KeyInfo {
            algorithm: "DSA".into(),
            bits: strip_zeros(y).len() * 8,
        },
        _ => KeyInfo {
            algorithm: cert.public_key().algorithm.algorithm.to_id_string(),
            bits: cert.public_key().subject_public_key.data.len() * 8,
        },
    };
    let sign_algo = match key.algorithm.as_str() {
        "EC" => format!("ECC {}", key.bits),
        other => format!("{other} {}", key.bits),
    };
    Ok(CertificateInfo {
        fingerprint_sha256: hex::encode(Sha256::digest(der)),
        subject_common_name,
        dns_names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        key,
        sign_algo,
        der: der.to_vec(),
    })
}

enum PublicPart {
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    Ec(Vec<u8>),
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

fn private_key_public_part(key_pem: &[u8]) -> Result<PublicPart, CertError> {
    let invalid = |e: &dyn std::fmt::Display| CertError::InvalidPrivateKey(e.to_string());
    for block in pem_blocks(key_pem) {
        match block.label.as_str() {
            "RSA PRIVATE KEY" => return rsa_public_part(&block.contents),
            "EC PRIVATE KEY" => return ec_public_part(&block.contents, None),
            "PRIVATE KEY" => {
                let info =
                    pkcs8::PrivateKeyInfoRef::from_der(&block.contents).map_err(|e| invalid(&e))?;
                let oid = info.algorithm.oid.to_string();
                let inner = info.private_key.as_bytes();
                return match oid.as_str() {
                    OID_RSA => rsa_public_part(inner),
                    OID_EC => {
                        let outer = info
                            .public_key
                            .and_then(|bits| bits.as_bytes())
                            .map(<[u8]>::to_vec);
                        ec_public_part(inner, outer)
                    }
                    other => Err(CertError::InvalidPrivateKey(format!(
                        "unsupported key algorithm {other}; EdgeOne takes RSA or ECC keys"
                    ))),
                };
            }
            "ENCRYPTED PRIVATE KEY" => return Err(CertError::EncryptedPrivateKey),
            _ => {}
        }
    }
    if String::from_utf8_lossy(key_pem).contains("ENCRYPTED") {
        // Traditional OpenSSL encryption: `Proc-Type: 4,ENCRYPTED` inside an RSA/EC block.
        return Err(CertError::EncryptedPrivateKey);
    }
    Err(CertError::NoPrivateKey)
}

fn rsa_public_part(der: &[u8]) -> Result<PublicPart, CertError> {
    let key = pkcs1::RsaPrivateKeyRef::from_der(der)
        .map_err(|e| CertError::InvalidPrivateKey(e.to_string()))?;
    Ok(PublicPart::Rsa {
        modulus: key.modulus.as_bytes().to_vec(),
        exponent: key.public_exponent.as_bytes().to_vec(),
    })
}

fn ec_public_part(der: &[u8], outer_public: Option<Vec<u8>>) -> Result<PublicPart, CertError> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| CertError::InvalidPrivateKey(e.to_string()))?;
    key.public_key
        .map(<[u8]>::to_vec)
        .or(outer_public)
        .map(PublicPart::Ec)
        .ok_or(CertError::PrivateKeyWithoutPublicKey)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};

    fn self_signed(names: &[&str], ca: bool) -> (String, KeyPair) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        (params.self_signed(&key).unwrap().pem(), key)
    }

    #[test]
    fn parses_names_fingerprint_and_key() {
        let (pem, _) = self_signed(&["a.example.com", "*.example.org"], false);
        let chain = parse_chain(pem.as_bytes()).unwrap();
        assert_eq!(chain.len(), 1);
        let leaf = &chain[0];
        assert_eq!(leaf.dns_names, ["a.example.com", "*.example.org"]);
        assert_eq!(leaf.fingerprint_sha256.len(), 64);
        assert_eq!(
            leaf.key,
            KeyInfo {
                algorithm: "EC".into(),
                bits: 256
            }
        );
        assert_eq!(leaf.sign_algo, "ECC 256");
        assert!(!leaf.is_ca);
        assert!(leaf.covers("x.example.org") && leaf.covers("a.example.com"));
        assert!(!leaf.covers("example.org"));
    }

    #[test]
    fn detects_ca_certificates() {
        let (pem, _) = self_signed(&["ca.example.com"], true);
        assert!(parse_chain(pem.as_bytes()).unwrap()[0].is_ca);
    }

    #[test]
    fn key_match_and_mismatch() {
        let (pem, key) = self_signed(&["a.example.com"], false);
        let (_, other_key) = self_signed(&["a.example.com"], false);
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        assert_eq!(
            check_private_key(leaf, key.serialize_pem().as_bytes()),
            Ok(())
        );
        assert_eq!(
            check_private_key(leaf, other_key.serialize_pem().as_bytes()),
            Err(CertError::KeyMismatch)
        );
    }

    #[test]
    fn unusable_input_is_named() {
        assert_eq!(parse_chain(b"garbage"), Err(CertError::NoCertificate));
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_chain(bad.as_bytes()),
            Err(CertError::InvalidCertificate { index: 0, .. })
        ));
        let (pem, _) = self_signed(&["a.example.com"], false);
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        assert_eq!(
            check_private_key(leaf, b"nothing"),
            Err(CertError::NoPrivateKey)
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(
            check_private_key(leaf, encrypted.as_bytes()),
            Err(CertError::EncryptedPrivateKey)
        );
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(name_covers("*.example.com", "a.example.com"));
        assert!(name_covers("*.example.com", "*.example.com"));
        assert!(name_covers("A.Example.com.", "a.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(!name_covers("a.example.com", "*.example.com"));
        assert!(!name_covers("*.example.com", ".example.com"));
    }
}
