use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use teo_emulator::faults::FaultConfig;
use teo_emulator::{Emulator, Seed, State};

/// Tencent Cloud API emulator (EdgeOne teo, SSL, STS) for tests and the local demo.
#[derive(Parser)]
#[command(name = "teo-emulator", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port. Loopback only by default.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed document (JSON): accounts, zones, hosts, certificates, identity providers.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Overrides the seed's settings.deployDelayMs.
    #[arg(long)]
    deploy_delay_ms: Option<u64>,
    /// Turns the per-account rate limits off.
    #[arg(long)]
    no_rate_limit: bool,
    /// Fault configuration as JSON, e.g. '{"*":{"internalError":0.2}}'.
    #[arg(long)]
    faults: Option<String>,
    /// Writes `http://ADDR` to this file once listening (for scripts).
    #[arg(long)]
    address_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let seed: Seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading seed {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parsing seed {}", path.display()))?
        }
        None => Seed::default(),
    };
    let mut state = State::from_seed(&seed)
        .map_err(anyhow::Error::msg)
        .context("invalid seed")?;
    if let Some(delay) = args.deploy_delay_ms {
        state.settings.deploy_delay_ms = delay;
    }
    if args.no_rate_limit {
        state.settings.teo_rate_limit = 0;
        state.settings.ssl_rate_limit = 0;
    }
    if let Some(faults) = &args.faults {
        let faults: FaultConfig = serde_json::from_str(faults).context("parsing --faults")?;
        faults.validate().map_err(anyhow::Error::msg)?;
        state.faults = faults;
    }
    let emulator = Emulator::start(args.listen, state)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("teo-emulator listening on {}", emulator.url());
    if let Some(path) = &args.address_file {
        std::fs::write(path, emulator.url())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
