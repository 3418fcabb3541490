//! Condition types, reasons and helpers for `status.conditions` (metav1.Condition).
//!
//! A condition's `reason` must match `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, so it is a
//! CamelCase category (`APPLIED` … `TERMINATING`); the exact Tencent Cloud error code goes in
//! `status.lastError.code` and the condition's message.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Summary: EdgeOne serves what the spec asks for.
pub const READY: &str = "Ready";
/// The current generation was applied to EdgeOne without error.
pub const SYNCED: &str = "Synced";
/// EdgeOne reports every host's certificate as deployed.
pub const DEPLOYED: &str = "Deployed";

// Condition reasons: CamelCase categories, never Tencent error codes (those contain dots).

/// The desired configuration was applied to EdgeOne.
pub const APPLIED: &str = "Applied";
/// EdgeOne accepted the configuration and is still deploying it.
pub const DEPLOYING: &str = "Deploying";
/// EdgeOne reports every host's certificate as deployed.
/// (Named `_REASON` because [`DEPLOYED`] is the condition type of the same name.)
pub const DEPLOYED_REASON: &str = "Deployed";
/// EdgeOne reports a failed deployment for at least one host.
pub const DEPLOYMENT_FAILED: &str = "DeploymentFailed";
/// The operator is working on the binding.
pub const RECONCILING: &str = "Reconciling";
/// The spec cannot be applied as written (Tencent Cloud or the operator refused it).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// A referenced Secret (or the Secret of a cert-manager Certificate) does not exist.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
/// A certificate is malformed, expired, does not match its key or does not cover the hosts.
pub const CERTIFICATE_INVALID: &str = "CertificateInvalid";
/// No Tencent Cloud credentials could be found.
pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
/// Tencent Cloud refused the credentials or their permissions.
pub const AUTH_FAILURE: &str = "AuthFailure";
/// Tencent Cloud answered with another error (see status.lastError).
pub const TENCENT_CLOUD_ERROR: &str = "TencentCloudError";
/// Tencent Cloud rate-limited the operator; it retries later.
pub const THROTTLED: &str = "Throttled";
/// The binding is being deleted.
pub const TERMINATING: &str = "Terminating";
/// A cert-manager Certificate the binding names is missing or not Ready yet.
pub const WAITING_FOR_CERTIFICATE: &str = "WaitingForCertificate";

/// Sets the condition `type_` to `status` ("True"/"False") with `reason` and `message`.
///
/// `lastTransitionTime` becomes `now` when the condition is new or its status changes, and
/// is kept when only the reason, message or generation change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.status = status.to_owned();
                existing.last_transition_time = Time(now);
            }
            existing.reason = reason.to_owned();
            existing.message = message.to_owned();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: Time(now),
        }),
    }
}

/// Whether the condition `type_` is present with status "True".
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The condition `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_new_condition_is_added_with_now_as_its_transition_time() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, READY, true, APPLIED, "ok", Some(3), at(0));
        assert_eq!(
            conditions,
            [Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Applied".into(),
                message: "ok".into(),
                observed_generation: Some(3),
                last_transition_time: Time(at(0)),
            }]
        );
        assert!(is_true(&conditions, READY));
    }

    #[test]
    fn the_same_status_keeps_the_transition_time_and_updates_the_rest() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            SYNCED,
            false,
            THROTTLED,
            "a",
            Some(1),
            at(0),
        );
        set_condition(
            &mut conditions,
            SYNCED,
            false,
            AUTH_FAILURE,
            "b",
            Some(2),
            at(60),
        );
        assert_eq!(conditions.len(), 1);
        let c = &conditions[0];
        assert_eq!(c.last_transition_time, Time(at(0)));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("False", "AuthFailure", "b")
        );
        assert_eq!(c.observed_generation, Some(2));
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, DEPLOYED, false, DEPLOYING, "", None, at(0));
        set_condition(
            &mut conditions,
            DEPLOYED,
            true,
            DEPLOYED_REASON,
            "",
            None,
            at(30),
        );
        assert_eq!(conditions[0].last_transition_time, Time(at(30)));
        assert!(is_true(&conditions, DEPLOYED));
        set_condition(
            &mut conditions,
            DEPLOYED,
            false,
            DEPLOYMENT_FAILED,
            "",
            None,
            at(90),
        );
        assert_eq!(conditions[0].last_transition_time, Time(at(90)));
        assert!(!is_true(&conditions, DEPLOYED));
    }

    #[test]
    fn conditions_of_other_types_are_left_alone() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, READY, true, APPLIED, "", Some(1), at(0));
        set_condition(
            &mut conditions,
            SYNCED,
            false,
            INVALID_SPEC,
            "x",
            Some(1),
            at(5),
        );
        assert_eq!(conditions.len(), 2);
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, SYNCED));
        assert!(
            !is_true(&conditions, DEPLOYED),
            "an absent condition is not true"
        );
        assert_eq!(
            find(&conditions, SYNCED).map(|c| c.message.as_str()),
            Some("x")
        );
        assert_eq!(
            find(&conditions, READY).unwrap().last_transition_time,
            Time(at(0))
        );
    }

    #[test]
    fn every_reason_is_a_valid_condition_reason() {
        let all = [
            APPLIED,
            DEPLOYING,
            DEPLOYED_REASON,
            DEPLOYMENT_FAILED,
            RECONCILING,
            INVALID_SPEC,
            SECRET_NOT_FOUND,
            CERTIFICATE_INVALID,
            CREDENTIALS_MISSING,
            AUTH_FAILURE,
            TENCENT_CLOUD_ERROR,
            THROTTLED,
            TERMINATING,
        ];
        // ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$, as metav1.Condition requires.
        for r in all {
            let bytes = r.as_bytes();
            assert!(bytes[0].is_ascii_alphabetic(), "{r}");
            assert!(
                bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':')),
                "{r}"
            );
            assert!(
                bytes[bytes.len() - 1].is_ascii_alphanumeric() || r.ends_with('_'),
                "{r}"
            );
        }
    }
}
