//! The pure core: from what a binding asks for and what EdgeOne reports, decide what to
//! do. No I/O, so every case is a table row in the tests below.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// `Switch` + certificate ids, as EdgeOne's `MutualTLS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MutualTls {
    pub enabled: bool,
    /// Sorted, without duplicates.
    pub cert_ids: Vec<String>,
}

/// Origin certificate verification: `disable` or `custom_ca` with CA ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OriginVerify {
    pub mode: String,
    /// Sorted, without duplicates.
    pub ca_ids: Vec<String>,
}

/// The certificate configuration a binding wants on each of its hosts, in Tencent's
/// terms with every certificate already resolved to an id. `None` parts are not
/// managed by the binding: EdgeOne keeps whatever they are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DesiredConfig {
    /// `sslcert`, `eofreecert`, `eofreecert_manual` or `disable`.
    pub mode: String,
    /// Sorted, without duplicates; empty unless `mode` is `sslcert`.
    pub server_cert_ids: Vec<String>,
    pub client_mtls: Option<MutualTls>,
    pub upstream_mtls: Option<MutualTls>,
    pub origin_verify: Option<OriginVerify>,
}

impl DesiredConfig {
    /// A stable digest of the configuration and hosts: what `status.appliedHash` holds.
    pub fn hash(&self, zone_id: &str, hosts: &[String]) -> String {
        let hosts: BTreeSet<&String> = hosts.iter().collect();
        let canonical = serde_json::json!({ "zoneId": zone_id, "hosts": hosts, "config": self });
        hex::encode(&Sha256::digest(canonical.to_string().as_bytes())[..16])
    }
}

/// What EdgeOne reports for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedHost {
    pub mode: Option<String>,
    /// `(cert id, status)` of the server certificates; for free certificates the id is
    /// EdgeOne's own.
    pub server_certs: Vec<(String, Option<String>)>,
    pub client_mtls: MutualTls,
    pub upstream_mtls: MutualTls,
    pub origin_verify: Option<OriginVerify>,
}

/// Where the hosts' certificates stand once the configuration matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// Every host reports its certificates `deployed` (or has none to deploy).
    Deployed,
    /// Some host is still `processing`/`applying`.
    Pending { hosts: Vec<String> },
    /// Some host's deployment `failed` (or its binding was refused: `issued`).
    Failed { hosts: Vec<String> },
}

/// The decision for one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Call `ModifyHostsCertificate` for these hosts (those that differ or that
    /// EdgeOne did not report; the API names the exact error for a missing host).
    Modify { hosts: Vec<String> },
    /// Nothing to change; deployment is in this state.
    InSync(Deployment),
}

fn mutual_tls_matches(want: &MutualTls, have: &MutualTls) -> bool {
    // With the switch off the certificate list does not matter.
    want.enabled == have.enabled && (!want.enabled || want.cert_ids == have.cert_ids)
}

fn origin_verify_matches(want: &OriginVerify, have: Option<&OriginVerify>) -> bool {
    let have_mode = have.map_or("disable", |h| h.mode.as_str());
    want.mode == have_mode
        && (want.mode != "custom_ca" || have.is_some_and(|h| h.ca_ids == want.ca_ids))
}

/// Whether a host already has the desired configuration.
pub fn host_matches(desired: &DesiredConfig, observed: &ObservedHost) -> bool {
    let mode_matches = observed.mode.as_deref().unwrap_or("disable") == desired.mode;
    let certs_match = desired.mode != "sslcert" || {
        let have: BTreeSet<&str> = observed
            .server_certs
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let want: BTreeSet<&str> = desired.server_cert_ids.iter().map(String::as_str).collect();
        have == want
    };
    mode_matches
        && certs_match
        && desired
            .client_mtls
            .as_ref()
            .is_none_or(|want| mutual_tls_matches(want, &observed.client_mtls))
        && desired
            .upstream_mtls
            .as_ref()
            .is_none_or(|want| mutual_tls_matches(want, &observed.upstream_mtls))
        && desired
            .origin_verify
            .as_ref()
            .is_none_or(|want| origin_verify_matches(want, observed.origin_verify.as_ref()))
}

fn deployment(hosts: &[String], observed: &BTreeMap<String, ObservedHost>) -> Deployment {
    let (mut pending, mut failed) = (Vec::new(), Vec::new());
    for host in hosts {
        let Some(have) = observed.get(host) else {
            pending.push(host.clone());
            continue;
        };
        let statuses = have
            .server_certs
            .iter()
            .map(|(_, status)| status.as_deref());
        let mut host_failed = false;
        let mut host_pending = false;
        for status in statuses {
            match status {
                Some("failed" | "issued") => host_failed = true,
                Some("deployed") | None => {}
                Some(_) => host_pending = true,
            }
        }
        if host_failed {
            failed.push(host.clone());
        } else if host_pending {
            pending.push(host.clone());
        }
    }
    if !failed.is_empty() {
        Deployment::Failed { hosts: failed }
    } else if !pending.is_empty() {
        Deployment::Pending { hosts: pending }
    } else {
        Deployment::Deployed
    }
}

