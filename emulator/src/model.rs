//! The emulated cloud: accounts, zones, acceleration domains, SSL certificates and
//! temporary credentials, and the seed document that fills them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultConfig;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// Formats a UTC time with a `strftime` pattern; out-of-range times print as the epoch.
pub fn format_millis(millis: Millis, pattern: &str) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime(pattern)
        .to_string()
}

pub fn rfc3339(millis: Millis) -> String {
    format_millis(millis, "%Y-%m-%dT%H:%M:%SZ")
}

/// Random letters and digits, for generated ids, keys and tokens.
pub fn random_alphanumeric(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The seed document (JSON) that a state is built from. Every list may be empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub zones: Vec<ZoneSeed>,
    #[serde(default)]
    pub certificates: Vec<CertificateSeed>,
    #[serde(default)]
    pub identity_providers: Vec<IdentityProvider>,
    #[serde(default)]
    pub settings: Option<Settings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    pub secret_id: String,
    pub secret_key: String,
    /// The account (owner UIN) the key belongs to; zones and certificates are owned by UINs.
    pub uin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneSeed {
    pub zone_id: String,
    pub uin: String,
    /// The site's domain, e.g. `test.com`.
    pub name: String,
    /// `active` or `paused`.
    #[serde(default = "default_zone_status")]
    pub status: String,
    /// `full` (NS) or `partial` (CNAME); CNAME zones cannot get free wildcard certificates.
    #[serde(default = "default_access_type")]
    pub access_type: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Hosts whose deployments end `failed` instead of `deployed`.
    #[serde(default)]
    pub failing_hosts: Vec<String>,
}

fn default_zone_status() -> String {
    "active".into()
}

fn default_access_type() -> String {
    "full".into()
}

/// A certificate that already exists in the account's SSL service, described by its
/// properties rather than its PEM (as the seed document's `cert-244ffgv7m17xw`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSeed {
    pub cert_id: String,
    pub uin: String,
    /// `SVR` or `CA`.
    #[serde(default = "default_cert_type")]
    pub r#type: String,
    #[serde(default)]
    pub domains: Vec<String>,
    /// RFC 3339; defaults to one year from now.
    #[serde(default)]
    pub not_after: Option<String>,
    #[serde(default = "default_key_algorithm")]
    pub key_algorithm: String,
    #[serde(default = "default_key_bits")]
    pub key_bits: usize,
    #[serde(default)]
    pub alias: String,
}

fn default_cert_type() -> String {
    "SVR".into()
}

fn default_key_algorithm() -> String {
    "RSA".into()
}

fn default_key_bits() -> usize {
    2048
}

/// An OIDC identity provider trusted by STS `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityProvider {
    pub provider_id: String,
    pub role_arn: String,
    /// The web identity token that this provider accepts.
    pub web_identity_token: String,
    pub uin: String,
}

/// Behaviour knobs, changeable at run time through the admin endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// How long a changed host stays `processing` before it is `deployed`.
    #[serde(default = "default_deploy_delay")]
    pub deploy_delay_ms: u64,
    /// Requests per second per account and action; 0 turns the limit off.
    #[serde(default = "default_teo_rate")]
    pub teo_rate_limit: u32,
    #[serde(default = "default_ssl_rate")]
    pub ssl_rate_limit: u32,
    /// Signatures older or newer than this are `AuthFailure.SignatureExpire`.
    #[serde(default = "default_max_skew")]
    pub max_clock_skew_seconds: i64,
}

fn default_deploy_delay() -> u64 {
    2000
}
fn default_teo_rate() -> u32 {
    20
}
fn default_ssl_rate() -> u32 {
    10
}
fn default_max_skew() -> i64 {
    300
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            deploy_delay_ms: default_deploy_delay(),
            teo_rate_limit: default_teo_rate(),
            ssl_rate_limit: default_ssl_rate(),
            max_clock_skew_seconds: default_max_skew(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    pub zone_id: String,
    pub uin: String,
    pub name: String,
    pub status: String,
    pub access_type: String,
    pub created_on: Millis,
}

/// `Switch` + certificate ids, the shape of `MutualTLS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MutualTls {
    pub enabled: bool,
    pub cert_ids: Vec<String>,
}

