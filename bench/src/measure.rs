//! What a phase is measured by: the operator process (/proc), its /metrics, and the
//! emulator's call log.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use teo_emulator::CallRecord;

/// The emulator's answer to calls beyond the rate limit.
pub const THROTTLED: &str = "LimitExceeded.RateLimitExceeded";

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces: fields start after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ... utime(14), stime(15), i.e. indexes 11 and 12 here.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .context("unexpected /proc/<pid>/stat")
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 {
        per_second as f64
    } else {
        100.0
    };
    Ok((ticks(11)? + ticks(12)?) / per_second)
}

/// A `Vm*` figure of /proc/<pid>/status, in MiB.
pub fn vm_mib(pid: u32, field: &str) -> Result<f64> {
    Ok(testbed::process::status_kib(pid, field)? as f64 / 1024.0)
}

/// Resets the process's peak RSS (VmHWM) to its current RSS, so that the next phase's
/// peak is its own. Returns false where the kernel does not allow it.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Samples of the operator's /metrics that a phase reports as differences.
#[derive(Debug, Clone, Default)]
pub struct OperatorMetrics {
    pub status_patches: f64,
    pub throttled: f64,
    /// edgeone_cert_operator_tencent_api_calls_total by action.
    pub calls: BTreeMap<String, f64>,
}

impl OperatorMetrics {
    pub fn parse(text: &str) -> OperatorMetrics {
        let mut metrics = OperatorMetrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name {
                "edgeone_cert_operator_status_patches_total" => metrics.status_patches += value,
                "edgeone_cert_operator_tencent_api_throttled_total" => metrics.throttled += value,
                "edgeone_cert_operator_tencent_api_calls_total" => {
                    let action = label(labels, "action").unwrap_or_default();
                    *metrics.calls.entry(action).or_default() += value;
                }
                _ => {}
            }
        }
        metrics
    }

    pub fn since(&self, earlier: &OperatorMetrics) -> OperatorMetrics {
        let mut calls = self.calls.clone();
        for (action, n) in &earlier.calls {
            *calls.entry(action.clone()).or_default() -= n;
        }
        calls.retain(|_, n| *n != 0.0);
        OperatorMetrics {
            status_patches: self.status_patches - earlier.status_patches,
            throttled: self.throttled - earlier.throttled,
            calls,
        }
    }
}

fn label(labels: &str, name: &str) -> Option<String> {
    labels
        .trim_end_matches('}')
        .split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
}

pub async fn scrape(http: &reqwest::Client, health_addr: &str) -> Result<OperatorMetrics> {
    let text = http
        .get(format!("http://{health_addr}/metrics"))
        .send()
        .await
        .context("scraping the operator's /metrics")?
        .error_for_status()?
        .text()
        .await?;
    Ok(OperatorMetrics::parse(&text))
}

/// Calls by action and outcome.
pub type Counters = BTreeMap<String, BTreeMap<String, u64>>;

pub fn count(calls: &[CallRecord]) -> Counters {
    let mut counters = Counters::new();
    for call in calls {
        *counters
            .entry(call.action.clone())
            .or_default()
            .entry(call.outcome.clone())
            .or_default() += 1;
    }
    counters
}

pub fn throttled(counters: &Counters) -> u64 {
    counters
        .values()
        .filter_map(|outcomes| outcomes.get(THROTTLED))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels() {
        let text = "# HELP x\n\
            edgeone_cert_operator_status_patches_total 12\n\
            edgeone_cert_operator_tencent_api_throttled_total{service=\"teo\",action=\"ModifyHostsCertificate\",code=\"LimitExceeded.RateLimitExceeded\"} 2\n\
            edgeone_cert_operator_tencent_api_calls_total{service=\"teo\",action=\"ModifyHostsCertificate\",code=\"Success\"} 5\n\
            edgeone_cert_operator_tencent_api_calls_total{service=\"teo\",action=\"ModifyHostsCertificate\",code=\"InternalError\"} 1\n";
        let m = OperatorMetrics::parse(text);
        assert_eq!(m.status_patches, 12.0);
        assert_eq!(m.throttled, 2.0);
        assert_eq!(m.calls["ModifyHostsCertificate"], 6.0);
        let d = m.since(&OperatorMetrics::default());
        assert_eq!(d.calls["ModifyHostsCertificate"], 6.0);
    }

    #[test]
    fn our_own_cpu_and_memory_are_readable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(vm_mib(pid, "VmHWM").unwrap() > 0.0);
    }
}
