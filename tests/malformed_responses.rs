//! End to end: malformed answers from the Tencent Cloud API (invalid JSON, a missing
//! RequestId, an HTML error page, a 20 MiB body, an unknown error code) end as a clear
//! error in the binding's status, without a panic and with bounded memory, and the
//! binding converges once the API answers properly again.

mod common;

use common::*;

use edgeone_cert_operator::api::conditions::TENCENT_CLOUD_ERROR;
use kube::api::DeleteParams;
use serde_json::json;

const HOST: &str = "abc.test.com";

/// Generous: the operator reads at most 8 MiB of an answer before it gives up.
const MAX_PEAK_RSS_KIB: u64 = 128 * 1024;

/// How many 20 MiB answers the operator gets (one per terminal re-check), to show that
/// they do not add up.
const HUGE_ANSWERS: usize = 3;

/// One malformed answer: the fault, the action it hits, and what the status must say.
struct Case {
    name: &'static str,
    action: &'static str,
    fault: &'static str,
    /// `status.lastError.code`.
    code: &'static str,
    /// Each must appear in the Ready condition's message.
    says: &'static [&'static str],
}

const CASES: [Case; 5] = [
    Case {
        name: "invalid-json",
        action: "DescribeAccelerationDomains",
        fault: "invalidJson",
        code: "InvalidResponse",
        says: &[
            "HTTP 200",
            "DescribeAccelerationDomains",
            "invalid JSON",
            "truncated",
        ],
    },
    Case {
        name: "missing-request-id",
        action: "ModifyHostsCertificate",
        fault: "missingRequestId",
        code: "InvalidResponse",
        says: &[
            "HTTP 200",
            "ModifyHostsCertificate",
            "without a `RequestId`",
        ],
    },
    Case {
        name: "html-error",
        action: "DescribeAccelerationDomains",
        fault: "htmlError",
        code: "InvalidResponse",
        says: &[
            "HTTP 200",
            "DescribeAccelerationDomains",
            "not JSON",
            "An error occurred.",
        ],
    },
    Case {
        name: "huge-body",
        action: "DescribeAccelerationDomains",
        fault: "hugeBody",
        code: "InvalidResponse",
        says: &["HTTP 200", "DescribeAccelerationDomains", "exceeds 8 MiB"],
    },
    Case {
        name: "unknown-code",
        action: "ModifyHostsCertificate",
        fault: "unknownCode",
        code: "FailedOperation.SomethingNew",
        says: &["FailedOperation.SomethingNew", "RequestId"],
    },
];

/// A line of /proc/PID/status in KiB (`VmHWM`: the peak resident set size).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    testbed::process::status_kib(pid, field).expect("the operator's /proc status")
}

/// The operator is still running and has not logged a panic.
fn assert_alive(world: &mut World, after: &str) {
    let exited = world.operator.child.try_wait().expect("try_wait");
    let log = std::fs::read_to_string(&world.log).unwrap_or_default();
    assert!(
        exited.is_none() && !log.contains("panicked"),
        "after {after}: the operator exited ({exited:?}) or panicked; log {}:\n{log}",
        world.log.display()
    );
}

#[tokio::test]
async fn malformed_answers_end_in_status_and_recover() {
    // Answers that are not the API's with HTTP 200 are terminal errors (DESIGN.md: only
    // throttling, the listed codes, network errors and 5xx are retried), re-checked
    // after --terminal-recheck: shortened here so that recovery takes seconds.
    let mut world = World::new("malformed", &["--terminal-recheck", "2s"]).await;
    let pid = world.operator.child.id();
    let huge_answers = |world: &World| {
        world
            .emulator
            .calls()
            .iter()
            .filter(|c| c.outcome.starts_with("Huge body"))
            .count()
    };
    let mut peak_before_huge = 0;
    for case in &CASES {
        if case.fault == "hugeBody" {
            peak_before_huge = proc_status_kib(pid, "VmHWM");
        }
        // The host differs from every binding's spec, so ModifyHostsCertificate is called.
        world.emulator.with_state(|s| {
            s.domains
                .get_mut(&(ZONE.to_string(), HOST.to_string()))
                .expect("host in the seed")
                .config
                .mode = "disable".into();
            s.faults =
                serde_json::from_value(json!({case.action: {case.fault: 1.0}})).expect("faults");
        });
        world
            .create(
                case.name,
                json!({"zoneId": ZONE, "hosts": [HOST], "mode": "eofreecert"}),
            )
            .await;
        let ready = world.wait_not_ready(case.name, TENCENT_CLOUD_ERROR).await;
        for fragment in case.says {
            assert!(
                ready.message.contains(fragment),
                "{}: {fragment:?} not in {:?}",
                case.name,
                ready.message
            );
        }
        let status = world
            .bindings()
            .get(case.name)
            .await
            .expect("get binding")
            .status
            .unwrap_or_default();
        let error = status.last_error.expect("lastError");
        assert_eq!(error.code, case.code, "{}: {error:?}", case.name);
        eprintln!("{}: {}", case.name, ready.message);
        if case.fault == "hugeBody" {
            let start = std::time::Instant::now();
            while huge_answers(&world) < HUGE_ANSWERS {
                assert!(
                    start.elapsed() < WAIT,
                    "fewer than {HUGE_ANSWERS} re-checks; operator log: {}",
                    world.log.display()
                );
                tokio::time::sleep(POLL).await;
            }
        }
        assert_alive(&mut world, case.name);

        world.emulator.with_state(|s| s.faults = Default::default());
        world.wait_ready(case.name).await;
        world
            .bindings()
            .delete(case.name, &DeleteParams::default())
            .await
            .expect("delete");
        world.wait_gone(case.name).await;
    }
    assert_alive(&mut world, "all cases");
    let peak = proc_status_kib(pid, "VmHWM");
    eprintln!(
        "operator peak RSS (VmHWM): {:.1} MiB before the 20 MiB answers, {:.1} MiB after {} of them",
        peak_before_huge as f64 / 1024.0,
        peak as f64 / 1024.0,
        huge_answers(&world)
    );
    assert!(
        peak < MAX_PEAK_RSS_KIB,
        "the operator's peak RSS is {peak} KiB (limit {MAX_PEAK_RSS_KIB} KiB)"
    );
}