/// The certificate configuration of one acceleration domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCertConfig {
    /// `disable`, `eofreecert`, `eofreecert_manual` or `sslcert`.
    pub mode: String,
    pub server_cert_ids: Vec<String>,
    pub client_mtls: MutualTls,
    pub upstream_mtls: MutualTls,
    /// `disable` or `custom_ca`.
    pub upstream_verify_mode: String,
    pub upstream_ca_ids: Vec<String>,
}

impl Default for HostCertConfig {
    fn default() -> Self {
        Self {
            mode: "disable".into(),
            server_cert_ids: Vec::new(),
            client_mtls: MutualTls::default(),
            upstream_mtls: MutualTls::default(),
            upstream_verify_mode: "disable".into(),
            upstream_ca_ids: Vec::new(),
        }
    }
}

impl HostCertConfig {
    /// Every certificate id the configuration refers to.
    pub fn cert_ids(&self) -> impl Iterator<Item = &String> {
        self.server_cert_ids
            .iter()
            .chain(&self.client_mtls.cert_ids)
            .chain(&self.upstream_mtls.cert_ids)
            .chain(&self.upstream_ca_ids)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub zone_id: String,
    pub name: String,
    pub config: HostCertConfig,
    pub created_on: Millis,
    /// When `config` last changed; deployment status is derived from it.
    pub modified_on: Millis,
    pub fail_deploy: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub cert_id: String,
    pub uin: String,
    /// `SVR` or `CA`.
    pub cert_type: String,
    pub alias: String,
    pub domains: Vec<String>,
    pub not_before: Millis,
    pub not_after: Millis,
    pub key_algorithm: String,
    pub key_bits: usize,
    pub sign_algo: String,
    /// SHA-256 of the leaf's DER; `None` for seeded certificates.
    pub fingerprint: Option<String>,
    pub inserted_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TempCredential {
    pub secret_key: String,
    pub token: String,
    pub uin: String,
    pub expires_at: Millis,
}

/// The whole emulated cloud.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub accounts: BTreeMap<String, Account>,
    pub temp_credentials: BTreeMap<String, TempCredential>,
    pub zones: BTreeMap<String, Zone>,
    /// Keyed by (zone id, host name).
    #[serde(serialize_with = "domains_as_list")]
    pub domains: BTreeMap<(String, String), Domain>,
    pub certificates: BTreeMap<String, Certificate>,
    pub identity_providers: Vec<IdentityProvider>,
    pub settings: Settings,
    pub faults: FaultConfig,
}

fn domains_as_list<S: serde::Serializer>(
    domains: &BTreeMap<(String, String), Domain>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(domains.values())
}

impl State {
    pub fn from_seed(seed: &Seed) -> Result<Self, String> {
        let mut state = State::default();
        state.merge_seed(seed)?;
        Ok(state)
    }

