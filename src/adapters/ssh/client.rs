//! The SSH client: connect through any number of hops (each hop's TCP is a direct-tcpip channel
//! of the previous one), verify every hop's host key against known_hosts, authenticate each hop
//! with its own key. Transports never prompt: questions go to the `Ask` callback the command
//! layer answers.

// SshError carries what a refusal message needs (host, fingerprints, file, line); it travels
// once per failed connection, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::agent::AgentSessionBinding;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use super::known_hosts::{self, HostName, KnownHostsFile, Verdict};
use crate::domain::forward::RemoteForward;

/// One hop of a chain: where to dial (from the previous hop), who to be, which key to trust.
/// Serializable: a command hands hops to its connection master (`reuse`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hop {
    /// Shown in messages: the Name tag or the instance id.
    pub label: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<PathBuf>,
    /// The known_hosts name of this host: the instance id (HostKeyAlias), shared with `ssh`
    /// through the stanzas `hop config` writes.
    pub host_key_alias: String,
    /// Log in with a key pushed by EC2 Instance Connect (spec §B.3), when this hop is an
    /// instance whose login asks for it. Absent from the JSON when None, so hops without a push
    /// serialize (and name their connection master) as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushTo>,
}

/// Where a pushed key goes: the instance (and its region when the route knows it), and whether
/// the push was asked for (`Always`: no other key is tried) or is hop's guess (`Auto`: only when
/// ssh-agent holds no key, and the usual identities follow a refusal).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushTo {
    pub instance_id: String,
    pub region: Option<String>,
    pub always: bool,
}

/// Pushes public keys with EC2 Instance Connect (`SendSSHPublicKey`) for the SSH client, which
/// knows nothing of AWS: the command layer injects one through [`Trust`]. It owns the key it
/// pushes, generated once per run, in memory only.
pub trait KeyPusher: Send + Sync {
    /// The private half of the pushed key (the same for every hop of a run).
    fn key(&self) -> Arc<russh::keys::PrivateKey>;
    /// Push the public half for `to` as `user`, valid 60 s on the instance.
    fn push<'a>(
        &'a self,
        to: &'a PushTo,
        user: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), PushError>> + Send + 'a>>;
}

/// Why `SendSSHPublicKey` failed, as spec §B.4 sorts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PushFailure {
    /// AccessDenied / AuthException: the identity may not push to this instance as this user.
    Denied,
    /// EC2InstanceStateInvalidException: stopped or terminated.
    NotRunning,
    /// EC2InstanceNotFoundException: gone, or the cache is stale (exit 2).
    NotFound,
    /// InvalidArgsException: a user name or key the API refuses (exit 2).
    InvalidArgs,
    /// Throttling, unavailable, service errors (after the SDK's retries), the network.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushError {
    pub kind: PushFailure,
    pub message: String,
    pub hints: Vec<String>,
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A question the transport cannot answer alone.
#[derive(Debug, Clone)]
pub enum Question {
    /// Trust this unknown host key? (`yes` appends it to known_hosts)
    UnknownHostKey { label: String, alias: String, fingerprint: String },
    /// The passphrase of an encrypted key.
    Passphrase { path: PathBuf },
}

#[derive(Debug, Clone)]
pub enum Answer {
    Yes,
    No,
    Secret(String),
    /// Ctrl-C at the question: stop connecting (exit 130).
    Interrupted,
}

pub type Ask = Arc<dyn Fn(&Question) -> Answer + Send + Sync>;

/// How host keys are trusted.
#[derive(Clone)]
pub struct Trust {
    /// Files read, in order (user's, then the system's).
    pub files: Vec<PathBuf>,
    /// Where accepted keys are appended.
    pub user_file: PathBuf,
    /// `--accept-new`: append unknown keys without asking (changed keys are still refused).
    pub accept_new: bool,
    pub ask: Option<Ask>,
    /// Where each host's preferred key exchange is remembered, to guess it next time (see
    /// `KexMemory`); None: no guessing from memory.
    pub kex_memory: Option<PathBuf>,
    /// Pushes keys for hops that log in with EC2 Instance Connect; None (a connection master):
    /// no hop pushes, the usual identities are tried.
    pub pusher: Option<Arc<dyn KeyPusher>>,
}

/// Per host (known_hosts name), the key exchange algorithm the server put first when it was
/// also the one agreed: putting it first next time lets russh's guess (`guess_kex`, PATCHES.md
/// 0006) be right, so the server answers the key exchange packet sent with the KEXINIT, one
/// round trip less. A host met for the first time gets the last server's choice (a target
/// often runs the bastion's image): a wrong guess costs no round trip. Reordering only, and
/// only among the post-quantum hybrids: whatever the file says (a server upgraded since, a
/// tampered cache), a classical algorithm is never moved ahead of them, so memory can change
/// which hybrid is agreed but never lose the hybrid. Servers whose first choice is classical
/// (or not what hop agrees) are not remembered.
struct KexMemory {
    file: PathBuf,
    /// The last server's choice, for hosts not remembered yet.
    last: PathBuf,
}

/// The algorithms `KexMemory` may move first.
const REMEMBERED_KEX: [russh::kex::Name; 3] =
    [russh::kex::MLKEM768X25519_SHA256, russh::kex::SNTRUP761X25519_SHA512, russh::kex::SNTRUP761X25519_SHA512_OPENSSH];

impl KexMemory {
    fn new(dir: &Path, alias: &str) -> KexMemory {
        let name: String =
            alias.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        // '@' is never in a host's file name (replaced above).
        KexMemory { file: dir.join(name), last: dir.join("@last") }
    }

    /// The algorithm remembered for this host, else the last server's, if it is one that may
    /// be moved first.
    fn recall(&self) -> Option<russh::kex::Name> {
        let read = |path: &Path| {
            let text = std::fs::read_to_string(path).ok()?;
            REMEMBERED_KEX.into_iter().find(|k| k.as_ref() == text.trim())
        };
        read(&self.file).or_else(|| read(&self.last))
    }

