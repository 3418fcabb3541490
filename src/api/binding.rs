//! The `EdgeOneCertificateBinding` custom resource (`edgeone.operators.dev/v1alpha1`).
//!
//! The doc comments on these types become the CRD's field descriptions (`kubectl explain`),
//! so they are written for the people who write bindings. The validation rules make
//! `kubectl apply` reject a binding EdgeOne would refuse, with a message that says what
//! to change; the controller still checks what the schema cannot (Secrets, certificates).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The default key of a CA certificate in a Secret (cert-manager's `ca.crt`).
pub const DEFAULT_CA_KEY: &str = "ca.crt";

/// Binds TLS certificates to Tencent Cloud EdgeOne acceleration domains (hosts) of one zone.
// Every printer column repeats `type_ = "string"`, which this lint takes for a mistake.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "edgeone.operators.dev",
    version = "v1alpha1",
    kind = "EdgeOneCertificateBinding",
    namespaced,
    shortname = "eocb",
    category = "edgeone",
    status = "EdgeOneCertificateBindingStatus",
    derive = "PartialEq",
    doc = "EdgeOneCertificateBinding keeps the certificates of Tencent Cloud EdgeOne hosts equal to its spec.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether EdgeOne serves what the spec asks for"
    ),
    printcolumn(
        name = "Zone",
        type_ = "string",
        json_path = ".spec.zoneId",
        description = "EdgeOne zone id"
    ),
    printcolumn(
        name = "Hosts",
        type_ = "string",
        json_path = ".spec.hosts",
        description = "Acceleration domains"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        description = "Certificate mode"
    ),
    printcolumn(
        name = "RequestId",
        type_ = "string",
        json_path = ".status.requestId",
        description = "RequestId of the last Tencent Cloud API call",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.mode != 'sslcert' || (has(self.serverCertificates) && size(self.serverCertificates) > 0)"
).message(
    "serverCertificates is required when mode is sslcert: list at least one certificate (certId, secretRef or certificateRef)"
).field_path(".serverCertificates").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "self.mode == 'sslcert' || !has(self.serverCertificates) || size(self.serverCertificates) == 0"
).message(
    "serverCertificates must be empty unless mode is sslcert: EdgeOne issues the certificate in modes eofreecert and eofreecert_manual and serves none in mode disable"
).field_path(".serverCertificates").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct EdgeOneCertificateBindingSpec {
    /// The EdgeOne zone (site) id the hosts belong to, e.g. `zone-2fgd17m17xw`. [ZoneId]
    #[schemars(regex(pattern = r"^zone-[0-9a-z]+$"), length(max = 64))]
    pub zone_id: String,

    /// The acceleration domains to configure, as EdgeOne lists them: lowercase DNS names
    /// (`www.example.com`) or wildcards (`*.example.com`). 1 to 100 distinct hosts. [Hosts.N]
    #[schemars(
        length(min = 1, max = 100),
        inner(
            regex(
                pattern = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
            ),
            length(max = 253)
        ),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub hosts: Vec<String>,

    /// How EdgeOne gets the certificate: `sslcert` (the certificates in serverCertificates),
    /// `eofreecert` (a free certificate EdgeOne issues and renews, validated automatically),
    /// `eofreecert_manual` (a free certificate validated by DNS records you add yourself) or
    /// `disable` (no certificate: HTTPS off). [Mode]
    pub mode: Mode,

    /// The certificates EdgeOne serves; required when mode is `sslcert` and must be empty
    /// otherwise. Up to 10 (e.g. an RSA and an ECDSA certificate). [ServerCertInfo.N]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub server_certificates: Vec<CertificateSource>,

    /// Edge mutual TLS: the CA certificates EdgeOne verifies client certificates against.
    /// Absent leaves EdgeOne's client authentication as it is. [ClientCertInfo]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_authentication: Option<ClientAuthentication>,

    /// How EdgeOne connects to the origin: the client certificate it presents (mutualTLS)
    /// and how it verifies the origin's certificate (certificateVerify). Absent leaves
    /// EdgeOne's origin settings as they are. [UpstreamCertInfo]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamSpec>,

    /// A Secret in this namespace holding the Tencent Cloud credentials to use (`secretId`,
    /// `secretKey`, optional `token`). Absent means the operator's default credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<LocalRef>,

    /// What happens on EdgeOne when this binding is deleted: `Retain` (default) leaves the
    /// hosts' certificates as they are; `Disable` sets their certificate mode to `disable`
    /// before the binding goes away.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Delete a certificate the operator uploaded from a Secret once a renewal replaced
    /// it and EdgeOne serves the new one, unless another binding still uses it; with
    /// deletionPolicy Disable, also the binding's uploads when it is deleted.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_replaced_certificates: Option<bool>,
}

