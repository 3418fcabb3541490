//! SSL Certificates (`ssl`, 2019-12-05): `UploadCertificate`, `DescribeCertificate`,
//! `DeleteCertificate`. Private keys are sent, never logged or kept.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::credentials::Credentials;
use super::error::CallError;
use super::transport::{Service, Transport};

/// The body of `UploadCertificate`. Deliberately not `Debug`: it holds a private key.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UploadCertificateRequest<'a> {
    certificate_public_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_private_key: Option<&'a str>,
    certificate_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    /// Always false: the same certificate uploaded again returns the existing id.
    repeatable: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadCertificateResponse {
    #[serde(default)]
    certificate_id: Option<String>,
    #[serde(default)]
    repeat_cert_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CertificateIdRequest<'a> {
    certificate_id: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteCertificateResponse {
    #[serde(default)]
    delete_result: Option<bool>,
}

/// What `DescribeCertificate` says about a certificate: the fields the operator uses,
/// typed, and every other field as it came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateDetail {
    #[serde(default)]
    pub certificate_id: Option<String>,
    /// `SVR` or `CA`.
    #[serde(default)]
    pub certificate_type: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub subject_alt_name: Option<Vec<String>>,
    /// 1 issued, 3 expired, … (see the API documentation).
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub status_name: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, Beijing time.
    #[serde(default)]
    pub cert_begin_time: Option<String>,
    #[serde(default)]
    pub cert_end_time: Option<String>,
    #[serde(default)]
    pub insert_time: Option<String>,
    /// `upload`, `trustasia`, …
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub deployable: Option<bool>,
    #[serde(default)]
    pub is_wildcard: Option<bool>,
    #[serde(default)]
    pub cert_fingerprint: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One certificate of a `DescribeCertificates` page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateSummary {
    pub certificate_id: String,
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CertificatePage {
    total_count: u64,
    #[serde(default)]
    certificates: Option<Vec<CertificateSummary>>,
}

/// The SSL Certificates API.
#[derive(Debug, Clone)]
pub struct SslApi {
    transport: Arc<Transport>,
}

impl SslApi {
    pub fn new(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    /// Uploads a certificate (`cert_type` `SVR` with its private key, or `CA` without)
    /// and returns its id. With `Repeatable: false` a certificate that is already in the
    /// account is not stored again: its existing id (`RepeatCertId`) is returned, which
    /// makes uploads idempotent. An empty `alias` sends none.
    pub async fn upload_certificate(
        &self,
        creds: &Credentials,
        public_pem: &str,
        private_key_pem: Option<&str>,
        cert_type: &str,
        alias: &str,
    ) -> Result<String, CallError> {
        if !matches!(cert_type, "SVR" | "CA") {
            return Err(CallError::InvalidRequest {
                detail: format!("certificate type {cert_type:?} is neither SVR nor CA"),
            });
        }
        let request = UploadCertificateRequest {
            certificate_public_key: public_pem,
            certificate_private_key: private_key_pem,
            certificate_type: cert_type,
            alias: Some(alias).filter(|a| !a.is_empty()),
            repeatable: false,
        };
        let reply = self
            .transport
            .call::<_, UploadCertificateResponse>(
                Some(creds),
                Service::Ssl,
                "UploadCertificate",
                &request,
            )
            .await?;
        let non_empty = |id: Option<String>| id.filter(|id| !id.is_empty());
        non_empty(reply.body.repeat_cert_id)
            .or_else(|| non_empty(reply.body.certificate_id))
            .ok_or_else(|| CallError::InvalidResponse {
                status: 200,
                detail: format!(
                    "UploadCertificate answered with neither CertificateId nor RepeatCertId (RequestId {})",
                    reply.request_id
                ),
            })
    }

    pub async fn describe_certificate(
        &self,
        creds: &Credentials,
        cert_id: &str,
    ) -> Result<CertificateDetail, CallError> {
        let reply = self
            .transport
            .call::<_, CertificateDetail>(
                Some(creds),
                Service::Ssl,
                "DescribeCertificate",
                &CertificateIdRequest {
                    certificate_id: cert_id,
                },
            )
            .await?;
        Ok(reply.body)
    }

    /// The ids and aliases of the account's certificates whose id, alias or domain
    /// contains `search_key`, all pages.
    pub async fn describe_certificates(
        &self,
        creds: &Credentials,
        search_key: &str,
    ) -> Result<Vec<CertificateSummary>, CallError> {
        const LIMIT: u64 = 1000;
        let mut found = Vec::new();
        loop {
            let reply = self
                .transport
                .call::<_, CertificatePage>(
                    Some(creds),
                    Service::Ssl,
                    "DescribeCertificates",
                    &json!({"Offset": found.len(), "Limit": LIMIT, "SearchKey": search_key}),
                )
                .await?;
            let page = reply.body.certificates.unwrap_or_default();
            let done = page.len() < LIMIT as usize
                || found.len() + page.len() >= reply.body.total_count as usize;
            found.extend(page);
            if done {
                return Ok(found);
            }
        }
    }

    /// Deletes an uploaded certificate; `Ok(false)` when the API declined without an
    /// error code.
    pub async fn delete_certificate(
        &self,
        creds: &Credentials,
        cert_id: &str,
    ) -> Result<bool, CallError> {
        let reply = self
            .transport
            .call::<_, DeleteCertificateResponse>(
                Some(creds),
                Service::Ssl,
                "DeleteCertificate",
                &CertificateIdRequest {
                    certificate_id: cert_id,
                },
            )
            .await?;
        Ok(reply.body.delete_result.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn upload_request_shape() {
        let request = UploadCertificateRequest {
            certificate_public_key: "PEM",
            certificate_private_key: None,
            certificate_type: "CA",
            alias: None,
            repeatable: false,
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"CertificatePublicKey": "PEM", "CertificateType": "CA", "Repeatable": false})
        );
    }

    #[test]
    fn detail_keeps_unknown_fields() {
        let detail: CertificateDetail = serde_json::from_value(json!({
            "CertificateId": "abc", "Status": 1, "SubjectAltName": ["a.test.com"],
            "OwnerUin": "100", "Deployable": true, "Domain": null
        }))
        .unwrap();
        assert_eq!(detail.certificate_id.as_deref(), Some("abc"));
        assert_eq!(detail.status, Some(1));
        assert_eq!(detail.domain, None);
        assert_eq!(detail.other["OwnerUin"], "100");
    }
}