    /// Remember the server's first choice when it is the (post-quantum) algorithm agreed;
    /// forget otherwise.
    fn learn(&self, names: &russh::Names) {
        if names.peer_first_kex == names.kex.as_ref() && REMEMBERED_KEX.contains(&names.kex) {
            let known = |path: &Path| std::fs::read_to_string(path).is_ok_and(|t| t.trim() == names.kex.as_ref());
            for path in [&self.file, &self.last] {
                if !known(path) {
                    let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                        .and_then(|()| std::fs::write(path, names.kex.as_ref()));
                }
            }
        } else {
            let _ = std::fs::remove_file(&self.file);
        }
    }

    /// `config` (fresh from `config()`) with the remembered algorithm moved first.
    fn apply(&self, config: Arc<client::Config>) -> Arc<client::Config> {
        let Some(first) = self.recall() else { return config };
        if config.preferred.kex.first() == Some(&first) || !config.preferred.kex.contains(&first) {
            return config;
        }
        match Arc::try_unwrap(config) {
            Ok(mut config) => {
                let mut kex: Vec<_> = config.preferred.kex.iter().copied().filter(|k| *k != first).collect();
                kex.insert(0, first);
                config.preferred.kex = kex.into();
                Arc::new(config)
            }
            Err(shared) => shared,
        }
    }
}

/// Why a connection failed; `hop` turns these into exit 255 with a hint. Serializable: a
/// connection master tells a command why it could not connect its target.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SshError {
    /// `step` says what was under way ("TCP connect", "SSH handshake", "authentication",
    /// "opening a connection to ADDRESS:PORT through HOP"), `reason` why it failed (the OS's
    /// or the server's words, or the time limit).
    #[error("cannot connect to {label} ({address}:{port}): {step}: {reason}")]
    Connect { label: String, address: String, port: u16, step: String, reason: String },
    #[error("host key of {label} ({alias}) is not known: {fingerprint}")]
    UnknownHostKey { label: String, alias: String, fingerprint: String, file: PathBuf },
    #[error(
        "host key of {label} ({alias}) has CHANGED: the server offers {fingerprint}, {}:{line} has {expected}",
        file.display()
    )]
    ChangedHostKey { label: String, alias: String, fingerprint: String, expected: String, file: PathBuf, line: usize },
    #[error("host key of {label} ({alias}) is revoked ({}:{line})", file.display())]
    RevokedHostKey { label: String, alias: String, file: PathBuf, line: usize },
    /// `pushed`: a key pushed with EC2 Instance Connect was among those refused.
    #[error("authentication as {user} on {label} failed (tried: {tried})")]
    Auth {
        label: String,
        user: String,
        tried: String,
        #[serde(default)]
        pushed: bool,
    },
    /// EC2 Instance Connect would not take the key (spec §B.4).
    #[error("{}", .0.message)]
    Push(PushError),
    #[error("{label}: {message}")]
    Protocol { label: String, message: String },
    /// The transport under the SSH connection failed: a Session Manager data channel or an EC2
    /// Instance Connect Endpoint tunnel.
    #[error("{message}")]
    Transport { message: String, hints: Vec<String> },
    /// Ctrl-C at a question (host key, passphrase).
    #[error("interrupted")]
    Interrupted,
}

impl SshError {
    /// Whether trying again cannot help: a host key hop refuses, or keys the server refuses.
    /// A reconnecting forwarder gives up on these instead of retrying them.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            SshError::UnknownHostKey { .. }
                | SshError::ChangedHostKey { .. }
                | SshError::RevokedHostKey { .. }
                | SshError::Auth { .. }
                | SshError::Push(PushError {
                    kind: PushFailure::Denied
                        | PushFailure::NotRunning
                        | PushFailure::NotFound
                        | PushFailure::InvalidArgs,
                    ..
                })
        )
    }
}

/// The russh handler of one hop: verifies the host key, rejects every channel the server opens
/// (but the agent's on the final hop when `-A` asked for it).
pub struct HopHandler {
    hop: Hop,
    trust: Trust,
    /// Set when the host key is refused, so the caller can say why (russh only says "unknown key").
    refusal: Arc<Mutex<Option<SshError>>>,
    /// Some only on the final hop with `-A`: the session binding for `session-bind@openssh.com`,
    /// known once the key exchange is done.
    agent: Option<Arc<Mutex<Option<AgentSessionBinding>>>>,
    /// `-R` forwards (final hop only): connections the server opens for these remote ports
    /// are accepted and carried to their local HOST:PORT.
    remote_forwards: Vec<RemoteForward>,
    /// For `-R` connections: how long their local connect may take, and how long their local
    /// side may take nothing while data waits.
    connect_timeout: Duration,
    forward_stall: Duration,
    /// Why this server refused the channels hop asked it to open.
    open_failures: OpenFailures,
    /// Where this host's preferred key exchange is remembered.
    kex_memory: Option<Arc<KexMemory>>,
    /// The server is this user's own connection master on a Unix socket whose owner and peer
    /// were checked (`reuse`): its host key is ephemeral and not in known_hosts.
    local_master: bool,
}

/// The reasons a server gave for refusing channel opens ("connect failed: Connection timed
/// out"). russh hands the opener only the reason code; the description reaches the handler,
/// which records it here for the opener to claim.
#[derive(Clone, Default)]
pub struct OpenFailures(Arc<OpenFailuresInner>);

#[derive(Default)]
struct OpenFailuresInner {
    list: Mutex<VecDeque<(u32, String)>>,
    added: tokio::sync::Notify,
}

impl OpenFailures {
    /// Unclaimed reasons kept at most (an opener that gave up never claims its own).
    const KEEP: usize = 32;

    fn record(&self, code: u32, description: &str) {
        let mut list = self.0.list.lock().expect("not poisoned");
        if list.len() == Self::KEEP {
            list.pop_front();
        }
        list.push_back((code, description.to_string()));
        drop(list);
        self.0.added.notify_waiters();
    }

