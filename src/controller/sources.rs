//! Certificates kept in Kubernetes Secrets: read, checked locally (so that a broken
//! certificate never reaches Tencent Cloud) and uploaded once per fingerprint.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::api::CertificateStatus;
use crate::certs::{self, CertificateInfo};
use crate::controller::resolve::{SecretSource, Uploaded};
use crate::controller::status::Failure;
use crate::controller::uploads::UploadCache;
use crate::tencent::credentials::Credentials;
use crate::tencent::ssl::SslApi;

/// What a Secret holds, as PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMaterial {
    pub chain_pem: String,
    /// The private key, for server certificates.
    pub key_pem: Option<String>,
}

/// A certificate that passed the local checks, ready to upload.
#[derive(Debug, Clone)]
pub struct CheckedCertificate {
    pub source: SecretSource,
    pub material: SecretMaterial,
    pub leaf: CertificateInfo,
}

impl CheckedCertificate {
    pub fn status(&self, cert_id: &str) -> CertificateStatus {
        CertificateStatus {
            cert_id: cert_id.to_owned(),
            source: format!("secret/{}", self.source.name()),
            fingerprint_sha256: Some(self.leaf.fingerprint_sha256.clone()),
            not_after: jiff::Timestamp::from_second(self.leaf.not_after)
                .ok()
                .map(|t| t.to_string()),
            subject_names: self.leaf.names(),
        }
    }

    fn cert_type(&self) -> &'static str {
        match self.source {
            SecretSource::Server { .. } => "SVR",
            SecretSource::Ca { .. } => "CA",
        }
    }
}

/// The data a source needs from its Secret, or why the Secret does not have it.
pub fn material(
    source: &SecretSource,
    namespace: &str,
    secret: &Secret,
) -> Result<SecretMaterial, Failure> {
    let name = source.name();
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .filter(|v| !v.trim().is_empty())
    };
    let invalid = |reason: String| {
        Failure::CertificateInvalid(format!("Secret {namespace}/{name}: {reason}"))
    };
    match source {
        SecretSource::Server { .. } => {
            if secret.type_.as_deref() != Some("kubernetes.io/tls") {
                return Err(invalid(format!(
                    "type is {:?}; a server certificate needs a Secret of type kubernetes.io/tls",
                    secret.type_.as_deref().unwrap_or("Opaque")
                )));
            }
            let chain_pem = text("tls.crt").ok_or_else(|| {
                invalid(
                    "has no tls.crt (or it is empty); put the PEM certificate chain there, leaf first"
                        .into(),
                )
            })?;
            let key_pem = text("tls.key").ok_or_else(|| {
                invalid(
                    "has no tls.key (or it is empty); put the leaf's unencrypted PEM private key there"
                        .into(),
                )
            })?;
            Ok(SecretMaterial {
                chain_pem,
                key_pem: Some(key_pem),
            })
        }
        SecretSource::Ca { key, .. } => {
            // cert-manager puts the issuing CA in ca.crt; a CA's own Secret has it in tls.crt.
            let chain_pem = text(key)
                .or_else(|| (key == "ca.crt").then(|| text("tls.crt")).flatten())
                .ok_or_else(|| {
                    invalid(format!(
                        "has no {key} (or it is empty); put the PEM CA certificate there"
                    ))
                })?;
            Ok(SecretMaterial {
                chain_pem,
                key_pem: None,
            })
        }
    }
}

/// EdgeOne's minimum key sizes (RSA and DSA 2048 bits, EC 225 bits).
fn key_too_short(leaf: &CertificateInfo) -> bool {
    match leaf.key.algorithm.as_str() {
        "EC" => leaf.key.bits < 225,
        "RSA" | "DSA" => leaf.key.bits < 2048,
        _ => false,
    }
}

