//! What a reconcile's outcome means for the binding: its next status, the events to
//! publish and when to look again. Pure, so the rules are tested in one place.

use std::time::Duration;

use crate::api::conditions::{self, DEPLOYED, READY, SYNCED, set_condition};
use crate::api::{EdgeOneCertificateBindingStatus, HostStatus, LastError};
use crate::controller::plan::Deployment;
use crate::tencent::error::ErrorClass;

/// What happened in one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `ModifyHostsCertificate` was accepted for `hosts`. `drift` when the spec had
    /// already been applied: EdgeOne was changed behind the operator's back.
    Applied {
        request_id: String,
        hosts: Vec<String>,
        drift: bool,
    },
    /// EdgeOne already matches; `request_id` is the observing call's.
    InSync {
        request_id: String,
        deployment: Deployment,
        hosts: Vec<HostStatus>,
    },
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The spec cannot be applied as written; the message says what to change.
    InvalidSpec(String),
    /// No usable credentials; the message says where they were looked for.
    CredentialsMissing(String),
    /// A Secret the spec names does not exist.
    SecretNotFound(String),
    /// A certificate from a Secret failed the local checks; nothing was sent.
    CertificateInvalid(String),
    /// A cert-manager Certificate the spec names is missing or not Ready yet.
    WaitingForCertificate(String),
    /// A Tencent Cloud call failed (or never got an answer: `code` is then ours).
    Tencent {
        class: ErrorClass,
        code: String,
        message: String,
        request_id: Option<String>,
    },
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::InvalidSpec(_) => conditions::INVALID_SPEC,
            Failure::CredentialsMissing(_) => conditions::CREDENTIALS_MISSING,
            Failure::SecretNotFound(_) => conditions::SECRET_NOT_FOUND,
            Failure::CertificateInvalid(_) => conditions::CERTIFICATE_INVALID,
            Failure::WaitingForCertificate(_) => conditions::WAITING_FOR_CERTIFICATE,
            Failure::Tencent {
                class: ErrorClass::Auth,
                ..
            } => conditions::AUTH_FAILURE,
            Failure::Tencent {
                class: ErrorClass::Throttled,
                ..
            } => conditions::THROTTLED,
            Failure::Tencent { .. } => conditions::TENCENT_CLOUD_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::InvalidSpec(m)
            | Failure::CredentialsMissing(m)
            | Failure::SecretNotFound(m)
            | Failure::CertificateInvalid(m)
            | Failure::WaitingForCertificate(m) => m.clone(),
            Failure::Tencent {
                code,
                message,
                request_id,
                ..
            } => match request_id {
                Some(id) => format!("{code}: {message} (RequestId {id})"),
                None => format!("{code}: {message}"),
            },
        }
    }

    /// Whether waiting helps; otherwise only a change of spec, Secret or credentials does.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Tencent { class, .. } if class.is_retryable())
    }
}

