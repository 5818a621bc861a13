//! The connection master (DESIGN §5a): a background process holding one authenticated
//! connection to a route's first hop, and the targets commands asked it to hold. It is an SSH
//! server on a Unix socket (see `reuse` for the protocol and the trust in the local link) that
//! proxies the channels its clients open onto the connections it holds.
//!
//! It never prompts (no terminal): an unknown host key (without `--accept-new`) or an encrypted
//! key without an agent makes it refuse, and the command connects itself. It never forwards an
//! agent: agent requests are refused (a command with `-A` connects the target itself, through
//! the master's first hop, and forwards its agent on its own session). It ends after `idle`
//! with no client, when its first-hop connection dies, or on SIGTERM (`hop stop`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelMsg};

use super::client::{self, Chain, FinalHop, SshError, Trust};
use super::reuse::{self, MasterSpec, Sidecar, TargetRequest};

struct Shared {
    first: Arc<Chain>,
    /// The first hop as a target (a direct route's `hop TARGET`).
    first_held: Arc<Held>,
    spec: MasterSpec,
    /// Held targets by request (the request's JSON).
    targets: tokio::sync::Mutex<HashMap<String, Arc<Held>>>,
    /// Labels of the held targets, for the sidecar.
    labels: std::sync::Mutex<Vec<String>>,
    clients: AtomicUsize,
    config: Arc<server::Config>,
    started: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Run a master until it ends; the exit status of `hop __master`. Writes `ready` or `error: …`
/// as its one line on stdout, then lets go of stdout.
pub async fn run(spec: MasterSpec) -> u8 {
    let trust = Trust {
        files: spec.files.clone(),
        user_file: spec.user_file.clone(),
        accept_new: spec.accept_new,
        ask: None,
        kex_memory: None,
        // A master never pushes a key (`reuse` never hands it a hop that would).
        pusher: None,
    };
    let timeout = Duration::from_millis(spec.connect_timeout_ms);
    let first =
        match client::connect(std::slice::from_ref(&spec.first), &trust, timeout, &FinalHop::default(), None).await {
            Ok(chain) => chain,
            Err(e) => {
                tracing::warn!("master: {e}");
                tell(&format!("error: {e}"));
                return 255;
            }
        };
    let sock = spec.dir.join(format!("{}.sock", spec.key));
    let sidecar_path = spec.dir.join(format!("{}.json", spec.key));
    // The starter holds the lock: a socket here now is stale.
    let _ = std::fs::remove_file(&sock);
    let listener = match tokio::net::UnixListener::bind(&sock).and_then(|l| reuse::private_socket(&sock).map(|()| l)) {
        Ok(l) => l,
        Err(e) => {
            tell(&format!("error: cannot listen on {}: {e}", sock.display()));
            return 255;
        }
    };
    let key = russh::keys::PrivateKey::random(&mut russh::keys::key::safe_rng(), russh::keys::Algorithm::Ed25519)
        .expect("ed25519 keys can always be generated");
    let config = Arc::new(server::Config {
        keys: vec![key],
        preferred: client::local_preferred(),
        methods: russh::MethodSet::from(&[russh::MethodKind::None, russh::MethodKind::KeyboardInteractive][..]),
        // A refusal must reach the command at once: it then connects by itself.
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        inactivity_timeout: None,
        ..Default::default()
    });
    let first = Arc::new(first);
    let shared = Arc::new(Shared {
        first_held: Held::new(first.clone(), None),
        first,
        spec: spec.clone(),
        targets: tokio::sync::Mutex::default(),
        labels: std::sync::Mutex::default(),
        clients: AtomicUsize::new(0),
        config,
        started: now_secs(),
    });
    let mut idle_since = Some((Instant::now(), now_secs()));
    write_sidecar(&shared, idle_since.map(|i| i.1));
    tell("ready");
    tracing::info!("master: holding {} for {}s idle", spec.first.label, spec.idle_ms / 1000);
    let idle = Duration::from_millis(spec.idle_ms);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let why = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // The socket is private, but the peer is checked too (SO_PEERCRED).
                match stream.peer_cred() {
                    // SAFETY: getuid has no preconditions.
                    Ok(c) if c.uid() == unsafe { libc::getuid() } => {}
                    Ok(c) => { tracing::warn!("master: refused a client of uid {}", c.uid()); continue; }
                    Err(e) => { tracing::warn!("master: refused a client without credentials: {e}"); continue; }
                }
                shared.clients.fetch_add(1, Ordering::SeqCst);
                if idle_since.take().is_some() {
                    write_sidecar(&shared, None);
                }
                let s = shared.clone();
                tokio::spawn(async move {
                    let handler = Client { shared: s.clone(), mode: None };
                    // Both ends of the link are russh: see `reuse::ReadAhead`.
                    let stream = reuse::ReadAhead::new(stream);
                    match server::run_stream(s.config.clone(), stream, handler).await {
                        Ok(running) => {
                            if let Err(e) = running.await {
                                tracing::debug!("master: client session ended: {e}");
                            }
                        }
                        Err(e) => tracing::debug!("master: client handshake failed: {e}"),
                    }
                    s.clients.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {
                break "ended by SIGTERM (hop stop)";
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if shared.first.handles.iter().any(|h| h.is_closed()) {
                    break "the connection to the first hop is gone";
                }
                if shared.clients.load(Ordering::SeqCst) == 0 {
                    let (since, _) = *idle_since.get_or_insert_with(|| {
                        write_sidecar(&shared, Some(now_secs()));
                        (Instant::now(), now_secs())
                    });
                    if since.elapsed() >= idle {
                        break "idle";
                    }
                } else if idle_since.take().is_some() {
                    write_sidecar(&shared, None);
                }
            }
        }
    };
    tracing::info!("master: {why}; ending");
    // Only our own files: a new master may already have replaced them.
    let ours = std::fs::read(&sidecar_path)
        .ok()
        .and_then(|t| serde_json::from_slice::<Sidecar>(&t).ok())
        .is_some_and(|s| s.pid == std::process::id());
    if ours {
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(&sidecar_path);
    }
    0
}

/// The one line for the command that started the master; stdout is then /dev/null, so a
/// command that stopped listening is no trouble.
fn tell(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are open; dup2 replaces fd 1 atomically.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

fn write_sidecar(shared: &Shared, idle_since: Option<u64>) {
    let sidecar = Sidecar {
        pid: std::process::id(),
        label: shared.spec.first.label.clone(),
        targets: shared.labels.lock().expect("not poisoned").clone(),
        started: shared.started,
        idle_since,
    };
    let path = shared.spec.dir.join(format!("{}.json", shared.spec.key));
    if let Err(e) = reuse::write_json(&path, &sidecar) {
        tracing::warn!("master: cannot write {}: {e}", path.display());
    }
}

/// What a client asked for with its user name.
#[derive(Clone)]
enum Mode {
    Jump,
    Target(Arc<Held>),
}

/// A connection the master holds for sessions, with one session channel opened ahead of need:
/// a client's session then costs no round trip for the open, only its request (exec, shell).
struct Held {
    chain: Arc<Chain>,
    /// What connected it (a target request's JSON); None for the first hop.
    request: Option<String>,
    spare: tokio::sync::Mutex<Option<Channel<russh::client::Msg>>>,
    /// A second connection to the same target, for sessions this one's server refuses (sshd's
    /// MaxSessions, 10 by default, counts the sessions of one connection).
    overflow: tokio::sync::Mutex<Option<Arc<Held>>>,
}

/// A session channel, when it comes.
type Opening<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Channel<russh::client::Msg>, String>> + Send + 'a>>;

impl Held {
    fn new(chain: Arc<Chain>, request: Option<String>) -> Arc<Held> {
        Arc::new(Held { chain, request, spare: tokio::sync::Mutex::new(None), overflow: tokio::sync::Mutex::new(None) })
    }

    fn alive(&self) -> bool {
        !self.chain.handles.iter().any(|h| h.is_closed())
    }

    /// Open the next spare session in the background (one at a time; an error is left to the
    /// next client, which opens its own).
    fn refill(self: &Arc<Held>, within: Duration) {
        let held = self.clone();
        tokio::spawn(async move {
            let mut spare = held.spare.lock().await;
            if spare.is_some() {
                return;
            }
            match tokio::time::timeout(within, held.chain.target().channel_open_session()).await {
                Ok(Ok(channel)) => *spare = Some(channel),
                Ok(Err(e)) => tracing::debug!("master: {}: no spare session: {e}", held.chain.target_label()),
                Err(_) => tracing::debug!("master: {}: no spare session: timed out", held.chain.target_label()),
            }
        });
    }

    /// A session channel on the held connection: the spare when there is one (and a new spare
    /// opened behind it), else one opened now; when the server refuses more sessions on this
    /// connection, one on an overflow connection to the same target.
    fn session<'a>(self: &'a Arc<Held>, shared: &'a Shared, within: Duration) -> Opening<'a> {
        Box::pin(async move {
            let spare = match self.spare.try_lock() {
                Ok(mut slot) => slot.take(),
                // The spare is being opened: opening our own is no slower.
                Err(_) => None,
            };
            if let Some(channel) = spare {
                self.refill(within);
                return Ok(channel);
            }
            let refused = match tokio::time::timeout(within, self.chain.target().channel_open_session()).await {
                Err(_) => return Err(format!("timed out after {}s", within.as_secs())),
                Ok(Ok(channel)) => {
                    self.refill(within);
                    return Ok(channel);
                }
                Ok(Err(e @ russh::Error::ChannelOpenFailure(_))) if self.alive() => e,
                Ok(Err(e)) => return Err(e.to_string()),
            };
            let Some(request) = &self.request else { return Err(refused.to_string()) };
            let next = {
                let mut overflow = self.overflow.lock().await;
                match overflow.as_ref() {
                    Some(next) if next.alive() => next.clone(),
                    _ => {
                        tracing::info!("master: {}: {refused}; opening another connection", self.chain.target_label());
                        let request: TargetRequest = serde_json::from_str(request).map_err(|e| e.to_string())?;
                        let chain = connect_target(shared, &request).await.map_err(|e| e.to_string())?;
                        let next = Held::new(Arc::new(chain), self.request.clone());
                        *overflow = Some(next.clone());
                        next
                    }
                }
            };
            next.session(shared, within).await
        })
    }
}

/// Connect the hops of `request` through the first hop's connection, never prompting.
async fn connect_target(shared: &Shared, request: &TargetRequest) -> Result<Chain, SshError> {
    let spec = &shared.spec;
    let within = shared.config_timeout();
    let trust = Trust {
        files: spec.files.clone(),
        user_file: spec.user_file.clone(),
        accept_new: request.accept_new,
        ask: None,
        kex_memory: None,
        // A master never pushes a key (`reuse` never hands it a hop that would).
        pusher: None,
    };
    let next = &request.hops[0];
    // The same words as the command's own connect would use (client::connect).
    let opened = tokio::time::timeout(within, shared.first.open(&next.address, next.port, ("127.0.0.1", 0)))
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {}s (--connect-timeout)", within.as_secs())));
    let channel = opened.map_err(|reason| SshError::Connect {
        label: next.label.clone(),
        address: next.address.clone(),
        port: next.port,
        step: format!("opening a connection to {}:{} through {}", next.address, next.port, spec.first.label),
        reason,
    })?;
    client::connect_on(&request.hops, &trust, within, &FinalHop::default(), Some(channel.into_stream())).await
}

struct Client {
    shared: Arc<Shared>,
    mode: Option<Mode>,
}

impl Client {
    /// The held connection to the target of `request`, connected now when not held (or dead).
    async fn target(&self, json: &str) -> Result<Arc<Held>, SshError> {
        let request: TargetRequest = serde_json::from_str(json)
            .map_err(|e| SshError::Protocol { label: "master".into(), message: format!("bad request: {e}") })?;
        let within = self.shared.config_timeout();
        if request.hops.is_empty() {
            return Ok(self.shared.first_held.clone());
        }
        let mut targets = self.shared.targets.lock().await;
        if let Some(held) = targets.get(json) {
            if held.alive() {
                return Ok(held.clone());
            }
            targets.remove(json);
        }
        let chain = connect_target(&self.shared, &request).await?;
        let held = Held::new(Arc::new(chain), Some(json.to_string()));
        held.refill(within);
        targets.insert(json.to_string(), held.clone());
        let label = held.chain.target_label().to_string();
        drop(targets);
        {
            let mut labels = self.shared.labels.lock().expect("not poisoned");
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        write_sidecar(&self.shared, None);
        Ok(held)
    }

    fn chain(&self) -> Option<Arc<Chain>> {
        match self.mode.as_ref()? {
            Mode::Jump => Some(self.shared.first.clone()),
            Mode::Target(held) => Some(held.chain.clone()),
        }
    }
}

impl server::Handler for Client {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        if user == reuse::JUMP {
            self.mode = Some(Mode::Jump);
            return Ok(Auth::Accept);
        }
        Ok(Auth::Reject { proceed_with_methods: None, partial_success: false })
    }

    // A held target is asked for with keyboard-interactive, so that a refusal can say why (the
    // instructions of an info request): see `reuse::TARGET`.
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let reject = Auth::Reject { proceed_with_methods: None, partial_success: false };
        let (Some(json), None) = (user.strip_prefix(reuse::TARGET), response) else { return Ok(reject) };
        match self.target(json).await {
            Ok(held) => {
                tracing::info!("master: a client uses the held connection to {}", held.chain.target_label());
                self.mode = Some(Mode::Target(held));
                Ok(Auth::Accept)
            }
            Err(e) => {
                tracing::info!("master: cannot hold the target: {e}");
                Ok(Auth::Partial {
                    name: reuse::REFUSAL.into(),
                    instructions: serde_json::to_string(&e).unwrap_or_default().into(),
                    prompts: Vec::new().into(),
                })
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Sessions only on a held target: in jump mode the command runs its own.
        let Some(Mode::Target(held)) = self.mode.clone() else { return Ok(()) };
        let handle = session.handle();
        let (shared, within) = (self.shared.clone(), self.shared.config_timeout());
        tokio::spawn(async move {
            match held.session(&shared, within).await {
                Ok(upstream) => {
                    reply.accept().await;
                    relay(channel, upstream, Some(handle)).await;
                }
                Err(e) => {
                    tracing::info!("master: {}: cannot open a session: {e}", held.chain.target_label());
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(chain) = self.chain() else { return Ok(()) };
        let Ok(port) = u16::try_from(port_to_connect) else { return Ok(()) };
        let (host, originator) = (host_to_connect.to_string(), (originator_address.to_string(), originator_port));
        let within = self.shared.config_timeout();
        tokio::spawn(async move {
            match client::open_bounded(chain, host.clone(), port, originator, within).await {
                Ok(upstream) => {
                    reply.accept().await;
                    relay(channel, upstream, None).await;
                }
                Err(e) => {
                    tracing::info!("master: cannot open {host}:{port}: {e}");
                    // The server's own code and words reach the command, as without a master.
                    reply.reject(client::refusal_of(&e)).await;
                }
            }
        });
        Ok(())
    }
}

impl Shared {
    fn config_timeout(&self) -> Duration {
        Duration::from_millis(self.spec.connect_timeout_ms)
    }
}

/// Carry one channel both ways: the client's (`down`, on the socket) and the master's on the
/// held connection (`up`). Session requests go up, their replies, exit status and signal come
/// down (`handle` is the client session's, for the replies; None for direct-tcpip).
///
/// Flow control, both ways alike: what a session delivers is taken off russh's queue at once
/// (russh's session loop waits on a full channel queue, and a waiting loop stops everything on
/// its connection: the held connection is shared with other clients, and the client's link
/// carries the replies that would let the other side move), and the sending channel's window is
/// refilled only as the other side takes the data (vendor/russh patch 0001), so at most two
/// windows wait here in each direction.
async fn relay(down: Channel<Msg>, up: Channel<russh::client::Msg>, handle: Option<server::Handle>) {
    let id = down.id();
    let (down_read, down_write) = down.split();
    let (up_read, up_write) = up.split();
    let _ = up_write.refill_window_on_consume().await;
    let _ = down_write.refill_window_on_consume().await;
    let (up_write, down_write) = (Arc::new(up_write), Arc::new(down_write));
    let mut from_up = drain(up_read);
    let mut from_down = drain(down_read);
    // Client → held connection.
    let (to_up, consumed_down) = (up_write.clone(), down_write.clone());
    let upward = tokio::spawn(async move {
        while let Some(Some(msg)) = from_down.recv().await {
            let sent = match msg {
                ChannelMsg::Data { data } => {
                    let n = data.len();
                    let r = to_up.data_bytes(data).await;
                    let _ = consumed_down.consumed(n).await;
                    r
                }
                ChannelMsg::Eof => to_up.eof().await,
                ChannelMsg::Close => break,
                ChannelMsg::RequestPty {
                    term, col_width, row_height, pix_width, pix_height, terminal_modes, ..
                } => {
                    to_up.request_pty(true, &term, col_width, row_height, pix_width, pix_height, &terminal_modes).await
                }
                ChannelMsg::RequestShell { .. } => to_up.request_shell(true).await,
                ChannelMsg::Exec { command, .. } => to_up.exec(true, command).await,
                ChannelMsg::RequestSubsystem { name, .. } => to_up.request_subsystem(true, name).await,
                ChannelMsg::SetEnv { variable_name, variable_value, .. } => {
                    to_up.set_env(false, variable_name, variable_value).await
                }
                ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height } => {
                    to_up.window_change(col_width, row_height, pix_width, pix_height).await
                }
                ChannelMsg::Signal { signal } => to_up.signal(signal).await,
                // Refused by the handler (the master never forwards an agent), or not ours.
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = to_up.close().await;
    });
    // Held connection → client, in order.
    while let Some(Some(msg)) = from_up.recv().await {
        let sent = match msg {
            ChannelMsg::Data { data } => {
                let n = data.len();
                let r = down_write.data_bytes(data).await;
                let _ = up_write.consumed(n).await;
                r
            }
            ChannelMsg::ExtendedData { data, ext } => {
                let n = data.len();
                let r = down_write.extended_data_bytes(ext, data).await;
                let _ = up_write.consumed(n).await;
                r
            }
            ChannelMsg::Eof => down_write.eof().await,
            ChannelMsg::ExitStatus { exit_status } => down_write.exit_status(exit_status).await,
            ChannelMsg::ExitSignal { signal_name, core_dumped, error_message, lang_tag } => match &handle {
                Some(h) => h
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await
                    .map_err(|()| russh::Error::SendError),
                None => Ok(()),
            },
            ChannelMsg::Success => match &handle {
                Some(h) => h.channel_success(id).await.map_err(|()| russh::Error::SendError),
                None => Ok(()),
            },
            ChannelMsg::Failure => match &handle {
                Some(h) => h.channel_failure(id).await.map_err(|()| russh::Error::SendError),
                None => Ok(()),
            },
            ChannelMsg::Close => break,
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = down_write.close().await;
    upward.abort();
    let _ = up_write.close().await;
}

/// Everything a channel receives, moved at once into a queue of its own; None once the channel
/// closed or its connection ended.
fn drain(mut read: russh::ChannelReadHalf) -> tokio::sync::mpsc::UnboundedReceiver<Option<ChannelMsg>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let msg = read.wait().await;
            let end = matches!(msg, None | Some(ChannelMsg::Close));
            if tx.send(msg).is_err() || end {
                return;
            }
        }
    });
    rx
}
