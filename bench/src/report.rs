//! The results: what each phase measured, the ratios, the targets of issue 6, and
//! their rendering as a markdown table (stdout) and JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::Counters;

pub const MODIFY: &str = "ModifyHostsCertificate";
pub const DESCRIBE: &str = "DescribeAccelerationDomains";

/// One measured phase of one mode.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    /// Whether the phase reached its end state before the timeout (steady: always).
    pub completed: bool,
    /// Time to the end state (steady state: the idle window).
    pub seconds: f64,
    /// Bindings in the end state when the phase ended.
    pub bindings_done: usize,
    /// Tencent calls the emulator answered, by action and outcome.
    pub calls: Counters,
    pub calls_by_action: BTreeMap<String, u64>,
    pub total_calls: u64,
    /// `LimitExceeded.RateLimitExceeded` answers the emulator gave.
    pub throttled_answers: u64,
    /// The operator's edgeone_cert_operator_tencent_api_throttled_total.
    pub operator_throttled: f64,
    /// The operator's edgeone_cert_operator_tencent_api_calls_total by action.
    pub operator_calls: BTreeMap<String, f64>,
    pub status_patches: f64,
    pub status_patches_per_binding: f64,
    /// VmHWM of the operator: the phase's own peak when `peak_rss_reset`, else the
    /// peak since the process started.
    pub peak_rss_mib: f64,
    pub peak_rss_reset: bool,
    /// VmRSS at the end of the phase.
    pub rss_end_mib: f64,
    /// utime + stime of the operator during the phase.
    pub cpu_seconds: f64,
    /// Issue 6's bound for the distinct work (cold start and renewal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_bound_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_lower_bound: Option<f64>,
    /// Steady state: drift intervals in the window and the Describe calls that shared
    /// observation (zones × intervals) and per-binding reads (bindings × intervals) need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub describe_zones_x_intervals: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub describe_bindings_x_intervals: Option<f64>,
}

