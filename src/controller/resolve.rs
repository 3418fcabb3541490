//! From a binding's spec to the configuration EdgeOne should have, with every
//! certificate named by its Tencent id. Pure: Secret- and cert-manager-backed sources
//! are resolved to ids by the caller before this runs.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{
    CaCertificateSource, CertificateSource, EdgeOneCertificateBindingSpec, Mode, VerifyMode,
};
use crate::controller::plan::{DesiredConfig, MutualTls, OriginVerify};

/// Why a spec cannot be turned into a request. The message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    ids.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A certificate kept in a Secret of the binding's namespace: a server (or origin
/// client) certificate with its key from `tls.crt`/`tls.key`, or a CA from `key`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretSource {
    Server { name: String },
    Ca { name: String, key: String },
}

impl SecretSource {
    pub fn name(&self) -> &str {
        match self {
            SecretSource::Server { name } | SecretSource::Ca { name, .. } => name,
        }
    }
}

/// Certificate ids of the Secret-backed sources, once uploaded.
pub type Uploaded = BTreeMap<SecretSource, String>;

/// The Secret of each cert-manager Certificate a spec names (`spec.secretName`), for
/// those that are Ready.
pub type CertificateSecrets = BTreeMap<String, String>;

fn uploaded_id(
    field: &str,
    uploaded: &Uploaded,
    source: SecretSource,
) -> Result<String, SpecError> {
    uploaded.get(&source).cloned().ok_or_else(|| {
        invalid(
            field,
            format!("Secret {} has not been uploaded", source.name()),
        )
    })
}

fn given_id(field: &str, cert_id: &str) -> Result<String, SpecError> {
    match cert_id.trim() {
        "" => Err(invalid(field, "certId must not be empty")),
        id => Ok(id.to_owned()),
    }
}

fn server_source(
    field: &str,
    source: &CertificateSource,
    uploaded: &Uploaded,
    certificate_secrets: &CertificateSecrets,
) -> Result<String, SpecError> {
    let from_secret = |name: &str| {
        uploaded_id(
            field,
            uploaded,
            SecretSource::Server {
                name: name.to_owned(),
            },
        )
    };
    match (&source.cert_id, &source.secret_ref, &source.certificate_ref) {
        (Some(id), _, _) => given_id(field, id),
        (_, Some(secret), _) => from_secret(&secret.name),
        (_, _, Some(certificate)) => match certificate_secrets.get(&certificate.name) {
            Some(secret) => from_secret(secret),
            None => Err(invalid(
                field,
                format!("Certificate {} is not Ready yet", certificate.name),
            )),
        },
        _ => Err(invalid(
            field,
            "set one of certId, secretRef or certificateRef",
        )),
    }
}