/// EdgeOne's certificate configuration mode of a host (Tencent `Mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    // Configure the SSL certificates listed in serverCertificates.
    #[serde(rename = "sslcert")]
    Sslcert,
    // A free certificate EdgeOne applies for and renews, validated automatically.
    #[serde(rename = "eofreecert")]
    Eofreecert,
    // A free certificate validated through DNS records the zone owner adds.
    #[serde(rename = "eofreecert_manual")]
    EofreecertManual,
    // No certificate.
    #[serde(rename = "disable")]
    Disable,
}

impl Mode {
    /// The value Tencent Cloud's `ModifyHostsCertificate` takes as `Mode`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Sslcert => "sslcert",
            Mode::Eofreecert => "eofreecert",
            Mode::EofreecertManual => "eofreecert_manual",
            Mode::Disable => "disable",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate with its private key: exactly one of `certId`, `secretRef` or `certificateRef`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "(has(self.certId) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) + (has(self.certificateRef) ? 1 : 0) == 1"
).message("set exactly one of certId, secretRef or certificateRef"))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct CertificateSource {
    /// The id of a certificate already in Tencent Cloud SSL Certificates, e.g. `cert-244ffgv7m17xw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub cert_id: Option<String>,

    /// A Secret of type `kubernetes.io/tls` in this namespace (`tls.crt`, `tls.key`); the
    /// operator uploads it to Tencent Cloud SSL Certificates and re-uploads it when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,

    /// A cert-manager Certificate in this namespace; the operator uploads the Secret it
    /// issues into, and re-uploads it on every renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ref: Option<LocalRef>,
}

/// A CA certificate (no private key): exactly one of `certId` or `secretRef`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "(has(self.certId) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) == 1"
).message("set exactly one of certId or secretRef"))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct CaCertificateSource {
    /// The id of a CA certificate already in Tencent Cloud SSL Certificates, e.g. `J2JqATrt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub cert_id: Option<String>,

    /// A key of a Secret in this namespace holding the PEM CA certificate(s); the operator
    /// uploads it as a CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

/// A key in a Secret of the binding's namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[x_kube(validation = Rule::new("self != ''").message(
        "name must not be empty: set it to the name of a Secret in this namespace"
    ).reason(Reason::FieldValueRequired))]
    #[schemars(length(max = 253))]
    pub name: String,

    /// The key in the Secret's data; `ca.crt` when absent (where cert-manager puts the CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,
}

impl SecretKeyRef {
    /// The key to read: `key`, or [`DEFAULT_CA_KEY`] (`ca.crt`) when absent.
    pub fn key_or_default(&self) -> &str {
        self.key.as_deref().unwrap_or(DEFAULT_CA_KEY)
    }
}

/// An object in the binding's namespace, by name.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// The object's name.
    #[x_kube(validation = Rule::new("self != ''").message(
        "name must not be empty: set it to the name of an object in this namespace"
    ).reason(Reason::FieldValueRequired))]
    #[schemars(length(max = 253))]
    pub name: String,
}

/// Edge mutual TLS: EdgeOne asks clients for a certificate signed by one of these CAs.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!self.enabled || (has(self.caCertificates) && size(self.caCertificates) > 0)"
).message(
    "caCertificates must list at least one CA certificate when enabled is true"
).field_path(".caCertificates").reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct ClientAuthentication {
    /// Whether EdgeOne requires client certificates. [Switch]
    pub enabled: bool,

    /// The CA certificates client certificates must chain to; at least one when enabled,
    /// up to 10. [CertInfos]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub ca_certificates: Vec<CaCertificateSource>,
}

