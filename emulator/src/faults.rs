//! Fault injection: per action (or `*` for all), probabilities of the failures a real
//! cloud API shows under load, of malformed answers, and added latency.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Faults by action name; `*` applies to actions without their own entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultConfig(pub BTreeMap<String, FaultRule>);

/// Probabilities are in `0.0..=1.0` and are rolled independently, in field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// `InternalError` (retryable).
    #[serde(default)]
    pub internal_error: f64,
    /// HTTP 502 with an HTML body, as a load balancer in front of the API returns it.
    #[serde(default)]
    pub http502: f64,
    #[serde(default)]
    pub http503: f64,
    /// `InvalidParameter.ActionInProgress`.
    #[serde(default)]
    pub action_in_progress: f64,
    /// `OperationDenied.ConfigLocked`.
    #[serde(default)]
    pub config_locked: f64,
    /// An HTML error page with HTTP **200**. A gateway's 5xx page is `http502`/`http503`
    /// (a client can tell it by the status alone); the harder case is a middlebox that
    /// answers 200 with HTML (a captive portal, a corporate proxy's block page, a WAF
    /// challenge, nginx `error_page 502 =200`), where only the body says that this is
    /// not the API. The request does not reach the API.
    #[serde(default)]
    pub html_error: f64,
    /// A well-formed error with a code no client knows (`FailedOperation.SomethingNew`);
    /// the request does not take effect.
    #[serde(default)]
    pub unknown_code: f64,
    /// The real answer cut in half: HTTP 200, `application/json`, invalid JSON. The
    /// request took effect.
    #[serde(default)]
    pub invalid_json: f64,
    /// The real answer without `Response.RequestId`. The request took effect.
    #[serde(default)]
    pub missing_request_id: f64,
    /// The real answer padded to [`HUGE_BODY_BYTES`], streamed in chunks without a
    /// `Content-Length`, so a client must count what it reads. The request took effect.
    #[serde(default)]
    pub huge_body: f64,
    /// The connection is closed without a response *after* the request took effect,
    /// the hardest case for a client's idempotency.
    #[serde(default)]
    pub drop: f64,
    /// Latency added before the request is handled, with `latency_probability`
    /// (1.0 when unset).
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub latency_probability: Option<f64>,
}

/// The size of a `hugeBody` answer: 20 MiB, well over any client's sensible cap.
pub const HUGE_BODY_BYTES: usize = 20 * 1024 * 1024;

/// What to do to one request, decided before it is handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub delay_ms: u64,
    /// Answer with this instead of handling the request.
    pub failure: Option<Failure>,
    /// Handle the request, then send its answer malformed like this.
    pub malformed: Option<Malformed>,
    pub drop_after: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A Tencent error answer with this code and message.
    Code(&'static str, &'static str),
    /// An HTML error page with this HTTP status.
    Http(u16),
}

/// How the answer to a handled request is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    InvalidJson,
    MissingRequestId,
    HugeBody,
}

