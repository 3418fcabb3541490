//! Tencent Cloud credentials and where they come from: given directly (a Kubernetes
//! Secret, read by the controller), the `TENCENTCLOUD_*` environment variables, or TKE
//! pod identity (an OIDC token exchanged at STS for temporary credentials).

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::error::{CallError, ErrorClass};
use super::transport::{Service, Transport};

pub const ENV_SECRET_ID: &str = "TENCENTCLOUD_SECRET_ID";
pub const ENV_SECRET_KEY: &str = "TENCENTCLOUD_SECRET_KEY";
pub const ENV_SESSION_TOKEN: &str = "TENCENTCLOUD_SESSION_TOKEN";
pub const ENV_TKE_REGION: &str = "TKE_REGION";
pub const ENV_TKE_PROVIDER_ID: &str = "TKE_PROVIDER_ID";
pub const ENV_TKE_TOKEN_FILE: &str = "TKE_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_TKE_ROLE_ARN: &str = "TKE_ROLE_ARN";

/// Temporary credentials are exchanged again this long before they expire.
pub const REFRESH_BEFORE_EXPIRY_SECONDS: i64 = 5 * 60;
/// What the operator asks STS for (the SDKs' default).
pub const STS_DURATION_SECONDS: u32 = 7200;

/// A secret string: its `Debug` prints `<redacted>`, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// A SecretId, its SecretKey and, for temporary credentials, the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub secret_id: String,
    secret_key: SecretString,
    token: Option<SecretString>,
}

impl Credentials {
    /// An empty token counts as none.
    pub fn new(
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
        token: Option<String>,
    ) -> Self {
        Self {
            secret_id: secret_id.into(),
            secret_key: SecretString::new(secret_key),
            token: token.filter(|t| !t.is_empty()).map(SecretString::new),
        }
    }

    pub fn secret_key(&self) -> &str {
        self.secret_key.expose()
    }

    /// The `X-TC-Token` of temporary credentials.
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(SecretString::expose)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &self.secret_key)
            .field("token", &self.token)
            .finish()
    }
}

/// Why no credentials could be had; each message says what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no Tencent Cloud credentials configured: set {ENV_SECRET_ID} and {ENV_SECRET_KEY}, enable TKE pod identity ({ENV_TKE_REGION}, {ENV_TKE_PROVIDER_ID}, {ENV_TKE_TOKEN_FILE}, {ENV_TKE_ROLE_ARN}), or reference a Secret with credentialsRef"
    )]
    NotConfigured,
    #[error("invalid Tencent Cloud credentials: {detail}")]
    Invalid { detail: String },
    #[error(
        "cannot read the web identity token file {path} ({ENV_TKE_TOKEN_FILE}): {detail}; check that the pod's service account token is mounted there"
    )]
    TokenFile { path: String, detail: String },
    #[error(
        "STS AssumeRoleWithWebIdentity for role {role_arn} failed: {source}; check {ENV_TKE_ROLE_ARN} and {ENV_TKE_PROVIDER_ID}, and that the role trusts the cluster's OIDC provider"
    )]
    Sts {
        role_arn: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("STS AssumeRoleWithWebIdentity returned unusable credentials: {detail}")]
    InvalidStsCredentials { detail: String },
}

impl CredentialsError {
    /// `Auth`, except for an STS exchange that failed for a transient reason (network,
    /// 5xx, throttling), which keeps that reason's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Sts { source, .. } if source.class().is_retryable() => source.class(),
            _ => ErrorClass::Auth,
        }
    }
}

/// A source of credentials, asked before each call (or batch of calls).
pub trait CredentialProvider: Send + Sync {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>>;
}

/// Credentials given once, e.g. read from a Kubernetes Secret.
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

impl CredentialProvider for StaticCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// `TENCENTCLOUD_SECRET_ID`, `TENCENTCLOUD_SECRET_KEY` and optionally
/// `TENCENTCLOUD_SESSION_TOKEN`, read when the provider is made.
#[derive(Debug, Clone)]
pub struct EnvCredentials(Credentials);

