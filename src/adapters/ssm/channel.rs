//! The data channel (spec §1.2, §1.3, §5.8, §7): a websocket driving the pure engine of
//! `domain::ssm`, offered to the rest of hop as a local byte stream. One task owns the
//! websocket; every way it ends sends the TerminateSession flag when the agent understands
//! it, calls TerminateSession and closes the websocket.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::control::{Control, Document, Started};
use crate::domain::ssm::engine::{Engine, EngineError, FLAG_CONNECT_TO_PORT_ERROR, FLAG_TERMINATE_SESSION, State};
use crate::domain::ssm::handshake::{CLIENT_VERSION, HandshakeError, Request};
use crate::error::HopError;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Unacked messages kept for retransmission (§5.5): 8 MiB of 1 KiB messages.
const UNACKED_MESSAGES: usize = 8 * 1024;
/// Local bytes read ahead of what the unacked buffer takes; beyond it hop stops reading.
const PENDING_LIMIT: usize = 256 * 1024;
/// Bytes from the agent waiting for the user to read them; beyond it hop stops reading the
/// websocket.
const USER_QUEUE_LIMIT: usize = 8 * 1024 * 1024;
/// Bytes buffered between the channel task and its user, each way.
const LOCAL_BUFFER: usize = 256 * 1024;
/// Websocket keep-alive (§1.2: at least every 5 minutes; proxies want less).
const PING_EVERY: Duration = Duration::from_secs(20);
/// Reconnect tries after the service closes the websocket (§5.8: one try and 5 retries).
const RESUME_TRIES: u32 = 6;

/// An open session: the byte stream to the destination and what the agent announced.
pub struct Channel {
    pub stream: DuplexStream,
    pub request: Request,
    pub session_id: String,
    /// Flags (§3.3) to send in stream order, e.g. DisconnectToPort in basic port mode.
    pub flags: mpsc::UnboundedSender<u32>,
}

/// Timing, from the settings (`--connect-timeout`, `ssm_give_up`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Bounds the websocket upgrade, and the handshake: HandshakeRequest and HandshakeComplete
    /// must arrive within it (§4.4).
    pub connect_timeout: Duration,
    /// Give up when the oldest message goes unacknowledged this long (§5.3 [hop]).
    pub give_up: Duration,
}

