//! Connection reuse, the command's side (DESIGN §5a): find this user's connection master for a
//! route's first hop (a Unix socket in a private directory), start one when there is none, and
//! connect through it. The master itself is `master`.
//!
//! The link to a master is SSH too: the command runs russh's client over the socket, so what
//! works on a [`Chain`] (sessions, PTYs, direct-tcpip for `proxy` and `forward`) works through a
//! master unchanged. The SSH user name says what the command wants:
//! - [`JUMP`]: channels opened on the master's first-hop connection. The command connects the
//!   rest of the route itself through one of them (its own host-key checks, prompts, `-A`, `-R`).
//! - [`TARGET`] + JSON: sessions and channels opened on a connection to the target the master
//!   holds (made on first use, never prompting). A master that cannot make it refuses, and the
//!   command connects the target itself through [`JUMP`].
//!
//! Trust in the local link comes from the file system and the kernel, not from a host key: the
//! directory is the user's own and private (0700), the socket is the user's, and the peer's uid
//! (SO_PEERCRED) is the user's, checked on both ends. Anything wrong, missing or stale means no
//! reuse: the command connects directly, as it would without masters, and says why at debug.

// SshError carries what a refusal message needs; see client.rs.
#![allow(clippy::result_large_err)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{self, Chain, FinalHop, Hop, SshError, Trust};

/// The first argument that makes hop a master: `hop __master SPEC`.
pub const MASTER_ARG: &str = "__master";

/// User name asking for channels on the master's first-hop connection.
pub const JUMP: &str = "jump";
/// Prefix of the user name asking for a held target: `target {TargetRequest as JSON}`, with
/// keyboard-interactive authentication: a master that cannot hold the target answers with an
/// info request named [`REFUSAL`] whose instructions are the [`SshError`] as JSON.
pub const TARGET: &str = "target ";
/// See [`TARGET`].
pub const REFUSAL: &str = "hop-master-refusal";

/// Why a master was not used.
#[derive(Debug)]
pub enum Refusal {
    /// No usable master (none could be started, its socket is not trustworthy, …): connect as
    /// without masters.
    NoMaster(String),
    /// The master could not connect the target, and says why.
    Target(SshError),
}

impl Refusal {
    /// Whether connecting by another way cannot help: the route itself failed beyond the first
    /// hop (the master's connection to it works), as it would for the command. Anything else
    /// (a host key to ask about, a key needing a passphrase, a lost connection) is worth
    /// connecting another way.
    pub fn is_final(&self) -> bool {
        matches!(self, Refusal::Target(SshError::Connect { reason, .. }) if reason != LOST)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoMaster(why) => f.write_str(why),
            Refusal::Target(e) => write!(f, "the master cannot hold the target: {e}"),
        }
    }
}

impl From<String> for Refusal {
    fn from(why: String) -> Refusal {
        Refusal::NoMaster(why)
    }
}

/// Chain::open's reason when the connection itself is gone.
const LOST: &str = "the connection was lost";

/// What a command wants of a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Sessions on the target: the master may hold the target's connection (`hop TARGET`).
    Target,
    /// Only the route up to the target: the command connects the target itself, through the
    /// master's first hop (`hop forward`, `hop proxy`).
    Jump,
}

/// What a command that uses reuse needs to know (from `Settings`).
#[derive(Debug, Clone)]
pub struct Reuse {
    /// The private directory masters live in: `$XDG_RUNTIME_DIR/hop`, else `/tmp/hop-UID`.
    pub dir: PathBuf,
    /// `reuse_idle`: a master with no client for this long ends.
    pub idle: Duration,
    pub connect_timeout: Duration,
    /// `-v` count, for the master's log.
    pub verbose: u8,
}

/// How a master is started: everything it needs, as one argument of `hop __master`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MasterSpec {
    pub first: Hop,
    pub files: Vec<PathBuf>,
    pub user_file: PathBuf,
    pub accept_new: bool,
    pub connect_timeout_ms: u64,
    pub idle_ms: u64,
    pub dir: PathBuf,
    pub key: String,
    /// `-v` count of the command that started it, for its log.
    pub verbose: u8,
}

/// What a command asks a master to hold: the hops after the first (none: the first hop is the
/// target), and whether unknown host keys may be recorded (`--accept-new`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetRequest {
    pub hops: Vec<Hop>,
    pub accept_new: bool,
}

