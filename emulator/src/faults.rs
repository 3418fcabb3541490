//! Fault injection: per action (or `*` for all), probabilities of the failures a real
//! cloud API shows under load, and added latency.

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

/// What to do to one request, decided before it is handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub delay_ms: u64,
    /// Answer with this instead of handling the request.
    pub failure: Option<Failure>,
    pub drop_after: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Code(&'static str, &'static str),
    Http(u16),
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
        } else {
            None
        };
        let drop_after = failure.is_none() && roll(rule.drop);
        FaultPlan {
            delay_ms,
            failure,
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
