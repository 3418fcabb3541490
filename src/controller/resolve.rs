//! From a binding's spec to the configuration EdgeOne should have, with every
//! certificate named by its Tencent id. Pure: Secret- and cert-manager-backed sources
//! are resolved to ids by the caller before this runs.

use std::collections::BTreeSet;

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

/// The certificate id of a source. Sources backed by a Secret or a cert-manager
/// Certificate need the certificate uploaded first, which this release does not do yet.
fn cert_id(
    field: &str,
    cert_id: Option<&String>,
    other_source: Option<&str>,
) -> Result<String, SpecError> {
    match (cert_id, other_source) {
        (Some(id), _) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        (_, Some(kind)) => Err(invalid(
            field,
            format!(
                "{kind} sources are not supported by this operator version yet; name the uploaded certificate with certId"
            ),
        )),
        _ => Err(invalid(field, "set certId to the SSL certificate id")),
    }
}

fn server_source(field: &str, source: &CertificateSource) -> Result<String, SpecError> {
    let other = match (&source.secret_ref, &source.certificate_ref) {
        (Some(_), _) => Some("secretRef"),
        (_, Some(_)) => Some("certificateRef"),
        _ => None,
    };
    cert_id(field, source.cert_id.as_ref(), other)
}

fn ca_source(field: &str, source: &CaCertificateSource) -> Result<String, SpecError> {
    cert_id(
        field,
        source.cert_id.as_ref(),
        source.secret_ref.as_ref().map(|_| "secretRef"),
    )
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

/// The desired configuration of a spec whose certificates are all named by id.
pub fn desired_config(spec: &EdgeOneCertificateBindingSpec) -> Result<DesiredConfig, SpecError> {
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

    fn spec(json: serde_json::Value) -> EdgeOneCertificateBindingSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn seed_examples_resolve() {
        let ssl = desired_config(&spec(serde_json::json!({
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

        let mtls = desired_config(&spec(serde_json::json!({
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
                "spec.serverCertificates[0]: secretRef sources are not supported",
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
            let error = desired_config(&spec(json)).unwrap_err().to_string();
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
