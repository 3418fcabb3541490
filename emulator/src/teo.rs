//! EdgeOne (`teo`, 2022-09-01): `ModifyHostsCertificate` and `DescribeAccelerationDomains`.

use serde::Deserialize;
use serde_json::{Value, json};

use edgeone_cert_operator::certs::name_covers;

use crate::error::{ApiError, ApiResult};
use crate::model::{Certificate, Domain, HostCertConfig, Millis, MutualTls, State, Zone, rfc3339};

pub const VERSION: &str = "2022-09-01";
const MODES: [&str; 4] = ["disable", "eofreecert", "eofreecert_manual", "sslcert"];
const MAX_PAGE: i64 = 200;
const MAX_FILTER_VALUES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ModifyHostsCertificateRequest {
    zone_id: String,
    hosts: Vec<String>,
    mode: Option<String>,
    server_cert_info: Option<Vec<CertRef>>,
    apply_type: Option<String>,
    client_cert_info: Option<MutualTlsInput>,
    upstream_cert_info: Option<UpstreamCertInfoInput>,
}

/// Output-only fields of `ServerCertInfo`/`CertificateInfo` are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CertRef {
    cert_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MutualTlsInput {
    switch: String,
    cert_infos: Option<Vec<CertRef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamCertInfoInput {
    #[serde(rename = "UpstreamMutualTLS")]
    upstream_mutual_tls: Option<MutualTlsInput>,
    #[serde(rename = "UpstreamCertificateVerify")]
    upstream_certificate_verify: Option<OriginCertificateVerifyInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginCertificateVerifyInput {
    verification_mode: String,
    #[serde(rename = "CustomCACerts")]
    custom_ca_certs: Option<Vec<CertRef>>,
}

/// The zone, owned by the caller and not paused.
fn caller_zone<'a>(state: &'a State, uin: &str, zone_id: &str) -> ApiResult<&'a Zone> {
    let zone = state
        .zones
        .get(zone_id)
        .filter(|zone| zone.uin == uin)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceUnavailable.ZoneNotFound",
                format!("The site `{zone_id}` does not exist or does not belong to this account."),
            )
        })?;
    if zone.status == "paused" {
        return Err(ApiError::new(
            "OperationDenied.ErrZoneIsAlreadyPaused",
            "The EdgeOne service of the site is disabled. Please enable it and try again.",
        ));
    }
    Ok(zone)
}

/// Looks up certificates the caller owns, checking each with `check`.
fn caller_certs<'a>(
    state: &'a State,
    uin: &str,
    refs: &[CertRef],
    now: Millis,
    check: impl Fn(&Certificate, bool) -> ApiResult<()>,
) -> ApiResult<Vec<&'a Certificate>> {
    refs.iter()
        .map(|r| {
            let cert = state.owned_certificate(uin, &r.cert_id).ok_or_else(|| {
                ApiError::new(
                    "ResourceUnavailable.CertNotFound",
                    format!(
                        "The certificate `{}` does not exist or is not authorized.",
                        r.cert_id
                    ),
                )
            })?;
            check(cert, cert.not_after <= now)?;
            Ok(cert)
        })
        .collect()
}

fn too_short(cert: &Certificate) -> bool {
    match cert.key_algorithm.as_str() {
        "EC" | "ECC" => cert.key_bits < 225,
        _ => cert.key_bits < 2048,
    }
}

fn switch(value: &str) -> ApiResult<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(ApiError::invalid(format!(
            "Switch `{other}` is invalid; use on or off."
        ))),
    }
}

fn ids(certs: &[&Certificate]) -> Vec<String> {
    certs.iter().map(|c| c.cert_id.clone()).collect()
}