/// The status after `outcome`. `applied_hash` is the digest of what the current spec
/// asks for (None when the spec could not be resolved).
pub fn next_status(
    old: &EdgeOneCertificateBindingStatus,
    outcome: &Outcome,
    generation: Option<i64>,
    applied_hash: Option<&str>,
    now: jiff::Timestamp,
) -> EdgeOneCertificateBindingStatus {
    let mut status = old.clone();
    status.observed_generation = generation;
    let conditions_of = &mut status.conditions;
    let mut set = |type_: &str, ok: bool, reason: &str, message: &str| {
        set_condition(conditions_of, type_, ok, reason, message, generation, now)
    };
    match outcome {
        Outcome::Applied {
            request_id, hosts, ..
        } => {
            let message = format!(
                "ModifyHostsCertificate accepted for {} (RequestId {request_id})",
                hosts.join(", ")
            );
            set(SYNCED, true, conditions::APPLIED, &message);
            set(
                DEPLOYED,
                false,
                conditions::DEPLOYING,
                "waiting for EdgeOne to deploy the certificates",
            );
            set(READY, false, conditions::DEPLOYING, &message);
            status.request_id = Some(request_id.clone());
            status.last_error = None;
            status.applied_hash = applied_hash.map(str::to_owned);
            status.last_sync_time = Some(now.to_string());
        }
        Outcome::InSync {
            request_id,
            deployment,
            hosts,
        } => {
            set(
                SYNCED,
                true,
                conditions::APPLIED,
                "EdgeOne matches the spec",
            );
            let (deployed, reason, message) = match deployment {
                Deployment::Deployed => (
                    true,
                    conditions::DEPLOYED_REASON,
                    "every host serves the configured certificates".to_owned(),
                ),
                Deployment::Pending { hosts } => (
                    false,
                    conditions::DEPLOYING,
                    format!("EdgeOne is still deploying to {}", hosts.join(", ")),
                ),
                Deployment::Failed { hosts } => (
                    false,
                    conditions::DEPLOYMENT_FAILED,
                    format!(
                        "EdgeOne reports the deployment failed for {}",
                        hosts.join(", ")
                    ),
                ),
            };
            set(DEPLOYED, deployed, reason, &message);
            set(READY, deployed, reason, &message);
            if status.applied_hash.as_deref() != applied_hash || status.last_error.is_some() {
                // First time in sync for this spec: remember when and with which call.
                status.last_sync_time = Some(now.to_string());
                status.request_id = Some(request_id.clone());
            }
            status.last_error = None;
            status.applied_hash = applied_hash.map(str::to_owned);
            status.hosts = hosts.clone();
        }
        Outcome::Failed(failure) => {
            let message = failure.message();
            set(SYNCED, false, failure.reason(), &message);
            set(READY, false, failure.reason(), &message);
            if let Failure::Tencent {
                code,
                message,
                request_id,
                ..
            } = failure
            {
                let same = status
                    .last_error
                    .as_ref()
                    .is_some_and(|e| &e.code == code && &e.message == message);
                if !same || request_id.is_some() {
                    status.last_error = Some(LastError {
                        code: code.clone(),
                        message: message.clone(),
                        request_id: request_id.clone(),
                        time: now.to_string(),
                    });
                }
                if request_id.is_some() {
                    status.request_id = request_id.clone();
                }
            } else {
                status.last_error = None;
            }
        }
    }
    status
}

/// Condition type: a bound certificate expires within the warning period.
pub const CERTIFICATE_EXPIRING_SOON: &str = "CertificateExpiringSoon";

/// Sets `CertificateExpiringSoon` from the certificates' `notAfter`; returns the event
/// to publish when it turns true.
pub fn check_expiry(
    status: &mut EdgeOneCertificateBindingStatus,
    warn_within: Duration,
    now: jiff::Timestamp,
) -> Option<EventNote> {
    let soonest = status
        .certificates
        .iter()
        .filter_map(|c| Some((c.not_after.as_deref()?.parse::<jiff::Timestamp>().ok()?, c)))
        .min_by_key(|(not_after, _)| *not_after);
    let deadline = now
        .checked_add(
            jiff::SignedDuration::try_from(warn_within).unwrap_or(jiff::SignedDuration::MAX),
        )
        .unwrap_or(now);
    let was = conditions::is_true(&status.conditions, CERTIFICATE_EXPIRING_SOON);
    let generation = status.observed_generation;
    match soonest {
        Some((not_after, cert)) if not_after <= deadline => {
            let message = format!(
                "certificate {} ({}) expires at {not_after} and has not been renewed; renew it (cert-manager renews before expiry when its Certificate is healthy)",
                cert.cert_id, cert.source
            );
            set_condition(
                &mut status.conditions,
                CERTIFICATE_EXPIRING_SOON,
                true,
                CERTIFICATE_EXPIRING_SOON,
                &message,
                generation,
                now,
            );
            (!was).then_some((true, CERTIFICATE_EXPIRING_SOON, message))
        }
        _ if status
            .conditions
            .iter()
            .any(|c| c.type_ == CERTIFICATE_EXPIRING_SOON)
            || soonest.is_some() =>
        {
            set_condition(
                &mut status.conditions,
                CERTIFICATE_EXPIRING_SOON,
                false,
                "NotExpiring",
                "no bound certificate expires within the warning period",
                generation,
                now,
            );
            None
        }
        _ => None,
    }
}