/// How EdgeOne talks TLS to the origin.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.mutualTLS) || has(self.certificateVerify)").message(
    "upstream must set mutualTLS or certificateVerify (or be removed)"
).reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct UpstreamSpec {
    /// The client certificate EdgeOne presents to the origin. [UpstreamMutualTLS]
    #[serde(rename = "mutualTLS", default, skip_serializing_if = "Option::is_none")]
    pub mutual_tls: Option<UpstreamMutualTls>,

    /// How EdgeOne verifies the origin's certificate. [UpstreamCertificateVerify]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_verify: Option<CertificateVerify>,
}

/// Origin mutual TLS: the client certificate EdgeOne presents to the origin.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!self.enabled || (has(self.certificates) && size(self.certificates) > 0)"
).message(
    "certificates must list at least one client certificate when enabled is true"
).field_path(".certificates").reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct UpstreamMutualTls {
    /// Whether EdgeOne presents a client certificate to the origin. [Switch]
    pub enabled: bool,

    /// The client certificate (with its key) to present; at least one when enabled, up to
    /// 10. [CertInfos]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub certificates: Vec<CertificateSource>,
}

/// How EdgeOne verifies the origin's certificate.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "self.mode != 'custom_ca' || (has(self.caCertificates) && size(self.caCertificates) > 0)"
).message(
    "caCertificates must list at least one CA certificate when mode is custom_ca"
).field_path(".caCertificates").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "self.mode != 'disable' || !has(self.caCertificates) || size(self.caCertificates) == 0"
).message(
    "caCertificates must be empty when mode is disable: use mode custom_ca to verify the origin"
).field_path(".caCertificates").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = optional_fields_not_nullable)]
pub struct CertificateVerify {
    /// `disable` (do not verify the origin's certificate) or `custom_ca` (verify it against
    /// caCertificates). [VerificationMode]
    pub mode: VerifyMode,

    /// The CA certificates the origin's certificate must chain to; required for `custom_ca`,
    /// empty for `disable`, up to 10. [CustomCACerts]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub ca_certificates: Vec<CaCertificateSource>,
}

/// Origin certificate verification mode (Tencent `VerificationMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VerifyMode {
    // Do not verify the origin's certificate.
    #[serde(rename = "disable")]
    Disable,
    // Verify the origin's certificate against caCertificates.
    #[serde(rename = "custom_ca")]
    CustomCa,
}

impl VerifyMode {
    /// The value Tencent Cloud takes as `VerificationMode`.
    pub fn as_str(&self) -> &'static str {
        match self {
            VerifyMode::Disable => "disable",
            VerifyMode::CustomCa => "custom_ca",
        }
    }
}

/// What deleting a binding does on EdgeOne.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    // Leave the hosts' certificate configuration as it is.
    #[default]
    Retain,
    // Set the hosts' certificate mode to `disable` before the binding goes away.
    Disable,
}

/// What the operator observed and did; written only by the operator.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeOneCertificateBindingStatus {
    /// The metadata.generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (EdgeOne serves what the spec asks for), `Synced` (the current generation
    /// was applied without error) and `Deployed` (EdgeOne reports every host's certificate
    /// as deployed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The RequestId of the last Tencent Cloud API call (quote it to Tencent Cloud support).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,

    /// The last error, with the exact Tencent Cloud error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,

    /// The certificates uploaded or referenced for this binding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateStatus>,

    /// What EdgeOne reports per host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostStatus>,

    /// When the operator last compared EdgeOne with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,

    /// A hash of the last Tencent Cloud request applied for this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,

    /// Uploads replaced by a renewal that are still to be deleted (retried until the
    /// delete succeeds; they never block the binding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_deletion: Vec<String>,
}

/// An error from Tencent Cloud or from checking the binding's inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// The Tencent Cloud error code (e.g. `InvalidParameter.CertNotMatchDomain`), or the
    /// operator's reason for errors found before calling Tencent Cloud.
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The RequestId of the failed call, if Tencent Cloud answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the error happened (RFC 3339).
    pub time: String,
}