impl Phase {
    pub fn calls_of(&self, action: &str) -> u64 {
        self.calls_by_action.get(action).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeResult {
    /// `coalesced` or `baseline`.
    pub mode: String,
    pub operator_args: Vec<String>,
    pub namespace: String,
    pub operator_log: String,
    /// Creating the Secrets and bindings (before the operator starts).
    pub setup_seconds: f64,
    pub cold_start: Phase,
    pub renewal: Phase,
    pub steady_state: Phase,
    /// Calls in the settle pauses between phases (counted in no phase).
    pub calls_between_phases: Counters,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LowerBound {
    pub uploads: usize,
    pub ssl_rate_per_second: u32,
    pub groups: usize,
    pub teo_rate_per_second: u32,
    pub deploy_delay_seconds: f64,
    pub seconds: f64,
}

impl LowerBound {
    pub fn formula(&self) -> String {
        format!(
            "{} uploads ÷ {}/s + {} zone×configuration groups ÷ {}/s + {} s deployment delay = {:.2} s",
            self.uploads,
            self.ssl_rate_per_second,
            self.groups,
            self.teo_rate_per_second,
            self.deploy_delay_seconds,
            self.seconds
        )
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub name: String,
    pub measured: String,
    /// `PASS`, `FAIL` or `SKIPPED`.
    pub result: String,
}

fn verdict(pass: bool) -> String {
    if pass { "PASS" } else { "FAIL" }.to_owned()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratios {
    pub cold_start_time: Option<f64>,
    pub renewal_time: Option<f64>,
    pub cold_start_modify_calls: Option<f64>,
    pub renewal_modify_calls: Option<f64>,
    pub cold_start_calls: Option<f64>,
    pub renewal_calls: Option<f64>,
    pub steady_state_describe_calls: Option<f64>,
    pub steady_state_calls: Option<f64>,
}

fn ratio(baseline: f64, coalesced: f64) -> Option<f64> {
    (coalesced > 0.0 && baseline.is_finite()).then(|| baseline / coalesced)
}

impl Ratios {
    pub fn new(coalesced: &ModeResult, baseline: &ModeResult) -> Ratios {
        let calls = |p: &Phase, a: &str| p.calls_of(a) as f64;
        Ratios {
            cold_start_time: ratio(baseline.cold_start.seconds, coalesced.cold_start.seconds),
            renewal_time: ratio(baseline.renewal.seconds, coalesced.renewal.seconds),
            cold_start_modify_calls: ratio(
                calls(&baseline.cold_start, MODIFY),
                calls(&coalesced.cold_start, MODIFY),
            ),
            renewal_modify_calls: ratio(
                calls(&baseline.renewal, MODIFY),
                calls(&coalesced.renewal, MODIFY),
            ),
            cold_start_calls: ratio(
                baseline.cold_start.total_calls as f64,
                coalesced.cold_start.total_calls as f64,
            ),
            renewal_calls: ratio(
                baseline.renewal.total_calls as f64,
                coalesced.renewal.total_calls as f64,
            ),
            steady_state_describe_calls: ratio(
                calls(&baseline.steady_state, DESCRIBE),
                calls(&coalesced.steady_state, DESCRIBE),
            ),
            steady_state_calls: ratio(
                baseline.steady_state.total_calls as f64,
                coalesced.steady_state.total_calls as f64,
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub config: serde_json::Value,
    pub machine: serde_json::Value,
    pub lower_bound: LowerBound,
    pub coalesced: ModeResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<ModeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratios: Option<Ratios>,
    pub targets: Vec<Target>,
    pub total_seconds: f64,
}

/// The targets of issue 6, checked on the measured figures.
pub fn targets(
    coalesced: &ModeResult,
    baseline: Option<&ModeResult>,
    bound: &LowerBound,
) -> Vec<Target> {
    let cold = &coalesced.cold_start;
    let mut targets = Vec::new();
    let limit = 1.5 * bound.seconds;
    targets.push(Target {
        name: format!("cold start within 1.5 × the lower bound ({limit:.2} s)"),
        measured: format!(
            "{}{:.2} s = {:.2} × {:.2} s",
            if cold.completed {
                ""
            } else {
                "timed out after "
            },
            cold.seconds,
            cold.seconds / bound.seconds,
            bound.seconds
        ),
        result: verdict(cold.completed && cold.seconds <= limit),
    });
    targets.push(Target {
        name: "cold start: zero throttling errors received".into(),
        measured: format!(
            "{} LimitExceeded answers (emulator), {} (operator metric)",
            cold.throttled_answers, cold.operator_throttled
        ),
        result: verdict(cold.throttled_answers == 0 && cold.operator_throttled == 0.0),
    });
    let steady_modify = coalesced.steady_state.calls_of(MODIFY);
    targets.push(Target {
        name: "steady state: 0 ModifyHostsCertificate calls".into(),
        measured: format!("{steady_modify} in {:.0} s", coalesced.steady_state.seconds),
        result: verdict(steady_modify == 0),
    });
    targets.push(Target {
        name: "cold start: peak RSS under 64 MiB (with the unrelated Secrets)".into(),
        measured: format!("{:.1} MiB", cold.peak_rss_mib),
        result: verdict(cold.peak_rss_mib < 64.0),
    });
    targets.push(match baseline {
        Some(baseline) => {
            let b = baseline.cold_start.calls_of(MODIFY);
            let c = cold.calls_of(MODIFY);
            let r = ratio(b as f64, c as f64);
            Target {
                name: "cold start: baseline/coalesced ModifyHostsCertificate calls ≥ 10×".into(),
                measured: match r {
                    Some(r) => format!("{b} / {c} = {r:.1}×"),
                    None => format!("{b} / {c}"),
                },
                result: verdict(r.is_some_and(|r| r >= 10.0)),
            }
        }
        None => Target {
            name: "cold start: baseline/coalesced ModifyHostsCertificate calls ≥ 10×".into(),
            measured: "baseline skipped".into(),
            result: "SKIPPED".into(),
        },
    });
    targets
}

fn secs(p: &Phase) -> String {
    if p.completed {
        format!("{:.2}", p.seconds)
    } else {
        format!("timed out ({:.0}, {} done)", p.seconds, p.bindings_done)
    }
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

/// The markdown report printed to stdout.
pub fn markdown(report: &Report) -> String {
    let mut modes = vec![&report.coalesced];
    modes.extend(report.baseline.as_ref());
    let phases: Vec<(String, &Phase, bool)> = modes
        .iter()
        .flat_map(|m| {
            let prefix = if m.mode == "baseline" {
                "baseline "
            } else {
                ""
            };
            [
                (format!("{prefix}cold start"), &m.cold_start, false),
                (format!("{prefix}renewal wave"), &m.renewal, false),
                (
                    format!("{prefix}steady state ({:.0} s)", m.steady_state.seconds),
                    &m.steady_state,
                    true,
                ),
            ]
        })
        .collect();
    let mut out = String::new();
    let config = &report.config;
    let _ = writeln!(
        out,
        "## edgeone-cert-operator benchmark\n\n{} bindings × 2 hosts over {} zones, {} Secrets ({} bindings each), {} unrelated Opaque Secrets of {} KiB; emulator: {}/s teo, {}/s ssl, {} ms latency per call, {} ms deployment delay; drift interval {}.\n",
        config["bindings"],
        config["zones"],
        report.lower_bound.uploads,
        config["bindingsPerSecret"],
        config["unrelatedSecrets"],
        config["unrelatedSecretKib"],
        report.lower_bound.teo_rate_per_second,
        report.lower_bound.ssl_rate_per_second,
        config["latencyMs"],
        config["deployDelayMs"],
        config["driftInterval"].as_str().unwrap_or_default(),
    );
    let _ = writeln!(out, "Lower bound: {}.\n", report.lower_bound.formula());
    let _ = write!(out, "| |");
    for (name, _, _) in &phases {
        let _ = write!(out, " {name} |");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|{}", "---|".repeat(phases.len()));
    let row = |out: &mut String, label: &str, cell: &dyn Fn(&Phase, bool) -> String| {
        let _ = write!(out, "| {label} |");
        for (_, phase, steady) in &phases {
            let _ = write!(out, " {} |", cell(phase, *steady));
        }
        let _ = writeln!(out);
    };
    row(&mut out, "time to converge (s)", &|p, steady| {
        if steady { "—".into() } else { secs(p) }
    });
    row(&mut out, "measured ÷ lower bound", &|p, _| {
        opt(p.ratio_to_lower_bound, 2)
    });
    let actions: BTreeSet<&String> = phases
        .iter()
        .flat_map(|(_, p, _)| p.calls_by_action.keys())
        .collect();
    for action in actions {
        row(&mut out, &format!("{action} calls"), &|p, _| {
            p.calls_of(action).to_string()
        });
    }
    row(&mut out, "all Tencent calls", &|p, _| {
        p.total_calls.to_string()
    });
    row(
        &mut out,
        "throttling errors (emulator / operator metric)",
        &|p, _| format!("{} / {}", p.throttled_answers, p.operator_throttled),
    );
    row(&mut out, "status patches per binding", &|p, _| {
        format!("{:.2}", p.status_patches_per_binding)
    });
    row(&mut out, "operator peak RSS (MiB)", &|p, _| {
        format!(
            "{:.1}{}",
            p.peak_rss_mib,
            if p.peak_rss_reset {
                ""
            } else {
                " (since start)"
            }
        )
    });
    row(&mut out, "operator CPU (s)", &|p, _| {
        format!("{:.2}", p.cpu_seconds)
    });
    row(
        &mut out,
        "Describe expected: zones × intervals / bindings × intervals",
        &|p, steady| {
            if steady {
                format!(
                    "{} / {}",
                    opt(p.describe_zones_x_intervals, 0),
                    opt(p.describe_bindings_x_intervals, 0)
                )
            } else {
                "—".into()
            }
        },
    );
    if let Some(r) = &report.ratios {
        let _ = writeln!(
            out,
            "\n| baseline ÷ coalesced | cold start | renewal wave | steady state |\n|---|---|---|---|"
        );
        let _ = writeln!(
            out,
            "| time | {} | {} | — |",
            opt(r.cold_start_time, 1),
            opt(r.renewal_time, 1)
        );
        let _ = writeln!(
            out,
            "| ModifyHostsCertificate calls | {} | {} | — |",
            opt(r.cold_start_modify_calls, 1),
            opt(r.renewal_modify_calls, 1)
        );
        let _ = writeln!(
            out,
            "| DescribeAccelerationDomains calls | {} | {} | {} |",
            opt(
                ratio(
                    report
                        .baseline
                        .as_ref()
                        .map_or(0.0, |b| b.cold_start.calls_of(DESCRIBE) as f64),
                    report.coalesced.cold_start.calls_of(DESCRIBE) as f64
                ),
                1
            ),
            opt(
                ratio(
                    report
                        .baseline
                        .as_ref()
                        .map_or(0.0, |b| b.renewal.calls_of(DESCRIBE) as f64),
                    report.coalesced.renewal.calls_of(DESCRIBE) as f64
                ),
                1
            ),
            opt(r.steady_state_describe_calls, 1)
        );
        let _ = writeln!(
            out,
            "| all Tencent calls | {} | {} | {} |",
            opt(r.cold_start_calls, 1),
            opt(r.renewal_calls, 1),
            opt(r.steady_state_calls, 1)
        );
    }
    let _ = writeln!(
        out,
        "\n| target (issue 6) | measured | result |\n|---|---|---|"
    );
    for t in &report.targets {
        let _ = writeln!(out, "| {} | {} | {} |", t.name, t.measured, t.result);
    }
    let _ = writeln!(
        out,
        "\nTotal benchmark time: {:.0} s. Machine: {}.",
        report.total_seconds,
        report.machine["description"].as_str().unwrap_or_default()
    );
    out
}