    /// The oldest unclaimed description for `code`. russh tells the opener before it calls the
    /// handler, so wait (briefly) for the handler to record it. With several refusals of the same
    /// code at once, two openers may swap descriptions; nothing else can mix them up.
    async fn claim(&self, code: u32) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        loop {
            let added = self.0.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            {
                let mut list = self.0.list.lock().expect("not poisoned");
                if let Some(i) = list.iter().position(|(c, _)| *c == code) {
                    return list.remove(i).map(|(_, d)| d);
                }
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return None;
            }
        }
    }
}

/// Open a direct-tcpip channel on `handle` to `host:port`; a refusal says the server's reason.
async fn open_direct_tcpip(
    handle: &Handle<HopHandler>,
    failures: &OpenFailures,
    host: &str,
    port: u16,
    originator: (&str, u32),
) -> Result<russh::Channel<client::Msg>, String> {
    match handle
        .channel_open_direct_tcpip(host.to_string(), u32::from(port), originator.0.to_string(), originator.1)
        .await
    {
        Ok(channel) => Ok(channel),
        Err(russh::Error::ChannelOpenFailure(reason)) => {
            Err(match failures.claim(reason.code()).await.filter(|d| !d.trim().is_empty()) {
                Some(description) => format!("refused ({}): {description}", open_failure_name(&reason)),
                None => format!("refused ({})", open_failure_name(&reason)),
            })
        }
        Err(russh::Error::Disconnect | russh::Error::SendError) => Err("the connection was lost".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The refusal to pass on for a failed open whose reason `open_direct_tcpip` wrote: the
/// server's code and description when it refused ("refused (NAME): DESCRIPTION"), else "connect
/// failed" with the reason as description. For a connection master relaying a refusal.
pub fn refusal_of(reason: &str) -> russh::ChannelOpenFailure {
    use russh::ChannelOpenFailure::*;
    let parsed = reason.strip_prefix("refused (").and_then(|r| r.split_once(')')).map(|(name, rest)| {
        let code = [AdministrativelyProhibited, ConnectFailed, UnknownChannelType, ResourceShortage]
            .into_iter()
            .find(|f| open_failure_name(f) == name)
            .map(|f| f.code())
            .or_else(|| name.strip_prefix("reason code ").and_then(|c| c.parse().ok()));
        (code, rest.strip_prefix(": ").unwrap_or_default())
    });
    match parsed {
        Some((Some(code), description)) => Other { code, reason: description.to_string() },
        _ => Other { code: ConnectFailed.code(), reason: reason.to_string() },
    }
}

fn open_failure_name(reason: &russh::ChannelOpenFailure) -> String {
    use russh::ChannelOpenFailure::*;
    match reason {
        AdministrativelyProhibited => "administratively prohibited".into(),
        ConnectFailed => "connect failed".into(),
        UnknownChannelType => "unknown channel type".into(),
        ResourceShortage => "resource shortage".into(),
        Other { code, .. } => format!("reason code {code}"),
    }
}

impl HopHandler {
    /// The host key decision for this hop: known, refused (with the reason), or unknown and
    /// then accepted only with `--accept-new` or a "yes" on the terminal.
    fn verify(&self, offered: &PublicKeyOrCertificate) -> Result<(), SshError> {
        if self.local_master {
            return Ok(());
        }
        let (label, alias) = (self.hop.label.clone(), self.hop.host_key_alias.clone());
        let protocol = |message: String| SshError::Protocol { label: label.clone(), message };
        // An unreadable file (say /etc/ssh/ssh_known_hosts) could hide a @revoked line: fail
        // rather than decide without it. A missing file is simply empty.
        let files = self
            .trust
            .files
            .iter()
            .map(|p| KnownHostsFile::read(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| protocol(e.to_string()))?;
        let name = HostName::alias(&alias);
        let (key, verdict) = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                (key.clone(), known_hosts::check(&files, std::slice::from_ref(&name), key))
            }
            PublicKeyOrCertificate::Certificate(cert) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let key = PublicKey::from(cert.public_key().clone());
                (key, known_hosts::check_certificate(&files, std::slice::from_ref(&name), cert, now))
            }
        };
        let fingerprint = known_hosts::fingerprint(&key);
        match verdict {
            Verdict::Known { .. } => Ok(()),
            Verdict::Revoked { path, line } => Err(SshError::RevokedHostKey { label, alias, file: path, line }),
            Verdict::Changed { path, line, expected, .. } => {
                Err(SshError::ChangedHostKey { label, alias, fingerprint, expected, file: path, line })
            }
            Verdict::Unknown => {
                let question = Question::UnknownHostKey {
                    label: label.clone(),
                    alias: alias.clone(),
                    fingerprint: fingerprint.clone(),
                };
                let answer = match &self.trust.ask {
                    _ if self.trust.accept_new => Answer::Yes,
                    Some(ask) => ask(&question),
                    None => Answer::No,
                };
                if let Answer::Interrupted = answer {
                    return Err(SshError::Interrupted);
                }
                let trusted = matches!(answer, Answer::Yes);
                if !trusted {
                    return Err(SshError::UnknownHostKey {
                        label,
                        alias,
                        fingerprint,
                        file: self.trust.user_file.clone(),
                    });
                }
                let line = known_hosts::entry_line(&name, &key, None).map_err(|e| protocol(e.to_string()))?;
                append_line(&self.trust.user_file, &line).map_err(|e| {
                    protocol(format!("cannot add the host key to {}: {e}", self.trust.user_file.display()))
                })?;
                tracing::warn!("added {alias} ({label}) {fingerprint} to {}", self.trust.user_file.display());
                Ok(())
            }
        }
    }
}

impl HopHandler {
    /// A channel the server opened that hop did not ask for: dropping its reply rejects it.
    fn refused(&self, kind: &str) {
        tracing::warn!("{}: rejected a {kind} channel hop did not ask for", self.hop.label);
    }
}

/// Append one line to known_hosts (created 0600, directory 0700 when missing).
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    // A file not ending in a newline would glue our entry to its last line.
    let len = f.metadata()?.len();
    let mut text = String::new();
    if len > 0 {
        let last = std::fs::read(path)?.last().copied();
        if last != Some(b'\n') {
            text.push('\n');
        }
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes())
}