impl Malformed {
    /// How the call log names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::InvalidJson => "Invalid JSON",
            Self::MissingRequestId => "Missing RequestId",
            Self::HugeBody => "Huge body",
        }
    }
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (action, rule) in &self.0 {
            let probabilities = [
                rule.internal_error,
                rule.http502,
                rule.http503,
                rule.action_in_progress,
                rule.config_locked,
                rule.html_error,
                rule.unknown_code,
                rule.invalid_json,
                rule.missing_request_id,
                rule.huge_body,
                rule.drop,
                rule.latency_probability.unwrap_or(1.0),
            ];
            if probabilities.iter().any(|p| !(0.0..=1.0).contains(p)) {
                return Err(format!(
                    "faults for {action}: probabilities must be between 0 and 1"
                ));
            }
        }
        Ok(())
    }

    pub fn plan(&self, action: &str, rng: &mut impl Rng) -> FaultPlan {
        let Some(rule) = self.0.get(action).or_else(|| self.0.get("*")) else {
            return FaultPlan::default();
        };
        let mut roll = |p: f64| p > 0.0 && rng.random_bool(p.min(1.0));
        let delay_ms = if rule.latency_ms > 0 && roll(rule.latency_probability.unwrap_or(1.0)) {
            rule.latency_ms
        } else {
            0
        };
        let failure = if roll(rule.internal_error) {
            Some(Failure::Code(
                "InternalError",
                "An internal error occurred. Please try again later.",
            ))
        } else if roll(rule.http502) {
            Some(Failure::Http(502))
        } else if roll(rule.http503) {
            Some(Failure::Http(503))
        } else if roll(rule.action_in_progress) {
            Some(Failure::Code(
                "InvalidParameter.ActionInProgress",
                "Too many attempts. Please try again later.",
            ))
        } else if roll(rule.config_locked) {
            Some(Failure::Code(
                "OperationDenied.ConfigLocked",
                "The configuration is locked. Please unlock and try again.",
            ))
        } else if roll(rule.html_error) {
            Some(Failure::Http(200))
        } else if roll(rule.unknown_code) {
            Some(Failure::Code(
                "FailedOperation.SomethingNew",
                "A failure this API version did not have when the client was written.",
            ))
        } else {
            None
        };
        let malformed = if failure.is_some() {
            None
        } else if roll(rule.invalid_json) {
            Some(Malformed::InvalidJson)
        } else if roll(rule.missing_request_id) {
            Some(Malformed::MissingRequestId)
        } else if roll(rule.huge_body) {
            Some(Malformed::HugeBody)
        } else {
            None
        };
        let drop_after = failure.is_none() && malformed.is_none() && roll(rule.drop);
        FaultPlan {
            delay_ms,
            failure,
            malformed,
            drop_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn config(json: serde_json::Value) -> FaultConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn certain_faults_always_fire_and_absent_ones_never() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let faults =
            config(serde_json::json!({"ModifyHostsCertificate": {"http503": 1.0, "latencyMs": 5}}));
        let plan = faults.plan("ModifyHostsCertificate", &mut rng);
        assert_eq!(
            plan,
            FaultPlan {
                delay_ms: 5,
                failure: Some(Failure::Http(503)),
                malformed: None,
                drop_after: false
            }
        );
        assert_eq!(
            faults.plan("UploadCertificate", &mut rng),
            FaultPlan::default()
        );
    }

    #[test]
    fn wildcard_applies_to_actions_without_their_own_rule() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let faults = config(serde_json::json!({"*": {"drop": 1.0}, "DescribeCertificate": {}}));
        assert!(faults.plan("UploadCertificate", &mut rng).drop_after);
        assert!(!faults.plan("DescribeCertificate", &mut rng).drop_after);
    }

    #[test]
    fn probabilities_are_roughly_honoured() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let faults = config(serde_json::json!({"*": {"internalError": 0.2}}));
        let failures = (0..10_000)
            .filter(|_| faults.plan("X", &mut rng).failure.is_some())
            .count();
        assert!((1_700..2_300).contains(&failures), "{failures}");
    }

    #[test]
    fn malformed_answers_each_have_a_plan() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cases = [
            ("htmlError", Some(Failure::Http(200)), None),
            (
                "unknownCode",
                Some(Failure::Code(
                    "FailedOperation.SomethingNew",
                    "A failure this API version did not have when the client was written.",
                )),
                None,
            ),
            ("invalidJson", None, Some(Malformed::InvalidJson)),
            ("missingRequestId", None, Some(Malformed::MissingRequestId)),
            ("hugeBody", None, Some(Malformed::HugeBody)),
        ];
        for (name, failure, malformed) in cases {
            let faults = config(serde_json::json!({"*": {name: 1.0, "drop": 1.0}}));
            assert!(faults.validate().is_ok(), "{name}");
            let plan = faults.plan("DescribeAccelerationDomains", &mut rng);
            assert_eq!(
                plan,
                FaultPlan {
                    delay_ms: 0,
                    failure,
                    malformed,
                    drop_after: false
                },
                "{name}: a malformed answer is not also dropped"
            );
            let out_of_range = config(serde_json::json!({"*": {name: -0.1}}));
            assert!(out_of_range.validate().is_err(), "{name}");
        }
    }

    #[test]
    fn failures_come_before_malformed_answers_in_field_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let faults = config(serde_json::json!({"*": {
            "configLocked": 1.0, "htmlError": 1.0, "invalidJson": 1.0, "hugeBody": 1.0
        }}));
        let plan = faults.plan("X", &mut rng);
        assert!(matches!(
            plan.failure,
            Some(Failure::Code("OperationDenied.ConfigLocked", _))
        ));
        assert_eq!(plan.malformed, None);
        let faults = config(serde_json::json!({"*": {"hugeBody": 1.0, "missingRequestId": 1.0}}));
        assert_eq!(
            faults.plan("X", &mut rng).malformed,
            Some(Malformed::MissingRequestId)
        );
    }

    #[test]
    fn out_of_range_probabilities_are_rejected() {
        assert!(
            config(serde_json::json!({"*": {"drop": 1.5}}))
                .validate()
                .is_err()
        );
        assert!(
            config(serde_json::json!({"*": {"drop": 0.5}}))
                .validate()
                .is_ok()
        );
    }
}