/// Validates the request against the state and returns the configuration each host
/// gets; nothing is changed until every check passed.
fn plan_modify(
    state: &State,
    uin: &str,
    req: &ModifyHostsCertificateRequest,
    now: Millis,
) -> ApiResult<Vec<((String, String), HostCertConfig)>> {
    if req.zone_id.is_empty() {
        return Err(ApiError::missing("ZoneId"));
    }
    if req.hosts.is_empty() {
        return Err(ApiError::missing("Hosts"));
    }
    let zone = caller_zone(state, uin, &req.zone_id)?;
    let mut keys = Vec::with_capacity(req.hosts.len());
    for host in &req.hosts {
        let key = (zone.zone_id.clone(), host.to_ascii_lowercase());
        if !state.domains.contains_key(&key) {
            return Err(ApiError::new(
                "ResourceUnavailable.HostNotFound",
                format!("The domain name `{host}` does not exist or is not using a proxy."),
            ));
        }
        keys.push(key);
    }
    if let Some(apply_type) = &req.apply_type
        && !matches!(apply_type.as_str(), "none" | "apply")
    {
        return Err(ApiError::invalid(format!(
            "ApplyType `{apply_type}` is invalid; use none or apply."
        )));
    }

    let mode = req.mode.as_deref();
    if let Some(mode) = mode
        && !MODES.contains(&mode)
    {
        return Err(ApiError::invalid(format!(
            "Mode `{mode}` is invalid; valid values: {}.",
            MODES.join(", ")
        )));
    }
    let server_certs = if mode == Some("sslcert") {
        let refs = req.server_cert_info.as_deref().unwrap_or_default();
        if refs.is_empty() {
            return Err(ApiError::new(
                "InvalidParameter.InvalidCertInfo",
                "ServerCertInfo is required when Mode is sslcert.",
            ));
        }
        let certs = caller_certs(state, uin, refs, now, |cert, expired| {
            if cert.cert_type != "SVR" {
                Err(ApiError::new(
                    "InvalidParameter.InvalidCertInfo",
                    format!(
                        "The certificate `{}` is a CA certificate, not a server certificate.",
                        cert.cert_id
                    ),
                ))
            } else if expired {
                Err(ApiError::new(
                    "FailedOperation.CertificateHasExpired",
                    format!("The certificate `{}` has expired.", cert.cert_id),
                ))
            } else if too_short(cert) {
                Err(ApiError::new(
                    "InvalidParameter.CertTooShortKeySize",
                    "Invalid edge HTTPS certificate configuration. The key length does not meet the minimum requirement RSA>=2048, DSA>=2048, DH>=2048, and EC>=225.",
                ))
            } else {
                Ok(())
            }
        })?;
        if let Some(host) = req.hosts.iter().find(|h| {
            !certs
                .iter()
                .any(|c| c.domains.iter().any(|n| name_covers(n, h)))
        }) {
            return Err(ApiError::new(
                "InvalidParameter.CertNotMatchDomain",
                format!(
                    "Invalid edge HTTPS certificate configuration. The certificate does not match the domain name `{host}`."
                ),
            ));
        }
        Some(ids(&certs))
    } else {
        None
    };
    if mode == Some("eofreecert")
        && zone.access_type == "partial"
        && req.hosts.iter().any(|h| h.starts_with("*."))
    {
        return Err(ApiError::new(
            "InvalidParameter.CnameWildHostNotAllowApplyCertificate",
            "Unable to apply for a wildcard certificate under CNAME mode.",
        ));
    }

    let client_mtls = match &req.client_cert_info {
        None => None,
        Some(input) => Some(mutual_tls(
            state,
            uin,
            input,
            now,
            MutualTlsKind::EdgeClientCa,
        )?),
    };
    let (upstream_mtls, upstream_verify) = match &req.upstream_cert_info {
        None => (None, None),
        Some(input) => {
            let mtls = match &input.upstream_mutual_tls {
                None => None,
                Some(m) => Some(mutual_tls(
                    state,
                    uin,
                    m,
                    now,
                    MutualTlsKind::UpstreamClient,
                )?),
            };
            let verify = match &input.upstream_certificate_verify {
                None => None,
                Some(v) => Some(origin_verify(state, uin, v, now)?),
            };
            (mtls, verify)
        }
    };

    Ok(keys
        .into_iter()
        .map(|key| {
            let mut config = state.domains[&key].config.clone();
            if let Some(mode) = mode {
                config.mode = mode.to_owned();
                config.server_cert_ids = server_certs.clone().unwrap_or_default();
            }
            if let Some(m) = &client_mtls {
                config.client_mtls = m.clone();
            }
            if let Some(m) = &upstream_mtls {
                config.upstream_mtls = m.clone();
            }
            if let Some((verify_mode, ca_ids)) = &upstream_verify {
                config.upstream_verify_mode = verify_mode.clone();
                config.upstream_ca_ids = ca_ids.clone();
            }
            (key, config)
        })
        .collect())
}

