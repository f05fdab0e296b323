//! The daemon binary as its own process: one builder to start it (the
//! transports it serves, extra arguments and environment, a wrapper
//! program, the user it runs as, where its output goes), waiting for its
//! sockets, and stopping it.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use super::proc::{self, wait_for, Rss, TIMEOUT};

/// The daemon binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_vhost-user-9p");

/// Where the daemon's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// The test's own stderr (the default).
    Inherit,
    /// Stdout and stderr to a log file, printed if the test fails.
    Log,
    /// Stderr to a file (`Daemon::log_text`).
    StderrFile,
    /// Stderr to a pipe (`Daemon::stderr`, `Daemon::stderr_line`).
    StderrPipe,
}

/// How the daemon is to be started; `Daemon::builder`.
pub struct Builder {
    share: Option<PathBuf>,
    vhost: Option<Option<PathBuf>>,
    inherited: Option<(OwnedFd, Option<PathBuf>)>,
    tag: String,
    listen: Vec<String>,
    log_level: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    wrapper: Vec<OsString>,
    user: Option<(u32, u32)>,
    umask: Option<u32>,
    out: Out,
    may_exit: bool,
}

impl Builder {
    /// A vhost-user socket (`--socket-path`) in the daemon's private
    /// directory (`Daemon::socket`), with the mount tag `tag()` says.
    pub fn vhost_user(mut self) -> Builder {
        self.vhost = Some(None);
        self
    }

    /// The vhost-user socket at `path`.
    pub fn socket_path(mut self, path: &Path) -> Builder {
        self.vhost = Some(Some(path.to_path_buf()));
        self
    }

    /// vhost-user on a descriptor the daemon inherits (`--fd N`, with the
    /// mount tag `tag()` says): `fd`, open in the daemon under its number in
    /// the test, which closes its own copy once the daemon is started.
    /// `socket`, its path when it is a listening socket, is waited for
    /// (it is there already) and is `Daemon::socket`.
    pub fn inherit_fd(mut self, fd: impl Into<OwnedFd>, socket: Option<&Path>) -> Builder {
        self.inherited = Some((fd.into(), socket.map(Path::to_path_buf)));
        self
    }

    /// The vhost-user mount tag (default "test").
    pub fn tag(mut self, tag: &str) -> Builder {
        self.tag = tag.into();
        self
    }

    /// `--listen SPEC` (`unix:PATH` is waited for at start).
    pub fn listen(mut self, spec: &str) -> Builder {
        self.listen.push(spec.into());
        self
    }

    /// `--listen unix:PATH`.
    pub fn listen_unix(self, path: &Path) -> Builder {
        self.listen(&format!("unix:{}", path.display()))
    }

    /// `--log-level LEVEL` (default warn).
    pub fn log_level(mut self, level: &str) -> Builder {
        self.log_level = Some(level.into());
        self
    }

