//! No control plane may outlive whoever started it, however that one ends: dropped,
//! `testbed down`, SIGKILL, or a test binary exiting with the shared one running.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testbed::process::{is_gone, log_tail, wait_gone};
use testbed::{ControlPlane, Options, Pids};

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");

/// Generous: several control planes start at once on a small machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const GONE_TIMEOUT: Duration = Duration::from_secs(15);

/// A foreground `testbed up --dir <dir>/state` child, output in `<dir>/supervisor.log`.
struct Supervisor {
    child: Child,
    state: PathBuf,
    log: PathBuf,
}

impl Supervisor {
    fn start(dir: &Path) -> Supervisor {
        let state = dir.join("state");
        let log = dir.join("supervisor.log");
        let out = fs::File::create(&log).expect("create the supervisor log");
        let err = out.try_clone().expect("clone the log handle");
        let child = Command::new(TESTBED)
            .args(["up", "--dir"])
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start testbed up");
        let mut supervisor = Supervisor { child, state, log };
        supervisor.wait_ready();
        supervisor
    }

    /// Until `env`, the last file `up` writes, exists.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.state.join("env").is_file() {
            if let Some(status) = self.child.try_wait().expect("poll the supervisor") {
                panic!("testbed up exited ({status})\n{}", log_tail(&self.log));
            }
            assert!(
                Instant::now() < deadline,
                "testbed up not ready in time\n{}",
                log_tail(&self.log)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn pids(&self) -> Pids {
        Pids::parse(&fs::read_to_string(self.state.join("pids")).expect("read pids"))
            .expect("parse pids")
    }
}

fn assert_gone(pids: &[u32], what: &str) {
    assert!(
        wait_gone(pids, GONE_TIMEOUT),
        "{what}: still running: {:?}",
        pids.iter()
            .filter(|&&pid| !is_gone(pid))
            .collect::<Vec<_>>()
    );
}

/// Runs `testbed down --dir state` and asserts that it succeeded.
fn testbed_down(state: &Path) {
    let down = Command::new(TESTBED)
        .args(["down", "--dir"])
        .arg(state)
        .output()
        .expect("run testbed down");
    assert!(
        down.status.success(),
        "testbed down failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
}

#[test]
fn sigkilled_supervisor_takes_etcd_and_apiserver_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut supervisor = Supervisor::start(dir.path());
    let pids = supervisor.pids();
    assert!(!is_gone(pids.etcd) && !is_gone(pids.apiserver));

    supervisor.child.kill().expect("SIGKILL the supervisor");
    supervisor.child.wait().expect("reap the supervisor");

    // Nobody ran any cleanup: only PDEATHSIG can have stopped them.
    assert_gone(
        &[pids.etcd, pids.apiserver],
        "after SIGKILL of the supervisor",
    );
}

#[test]
fn down_stops_everything_and_keeps_logs_and_foreign_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    fs::create_dir_all(&state).expect("create the state dir");
    fs::write(state.join("notes.txt"), "mine").expect("write a file of the user's");

    let mut supervisor = Supervisor::start(dir.path());
    let pids = supervisor.pids();
    testbed_down(&state);
    let status = supervisor.child.wait().expect("reap the supervisor");
    assert!(
        status.success(),
        "supervisor exit {status}\n{}",
        log_tail(&supervisor.log)
    );
    assert_gone(&[pids.etcd, pids.apiserver], "after testbed down");

    assert_eq!(
        fs::read_to_string(state.join("notes.txt")).ok().as_deref(),
        Some("mine")
    );
    assert!(state.join("logs/kube-apiserver.log").is_file());
    assert!(state.join("logs/etcd.log").is_file());
    for removed in [
        "kubeconfig",
        "env",
        "pids",
        "testbed.pid",
        "certs",
        "etcd-data",
    ] {
        assert!(
            !state.join(removed).exists(),
            "{removed} should be removed by down"
        );
    }

    // A second down finds nothing to do and says so without failing.
    testbed_down(&state);
}

#[test]
fn detached_up_is_usable_at_once_and_down_stops_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("cluster");
    let up = Command::new(TESTBED)
        .args(["up", "--detach", "--dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .expect("run testbed up --detach");
    assert!(
        up.status.success(),
        "testbed up --detach failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let pids = Pids::parse(&fs::read_to_string(state.join("pids")).expect("read pids"))
        .expect("parse pids");

    // The env file is what a user sources; it must work as soon as up returns.
    let kubectl = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}/env && kubectl get namespace default -o name",
            state.display()
        ))
        .output()
        .expect("run kubectl through the env file");
    assert_eq!(
        String::from_utf8_lossy(&kubectl.stdout).trim(),
        "namespace/default",
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );

    // A second up on the same directory must refuse, not start a second cluster.
    let twice = Command::new(TESTBED)
        .args(["up", "--detach", "--dir"])
        .arg(&state)
        .output()
        .expect("run testbed up --detach again");
    assert!(!twice.status.success());

    let supervisor: u32 = fs::read_to_string(state.join("testbed.pid"))
        .expect("read testbed.pid")
        .trim()
        .parse()
        .expect("parse testbed.pid");
    testbed_down(&state);
    assert_gone(
        &[supervisor, pids.etcd, pids.apiserver],
        "after testbed down of a detached supervisor",
    );
    assert!(
        fs::read_to_string(state.join("testbed.log"))
            .expect("testbed.log is kept")
            .contains("stopped on SIGTERM")
    );
}

#[test]
fn dropping_a_control_plane_stops_it_and_removes_its_temp_dir() {
    let control_plane = ControlPlane::start(Options {
        keep: false,
        ..Options::default()
    })
    .expect("start a control plane");
    let pids = control_plane.pids();
    let dir = control_plane.dir().to_path_buf();
    assert!(control_plane.kubeconfig_path().is_file());

    drop(control_plane);

    // Drop waits for both, so they are gone at once, not eventually.
    assert!(is_gone(pids.etcd) && is_gone(pids.apiserver));
    assert!(!dir.exists(), "{} should be removed", dir.display());
}

#[test]
fn shared_control_plane_is_torn_down_when_the_process_exits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report");
    let run = Command::new(TESTBED)
        .args(["shared-selftest", "--report"])
        .arg(&report)
        .env_remove(testbed::KEEP_ENV)
        .output()
        .expect("run testbed shared-selftest");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = fs::read_to_string(&report).expect("read the report");
    let (shared_dir, pids) = text.split_once('\n').expect("dir line, then pids");
    let pids = Pids::parse(pids).expect("parse pids");

    // The atexit handler ran before the process ended, so no waiting here either.
    assert!(is_gone(pids.etcd) && is_gone(pids.apiserver));
    assert!(
        !Path::new(shared_dir).exists(),
        "{shared_dir} should be removed"
    );
}