#[derive(Clone, Copy)]
enum MutualTlsKind {
    /// CA certificates that edge nodes verify client certificates with.
    EdgeClientCa,
    /// The client certificate (with key) that edge nodes present to the origin.
    UpstreamClient,
}

fn mutual_tls(
    state: &State,
    uin: &str,
    input: &MutualTlsInput,
    now: Millis,
    kind: MutualTlsKind,
) -> ApiResult<MutualTls> {
    let enabled = switch(&input.switch)?;
    let refs = input.cert_infos.as_deref().unwrap_or_default();
    if !enabled {
        return Ok(MutualTls::default());
    }
    if refs.is_empty() {
        return Err(match kind {
            MutualTlsKind::EdgeClientCa => ApiError::new(
                "InvalidParameterValue.CertificateVerifyClientNeedCert",
                "Edge mTLS is on but CertInfos names no CA certificate.",
            ),
            MutualTlsKind::UpstreamClient => ApiError::new(
                "InvalidParameterValue.CertificateVerifyUpstreamClientNeedCert",
                "Upstream mTLS is on but CertInfos names no client certificate.",
            ),
        });
    }
    let certs = caller_certs(state, uin, refs, now, |cert, expired| match kind {
        MutualTlsKind::EdgeClientCa if cert.cert_type != "CA" => Err(ApiError::new(
            "InvalidParameterValue.CertificateVerifyClientMustCa",
            format!(
                "The certificate `{}` is not a CA certificate; edge mTLS needs CA certificates.",
                cert.cert_id
            ),
        )),
        MutualTlsKind::EdgeClientCa if expired => Err(ApiError::new(
            "FailedOperation.EdgeClientCertificateHasExpired",
            format!("The CA certificate `{}` has expired.", cert.cert_id),
        )),
        MutualTlsKind::UpstreamClient if cert.cert_type != "SVR" => Err(ApiError::new(
            "InvalidParameterValue.CertificateVerifyUpstreamClientMustSVR",
            format!(
                "The certificate `{}` is not a server (SVR) certificate with a key; upstream mTLS needs one.",
                cert.cert_id
            ),
        )),
        MutualTlsKind::UpstreamClient if expired => Err(ApiError::new(
            "FailedOperation.UpstreamClientCertificateHasExpired",
            format!("The certificate `{}` has expired.", cert.cert_id),
        )),
        _ => Ok(()),
    })?;
    Ok(MutualTls {
        enabled: true,
        cert_ids: ids(&certs),
    })
}

fn origin_verify(
    state: &State,
    uin: &str,
    input: &OriginCertificateVerifyInput,
    now: Millis,
) -> ApiResult<(String, Vec<String>)> {
    match input.verification_mode.as_str() {
        "disable" => Ok(("disable".into(), Vec::new())),
        "custom_ca" => {
            let refs = input.custom_ca_certs.as_deref().unwrap_or_default();
            if refs.is_empty() {
                return Err(ApiError::missing(
                    "UpstreamCertInfo.UpstreamCertificateVerify.CustomCACerts",
                ));
            }
            let certs = caller_certs(state, uin, refs, now, |cert, _| {
                if cert.cert_type == "CA" {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        "InvalidParameterValue.CertificateVerifyClientMustCa",
                        format!(
                            "The certificate `{}` is not a CA certificate.",
                            cert.cert_id
                        ),
                    ))
                }
            })?;
            Ok(("custom_ca".into(), ids(&certs)))
        }
        other => Err(ApiError::invalid(format!(
            "VerificationMode `{other}` is invalid; use disable or custom_ca."
        ))),
    }
}