/// A certificate the binding uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// The Tencent Cloud SSL certificate id.
    pub cert_id: String,
    /// Where it came from, e.g. `certId`, `secret/<name>` or `certificate/<name>`.
    pub source: String,
    /// The SHA-256 fingerprint of the leaf certificate (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_sha256: Option<String>,
    /// The end of the certificate's validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The DNS names the certificate covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_names: Vec<String>,
}

/// What EdgeOne reports for one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// The host (acceleration domain).
    pub host: String,
    /// The certificate mode EdgeOne reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The certificate ids EdgeOne reports for the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_ids: Vec<String>,
    /// EdgeOne's deployment status: `deployed`, `processing`, `applying`, `failed` or `issued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Drops `null` from the schemas of the struct's optional fields (`Option<T>` allows it).
///
/// The apiserver prunes `null` from fields that are not `nullable`, so `certId: null` then
/// means the same as leaving `certId` out — to the CEL rules (`has(self.certId)`) as much as
/// to the operator, which reads both as `None`.
fn optional_fields_not_nullable(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for property in properties.values_mut() {
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        property.remove("nullable");
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                let only = only.clone();
                property.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(any_of)) = property.get_mut("anyOf") {
            any_of.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
            if let [Value::Object(only)] = any_of.as_slice() {
                let only = only.clone();
                property.remove("anyOf");
                for (key, value) in only {
                    property.entry(key).or_insert(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mode_as_str_is_what_serde_writes() {
        for mode in [
            Mode::Sslcert,
            Mode::Eofreecert,
            Mode::EofreecertManual,
            Mode::Disable,
        ] {
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(mode.as_str()));
        }
        for mode in [VerifyMode::Disable, VerifyMode::CustomCa] {
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(mode.as_str()));
        }
        assert_eq!(Mode::EofreecertManual.as_str(), "eofreecert_manual");
        assert_eq!(VerifyMode::CustomCa.as_str(), "custom_ca");
    }

    #[test]
    fn a_minimal_spec_gets_its_defaults_and_writes_back_unchanged() {
        let written =
            json!({ "zoneId": "zone-1", "hosts": ["a.example.com"], "mode": "eofreecert" });
        let spec: EdgeOneCertificateBindingSpec = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(spec.server_certificates, []);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(spec.client_authentication, None);
        let mut expected = written;
        expected["deletionPolicy"] = json!("Retain");
        assert_eq!(serde_json::to_value(&spec).unwrap(), expected);
    }

    #[test]
    fn a_full_spec_round_trips_with_the_documented_field_names() {
        let written = json!({
            "zoneId": "zone-2fgd17m17xw",
            "hosts": ["www.example.com", "*.example.com"],
            "mode": "sslcert",
            "serverCertificates": [
                { "certId": "cert-1" },
                { "secretRef": { "name": "www-tls" } },
                { "certificateRef": { "name": "www" } },
            ],
            "clientAuthentication": {
                "enabled": true,
                "caCertificates": [{ "secretRef": { "name": "client-ca" } }],
            },
            "upstream": {
                "mutualTLS": { "enabled": true, "certificates": [{ "certId": "cert-2" }] },
                "certificateVerify": { "mode": "custom_ca", "caCertificates": [{ "certId": "J2JqATrt" }] },
            },
            "credentialsRef": { "name": "tencent" },
            "deletionPolicy": "Disable",
        });
        let spec: EdgeOneCertificateBindingSpec = serde_json::from_value(written.clone()).unwrap();
        let upstream = spec.upstream.as_ref().unwrap();
        assert_eq!(upstream.mutual_tls.as_ref().unwrap().certificates.len(), 1);
        let ca = &spec.client_authentication.as_ref().unwrap().ca_certificates[0];
        assert_eq!(ca.secret_ref.as_ref().unwrap().key_or_default(), "ca.crt");
        assert_eq!(serde_json::to_value(&spec).unwrap(), written);
    }

    #[test]
    fn an_empty_status_writes_nothing() {
        let status = EdgeOneCertificateBindingStatus::default();
        assert_eq!(serde_json::to_value(&status).unwrap(), json!({}));
    }
}