/// A variable's value; empty counts as unset.
fn var(vars: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    vars(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl EnvCredentials {
    /// `None` unless both the SecretId and the SecretKey are set.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with the variables looked up by `vars`.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let id = var(&vars, ENV_SECRET_ID);
        let key = var(&vars, ENV_SECRET_KEY);
        match (id, key) {
            (Some(id), Some(key)) => Some(Self(Credentials::new(
                id,
                key,
                var(&vars, ENV_SESSION_TOKEN),
            ))),
            (None, None) => None,
            (id, _) => {
                let (set, missing) = if id.is_some() {
                    (ENV_SECRET_ID, ENV_SECRET_KEY)
                } else {
                    (ENV_SECRET_KEY, ENV_SECRET_ID)
                };
                tracing::warn!(
                    "{set} is set but {missing} is not; ignoring the environment credentials"
                );
                None
            }
        }
    }
}

impl CredentialProvider for EnvCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleWithWebIdentityRequest<'a> {
    provider_id: &'a str,
    web_identity_token: &'a str,
    role_arn: &'a str,
    role_session_name: &'a str,
    duration_seconds: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleWithWebIdentityResponse {
    credentials: StsCredentials,
    expired_time: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    token: String,
    tmp_secret_id: String,
    tmp_secret_key: String,
}

struct Cached {
    credentials: Credentials,
    /// Unix seconds.
    expired_time: i64,
}

/// TKE pod identity: the projected service-account token in `TKE_WEB_IDENTITY_TOKEN_FILE`
/// is exchanged at STS (`AssumeRoleWithWebIdentity`, unsigned) for temporary credentials
/// of `TKE_ROLE_ARN`. The file is read again on every exchange (the kubelet rotates it);
/// the credentials are kept until five minutes before they expire.
pub struct TkeOidcCredentials {
    transport: Arc<Transport>,
    region: String,
    provider_id: String,
    token_file: PathBuf,
    role_arn: String,
    /// Held across an exchange so that concurrent callers share one.
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TkeOidcCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TkeOidcCredentials")
            .field("region", &self.region)
            .field("provider_id", &self.provider_id)
            .field("token_file", &self.token_file)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl TkeOidcCredentials {
    pub fn new(
        transport: Arc<Transport>,
        region: impl Into<String>,
        provider_id: impl Into<String>,
        token_file: impl Into<PathBuf>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            transport,
            region: region.into(),
            provider_id: provider_id.into(),
            token_file: token_file.into(),
            role_arn: role_arn.into(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// `None` unless `TKE_REGION`, `TKE_PROVIDER_ID`, `TKE_WEB_IDENTITY_TOKEN_FILE` and
    /// `TKE_ROLE_ARN` are all set.
    pub fn from_env(transport: Arc<Transport>) -> Option<Self> {
        Self::from_vars(transport, |name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with the variables looked up by `vars`.
    pub fn from_vars(
        transport: Arc<Transport>,
        vars: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let names = [
            ENV_TKE_REGION,
            ENV_TKE_PROVIDER_ID,
            ENV_TKE_TOKEN_FILE,
            ENV_TKE_ROLE_ARN,
        ];
        let values: Vec<Option<String>> = names.iter().map(|n| var(&vars, n)).collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if missing.len() == names.len() {
            return None;
        }
        if !missing.is_empty() {
            tracing::warn!(
                missing = %missing.join(", "),
                "TKE pod identity is partly configured; ignoring it"
            );
            return None;
        }
        let mut values = values.into_iter().flatten();
        let (region, provider_id, token_file, role_arn) = (
            values.next()?,
            values.next()?,
            values.next()?,
            values.next()?,
        );
        Some(Self::new(
            transport,
            region,
            provider_id,
            token_file,
            role_arn,
        ))
    }

    async fn exchange(&self) -> Result<Cached, CredentialsError> {
        let path = self.token_file.display().to_string();
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| CredentialsError::TokenFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(CredentialsError::TokenFile {
                path,
                detail: "the file is empty".into(),
            });
        }
        let session_name = format!(
            "edgeone-cert-operator-{}",
            jiff::Timestamp::now().as_second()
        );
        let request = AssumeRoleWithWebIdentityRequest {
            provider_id: &self.provider_id,
            web_identity_token: token,
            role_arn: &self.role_arn,
            role_session_name: &session_name,
            duration_seconds: STS_DURATION_SECONDS,
        };
        let reply = self
            .transport
            .call_in_region::<_, AssumeRoleWithWebIdentityResponse>(
                None,
                Service::Sts,
                Some(&self.region),
                "AssumeRoleWithWebIdentity",
                &request,
            )
            .await
            .map_err(|e| CredentialsError::Sts {
                role_arn: self.role_arn.clone(),
                source: Box::new(e),
            })?;
        let sts = reply.body.credentials;
        if sts.tmp_secret_id.is_empty() || sts.tmp_secret_key.is_empty() {
            return Err(CredentialsError::InvalidStsCredentials {
                detail: format!(
                    "empty TmpSecretId or TmpSecretKey (RequestId {})",
                    reply.request_id
                ),
            });
        }
        tracing::info!(
            role_arn = %self.role_arn,
            secret_id = %sts.tmp_secret_id,
            expired_time = reply.body.expired_time,
            request_id = %reply.request_id,
            "obtained temporary credentials through TKE pod identity"
        );
        Ok(Cached {
            credentials: Credentials::new(sts.tmp_secret_id, sts.tmp_secret_key, Some(sts.token)),
            expired_time: reply.body.expired_time,
        })
    }
}

impl CredentialProvider for TkeOidcCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            let now = jiff::Timestamp::now().as_second();
            if let Some(cached) = cache.as_ref()
                && now < cached.expired_time - REFRESH_BEFORE_EXPIRY_SECONDS
            {
                return Ok(cached.credentials.clone());
            }
            let fresh = self.exchange().await?;
            let credentials = fresh.credentials.clone();
            *cache = Some(fresh);
            Ok(credentials)
        })
    }
}

/// The operator's default credentials: the environment variables, else TKE pod
/// identity; `None` when neither is configured.
pub fn default_chain(transport: Arc<Transport>) -> Option<Arc<dyn CredentialProvider>> {
    default_chain_from_vars(transport, |name| std::env::var(name).ok())
}

/// As [`default_chain`], with the variables looked up by `vars`.
pub fn default_chain_from_vars(
    transport: Arc<Transport>,
    vars: impl Fn(&str) -> Option<String>,
) -> Option<Arc<dyn CredentialProvider>> {
    if let Some(env) = EnvCredentials::from_vars(&vars) {
        tracing::info!("using Tencent Cloud credentials from {ENV_SECRET_ID}/{ENV_SECRET_KEY}");
        return Some(Arc::new(env));
    }
    if let Some(tke) = TkeOidcCredentials::from_vars(transport, &vars) {
        tracing::info!(role_arn = %tke.role_arn, "using TKE pod identity for Tencent Cloud credentials");
        return Some(Arc::new(tke));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::tencent::transport::TransportConfig;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn transport() -> Arc<Transport> {
        Arc::new(Transport::new(TransportConfig::default()).unwrap())
    }

    #[test]
    fn debug_redacts_key_and_token() {
        let creds = Credentials::new("AKIDvisible", "the-secret-key", Some("the-token".into()));
        let text = format!("{creds:?}");
        assert!(text.contains("AKIDvisible"), "{text}");
        assert!(
            !text.contains("the-secret-key") && !text.contains("the-token"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
        assert_eq!(creds.secret_key(), "the-secret-key");
        assert_eq!(creds.token(), Some("the-token"));
        assert_eq!(
            Credentials::new("a", "b", Some(String::new())).token(),
            None
        );
        let alternate = format!("{:#?}", StaticCredentials(creds));
        assert!(!alternate.contains("the-secret-key"));
    }

    #[tokio::test]
    async fn environment_credentials() {
        let env = EnvCredentials::from_vars(vars(&[
            (ENV_SECRET_ID, "AKID1"),
            (ENV_SECRET_KEY, "key"),
            (ENV_SESSION_TOKEN, "tok"),
        ]))
        .unwrap();
        let creds = env.credentials().await.unwrap();
        assert_eq!(
            (creds.secret_id.as_str(), creds.secret_key(), creds.token()),
            ("AKID1", "key", Some("tok"))
        );
        assert!(EnvCredentials::from_vars(vars(&[])).is_none());
        assert!(EnvCredentials::from_vars(vars(&[(ENV_SECRET_ID, "AKID1")])).is_none());
        assert!(
            EnvCredentials::from_vars(vars(&[(ENV_SECRET_ID, "AKID1"), (ENV_SECRET_KEY, " ")]))
                .is_none()
        );
    }

    #[test]
    fn tke_needs_all_four_variables() {
        let all = [
            (ENV_TKE_REGION, "ap-guangzhou"),
            (ENV_TKE_PROVIDER_ID, "oidc"),
            (ENV_TKE_TOKEN_FILE, "/var/run/token"),
            (ENV_TKE_ROLE_ARN, "qcs::cam::uin/1:roleName/r"),
        ];
        let tke = TkeOidcCredentials::from_vars(transport(), vars(&all)).unwrap();
        assert_eq!(tke.region, "ap-guangzhou");
        assert_eq!(tke.token_file, PathBuf::from("/var/run/token"));
        assert!(TkeOidcCredentials::from_vars(transport(), vars(&all[..3])).is_none());
        assert!(TkeOidcCredentials::from_vars(transport(), vars(&[])).is_none());
    }

    #[tokio::test]
    async fn default_chain_prefers_the_environment() {
        let tke = [
            (ENV_TKE_REGION, "ap-guangzhou"),
            (ENV_TKE_PROVIDER_ID, "oidc"),
            (ENV_TKE_TOKEN_FILE, "/nonexistent/token"),
            (ENV_TKE_ROLE_ARN, "qcs::cam::uin/1:roleName/r"),
        ];
        let mut both = tke.to_vec();
        both.extend([(ENV_SECRET_ID, "AKIDenv"), (ENV_SECRET_KEY, "k")]);
        let chain = default_chain_from_vars(transport(), vars(&both)).unwrap();
        assert_eq!(chain.credentials().await.unwrap().secret_id, "AKIDenv");

        let chain = default_chain_from_vars(transport(), vars(&tke)).unwrap();
        let error = chain.credentials().await.unwrap_err();
        assert!(
            matches!(error, CredentialsError::TokenFile { .. }),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::Auth);
        assert!(error.to_string().contains(ENV_TKE_TOKEN_FILE));

        assert!(default_chain_from_vars(transport(), vars(&[])).is_none());
    }

    #[test]
    fn sts_failures_keep_transient_classes() {
        let sts = |source: CallError| CredentialsError::Sts {
            role_arn: "r".into(),
            source: Box::new(source),
        };
        let network = sts(CallError::Network {
            detail: "refused".into(),
        });
        assert_eq!(network.class(), ErrorClass::Retryable);
        let denied = sts(CallError::Api(crate::tencent::error::ApiError {
            code: "InvalidParameter.WebIdentityTokenError".into(),
            message: "m".into(),
            request_id: "r".into(),
        }));
        assert_eq!(denied.class(), ErrorClass::Auth);
        assert_eq!(CallError::from(denied).class(), ErrorClass::Auth);
        assert_eq!(CredentialsError::NotConfigured.class(), ErrorClass::Auth);
    }
}