impl client::Handler for HopHandler {
    type Error = russh::Error;

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        tracing::debug!(
            "{}: key exchange {} (the server's first choice: {})",
            self.hop.label,
            names.kex.as_ref(),
            names.peer_first_kex
        );
        if let Some(memory) = &self.kex_memory {
            memory.learn(names);
        }
        Ok(())
    }

    async fn channel_open_failure(
        &mut self,
        _channel: russh::ChannelId,
        reason: russh::ChannelOpenFailure,
        description: &str,
        _language: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        tracing::debug!("{}: channel open refused ({}): {description}", self.hop.label, open_failure_name(&reason));
        self.open_failures.record(reason.code(), description);
        Ok(())
    }

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let verdict = self.verify(offered);
        let accepted = verdict.is_ok();
        if let Err(e) = verdict {
            *self.refusal.lock().expect("not poisoned") = Some(e);
        }
        Ok(accepted)
    }

    // The server may open channels we never asked for (forwarded-tcpip, streamlocal, x11,
    // session, agent): russh accepts most by default. hop asks for none of them (but the agent
    // with -A on the final hop), so each reply is dropped, which rejects the channel.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(r) = self.remote_forwards.iter().find(|r| u32::from(r.remote_port) == connected_port).cloned() else {
            self.refused("forwarded-tcpip");
            return Ok(());
        };
        let from = format!("{originator_address}:{originator_port}");
        let (stall, connect_timeout) = (self.forward_stall, self.connect_timeout);
        // Off russh's handler loop: a local destination that is slow to answer (or blackholed)
        // must not hold up the session, and with it every other channel. Connect first, so a
        // local service that is down refuses the channel instead of accepting it and closing.
        tokio::spawn(async move {
            let to = format!("{}:{}", r.host, r.port);
            let stream =
                match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect((r.host.as_str(), r.port)))
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::warn!("forward: -R {from}: cannot reach {to}: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(
                            "forward: -R {from}: cannot reach {to}: timed out after {}s",
                            connect_timeout.as_secs()
                        );
                        return;
                    }
                };
            reply.accept().await;
            let _ = stream.set_nodelay(true);
            tracing::info!("forward: -R {from} → {to} open");
            match super::forward::bridge(stream, channel, stall).await {
                Ok((up, down)) => tracing::info!("forward: -R {from} → {to} closed, {down} bytes in, {up} out"),
                Err(cut) => tracing::warn!("forward: -R {from} → {to}: {cut}"),
            }
        });
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refused("forwarded-streamlocal");
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refused("session");
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refused("direct-tcpip");
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refused("direct-streamlocal");
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        _reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refused("x11");
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(binding) = &self.agent else {
            tracing::warn!("{}: rejected an agent channel (agent forwarding is off)", self.hop.label);
            return Ok(());
        };
        let binding = binding.lock().expect("not poisoned").clone();
        let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") else {
            tracing::warn!("{}: -A, but SSH_AUTH_SOCK is not set: agent channel rejected", self.hop.label);
            return Ok(());
        };
        reply.accept().await;
        // One task per agent connection, so a slow agent never stalls the session.
        tokio::spawn(async move {
            let Ok(stream) = tokio::net::UnixStream::connect(&sock).await else { return };
            let mut agent = russh::keys::agent::client::AgentClient::connect(stream);
            // Tell the agent this connection is forwarded and to which host, so keys with
            // destination constraints (ssh-add -h) are honoured; agents without the
            // extension still work, as with OpenSSH.
            if let Some(b) = &binding
                && let Err(e) = agent.bind_session(b, true).await
            {
                tracing::debug!("agent did not accept session-bind: {e}");
            }
            let mut local = agent.into_inner();
            let mut remote = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut remote, &mut local).await;
        });
        Ok(())
    }
}

/// The client configuration: TCP_NODELAY, large windows, keepalive.
fn config() -> Arc<client::Config> {
    Arc::new(base_config())
}

fn base_config() -> client::Config {
    client::Config {
        nodelay: true,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        // The fewest round trips (vendor/russh/PATCHES.md 0002–0004): the KEXINIT goes out with
        // the version line, the first USERAUTH_REQUEST right behind the SERVICE_REQUEST, and it
        // is signed (no probe waiting for PK_OK).
        kexinit_with_id: true,
        pipeline_userauth: true,
        sign_publickey_first: true,
        // The key exchange packet goes out with the KEXINIT (0006): answered at once by a
        // server whose first choices are ours (KexMemory orders ours by what it remembers).
        guess_kex: true,
        preferred: russh::Preferred { cipher: std::borrow::Cow::Borrowed(ciphers()), ..Default::default() },
        ..Default::default()
    }
}

/// The ciphers hop offers, most preferred first: AES-GCM ahead of ChaCha20-Poly1305 where the
/// CPU has AES instructions (and carry-less multiply, for GCM), as both ends then spend less
/// CPU per byte (hop and the sshd, each of which decrypts what the other encrypts); elsewhere
/// ChaCha20-Poly1305 first, as OpenSSH orders them. The set offered is russh's default either way.
fn ciphers() -> &'static [russh::cipher::Name] {
    use russh::cipher::{AES_128_CTR, AES_192_CTR, AES_256_CTR, AES_256_GCM, CHACHA20_POLY1305};
    const AES_FIRST: &[russh::cipher::Name] = &[AES_256_GCM, CHACHA20_POLY1305, AES_256_CTR, AES_192_CTR, AES_128_CTR];
    const CHACHA_FIRST: &[russh::cipher::Name] =
        &[CHACHA20_POLY1305, AES_256_GCM, AES_256_CTR, AES_192_CTR, AES_128_CTR];
    if aes_in_hardware() { AES_FIRST } else { CHACHA_FIRST }
}

fn aes_in_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    return std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes");
    #[allow(unreachable_code)]
    false
}

