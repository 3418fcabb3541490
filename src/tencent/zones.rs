//! Shared observation of zones: every binding of a zone is served from one paged
//! `DescribeAccelerationDomains` listing of the zone, read at most once per freshness
//! interval, instead of one call per binding. A listing that started before a Modify
//! of some hosts is stale for readers of those hosts only: during a cold start, where
//! Modifies of the zone never stop, new bindings still share listings.
//!
//! Concurrent readers of one zone wait for a single listing (single flight), so a
//! thousand bindings polling twenty zones cost about twenty listings per interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::credentials::Credentials;
use super::error::CallError;
use super::teo::{AccelerationDomain, TeoApi};

/// (SecretId, ZoneId): what one account sees of one zone.
type ZoneKey = (String, String);

/// One listing of a zone.
struct Snapshot {
    /// When the listing started: it shows no change made after this.
    started: Instant,
    /// Per lower-case host name.
    domains: HashMap<String, AccelerationDomain>,
    request_id: String,
}

pub struct ZoneObserver {
    teo: TeoApi,
    /// Per zone: its last listing, behind a lock that one listing holds at a time.
    zones: Mutex<HashMap<ZoneKey, Arc<tokio::sync::Mutex<Option<Snapshot>>>>>,
    /// When each host of each zone was last modified (by this process), per lower-case
    /// host name.
    modified: Mutex<HashMap<ZoneKey, HashMap<String, Instant>>>,
}

impl ZoneObserver {
    pub fn new(teo: TeoApi) -> Self {
        Self {
            teo,
            zones: Mutex::default(),
            modified: Mutex::default(),
        }
    }

    /// The domains of `hosts` (those that exist) in `zone_id`, with its RequestId, from a
    /// listing that started at most `max_age` before this call (zero: after it) and after
    /// the last Modify of any of `hosts`. Callers that arrive while a listing runs wait for it, and
    /// share the next one if it is too old for them.
    pub async fn observe(
        &self,
        creds: &Credentials,
        zone_id: &str,
        hosts: &[String],
        max_age: Duration,
    ) -> Result<(Vec<AccelerationDomain>, String), CallError> {
        let asked = Instant::now();
        let key = (creds.secret_id.clone(), zone_id.to_owned());
        let entry = Arc::clone(
            self.zones
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        let mut snapshot = entry.lock().await;
        let modified = self
            .modified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .and_then(|times| hosts.iter().filter_map(|h| times.get(h)).max().copied());
        let usable = snapshot
            .as_ref()
            .is_some_and(|s| fresh(s.started, modified, max_age, asked));
        if !usable {
            let started = Instant::now();
            let (domains, request_id) = self.teo.describe_zone(creds, zone_id).await?;
            *snapshot = Some(Snapshot {
                started,
                domains: domains
                    .into_iter()
                    .map(|d| (d.domain_name.to_ascii_lowercase(), d))
                    .collect(),
                request_id,
            });
        }
        let snapshot = snapshot.as_ref().expect("a listing was just stored");
        let mut seen = Vec::with_capacity(hosts.len());
        let domains = hosts
            .into_iter()
            .filter(|h| {
                let first = !seen.contains(h);
                seen.push(h.clone());
                first
            })
            .filter_map(|h| snapshot.domains.get(&h).cloned())
            .collect();
        Ok((domains, snapshot.request_id.clone()))
    }

    /// Records that the hosts were (or may have been) modified now: listings that
    /// started before are stale for them.
    pub fn modified(&self, secret_id: &str, zone_id: &str, hosts: &[String]) {
        let now = Instant::now();
        let mut modified = self.modified.lock().unwrap_or_else(|p| p.into_inner());
        let times = modified
            .entry((secret_id.to_owned(), zone_id.to_owned()))
            .or_default();
        for host in hosts {
            times.insert(host.to_ascii_lowercase(), now);
        }
    }
}

/// Whether a listing that started at `started` may serve a read asked for at `asked`
/// that accepts listings up to `max_age` old.
fn fresh(started: Instant, modified: Option<Instant>, max_age: Duration, asked: Instant) -> bool {
    asked.saturating_duration_since(started) <= max_age && modified.is_none_or(|m| started > m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_fresh_while_young_and_newer_than_the_last_modify() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(fresh(t0, None, s(2), t0 + s(1)));
        assert!(!fresh(t0, None, s(2), t0 + s(3)));
        // Zero: only a listing that started after the read was asked for.
        assert!(!fresh(
            t0,
            None,
            Duration::ZERO,
            t0 + Duration::from_millis(1)
        ));
        assert!(fresh(t0 + s(1), None, Duration::ZERO, t0));
        assert!(
            !fresh(t0, Some(t0), s(2), t0 + s(1)),
            "modified as it started"
        );
        assert!(fresh(t0 + s(1), Some(t0), s(2), t0 + s(2)));
        assert!(!fresh(t0, Some(t0 + s(1)), s(60), t0 + s(2)));
    }
}
