//! Child processes that cannot outlive us.
//!
//! Every child is spawned with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it
//! when its parent goes away, even if the parent is SIGKILLed and runs no cleanup.
//! The catch: "parent" means the *thread* that forked, not the process. A test
//! harness runs each test on its own short-lived thread, so a child forked there
//! would be killed as soon as that test returns. All children are therefore forked
//! by one dedicated thread that lives until the process exits.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

/// How many log lines an error message quotes.
const LOG_TAIL_LINES: usize = 40;

struct SpawnRequest {
    command: Command,
    reply: Sender<io::Result<Child>>,
}

/// The channel to the spawner thread, started on first use. The sender lives in a
/// static, so the thread's `recv` never sees a closed channel and it never exits.
fn spawner() -> Result<&'static Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Result<Sender<SpawnRequest>, String>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("testbed-spawner".into())
                .spawn(move || {
                    while let Ok(mut request) = receiver.recv() {
                        let result = request.command.spawn();
                        // The requester may have given up; nothing to do about that.
                        let _ = request.reply.send(result);
                    }
                })
                .map(|_| sender)
                .map_err(|e| format!("starting the thread that spawns child processes: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Spawns `command` from the long-lived spawner thread, in its own process group
/// (so a Ctrl-C meant for the supervisor doesn't hit it mid-teardown) and with
/// PDEATHSIG set (so it dies with us).
pub fn spawn_bound_to_us(mut command: Command) -> Result<Child> {
    let parent = std::process::id();
    command.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(io::Error::last_os_error());
            }
            // If we died between fork and prctl, no signal will ever come: give up.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (reply, response) = mpsc::channel();
    let program = command.get_program().to_string_lossy().into_owned();
    spawner()?
        .send(SpawnRequest { command, reply })
        .map_err(|_| anyhow!("the spawner thread is gone"))?;
    response
        .recv()
        .map_err(|_| anyhow!("the spawner thread is gone"))?
        .with_context(|| format!("starting {program}"))
}

/// A child process of ours with its log file, stopped gracefully on request.
pub struct ManagedProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ManagedProcess {
    /// Starts `program args…` with stdout and stderr going to `log`, which is
    /// truncated first so it tells about this run only.
    pub fn start(name: &'static str, program: &Path, args: &[String], log: &Path) -> Result<Self> {
        let log_file = File::create(log)
            .with_context(|| format!("opening the {name} log {}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .with_context(|| format!("duplicating the {name} log handle"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = spawn_bound_to_us(command)
            .with_context(|| format!("is {} an executable {name}?", program.display()))?;
        Ok(ManagedProcess {
            name,
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(description)` if the process has exited (and is now reaped).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("cannot be waited for: {error}")),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps the child. Idempotent.
    pub fn terminate(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        signal(self.pid(), libc::SIGKILL);
        // After SIGKILL the wait cannot block for long; the error case means it was
        // already reaped, which is what we want anyway.
        let _ = self.child.wait();
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// Sends `sig` to `pid`; a process that is already gone is not an error here.
/// A figure of `/proc/<pid>/status` in KiB, e.g. `VmHWM` (the peak resident set
/// size) or `VmRSS`.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    value
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{field}: {value}"))
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a log file (at most the last 64 KiB of it),
/// labelled with its path so the reader knows where to look for more.
pub fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", path.display())
}

/// True when no live process has this pid: no /proc entry, or a zombie waiting for
/// someone else to reap it (a zombie holds no ports, files or memory).
pub fn is_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesized command name, which may itself
        // contain ") ", so look after the last one.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Waits until every pid in `pids` [`is_gone`]; false on timeout.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&pid| is_gone(pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `n` distinct free loopback ports. Each is found by binding port 0; all are held
/// until every one is chosen so we never pick the same port twice. Someone else may
/// still grab one before our child binds it: the caller retries on that race.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding a free loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr().context("reading a bound port")?.port()))
        .collect()
}
