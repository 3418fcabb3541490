//! EdgeOne (`teo`, 2022-09-01): `ModifyHostsCertificate` and
//! `DescribeAccelerationDomains`, with the models of the official SDKs' `models.py`.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use super::credentials::Credentials;
use super::error::{CallError, ErrorClass};
use super::transport::{Service, Transport};

/// `DescribeAccelerationDomains` returns at most this many domains per page.
pub const MAX_PAGE_SIZE: u64 = 200;
/// Tries per listing page (reads only; a Modify is never repeated here).
const PAGE_ATTEMPTS: u32 = 3;
/// The pause before a page's second try; doubled before its third.
const PAGE_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);
/// A filter takes at most this many values.
pub const MAX_FILTER_VALUES: usize = 20;

/// Reads `null` as the type's default (Tencent writes `null` for absent strings).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The body of `ModifyHostsCertificate`. Parts left `None` keep their configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyHostsCertificateRequest {
    pub zone_id: String,
    pub hosts: Vec<String>,
    /// `disable`, `eofreecert`, `eofreecert_manual` or `sslcert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Required when `mode` is `sslcert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cert_info: Option<Vec<CertId>>,
    /// Edge mTLS: the CA certificates client certificates are verified with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_info: Option<MutualTls>,
    /// Origin mTLS and origin certificate verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_cert_info: Option<UpstreamCertInfo>,
}

/// `ServerCertInfo` as a request sends it: only the id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertId {
    #[serde(deserialize_with = "null_as_default")]
    pub cert_id: String,
}

impl CertId {
    pub fn new(cert_id: impl Into<String>) -> Self {
        Self {
            cert_id: cert_id.into(),
        }
    }
}

/// `MutualTLS`: `Switch` (`on`/`off`) and the certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MutualTls {
    #[serde(deserialize_with = "null_as_default")]
    pub switch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_infos: Option<Vec<CertificateInfo>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpstreamCertInfo {
    #[serde(
        rename = "UpstreamMutualTLS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_mutual_tls: Option<MutualTls>,
    #[serde(
        rename = "UpstreamCertificateVerify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_certificate_verify: Option<OriginCertificateVerify>,
}

/// How the edge verifies the origin's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginCertificateVerify {
    /// `disable` or `custom_ca`.
    #[serde(deserialize_with = "null_as_default")]
    pub verification_mode: String,
    #[serde(
        rename = "CustomCACerts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_ca_certs: Option<Vec<CertificateInfo>>,
}

/// A certificate as EdgeOne lists it; a request sends only `CertId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateInfo {
    #[serde(deserialize_with = "null_as_default")]
    pub cert_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// `default`, `upload`, `managed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algo: Option<String>,
    /// `deployed`, `processing`, `applying`, `failed`, `issued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl CertificateInfo {
    /// A reference by id, as a request sends it.
    pub fn id(cert_id: impl Into<String>) -> Self {
        Self {
            cert_id: cert_id.into(),
            ..Self::default()
        }
    }
}

/// An acceleration domain as `DescribeAccelerationDomains` returns it (only the fields
/// the operator uses; the rest are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccelerationDomain {
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub domain_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<AccelerationDomainCertificate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccelerationDomainCertificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<CertificateInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_info: Option<MutualTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_cert_info: Option<UpstreamCertInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAccelerationDomainsRequest<'a> {
    zone_id: &'a str,
    offset: u64,
    limit: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    filters: &'a [AdvancedFilter<'a>],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AdvancedFilter<'a> {
    name: &'a str,
    values: &'a [String],
    fuzzy: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAccelerationDomainsResponse {
    #[serde(default)]
    total_count: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    acceleration_domains: Vec<AccelerationDomain>,
}

#[derive(Debug, Deserialize)]
struct Empty {}

/// The EdgeOne API.
#[derive(Debug, Clone)]
pub struct TeoApi {
    transport: Arc<Transport>,
}

impl TeoApi {
    pub fn new(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    /// Applies the request; returns its RequestId. Deployment to the edge is
    /// asynchronous: watch it with [`describe_domains`](Self::describe_domains).
    pub async fn modify_hosts_certificate(
        &self,
        creds: &Credentials,
        request: &ModifyHostsCertificateRequest,
    ) -> Result<String, CallError> {
        let reply = self
            .transport
            .call::<_, Empty>(Some(creds), Service::Teo, "ModifyHostsCertificate", request)
            .await?;
        Ok(reply.request_id)
    }

    /// The acceleration domains of `zone_id` named in `hosts` (exact names; hosts that
    /// do not exist are simply absent), with the last RequestId. Asks for at most 20
    /// names per request and follows pages of 200.
    pub async fn describe_domains(
        &self,
        creds: &Credentials,
        zone_id: &str,
        hosts: &[String],
    ) -> Result<(Vec<AccelerationDomain>, String), CallError> {
        // Host names are case-insensitive; EdgeOne keeps them in lower case.
        let mut wanted: Vec<String> = Vec::with_capacity(hosts.len());
        for host in hosts {
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(host)) {
                wanted.push(host.clone());
            }
        }
        let mut domains = Vec::new();
        let mut request_id = String::new();
        for chunk in wanted.chunks(MAX_FILTER_VALUES) {
            let filters = [AdvancedFilter {
                name: "domain-name",
                values: chunk,
                fuzzy: false,
            }];
            request_id = self.pages(creds, zone_id, &filters, &mut domains).await?;
        }
        let mut seen = std::collections::HashSet::new();
        domains.retain(|d| seen.insert(d.domain_name.to_ascii_lowercase()));
        Ok((domains, request_id))
    }