/// A connected, authenticated chain; the last handle is the target.
pub struct Chain {
    pub handles: Vec<Handle<HopHandler>>,
    /// The servers' reasons for refused channel opens, one per handle.
    failures: Vec<OpenFailures>,
    /// The hops' labels, one per handle.
    labels: Vec<String>,
    /// `--connect-timeout`, for the channels opened on the chain later.
    pub open_timeout: Duration,
}

impl Chain {
    pub fn target(&self) -> &Handle<HopHandler> {
        self.handles.last().expect("a chain has at least one hop")
    }

    /// The label of the chain's last hop (the one that opens channels).
    pub fn target_label(&self) -> &str {
        self.labels.last().map_or("?", String::as_str)
    }

    /// Open a direct-tcpip channel from the last hop to `host:port`. Unbounded: callers bound
    /// it (see `open_bounded`). The error is the server's reason, or what else went wrong.
    pub async fn open(
        &self,
        host: &str,
        port: u16,
        originator: (&str, u32),
    ) -> Result<russh::Channel<client::Msg>, String> {
        let failures = self.failures.last().expect("a chain has at least one hop");
        open_direct_tcpip(self.target(), failures, host, port, originator).await
    }
}

impl Chain {
    /// This chain, reached through `front` (whose last connection carries this chain's first):
    /// one chain whose handles are `front`'s, then this one's.
    pub fn behind(self, front: Chain) -> Chain {
        let mut handles = front.handles;
        handles.extend(self.handles);
        let mut failures = front.failures;
        failures.extend(self.failures);
        let mut labels = front.labels;
        labels.extend(self.labels);
        Chain { handles, failures, labels, open_timeout: self.open_timeout }
    }
}

/// The algorithms of the link to a connection master: both ends are hop, on one machine, over a
/// Unix socket only this user can reach (`reuse` checks the socket's owner and its peer), so the
/// cheapest key exchange and no cipher: the link needs no secrecy from anyone who could read it.
pub fn local_preferred() -> russh::Preferred {
    russh::Preferred {
        kex: std::borrow::Cow::Borrowed(&[russh::kex::CURVE25519]),
        key: std::borrow::Cow::Borrowed(&[russh::keys::Algorithm::Ed25519]),
        cipher: std::borrow::Cow::Borrowed(&[russh::cipher::NONE]),
        mac: std::borrow::Cow::Borrowed(&[russh::mac::NONE]),
        ..Default::default()
    }
}

/// Connect to this user's connection master over `stream`: the SSH handshake only; the
/// caller (`reuse`) authenticates, which says what the master should carry. The result is a
/// one-connection chain labelled `label`. Any failure means: no reuse, connect directly.
pub async fn connect_local<S>(stream: S, label: &str, within: Duration) -> Result<Chain, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let open_failures = OpenFailures::default();
    let handler = HopHandler {
        hop: Hop {
            label: label.to_string(),
            address: "master".into(),
            port: 0,
            user: String::new(),
            identity: None,
            host_key_alias: String::new(),
            push: None,
        },
        trust: Trust {
            files: Vec::new(),
            user_file: PathBuf::new(),
            accept_new: false,
            ask: None,
            kex_memory: None,
            pusher: None,
        },
        refusal: Arc::default(),
        agent: None,
        remote_forwards: Vec::new(),
        connect_timeout: within,
        forward_stall: super::forward::STALL_TIMEOUT,
        open_failures: open_failures.clone(),
        kex_memory: None,
        local_master: true,
    };
    let config = Arc::new(client::Config { preferred: local_preferred(), ..base_config() });
    // Both ends of the link are russh: see `reuse::ReadAhead`.
    let stream = super::reuse::ReadAhead::new(stream);
    let handle = tokio::time::timeout(within, client::connect_stream(config, stream, handler))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Chain {
        handles: vec![handle],
        failures: vec![open_failures],
        labels: vec![label.to_string()],
        open_timeout: within,
    })
}

/// `Chain::open` within `within`. The open runs in its own task: a channel the server
/// confirms after the caller gave up is closed at once instead of lingering on the server.
pub async fn open_bounded(
    chain: Arc<Chain>,
    host: String,
    port: u16,
    originator: (String, u32),
    within: Duration,
) -> Result<russh::Channel<client::Msg>, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let opened = chain.open(&host, port, (&originator.0, originator.1)).await;
        if let Err(Ok(late)) = tx.send(opened) {
            let _ = late.close().await;
        }
    });
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(_)) => Err("the connection was lost".into()),
        Err(_) => Err(format!("timed out after {}s (--connect-timeout)", within.as_secs())),
    }
}

/// The time limits of one connect: each step (TCP, handshake, authentication, channel open)
/// gets `step`, the whole connect `step` per hop. Time spent waiting for the user at a prompt
/// (host key, passphrase) counts against neither.
struct Clock {
    step: Duration,
    total: Duration,
    started: Instant,
    paused: Arc<Paused>,
}

/// Time spent at prompts: finished prompts, and the start of the one under way.
#[derive(Default)]
struct Paused(Mutex<(Duration, Option<Instant>)>);

impl Paused {
    fn total(&self) -> Duration {
        let (done, since) = *self.0.lock().expect("not poisoned");
        done + since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn active(&self) -> bool {
        self.0.lock().expect("not poisoned").1.is_some()
    }

    fn begin(&self) {
        self.0.lock().expect("not poisoned").1 = Some(Instant::now());
    }

    fn end(&self) {
        let mut p = self.0.lock().expect("not poisoned");
        if let Some(since) = p.1.take() {
            p.0 += since.elapsed();
        }
    }
}

impl Clock {
    fn new(step: Duration, hops: usize) -> Clock {
        Clock { step, total: step * hops.max(1) as u32, started: Instant::now(), paused: Arc::default() }
    }

    /// `trust` whose questions pause this clock while the user thinks.
    fn pausing(&self, trust: &Trust) -> Trust {
        let ask = trust.ask.clone().map(|inner| -> Ask {
            let paused = self.paused.clone();
            Arc::new(move |q: &Question| {
                paused.begin();
                let answer = inner(q);
                paused.end();
                answer
            })
        });
        Trust { ask, ..trust.clone() }
    }

