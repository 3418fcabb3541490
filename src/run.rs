//! `edgeone-cert-operator run`: configuration from flags and environment, and the
//! wiring of the Tencent client, credentials and controller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::runtime::events::{Recorder, Reporter};

use crate::controller::status::Timing;
use crate::controller::{self, Context};
use crate::metrics::Metrics;
use crate::server::{self, Readiness};
use crate::tencent::credentials::default_chain;
use crate::tencent::ssl::SslApi;
use crate::tencent::teo::TeoApi;
use crate::tencent::transport::{Endpoints, Transport, TransportConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options of `run`. Every flag can also be set through the environment variable named.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; default: in-cluster configuration, else $KUBECONFIG / ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch bindings in this namespace only (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// EdgeOne (teo) API endpoint.
    #[arg(
        long,
        env = "EDGEONE_TEO_ENDPOINT",
        default_value = "https://teo.tencentcloudapi.com"
    )]
    pub teo_endpoint: String,
    /// SSL Certificates API endpoint.
    #[arg(
        long,
        env = "EDGEONE_SSL_ENDPOINT",
        default_value = "https://ssl.tencentcloudapi.com"
    )]
    pub ssl_endpoint: String,
    /// STS endpoint (TKE pod identity).
    #[arg(
        long,
        env = "EDGEONE_STS_ENDPOINT",
        default_value = "https://sts.tencentcloudapi.com"
    )]
    pub sts_endpoint: String,
    /// Region sent as X-TC-Region (optional for teo and ssl).
    #[arg(long, env = "EDGEONE_REGION")]
    pub region: Option<String>,
    /// Allow plain http:// endpoints that are not on loopback. Never in production.
    #[arg(long, env = "EDGEONE_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
    /// ModifyHostsCertificate / DescribeAccelerationDomains calls per second per account.
    #[arg(long, env = "EDGEONE_TEO_RATE_LIMIT", default_value_t = 20)]
    pub teo_rate_limit: u32,
    /// SSL certificate calls per second per account.
    #[arg(long, env = "EDGEONE_SSL_RATE_LIMIT", default_value_t = 10)]
    pub ssl_rate_limit: u32,
    /// How often a Ready binding is re-checked against EdgeOne (jittered ±20%).
    #[arg(long, env = "EDGEONE_DRIFT_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub drift_interval: Duration,
    /// How often a binding that failed for a non-transient reason is re-checked.
    #[arg(long, env = "EDGEONE_TERMINAL_RECHECK", default_value = "1h", value_parser = humantime::parse_duration)]
    pub terminal_recheck: Duration,
    /// How often deployment progress is polled after a change.
    #[arg(long, env = "EDGEONE_DEPLOY_POLL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub deploy_poll: Duration,
    /// Warn (condition CertificateExpiringSoon and an event) when a bound certificate
    /// expires within this long.
    #[arg(long, env = "EDGEONE_EXPIRY_WARNING", default_value = "14d", value_parser = humantime::parse_duration)]
    pub expiry_warning: Duration,
    /// Create a binding for every cert-manager Certificate annotated with
    /// edgeone.operators.dev/zone-id (owned by the Certificate).
    #[arg(long, env = "EDGEONE_CERTIFICATE_DRIVEN_BINDINGS", default_value_t = true, action = clap::ArgAction::Set)]
    pub certificate_driven_bindings: bool,
    /// Address of /healthz, /readyz and /metrics (port 0 picks a free port, logged at start).
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    pub health_addr: std::net::SocketAddr,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `edgeone_cert_operator=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

fn init_logging(args: &RunArgs) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(&args.log_level).context("invalid --log-level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn kube_client(args: &RunArgs) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster configuration and no kubeconfig")?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing in-flight reconciles");
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(&args)?;
    let metrics = Arc::new(Metrics::default());
    let transport = Arc::new(
        Transport::new(TransportConfig {
            endpoints: Endpoints {
                teo: args.teo_endpoint.clone(),
                ssl: args.ssl_endpoint.clone(),
                sts: args.sts_endpoint.clone(),
            },
            region: args.region.clone(),
            allow_insecure_http: args.allow_insecure_http,
            teo_rate_per_second: args.teo_rate_limit,
            ssl_rate_per_second: args.ssl_rate_limit,
            ..TransportConfig::default()
        })
        .context("configuring the Tencent Cloud client")?
        .with_observer(metrics.clone()),
    );
    let default_credentials = default_chain(transport.clone());
    if default_credentials.is_none() {
        tracing::warn!(
            "no default Tencent Cloud credentials: bindings must name a credentialsRef Secret"
        );
    }
    let client = kube_client(&args).await?;
    let reporter = Reporter {
        controller: "edgeone-cert-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let timing = Timing {
        drift_interval: args.drift_interval,
        terminal_recheck: args.terminal_recheck,
        deploy_poll: args.deploy_poll,
        expiry_warning: args.expiry_warning,
        ..Timing::default()
    };
    let context = Arc::new(Context::new(
        client.clone(),
        TeoApi::new(transport.clone()),
        SslApi::new(transport),
        default_credentials,
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
        timing,
    ));
    let readiness = Readiness::default();
    let (health_addr, health) = server::bind(args.health_addr, readiness.clone(), metrics)
        .await
        .with_context(|| format!("binding the health endpoint {}", args.health_addr))?;
    tokio::spawn(health);
    tracing::info!(namespace = ?args.watch_namespace, teo = %args.teo_endpoint, health = %health_addr, "starting the controller");
    controller::run(
        client,
        context,
        args.watch_namespace.as_deref(),
        readiness,
        args.certificate_driven_bindings,
        shutdown_signal(),
    )
    .await;
    Ok(())
}