/// The sidecar file `KEY.json` next to a master's socket, for `hop stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub pid: u32,
    /// The first hop's label.
    pub label: String,
    /// Labels of the targets it holds.
    pub targets: Vec<String>,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds since when no client is connected; None while one is.
    pub idle_since: Option<u64>,
}

/// A master failed to start in this command: do not start another (each attempt connects the
/// first hop again).
static SPAWN_FAILED: AtomicBool = AtomicBool::new(false);

/// The directory masters live in for this user.
pub fn runtime_dir(xdg_runtime_dir: Option<&Path>) -> PathBuf {
    match xdg_runtime_dir {
        Some(d) => d.join("hop"),
        // SAFETY: getuid has no preconditions.
        None => PathBuf::from(format!("/tmp/hop-{}", unsafe { libc::getuid() })),
    }
}

fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Create the directory (0700) when missing, and check it is a directory (no symlink), this
/// user's, and private.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != my_uid() {
        return Err(format!("{} belongs to uid {}, not to this user", dir.display(), meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users (mode {:o}); it must be 0700",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The master's name for a first hop: a short hash of where it goes, who it is, with which key,
/// trusting which known_hosts.
pub fn key(first: &Hop, user_file: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let text = serde_json::to_string(&(first, user_file)).unwrap_or_default();
    h.update(text.as_bytes());
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The socket must be a socket, this user's, and not open to others.
fn check_socket(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_socket() {
        return Err(format!("{} is not a socket", path.display()));
    }
    if meta.uid() != my_uid() {
        return Err(format!("{} belongs to uid {}, not to this user", path.display(), meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("{} is open to other users (mode {:o})", path.display(), meta.mode() & 0o777));
    }
    Ok(())
}

/// Connect to the socket at `path`. Ok(None): no master (none there, or a stale socket, which is
/// removed). Err: a socket hop must not use.
async fn dial(path: &Path) -> Result<Option<tokio::net::UnixStream>, String> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    check_socket(path)?;
    match tokio::net::UnixStream::connect(path).await {
        Ok(stream) => {
            let peer = stream.peer_cred().map_err(|e| format!("{}: no peer credentials: {e}", path.display()))?;
            if peer.uid() != my_uid() {
                return Err(format!("the master at {} runs as uid {}, not as this user", path.display(), peer.uid()));
            }
            Ok(Some(stream))
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
            tracing::debug!("reuse: removing the stale socket {}", path.display());
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(path.with_extension("json"));
            Ok(None)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The connection to the master of `first` (started when there is none), asking for `user`;
/// the master's answer may take `within` (it may connect a target first).
async fn open(
    reuse: &Reuse,
    trust: &Trust,
    first: &Hop,
    user: &str,
    label: &str,
    within: Duration,
) -> Result<Chain, Refusal> {
    let chain = dial_or_start(reuse, trust, first, label).await?;
    let mut chain = chain;
    let handle = &mut chain.handles[0];
    let asked = async {
        if user == JUMP {
            let auth = handle.authenticate_none(user.to_string()).await.map_err(|e| e.to_string())?;
            return Ok(if auth.success() { Ok(()) } else { Err("the master refused".to_string().into()) });
        }
        use russh::client::KeyboardInteractiveAuthResponse as Answer;
        match handle.authenticate_keyboard_interactive_start(user.to_string(), None).await.map_err(|e| e.to_string())? {
            Answer::Success => Ok(Ok(())),
            Answer::InfoRequest { name, instructions, .. } if name == REFUSAL => {
                Ok(Err(match serde_json::from_str::<SshError>(&instructions) {
                    Ok(e) => Refusal::Target(e),
                    Err(e) => Refusal::NoMaster(format!("the master refused, and its reason is unreadable: {e}")),
                }))
            }
            _ => Ok(Err("the master refused".to_string().into())),
        }
    };
    match tokio::time::timeout(within, asked).await {
        Ok(Ok(Ok(()))) => Ok(chain),
        Ok(Ok(Err(refusal))) => Err(refusal),
        Ok(Err(e)) => Err(Refusal::NoMaster(e)),
        Err(_) => Err(Refusal::NoMaster(format!("no answer from the master within {}s", within.as_secs()))),
    }
}

/// The SSH connection (unauthenticated) to the master of `first`, started when there is none.
async fn dial_or_start(reuse: &Reuse, trust: &Trust, first: &Hop, label: &str) -> Result<Chain, String> {
    private_dir(&reuse.dir)?;
    let key = key(first, &trust.user_file);
    let sock = reuse.dir.join(format!("{key}.sock"));
    if let Some(stream) = dial(&sock).await? {
        tracing::debug!("reuse: using the master at {}", sock.display());
        return client::connect_local(stream, label, reuse.connect_timeout).await;
    }
    if SPAWN_FAILED.load(Ordering::Relaxed) {
        return Err("a master failed to start earlier in this command".into());
    }
    // One starter at a time: whoever takes the lock first starts the master, the others find it.
    let lock = lock(&reuse.dir.join(format!("{key}.lock")), reuse.connect_timeout).await?;
    if let Some(stream) = dial(&sock).await? {
        drop(lock);
        return client::connect_local(stream, label, reuse.connect_timeout).await;
    }
    let spec = MasterSpec {
        first: first.clone(),
        files: trust.files.clone(),
        user_file: trust.user_file.clone(),
        accept_new: trust.accept_new,
        connect_timeout_ms: reuse.connect_timeout.as_millis() as u64,
        idle_ms: reuse.idle.as_millis() as u64,
        dir: reuse.dir.clone(),
        key: key.clone(),
        verbose: reuse.verbose,
    };
    if let Err(e) = spawn(reuse, &spec).await {
        SPAWN_FAILED.store(true, Ordering::Relaxed);
        return Err(format!("the master did not start: {e}"));
    }
    drop(lock);
    match dial(&sock).await? {
        Some(stream) => client::connect_local(stream, label, reuse.connect_timeout).await,
        None => Err(format!("the master started but {} does not answer", sock.display())),
    }
}

/// An exclusive flock on `path`, waited for at most `within`; released when dropped.
async fn lock(path: &Path, within: Duration) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{} stayed locked for {}s", path.display(), within.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Start `hop __master SPEC` in its own session (no terminal, so no SIGHUP or SIGINT from it),
/// its log in `KEY.log`, and wait for its one line on stdout: `ready`, or `error: …`.
async fn spawn(reuse: &Reuse, spec: &MasterSpec) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find hop's own binary: {e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(reuse.dir.join(format!("{}.log", spec.key)))
        .map_err(|e| format!("cannot open the master's log: {e}"))?;
    let spec_json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(MASTER_ARG)
        .arg(spec_json)
        // Keep no directory of the command's busy.
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start the master: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    });
    // The master's own connect is bounded by the same --connect-timeout.
    let within = reuse.connect_timeout + Duration::from_secs(2);
    let line = match tokio::time::timeout(within, read).await {
        Ok(Ok(line)) => line,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer from the master (pid {pid}) within {}s", within.as_secs()));
        }
    };
    // Reap it whenever it ends, so it never lingers as a zombie of a long-running command.
    std::thread::spawn(move || child.wait());
    match line.trim_end() {
        "ready" => {
            tracing::info!("reuse: started a connection master (pid {pid}) for {}", spec.first.label);
            Ok(())
        }
        "" => {
            Err(format!("the master (pid {pid}) exited; see {}", reuse.dir.join(format!("{}.log", spec.key)).display()))
        }
        other => Err(other.strip_prefix("error: ").unwrap_or(other).to_string()),
    }
}

/// `hops` (first hop first) through the master of the first hop: the master's connection to it,
/// then the rest of the route connected by this command through a channel of it, as directly
/// (host keys, prompts, `-A` and `-R` on the final hop). Outer Err: no master; connect directly.
pub async fn connect_jump(
    reuse: &Reuse,
    hops: &[Hop],
    trust: &Trust,
    last: &FinalHop,
) -> Result<Result<Chain, SshError>, String> {
    // A master never pushes a key (it has no credentials of the command's, and nobody to tell
    // why a push failed): a first hop that logs in with a pushed key is the command's own.
    if super::pushes(&hops[0]).await {
        return Err(format!("{} logs in with a key pushed by EC2 Instance Connect: no master", hops[0].label));
    }
    let first = &absolute(&hops[0]);
    let front =
        open(reuse, trust, first, JUMP, &first.label, reuse.connect_timeout).await.map_err(|r| r.to_string())?;
    let Some(next) = hops.get(1) else { return Ok(Ok(front)) };
    let opened = tokio::time::timeout(reuse.connect_timeout, front.open(&next.address, next.port, ("127.0.0.1", 0)))
        .await
        .map_err(|_| format!("timed out after {}s (--connect-timeout)", reuse.connect_timeout.as_secs()))
        .and_then(|r| r);
    let channel = match opened {
        Ok(c) => c,
        // A master whose connection is gone: connect directly.
        Err(_) if front.target().is_closed() => return Err("the master's connection is gone".into()),
        Err(reason) if reason == LOST => return Err(reason),
        Err(reason) => {
            return Ok(Err(SshError::Connect {
                label: next.label.clone(),
                address: next.address.clone(),
                port: next.port,
                step: format!("opening a connection to {}:{} through {}", next.address, next.port, first.label),
                reason,
            }));
        }
    };
    let rest = client::connect_on(&hops[1..], trust, reuse.connect_timeout, last, Some(channel.into_stream())).await;
    Ok(rest.map(|chain| chain.behind(front)))
}

/// The target (last of `hops`) held by the master of the first hop: a one-connection chain whose
/// sessions and channels the master opens on its own connection to the target. Err: the master
/// cannot hold it (its host key is unknown, its key needs a passphrase, …) or there is no master.
pub async fn connect_target(reuse: &Reuse, hops: &[Hop], trust: &Trust) -> Result<Chain, Refusal> {
    // See `connect_jump`: hops with a pushed key are connected by the command itself (those
    // behind a first hop without one, through the master's first hop).
    for hop in hops {
        if super::pushes(hop).await {
            return Err(Refusal::NoMaster(format!(
                "{} logs in with a key pushed by EC2 Instance Connect: not held by a master",
                hop.label
            )));
        }
    }
    let request = TargetRequest { hops: hops[1..].iter().map(absolute).collect(), accept_new: trust.accept_new };
    let user = format!("{TARGET}{}", serde_json::to_string(&request).map_err(|e| e.to_string())?);
    let label = &hops.last().expect("a route has a target").label;
    // The master connects the target within the same limits as the command would, per hop.
    let within = reuse.connect_timeout * (hops.len() as u32) + Duration::from_secs(1);
    open(reuse, trust, &absolute(&hops[0]), &user, label, within).await
}

/// `hop` with its key file's path made absolute: a master runs in `/`, and one master serves
/// commands started anywhere.
fn absolute(hop: &Hop) -> Hop {
    let identity = hop.identity.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    Hop { identity, ..hop.clone() }
}

/// Write `value` as JSON to `path` atomically (temp file + rename), 0600.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(serde_json::to_string(value).map_err(std::io::Error::other)?.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// The masters whose sidecars are in `dir` and whose process is a live master: (sidecar path,
/// sidecar). Sidecars of masters that are gone are removed.
pub fn masters(dir: &Path) -> Vec<(PathBuf, Sidecar)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(text) = std::fs::read(&path) else { continue };
        let Ok(sidecar) = serde_json::from_slice::<Sidecar>(&text) else { continue };
        let key = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if is_master(sidecar.pid, &key) {
            out.push((path, sidecar));
        } else {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("sock"));
        }
    }
    out.sort_by(|a, b| a.1.label.cmp(&b.1.label).then(a.1.pid.cmp(&b.1.pid)));
    out
}