    /// Run one step within the limits; the error says which limit it hit.
    async fn run<F: Future>(&self, step: F) -> Result<F::Output, String> {
        tokio::pin!(step);
        let begun = Instant::now();
        let paused_before = self.paused.total();
        loop {
            let paused = self.paused.total();
            let end = (begun + self.step + (paused - paused_before)).min(self.started + self.total + paused);
            let wait = end.saturating_duration_since(Instant::now());
            // While a prompt is open the limits move with the clock: look again later.
            let wait = if self.paused.active() { wait.max(Duration::from_millis(100)) } else { wait };
            tokio::select! {
                biased;
                out = &mut step => return Ok(out),
                _ = tokio::time::sleep(wait) => {}
            }
            if self.paused.active() {
                continue;
            }
            let paused = self.paused.total();
            let now = Instant::now();
            if now >= begun + self.step + (paused - paused_before) {
                return Err(format!("timed out after {}s (--connect-timeout)", self.step.as_secs()));
            }
            if now >= self.started + self.total + paused {
                return Err(format!(
                    "timed out: the whole connection may take {}s ({}s per hop, --connect-timeout)",
                    self.total.as_secs(),
                    self.step.as_secs()
                ));
            }
        }
    }
}

/// What the final hop (and only it) may open towards hop: agent channels with `-A`, and the
/// connections of `-R` forwards.
#[derive(Debug, Clone)]
pub struct FinalHop {
    pub forward_agent: bool,
    pub remote_forwards: Vec<RemoteForward>,
    /// `forward_stall_timeout`, for the `-R` connections.
    pub forward_stall: Duration,
}

impl Default for FinalHop {
    fn default() -> Self {
        FinalHop { forward_agent: false, remote_forwards: Vec::new(), forward_stall: super::forward::STALL_TIMEOUT }
    }
}

/// Connect through `hops` (the last is the target), verifying and authenticating each. The
/// first hop is dialled over TCP, or runs over `first` when given (a Session Manager data
/// channel). Every step of every hop is bounded by `connect_timeout`, the whole connect by
/// `connect_timeout` per hop (prompts excepted); errors name the hop, the step and the reason.
pub async fn connect(
    hops: &[Hop],
    trust: &Trust,
    connect_timeout: Duration,
    last: &FinalHop,
    first: Option<tokio::io::DuplexStream>,
) -> Result<Chain, SshError> {
    connect_on(hops, trust, connect_timeout, last, first).await
}

/// [`connect`] with the first hop over any byte stream (a Session Manager data channel, a
/// direct-tcpip channel of a connection master).
pub async fn connect_on<S>(
    hops: &[Hop],
    trust: &Trust,
    connect_timeout: Duration,
    last: &FinalHop,
    mut first: Option<S>,
) -> Result<Chain, SshError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new(connect_timeout, hops.len());
    let trust = &clock.pausing(trust);
    let mut handles: Vec<Handle<HopHandler>> = Vec::new();
    let mut failures: Vec<OpenFailures> = Vec::new();
    for (n, hop) in hops.iter().enumerate() {
        let refusal = Arc::new(Mutex::new(None));
        let is_last = n + 1 == hops.len();
        let agent = (last.forward_agent && is_last).then(|| Arc::new(Mutex::new(None)));
        let open_failures = OpenFailures::default();
        let kex_memory = trust.kex_memory.as_deref().map(|dir| Arc::new(KexMemory::new(dir, &hop.host_key_alias)));
        let config = match &kex_memory {
            Some(memory) => memory.apply(config()),
            None => config(),
        };
        let handler = HopHandler {
            hop: hop.clone(),
            trust: trust.clone(),
            refusal: refusal.clone(),
            agent: agent.clone(),
            remote_forwards: if is_last { last.remote_forwards.clone() } else { Vec::new() },
            connect_timeout,
            forward_stall: last.forward_stall,
            open_failures: open_failures.clone(),
            kex_memory,
            local_master: false,
        };
        let conn_err = |step: &str, reason: String| SshError::Connect {
            label: hop.label.clone(),
            address: hop.address.clone(),
            port: hop.port,
            step: step.to_string(),
            reason,
        };
        const HANDSHAKE: &str = "SSH handshake";
        let connected = match handles.last() {
            None if first.is_some() => {
                let stream = first.take().expect("checked");
                clock.run(client::connect_stream(config, stream, handler)).await
            }
            None => {
                const TCP: &str = "TCP connect";
                let tcp = clock
                    .run(tokio::net::TcpStream::connect((hop.address.as_str(), hop.port)))
                    .await
                    .map_err(|limit| conn_err(TCP, limit))?
                    .map_err(|e| conn_err(TCP, e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                clock.run(client::connect_stream(config, super::quickack::QuickAck::new(tcp), handler)).await
            }
            Some(prev) => {
                let via = &hops[n - 1].label;
                let step = format!("opening a connection to {}:{} through {via}", hop.address, hop.port);
                let prev_failures = failures.last().expect("one per handle");
                let channel = clock
                    .run(open_direct_tcpip(prev, prev_failures, &hop.address, hop.port, ("127.0.0.1", 0)))
                    .await
                    .map_err(|limit| conn_err(&step, limit))?
                    .map_err(|reason| conn_err(&step, reason))?;
                clock.run(client::connect_stream(config, channel.into_stream(), handler)).await
            }
        };
        let handle = match connected {
            Err(limit) => return Err(conn_err(HANDSHAKE, limit)),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                if let Some(refused) = refusal.lock().expect("not poisoned").take() {
                    return Err(refused);
                }
                return Err(conn_err(HANDSHAKE, e.to_string()));
            }
        };
        if let Some(slot) = &agent {
            *slot.lock().expect("not poisoned") = handle.agent_session_binding().cloned();
        }
        let mut handle = handle;
        clock.run(authenticate(&mut handle, hop, trust)).await.map_err(|limit| conn_err("authentication", limit))??;
        handles.push(handle);
        failures.push(open_failures);
    }
    let labels = hops.iter().map(|h| h.label.clone()).collect();
    Ok(Chain { handles, failures, labels, open_timeout: connect_timeout })
}

/// The hash an RSA signature uses on this server (`server-sig-algs`). Asked for only when an
/// RSA key comes up: russh may wait up to a second for the server's EXT_INFO, which no other
/// key type needs.
#[derive(Default)]
struct RsaHash(Option<Option<HashAlg>>);

impl RsaHash {
    async fn get(&mut self, handle: &Handle<HopHandler>, hop: &Hop) -> Result<Option<HashAlg>, SshError> {
        if let Some(hash) = self.0 {
            return Ok(hash);
        }
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| SshError::Protocol { label: hop.label.clone(), message: e.to_string() })?
            .flatten();
        self.0 = Some(hash);
        Ok(hash)
    }
}

