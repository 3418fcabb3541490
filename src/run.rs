//! `edgeone-cert-operator run`: configuration from flags and environment, and the
//! wiring of the Tencent client, credentials and controller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use kube::runtime::events::{Recorder, Reporter};

use crate::controller::status::Timing;
use crate::controller::{self, Context, EdgeOne};
use crate::leader::{Elector, LeaseConfig};
use crate::metrics::Metrics;
use crate::server::{self, Readiness};
use crate::tencent::coalesce::{DEFAULT_MAX_HOSTS_PER_CALL, ModifyCoalescer};
use crate::tencent::credentials::default_chain;
use crate::tencent::ssl::SslApi;
use crate::tencent::teo::TeoApi;
use crate::tencent::transport::{Endpoints, Transport, TransportConfig};
use crate::tencent::zones::ZoneObserver;

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
    /// Run only while holding a Lease, so that of several replicas one reconciles.
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "LEADER_ELECTION_ID",
        default_value = "edgeone-cert-operator"
    )]
    pub leader_election_id: String,
    /// How long a standby waits on a lease that is not renewed before it takes over.
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader tries to renew before it stops (and exits).
    #[arg(long, env = "LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// The time between attempts to acquire or renew the lease.
    #[arg(long, env = "LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub leader_election_retry_period: Duration,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How long a `ModifyHostsCertificate` waits for others with the same account, zone
    /// and certificate configuration to go out as one call (0: no waiting).
    #[arg(long, env = "EDGEONE_COALESCE_WINDOW", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub coalesce_window: Duration,
    /// The most hosts one `ModifyHostsCertificate` carries (1: one call per host).
    #[arg(long, env = "EDGEONE_MAX_HOSTS_PER_CALL", default_value_t = DEFAULT_MAX_HOSTS_PER_CALL, value_parser = clap::value_parser!(u16).range(1..=100).map(usize::from))]
    pub max_hosts_per_call: usize,
    /// Serve all bindings of a zone from one paged listing of the zone per interval
    /// (false: each binding reads its own hosts).
    #[arg(long, env = "EDGEONE_SHARED_OBSERVATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub shared_observation: bool,
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
    // Each reconcile reads Secrets and writes status and events; a cold start of
    // thousands of bindings would otherwise open one TLS connection to the apiserver
    // per binding (about 80 KiB each, kept in the pool). Requests beyond the limit
    // wait; a watch holds a slot only until its response starts.
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&tower::limit::ConcurrencyLimitLayer::new(
            KUBE_API_CONCURRENCY,
        ))
        .build())
}

/// Kubernetes API requests in flight at once (and so connections in the pool).
const KUBE_API_CONCURRENCY: usize = 32;

/// The lease settings when `--leader-elect` is on; they must leave the leader time to
/// give up before a standby may take over.
fn lease_config(args: &RunArgs) -> anyhow::Result<Option<LeaseConfig>> {
    if !args.leader_elect {
        return Ok(None);
    }
    if args.leader_election_renew_deadline >= args.leader_election_lease_duration
        || args.leader_election_retry_period >= args.leader_election_renew_deadline
    {
        anyhow::bail!(
            "leader election needs --leader-election-retry-period < --leader-election-renew-deadline < --leader-election-lease-duration"
        );
    }
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    Ok(Some(LeaseConfig {
        namespace: args
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into()),
        name: args.leader_election_id.clone(),
        identity,
        lease_duration: args.leader_election_lease_duration,
        renew_deadline: args.leader_election_renew_deadline,
        retry_period: args.leader_election_retry_period,
    }))
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
    let lease = lease_config(&args)?;
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
    let teo = TeoApi::new(transport.clone());
    let edgeone = EdgeOne {
        modifier: ModifyCoalescer::new(teo.clone(), args.coalesce_window, args.max_hosts_per_call),
        zones: args
            .shared_observation
            .then(|| ZoneObserver::new(teo.clone())),
        teo,
        ssl: SslApi::new(transport),
    };
    let context = Arc::new(Context::new(
        client.clone(),
        edgeone,
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
    tracing::info!(namespace = ?args.watch_namespace, teo = %args.teo_endpoint, health = %health_addr, "starting");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    let Some(lease) = lease else {
        controller::run(
            client,
            context,
            args.watch_namespace.as_deref(),
            readiness,
            args.certificate_driven_bindings,
            stopped(),
        )
        .await;
        return Ok(());
    };
    // A standby is ready as soon as it serves: it has nothing to sync until it leads.
    readiness.set_ready();
    let mut elector = Elector::new(client.clone(), lease);
    let config = elector.config().clone();
    tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "waiting to become the leader");
    tokio::select! {
        _ = elector.acquire() => {}
        _ = stopped() => return Ok(()),
    }
    tracing::info!(identity = %config.identity, "became the leader; reconciling");
    let run = controller::run(
        client,
        context,
        args.watch_namespace.as_deref(),
        readiness,
        args.certificate_driven_bindings,
        stopped(),
    );
    tokio::select! {
        _ = run => {
            elector.release().await;
            Ok(())
        }
        // Returning drops the controller at once, in-flight reconciles included: a
        // replica that may no longer be the leader must not act (client-go exits too).
        reason = elector.hold() => {
            tracing::error!(%reason, "leadership lost; exiting");
            anyhow::bail!("leadership lost: {reason}")
        }
    }
}
