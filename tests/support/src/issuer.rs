//! Certificates as cert-manager's CA issuer writes them: a root CA, and leaves (fresh
//! ECDSA P-256 keys) in `kubernetes.io/tls` Secrets with cert-manager's keys and
//! annotations. For the benchmark and the end-to-end tests.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

const DAY: u64 = 86_400;

/// A self-signed root CA that signs every leaf of a run.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// One issued leaf, as it goes into a `kubernetes.io/tls` Secret.
pub struct Leaf {
    /// `tls.crt`.
    pub cert_pem: String,
    /// `tls.key` (PKCS#8).
    pub key_pem: String,
    /// Lower-case hex SHA-256 of the leaf's DER, as the operator records it.
    pub fingerprint: String,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn set_validity(params: &mut CertificateParams, from: Duration, until: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + from;
    params.not_after = epoch + until;
}

impl Ca {
    pub fn new() -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "edgeone-cert-operator test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let now = now();
        set_validity(
            &mut params,
            now - Duration::from_secs(DAY),
            now + Duration::from_secs(3650 * DAY),
        );
        let key = KeyPair::generate().context("CA key")?;
        let cert = params.self_signed(&key).context("self-signed CA")?;
        Ok(Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for `names`, valid from a day ago for 90 days.
    pub fn issue(&self, names: &[String]) -> Result<Leaf> {
        let mut params = CertificateParams::new(names.to_vec()).context("leaf params")?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().map_or("", String::as_str));
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = now();
        set_validity(
            &mut params,
            now - Duration::from_secs(DAY),
            now + Duration::from_secs(90 * DAY),
        );
        let key = KeyPair::generate().context("leaf key")?;
        let cert = params.signed_by(&key, &self.issuer).context("leaf")?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: hex::encode(Sha256::digest(cert.der())),
        })
    }

    /// The Secret cert-manager writes for `leaf` (type kubernetes.io/tls, `tls.crt`,
    /// `tls.key`, `ca.crt` and its annotations).
    pub fn secret(&self, name: &str, names: &[String], leaf: &Leaf) -> Secret {
        let data: BTreeMap<String, ByteString> = [
            ("tls.crt", leaf.cert_pem.as_str()),
            ("tls.key", leaf.key_pem.as_str()),
            ("ca.crt", self.pem.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        let annotations: BTreeMap<String, String> = [
            (
                "cert-manager.io/certificate-name",
                name.trim_end_matches("-tls").to_owned(),
            ),
            ("cert-manager.io/issuer-name", "test-ca".to_owned()),
            ("cert-manager.io/issuer-kind", "Issuer".to_owned()),
            ("cert-manager.io/issuer-group", "cert-manager.io".to_owned()),
            (
                "cert-manager.io/common-name",
                names.first().cloned().unwrap_or_default(),
            ),
            ("cert-manager.io/alt-names", names.join(",")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                annotations: Some(annotations),
                labels: Some(
                    [(
                        "controller.cert-manager.io/fao".to_owned(),
                        "true".to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }
}
