//! SSL Certificates (`ssl`, 2019-12-05): `UploadCertificate`, `DescribeCertificate`,
//! `DeleteCertificate`.

use serde::Deserialize;
use serde_json::{Value, json};

use edgeone_cert_operator::certs::{self, CertError};

use crate::error::{ApiError, ApiResult};
use crate::model::{Certificate, Millis, State, format_millis, random_alphanumeric};

pub const VERSION: &str = "2019-12-05";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UploadCertificateRequest {
    certificate_public_key: String,
    certificate_private_key: Option<String>,
    certificate_type: Option<String>,
    alias: Option<String>,
    project_id: Option<u64>,
    certificate_use: Option<String>,
    tags: Option<Value>,
    /// Defaults to true: the same certificate may be uploaded again under a new id.
    repeatable: Option<bool>,
    key_password: Option<String>,
}

fn parse_error(e: CertError) -> ApiError {
    ApiError::new(
        "FailedOperation.CertificateParseError",
        format!("The certificate could not be parsed: {e}"),
    )
}

pub fn upload_certificate(
    state: &mut State,
    uin: &str,
    req: UploadCertificateRequest,
    now: Millis,
) -> ApiResult<Value> {
    // Accepted for fidelity with the API; the emulator has no use for them.
    let _ = (&req.project_id, &req.certificate_use, &req.tags);
    let cert_type = req.certificate_type.as_deref().unwrap_or("SVR");
    if !matches!(cert_type, "SVR" | "CA") {
        return Err(ApiError::invalid(format!(
            "CertificateType `{cert_type}` is invalid; use SVR or CA."
        )));
    }
    if req.key_password.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::new(
            "FailedOperation.CertificateParseError",
            "Encrypted private keys are not supported by the emulator.",
        ));
    }
    let chain = certs::parse_chain(req.certificate_public_key.as_bytes()).map_err(parse_error)?;
    let leaf = &chain[0];
    match cert_type {
        "CA" if !leaf.is_ca => {
            return Err(ApiError::new(
                "FailedOperation.CertificateCaError",
                "The uploaded content is not a CA certificate; check the certificate type.",
            ));
        }
        "SVR" => {
            let key = req
                .certificate_private_key
                .as_deref()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| ApiError::missing("CertificatePrivateKey"))?;
            certs::check_private_key(leaf, key.as_bytes()).map_err(|e| match e {
                CertError::KeyMismatch => ApiError::new(
                    "FailedOperation.CertificateMismatch",
                    "The certificate and the private key do not match.",
                ),
                other => parse_error(other),
            })?;
        }
        _ => {}
    }
    let fingerprint = leaf.fingerprint_sha256.clone();
    if req.repeatable == Some(false)
        && let Some(existing) = state.certificates.values().find(|c| {
            c.uin == uin
                && c.cert_type == cert_type
                && c.fingerprint.as_deref() == Some(fingerprint.as_str())
        })
    {
        // The real API leaves CertificateId empty and names the existing certificate here.
        return Ok(json!({ "CertificateId": "", "RepeatCertId": existing.cert_id }));
    }
    let cert_id = loop {
        let id = random_alphanumeric(8);
        if !state.certificates.contains_key(&id) {
            break id;
        }
    };
    state.certificates.insert(
        cert_id.clone(),
        Certificate {
            cert_id: cert_id.clone(),
            uin: uin.to_owned(),
            cert_type: cert_type.to_owned(),
            alias: req.alias.unwrap_or_default(),
            domains: leaf.names(),
            not_before: leaf.not_before * 1000,
            not_after: leaf.not_after * 1000,
            key_algorithm: leaf.key.algorithm.clone(),
            key_bits: leaf.key.bits,
            sign_algo: leaf.sign_algo.clone(),
            fingerprint: Some(fingerprint),
            inserted_at: now,
        },
    );
    Ok(json!({ "CertificateId": cert_id, "RepeatCertId": "" }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeCertificateRequest {
    certificate_id: String,
}

fn caller_certificate<'a>(
    state: &'a State,
    uin: &str,
    cert_id: &str,
) -> ApiResult<&'a Certificate> {
    state.owned_certificate(uin, cert_id).ok_or_else(|| {
        ApiError::new(
            "FailedOperation.CertificateNotFound",
            format!("The certificate `{cert_id}` does not exist."),
        )
    })
}

/// `YYYY-MM-DD HH:MM:SS` in GMT+8, the way the SSL service writes times.
fn ssl_time(millis: Millis) -> String {
    format_millis(millis + 8 * 3600 * 1000, "%Y-%m-%d %H:%M:%S")
}

