//! The SSH client: connect through any number of hops (each hop's TCP is a direct-tcpip channel
//! of the previous one), verify every hop's host key against known_hosts, authenticate each hop
//! with its own key. Transports never prompt: questions go to the `Ask` callback the command
//! layer answers.

// SshError carries what a refusal message needs (host, fingerprints, file, line); it travels
// once per failed connection, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::agent::AgentSessionBinding;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use super::known_hosts::{self, HostName, KnownHostsFile, Verdict};
use crate::domain::forward::RemoteForward;

/// One hop of a chain: where to dial (from the previous hop), who to be, which key to trust.
#[derive(Debug, Clone)]
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
}

/// Why a connection failed; `hop` turns these into exit 255 with a hint.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot connect to {label} ({address}:{port}): {reason}")]
    Connect { label: String, address: String, port: u16, reason: String },
    #[error("host key of {label} ({alias}) is not known: {fingerprint}")]
    UnknownHostKey { label: String, alias: String, fingerprint: String, file: PathBuf },
    #[error(
        "host key of {label} ({alias}) has CHANGED: the server offers {fingerprint}, {}:{line} has {expected}",
        file.display()
    )]
    ChangedHostKey { label: String, alias: String, fingerprint: String, expected: String, file: PathBuf, line: usize },
    #[error("host key of {label} ({alias}) is revoked ({}:{line})", file.display())]
    RevokedHostKey { label: String, alias: String, file: PathBuf, line: usize },
    #[error("authentication as {user} on {label} failed (tried: {tried})")]
    Auth { label: String, user: String, tried: String },
    #[error("{label}: {message}")]
    Protocol { label: String, message: String },
    /// The Session Manager transport under the SSH connection failed.
    #[error("{message}")]
    Ssm { message: String, hints: Vec<String> },
    /// Ctrl-C at a question (host key, passphrase).
    #[error("interrupted")]
    Interrupted,
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
}

impl HopHandler {
    /// The host key decision for this hop: known, refused (with the reason), or unknown and
    /// then accepted only with `--accept-new` or a "yes" on the terminal.
    fn verify(&self, offered: &PublicKeyOrCertificate) -> Result<(), SshError> {
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
        // Connect first, so a local service that is down refuses the channel instead of
        // accepting it and closing at once.
        match tokio::net::TcpStream::connect((r.host.as_str(), r.port)).await {
            Ok(stream) => {
                reply.accept().await;
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    tracing::info!("forward: -R {from} → {}:{} open", r.host, r.port);
                    let (up, down) = super::forward::bridge(stream, channel).await;
                    tracing::info!("forward: -R {from} → {}:{} closed, {down} bytes in, {up} out", r.host, r.port);
                });
            }
            Err(e) => tracing::warn!("forward: -R {from}: cannot reach {}:{}: {e}", r.host, r.port),
        }
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
    Arc::new(client::Config {
        nodelay: true,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        ..Default::default()
    })
}

/// A connected, authenticated chain; the last handle is the target.
pub struct Chain {
    pub handles: Vec<Handle<HopHandler>>,
}

impl Chain {
    pub fn target(&self) -> &Handle<HopHandler> {
        self.handles.last().expect("a chain has at least one hop")
    }
}

/// What the final hop (and only it) may open towards hop: agent channels with `-A`, and the
/// connections of `-R` forwards.
#[derive(Debug, Clone, Default)]
pub struct FinalHop {
    pub forward_agent: bool,
    pub remote_forwards: Vec<RemoteForward>,
}