/// The local checks: parse, key, validity, key size, server vs CA. `now` in Unix seconds.
pub fn check(
    source: &SecretSource,
    namespace: &str,
    material: SecretMaterial,
    now: i64,
) -> Result<CheckedCertificate, Failure> {
    let invalid = |reason: String| {
        Failure::CertificateInvalid(format!("Secret {namespace}/{}: {reason}", source.name()))
    };
    let chain =
        certs::parse_chain(material.chain_pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let leaf = chain[0].clone();
    if leaf.not_after < now {
        let when = jiff::Timestamp::from_second(leaf.not_after)
            .map(|t| t.to_string())
            .unwrap_or_default();
        return Err(invalid(format!(
            "the certificate expired at {when}; renew it"
        )));
    }
    if leaf.not_before > now {
        return Err(invalid(
            "the certificate is not valid yet (notBefore is in the future)".into(),
        ));
    }
    match source {
        SecretSource::Server { .. } => {
            if leaf.is_ca {
                return Err(invalid(
                    "the certificate is a CA certificate; a server certificate is needed here"
                        .into(),
                ));
            }
            if key_too_short(&leaf) {
                return Err(invalid(format!(
                    "the {} key has {} bits; EdgeOne needs RSA/DSA >= 2048 or EC >= 225",
                    leaf.key.algorithm, leaf.key.bits
                )));
            }
            let key = material.key_pem.as_deref().unwrap_or_default();
            certs::check_private_key(&leaf, key.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        }
        SecretSource::Ca { .. } => {
            if !leaf.is_ca {
                return Err(invalid("the certificate is not a CA certificate (basicConstraints CA:FALSE); a CA is needed here".into()));
            }
        }
    }
    Ok(CheckedCertificate {
        source: source.clone(),
        material,
        leaf,
    })
}

/// Hosts that none of the server certificates covers (only when every server
/// certificate's names are known, i.e. all come from Secrets).
pub fn uncovered_hosts<'a>(hosts: &'a [String], servers: &[&CertificateInfo]) -> Vec<&'a String> {
    hosts
        .iter()
        .filter(|h| !servers.iter().any(|c| c.covers(h)))
        .collect()
}

/// Reads and checks every Secret-backed source of a binding. A missing Secret is
/// `Failure::SecretNotFound`; anything wrong with its content `CertificateInvalid`.
pub async fn read_and_check(
    secrets: &Api<Secret>,
    namespace: &str,
    sources: &[SecretSource],
) -> Result<Result<Vec<CheckedCertificate>, Failure>, kube::Error> {
    let now = jiff::Timestamp::now().as_second();
    let mut checked = Vec::with_capacity(sources.len());
    let mut cache: BTreeMap<&str, Secret> = BTreeMap::new();
    for source in sources {
        let name = source.name();
        if !cache.contains_key(name) {
            let Some(secret) = secrets.get_opt(name).await? else {
                return Ok(Err(Failure::SecretNotFound(format!(
                    "Secret {namespace}/{name} does not exist; create it (cert-manager writes it from a Certificate's spec.secretName)"
                ))));
            };
            cache.insert(name, secret);
        }
        let result = material(source, namespace, &cache[name])
            .and_then(|m| check(source, namespace, m, now));
        match result {
            Ok(c) => checked.push(c),
            Err(failure) => return Ok(Err(failure)),
        }
    }
    Ok(Ok(checked))
}

/// Uploads what is not uploaded yet. `known` maps fingerprints to ids already in the
/// binding's status, so a fingerprint is never uploaded twice; for anything else
/// `Repeatable: false` makes the upload return the existing id. `uploads` shares one
/// upload of a certificate between all bindings of the account.
/// The alias of every certificate the operator uploads: `k8s/<namespace>/<Secret>/`
/// and the first 12 hex digits of the leaf's fingerprint. It tells people where an
/// upload came from, and lets the operator find its own uploads of a Secret again
/// (see `reconcile::unrecorded_uploads`).
pub fn upload_alias(namespace: &str, secret: &str, fingerprint: &str) -> String {
    format!(
        "{}{}",
        upload_alias_prefix(namespace, secret),
        &fingerprint[..fingerprint.len().min(12)]
    )
}

