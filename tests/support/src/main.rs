//! `testbed up --dir DIR` / `testbed down --dir DIR`: a control plane for trying the
//! operator by hand (`make cluster-up`), kept alive by a supervisor process.
//!
//! Files in DIR while it runs: `kubeconfig`, `pids` (etcd and kube-apiserver),
//! `testbed.pid` (the supervisor), `env` (shell lines to source; written last, so
//! its existence means "ready"), `logs/`, and with `--detach` `testbed.log`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use testbed::process::{is_gone, log_tail, signal, wait_gone};
use testbed::{ControlPlane, Options, Pids, TOOLS_BIN_ENV};
use tokio::signal::unix::{SignalKind, signal as unix_signal};

const PID_FILE: &str = "testbed.pid";
const ENV_FILE: &str = "env";
const DETACHED_LOG: &str = "testbed.log";

#[derive(Parser)]
#[command(
    name = "testbed",
    about = "Runs a real etcd + kube-apiserver on loopback ports"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Start a control plane and supervise it until `down`, SIGTERM or SIGINT.
    Up(UpArgs),
    /// Stop the control plane that `up` started in DIR.
    Down(DownArgs),
    /// Start the shared control plane of `testbed::shared()`, write its directory
    /// and pids to FILE and exit (for the test of the exit-time teardown).
    #[command(hide = true)]
    SharedSelftest {
        #[arg(long)]
        report: PathBuf,
    },
}

