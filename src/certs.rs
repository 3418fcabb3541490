//! PEM and X.509 inspection: what a certificate is, whether its key matches, which
//! hosts it covers. Pure functions on bytes; no I/O.
//!
//! The input comes from Secrets anyone with write access to a namespace can fill, so
//! every function here takes arbitrary bytes: it answers with a [`CertError`] that says
//! what to fix, never panics, and does bounded work (see [`MAX_PEM_BYTES`] and
//! [`MAX_CHAIN_CERTIFICATES`]).

use pkcs1::der::Decode;
use sha2::{Digest, Sha256};
use x509_parser::error::PEMError;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The most PEM text taken for a certificate chain or for a private key. A leaf with
/// its intermediates is 2–10 KiB, even with 4096-bit RSA keys and the text dumps
/// `openssl x509 -text` puts in front of each block; a quarter of the 1 MiB a Secret
/// can hold leaves room for odd exports while bounding the parsing work and what is
/// sent to Tencent Cloud (which documents no limit of its own for UploadCertificate,
/// only 10 MB per API request).
pub const MAX_PEM_BYTES: usize = 256 * 1024;

/// The most certificates in a chain. Real chains are a leaf, one to three
/// intermediates and sometimes the root; more is a concatenation mistake (a whole CA
/// bundle, the same certificate appended on every renewal) that no TLS client builds
/// a path through.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;

/// Why a PEM document could not be used. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error(
        "the {what} is {bytes} bytes, more than the limit of {limit} bytes; a certificate chain or a private key is a few KiB, so remove whatever else was put in it",
        limit = MAX_PEM_BYTES
    )]
    TooLarge { what: &'static str, bytes: usize },
    #[error(
        "the {what} is not well-formed PEM: block {block} {reason}; it looks truncated or corrupted, export it again"
    )]
    MalformedPem {
        what: &'static str,
        /// 1-based position of the block in the text.
        block: usize,
        reason: &'static str,
    },
    #[error("no PEM CERTIFICATE block found; provide the certificate chain in PEM form")]
    NoCertificate,
    #[error(
        "the chain has {count} certificates, more than the limit of {limit}; keep the leaf followed by its intermediates",
        limit = MAX_CHAIN_CERTIFICATES
    )]
    TooManyCertificates { count: usize },
    #[error("{} does not parse as X.509: {reason}", which(*.index))]
    InvalidCertificate { index: usize, reason: String },
    #[error(
        "{} has a key of type {algorithm}; EdgeOne accepts only RSA and ECC (ECDSA) keys, so issue it with one of those (cert-manager: spec.privateKey.algorithm RSA or ECDSA)",
        which(*.index)
    )]
    UnsupportedKeyAlgorithm { index: usize, algorithm: String },
    #[error("no PEM private key block found; provide an unencrypted PKCS#1, SEC1 or PKCS#8 key")]
    NoPrivateKey,
    #[error(
        "the private key is encrypted; provide it unencrypted (e.g. `openssl pkey -in key.pem`), EdgeOne needs the plain key"
    )]
    EncryptedPrivateKey,
    #[error(
        "the private key is a PEM {0} block; provide an unencrypted PKCS#1 (RSA PRIVATE KEY), SEC1 (EC PRIVATE KEY) or PKCS#8 (PRIVATE KEY) key"
    )]
    UnsupportedKeyFormat(String),
    #[error(
        "the private key is of type {0}; EdgeOne accepts only RSA and ECC (ECDSA) keys, so issue the certificate with one of those"
    )]
    UnsupportedPrivateKeyAlgorithm(String),
    #[error("the private key does not parse: {0}")]
    InvalidPrivateKey(String),
    #[error("the private key does not contain its public part; re-encode it (e.g. `openssl pkey`)")]
    PrivateKeyWithoutPublicKey,
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
}

/// How a message names the certificate at `index` of a chain.
fn which(index: usize) -> String {
    if index == 0 {
        "the leaf certificate (the first in the chain)".into()
    } else {
        format!("certificate {} of the chain", index + 1)
    }
}

/// The public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `EC` or `DSA`; [`parse_chain`] refuses any other.
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

