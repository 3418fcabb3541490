//! What a run creates: zones with their acceleration domains, bindings of two hosts
//! each in contiguous blocks per zone, and one Secret per `per_secret` consecutive
//! bindings, whose certificate covers the zones its bindings are in.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Layout {
    pub zones: usize,
    pub bindings: usize,
    pub per_secret: usize,
    pub hosts_per_binding: usize,
    /// Acceleration domains seeded per zone (at least what the bindings use).
    pub hosts_per_zone: usize,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub zone: usize,
    pub hosts: Vec<String>,
    pub secret: usize,
}

impl Layout {
    pub fn new(
        bindings: usize,
        zones: usize,
        per_secret: usize,
        min_hosts_per_zone: usize,
    ) -> Self {
        let hosts_per_binding = 2;
        let mut layout = Layout {
            zones: zones.max(1),
            bindings,
            per_secret: per_secret.max(1),
            hosts_per_binding,
            hosts_per_zone: 0,
        };
        let most = (0..layout.zones)
            .map(|z| (0..bindings).filter(|b| layout.zone_of(*b) == z).count())
            .max()
            .unwrap_or(0);
        layout.hosts_per_zone = min_hosts_per_zone.max(most * hosts_per_binding);
        layout
    }

    pub fn zone_id(&self, zone: usize) -> String {
        format!("zone-bench{zone:03}")
    }

    pub fn zone_name(&self, zone: usize) -> String {
        format!("z{zone:03}.bench.test")
    }

    pub fn zone_hosts(&self, zone: usize) -> Vec<String> {
        (0..self.hosts_per_zone)
            .map(|k| format!("h{k:04}.{}", self.zone_name(zone)))
            .collect()
    }

    /// Bindings are spread over the zones in contiguous blocks.
    fn zone_of(&self, binding: usize) -> usize {
        binding * self.zones / self.bindings.max(1)
    }

    fn first_in_zone(&self, zone: usize) -> usize {
        (0..self.bindings)
            .find(|b| self.zone_of(*b) == zone)
            .unwrap_or(0)
    }

    pub fn secrets(&self) -> usize {
        self.bindings.div_ceil(self.per_secret)
    }

    pub fn secret_name(&self, secret: usize) -> String {
        format!("cert-{secret:04}-tls")
    }

    pub fn binding(&self, b: usize) -> Binding {
        let zone = self.zone_of(b);
        let local = b - self.first_in_zone(zone);
        Binding {
            name: format!("b-{b:05}"),
            zone,
            hosts: (0..self.hosts_per_binding)
                .map(|i| {
                    format!(
                        "h{:04}.{}",
                        local * self.hosts_per_binding + i,
                        self.zone_name(zone)
                    )
                })
                .collect(),
            secret: b / self.per_secret,
        }
    }

    pub fn all_bindings(&self) -> Vec<Binding> {
        (0..self.bindings).map(|b| self.binding(b)).collect()
    }

    /// The DNS names of a Secret's certificate: a wildcard per zone its bindings use.
    pub fn secret_names(&self, secret: usize) -> Vec<String> {
        let zones: BTreeSet<usize> = (secret * self.per_secret
            ..((secret + 1) * self.per_secret).min(self.bindings))
            .map(|b| self.zone_of(b))
            .collect();
        zones
            .into_iter()
            .map(|z| format!("*.{}", self.zone_name(z)))
            .collect()
    }

    /// Distinct (zone, certificate configuration) pairs: the fewest Modify calls that
    /// can apply everything (every group fits in one call of up to 100 hosts here).
    pub fn groups(&self) -> usize {
        (0..self.bindings)
            .map(|b| (self.zone_of(b), b / self.per_secret))
            .collect::<BTreeSet<_>>()
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_size_has_five_configurations_per_zone() {
        let layout = Layout::new(1000, 20, 10, 100);
        assert_eq!(layout.secrets(), 100);
        assert_eq!(layout.groups(), 100);
        assert_eq!(layout.hosts_per_zone, 100);
        let last = layout.binding(999);
        assert_eq!(last.zone, 19);
        assert_eq!(last.hosts[1], "h0099.z019.bench.test");
        assert_eq!(layout.secret_names(99), ["*.z019.bench.test"]);
    }

    #[test]
    fn a_small_run_spans_zones_per_secret() {
        let layout = Layout::new(100, 20, 10, 100);
        assert_eq!(layout.secrets(), 10);
        assert_eq!(layout.secret_names(0).len(), 2);
        assert_eq!(layout.groups(), 20);
        let hosts: BTreeSet<String> = layout
            .all_bindings()
            .into_iter()
            .flat_map(|b| b.hosts)
            .collect();
        assert_eq!(hosts.len(), 200);
    }
}
