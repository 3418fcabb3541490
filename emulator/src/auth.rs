//! Checks the TC3-HMAC-SHA256 signature of a request the way Tencent Cloud does.

use edgeone_cert_operator::tencent::sign::{self, Authorization, SigningInput};
use hyper::HeaderMap;

use crate::error::{ApiError, ApiResult};
use crate::model::{Millis, State};

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub secret_id: String,
    pub uin: String,
}

/// The value that unsigned STS calls send instead of a signature.
pub const SKIP: &str = "SKIP";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the signature and returns the caller. `service` is the service the request
/// was routed to; the credential scope must name the same one.
pub fn authenticate(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
    now: Millis,
) -> ApiResult<Caller> {
    let failure = |message: &str| ApiError::new("AuthFailure.SignatureFailure", message);
    let value = header(headers, "authorization").ok_or_else(|| {
        ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is missing.",
        )
    })?;
    let auth = Authorization::parse(value).ok_or_else(|| {
        ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is not of the form `TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.",
        )
    })?;
    let timestamp: i64 = header(headers, "x-tc-timestamp")
        .ok_or_else(|| ApiError::missing("X-TC-Timestamp"))?
        .parse()
        .map_err(|_| ApiError::invalid("X-TC-Timestamp must be Unix seconds."))?;
    if (now / 1000 - timestamp).abs() > state.settings.max_clock_skew_seconds {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            "The signature has expired: X-TC-Timestamp differs from the server time by more than 5 minutes. Check the client's clock.",
        ));
    }
    if auth.service != service {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            format!(
                "The credential scope names service `{}` but the request is for `{service}`.",
                auth.service
            ),
        ));
    }
    if auth.date != sign::scope_date(timestamp) {
        return Err(failure(
            "The credential date does not match X-TC-Timestamp.",
        ));
    }

    let (secret_key, uin) = if let Some(account) = state.accounts.get(&auth.secret_id) {
        (account.secret_key.as_str(), account.uin.clone())
    } else if let Some(temp) = state.temp_credentials.get(&auth.secret_id) {
        if header(headers, "x-tc-token") != Some(temp.token.as_str()) {
            return Err(ApiError::new(
                "AuthFailure.TokenFailure",
                "The X-TC-Token does not belong to the temporary SecretId.",
            ));
        }
        if temp.expires_at <= now {
            return Err(ApiError::new(
                "AuthFailure.TokenFailure",
                "The temporary credentials have expired.",
            ));
        }
        (temp.secret_key.as_str(), temp.uin.clone())
    } else {
        return Err(ApiError::new(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found. Check that it exists and is enabled.",
        ));
    };

    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err(failure("SignedHeaders must include content-type and host."));
    }
    let mut signed = Vec::with_capacity(names.len());
    for name in &names {
        let value = header(headers, name).ok_or_else(|| {
            failure(&format!(
                "The signed header `{name}` is not in the request."
            ))
        })?;
        signed.push((*name, value));
    }
    // Clients may declare the payload unsigned; the hash then covers that literal.
    let payload = if header(headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD") {
        b"UNSIGNED-PAYLOAD".as_slice()
    } else {
        body
    };
    let input = SigningInput {
        service,
        timestamp,
        headers: &signed,
        payload,
    };
    if !sign::signatures_equal(&sign::signature(secret_key, &input), &auth.signature) {
        return Err(failure(
            "The request signature does not match. Check the SecretKey and the signing method.",
        ));
    }
    Ok(Caller {
        secret_id: auth.secret_id,
        uin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Account, Seed, TempCredential};

    const NOW: Millis = 1_700_000_000_000;

    fn state() -> State {
        let mut state = State::from_seed(&Seed {
            accounts: vec![Account {
                secret_id: "AKIDuser".into(),
                secret_key: "key".into(),
                uin: "100".into(),
            }],
            ..Seed::default()
        })
        .unwrap();
        state.temp_credentials.insert(
            "AKIDtemp".into(),
            TempCredential {
                secret_key: "tmpkey".into(),
                token: "tok".into(),
                uin: "200".into(),
                expires_at: NOW + 1000,
            },
        );
        state
    }

    fn signed(
        secret_id: &str,
        key: &str,
        timestamp: i64,
        body: &[u8],
        token: Option<&str>,
    ) -> HeaderMap {
        let pairs = [
            ("content-type", "application/json"),
            ("host", "teo.tencentcloudapi.com"),
        ];
        let input = SigningInput {
            service: "teo",
            timestamp,
            headers: &pairs,
            payload: body,
        };
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(k, v.parse().unwrap());
        }
        headers.insert("x-tc-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert(
            "authorization",
            sign::authorize(secret_id, key, &input)
                .to_header_value()
                .parse()
                .unwrap(),
        );
        if let Some(token) = token {
            headers.insert("x-tc-token", token.parse().unwrap());
        }
        headers
    }

    /// The error code for a request signed by `secret_id`/`key` at `ts` with `token`,
    /// whose body arrives as `body`, checked as `service` at time `now`.
    struct Case {
        what: &'static str,
        secret_id: &'static str,
        key: &'static str,
        ts: i64,
        token: Option<&'static str>,
        body: &'static [u8],
        service: &'static str,
        now: Millis,
        expected: &'static str,
    }

    const OK: Case = Case {
        what: "",
        secret_id: "AKIDuser",
        key: "key",
        ts: NOW / 1000,
        token: None,
        body: b"{}",
        service: "teo",
        now: NOW,
        expected: "",
    };

    fn run(case: &Case) -> ApiResult<Caller> {
        let headers = signed(case.secret_id, case.key, case.ts, b"{}", case.token);
        authenticate(&state(), &headers, case.body, case.service, case.now)
    }

    #[test]
    fn accepts_a_correct_signature() {
        assert_eq!(
            run(&OK).unwrap(),
            Caller {
                secret_id: "AKIDuser".into(),
                uin: "100".into()
            }
        );
        let temp = Case {
            secret_id: "AKIDtemp",
            key: "tmpkey",
            token: Some("tok"),
            ..OK
        };
        assert_eq!(run(&temp).unwrap().uin, "200");
    }

    #[test]
    fn rejects_what_tencent_rejects() {
        let temp = Case {
            secret_id: "AKIDtemp",
            key: "tmpkey",
            token: Some("tok"),
            ..OK
        };
        let cases = [
            Case {
                what: "wrong key",
                key: "wrong",
                expected: "AuthFailure.SignatureFailure",
                ..OK
            },
            Case {
                what: "body changed",
                body: b"{\"x\":1}",
                expected: "AuthFailure.SignatureFailure",
                ..OK
            },
            Case {
                what: "unknown id",
                secret_id: "AKIDnobody",
                expected: "AuthFailure.SecretIdNotFound",
                ..OK
            },
            Case {
                what: "stale",
                ts: NOW / 1000 - 301,
                expected: "AuthFailure.SignatureExpire",
                ..OK
            },
            Case {
                what: "other service",
                service: "ssl",
                expected: "AuthFailure.InvalidAuthorization",
                ..OK
            },
            Case {
                what: "wrong token",
                token: Some("bad"),
                expected: "AuthFailure.TokenFailure",
                ..temp
            },
            Case {
                what: "no token",
                token: None,
                expected: "AuthFailure.TokenFailure",
                ..temp
            },
            Case {
                what: "expired",
                now: NOW + 1000,
                expected: "AuthFailure.TokenFailure",
                ..temp
            },
        ];
        for case in &cases {
            assert_eq!(run(case).unwrap_err().code, case.expected, "{}", case.what);
        }
        let unsigned = authenticate(&state(), &HeaderMap::new(), b"{}", "teo", NOW);
        assert_eq!(
            unsigned.unwrap_err().code,
            "AuthFailure.InvalidAuthorization"
        );
    }
}