/// Decides what to do for `hosts` (host names as the binding lists them, lower-case).
/// `observed` holds what EdgeOne reported, keyed by host name.
pub fn plan(
    desired: &DesiredConfig,
    hosts: &[String],
    observed: &BTreeMap<String, ObservedHost>,
) -> Plan {
    let differing: Vec<String> = hosts
        .iter()
        .filter(|host| {
            observed
                .get(*host)
                .is_none_or(|have| !host_matches(desired, have))
        })
        .cloned()
        .collect();
    if differing.is_empty() {
        Plan::InSync(deployment(hosts, observed))
    } else {
        Plan::Modify { hosts: differing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(ids: &[&str]) -> DesiredConfig {
        DesiredConfig {
            mode: "sslcert".into(),
            server_cert_ids: ids.iter().map(|s| s.to_string()).collect(),
            client_mtls: None,
            upstream_mtls: None,
            origin_verify: None,
        }
    }

    fn mode(mode: &str) -> DesiredConfig {
        DesiredConfig {
            mode: mode.into(),
            server_cert_ids: vec![],
            ..ssl(&[])
        }
    }

    fn have(mode: &str, certs: &[(&str, &str)]) -> ObservedHost {
        ObservedHost {
            mode: Some(mode.into()),
            server_certs: certs
                .iter()
                .map(|(id, st)| (id.to_string(), Some(st.to_string())))
                .collect(),
            ..ObservedHost::default()
        }
    }

    fn mtls(enabled: bool, ids: &[&str]) -> MutualTls {
        MutualTls {
            enabled,
            cert_ids: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn observed(entries: &[(&str, ObservedHost)]) -> BTreeMap<String, ObservedHost> {
        entries
            .iter()
            .map(|(h, o)| (h.to_string(), o.clone()))
            .collect()
    }

    fn modify(names: &[&str]) -> Plan {
        Plan::Modify {
            hosts: hosts(names),
        }
    }

    /// (what, desired, hosts, observed, expected plan)
    type Row = (
        &'static str,
        DesiredConfig,
        Vec<String>,
        BTreeMap<String, ObservedHost>,
        Plan,
    );

    #[test]
    fn plan_table() {
        let with_client = DesiredConfig {
            client_mtls: Some(mtls(true, &["ca1"])),
            ..ssl(&["c1"])
        };
        let client_off = DesiredConfig {
            client_mtls: Some(mtls(false, &[])),
            ..ssl(&["c1"])
        };
        let verify_ca = DesiredConfig {
            origin_verify: Some(OriginVerify {
                mode: "custom_ca".into(),
                ca_ids: vec!["ca9".into()],
            }),
            ..mode("eofreecert")
        };
        let rows: Vec<Row> = vec![
            (
                "fresh host gets sslcert",
                ssl(&["c1"]),
                hosts(&["a"]),
                observed(&[("a", ObservedHost::default())]),
                modify(&["a"]),
            ),
            (
                "matching and deployed",
                ssl(&["c1"]),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "deployed")]))]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "matching but processing",
                ssl(&["c1"]),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "processing")]))]),
                Plan::InSync(Deployment::Pending {
                    hosts: hosts(&["a"]),
                }),
            ),
            (
                "deployment failed",
                ssl(&["c1"]),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "failed")]))]),
                Plan::InSync(Deployment::Failed {
                    hosts: hosts(&["a"]),
                }),
            ),
            (
                "other certificate: renewal or drift",
                ssl(&["c2"]),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "deployed")]))]),
                modify(&["a"]),
            ),
            (
                "certificate order does not matter",
                ssl(&["c1", "c2"]),
                hosts(&["a"]),
                observed(&[(
                    "a",
                    have("sslcert", &[("c2", "deployed"), ("c1", "deployed")]),
                )]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "only the differing host is modified",
                ssl(&["c1"]),
                hosts(&["a", "b"]),
                observed(&[
                    ("a", have("sslcert", &[("c1", "deployed")])),
                    ("b", have("disable", &[])),
                ]),
                modify(&["b"]),
            ),
            (
                "host EdgeOne did not report is sent for the exact error",
                ssl(&["c1"]),
                hosts(&["a", "gone"]),
                observed(&[("a", have("sslcert", &[("c1", "deployed")]))]),
                modify(&["gone"]),
            ),
            (
                "free certificate applying",
                mode("eofreecert"),
                hosts(&["a"]),
                observed(&[("a", have("eofreecert", &[("teo-free", "applying")]))]),
                Plan::InSync(Deployment::Pending {
                    hosts: hosts(&["a"]),
                }),
            ),
            (
                "free certificate ignores ids",
                mode("eofreecert"),
                hosts(&["a"]),
                observed(&[("a", have("eofreecert", &[("teo-free", "deployed")]))]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "disable matches an unconfigured host",
                mode("disable"),
                hosts(&["a"]),
                observed(&[("a", ObservedHost::default())]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "disable changes a configured host",
                mode("disable"),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "deployed")]))]),
                modify(&["a"]),
            ),
            (
                "unmanaged client mTLS is left alone",
                ssl(&["c1"]),
                hosts(&["a"]),
                observed(&[(
                    "a",
                    ObservedHost {
                        client_mtls: mtls(true, &["x"]),
                        ..have("sslcert", &[("c1", "deployed")])
                    },
                )]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "client mTLS turned on",
                with_client.clone(),
                hosts(&["a"]),
                observed(&[("a", have("sslcert", &[("c1", "deployed")]))]),
                modify(&["a"]),
            ),
            (
                "client mTLS matches",
                with_client,
                hosts(&["a"]),
                observed(&[(
                    "a",
                    ObservedHost {
                        client_mtls: mtls(true, &["ca1"]),
                        ..have("sslcert", &[("c1", "deployed")])
                    },
                )]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "client mTLS off ignores leftover ids",
                client_off,
                hosts(&["a"]),
                observed(&[(
                    "a",
                    ObservedHost {
                        client_mtls: mtls(false, &["old"]),
                        ..have("sslcert", &[("c1", "deployed")])
                    },
                )]),
                Plan::InSync(Deployment::Deployed),
            ),
            (
                "origin verification differs",
                verify_ca.clone(),
                hosts(&["a"]),
                observed(&[("a", have("eofreecert", &[("f", "deployed")]))]),
                modify(&["a"]),
            ),
            (
                "origin verification matches",
                verify_ca,
                hosts(&["a"]),
                observed(&[(
                    "a",
                    ObservedHost {
                        origin_verify: Some(OriginVerify {
                            mode: "custom_ca".into(),
                            ca_ids: vec!["ca9".into()],
                        }),
                        ..have("eofreecert", &[("f", "deployed")])
                    },
                )]),
                Plan::InSync(Deployment::Deployed),
            ),
        ];
        for (what, desired, hosts, observed, expected) in rows {
            assert_eq!(plan(&desired, &hosts, &observed), expected, "{what}");
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = ssl(&["c1"]).hash("zone-1", &hosts(&["a", "b"]));
        assert_eq!(
            a,
            ssl(&["c1"]).hash("zone-1", &hosts(&["b", "a"])),
            "host order does not matter"
        );
        assert_ne!(a, ssl(&["c2"]).hash("zone-1", &hosts(&["a", "b"])));
        assert_ne!(a, ssl(&["c1"]).hash("zone-2", &hosts(&["a", "b"])));
        assert_ne!(a, ssl(&["c1"]).hash("zone-1", &hosts(&["a"])));
        assert_eq!(a.len(), 32);
    }
}