/// Parses every CERTIFICATE block of a PEM document, leaf first. Text around the
/// blocks and blocks of other kinds are skipped. Refused: more than [`MAX_PEM_BYTES`]
/// of text, a block that is not well-formed PEM (a truncated or corrupted chain must
/// not be sent on), more than [`MAX_CHAIN_CERTIFICATES`] certificates, and a
/// certificate with a key EdgeOne does not take.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateInfo>, CertError> {
    const WHAT: &str = "certificate chain";
    check_size(WHAT, pem)?;
    let blocks = pem_blocks(WHAT, pem)?;
    let ders: Vec<&[u8]> = blocks
        .iter()
        .filter(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents.as_slice())
        .collect();
    if ders.is_empty() {
        return Err(CertError::NoCertificate);
    }
    if ders.len() > MAX_CHAIN_CERTIFICATES {
        return Err(CertError::TooManyCertificates { count: ders.len() });
    }
    ders.iter()
        .enumerate()
        .map(|(index, der)| parse_der(der, index))
        .collect()
}

/// Checks that the first private key in `key_pem` belongs to `leaf`. Only the public
/// halves are compared: a key whose private part is corrupt but whose public part is
/// intact passes here (and is refused by Tencent Cloud).
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

fn check_size(what: &'static str, pem: &[u8]) -> Result<(), CertError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(CertError::TooLarge {
            what,
            bytes: pem.len(),
        });
    }
    Ok(())
}

/// Every PEM block of the text, or the first one that is not well-formed.
fn pem_blocks(what: &'static str, pem: &[u8]) -> Result<Vec<Pem>, CertError> {
    Pem::iter_from_buffer(pem)
        .enumerate()
        .map(|(index, block)| {
            block.map_err(|e| CertError::MalformedPem {
                what,
                block: index + 1,
                reason: match e {
                    PEMError::Base64DecodeError => "has a body that is not plain base64",
                    PEMError::IncompletePEM => "has no END line",
                    PEMError::InvalidHeader => "has a malformed BEGIN line",
                    PEMError::MissingHeader => "has no BEGIN line",
                    PEMError::IOError(_) => "is not UTF-8 text",
                },
            })
        })
        .collect()
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
            bits: bit_length(rsa.modulus),
        },
        Ok(PublicKey::EC(ec)) => KeyInfo {
            algorithm: "EC".into(),
            bits: ec.key_size(),
        },
        Ok(PublicKey::DSA(y)) => KeyInfo {
            algorithm: "DSA".into(),
            bits: strip_zeros(y).len() * 8,
        },
        Ok(_) => {
            return Err(CertError::UnsupportedKeyAlgorithm {
                index,
                algorithm: algorithm_name(&cert.public_key().algorithm.algorithm.to_id_string()),
            });
        }
        Err(e) => return Err(invalid(format!("subject public key: {e}"))),
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

/// A key algorithm's usual name, for messages; the OID when it has none here.
fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.3.101.111" => "X448".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        gost if gost.starts_with("1.2.643.") => format!("GOST R 34.10 ({gost})"),
        other => format!("algorithm OID {other}"),
    }
}

fn private_key_public_part(key_pem: &[u8]) -> Result<PublicPart, CertError> {
    const WHAT: &str = "private key";
    check_size(WHAT, key_pem)?;
    // Traditional OpenSSL encryption puts `Proc-Type: 4,ENCRYPTED` and `DEK-Info`
    // headers inside an RSA or EC block, which then is no longer plain base64.
    let legacy_encrypted = String::from_utf8_lossy(key_pem)
        .lines()
        .any(|line| line.trim_start().starts_with("Proc-Type:") && line.contains("ENCRYPTED"));
    if legacy_encrypted {
        return Err(CertError::EncryptedPrivateKey);
    }
    let invalid = |e: &dyn std::fmt::Display| CertError::InvalidPrivateKey(e.to_string());
    for block in pem_blocks(WHAT, key_pem)? {
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
                    other => Err(CertError::UnsupportedPrivateKeyAlgorithm(algorithm_name(
                        other,
                    ))),
                };
            }
            "ENCRYPTED PRIVATE KEY" => return Err(CertError::EncryptedPrivateKey),
            // OPENSSH PRIVATE KEY, DSA PRIVATE KEY, ...
            other if other.ends_with("PRIVATE KEY") => {
                return Err(CertError::UnsupportedKeyFormat(other.to_owned()));
            }
            _ => {}
        }
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