/// What every upload alias of the Secret starts with.
pub fn upload_alias_prefix(namespace: &str, secret: &str) -> String {
    format!("k8s/{namespace}/{secret}/")
}

pub async fn upload(
    ssl: &SslApi,
    uploads: &UploadCache,
    creds: &Credentials,
    namespace: &str,
    checked: &[CheckedCertificate],
    known: &BTreeMap<String, String>,
) -> Result<(Uploaded, Vec<CertificateStatus>), crate::tencent::error::CallError> {
    let mut uploaded = Uploaded::new();
    let mut statuses = Vec::with_capacity(checked.len());
    for cert in checked {
        let fingerprint = &cert.leaf.fingerprint_sha256;
        let id = match known.get(fingerprint) {
            Some(id) => id.clone(),
            None => {
                let alias = upload_alias(namespace, cert.source.name(), fingerprint);
                uploads
                    .get_or_upload(&creds.secret_id, fingerprint, || {
                        ssl.upload_certificate(
                            creds,
                            &cert.material.chain_pem,
                            cert.material.key_pem.as_deref(),
                            cert.cert_type(),
                            &alias,
                        )
                    })
                    .await?
            }
        };
        statuses.push(cert.status(&id));
        uploaded.insert(cert.source.clone(), id);
    }
    Ok((uploaded, statuses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn tls_secret(cert: &str, key: &str) -> Secret {
        Secret {
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                [
                    ("tls.crt".to_string(), ByteString(cert.as_bytes().to_vec())),
                    ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
                ]
                .into(),
            ),
            ..Default::default()
        }
    }

    fn issue(names: &[&str], ca: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn server() -> SecretSource {
        SecretSource::Server { name: "tls".into() }
    }

    fn checked(secret: &Secret, source: &SecretSource) -> Result<CheckedCertificate, Failure> {
        material(source, "ns", secret)
            .and_then(|m| check(source, "ns", m, jiff::Timestamp::now().as_second()))
    }

    fn message(result: Result<CheckedCertificate, Failure>) -> String {
        match result {
            Err(Failure::CertificateInvalid(m)) => m,
            other => panic!("expected CertificateInvalid, got {other:?}"),
        }
    }

    #[test]
    fn a_good_server_certificate_passes() {
        let (cert, key) = issue(&["abc.test.com"], false);
        let ok = checked(&tls_secret(&cert, &key), &server()).unwrap();
        assert_eq!(ok.status("id1").source, "secret/tls");
        assert_eq!(ok.status("id1").subject_names, ["abc.test.com"]);
        let hosts = vec!["abc.test.com".to_string(), "api.test.com".to_string()];
        assert_eq!(uncovered_hosts(&hosts, &[&ok.leaf]), [&hosts[1]]);
    }

    #[test]
    fn each_problem_is_named() {
        let (cert, key) = issue(&["abc.test.com"], false);
        let (_, other_key) = issue(&["abc.test.com"], false);
        let (ca, ca_key) = issue(&["ca"], true);
        assert!(message(checked(&tls_secret("garbage", &key), &server())).contains("PEM"));
        assert!(
            message(checked(&tls_secret(&cert, &other_key), &server())).contains("does not match")
        );
        assert!(message(checked(&tls_secret(&ca, &ca_key), &server())).contains("CA certificate"));
        let opaque = Secret {
            type_: Some("Opaque".into()),
            ..tls_secret(&cert, &key)
        };
        assert!(message(checked(&opaque, &server())).contains("kubernetes.io/tls"));
        let ca_source = SecretSource::Ca {
            name: "tls".into(),
            key: "ca.crt".into(),
        };
        assert!(message(checked(&tls_secret(&cert, &key), &ca_source)).contains("not a CA"));
        assert!(
            checked(&tls_secret(&ca, &ca_key), &ca_source).is_ok(),
            "ca.crt falls back to tls.crt"
        );
    }
}