pub fn describe_certificate(
    state: &State,
    uin: &str,
    req: DescribeCertificateRequest,
    now: Millis,
) -> ApiResult<Value> {
    let cert = caller_certificate(state, uin, &req.certificate_id)?;
    let expired = cert.not_after <= now;
    Ok(json!({
        "OwnerUin": cert.uin,
        "ProjectId": "0",
        "From": "upload",
        "CertificateType": cert.cert_type,
        "Domain": cert.domains.first(),
        "Alias": cert.alias,
        "Status": if expired { 3 } else { 1 },
        "StatusName": if expired { "Expired" } else { "Issued" },
        "CertBeginTime": ssl_time(cert.not_before),
        "CertEndTime": ssl_time(cert.not_after),
        "InsertTime": ssl_time(cert.inserted_at),
        "CertificateId": cert.cert_id,
        "SubjectAltName": cert.domains,
        "IsWildcard": cert.domains.iter().any(|d| d.starts_with("*.")),
        "Deployable": !expired,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCertificatesRequest {
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
    /// Matches a substring of the certificate id, alias or domain.
    #[serde(default)]
    search_key: Option<String>,
    /// `SVR` or `CA`.
    #[serde(default)]
    certificate_type: Option<String>,
}

/// The most `DescribeCertificates` returns per page (the API's maximum `Limit`).
pub const DESCRIBE_CERTIFICATES_MAX_LIMIT: u64 = 1000;

/// `DescribeCertificates`: the caller's certificates, oldest first, filtered and paged.
pub fn describe_certificates(
    state: &State,
    uin: &str,
    req: DescribeCertificatesRequest,
    now: Millis,
) -> ApiResult<Value> {
    let limit = req.limit.unwrap_or(20);
    if limit == 0 || limit > DESCRIBE_CERTIFICATES_MAX_LIMIT {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("Limit must be between 1 and {DESCRIBE_CERTIFICATES_MAX_LIMIT}."),
        ));
    }
    let mut matching: Vec<&crate::model::Certificate> = state
        .certificates
        .values()
        .filter(|c| c.uin == uin)
        .filter(|c| {
            req.certificate_type
                .as_ref()
                .is_none_or(|t| &c.cert_type == t)
        })
        .filter(|c| {
            req.search_key.as_ref().is_none_or(|key| {
                c.cert_id.contains(key.as_str())
                    || c.alias.contains(key.as_str())
                    || c.domains.iter().any(|d| d.contains(key.as_str()))
            })
        })
        .collect();
    matching.sort_by(|a, b| (a.inserted_at, &a.cert_id).cmp(&(b.inserted_at, &b.cert_id)));
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(req.offset.unwrap_or(0) as usize)
        .take(limit as usize)
        .map(|cert| {
            let expired = cert.not_after <= now;
            json!({
                "CertificateId": cert.cert_id,
                "Alias": cert.alias,
                "CertificateType": cert.cert_type,
                "Domain": cert.domains.first(),
                "Status": if expired { 3 } else { 1 },
                "CertBeginTime": ssl_time(cert.not_before),
                "CertEndTime": ssl_time(cert.not_after),
                "InsertTime": ssl_time(cert.inserted_at),
                "SubjectAltName": cert.domains,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "Certificates": page }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteCertificateRequest {
    certificate_id: String,
    is_check_resource: Option<bool>,
}

pub fn delete_certificate(
    state: &mut State,
    uin: &str,
    req: DeleteCertificateRequest,
) -> ApiResult<Value> {
    let _ = req.is_check_resource;
    caller_certificate(state, uin, &req.certificate_id)?;
    if state.certificate_in_use(&req.certificate_id) {
        return Err(ApiError::new(
            "FailedOperation.DeleteResourceFailed",
            format!(
                "The certificate `{}` is bound to cloud resources and cannot be deleted.",
                req.certificate_id
            ),
        ));
    }
    state.certificates.remove(&req.certificate_id);
    Ok(json!({ "DeleteResult": true }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostCertConfig;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn pem(names: &[&str], ca: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn upload(state: &mut State, body: Value) -> ApiResult<Value> {
        let req: UploadCertificateRequest =
            serde_json::from_value(body).map_err(|e| ApiError::from_body_error(&e))?;
        upload_certificate(state, "100", req, 0)
    }

    #[test]
    fn upload_describe_delete() {
        let mut s = State::default();
        let (cert, key) = pem(&["a.example.com"], false);
        let out = upload(
            &mut s,
            json!({"CertificatePublicKey": cert, "CertificatePrivateKey": key, "Alias": "x"}),
        )
        .unwrap();
        let id = out["CertificateId"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 8);
        let described = describe_certificate(
            &s,
            "100",
            serde_json::from_value(json!({"CertificateId": id})).unwrap(),
            0,
        )
        .unwrap();
        assert_eq!(described["SubjectAltName"], json!(["a.example.com"]));
        assert_eq!(described["CertificateType"], "SVR");
        assert_eq!(
            describe_certificate(
                &s,
                "999",
                serde_json::from_value(json!({"CertificateId": id})).unwrap(),
                0
            )
            .unwrap_err()
            .code,
            "FailedOperation.CertificateNotFound"
        );
        delete_certificate(
            &mut s,
            "100",
            serde_json::from_value(json!({"CertificateId": id})).unwrap(),
        )
        .unwrap();
        assert!(s.certificates.is_empty());
    }

    #[test]
    fn repeatable_false_returns_the_existing_id() {
        let mut s = State::default();
        let (cert, key) = pem(&["a.example.com"], false);
        let body = json!({"CertificatePublicKey": cert, "CertificatePrivateKey": key, "Repeatable": false});
        let first = upload(&mut s, body.clone()).unwrap();
        let second = upload(&mut s, body).unwrap();
        assert_eq!(second["CertificateId"], "");
        assert_eq!(second["RepeatCertId"], first["CertificateId"]);
        let third = upload(
            &mut s,
            json!({"CertificatePublicKey": cert, "CertificatePrivateKey": key}),
        )
        .unwrap();
        assert_ne!(
            third["CertificateId"], first["CertificateId"],
            "Repeatable defaults to true"
        );
        assert_eq!(s.certificates.len(), 2);
    }

    #[test]
    fn upload_errors() {
        let mut s = State::default();
        let (cert, key) = pem(&["a.example.com"], false);
        let (ca, _) = pem(&["ca"], true);
        let (_, other_key) = pem(&["a.example.com"], false);
        let code = |s: &mut State, body: Value| upload(s, body).unwrap_err().code;
        assert_eq!(
            code(
                &mut s,
                json!({"CertificatePublicKey": "garbage", "CertificatePrivateKey": key})
            ),
            "FailedOperation.CertificateParseError"
        );
        assert_eq!(
            code(&mut s, json!({"CertificatePublicKey": cert})),
            "MissingParameter"
        );
        assert_eq!(
            code(
                &mut s,
                json!({"CertificatePublicKey": cert, "CertificatePrivateKey": other_key})
            ),
            "FailedOperation.CertificateMismatch"
        );
        assert_eq!(
            code(
                &mut s,
                json!({"CertificatePublicKey": cert, "CertificateType": "CA"})
            ),
            "FailedOperation.CertificateCaError"
        );
        assert_eq!(
            code(
                &mut s,
                json!({"CertificatePublicKey": cert, "CertificateType": "XX"})
            ),
            "InvalidParameter"
        );
        assert!(
            upload(
                &mut s,
                json!({"CertificatePublicKey": ca, "CertificateType": "CA"})
            )
            .is_ok()
        );
    }

    #[test]
    fn certificates_in_use_are_not_deleted() {
        let mut s = State::default();
        let (cert, key) = pem(&["a.example.com"], false);
        let id = upload(
            &mut s,
            json!({"CertificatePublicKey": cert, "CertificatePrivateKey": key}),
        )
        .unwrap()["CertificateId"]
            .as_str()
            .unwrap()
            .to_owned();
        s.domains.insert(
            ("z".into(), "a.example.com".into()),
            crate::model::Domain {
                zone_id: "z".into(),
                name: "a.example.com".into(),
                config: HostCertConfig {
                    mode: "sslcert".into(),
                    server_cert_ids: vec![id.clone()],
                    ..HostCertConfig::default()
                },
                created_on: 0,
                modified_on: 0,
                fail_deploy: false,
            },
        );
        let err = delete_certificate(
            &mut s,
            "100",
            serde_json::from_value(json!({"CertificateId": id})).unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.code, "FailedOperation.DeleteResourceFailed");
    }

    #[test]
    fn describe_certificates_searches_aliases_and_pages() {
        let mut s = State::default();
        let mut ids = Vec::new();
        for alias in [
            "k8s/a/web/000000000001",
            "k8s/a/web/000000000002",
            "k8s/b/web/000000000003",
            "other",
        ] {
            let (cert, key) = pem(&["a.example.com"], false);
            let out = upload(
                &mut s,
                json!({"CertificatePublicKey": cert, "CertificatePrivateKey": key, "Alias": alias}),
            )
            .unwrap();
            ids.push(out["CertificateId"].as_str().unwrap().to_owned());
        }
        let list = |body: Value, uin: &str| {
            describe_certificates(&s, uin, serde_json::from_value(body).unwrap(), 0)
        };
        let out = list(json!({"SearchKey": "k8s/a/web/", "Limit": 1000}), "100").unwrap();
        assert_eq!(out["TotalCount"], 2);
        let found: Vec<&str> = out["Certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["CertificateId"].as_str().unwrap())
            .collect();
        let mut expected = vec![ids[0].as_str(), ids[1].as_str()];
        expected.sort();
        let mut found_sorted = found.clone();
        found_sorted.sort();
        assert_eq!(found_sorted, expected);
        let page = list(json!({"Offset": 3, "Limit": 2}), "100").unwrap();
        assert_eq!(page["TotalCount"], 4);
        assert_eq!(page["Certificates"].as_array().unwrap().len(), 1);
        assert_eq!(
            list(json!({}), "200").unwrap()["TotalCount"],
            0,
            "another account's"
        );
        assert_eq!(
            list(json!({"Limit": 1001}), "100").unwrap_err().code,
            "InvalidParameter"
        );
    }
}