pub fn modify_hosts_certificate(
    state: &mut State,
    uin: &str,
    req: ModifyHostsCertificateRequest,
    now: Millis,
) -> ApiResult<Value> {
    for (key, config) in plan_modify(state, uin, &req, now)? {
        if let Some(domain) = state.domains.get_mut(&key)
            && domain.config != config
        {
            domain.config = config;
            domain.modified_on = now;
        }
    }
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeAccelerationDomainsRequest {
    zone_id: String,
    offset: Option<i64>,
    limit: Option<i64>,
    filters: Option<Vec<AdvancedFilter>>,
    order: Option<String>,
    direction: Option<String>,
    #[serde(rename = "Match")]
    match_: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdvancedFilter {
    name: String,
    values: Vec<String>,
    fuzzy: Option<bool>,
}

impl AdvancedFilter {
    fn matches(&self, domain: &Domain) -> bool {
        let name = domain.name.as_str();
        self.values.iter().any(|v| {
            let v = v.to_ascii_lowercase();
            if self.fuzzy == Some(true) {
                name.contains(&v)
            } else {
                name == v
            }
        })
    }
}

pub fn describe_acceleration_domains(
    state: &State,
    uin: &str,
    req: DescribeAccelerationDomainsRequest,
    now: Millis,
) -> ApiResult<Value> {
    let zone = caller_zone(state, uin, &req.zone_id)?;
    let offset = req.offset.unwrap_or(0);
    let limit = req.limit.unwrap_or(20);
    if offset < 0 {
        return Err(ApiError::invalid("Offset must not be negative."));
    }
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "Limit must be between 1 and {MAX_PAGE}."
        )));
    }
    let filters = req.filters.unwrap_or_default();
    for filter in &filters {
        if filter.name != "domain-name" {
            return Err(ApiError::invalid(format!(
                "Filter `{}` is not supported by the emulator; use domain-name.",
                filter.name
            )));
        }
        if filter.values.len() > MAX_FILTER_VALUES {
            return Err(ApiError::invalid(format!(
                "Filters.Values takes at most {MAX_FILTER_VALUES} values."
            )));
        }
    }
    let match_any = match req.match_.as_deref() {
        None | Some("all") => false,
        Some("any") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Match `{other}` is invalid; use all or any."
            )));
        }
    };
    let mut domains: Vec<&Domain> = state
        .domains
        .values()
        .filter(|d| d.zone_id == zone.zone_id)
        .filter(|d| {
            filters.is_empty()
                || if match_any {
                    filters.iter().any(|f| f.matches(d))
                } else {
                    filters.iter().all(|f| f.matches(d))
                }
        })
        .collect();
    match req.order.as_deref() {
        None | Some("domain-name") => domains.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("created_on") => domains.sort_by_key(|d| (d.created_on, d.name.clone())),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Order `{other}` is invalid; use created_on or domain-name."
            )));
        }
    }
    match req.direction.as_deref() {
        None | Some("asc") => {}
        Some("desc") => domains.reverse(),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Direction `{other}` is invalid; use asc or desc."
            )));
        }
    }
    let total = domains.len();
    let page: Vec<Value> = domains
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|d| domain_json(state, d, now))
        .collect();
    Ok(json!({ "TotalCount": total, "AccelerationDomains": page }))
}

/// Deployment status of a host's certificates, derived from when it last changed.
fn deploy_status(state: &State, domain: &Domain, now: Millis, pending: &str) -> &'static str {
    if now - domain.modified_on < state.settings.deploy_delay_ms as Millis {
        if pending == "applying" {
            "applying"
        } else {
            "processing"
        }
    } else if domain.fail_deploy {
        "failed"
    } else {
        "deployed"
    }
}