#[derive(Args)]
struct UpArgs {
    /// Directory for the kubeconfig, certificates, etcd data and logs.
    #[arg(long)]
    dir: PathBuf,
    /// Run in the background (logging to DIR/testbed.log); return once ready.
    #[arg(long)]
    detach: bool,
    /// Seconds etcd and kube-apiserver may take to become ready.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Args)]
struct DownArgs {
    #[arg(long)]
    dir: PathBuf,
    /// Seconds to wait for a clean stop before killing the supervisor.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Up(args) if args.detach => up_detached(&args),
        Commands::Up(args) => up_foreground(&args),
        Commands::Down(args) => down(&args),
        Commands::SharedSelftest { report } => shared_selftest(&report),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("testbed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The supervisor: start, announce, wait for a signal (or a crash), tear down.
fn up_foreground(args: &UpArgs) -> Result<()> {
    let dir = prepare_dir(&args.dir)?;
    refuse_if_running(&dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    // Signal handlers go in before anything is started: a SIGTERM arriving during
    // start-up then waits for us instead of killing us with the state half made.
    let (mut terminate, mut interrupt, mut hangup) = runtime.block_on(async {
        Ok::<_, anyhow::Error>((
            unix_signal(SignalKind::terminate())?,
            unix_signal(SignalKind::interrupt())?,
            unix_signal(SignalKind::hangup())?,
        ))
    })?;
    write_text(&dir.join(PID_FILE), &format!("{}\n", std::process::id()))?;

    let started = ControlPlane::start(Options {
        dir: Some(dir.clone()),
        startup_timeout: Duration::from_secs(args.timeout),
        ..Options::default()
    });
    let control_plane = match started {
        Ok(control_plane) => control_plane,
        Err(error) => {
            let _ = fs::remove_file(dir.join(PID_FILE));
            return Err(error);
        }
    };
    let env = format!(
        "export KUBECONFIG={}\nexport PATH={}:\"$PATH\"\n",
        shell_quote(&control_plane.kubeconfig_path()),
        shell_quote(control_plane.tools_bin()),
    );
    write_text(&dir.join(ENV_FILE), &env)?;
    println!(
        "{}",
        ready_line(&dir, control_plane.server_url(), control_plane.pids())
    );

    let outcome: Result<&str> = runtime.block_on(async {
        let mut health = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok("SIGTERM"),
                _ = interrupt.recv() => return Ok("SIGINT"),
                _ = hangup.recv() => return Ok("SIGHUP"),
                _ = health.tick() => control_plane.check_alive()?,
            }
        }
    });
    drop(control_plane);
    let _ = fs::remove_file(dir.join(ENV_FILE));
    let _ = fs::remove_file(dir.join(PID_FILE));
    let reason = outcome?;
    println!("testbed: stopped on {reason}");
    Ok(())
}

/// Re-runs `up` without `--detach` in a new session, and waits until it is ready.
fn up_detached(args: &UpArgs) -> Result<()> {
    let dir = prepare_dir(&args.dir)?;
    refuse_if_running(&dir)?;
    // Build or find the tools here, where the user sees the progress, and hand the
    // answer to the background process.
    let tools_bin = testbed::tools_bin()?;
    for stale in [PID_FILE, ENV_FILE, "kubeconfig"] {
        let _ = fs::remove_file(dir.join(stale));
    }
    let log_path = dir.join(DETACHED_LOG);
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let exe = std::env::current_exe().context("finding the testbed executable")?;
    let mut command = Command::new(exe);
    command
        .arg("up")
        .arg("--dir")
        .arg(&dir)
        .arg("--timeout")
        .arg(args.timeout.to_string())
        .env(TOOLS_BIN_ENV, &tools_bin)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: setsid(2) is async-signal-safe. A new session leaves our terminal's
    // process group, so closing the terminal or Ctrl-C in it doesn't reach it.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context("starting the background supervisor")?;

    // Start-up timeout plus slack for certificate generation and retries.
    let deadline = Instant::now() + Duration::from_secs(args.timeout * 3 + 30);
    loop {
        if let Some(status) = child
            .try_wait()
            .context("checking the background supervisor")?
        {
            bail!(
                "the background supervisor exited ({status}) before it was ready\n{}",
                log_tail(&log_path)
            );
        }
        if dir.join(ENV_FILE).is_file() {
            break;
        }
        if Instant::now() >= deadline {
            signal(child.id(), libc::SIGTERM);
            bail!(
                "the control plane was not ready in time; stopped it\n{}",
                log_tail(&log_path)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    let pids = Pids::parse(&read_text(&dir.join("pids"))?)?;
    let kubeconfig = read_text(&dir.join("kubeconfig"))?;
    let server = kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: "))
        .unwrap_or("?");
    println!("{}", ready_line(&dir, server, pids));
    println!(
        "testbed: supervisor pid {} logs to {}; stop it with `testbed down --dir {}`",
        child.id(),
        log_path.display(),
        dir.display()
    );
    Ok(())
}

/// SIGTERM to the supervisor, then wait for it and its processes to be gone.
fn down(args: &DownArgs) -> Result<()> {
    let dir = args.dir.as_path();
    let pid_path = dir.join(PID_FILE);
    let Ok(text) = fs::read_to_string(&pid_path) else {
        println!("testbed: nothing running in {}", dir.display());
        return Ok(());
    };
    let pid: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a pid", pid_path.display()))?;
    if !is_testbed_process(pid) {
        // The supervisor was killed without cleaning up (and the pid may be reused).
        let _ = fs::remove_file(&pid_path);
        let _ = fs::remove_file(dir.join(ENV_FILE));
        println!("testbed: supervisor {pid} was not running; removed its stale pid file");
        return Ok(());
    }
    // Its children too: if we end up killing the supervisor, they die by PDEATHSIG
    // asynchronously, and "down" must not return before they have.
    let mut pids = vec![pid];
    if let Ok(children) = fs::read_to_string(dir.join("pids")).map(|t| Pids::parse(&t)) {
        let children = children?;
        pids.extend([children.apiserver, children.etcd]);
    }
    signal(pid, libc::SIGTERM);
    if wait_gone(&pids, Duration::from_secs(args.timeout)) {
        println!("testbed: stopped the control plane in {}", dir.display());
        return Ok(());
    }
    signal(pid, libc::SIGKILL);
    if !wait_gone(&pids, Duration::from_secs(10)) {
        bail!("processes {pids:?} are still running after SIGKILL");
    }
    bail!(
        "the supervisor did not stop within {}s of SIGTERM and was killed; see {}",
        args.timeout,
        dir.join("logs").display()
    )
}

fn shared_selftest(report: &Path) -> Result<()> {
    let control_plane = testbed::try_shared()?;
    let text = format!(
        "{}\n{}",
        control_plane.dir().display(),
        control_plane.pids().to_file_text()
    );
    write_text(report, &text)
    // Returning from main runs the atexit handler, which is what is under test.
}

fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

fn refuse_if_running(dir: &Path) -> Result<()> {
    let pid = fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match pid {
        Some(pid) if pid != std::process::id() && is_testbed_process(pid) => bail!(
            "a control plane already runs in {} (supervisor pid {pid}); run `testbed down --dir {}` first",
            dir.display(),
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// Whether `pid` is alive and a testbed binary, so a stale pid file whose number
/// has since been reused by something else never gets that process signalled.
fn is_testbed_process(pid: u32) -> bool {
    if is_gone(pid) {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        Path::new(&*String::from_utf8_lossy(program))
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("testbed"))
    })
}

fn ready_line(dir: &Path, server: &str, pids: Pids) -> String {
    format!(
        "testbed: ready: kube-apiserver {server} (pid {}), etcd pid {}; run `source {}`",
        pids.apiserver,
        pids.etcd,
        dir.join(ENV_FILE).display()
    )
}

/// Single-quotes a path for a POSIX shell.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