/// Connect through `hops` (the last is the target), verifying and authenticating each. The
/// first hop is dialled over TCP, or runs over `first` when given (a Session Manager data
/// channel).
pub async fn connect(
    hops: &[Hop],
    trust: &Trust,
    connect_timeout: Duration,
    last: &FinalHop,
    mut first: Option<tokio::io::DuplexStream>,
) -> Result<Chain, SshError> {
    let mut handles: Vec<Handle<HopHandler>> = Vec::new();
    for (n, hop) in hops.iter().enumerate() {
        let refusal = Arc::new(Mutex::new(None));
        let is_last = n + 1 == hops.len();
        let agent = (last.forward_agent && is_last).then(|| Arc::new(Mutex::new(None)));
        let handler = HopHandler {
            hop: hop.clone(),
            trust: trust.clone(),
            refusal: refusal.clone(),
            agent: agent.clone(),
            remote_forwards: if is_last { last.remote_forwards.clone() } else { Vec::new() },
        };
        let conn_err = |reason: String| SshError::Connect {
            label: hop.label.clone(),
            address: hop.address.clone(),
            port: hop.port,
            reason,
        };
        let connected = match handles.last() {
            None if first.is_some() => {
                let stream = first.take().expect("checked");
                tokio::time::timeout(connect_timeout, client::connect_stream(config(), stream, handler)).await
            }
            None => {
                let tcp = tokio::time::timeout(
                    connect_timeout,
                    tokio::net::TcpStream::connect((hop.address.as_str(), hop.port)),
                )
                .await
                .map_err(|_| conn_err(format!("timed out after {}s", connect_timeout.as_secs())))?
                .map_err(|e| conn_err(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                tokio::time::timeout(connect_timeout, client::connect_stream(config(), tcp, handler)).await
            }
            Some(prev) => {
                let channel = prev
                    .channel_open_direct_tcpip(hop.address.clone(), hop.port as u32, "127.0.0.1", 0)
                    .await
                    .map_err(|e| conn_err(format!("the previous hop could not open a connection: {e}")))?;
                tokio::time::timeout(connect_timeout, client::connect_stream(config(), channel.into_stream(), handler))
                    .await
            }
        };
        let handle = match connected {
            Err(_) => return Err(conn_err("SSH handshake timed out".into())),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                if let Some(refused) = refusal.lock().expect("not poisoned").take() {
                    return Err(refused);
                }
                return Err(conn_err(e.to_string()));
            }
        };
        if let Some(slot) = &agent {
            *slot.lock().expect("not poisoned") = handle.agent_session_binding().cloned();
        }
        let mut handle = handle;
        authenticate(&mut handle, hop, trust).await?;
        handles.push(handle);
    }
    Ok(Chain { handles })
}

/// Public-key authentication: the hop's identity file if it has one (no agent probing, no
/// `none` round trip), else every key of the ssh-agent, else the default identities.
async fn authenticate(handle: &mut Handle<HopHandler>, hop: &Hop, trust: &Trust) -> Result<(), SshError> {
    let protocol = |e: russh::Error| SshError::Protocol { label: hop.label.clone(), message: e.to_string() };
    let rsa_hash = handle.best_supported_rsa_hash().await.map_err(protocol)?.flatten();
    let mut tried = Vec::new();
    if let Some(path) = &hop.identity {
        if try_key_file(handle, hop, path, trust, rsa_hash, &mut tried).await? {
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
                        let hash = if certificate.algorithm().is_rsa() { rsa_hash } else { None };
                        handle.authenticate_certificate_with(user, certificate, hash, &mut agent).await
                    }
                    AgentIdentity::PublicKey { key, .. } => {
                        tried.push(format!("agent key {}", key.fingerprint(HashAlg::Sha256)));
                        let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
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
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = trust.user_file.parent().map(|d| d.join(name)).unwrap_or_default();
            if path.is_file() && try_key_file(handle, hop, &path, trust, rsa_hash, &mut tried).await? {
                return Ok(());
            }
        }
    }
    Err(SshError::Auth {
        label: hop.label.clone(),
        user: hop.user.clone(),
        tried: if tried.is_empty() { "no keys found".into() } else { tried.join(", ") },
    })
}

/// One key file: with its OpenSSH certificate (`FILE-cert.pub`, as ssh's CertificateFile
/// default) when there is one, then as a plain key. Ok(true) when the server accepted it.
async fn try_key_file(
    handle: &mut Handle<HopHandler>,
    hop: &Hop,
    path: &Path,
    trust: &Trust,
    rsa_hash: Option<HashAlg>,
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
    let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
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