/// An event to publish: (warning?, reason, note).
pub type EventNote = (bool, &'static str, String);

/// The events an outcome deserves, given the status before it.
pub fn events(old: &EdgeOneCertificateBindingStatus, outcome: &Outcome) -> Vec<EventNote> {
    match outcome {
        Outcome::Applied {
            request_id,
            hosts,
            drift: true,
        } => vec![(
            true,
            "DriftRepaired",
            format!(
                "EdgeOne's configuration of {} differed from the spec; re-applied (RequestId {request_id})",
                hosts.join(", ")
            ),
        )],
        Outcome::Applied {
            request_id,
            hosts,
            drift: false,
        } => {
            vec![(
                false,
                "Applied",
                format!(
                    "ModifyHostsCertificate accepted for {} (RequestId {request_id})",
                    hosts.join(", ")
                ),
            )]
        }
        Outcome::InSync {
            deployment: Deployment::Deployed,
            ..
        } if !conditions::is_true(&old.conditions, DEPLOYED) => {
            vec![(
                false,
                "Deployed",
                "EdgeOne serves the configured certificates on every host".into(),
            )]
        }
        Outcome::InSync {
            deployment: Deployment::Failed { hosts },
            ..
        } => {
            let already = old
                .conditions
                .iter()
                .any(|c| c.type_ == DEPLOYED && c.reason == conditions::DEPLOYMENT_FAILED);
            if already {
                vec![]
            } else {
                vec![(
                    true,
                    "DeploymentFailed",
                    format!(
                        "EdgeOne reports the deployment failed for {}",
                        hosts.join(", ")
                    ),
                )]
            }
        }
        Outcome::Failed(failure) => {
            // One event per distinct failure, not one per retry.
            let message = failure.message();
            let repeated = old
                .conditions
                .iter()
                .any(|c| c.type_ == SYNCED && c.status == "False" && c.message == message);
            if repeated {
                vec![]
            } else {
                vec![(true, failure.reason(), message)]
            }
        }
        Outcome::InSync { .. } => vec![],
    }
}

/// How long to wait before the next look at the binding.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Periodic drift check of a healthy binding.
    pub drift_interval: Duration,
    /// Slow re-check of a binding that failed for a reason waiting does not fix.
    pub terminal_recheck: Duration,
    /// While EdgeOne deploys.
    pub deploy_poll: Duration,
    /// Exponential backoff bounds for retryable failures.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Warn when a bound certificate expires within this long.
    pub expiry_warning: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            drift_interval: Duration::from_secs(600),
            terminal_recheck: Duration::from_secs(3600),
            deploy_poll: Duration::from_secs(2),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            expiry_warning: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// When to reconcile again, before jitter. `failures` counts consecutive retryable
/// failures of this binding, this one included.
pub fn requeue_after(outcome: &Outcome, failures: u32, timing: &Timing) -> Duration {
    match outcome {
        Outcome::Applied { .. }
        | Outcome::InSync {
            deployment: Deployment::Pending { .. },
            ..
        } => timing.deploy_poll,
        Outcome::InSync {
            deployment: Deployment::Deployed,
            ..
        } => timing.drift_interval,
        Outcome::InSync {
            deployment: Deployment::Failed { .. },
            ..
        } => timing.terminal_recheck,
        Outcome::Failed(f) if f.is_retryable() => {
            let exponent = failures.saturating_sub(1).min(20);
            timing
                .backoff_min
                .saturating_mul(1 << exponent)
                .min(timing.backoff_max)
        }
        // Certificate changes trigger a reconcile; the poll covers a cert-manager
        // installed after the operator started.
        Outcome::Failed(Failure::WaitingForCertificate(_)) => timing.deploy_poll * 15,
        Outcome::Failed(_) => timing.terminal_recheck,
    }
}

/// `base` ± 20%, so that bindings created together do not poll together.
pub fn jittered(base: Duration, unit_random: f64) -> Duration {
    base.mul_f64(0.8 + 0.4 * unit_random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    fn condition<'a>(
        status: &'a EdgeOneCertificateBindingStatus,
        type_: &str,
    ) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    fn tencent(class: ErrorClass, code: &str) -> Outcome {
        Outcome::Failed(Failure::Tencent {
            class,
            code: code.into(),
            message: "m".into(),
            request_id: Some("rid".into()),
        })
    }

    #[test]
    fn applied_then_deployed() {
        let empty = EdgeOneCertificateBindingStatus::default();
        let applied = Outcome::Applied {
            request_id: "r1".into(),
            hosts: vec!["a".into()],
            drift: false,
        };
        let s1 = next_status(&empty, &applied, Some(1), Some("h"), now());
        assert_eq!(condition(&s1, SYNCED), ("True", conditions::APPLIED));
        assert_eq!(condition(&s1, READY), ("False", conditions::DEPLOYING));
        assert_eq!(s1.request_id.as_deref(), Some("r1"));
        assert_eq!(s1.observed_generation, Some(1));
        assert_eq!(events(&empty, &applied)[0].1, "Applied");

        let deployed = Outcome::InSync {
            request_id: "r2".into(),
            deployment: Deployment::Deployed,
            hosts: vec![],
        };
        let s2 = next_status(&s1, &deployed, Some(1), Some("h"), now());
        assert_eq!(condition(&s2, READY), ("True", conditions::DEPLOYED_REASON));
        assert_eq!(
            s2.request_id.as_deref(),
            Some("r1"),
            "the Modify's RequestId stays"
        );
        assert_eq!(events(&s1, &deployed)[0].1, "Deployed");
        // Steady state: the same outcome changes nothing and says nothing.
        let s3 = next_status(&s2, &deployed, Some(1), Some("h"), now());
        assert_eq!(s3, s2);
        assert!(events(&s2, &deployed).is_empty());
    }

    #[test]
    fn tencent_errors_keep_the_exact_code() {
        let empty = EdgeOneCertificateBindingStatus::default();
        let failed = tencent(ErrorClass::Terminal, "ResourceUnavailable.ZoneNotFound");
        let s = next_status(&empty, &failed, Some(2), None, now());
        let error = s.last_error.clone().unwrap();
        assert_eq!(
            (error.code.as_str(), error.request_id.as_deref()),
            ("ResourceUnavailable.ZoneNotFound", Some("rid"))
        );
        assert_eq!(
            condition(&s, READY),
            ("False", conditions::TENCENT_CLOUD_ERROR)
        );
        assert_eq!(events(&empty, &failed).len(), 1);
        assert!(
            events(&s, &failed).is_empty(),
            "no event storm for the same failure"
        );
        assert_eq!(
            condition(
                &next_status(
                    &empty,
                    &tencent(ErrorClass::Auth, "AuthFailure.SignatureFailure"),
                    None,
                    None,
                    now()
                ),
                READY
            )
            .1,
            conditions::AUTH_FAILURE
        );
    }

    #[test]
    fn expiry_warning_turns_on_once() {
        let cert = |not_after: &str| crate::api::CertificateStatus {
            cert_id: "c1".into(),
            source: "secret/web".into(),
            fingerprint_sha256: None,
            not_after: Some(not_after.into()),
            subject_names: vec![],
        };
        let warn = Duration::from_secs(14 * 24 * 3600);
        let mut status = EdgeOneCertificateBindingStatus {
            certificates: vec![cert("2026-12-10T00:00:00Z")],
            ..Default::default()
        };
        let event = check_expiry(&mut status, warn, now()).expect("an event when it turns on");
        assert!(event.0 && event.2.contains("c1"));
        assert_eq!(
            condition(&status, CERTIFICATE_EXPIRING_SOON),
            ("True", CERTIFICATE_EXPIRING_SOON)
        );
        assert!(check_expiry(&mut status, warn, now()).is_none(), "once");
        status.certificates = vec![cert("2027-06-01T00:00:00Z")];
        assert!(check_expiry(&mut status, warn, now()).is_none());
        assert_eq!(condition(&status, CERTIFICATE_EXPIRING_SOON).0, "False");
        let mut certid_only = EdgeOneCertificateBindingStatus::default();
        assert!(check_expiry(&mut certid_only, warn, now()).is_none());
        assert!(
            certid_only.conditions.is_empty(),
            "no condition without known expiry"
        );
    }

    #[test]
    fn requeue_policy() {
        let t = Timing::default();
        let retryable = tencent(ErrorClass::Retryable, "InternalError");
        assert_eq!(requeue_after(&retryable, 1, &t), Duration::from_secs(1));
        assert_eq!(requeue_after(&retryable, 4, &t), Duration::from_secs(8));
        assert_eq!(requeue_after(&retryable, 40, &t), Duration::from_secs(300));
        assert_eq!(
            requeue_after(&tencent(ErrorClass::Terminal, "X"), 1, &t),
            t.terminal_recheck
        );
        assert_eq!(
            requeue_after(&Outcome::Failed(Failure::InvalidSpec("x".into())), 1, &t),
            t.terminal_recheck
        );
        let deployed = Outcome::InSync {
            request_id: "r".into(),
            deployment: Deployment::Deployed,
            hosts: vec![],
        };
        assert_eq!(requeue_after(&deployed, 0, &t), t.drift_interval);
        let j = jittered(Duration::from_secs(100), 0.0);
        assert_eq!(
            (j, jittered(Duration::from_secs(100), 1.0)),
            (Duration::from_secs(80), Duration::from_secs(120))
        );
    }
}