fn cert_json(state: &State, cert_id: &str, domain: &Domain, status: &str) -> Value {
    let cert = state.certificates.get(cert_id);
    json!({
        "CertId": cert_id,
        "Alias": cert.map(|c| c.alias.as_str()).unwrap_or_default(),
        "Type": "upload",
        "ExpireTime": cert.map(|c| rfc3339(c.not_after)),
        "DeployTime": rfc3339(domain.modified_on),
        "SignAlgo": cert.map(|c| c.sign_algo.as_str()),
        "Status": status,
    })
}

fn mutual_tls_json(state: &State, m: &MutualTls, domain: &Domain, status: &str) -> Value {
    json!({
        "Switch": if m.enabled { "on" } else { "off" },
        "CertInfos": m.cert_ids.iter().map(|id| cert_json(state, id, domain, status)).collect::<Vec<_>>(),
    })
}

fn domain_json(state: &State, domain: &Domain, now: Millis) -> Value {
    let config = &domain.config;
    let status = deploy_status(state, domain, now, "processing");
    let list: Option<Vec<Value>> = match config.mode.as_str() {
        "sslcert" => Some(
            config
                .server_cert_ids
                .iter()
                .map(|id| cert_json(state, id, domain, status))
                .collect(),
        ),
        "eofreecert" | "eofreecert_manual" => Some(vec![json!({
            "CertId": format!("teo-free-{}", domain.name.replace('*', "wildcard")),
            "Alias": "EdgeOne free certificate",
            "Type": "managed",
            "ExpireTime": rfc3339(domain.modified_on + 90 * 24 * 3600 * 1000),
            "DeployTime": rfc3339(domain.modified_on),
            "SignAlgo": "RSA 2048",
            "Status": deploy_status(state, domain, now, "applying"),
        })]),
        // EdgeOne returns no list when no server certificate is configured.
        _ => None,
    };
    json!({
        "ZoneId": domain.zone_id,
        "DomainName": domain.name,
        "DomainStatus": "online",
        "Cname": format!("{}.eo.dnse1.com", domain.name.replace('*', "_")),
        "IdentificationStatus": "finished",
        "OriginProtocol": "FOLLOW",
        "HttpOriginPort": 80,
        "HttpsOriginPort": 443,
        "Certificate": {
            "Mode": config.mode,
            "List": list,
            "ClientCertInfo": mutual_tls_json(state, &config.client_mtls, domain, status),
            "UpstreamCertInfo": {
                "UpstreamMutualTLS": mutual_tls_json(state, &config.upstream_mtls, domain, status),
                "UpstreamCertificateVerify": {
                    "VerificationMode": config.upstream_verify_mode,
                    "CustomCACerts": config.upstream_ca_ids.iter().map(|id| cert_json(state, id, domain, status)).collect::<Vec<_>>(),
                },
            },
        },
        "CreatedOn": rfc3339(domain.created_on),
        "ModifiedOn": rfc3339(domain.modified_on),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Seed;

    const NOW: Millis = 1_700_000_000_000;

    fn state() -> State {
        let seed: Seed = serde_json::from_value(json!({
            "zones": [
                {"zoneId": "zone-1", "uin": "100", "name": "test.com", "hosts": ["abc.test.com", "www.test.com", "*.test.com"]},
                {"zoneId": "zone-cname", "uin": "100", "name": "c.com", "accessType": "partial", "hosts": ["*.c.com"]},
                {"zoneId": "zone-other", "uin": "999", "name": "o.com", "hosts": ["o.com"]}
            ],
            "certificates": [
                {"certId": "svr", "uin": "100", "domains": ["abc.test.com", "*.test.com"]},
                {"certId": "narrow", "uin": "100", "domains": ["abc.test.com"]},
                {"certId": "ca", "uin": "100", "type": "CA", "domains": ["ca"]},
                {"certId": "short", "uin": "100", "domains": ["abc.test.com"], "keyBits": 1024},
                {"certId": "old", "uin": "100", "domains": ["abc.test.com"], "notAfter": "2020-01-01T00:00:00Z"},
                {"certId": "foreign", "uin": "999", "domains": ["abc.test.com"]}
            ],
            "settings": {"deployDelayMs": 1000}
        }))
        .unwrap();
        State::from_seed(&seed).unwrap()
    }

    fn modify(state: &mut State, body: Value) -> ApiResult<Value> {
        let req: ModifyHostsCertificateRequest =
            serde_json::from_value(body).map_err(|e| ApiError::from_body_error(&e))?;
        modify_hosts_certificate(state, "100", req, NOW)
    }

    fn describe(state: &State, body: Value, now: Millis) -> Value {
        let req: DescribeAccelerationDomainsRequest = serde_json::from_value(body).unwrap();
        describe_acceleration_domains(state, "100", req, now).unwrap()
    }

    fn error_code(state: &mut State, body: Value) -> String {
        modify(state, body).unwrap_err().code
    }

    #[test]
    fn sslcert_is_processing_then_deployed() {
        let mut s = state();
        modify(&mut s, json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "svr"}]})).unwrap();
        let filter = json!({"ZoneId": "zone-1", "Filters": [{"Name": "domain-name", "Values": ["abc.test.com"]}]});
        let early = describe(&s, filter.clone(), NOW + 10);
        assert_eq!(early["TotalCount"], 1);
        let cert = &early["AccelerationDomains"][0]["Certificate"];
        assert_eq!(cert["Mode"], "sslcert");
        assert_eq!(cert["List"][0]["CertId"], "svr");
        assert_eq!(cert["List"][0]["Status"], "processing");
        let later = describe(&s, filter, NOW + 1000);
        assert_eq!(
            later["AccelerationDomains"][0]["Certificate"]["List"][0]["Status"],
            "deployed"
        );
    }

    #[test]
    fn omitted_parts_keep_their_configuration() {
        let mut s = state();
        modify(&mut s, json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "svr"}]})).unwrap();
        modify(&mut s, json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "ClientCertInfo": {"Switch": "on", "CertInfos": [{"CertId": "ca"}]}})).unwrap();
        let config = &s.domains[&("zone-1".into(), "abc.test.com".into())].config;
        assert_eq!(config.mode, "sslcert");
        assert_eq!(config.server_cert_ids, ["svr"]);
        assert_eq!(
            config.client_mtls,
            MutualTls {
                enabled: true,
                cert_ids: vec!["ca".into()]
            }
        );
    }

    #[test]
    fn documented_errors() {
        let mut s = state();
        let ssl = |hosts: Value, cert: &str| json!({"ZoneId": "zone-1", "Hosts": hosts, "Mode": "sslcert", "ServerCertInfo": [{"CertId": cert}]});
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-x", "Hosts": ["a"], "Mode": "eofreecert"})
            ),
            "ResourceUnavailable.ZoneNotFound"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-other", "Hosts": ["o.com"], "Mode": "eofreecert"})
            ),
            "ResourceUnavailable.ZoneNotFound"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["nope.test.com"], "Mode": "eofreecert"})
            ),
            "ResourceUnavailable.HostNotFound"
        );
        assert_eq!(
            error_code(&mut s, ssl(json!(["abc.test.com"]), "missing")),
            "ResourceUnavailable.CertNotFound"
        );
        assert_eq!(
            error_code(&mut s, ssl(json!(["abc.test.com"]), "foreign")),
            "ResourceUnavailable.CertNotFound"
        );
        assert_eq!(
            error_code(
                &mut s,
                ssl(json!(["abc.test.com", "www.test.com"]), "narrow")
            ),
            "InvalidParameter.CertNotMatchDomain"
        );
        assert_eq!(
            error_code(&mut s, ssl(json!(["abc.test.com"]), "old")),
            "FailedOperation.CertificateHasExpired"
        );
        assert_eq!(
            error_code(&mut s, ssl(json!(["abc.test.com"]), "short")),
            "InvalidParameter.CertTooShortKeySize"
        );
        assert_eq!(
            error_code(&mut s, ssl(json!(["abc.test.com"]), "ca")),
            "InvalidParameter.InvalidCertInfo"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Mode": "sslcert"})
            ),
            "InvalidParameter.InvalidCertInfo"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Mode": "custom"})
            ),
            "InvalidParameter"
        );
        assert_eq!(
            error_code(&mut s, json!({"ZoneId": "zone-1", "Mode": "disable"})),
            "MissingParameter"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": [], "Mode": "disable"})
            ),
            "MissingParameter"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "ClientCertInfo": {"Switch": "on", "CertInfos": [{"CertId": "svr"}]}})
            ),
            "InvalidParameterValue.CertificateVerifyClientMustCa"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "ClientCertInfo": {"Switch": "on"}})
            ),
            "InvalidParameterValue.CertificateVerifyClientNeedCert"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "UpstreamCertInfo": {"UpstreamMutualTLS": {"Switch": "on", "CertInfos": [{"CertId": "ca"}]}}})
            ),
            "InvalidParameterValue.CertificateVerifyUpstreamClientMustSVR"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-cname", "Hosts": ["*.c.com"], "Mode": "eofreecert"})
            ),
            "InvalidParameter.CnameWildHostNotAllowApplyCertificate"
        );
        assert_eq!(
            error_code(
                &mut s,
                json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Bogus": 1})
            ),
            "UnknownParameter"
        );
        // Nothing above changed any host.
        assert!(
            s.domains
                .values()
                .all(|d| d.config == HostCertConfig::default())
        );
    }

    #[test]
    fn wildcard_hosts_and_certificates() {
        let mut s = state();
        modify(&mut s, json!({"ZoneId": "zone-1", "Hosts": ["*.test.com", "abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "svr"}]})).unwrap();
        assert_eq!(
            s.domains[&("zone-1".into(), "*.test.com".into())]
                .config
                .mode,
            "sslcert"
        );
    }

    #[test]
    fn describe_pages_and_filters() {
        let s = state();
        let all = describe(&s, json!({"ZoneId": "zone-1", "Limit": 2}), NOW);
        assert_eq!(all["TotalCount"], 3);
        let names: Vec<_> = all["AccelerationDomains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["DomainName"].clone())
            .collect();
        assert_eq!(names, [json!("*.test.com"), json!("abc.test.com")]);
        let second = describe(
            &s,
            json!({"ZoneId": "zone-1", "Limit": 2, "Offset": 2}),
            NOW,
        );
        assert_eq!(
            second["AccelerationDomains"][0]["DomainName"],
            "www.test.com"
        );
        let fuzzy = describe(
            &s,
            json!({"ZoneId": "zone-1", "Filters": [{"Name": "domain-name", "Values": ["www"], "Fuzzy": true}]}),
            NOW,
        );
        assert_eq!(fuzzy["TotalCount"], 1);
        assert!(fuzzy["AccelerationDomains"][0]["Certificate"]["List"].is_null());
        let req: DescribeAccelerationDomainsRequest =
            serde_json::from_value(json!({"ZoneId": "zone-1", "Limit": 201})).unwrap();
        assert_eq!(
            describe_acceleration_domains(&s, "100", req, NOW)
                .unwrap_err()
                .code,
            "InvalidParameter"
        );
        let values: Vec<String> = (0..21).map(|i| format!("h{i}")).collect();
        let req: DescribeAccelerationDomainsRequest = serde_json::from_value(
            json!({"ZoneId": "zone-1", "Filters": [{"Name": "domain-name", "Values": values}]}),
        )
        .unwrap();
        assert_eq!(
            describe_acceleration_domains(&s, "100", req, NOW)
                .unwrap_err()
                .code,
            "InvalidParameter"
        );
    }

    #[test]
    fn failing_hosts_end_failed() {
        let mut s = state();
        s.domains
            .get_mut(&("zone-1".into(), "abc.test.com".into()))
            .unwrap()
            .fail_deploy = true;
        modify(&mut s, json!({"ZoneId": "zone-1", "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "svr"}]})).unwrap();
        let out = describe(
            &s,
            json!({"ZoneId": "zone-1", "Filters": [{"Name": "domain-name", "Values": ["abc.test.com"]}]}),
            NOW + 5000,
        );
        assert_eq!(
            out["AccelerationDomains"][0]["Certificate"]["List"][0]["Status"],
            "failed"
        );
    }
}