/// The cert-manager Certificates a spec names, each once.
pub fn certificate_refs(spec: &EdgeOneCertificateBindingSpec) -> Vec<String> {
    server_sources(spec)
        .filter_map(|s| s.certificate_ref.as_ref().map(|r| r.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn server_sources(
    spec: &EdgeOneCertificateBindingSpec,
) -> impl Iterator<Item = &CertificateSource> {
    spec.server_certificates.iter().chain(
        spec.upstream
            .iter()
            .flat_map(|u| u.mutual_tls.iter().flat_map(|m| &m.certificates)),
    )
}

fn ca_source(
    field: &str,
    source: &CaCertificateSource,
    uploaded: &Uploaded,
) -> Result<String, SpecError> {
    match (&source.cert_id, &source.secret_ref) {
        (Some(id), _) => given_id(field, id),
        (_, Some(secret)) => uploaded_id(
            field,
            uploaded,
            SecretSource::Ca {
                name: secret.name.clone(),
                key: secret.key_or_default().to_owned(),
            },
        ),
        _ => Err(invalid(field, "set one of certId or secretRef")),
    }
}

/// Every Secret-backed source of a spec, each once.
pub fn secret_sources(
    spec: &EdgeOneCertificateBindingSpec,
    certificate_secrets: &CertificateSecrets,
) -> Vec<SecretSource> {
    let servers = server_sources(spec)
        .filter_map(|s| match (&s.secret_ref, &s.certificate_ref) {
            (Some(secret), _) => Some(secret.name.clone()),
            (_, Some(certificate)) => certificate_secrets.get(&certificate.name).cloned(),
            _ => None,
        })
        .map(|name| SecretSource::Server { name });
    let cas = spec
        .client_authentication
        .iter()
        .flat_map(|a| &a.ca_certificates)
        .chain(
            spec.upstream
                .iter()
                .flat_map(|u| u.certificate_verify.iter().flat_map(|v| &v.ca_certificates)),
        )
        .filter_map(|s| s.secret_ref.as_ref())
        .map(|r| SecretSource::Ca {
            name: r.name.clone(),
            key: r.key_or_default().to_owned(),
        });
    servers
        .chain(cas)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn all<T>(
    field: &str,
    sources: &[T],
    resolve: impl Fn(&str, &T) -> Result<String, SpecError>,
) -> Result<Vec<String>, SpecError> {
    let ids = sources
        .iter()
        .enumerate()
        .map(|(i, s)| resolve(&format!("{field}[{i}]"), s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sorted(ids))
}

/// A mutual TLS switch with its certificates; certificates are required when it is on
/// and ignored when it is off.
fn mutual_tls<T>(
    field: &str,
    enabled: bool,
    sources: &[T],
    resolve: impl Fn(&str, &T) -> Result<String, SpecError>,
) -> Result<MutualTls, SpecError> {
    if !enabled {
        return Ok(MutualTls::default());
    }
    if sources.is_empty() {
        return Err(invalid(field, "required when enabled is true"));
    }
    Ok(MutualTls {
        enabled: true,
        cert_ids: all(field, sources, resolve)?,
    })
}

/// Host names as EdgeOne stores them: lower-case, without a trailing dot, deduplicated,
/// in the binding's order.
pub fn normalized_hosts(hosts: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    hosts
        .iter()
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

/// The desired configuration of a spec; Secret-backed certificates are looked up in
/// `uploaded`.
pub fn desired_config(
    spec: &EdgeOneCertificateBindingSpec,
    uploaded: &Uploaded,
    certificate_secrets: &CertificateSecrets,
) -> Result<DesiredConfig, SpecError> {
    let server_source = |field: &str, source: &CertificateSource| {
        server_source(field, source, uploaded, certificate_secrets)
    };
    let ca_source = |field: &str, source: &CaCertificateSource| ca_source(field, source, uploaded);
    if spec.hosts.is_empty() {
        return Err(invalid("spec.hosts", "list at least one host"));
    }
    let server_cert_ids = match spec.mode {
        Mode::Sslcert if spec.server_certificates.is_empty() => {
            return Err(invalid(
                "spec.serverCertificates",
                "required when mode is sslcert",
            ));
        }
        Mode::Sslcert => all(
            "spec.serverCertificates",
            &spec.server_certificates,
            server_source,
        )?,
        _ if !spec.server_certificates.is_empty() => {
            return Err(invalid(
                "spec.serverCertificates",
                "only allowed when mode is sslcert",
            ));
        }
        _ => Vec::new(),
    };
    let client_mtls = spec
        .client_authentication
        .as_ref()
        .map(|auth| {
            mutual_tls(
                "spec.clientAuthentication.caCertificates",
                auth.enabled,
                &auth.ca_certificates,
                ca_source,
            )
        })
        .transpose()?;
    let upstream = spec.upstream.as_ref();
    let upstream_mtls = upstream
        .and_then(|u| u.mutual_tls.as_ref())
        .map(|m| {
            mutual_tls(
                "spec.upstream.mutualTLS.certificates",
                m.enabled,
                &m.certificates,
                server_source,
            )
        })
        .transpose()?;
    let origin_verify = match upstream.and_then(|u| u.certificate_verify.as_ref()) {
        None => None,
        Some(v) => match v.mode {
            VerifyMode::Disable => Some(OriginVerify {
                mode: "disable".into(),
                ca_ids: Vec::new(),
            }),
            VerifyMode::CustomCa if v.ca_certificates.is_empty() => {
                return Err(invalid(
                    "spec.upstream.certificateVerify.caCertificates",
                    "required when mode is custom_ca",
                ));
            }
            VerifyMode::CustomCa => Some(OriginVerify {
                mode: "custom_ca".into(),
                ca_ids: all(
                    "spec.upstream.certificateVerify.caCertificates",
                    &v.ca_certificates,
                    ca_source,
                )?,
            }),
        },
    };
    Ok(DesiredConfig {
        mode: spec.mode.as_str().to_owned(),
        server_cert_ids,
        client_mtls,
        upstream_mtls,
        origin_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired_config_of(spec: &EdgeOneCertificateBindingSpec) -> Result<DesiredConfig, SpecError> {
        desired_config(spec, &Uploaded::new(), &CertificateSecrets::new())
    }

    fn spec(json: serde_json::Value) -> EdgeOneCertificateBindingSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn seed_examples_resolve() {
        let ssl = desired_config_of(&spec(serde_json::json!({
            "zoneId": "zone-2fgd17m17xw", "hosts": ["abc.test.com"], "mode": "sslcert",
            "serverCertificates": [{"certId": "cert-b"}, {"certId": "cert-a"}, {"certId": "cert-a"}]
        })))
        .unwrap();
        assert_eq!(ssl.mode, "sslcert");
        assert_eq!(
            ssl.server_cert_ids,
            ["cert-a", "cert-b"],
            "sorted, deduplicated"
        );
        assert_eq!(ssl.client_mtls, None, "unmanaged unless named");

        let mtls = desired_config_of(&spec(serde_json::json!({
            "zoneId": "zone-2fgd17m17xw", "hosts": ["abc.test.com"], "mode": "eofreecert",
            "clientAuthentication": {"enabled": true, "caCertificates": [{"certId": "J2JqATrt"}]},
            "upstream": {"certificateVerify": {"mode": "disable"}}
        })))
        .unwrap();
        assert_eq!(
            mtls.client_mtls,
            Some(MutualTls {
                enabled: true,
                cert_ids: vec!["J2JqATrt".into()]
            })
        );
        assert_eq!(
            mtls.origin_verify,
            Some(OriginVerify {
                mode: "disable".into(),
                ca_ids: vec![]
            })
        );
    }

    #[test]
    fn errors_name_the_field_to_fix() {
        let cases = [
            (
                serde_json::json!({"zoneId": "zone-1", "hosts": ["a.com"], "mode": "sslcert"}),
                "spec.serverCertificates: required when mode is sslcert",
            ),
            (
                serde_json::json!({"zoneId": "zone-1", "hosts": ["a.com"], "mode": "disable", "serverCertificates": [{"certId": "c"}]}),
                "spec.serverCertificates: only allowed when mode is sslcert",
            ),
            (
                serde_json::json!({"zoneId": "zone-1", "hosts": ["a.com"], "mode": "sslcert", "serverCertificates": [{"secretRef": {"name": "tls"}}]}),
                "spec.serverCertificates[0]: Secret tls has not been uploaded",
            ),
            (
                serde_json::json!({"zoneId": "zone-1", "hosts": ["a.com"], "mode": "eofreecert", "clientAuthentication": {"enabled": true}}),
                "spec.clientAuthentication.caCertificates: required when enabled is true",
            ),
            (
                serde_json::json!({"zoneId": "zone-1", "hosts": [], "mode": "eofreecert"}),
                "spec.hosts: list at least one host",
            ),
        ];
        for (json, expected) in cases {
            let error = desired_config_of(&spec(json)).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn hosts_are_normalized() {
        let hosts = normalized_hosts(&[
            "A.Test.com.".into(),
            "a.test.com".into(),
            "*.test.com".into(),
        ]);
        assert_eq!(hosts, ["a.test.com", "*.test.com"]);
    }
}