    /// Adds (or replaces, by id) everything the seed names.
    pub fn merge_seed(&mut self, seed: &Seed) -> Result<(), String> {
        let now = now_millis();
        for account in &seed.accounts {
            self.accounts
                .insert(account.secret_id.clone(), account.clone());
        }
        for zone in &seed.zones {
            if !matches!(zone.status.as_str(), "active" | "paused") {
                return Err(format!(
                    "zone {}: status must be active or paused",
                    zone.zone_id
                ));
            }
            if !matches!(zone.access_type.as_str(), "full" | "partial") {
                return Err(format!(
                    "zone {}: accessType must be full or partial",
                    zone.zone_id
                ));
            }
            self.zones.insert(
                zone.zone_id.clone(),
                Zone {
                    zone_id: zone.zone_id.clone(),
                    uin: zone.uin.clone(),
                    name: zone.name.clone(),
                    status: zone.status.clone(),
                    access_type: zone.access_type.clone(),
                    created_on: now,
                },
            );
            for host in &zone.hosts {
                let key = (zone.zone_id.clone(), host.to_ascii_lowercase());
                let domain = self.domains.entry(key).or_insert_with(|| Domain {
                    zone_id: zone.zone_id.clone(),
                    name: host.to_ascii_lowercase(),
                    config: HostCertConfig::default(),
                    created_on: now,
                    modified_on: now,
                    fail_deploy: false,
                });
                domain.fail_deploy = zone
                    .failing_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host));
            }
        }
        for cert in &seed.certificates {
            let not_after = match &cert.not_after {
                Some(text) => text
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| format!("certificate {}: notAfter {text:?}: {e}", cert.cert_id))?
                    .as_millisecond(),
                None => now + 365 * 24 * 3600 * 1000,
            };
            if !matches!(cert.r#type.as_str(), "SVR" | "CA") {
                return Err(format!(
                    "certificate {}: type must be SVR or CA",
                    cert.cert_id
                ));
            }
            let sign_algo = match cert.key_algorithm.as_str() {
                "EC" | "ECC" => format!("ECC {}", cert.key_bits),
                other => format!("{other} {}", cert.key_bits),
            };
            self.certificates.insert(
                cert.cert_id.clone(),
                Certificate {
                    cert_id: cert.cert_id.clone(),
                    uin: cert.uin.clone(),
                    cert_type: cert.r#type.clone(),
                    alias: cert.alias.clone(),
                    domains: cert.domains.clone(),
                    not_before: now - 24 * 3600 * 1000,
                    not_after,
                    key_algorithm: cert.key_algorithm.clone(),
                    key_bits: cert.key_bits,
                    sign_algo,
                    fingerprint: None,
                    inserted_at: now,
                },
            );
        }
        self.identity_providers
            .extend(seed.identity_providers.iter().cloned());
        if let Some(settings) = &seed.settings {
            self.settings = settings.clone();
        }
        Ok(())
    }

    /// The certificate, if it exists and belongs to the account `uin`; callers report
    /// a miss with their own service's error code.
    pub fn owned_certificate(&self, uin: &str, cert_id: &str) -> Option<&Certificate> {
        self.certificates.get(cert_id).filter(|c| c.uin == uin)
    }

    /// Whether any host's configuration refers to the certificate.
    pub fn certificate_in_use(&self, cert_id: &str) -> bool {
        self.domains
            .values()
            .any(|d| d.config.cert_ids().any(|id| id == cert_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_builds_zones_hosts_and_certificates() {
        let seed: Seed = serde_json::from_value(serde_json::json!({
            "accounts": [{"secretId": "AKIDa", "secretKey": "k", "uin": "100"}],
            "zones": [{"zoneId": "zone-1", "uin": "100", "name": "test.com",
                       "hosts": ["abc.test.com", "B.test.com"], "failingHosts": ["b.test.com"]}],
            "certificates": [{"certId": "cert-1", "uin": "100", "domains": ["abc.test.com"],
                              "notAfter": "2030-01-01T00:00:00Z"}]
        }))
        .unwrap();
        let state = State::from_seed(&seed).unwrap();
        assert_eq!(state.domains.len(), 2);
        let b = &state.domains[&("zone-1".to_string(), "b.test.com".to_string())];
        assert!(b.fail_deploy);
        assert_eq!(b.config.mode, "disable");
        assert_eq!(state.certificates["cert-1"].sign_algo, "RSA 2048");
        assert_eq!(
            rfc3339(state.certificates["cert-1"].not_after),
            "2030-01-01T00:00:00Z"
        );
    }

    #[test]
    fn seed_rejects_bad_values() {
        let bad: Seed = serde_json::from_value(serde_json::json!({
            "zones": [{"zoneId": "z", "uin": "1", "name": "t.com", "status": "gone"}]
        }))
        .unwrap();
        assert!(State::from_seed(&bad).unwrap_err().contains("status"));
        assert!(serde_json::from_value::<Seed>(serde_json::json!({"zonez": []})).is_err());
    }
}
