//! Prometheus metrics, served as text on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::tencent::transport::{CallObserver, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `applied`, `in_sync`, `failed` or `error` (the Kubernetes API failed).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub service: String,
    pub action: String,
    /// `Success`, the Tencent error code, or the kind of failure.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub service: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub ready: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabels {
    pub namespace: String,
    pub binding: String,
    pub cert_id: String,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub api_calls: Family<CallLabels, Counter>,
    pub api_latency: Family<ActionLabels, Histogram>,
    pub bindings: Family<ReadyLabels, Gauge>,
    pub certificate_expiry: Family<CertificateLabels, Gauge>,
    pub status_patches: Counter,
    pub rate_limiter_wait: Family<ActionLabels, Histogram>,
    pub throttled: Family<CallLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// From 1 ms (one slot at 20/s is 52 ms) to about 33 s (a queue of hundreds of calls).
fn wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("edgeone_cert_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            reconcile_duration.clone(),
        );
        let api_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tencent_api_calls",
            "Tencent Cloud API calls by service, action and result code",
            api_calls.clone(),
        );
        let api_latency = Family::<ActionLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "tencent_api_latency_seconds",
            "Tencent Cloud API call latency, throttle retries and limiter waits included",
            api_latency.clone(),
        );
        let bindings = Family::<ReadyLabels, Gauge>::default();
        registry.register(
            "bindings",
            "Bindings by their Ready condition, as last reconciled",
            bindings.clone(),
        );
        let certificate_expiry = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of each bound certificate whose expiry is known",
            certificate_expiry.clone(),
        );
        let status_patches = Counter::default();
        registry.register(
            "status_patches",
            "Status patches written to bindings",
            status_patches.clone(),
        );
        let rate_limiter_wait = Family::<ActionLabels, Histogram>::new_with_constructor(
            wait_histogram as fn() -> Histogram,
        );
        registry.register(
            "tencent_rate_limiter_wait_seconds",
            "Time Tencent Cloud calls waited for the client-side rate limiter, per attempt",
            rate_limiter_wait.clone(),
        );
        let throttled = Family::<CallLabels, Counter>::default();
        registry.register(
            "tencent_api_throttled",
            "Throttled answers received from Tencent Cloud (each is retried after a backoff)",
            throttled.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            api_calls,
            api_latency,
            bindings,
            certificate_expiry,
            status_patches,
            rate_limiter_wait,
            throttled,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    pub fn observe_reconcile(&self, result: &str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }
}

impl CallObserver for Metrics {
    fn observe(&self, service: Service, action: &str, outcome: &str, elapsed: Duration) {
        let labels = CallLabels {
            service: service.name().into(),
            action: action.into(),
            code: outcome.into(),
        };
        self.api_calls.get_or_create(&labels).inc();
        self.api_latency
            .get_or_create(&ActionLabels {
                service: service.name().into(),
                action: action.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn rate_limited(&self, service: Service, action: &str, waited: Duration) {
        self.rate_limiter_wait
            .get_or_create(&ActionLabels {
                service: service.name().into(),
                action: action.into(),
            })
            .observe(waited.as_secs_f64());
    }

    fn throttled(&self, service: Service, action: &str, code: &str) {
        self.throttled
            .get_or_create(&CallLabels {
                service: service.name().into(),
                action: action.into(),
                code: code.into(),
            })
            .inc();
    }
}

/// What `/metrics` serves.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_recorded_values() {
        let metrics = Metrics::default();
        metrics.observe_reconcile("applied", Duration::from_millis(20));
        metrics.observe(
            Service::Teo,
            "ModifyHostsCertificate",
            "Success",
            Duration::from_millis(30),
        );
        metrics.observe(
            Service::Teo,
            "ModifyHostsCertificate",
            "ResourceUnavailable.HostNotFound",
            Duration::from_millis(10),
        );
        metrics.rate_limited(
            Service::Ssl,
            "UploadCertificate",
            Duration::from_millis(105),
        );
        metrics.throttled(
            Service::Teo,
            "ModifyHostsCertificate",
            "RequestLimitExceeded",
        );
        let text = metrics.render();
        assert!(text.contains(r#"edgeone_cert_operator_tencent_rate_limiter_wait_seconds_sum{service="ssl",action="UploadCertificate"} 0.105"#), "{text}");
        assert!(text.contains(r#"edgeone_cert_operator_tencent_api_throttled_total{service="teo",action="ModifyHostsCertificate",code="RequestLimitExceeded"} 1"#), "{text}");
        assert!(
            text.contains(r#"edgeone_cert_operator_reconciles_total{result="applied"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"edgeone_cert_operator_tencent_api_calls_total{service="teo",action="ModifyHostsCertificate",code="ResourceUnavailable.HostNotFound"} 1"#), "{text}");
        assert!(text.contains(r#"edgeone_cert_operator_tencent_api_latency_seconds_count{service="teo",action="ModifyHostsCertificate"} 2"#), "{text}");
    }
}