    /// Every acceleration domain of the zone (pages of 200), with the last RequestId.
    pub async fn describe_zone(
        &self,
        creds: &Credentials,
        zone_id: &str,
    ) -> Result<(Vec<AccelerationDomain>, String), CallError> {
        let mut domains = Vec::new();
        let request_id = self.pages(creds, zone_id, &[], &mut domains).await?;
        Ok((domains, request_id))
    }

    /// Appends every page of one filtered listing to `out`; returns the last RequestId.
    /// Each page is tried up to [`PAGE_ATTEMPTS`] times on a retryable error.
    async fn pages(
        &self,
        creds: &Credentials,
        zone_id: &str,
        filters: &[AdvancedFilter<'_>],
        out: &mut Vec<AccelerationDomain>,
    ) -> Result<String, CallError> {
        let mut offset = 0;
        loop {
            let request = DescribeAccelerationDomainsRequest {
                zone_id,
                offset,
                limit: MAX_PAGE_SIZE,
                filters,
            };
            // A read is safe to repeat: a page that failed transiently is asked for
            // again, so that one bad answer among a large zone's pages does not cost
            // the whole listing (at 20% faults, ten pages all succeed 11% of the time).
            let mut attempt = 1;
            let reply = loop {
                let result = self
                    .transport
                    .call::<_, DescribeAccelerationDomainsResponse>(
                        Some(creds),
                        Service::Teo,
                        "DescribeAccelerationDomains",
                        &request,
                    )
                    .await;
                match result {
                    Err(e) if e.class() == ErrorClass::Retryable && attempt < PAGE_ATTEMPTS => {
                        tokio::time::sleep(PAGE_RETRY_DELAY * attempt).await;
                        attempt += 1;
                    }
                    other => break other?,
                }
            };
            let count = reply.body.acceleration_domains.len() as u64;
            out.extend(reply.body.acceleration_domains);
            offset += count;
            if count == 0 || offset >= reply.body.total_count {
                return Ok(reply.request_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_serialize_as_the_api_documents() {
        let request = ModifyHostsCertificateRequest {
            zone_id: "zone-2fgd17m17xw".into(),
            hosts: vec!["abc.test.com".into()],
            mode: Some("sslcert".into()),
            server_cert_info: Some(vec![CertId::new("cert-244ffgv7m17xw")]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"ZoneId":"zone-2fgd17m17xw","Hosts":["abc.test.com"],"Mode":"sslcert","ServerCertInfo":[{"CertId":"cert-244ffgv7m17xw"}]})
        );
        let upstream = ModifyHostsCertificateRequest {
            zone_id: "z".into(),
            hosts: vec!["h".into()],
            client_cert_info: Some(MutualTls {
                switch: "off".into(),
                cert_infos: None,
            }),
            upstream_cert_info: Some(UpstreamCertInfo {
                upstream_mutual_tls: Some(MutualTls {
                    switch: "on".into(),
                    cert_infos: Some(vec![CertificateInfo::id("svr")]),
                }),
                upstream_certificate_verify: Some(OriginCertificateVerify {
                    verification_mode: "custom_ca".into(),
                    custom_ca_certs: Some(vec![CertificateInfo::id("ca")]),
                }),
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&upstream).unwrap(),
            json!({"ZoneId":"z","Hosts":["h"],"ClientCertInfo":{"Switch":"off"},
                   "UpstreamCertInfo":{"UpstreamMutualTLS":{"Switch":"on","CertInfos":[{"CertId":"svr"}]},
                                       "UpstreamCertificateVerify":{"VerificationMode":"custom_ca","CustomCACerts":[{"CertId":"ca"}]}}})
        );
    }

    #[test]
    fn domains_parse_with_nulls_and_unknown_fields() {
        let domain: AccelerationDomain = serde_json::from_value(json!({
            "ZoneId": "z", "DomainName": "a.test.com", "DomainStatus": "online", "Cname": "x",
            "Certificate": {
                "Mode": "sslcert",
                "List": [{"CertId": "c1", "Alias": null, "Type": "upload", "ExpireTime": "2030-01-01T00:00:00Z",
                          "DeployTime": "2024-01-01T00:00:00Z", "SignAlgo": "RSA 2048", "Status": "deployed"}],
                "ClientCertInfo": {"Switch": "off", "CertInfos": []},
                "UpstreamCertInfo": {"UpstreamMutualTLS": null,
                                     "UpstreamCertificateVerify": {"VerificationMode": null, "CustomCACerts": null}}
            }
        }))
        .unwrap();
        let cert = domain.certificate.unwrap();
        assert_eq!(cert.mode.as_deref(), Some("sslcert"));
        let info = &cert.list.unwrap()[0];
        assert_eq!(info.cert_id, "c1");
        assert_eq!(info.status.as_deref(), Some("deployed"));
        assert_eq!(info.alias, None);
        assert_eq!(info.r#type.as_deref(), Some("upload"));
        let upstream = cert.upstream_cert_info.unwrap();
        assert_eq!(upstream.upstream_mutual_tls, None);
        assert_eq!(
            upstream
                .upstream_certificate_verify
                .unwrap()
                .verification_mode,
            ""
        );
        let bare: AccelerationDomain =
            serde_json::from_value(json!({"DomainName": "b", "Certificate": null})).unwrap();
        assert_eq!(bare.certificate, None);
    }
}