    /// No `--log-level`: the daemon's own default.
    pub fn default_log_level(mut self) -> Builder {
        self.log_level = None;
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Builder {
        self.args.push(arg.into());
        self
    }

    pub fn args<A: Into<OsString>>(mut self, args: impl IntoIterator<Item = A>) -> Builder {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Builder {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Started through `program args... -- BIN ...` (e.g. prlimit).
    pub fn wrapper<A: Into<OsString>>(
        mut self,
        program: &str,
        args: impl IntoIterator<Item = A>,
    ) -> Builder {
        self.wrapper = vec![program.into()];
        self.wrapper.extend(args.into_iter().map(Into::into));
        self
    }

    /// Run as `uid`/`gid` (the test runs as root).
    pub fn user(mut self, uid: u32, gid: u32) -> Builder {
        self.user = Some((uid, gid));
        self
    }

    /// Started under umask `mask`.
    pub fn umask(mut self, mask: u32) -> Builder {
        self.umask = Some(mask);
        self
    }

    /// Stdout and stderr to a log file, printed if the test fails.
    pub fn log_to_file(mut self) -> Builder {
        self.out = Out::Log;
        self
    }

    /// Stderr to a file, read with `Daemon::log_text`.
    pub fn stderr_to_file(mut self) -> Builder {
        self.out = Out::StderrFile;
        self
    }

    /// Stderr to a pipe, read with `Daemon::stderr`.
    pub fn stderr_piped(mut self) -> Builder {
        self.out = Out::StderrPipe;
        self
    }

    /// The daemon may exit at start (the test looks at its status): stop
    /// waiting for its sockets if it does.
    pub fn may_exit(mut self) -> Builder {
        self.may_exit = true;
        self
    }

    fn command(&self, dir: &Path) -> (Command, Option<PathBuf>) {
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("--").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        if let Some(share) = &self.share {
            command.arg("--shared-dir").arg(share);
        }
        let vhost = self
            .vhost
            .as_ref()
            .map(|p| p.clone().unwrap_or_else(|| dir.join("9p.sock")));
        if let Some(socket) = &vhost {
            command
                .arg("--socket-path")
                .arg(socket)
                .args(["--tag", &self.tag]);
        }
        let vhost = match &self.inherited {
            Some((fd, socket)) => {
                let fd = fd.as_raw_fd();
                command
                    .arg("--fd")
                    .arg(fd.to_string())
                    .args(["--tag", &self.tag]);
                // SAFETY: fcntl is async-signal-safe; nothing else runs in
                // the child. (The test's descriptor is close-on-exec: only
                // this child keeps it across exec.)
                unsafe {
                    command.pre_exec(move || {
                        if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                socket.clone().or(vhost)
            }
            None => vhost,
        };
        for spec in &self.listen {
            command.arg("--listen").arg(spec);
        }
        let given = self.args.iter().any(|a| a == "--log-level");
        if let (Some(level), false) = (&self.log_level, given) {
            command.args(["--log-level", level]);
        }
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        if let Some(mask) = self.umask {
            // SAFETY: umask is async-signal-safe; nothing else runs in the child.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        (command, vhost)
    }

    /// Runs the daemon to its end (arguments it refuses, a start that
    /// fails): its status and output.
    pub fn output(self) -> Output {
        let dir = tempfile::tempdir().expect("daemon tempdir");
        let (mut command, _) = self.command(dir.path());
        command.output().expect("run vhost-user-9p")
    }

    /// Starts the daemon and waits for its sockets (the vhost-user one and
    /// each `--listen unix:`).
    pub fn start(self) -> Daemon {
        let dir = tempfile::tempdir().expect("daemon tempdir");
        let (mut command, vhost) = self.command(dir.path());
        let log = match self.out {
            Out::Inherit => None,
            Out::StderrPipe => {
                command.stderr(Stdio::piped());
                None
            }
            Out::Log => {
                let path = dir.path().join("daemon.log");
                let file = File::create(&path).expect("create the daemon's log");
                command
                    .stdout(file.try_clone().expect("dup the log's descriptor"))
                    .stderr(file);
                Some(path)
            }
            Out::StderrFile => {
                let path = dir.path().join("daemon.err");
                command.stderr(File::create(&path).expect("create the daemon's stderr file"));
                Some(path)
            }
        };
        let child = command.spawn().expect("spawn vhost-user-9p");
        let unix: Vec<PathBuf> = self
            .listen
            .iter()
            .filter_map(|l| l.strip_prefix("unix:").map(PathBuf::from))
            .collect();
        let mut daemon = Daemon {
            child,
            socket: vhost.clone().unwrap_or_default(),
            unix,
            log,
            print_log: self.out == Out::Log,
            exited: None,
            _dir: dir,
        };
        let sockets: Vec<PathBuf> = vhost.into_iter().chain(daemon.unix.clone()).collect();
        for socket in sockets {
            let listening = wait_for(&format!("the daemon's socket {}", socket.display()), || {
                if is_socket(&socket) {
                    return Some(true);
                }
                if let Some(status) = daemon.try_wait() {
                    if self.may_exit {
                        return Some(false);
                    }
                    panic!(
                        "the daemon exited ({status}) before creating {}; its output:\n{}",
                        socket.display(),
                        daemon.log_text()
                    );
                }
                None
            });
            if !listening {
                break;
            }
        }
        daemon
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The daemon binary running as its own process; stopped when dropped
/// (SIGTERM, SIGKILL if it has not exited within 10 s).
pub struct Daemon {
    pub child: Child,
    /// The vhost-user socket (empty if it serves none).
    pub socket: PathBuf,
    /// The `--listen unix:` sockets.
    pub unix: Vec<PathBuf>,
    log: Option<PathBuf>,
    print_log: bool,
    exited: Option<ExitStatus>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// The daemon serving `share` (`--shared-dir`), logging warnings.
    pub fn builder(share: &Path) -> Builder {
        Builder {
            share: Some(share.to_path_buf()),
            vhost: None,
            inherited: None,
            tag: "test".into(),
            listen: Vec::new(),
            log_level: Some("warn".into()),
            args: Vec::new(),
            env: Vec::new(),
            wrapper: Vec::new(),
            user: None,
            umask: None,
            out: Out::Inherit,
            may_exit: false,
        }
    }

    /// The daemon without `--shared-dir` (arguments it must refuse).
    pub fn bare() -> Builder {
        Builder {
            share: None,
            ..Daemon::builder(Path::new("/"))
        }
    }

    /// Starts `bin` serving `share` on a vhost-user socket (logging
    /// warnings only, unless `extra_args` says otherwise) and waits for its
    /// socket.
    pub fn start(bin: &str, share: &Path, extra_args: &[&str]) -> Daemon {
        assert_eq!(bin, BIN, "the daemon of this build");
        Daemon::builder(share)
            .vhost_user()
            .tag("bench")
            .args(extra_args)
            .start()
    }

    /// The first `--listen unix:` socket.
    pub fn unix_socket(&self) -> &Path {
        self.unix.first().expect("a --listen unix: socket")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait on the daemon");
        }
        self.exited
    }

    /// Waits (at most `timeout`) for the daemon to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        proc::poll_until(timeout, || self.try_wait().is_some());
        self.try_wait()
    }

    /// Waits for the daemon to exit by itself; the test fails if it does
    /// not within `proc::TIMEOUT`.
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_exit(TIMEOUT)
            .unwrap_or_else(|| panic!("the daemon did not exit within {TIMEOUT:?}"))
    }

    /// SIGTERM, then its exit status (the test fails if it does not exit).
    pub fn stop(&mut self) -> ExitStatus {
        if self.try_wait().is_none() {
            // SAFETY: kill(2) of the process this test started, by its pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        }
        self.wait()
    }

    /// What it logged (`log_to_file`, `stderr_to_file`).
    pub fn log_text(&self) -> String {
        match &self.log {
            Some(path) => std::fs::read_to_string(path)
                .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display())),
            None => "<not captured>".into(),
        }
    }

    /// All it wrote to stderr (`stderr_piped`), once it has exited.
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// The first line it wrote to stderr (`stderr_piped`).
    pub fn stderr_line(&mut self) -> String {
        let mut line = String::new();
        let err = self.child.stderr.as_mut().expect("stderr_piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(err), &mut line).unwrap();
        line
    }

    /// The process that serves (see [`serving_pid`]).
    pub fn serving_pid(&self) -> u32 {
        serving_pid(self.child.id())
    }

    /// The descriptors the serving process has open.
    pub fn open_fds(&self) -> usize {
        proc::open_fds(self.serving_pid())
    }

    /// VmRSS and its parts (kB) of the serving process.
    pub fn rss(&self) -> Rss {
        Rss::of(self.serving_pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            stop(&mut self.child);
        }
        if self.print_log && std::thread::panicking() {
            eprintln!(
                "---- vhost-user-9p log ----\n{}\n---- end of log ----",
                self.log_text()
            );
        }
    }
}

/// The process of the daemon `pid` that serves: with `--sandbox
/// namespace` (the default) the child it forks into its namespaces
/// (waited for), else the daemon itself.
pub fn serving_pid(pid: u32) -> u32 {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the daemon's cmdline");
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let sandbox = args
        .windows(2)
        .rev()
        .find(|w| w[0] == b"--sandbox")
        .map_or(&b"namespace"[..], |w| w[1]);
    if sandbox != b"namespace" {
        return pid;
    }
    wait_for(&format!("daemon {pid} to fork its serving process"), || {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the daemon's children");
        children
            .split_whitespace()
            .next()
            .map(|c| c.parse().unwrap())
    })
}

/// Stops a process the test started: SIGTERM (which the daemon passes on
/// to the child serving in its namespaces, exiting only once that one has,
/// so that its sockets are free when this returns); SIGKILL if it has not
/// exited within 10 s.
pub fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) of the process this test started, by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let exited = proc::poll_until(Duration::from_secs(10), || {
            !matches!(child.try_wait(), Ok(None))
        });
        if !exited {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

/// A child process stopped (as [`stop`] does) when the test ends, also by a
/// failed assertion.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}