/// The number of significant bits of a big-endian unsigned integer. (x509-parser's
/// `RSAPublicKey::key_size` counts whole bytes and gives 0 for a modulus without the
/// DER sign byte.)
fn bit_length(unsigned: &[u8]) -> usize {
    match strip_zeros(unsigned) {
        [] => 0,
        [first, rest @ ..] => rest.len() * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
        PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, SignatureAlgorithm,
    };

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

    /// The error `parse_chain` gives, with its message.
    fn chain_error(pem: &[u8]) -> (CertError, String) {
        let error = parse_chain(pem).expect_err("the chain should be refused");
        let message = error.to_string();
        (error, message)
    }

    /// An RSA public key of `modulus` (big-endian, unsigned) and exponent 65537, for
    /// certificates with RSA keys ring cannot make (it signs with 2048 bits or more).
    struct RsaPublicKey(Vec<u8>);

    impl RsaPublicKey {
        fn new(modulus: &[u8]) -> Self {
            let mut integer = modulus.to_vec();
            if integer[0] & 0x80 != 0 {
                integer.insert(0, 0);
            }
            let mut body = vec![0x02, 0x81, integer.len() as u8];
            body.extend(&integer);
            body.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
            let mut der = vec![0x30, 0x81, body.len() as u8];
            der.extend(body);
            RsaPublicKey(der)
        }
    }

    impl PublicKeyData for RsaPublicKey {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }
        fn algorithm(&self) -> &'static SignatureAlgorithm {
            &PKCS_RSA_SHA256
        }
    }

    /// A certificate for `a.example.com` with `public_key`, signed by a P-256 CA.
    fn certificate_with_key(public_key: &impl PublicKeyData) -> String {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = Issuer::new(ca_params, ca_key);
        CertificateParams::new(vec!["a.example.com".to_string()])
            .unwrap()
            .signed_by(public_key, &issuer)
            .unwrap()
            .pem()
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
        let (error, message) = chain_error(bad.as_bytes());
        assert!(
            matches!(error, CertError::InvalidCertificate { index: 0, .. }),
            "{error:?}"
        );
        assert!(message.starts_with("the leaf certificate"), "{message}");
        let (pem, _) = self_signed(&["a.example.com"], false);
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        assert_eq!(
            check_private_key(leaf, b"nothing"),
            Err(CertError::NoPrivateKey)
        );
    }

    #[test]
    fn garbage_bytes_are_no_certificate_and_no_key() {
        // Deterministic noise (an LCG), with bytes of every value.
        let mut state = 0x2545_f491_u32;
        let noise: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let (error, message) = chain_error(&noise);
        assert_eq!(error, CertError::NoCertificate);
        assert!(message.contains("PEM"), "{message}");
        let (pem, _) = self_signed(&["a.example.com"], false);
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        assert_eq!(
            check_private_key(leaf, &noise),
            Err(CertError::NoPrivateKey)
        );
        // Noise inside the armour is not base64.
        let armoured = [
            b"-----BEGIN CERTIFICATE-----\n".as_slice(),
            &noise[..300],
            b"\n-----END CERTIFICATE-----\n",
        ]
        .concat();
        let (error, message) = chain_error(&armoured);
        assert!(
            matches!(error, CertError::MalformedPem { block: 1, .. }),
            "{error:?}"
        );
        assert!(message.contains("not well-formed PEM"), "{message}");
    }

    #[test]
    fn truncated_chains_are_refused_not_shortened() {
        let (leaf, _) = self_signed(&["a.example.com"], false);
        let (ca, _) = self_signed(&["ca.example.com"], true);
        // The leaf cut in half.
        let (error, message) = chain_error(&leaf.as_bytes()[..leaf.len() / 2]);
        assert_eq!(
            error,
            CertError::MalformedPem {
                what: "certificate chain",
                block: 1,
                reason: "has no END line"
            }
        );
        assert!(
            message.contains("truncated") && message.contains("export it again"),
            "{message}"
        );
        // A whole leaf followed by half of its issuer: refused, rather than the leaf
        // alone passing and the broken text being sent on.
        let chain = format!("{leaf}{}", &ca[..ca.len() / 2]);
        let (error, _) = chain_error(chain.as_bytes());
        assert!(
            matches!(error, CertError::MalformedPem { block: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn size_is_limited() {
        let (pem, key) = self_signed(&["a.example.com"], false);
        // Text before a block (as `openssl x509 -text` writes) counts too; up to the
        // limit it is fine.
        let padded = |total: usize| {
            let filler = "# comment\n".repeat((total - pem.len()) / 10 + 1);
            let text = format!("{filler}{pem}");
            text[text.len() - total..].to_string()
        };
        assert!(parse_chain(padded(MAX_PEM_BYTES).as_bytes()).is_ok());
        let (error, message) = chain_error(padded(MAX_PEM_BYTES + 1).as_bytes());
        assert_eq!(
            error,
            CertError::TooLarge {
                what: "certificate chain",
                bytes: MAX_PEM_BYTES + 1
            }
        );
        assert!(
            message.contains(&format!("limit of {MAX_PEM_BYTES} bytes")),
            "{message}"
        );
        // A 1 MiB bundle of real certificates.
        let bundle = pem.repeat(1024 * 1024 / pem.len() + 1);
        assert!(bundle.len() > 1024 * 1024);
        assert!(matches!(
            parse_chain(bundle.as_bytes()),
            Err(CertError::TooLarge { .. })
        ));
        // The key likewise.
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        let big_key = format!("{}{}", "#\n".repeat(MAX_PEM_BYTES / 2), key.serialize_pem());
        let error = check_private_key(leaf, big_key.as_bytes()).unwrap_err();
        assert!(
            matches!(
                error,
                CertError::TooLarge {
                    what: "private key",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("the private key is"),
            "{error}"
        );
    }

    #[test]
    fn chain_length_is_limited() {
        let (pem, _) = self_signed(&["a.example.com"], false);
        assert_eq!(
            parse_chain(pem.repeat(MAX_CHAIN_CERTIFICATES).as_bytes())
                .unwrap()
                .len(),
            MAX_CHAIN_CERTIFICATES
        );
        let (error, message) = chain_error(pem.repeat(MAX_CHAIN_CERTIFICATES + 1).as_bytes());
        assert_eq!(
            error,
            CertError::TooManyCertificates {
                count: MAX_CHAIN_CERTIFICATES + 1
            }
        );
        let (_, message_50) = chain_error(pem.repeat(50).as_bytes());
        assert!(
            message_50.contains("50 certificates")
                && message_50.contains(&format!("limit of {MAX_CHAIN_CERTIFICATES}")),
            "{message_50}"
        );
        assert!(message.contains("intermediates"), "{message}");
    }

    #[test]
    fn encrypted_keys_are_named() {
        let (pem, _) = self_signed(&["a.example.com"], false);
        let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
        let pkcs8 = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n\
            MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhDkQ6wLLqcQAICCAAw\n\
            -----END ENCRYPTED PRIVATE KEY-----\n";
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\n\
            Proc-Type: 4,ENCRYPTED\n\
            DEK-Info: AES-256-CBC,2F1B3E1D0C6A4B5E8F9A0B1C2D3E4F50\n\
            \n\
            MIIEowIBAAKCAQEAv3o0d1l8mYkP8uNdw0m2kQ6wLLqcQAICCAAwDAYIKoZIhvcN\n\
            -----END RSA PRIVATE KEY-----\n";
        let ec = rsa.replace("RSA", "EC");
        for key in [pkcs8, rsa, &ec] {
            let error = check_private_key(leaf, key.as_bytes()).unwrap_err();
            assert_eq!(error, CertError::EncryptedPrivateKey, "{key}");
            assert!(error.to_string().contains("unencrypted"), "{error}");
        }
    }

    #[test]
    fn unsupported_key_algorithms_are_named() {
        // An Ed25519 leaf.
        let ed_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let ed_leaf = certificate_with_key(&ed_key);
        let (error, message) = chain_error(ed_leaf.as_bytes());
        assert_eq!(
            error,
            CertError::UnsupportedKeyAlgorithm {
                index: 0,
                algorithm: "Ed25519".into()
            }
        );
        assert!(
            message.contains("Ed25519") && message.contains("RSA and ECC"),
            "{message}"
        );
        // An Ed25519 certificate further up the chain.
        let (leaf, _) = self_signed(&["a.example.com"], false);
        let (error, message) = chain_error(format!("{leaf}{ed_leaf}").as_bytes());
        assert!(
            matches!(error, CertError::UnsupportedKeyAlgorithm { index: 1, .. }),
            "{error:?}"
        );
        assert!(
            message.starts_with("certificate 2 of the chain"),
            "{message}"
        );
        // An Ed25519 private key for an ECDSA certificate.
        let leaf = &parse_chain(leaf.as_bytes()).unwrap()[0];
        let error = check_private_key(leaf, ed_key.serialize_pem().as_bytes()).unwrap_err();
        assert_eq!(
            error,
            CertError::UnsupportedPrivateKeyAlgorithm("Ed25519".into())
        );
        assert!(error.to_string().contains("RSA and ECC"), "{error}");
        // Key formats other than PKCS#1, SEC1 and PKCS#8.
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
            b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gt\n\
            -----END OPENSSH PRIVATE KEY-----\n";
        let error = check_private_key(leaf, openssh.as_bytes()).unwrap_err();
        assert_eq!(
            error,
            CertError::UnsupportedKeyFormat("OPENSSH PRIVATE KEY".into())
        );
        assert!(error.to_string().contains("PKCS#8"), "{error}");
    }

    #[test]
    fn short_rsa_keys_are_measured_exactly() {
        // 1024 bits (top bit set, so DER adds a sign byte) and 1023 bits (no sign byte,
        // which x509-parser's own count gets wrong).
        for (top, bits) in [(0xc5, 1024), (0x45, 1023)] {
            let mut modulus = vec![0xa7; 128];
            modulus[0] = top;
            modulus[127] |= 1;
            let pem = certificate_with_key(&RsaPublicKey::new(&modulus));
            let leaf = &parse_chain(pem.as_bytes()).unwrap()[0];
            assert_eq!(
                leaf.key,
                KeyInfo {
                    algorithm: "RSA".into(),
                    bits
                }
            );
            assert_eq!(leaf.sign_algo, format!("RSA {bits}"));
        }
        assert_eq!(bit_length(&[0, 0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[]), 0);
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

#[cfg(test)]
mod properties {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::{Index, select};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::sync::OnceLock;

    /// A leaf signed by a CA, as cert-manager writes `tls.crt` and `tls.key`.
    struct Bundle {
        chain: String,
        key: String,
        leaf_der: Vec<u8>,
        key_der: Vec<u8>,
        fingerprints: Vec<String>,
    }

    fn bundle() -> &'static Bundle {
        static BUNDLE: OnceLock<Bundle> = OnceLock::new();
        BUNDLE.get_or_init(|| {
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = Issuer::new(ca_params, ca_key);
            let key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(vec!["a.example.com".to_string()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            Bundle {
                chain: format!("{}{}", leaf.pem(), ca.pem()),
                key: key.serialize_pem(),
                leaf_der: leaf.der().to_vec(),
                key_der: key.serialize_der(),
                fingerprints: [leaf.der(), ca.der()]
                    .map(|der| hex::encode(Sha256::digest(der)))
                    .to_vec(),
            }
        })
    }

    fn leaf() -> CertificateInfo {
        parse_chain(bundle().chain.as_bytes()).unwrap().remove(0)
    }

    fn fingerprints(chain: &[CertificateInfo]) -> Vec<String> {
        chain.iter().map(|c| c.fingerprint_sha256.clone()).collect()
    }

    /// `der` in PEM armour, 64 base64 characters a line.
    fn armour(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    const LABELS: [&str; 5] = [
        "CERTIFICATE",
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ];

    proptest! {
        /// Arbitrary bytes are an error (or, by extraordinary luck, a chain), never a
        /// panic, for the chain and for the key.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..4096)) {
            let _ = parse_chain(&bytes);
            let _ = check_private_key(&leaf(), &bytes);
        }

        /// Arbitrary DER in well-formed armour reaches the X.509, PKCS#1, SEC1 and
        /// PKCS#8 parsers without a panic.
        #[test]
        fn arbitrary_der_in_armour_never_panics(
            der in vec(any::<u8>(), 0..1024),
            label in select(LABELS.to_vec()),
        ) {
            let pem = armour(label, &der);
            let _ = parse_chain(pem.as_bytes());
            let _ = check_private_key(&leaf(), pem.as_bytes());
        }

        /// A certificate or key with one byte of its DER changed never panics; a
        /// changed certificate that still parses has another fingerprint.
        #[test]
        fn mutated_der_never_panics(at in any::<Index>(), flip in 1u8..=255) {
            let mut cert = bundle().leaf_der.clone();
            let i = at.index(cert.len());
            cert[i] ^= flip;
            if let Ok(chain) = parse_chain(armour("CERTIFICATE", &cert).as_bytes()) {
                prop_assert_ne!(&chain[0].fingerprint_sha256, &bundle().fingerprints[0]);
            }
            let mut key = bundle().key_der.clone();
            let i = at.index(key.len());
            key[i] ^= flip;
            let _ = check_private_key(&leaf(), armour("PRIVATE KEY", &key).as_bytes());
        }

        /// A byte of the PEM text replaced, inserted or removed never panics, and never
        /// makes more certificates than there were.
        #[test]
        fn mutated_pem_text_never_panics(
            at in any::<Index>(),
            byte in any::<u8>(),
            op in 0u8..3,
        ) {
            let mutate = |text: &str| {
                let mut bytes = text.as_bytes().to_vec();
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
                bytes
            };
            if let Ok(chain) = parse_chain(&mutate(&bundle().chain)) {
                prop_assert!(chain.len() <= bundle().fingerprints.len());
            }
            let _ = check_private_key(&leaf(), &mutate(&bundle().key));
        }

        /// Cut anywhere, a chain is an error or the certificates before the cut, and
        /// the leaf's text cut before its END line is always an error; so is the key.
        #[test]
        fn truncated_pem_is_an_error_or_a_shorter_chain(at in any::<Index>()) {
            let text = bundle().chain.as_bytes();
            let cut = at.index(text.len() + 1);
            let leaf_end = bundle().chain.find("-----END ").unwrap() + "-----END ".len();
            if let Ok(chain) = parse_chain(&text[..cut]) {
                prop_assert!(cut >= leaf_end, "cut at {cut} parsed");
                let got = fingerprints(&chain);
                prop_assert_eq!(&got[..], &bundle().fingerprints[..got.len()]);
            }
            let key = bundle().key.as_bytes();
            let cut = at.index(key.len() + 1);
            let key_end = bundle().key.find("-----END ").unwrap() + "-----END ".len();
            let result = check_private_key(&leaf(), &key[..cut]);
            prop_assert_eq!(result.is_ok(), cut >= key_end, "key cut at {}: {:?}", cut, result);
        }

        /// A certificate for arbitrary names parses back to those names and to the
        /// SHA-256 of its DER, matches its key, and reads the same with CRLF line ends
        /// and text around the block.
        #[test]
        fn a_valid_certificate_round_trips(
            names in vec("[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z][a-z0-9]{0,11}){1,3}", 1..5),
            wildcard in any::<bool>(),
        ) {
            let mut names = names;
            if wildcard {
                names[0] = format!("*.{}", names[0]);
            }
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names.clone()).unwrap().self_signed(&key).unwrap();
            let pem = cert.pem();
            let chain = parse_chain(pem.as_bytes()).unwrap();
            prop_assert_eq!(chain.len(), 1);
            let leaf = &chain[0];
            prop_assert_eq!(&leaf.dns_names, &names);
            prop_assert_eq!(&leaf.names(), &names);
            prop_assert_eq!(&leaf.fingerprint_sha256, &hex::encode(Sha256::digest(cert.der())));
            prop_assert_eq!(check_private_key(leaf, key.serialize_pem().as_bytes()), Ok(()));
            for name in &names {
                prop_assert!(leaf.covers(name), "{} not covered", name);
            }
            let crlf = pem.replace('\n', "\r\n");
            prop_assert_eq!(&parse_chain(crlf.as_bytes()).unwrap(), &chain);
            let noisy = format!("subject=CN = {}\n{pem}\n# the end\n", names[0]);
            prop_assert_eq!(&parse_chain(noisy.as_bytes()).unwrap(), &chain);
        }
    }
}