/// Public-key authentication: a key pushed with EC2 Instance Connect first when the hop logs in
/// with one (see [`try_pushed`]); then the hop's identity file if it has one (no agent probing,
/// no `none` round trip), else every key of the ssh-agent, else the default identities. Each key
/// goes out signed, without a probe first (russh `sign_publickey_first`, PATCHES.md 0002): one
/// round trip for a key the server takes, as many as a probe for one it refuses. For agent
/// keys that costs the agent one signature per refused key (and a confirmation for a key added
/// with `ssh-add -c`); security keys (`sk-*`), which need a touch per signature, are probed.
async fn authenticate(handle: &mut Handle<HopHandler>, hop: &Hop, trust: &Trust) -> Result<(), SshError> {
    let mut rsa_hash = RsaHash::default();
    let mut tried = Vec::new();
    let mut pushed = false;
    if let (Some(to), Some(pusher)) = (&hop.push, &trust.pusher)
        && super::wants_push(to).await
    {
        // hop's own guess, with default identities left to try: no second push and a second's
        // wait for a key the instance may simply not take (no ec2-instance-connect on it).
        let defaults =
            DEFAULT_IDENTITIES.iter().any(|name| trust.user_file.parent().is_some_and(|d| d.join(name).is_file()));
        let attempts = if to.always || !defaults { 2 } else { 1 };
        match try_pushed(handle, hop, to, pusher.as_ref(), attempts, &mut tried).await {
            Ok(true) => return Ok(()),
            Ok(false) => pushed = true,
            Err(e) if to.always => return Err(e),
            // Auto is a guess: the usual keys may still work.
            Err(e) => tracing::info!("{}: no key pushed with EC2 Instance Connect: {e}", hop.label),
        }
        if to.always {
            return Err(SshError::Auth {
                label: hop.label.clone(),
                user: hop.user.clone(),
                tried: tried.join(", "),
                pushed,
            });
        }
    }
    if let Some(path) = &hop.identity {
        if try_key_file(handle, hop, path, trust, &mut rsa_hash, &mut tried).await? {
            return Ok(());
        }
    } else {
        if let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await {
            use russh::keys::agent::AgentIdentity;
            let identities = agent.request_identities().await.unwrap_or_default();
            // Certificates first, as ssh does: a CA-signed key need not be in authorized_keys.
            let (certs, plain): (Vec<_>, Vec<_>) =
                identities.into_iter().partition(|i| matches!(i, AgentIdentity::Certificate { .. }));
            for id in certs.into_iter().chain(plain) {
                let user = hop.user.clone();
                let result = match id {
                    AgentIdentity::Certificate { certificate, .. } => {
                        tried.push(format!("agent certificate {}", certificate.key_id()));
                        let hash =
                            if certificate.algorithm().is_rsa() { rsa_hash.get(handle, hop).await? } else { None };
                        handle.authenticate_certificate_with(user, certificate, hash, &mut agent).await
                    }
                    AgentIdentity::PublicKey { key, .. } => {
                        tried.push(format!("agent key {}", key.fingerprint(HashAlg::Sha256)));
                        let hash = if key.algorithm().is_rsa() { rsa_hash.get(handle, hop).await? } else { None };
                        handle.authenticate_publickey_with(user, key, hash, &mut agent).await
                    }
                };
                match result {
                    Ok(r) if r.success() => return Ok(()),
                    Ok(_) => {}
                    Err(e) => tracing::debug!("agent signing failed: {e}"),
                }
            }
        }
        for name in DEFAULT_IDENTITIES {
            let path = trust.user_file.parent().map(|d| d.join(name)).unwrap_or_default();
            if path.is_file() && try_key_file(handle, hop, &path, trust, &mut rsa_hash, &mut tried).await? {
                return Ok(());
            }
        }
    }
    Err(SshError::Auth {
        label: hop.label.clone(),
        user: hop.user.clone(),
        tried: if tried.is_empty() { "no keys found".into() } else { tried.join(", ") },
        pushed,
    })
}