/// Properties over arbitrary configurations and observations.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::collection::{btree_set, vec};
    use proptest::prelude::*;

    fn ids() -> impl Strategy<Value = Vec<String>> {
        btree_set("[a-c]{1,2}", 0..3).prop_map(|s| s.into_iter().collect())
    }

    fn mutual_tls() -> impl Strategy<Value = MutualTls> {
        (any::<bool>(), ids()).prop_map(|(enabled, cert_ids)| MutualTls { enabled, cert_ids })
    }

    fn origin_verify() -> impl Strategy<Value = OriginVerify> {
        (prop_oneof![Just("disable"), Just("custom_ca")], ids()).prop_map(|(mode, ca_ids)| {
            OriginVerify {
                mode: mode.into(),
                ca_ids,
            }
        })
    }

    const MODES: [&str; 4] = ["sslcert", "eofreecert", "eofreecert_manual", "disable"];

    fn desired() -> impl Strategy<Value = DesiredConfig> {
        (
            proptest::sample::select(&MODES[..]),
            btree_set("[a-c]{1,2}", 1..3),
            proptest::option::of(mutual_tls()),
            proptest::option::of(mutual_tls()),
            proptest::option::of(origin_verify()),
        )
            .prop_map(|(mode, certs, client, upstream, origin)| DesiredConfig {
                mode: mode.into(),
                server_cert_ids: if mode == "sslcert" {
                    certs.into_iter().collect()
                } else {
                    Vec::new()
                },
                client_mtls: client,
                upstream_mtls: upstream,
                origin_verify: origin,
            })
    }

    fn observed_host() -> impl Strategy<Value = ObservedHost> {
        (
            proptest::option::of(proptest::sample::select(&MODES[..])),
            vec(
                (
                    "[a-c]{1,2}",
                    proptest::option::of("deployed|processing|failed"),
                ),
                0..3,
            ),
            mutual_tls(),
            mutual_tls(),
            proptest::option::of(origin_verify()),
        )
            .prop_map(|(mode, certs, client, upstream, origin)| ObservedHost {
                mode: mode.map(str::to_owned),
                server_certs: certs,
                client_mtls: client,
                upstream_mtls: upstream,
                origin_verify: origin,
            })
    }

    /// What EdgeOne reports for a host after applying `desired` to `before` and
    /// finishing the deployment: parts the binding does not manage stay as they were.
    fn applied(desired: &DesiredConfig, before: &ObservedHost) -> ObservedHost {
        ObservedHost {
            mode: Some(desired.mode.clone()),
            server_certs: desired
                .server_cert_ids
                .iter()
                .map(|id| (id.clone(), Some("deployed".to_owned())))
                .collect(),
            client_mtls: desired
                .client_mtls
                .clone()
                .unwrap_or_else(|| before.client_mtls.clone()),
            upstream_mtls: desired
                .upstream_mtls
                .clone()
                .unwrap_or_else(|| before.upstream_mtls.clone()),
            origin_verify: desired
                .origin_verify
                .clone()
                .or_else(|| before.origin_verify.clone()),
        }
    }

    fn host_names() -> impl Strategy<Value = Vec<String>> {
        btree_set("h[0-9]", 1..6).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        /// Modify names exactly the hosts that differ or are unknown, in the binding's
        /// order, and nothing else.
        #[test]
        fn modify_names_exactly_the_differing_hosts(
            desired in desired(),
            hosts in host_names(),
            seen in vec(proptest::option::of(observed_host()), 6),
        ) {
            let observed: BTreeMap<String, ObservedHost> = hosts
                .iter()
                .zip(&seen)
                .filter_map(|(h, o)| o.clone().map(|o| (h.clone(), o)))
                .collect();
            let expected: Vec<String> = hosts
                .iter()
                .filter(|h| observed.get(*h).is_none_or(|o| !host_matches(&desired, o)))
                .cloned()
                .collect();
            match plan(&desired, &hosts, &observed) {
                Plan::Modify { hosts: differing } => prop_assert_eq!(differing, expected),
                Plan::InSync(_) => prop_assert!(expected.is_empty()),
            }
        }

        /// Applying what the plan asks for converges: the next plan is in sync and,
        /// once deployed, Deployed.
        #[test]
        fn applying_the_plan_converges(
            desired in desired(),
            hosts in host_names(),
            seen in vec(observed_host(), 6),
        ) {
            let mut observed: BTreeMap<String, ObservedHost> =
                hosts.iter().cloned().zip(seen).collect();
            if let Plan::Modify { hosts: differing } = plan(&desired, &hosts, &observed) {
                for host in differing {
                    let after = applied(&desired, &observed[&host]);
                    observed.insert(host, after);
                }
            }
            for host in &hosts {
                // Deployment finished everywhere.
                let o = observed.get_mut(host).expect("every host is observed");
                for (_, status) in &mut o.server_certs {
                    *status = Some("deployed".into());
                }
            }
            prop_assert_eq!(plan(&desired, &hosts, &observed), Plan::InSync(Deployment::Deployed));
        }

        /// The applied hash ignores the order and repetition of hosts, and changes with
        /// the zone and the configuration.
        #[test]
        fn the_hash_depends_on_the_set_of_hosts_only(
            desired in desired(),
            other in desired(),
            hosts in host_names(),
            rotate in 0usize..6,
        ) {
            let mut shuffled = hosts.clone();
            let n = shuffled.len();
            shuffled.rotate_left(rotate % n);
            shuffled.push(hosts[0].clone());
            prop_assert_eq!(desired.hash("z", &hosts), desired.hash("z", &shuffled));
            prop_assert_ne!(desired.hash("z", &hosts), desired.hash("y", &hosts));
            prop_assert_eq!(desired.hash("z", &hosts) == other.hash("z", &hosts), desired == other);
        }
    }
}
