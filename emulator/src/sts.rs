//! STS (`sts`, 2018-08-13): `AssumeRoleWithWebIdentity`, the exchange behind TKE pod
//! identity. The call is unsigned (`Authorization: SKIP`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::model::{Millis, State, TempCredential, random_alphanumeric, rfc3339};

pub const VERSION: &str = "2018-08-13";
const DEFAULT_DURATION: i64 = 7200;
const MAX_DURATION: i64 = 43200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AssumeRoleWithWebIdentityRequest {
    provider_id: String,
    web_identity_token: String,
    role_arn: String,
    role_session_name: String,
    duration_seconds: Option<i64>,
}

pub fn assume_role_with_web_identity(
    state: &mut State,
    req: AssumeRoleWithWebIdentityRequest,
    now: Millis,
) -> ApiResult<Value> {
    if req.role_session_name.is_empty() {
        return Err(ApiError::missing("RoleSessionName"));
    }
    let duration = req.duration_seconds.unwrap_or(DEFAULT_DURATION);
    if !(1..=MAX_DURATION).contains(&duration) {
        return Err(ApiError::new(
            "InvalidParameter.OverTimeError",
            format!("DurationSeconds must be between 1 and {MAX_DURATION}."),
        ));
    }
    let provider = state
        .identity_providers
        .iter()
        .find(|p| p.provider_id == req.provider_id && p.role_arn == req.role_arn)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceNotFound.RoleNotFound",
                format!(
                    "No role `{}` trusts provider `{}`.",
                    req.role_arn, req.provider_id
                ),
            )
        })?;
    if provider.web_identity_token != req.web_identity_token {
        return Err(ApiError::new(
            "InvalidParameter.WebIdentityTokenError",
            "The WebIdentityToken is not valid for this provider.",
        ));
    }
    let uin = provider.uin.clone();
    let expires_at = now + duration * 1000;
    let secret_id = format!("AKIDtmp{}", random_alphanumeric(24));
    let credential = TempCredential {
        secret_key: random_alphanumeric(32),
        token: random_alphanumeric(64),
        uin,
        expires_at,
    };
    let out = json!({
        "Credentials": { "Token": credential.token, "TmpSecretId": secret_id, "TmpSecretKey": credential.secret_key },
        "ExpiredTime": expires_at / 1000,
        "Expiration": rfc3339(expires_at),
    });
    state.temp_credentials.insert(secret_id, credential);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentityProvider;

    fn state() -> State {
        State {
            identity_providers: vec![IdentityProvider {
                provider_id: "tke".into(),
                role_arn: "qcs::cam::uin/1:roleName/op".into(),
                web_identity_token: "jwt".into(),
                uin: "1".into(),
            }],
            ..State::default()
        }
    }

    fn call(state: &mut State, body: Value) -> ApiResult<Value> {
        assume_role_with_web_identity(state, serde_json::from_value(body).unwrap(), 1_000_000)
    }

    #[test]
    fn issues_temporary_credentials() {
        let mut s = state();
        let out = call(&mut s, json!({"ProviderId": "tke", "WebIdentityToken": "jwt", "RoleArn": "qcs::cam::uin/1:roleName/op", "RoleSessionName": "s", "DurationSeconds": 60})).unwrap();
        let id = out["Credentials"]["TmpSecretId"].as_str().unwrap();
        assert_eq!(out["ExpiredTime"], 1060);
        assert_eq!(
            s.temp_credentials[id].token,
            out["Credentials"]["Token"].as_str().unwrap()
        );
        assert_eq!(s.temp_credentials[id].uin, "1");
    }

    #[test]
    fn rejects_bad_tokens_and_roles() {
        let mut s = state();
        let body = |token: &str, role: &str| json!({"ProviderId": "tke", "WebIdentityToken": token, "RoleArn": role, "RoleSessionName": "s"});
        assert_eq!(
            call(&mut s, body("bad", "qcs::cam::uin/1:roleName/op"))
                .unwrap_err()
                .code,
            "InvalidParameter.WebIdentityTokenError"
        );
        assert_eq!(
            call(&mut s, body("jwt", "other")).unwrap_err().code,
            "ResourceNotFound.RoleNotFound"
        );
        assert!(s.temp_credentials.is_empty());
    }
}