/// The identities ssh tries when nothing else is configured, in its order.
const DEFAULT_IDENTITIES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// How long a refused pushed key is given to reach the instance before it is offered again
/// (spec §B.3 point 5: the key may take a moment to show in the instance metadata).
const PUSH_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Push the run's key for this hop right before its authentication and offer it. Refused: push
/// it again once (a fresh 60 s), wait [`PUSH_RETRY_AFTER`] and offer it again (`attempts` 2).
/// Ok(false): refused every time; Err: the push itself failed.
async fn try_pushed(
    handle: &mut Handle<HopHandler>,
    hop: &Hop,
    to: &PushTo,
    pusher: &dyn KeyPusher,
    attempts: usize,
    tried: &mut Vec<String>,
) -> Result<bool, SshError> {
    let protocol = |e: russh::Error| SshError::Protocol { label: hop.label.clone(), message: e.to_string() };
    let key = pusher.key();
    for attempt in 0..attempts {
        if attempt > 0 {
            tracing::info!("{}: the pushed key was refused; pushing it again", hop.label);
        }
        pusher.push(to, &hop.user).await.map_err(SshError::Push)?;
        if attempt > 0 {
            tokio::time::sleep(PUSH_RETRY_AFTER).await;
        }
        tracing::debug!("{}: pushed a key for {} as {}; offering it", hop.label, to.instance_id, hop.user);
        tried.push(if attempt == 0 {
            "a key pushed with EC2 Instance Connect".into()
        } else {
            "the same key pushed again".into()
        });
        let auth = handle
            .authenticate_publickey(hop.user.clone(), PrivateKeyWithHashAlg::new(key.clone(), None))
            .await
            .map_err(protocol)?;
        if auth.success() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One key file: with its OpenSSH certificate (`FILE-cert.pub`, as ssh's CertificateFile
/// default) when there is one, then as a plain key. Ok(true) when the server accepted it.
async fn try_key_file(
    handle: &mut Handle<HopHandler>,
    hop: &Hop,
    path: &Path,
    trust: &Trust,
    rsa_hash: &mut RsaHash,
    tried: &mut Vec<String>,
) -> Result<bool, SshError> {
    let protocol = |e: russh::Error| SshError::Protocol { label: hop.label.clone(), message: e.to_string() };
    let key = Arc::new(load_key(path, trust)?);
    let mut cert_path = path.as_os_str().to_owned();
    cert_path.push("-cert.pub");
    let cert_path = PathBuf::from(cert_path);
    if cert_path.is_file() {
        match russh::keys::load_openssh_certificate(&cert_path) {
            Ok(cert) => {
                tried.push(cert_path.display().to_string());
                if handle
                    .authenticate_openssh_cert(hop.user.clone(), key.clone(), cert)
                    .await
                    .map_err(protocol)?
                    .success()
                {
                    return Ok(true);
                }
            }
            Err(e) => tracing::warn!("ignoring {}: {e}", cert_path.display()),
        }
    }
    tried.push(path.display().to_string());
    let hash = if key.algorithm().is_rsa() { rsa_hash.get(handle, hop).await? } else { None };
    let auth = handle
        .authenticate_publickey(hop.user.clone(), PrivateKeyWithHashAlg::new(key, hash))
        .await
        .map_err(protocol)?;
    Ok(auth.success())
}

/// Load a private key, asking for the passphrase (once, then once more on a wrong one) when it
/// is encrypted.
fn load_key(path: &Path, trust: &Trust) -> Result<russh::keys::PrivateKey, SshError> {
    let label = path.display().to_string();
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let Some(ask) = &trust.ask else {
                return Err(SshError::Protocol {
                    label,
                    message:
                        "the key is encrypted and there is no terminal to ask for its passphrase; add it to ssh-agent"
                            .into(),
                });
            };
            for _ in 0..2 {
                let pass = match ask(&Question::Passphrase { path: path.to_path_buf() }) {
                    Answer::Secret(pass) => pass,
                    Answer::Interrupted => return Err(SshError::Interrupted),
                    _ => break,
                };
                match russh::keys::load_secret_key(path, Some(&pass)) {
                    Ok(k) => return Ok(k),
                    Err(e) => tracing::warn!("wrong passphrase for {label}: {e}"),
                }
            }
            Err(SshError::Protocol { label, message: "wrong passphrase".into() })
        }
        Err(e) => Err(SshError::Protocol { label, message: format!("cannot load the key: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust_with(ask: Ask) -> Trust {
        Trust {
            files: vec![],
            user_file: PathBuf::new(),
            accept_new: false,
            ask: Some(ask),
            kex_memory: None,
            pusher: None,
        }
    }

    /// A step that takes `d` on the clock.
    async fn takes(d: Duration) {
        tokio::time::sleep(d).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_step_and_the_whole_connect_are_bounded() {
        let clock = Clock::new(Duration::from_millis(300), 2);
        assert!(clock.run(takes(Duration::from_millis(100))).await.is_ok());
        let e = clock.run(takes(Duration::from_secs(5))).await.unwrap_err();
        assert!(e.starts_with("timed out after "), "{e}");
        // 100 + 300 spent of the 600 ms the whole connect may take: a step that would fit its
        // own limit still meets the whole connect's.
        let e = clock.run(takes(Duration::from_millis(290))).await.unwrap_err();
        assert!(e.starts_with("timed out: the whole connection may take"), "{e}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn time_at_a_prompt_counts_against_no_limit() {
        let clock = Clock::new(Duration::from_millis(300), 1);
        // The user takes 500 ms to answer, blocking the thread as a terminal read does.
        let ask: Ask = Arc::new(|_q: &Question| {
            std::thread::sleep(Duration::from_millis(500));
            Answer::Yes
        });
        let trust = clock.pausing(&trust_with(ask));
        let question = Question::Passphrase { path: PathBuf::from("k") };
        let step = async {
            takes(Duration::from_millis(100)).await;
            let answer = (trust.ask.as_ref().unwrap())(&question);
            takes(Duration::from_millis(100)).await;
            answer
        };
        assert!(matches!(clock.run(step).await, Ok(Answer::Yes)));
    }

    #[test]
    fn a_relayed_refusal_keeps_the_servers_code_and_description() {
        for (reason, code, description) in [
            ("refused (connect failed): Connection refused", 2, "Connection refused"),
            ("refused (administratively prohibited): open failed", 1, "open failed"),
            ("refused (reason code 9)", 9, ""),
            ("timed out after 3s (--connect-timeout)", 2, "timed out after 3s (--connect-timeout)"),
        ] {
            let r = refusal_of(reason);
            assert_eq!((r.code(), r.description()), (code, description), "{reason}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refusal_is_told_with_the_servers_description() {
        let failures = OpenFailures::default();
        let later = failures.clone();
        // russh tells the opener first; the handler records the description just after.
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            later.record(1, "administratively prohibited: open failed");
            later.record(2, "Connection timed out");
        });
        assert_eq!(failures.claim(2).await.as_deref(), Some("Connection timed out"));
        assert_eq!(failures.claim(1).await.as_deref(), Some("administratively prohibited: open failed"));
        // Nothing recorded: given up on quickly.
        assert_eq!(failures.claim(2).await, None);
    }
}
