//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules: a lease
//! is taken over only after its record has stayed unchanged for its whole duration *as
//! this process observed it* (so clocks of different nodes never matter), and every
//! write carries the resourceVersion it read (so two candidates never both win).
//!
//! A leader that cannot renew within the renew deadline gives up at once, before the
//! lease can expire for the others.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

/// How the lease is named, held and renewed.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per process: the pod name, else host name and process id.
    pub identity: String,
    /// How long a standby waits on an unchanged record before it takes over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// The time between two attempts to acquire or renew.
    pub retry_period: Duration,
}

/// What to do with a lease as read.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Write it with this process as the holder (acquire, renew or take over).
    Claim,
    /// Someone else holds it and has renewed it recently enough.
    Wait,
}

/// Decides from the record and how long this process has seen it unchanged.
fn next_step(spec: &LeaseSpec, identity: &str, unchanged_for: Duration, default: Duration) -> Step {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default, Duration::from_secs);
    if holder.is_empty() || holder == identity || unchanged_for >= duration {
        Step::Claim
    } else {
        Step::Wait
    }
}

/// A lease record as a comparable value: holder, renew time, transitions.
type Record = (Option<String>, Option<MicroTime>, Option<i32>);

/// The record as a comparable value: any renewal changes it.
fn record_of(spec: &LeaseSpec) -> Record {
    (
        spec.holder_identity.clone(),
        spec.renew_time.clone(),
        spec.lease_transitions,
    )
}

/// The spec with this process as holder; a change of holder counts a transition.
fn claimed(old: &LeaseSpec, config: &LeaseConfig) -> LeaseSpec {
    let now = MicroTime(jiff::Timestamp::now());
    let renewing = old.holder_identity.as_deref() == Some(config.identity.as_str());
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.lease_duration.as_secs().max(1) as i32),
        acquire_time: if renewing {
            old.acquire_time.clone()
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(
            old.lease_transitions.unwrap_or(0)
                + i32::from(!renewing && old.holder_identity.is_some()),
        ),
        ..old.clone()
    }
}

/// Takes part in the election of one lease.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The last record read and when it was first seen (client-go's observedTime).
    observed: Option<(Record, Instant)>,
}

impl Elector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One attempt: true when this process holds the lease afterwards.
    async fn try_claim(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    ..Default::default()
                },
                spec: Some(claimed(&LeaseSpec::default(), &self.config)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = record_of(&spec);
        let since = match &self.observed {
            Some((seen, since)) if *seen == record => *since,
            _ => {
                let now = Instant::now();
                self.observed = Some((record, now));
                now
            }
        };
        if next_step(
            &spec,
            &self.config.identity,
            since.elapsed(),
            self.config.lease_duration,
        ) == Step::Wait
        {
            return Ok(false);
        }
        lease.spec = Some(claimed(&spec, &self.config));
        // `replace` sends the resourceVersion read above: a concurrent writer makes it fail.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                let spec = written.spec.unwrap_or_default();
                self.observed = Some((record_of(&spec), Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Returns once this process holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_claim().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "leader election: cannot read or write the lease")
                }
            }
            tokio::time::sleep(crate::controller::status::jittered(
                self.config.retry_period,
                rand::random(),
            ))
            .await;
        }
    }

    /// Renews the lease every retry period; returns (with the reason) once leadership
    /// is lost: another process holds the lease, or no renewal succeeded within the
    /// renew deadline.
    pub async fn hold(&mut self) -> String {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
            match tokio::time::timeout(left, self.try_claim()).await {
                Ok(Ok(true)) => renewed = Instant::now(),
                Ok(Ok(false)) => return "another process holds the lease".into(),
                Ok(Err(error)) if renewed.elapsed() >= self.config.renew_deadline => {
                    return format!("the lease could not be renewed: {error}");
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "leader election: renewal failed; retrying")
                }
                Err(_) => return "the lease could not be renewed within the renew deadline".into(),
            }
        }
    }

    /// Gives the lease up so that a standby takes over without waiting for it to expire.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        lease.spec = Some(spec);
        if let Err(error) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "leader election: could not release the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn held_by(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn a_free_lease_or_our_own_is_claimed() {
        assert_eq!(
            next_step(&held_by(None), "a", Duration::ZERO, D),
            Step::Claim
        );
        assert_eq!(
            next_step(&held_by(Some("")), "a", Duration::ZERO, D),
            Step::Claim
        );
        assert_eq!(
            next_step(&held_by(Some("a")), "a", Duration::ZERO, D),
            Step::Claim
        );
    }

    #[test]
    fn another_holder_is_waited_on_until_its_record_is_stale_for_the_whole_duration() {
        let spec = held_by(Some("b"));
        assert_eq!(
            next_step(&spec, "a", Duration::from_secs(14), D),
            Step::Wait
        );
        assert_eq!(
            next_step(&spec, "a", Duration::from_secs(15), D),
            Step::Claim
        );
        // The record's own duration wins over ours.
        let short = LeaseSpec {
            lease_duration_seconds: Some(1),
            ..spec
        };
        assert_eq!(
            next_step(&short, "a", Duration::from_secs(1), D),
            Step::Claim
        );
    }

    #[test]
    fn claiming_counts_transitions_only_when_the_holder_changes() {
        let config = LeaseConfig {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "a".into(),
            lease_duration: D,
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        let taken = claimed(
            &LeaseSpec {
                lease_transitions: Some(3),
                ..held_by(Some("b"))
            },
            &config,
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        let renewed = claimed(&taken, &config);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
        assert_eq!(
            claimed(&LeaseSpec::default(), &config).lease_transitions,
            Some(0)
        );
    }
}