/// Whether `pid` is a live (not zombie) hop master for `key`: its command line says so.
pub fn is_master(pid: u32, key: &str) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_ours = args.get(1).is_some_and(|a| *a == MASTER_ARG.as_bytes())
        && args.iter().any(|a| String::from_utf8_lossy(a).contains(&format!("\"key\":\"{key}\"")));
    let zombie = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true);
    is_ours && !zombie
}

/// End the master `pid` (SIGTERM, after checking it is the master of `key`) and wait, at most
/// `within`, for it to go (it removes its socket and sidecar first). False: no such master.
pub fn end(pid: u32, key: &str, within: Duration) -> bool {
    let Ok(id) = libc::pid_t::try_from(pid) else { return false };
    if !is_master(pid, key) {
        return false;
    }
    // SAFETY: kill(2) has no memory preconditions; the pid was just checked to be a master.
    unsafe { libc::kill(id, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + within;
    while is_master(pid, key) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The local link as russh is given it, on both ends (the command's and the master's): reading
/// never waits for writing.
///
/// russh's session loop writes all it has before it reads again. Against OpenSSH that is
/// harmless (sshd reads while it writes), but on the local link both ends are that loop, and
/// both windows are far larger than the socket's buffers: when both have more to write than the
/// socket holds (`hop web -- cat` while a big stdin streams), each waits for the other to read,
/// and neither ever does. So a task reads the socket as soon as anything arrives, into a queue
/// russh reads from, as OpenSSH's input buffer does. The queue is bounded by what the peer may
/// send: channel data within the windows this end granted, which russh refills only as its loop
/// handles what arrived, plus a few control messages.
pub struct ReadAhead<S> {
    arrived: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<bytes::Bytes>>,
    /// What russh has not read yet of the last chunk.
    pending: bytes::Bytes,
    write: tokio::io::WriteHalf<S>,
    reader: tokio::task::JoinHandle<()>,
}

impl<S> ReadAhead<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    /// Start reading `stream` at once (in a task of the current runtime).
    pub fn new(stream: S) -> ReadAhead<S> {
        use tokio::io::AsyncReadExt;
        let (mut read, write) = tokio::io::split(stream);
        let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            loop {
                let mut chunk = bytes::BytesMut::with_capacity(64 * 1024);
                match read.read_buf(&mut chunk).await {
                    // End of stream: the closed queue says so.
                    Ok(0) => return,
                    Ok(_) => {
                        if tx.send(Ok(chunk.freeze())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        ReadAhead { arrived, pending: bytes::Bytes::new(), write, reader }
    }
}

impl<S> Drop for ReadAhead<S> {
    fn drop(&mut self) {
        // The task holds the read half: let the socket go with us.
        self.reader.abort();
    }
}

impl<S: tokio::io::AsyncRead> tokio::io::AsyncRead for ReadAhead<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.pending.is_empty() {
            match self.arrived.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.pending = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                // End of stream.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        let chunk = self.pending.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

impl<S: tokio::io::AsyncWrite> tokio::io::AsyncWrite for ReadAhead<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.write).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.write.is_write_vectored()
    }
}

/// Permissions for a socket only this user may use.
pub fn private_socket(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_error(reason: &str) -> SshError {
        SshError::Connect {
            label: "web".into(),
            address: "10.0.1.10".into(),
            port: 22,
            step: "opening a connection to 10.0.1.10:22 through bastion".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn only_a_route_that_fails_beyond_the_first_hop_is_final() {
        for (refusal, is_final) in [
            (Refusal::Target(connect_error("timed out after 3s (--connect-timeout)")), true),
            (Refusal::Target(connect_error("refused (connect failed): Connection refused")), true),
            // The master's own connection went away: connecting another way may work.
            (Refusal::Target(connect_error(LOST)), false),
            // Questions the command can ask, keys it may unlock: it connects the target itself.
            (
                Refusal::Target(SshError::UnknownHostKey {
                    label: "web".into(),
                    alias: "i-0".into(),
                    fingerprint: "SHA256:x".into(),
                    file: PathBuf::from("k"),
                }),
                false,
            ),
            (Refusal::Target(SshError::Protocol { label: "k".into(), message: "encrypted".into() }), false),
            (Refusal::NoMaster("no master".into()), false),
        ] {
            assert_eq!(refusal.is_final(), is_final, "{refusal}");
        }
    }

    #[test]
    fn a_refusal_travels_as_json_unchanged() {
        let e = connect_error("timed out after 3s (--connect-timeout)");
        let back: SshError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back.to_string(), e.to_string());
    }

    #[test]
    fn masters_live_in_the_runtime_dir_or_a_private_tmp_dir() {
        assert_eq!(runtime_dir(Some(Path::new("/run/user/1000"))), PathBuf::from("/run/user/1000/hop"));
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(runtime_dir(None), PathBuf::from(format!("/tmp/hop-{uid}")));
    }

    #[test]
    fn the_master_key_depends_on_every_part_of_the_first_hop() {
        let hop = Hop {
            label: "bastion".into(),
            address: "203.0.113.10".into(),
            port: 22,
            user: "ec2-user".into(),
            identity: Some(PathBuf::from("/k.pem")),
            host_key_alias: "i-0".into(),
            push: None,
        };
        let base = key(&hop, Path::new("/kh"));
        assert_eq!(base.len(), 16);
        assert_eq!(base, key(&hop.clone(), Path::new("/kh")));
        let other_user = Hop { user: "admin".into(), ..hop.clone() };
        let other_key = Hop { identity: None, ..hop.clone() };
        let other_port = Hop { port: 2222, ..hop.clone() };
        for k in
            [key(&other_user, Path::new("/kh")), key(&other_key, Path::new("/kh")), key(&other_port, Path::new("/kh"))]
        {
            assert_ne!(k, base);
        }
        assert_ne!(key(&hop, Path::new("/other")), base, "another known_hosts, another master");
    }
}