/// Live channel tasks, so `finish` can end them before the process exits (Ctrl-C included).
static LIVE: Mutex<Vec<(watch::Sender<bool>, JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Ask every open session to end and wait (bounded) for each to send its TerminateSession
/// flag and API call. main calls this on every exit path.
pub async fn finish(within: Duration) {
    let live = std::mem::take(&mut *LIVE.lock().expect("not poisoned"));
    if live.is_empty() {
        return;
    }
    let handles: Vec<JoinHandle<()>> = live
        .into_iter()
        .map(|(stop, handle)| {
            let _ = stop.send(true);
            handle
        })
        .collect();
    let _ = tokio::time::timeout(within, futures_util::future::join_all(handles)).await;
}

/// Start a session on `target` running `document`, open its data channel and complete the
/// handshake.
pub async fn open(
    control: &Control,
    target: &str,
    document: &Document,
    options: &Options,
) -> Result<Channel, HopError> {
    let started = control.start(target, document).await?;
    tracing::info!("SSM session {} started ({})", started.session_id, document.name());
    let client_id = uuid::Uuid::new_v4().to_string();
    let ws = match dial(&started.stream_url, &started.token, &client_id, options.connect_timeout).await {
        Ok(ws) => ws,
        Err(e) => {
            control.terminate(&started.session_id).await;
            return Err(channel_error(target, format!("cannot open the Session Manager data channel: {e}")));
        }
    };
    let (user, ours) = tokio::io::duplex(LOCAL_BUFFER);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (flags, flags_rx) = mpsc::unbounded_channel();
    let session_id = started.session_id.clone();
    let driver = Driver {
        control: control.clone(),
        target: target.to_string(),
        started,
        client_id,
        ws,
        engine: Engine::new(|| *uuid::Uuid::new_v4().as_bytes(), UNACKED_MESSAGES, options.give_up.as_millis() as u64),
        epoch: Instant::now(),
        epoch_wall_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64),
        local: Some(ours),
        ready: Some(ready_tx),
        stop: stop_rx,
        flags: flags_rx,
        connect_timeout: options.connect_timeout,
    };
    let handle = tokio::spawn(driver.run());
    LIVE.lock().expect("not poisoned").push((stop_tx, handle));
    match ready_rx.await {
        Ok(Ok(request)) => Ok(Channel { stream: user, request, session_id, flags }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(channel_error(target, "the Session Manager data channel ended during the handshake".into())),
    }
}

fn channel_error(target: &str, message: String) -> HopError {
    HopError::Ssh {
        message,
        hints: vec![format!("`hop doctor {target}` checks the agent, the instance profile and the SSM endpoints")],
    }
}

/// Websocket upgrade to the StreamUrl, verbatim (§1.2), then the OpenDataChannel text frame
/// (§1.3). `ws://` is accepted for test servers.
async fn dial(url: &str, token: &str, client_id: &str, within: Duration) -> Result<Ws, String> {
    let connector = url.starts_with("wss:").then(|| tokio_tungstenite::Connector::Rustls(tls_config()));
    let (mut ws, _) =
        tokio::time::timeout(within, tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector))
            .await
            .map_err(|_| format!("timed out after {}s", within.as_secs()))?
            .map_err(|e| e.to_string())?;
    let open = serde_json::json!({
        "MessageSchemaVersion": "1.0",
        "RequestId": uuid::Uuid::new_v4().to_string(),
        "TokenValue": token,
        "ClientId": client_id,
        "ClientVersion": CLIENT_VERSION,
    });
    ws.send(Message::Text(open.to_string().into())).await.map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Native roots (which honour SSL_CERT_FILE), aws-lc-rs: also the EC2 Instance Connect tunnels'.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// How the pump ended without an error.
enum End {
    /// The local side closed and everything it wrote was acknowledged.
    LocalClosed,
    /// The service sent `channel_closed`, with its Output text.
    ServiceClosed(String),
    /// `finish` asked.
    Stopped,
}

struct Driver {
    control: Control,
    target: String,
    started: Started,
    client_id: String,
    ws: Ws,
    engine: Engine<fn() -> [u8; 16]>,
    epoch: Instant,
    epoch_wall_ms: u64,
    /// Taken by `pump`; dropping it is the user's EOF.
    local: Option<DuplexStream>,
    ready: Option<oneshot::Sender<Result<Request, HopError>>>,
    stop: watch::Receiver<bool>,
    flags: mpsc::UnboundedReceiver<u32>,
    connect_timeout: Duration,
}

impl Driver {
    /// Milliseconds: the wall clock at the session's start plus monotonic time since, so
    /// CreatedDate is wall time (§2.1) and RTO arithmetic never sees the clock step back.
    fn now(&self) -> u64 {
        self.epoch_wall_ms + self.epoch.elapsed().as_millis() as u64
    }

    async fn run(mut self) {
        let outcome = self.pump().await;
        let established = matches!(self.engine.state, State::Established(_));
        // §7.1: the TerminateSession flag (agents > 2.3.722.0) unless the service already
        // ended the session, then linger for its ack (and the answer of a refused handshake).
        if let (State::Established(request), Ok(End::LocalClosed | End::Stopped)) = (&self.engine.state, &outcome)
            && request.terminate_flag()
        {
            let now = self.now();
            self.engine.flag(FLAG_TERMINATE_SESSION, now);
        }
        if !matches!(outcome, Ok(End::ServiceClosed(_))) {
            self.linger(Duration::from_secs(1)).await;
        }
        self.control.terminate(&self.started.session_id).await;
        let _ = self.ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })).await;
        let result = match outcome {
            Ok(End::ServiceClosed(output)) => {
                if !output.is_empty() {
                    tracing::warn!("Session Manager ended session {}: {output}", self.started.session_id);
                }
                if established {
                    Ok(())
                } else {
                    Err(channel_error(
                        &self.target,
                        format!(
                            "Session Manager closed the data channel during the handshake{}",
                            if output.is_empty() { String::new() } else { format!(": {output}") }
                        ),
                    ))
                }
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match (self.ready.take(), result) {
            (Some(ready), Err(e)) => {
                let _ = ready.send(Err(e));
            }
            (Some(ready), Ok(())) => {
                let _ =
                    ready.send(Err(channel_error(&self.target, "the session ended before it was established".into())));
            }
            (None, Err(e)) => tracing::warn!("SSM session {}: {e}", self.started.session_id),
            (None, Ok(())) => {}
        }
    }

    async fn pump(&mut self) -> Result<End, HopError> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        let deadline = Instant::now() + self.connect_timeout;
        let (mut local_rd, mut local_wr) = tokio::io::split(self.local.take().expect("pumped once"));
        // Bytes for the user, written as it reads them: never blocking the loop, or the user
        // (russh, say) and this task could each wait for the other to read.
        let mut to_user: std::collections::VecDeque<bytes::Bytes> = std::collections::VecDeque::new();
        let mut to_user_len = 0usize;
        let mut local_open = true;
        let mut user_open = true;
        let result = loop {
            if let Err(e) = self.send_outbox().await {
                break Err(e);
            }
            let inbox = self.engine.take_inbox();
            if !inbox.is_empty() && user_open {
                to_user_len += inbox.len();
                to_user.push_back(inbox.into());
            }
            for flag in self.engine.take_flags() {
                if flag == FLAG_CONNECT_TO_PORT_ERROR {
                    tracing::warn!("the instance could not connect to the destination port (see the SSM agent's log)");
                }
            }
            match &self.engine.state {
                State::Closed(output) => break Ok(End::ServiceClosed(output.clone())),
                State::Established(request) => {
                    if let Some(ready) = self.ready.take() {
                        if let Some(note) = self.engine.customer_message.take() {
                            tracing::warn!("Session Manager: {note}");
                        }
                        let _ = ready.send(Ok(request.clone()));
                    }
                }
                _ if Instant::now() > deadline => {
                    break Err(channel_error(
                        &self.target,
                        format!(
                            "no handshake from the SSM agent within {}s (--connect-timeout)",
                            self.connect_timeout.as_secs()
                        ),
                    ));
                }
                _ => {}
            }
            if !local_open && self.engine.drained() {
                break Ok(End::LocalClosed);
            }
            let room = self.engine.pending_len() < PENDING_LIMIT;
            // Backpressure towards the agent when the user does not read: stop reading the
            // websocket (unacked messages are retransmitted later).
            let user_keeps_up = to_user_len < USER_QUEUE_LIMIT;
            let step: Result<(), HopError> = tokio::select! {
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() {
                        break Ok(End::Stopped);
                    }
                    Ok(())
                }
                written = local_wr.write(to_user.front().map(|b| &b[..]).unwrap_or_default()), if !to_user.is_empty() => {
                    match written {
                        Ok(n) if n > 0 => {
                            to_user_len -= n;
                            let front = to_user.front_mut().expect("not empty");
                            if n == front.len() { to_user.pop_front(); } else { *front = front.slice(n..); }
                        }
                        _ => {
                            user_open = false;
                            local_open = false;
                            to_user.clear();
                            to_user_len = 0;
                        }
                    }
                    Ok(())
                }
                frame = self.ws.next(), if user_keeps_up => match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        tracing::trace!("data channel: a {}-byte frame from the agent", bytes.len());
                        let now = self.now();
                        self.engine.on_frame(&bytes, now).map_err(|e| self.engine_error(e))
                    }
                    Some(Ok(Message::Text(_))) => {
                        tracing::debug!("ignoring a text frame from the service (§5.7)");
                        Ok(())
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        tracing::debug!("data channel websocket closed: {frame:?}");
                        self.reconnect().await
                    }
                    Some(Ok(_)) => Ok(()), // ping/pong: tungstenite answers pings itself
                },
                n = local_rd.read(&mut buf), if local_open && room => {
                    match n {
                        Ok(0) | Err(_) => local_open = false,
                        Ok(n) => {
                            let now = self.now();
                            self.engine.write(&buf[..n], now);
                        }
                    }
                    Ok(())
                }
                Some(flag) = self.flags.recv() => {
                    let now = self.now();
                    self.engine.flag(flag, now);
                    Ok(())
                }
                _ = tick.tick() => {
                    let now = self.now();
                    self.engine.tick(now).map_err(|e| self.engine_error(e))
                }
                _ = ping.tick() => {
                    if self.ws.send(Message::Ping(b"keepalive".to_vec().into())).await.is_err() {
                        self.reconnect().await
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = step {
                break Err(e);
            }
        };
        // What the agent sent before the end still reaches the user (bounded).
        if user_open && !to_user.is_empty() {
            let flush = async {
                for chunk in to_user {
                    local_wr.write_all(&chunk).await?;
                }
                local_wr.flush().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        }
        result
    }

    /// Write every queued frame; a failed write means the websocket is gone: resume.
    async fn send_outbox(&mut self) -> Result<(), HopError> {
        // Frames a failed write loses are in the engine's unacked buffer (acks are not, and
        // the agent re-sends what they covered): retransmission recovers them.
        if self.write_outbox().await.is_err() {
            return self.reconnect().await;
        }
        Ok(())
    }

    /// Write every frame the engine queued, then flush.
    async fn write_outbox(&mut self) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let frames = self.engine.take_outbox();
        if frames.is_empty() {
            return Ok(());
        }
        for frame in frames {
            self.ws.feed(Message::Binary(frame.into())).await?;
        }
        self.ws.flush().await
    }

    /// Send what is queued and process what arrives until everything is acknowledged or
    /// `within` passes.
    async fn linger(&mut self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        loop {
            if self.write_outbox().await.is_err() {
                return;
            }
            if self.engine.drained() || tokio::time::Instant::now() >= until {
                return;
            }
            tokio::select! {
                frame = self.ws.next() => match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        let now = self.now();
                        let _ = self.engine.on_frame(&bytes, now);
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = tokio::time::sleep_until(until) => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    let now = self.now();
                    let _ = self.engine.tick(now);
                }
            }
        }
    }

    fn engine_error(&self, e: EngineError) -> HopError {
        match e {
            EngineError::Handshake(h @ HandshakeError::KmsEncryptionUnsupported { .. }) => HopError::Ssh {
                message: format!("{}: {h}", self.target),
                hints: vec![format!(
                    "reach it through a bastion instead (`hop doctor {}` checks that path), or turn off KMS \
                     encryption in the Session Manager preferences",
                    self.target
                )],
            },
            EngineError::Handshake(h) => channel_error(&self.target, format!("the SSM agent's handshake: {h}")),
            e @ EngineError::Oversize { .. } => channel_error(&self.target, format!("protocol error: {e}")),
            EngineError::GaveUp { seq } => channel_error(
                &self.target,
                format!("the SSM agent did not acknowledge message {seq}: the data channel is dead"),
            ),
        }
    }

    /// §5.8: after the service closes the websocket, ResumeSession for a new token and open
    /// the original StreamUrl again with the same ClientId. Sequence state is kept; unacked
    /// messages go again on the retransmission tick.
    async fn reconnect(&mut self) -> Result<(), HopError> {
        if matches!(self.engine.state, State::AwaitingHandshake) {
            return Err(channel_error(
                &self.target,
                "Session Manager closed the data channel before the handshake (token rejected?)".into(),
            ));
        }
        let mut delay = Duration::from_millis(100 + u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 100));
        let mut last = String::new();
        for attempt in 1..=RESUME_TRIES {
            tokio::time::sleep(delay).await;
            let Some(token) = self.control.resume(&self.started.session_id, &self.target).await? else {
                return Err(channel_error(
                    &self.target,
                    format!("Session Manager session {} timed out", self.started.session_id),
                ));
            };
            match dial(&self.started.stream_url, &token, &self.client_id, self.connect_timeout).await {
                Ok(ws) => {
                    tracing::info!("SSM data channel resumed (attempt {attempt})");
                    self.ws = ws;
                    self.started.token = token;
                    return Ok(());
                }
                Err(e) => last = e,
            }
            delay *= 2;
            if delay > Duration::from_secs(5) {
                delay = Duration::from_millis(100);
            }
        }
        Err(channel_error(&self.target, format!("the SSM data channel closed and could not be resumed: {last}")))
    }
}
