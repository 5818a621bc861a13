//! EC2 Instance Connect Endpoint tunnels (spec §A.4, §A.5, §A.9): a presigned websocket to the
//! endpoint carrying the raw TCP bytes of the target's port, offered to the rest of hop as a
//! local byte stream (like the SSM data channel). One task owns the websocket.
//!
//! The URL is signed fresh for every tunnel, with credentials asked of the provider each time
//! (SSO and assumed-role credentials rotate). It carries the credential scope and the session
//! token: it never reaches a log or an error.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::domain::eice::{Credentials, Tunnel, presign};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The CLI's frame size (spec §A.5): a local read of at most this many bytes is one frame.
const FRAME: usize = 65_000;
/// Bytes buffered between the tunnel task and its user, each way.
const LOCAL_BUFFER: usize = 256 * 1024;
/// Bytes from the endpoint waiting for the user to read them; beyond it hop stops reading the
/// websocket (TCP backpressure towards the endpoint).
const USER_QUEUE_LIMIT: usize = 4 * 1024 * 1024;
/// After local EOF: how long to wait for the endpoint to echo hop's Close.
const CLOSE_ECHO: Duration = Duration::from_secs(1);
/// The handshake body shown in an error, at most.
const BODY_SHOWN: usize = 300;

/// Live tunnel tasks, so `finish` can close them (Close 1000) before the process exits.
static LIVE: Mutex<Vec<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Ask every open tunnel to close (Close 1000, a brief wait for the echo) and wait for them,
/// bounded by `within`. main calls this on every exit path.
pub async fn finish(within: Duration) {
    let live = std::mem::take(&mut *LIVE.lock().expect("not poisoned"));
    let handles: Vec<_> = live
        .into_iter()
        .map(|(stop, handle)| {
            let _ = stop.send(true);
            handle
        })
        .collect();
    if !handles.is_empty() {
        let _ = tokio::time::timeout(within, futures_util::future::join_all(handles)).await;
    }
}

/// Where a tunnel goes and what its errors should name.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint_id: String,
    pub region: String,
    pub dns_name: String,
    pub ip: String,
    pub port: u16,
    pub max_duration: u32,
    /// For the hint of an unreachable target: the endpoint's and the target's groups.
    pub endpoint_security_groups: Vec<String>,
    pub target_security_groups: Vec<String>,
    /// The target as the user named it, for `hop doctor TARGET`.
    pub label: String,
}

/// Why a tunnel could not be opened, or ended badly. Every one is exit 255 (DESIGN §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelError {
    /// No credentials to sign with.
    Credentials(String),
    /// DNS, TCP, TLS, or the time limit, before any HTTP answer.
    Dial(String),
    /// The endpoint answered the upgrade with another status than 101. `code`/`message` from
    /// its JSON body (`{"ErrorCode","Message"}`), else `message` is the start of the body.
    Refused { status: u16, code: Option<String>, message: String, request_id: Option<String> },
    /// The endpoint closed the websocket with a code other than 1000.
    Closed { code: u16, reason: String },
    /// The endpoint ended the tunnel at its duration limit.
    Duration { seconds: u32, after: Duration },
    /// The websocket broke without a close, or the endpoint spoke text.
    Broken(String),
}

impl TunnelError {
    /// The one-line message (never the URL).
    pub fn message(&self, t: &Target) -> String {
        let via = format!("EC2 Instance Connect Endpoint {}", t.endpoint_id);
        match self {
            TunnelError::Credentials(why) => format!("cannot sign a tunnel through {via}: {why}"),
            TunnelError::Dial(why) => format!("cannot reach {via} at {}: {why}", t.dns_name),
            TunnelError::Refused { status, code: Some(code), message, .. } => {
                format!("{via} refused the tunnel to {}:{} (HTTP {status}): {code}: {message}", t.ip, t.port)
            }
            TunnelError::Refused { status, code: None, message, .. } if message.is_empty() => {
                format!("{via} refused the tunnel to {}:{} (HTTP {status})", t.ip, t.port)
            }
            TunnelError::Refused { status, code: None, message, .. } => {
                format!("{via} refused the tunnel to {}:{} (HTTP {status}): {message}", t.ip, t.port)
            }
            TunnelError::Closed { code, reason } => {
                format!("{via}: Websocket closed: {reason} (code {code})")
            }
            TunnelError::Duration { seconds, after } => format!(
                "{via} closed the tunnel after {}s: the tunnel reached its maximum duration ({seconds} s)",
                after.as_secs()
            ),
            TunnelError::Broken(why) => format!("the tunnel through {via} broke: {why}"),
        }
    }

    /// What to do about it.
    pub fn hints(&self, t: &Target) -> Vec<String> {
        let doctor = format!("`hop doctor {}` checks the EC2 Instance Connect Endpoint path", t.label);
        let mut hints = Vec::new();
        match self {
            TunnelError::Closed { reason, .. } if reason.contains("Unable to connect to target") => {
                let ep = if t.endpoint_security_groups.is_empty() {
                    "the endpoint's security group".to_string()
                } else {
                    t.endpoint_security_groups.join(", ")
                };
                let target = if t.target_security_groups.is_empty() {
                    format!("{}'s security groups", t.label)
                } else {
                    format!("{} ({})", t.target_security_groups.join(", "), t.label)
                };
                hints.push(format!(
                    "the endpoint could not reach {}:{}: allow TCP {} into {target} from the endpoint's \
                     security group {ep}, and TCP {} out of {ep}; check that sshd runs",
                    t.ip, t.port, t.port, t.port
                ));
            }
            TunnelError::Refused { status: 403, .. } => hints.push(
                "the identity needs ec2-instance-connect:OpenTunnel on the endpoint; check the credentials and \
                 the clock (aws sts get-caller-identity)"
                    .into(),
            ),
            TunnelError::Refused { status: 429, .. } => {
                hints.push("an endpoint takes 20 connections at a time: close some, or try again".into())
            }
            TunnelError::Refused { request_id: Some(id), .. } => {
                hints.push(format!("AWS request id {id}"));
            }
            TunnelError::Duration { .. } => hints.push(
                "EC2 Instance Connect Endpoint tunnels last an hour at most; `hop forward` reconnects by itself".into(),
            ),
            _ => {}
        }
        hints.push(doctor);
        hints
    }
}

/// An open tunnel: the byte stream to `ip:port` and how it ended.
pub struct Opened {
    pub stream: DuplexStream,
    pub ending: Ending,
}

/// How a tunnel ended, once it has: None while it runs.
#[derive(Clone)]
pub struct Ending(watch::Receiver<Option<Result<(), TunnelError>>>);

impl Ending {
    /// The tunnel's error, if it ended with one within `within` (a stream that broke is
    /// explained by the tunnel when the endpoint closed it).
    pub async fn error(&mut self, within: Duration) -> Option<TunnelError> {
        let _ = tokio::time::timeout(within, self.0.wait_for(|s| s.is_some())).await;
        self.0.borrow().clone().and_then(Result::err)
    }
}

/// Sign a URL for `target` with `credentials` now, open the websocket (bounded by `within`)
/// and start the task that carries the bytes.
pub async fn open(target: &Target, credentials: &Credentials, within: Duration) -> Result<Opened, TunnelError> {
    let tunnel = Tunnel {
        endpoint_id: &target.endpoint_id,
        region: &target.region,
        dns_name: &target.dns_name,
        ip: &target.ip,
        port: target.port,
        max_duration: Some(target.max_duration),
    };
    let url = presign(credentials, &tunnel, SystemTime::now()).map_err(TunnelError::Credentials)?;
    let ws = dial(&url, within).await?;
    let (user, ours) = tokio::io::duplex(LOCAL_BUFFER);
    let (tx, rx) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let pump = Pump { ws, local: ours, max_duration: target.max_duration, opened: Instant::now(), stop };
    let endpoint = target.endpoint_id.clone();
    let handle = tokio::spawn(async move {
        let result = pump.run().await;
        match &result {
            Err(TunnelError::Duration { .. }) => {}
            Err(e) => tracing::debug!("tunnel through {endpoint} ended: {e:?}"),
            Ok(()) => tracing::debug!("tunnel through {endpoint} closed"),
        }
        let _ = tx.send(Some(result));
    });
    let mut live = LIVE.lock().expect("not poisoned");
    live.retain(|(_, h)| !h.is_finished());
    live.push((stop_tx, handle));
    drop(live);
    Ok(Opened { stream: user, ending: Ending(rx) })
}

/// TLS to the URL's host (SNI = host, system roots, which honour SSL_CERT_FILE), the websocket
/// upgrade with hop's User-Agent, no subprotocol, no extension.
async fn dial(url: &str, within: Duration) -> Result<Ws, TunnelError> {
    let mut request = url
        .into_client_request()
        .map_err(|_| TunnelError::Dial("the endpoint's DNS name makes no valid URL".into()))?;
    let agent = format!("hop/{}", env!("CARGO_PKG_VERSION"));
    request.headers_mut().insert("User-Agent", agent.parse().expect("a valid header value"));
    let connector = tokio_tungstenite::Connector::Rustls(super::ssm::channel::tls_config());
    let dialled = tokio::time::timeout(
        within,
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector)),
    )
    .await
    .map_err(|_| TunnelError::Dial(format!("timed out after {}s (--connect-timeout)", within.as_secs())))?;
    match dialled {
        Ok((ws, response)) => {
            let id = response.headers().get("x-amzn-RequestId").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info!("EC2 Instance Connect tunnel open (x-amzn-RequestId {id})");
            Ok(ws)
        }
        Err(WsError::Http(response)) => {
            let request_id = response.headers().get("x-amzn-RequestId").and_then(|v| v.to_str().ok()).map(String::from);
            let body = response.body().as_deref().unwrap_or_default();
            Err(refused(response.status().as_u16(), body, request_id))
        }
        // Never `e` verbatim where it could carry the URL (tungstenite's URL errors do not,
        // but keep to the kinds).
        Err(WsError::Url(_)) => Err(TunnelError::Dial("the endpoint's DNS name makes no valid URL".into())),
        Err(WsError::Io(e)) => Err(TunnelError::Dial(e.to_string())),
        Err(WsError::Tls(e)) => Err(TunnelError::Dial(format!("TLS: {e}"))),
        Err(e) => Err(TunnelError::Dial(e.to_string())),
    }
}

/// A refused upgrade: `{"ErrorCode","Message"}` when the body is that JSON (spec §A.4), else
/// the start of the body as text.
fn refused(status: u16, body: &[u8], request_id: Option<String>) -> TunnelError {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "ErrorCode")]
        code: Option<String>,
        #[serde(rename = "Message")]
        message: Option<String>,
    }
    if let Ok(Body { code, message }) = serde_json::from_slice::<Body>(body)
        && (code.is_some() || message.is_some())
    {
        return TunnelError::Refused { status, code, message: message.unwrap_or_default(), request_id };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = match text.char_indices().nth(BODY_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    TunnelError::Refused { status, code: None, message, request_id }
}

struct Pump {
    ws: Ws,
    local: DuplexStream,
    max_duration: u32,
    opened: Instant,
    /// `finish`: the process is about to exit.
    stop: watch::Receiver<bool>,
}

impl Pump {
    async fn run(self) -> Result<(), TunnelError> {
        let Pump { mut ws, local, max_duration, opened, mut stop } = self;
        let (mut local_rd, mut local_wr) = tokio::io::split(local);
        let mut buf = vec![0u8; FRAME];
        // Bytes for the user, written as it reads them: never blocking this loop, or the user
        // (russh) and this task could each wait for the other to read.
        let mut to_user: VecDeque<bytes::Bytes> = VecDeque::new();
        let mut queued = 0usize;
        let mut user_open = true;
        let result = loop {
            let keeps_up = queued < USER_QUEUE_LIMIT;
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break close(&mut ws).await;
                    }
                }
                written = local_wr.write(to_user.front().map(|b| &b[..]).unwrap_or_default()), if !to_user.is_empty() => {
                    match written {
                        Ok(n) if n > 0 => {
                            queued -= n;
                            let front = to_user.front_mut().expect("not empty");
                            if n == front.len() { to_user.pop_front(); } else { *front = front.slice(n..); }
                        }
                        // The user is gone: end the tunnel as on EOF.
                        _ => {
                            user_open = false;
                            to_user.clear();
                            break close(&mut ws).await;
                        }
                    }
                }
                frame = ws.next(), if keeps_up => match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        if !bytes.is_empty() && user_open {
                            queued += bytes.len();
                            to_user.push_back(bytes);
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        let _ = ws.close(Some(CloseFrame { code: CloseCode::Protocol, reason: "".into() })).await;
                        break Err(TunnelError::Broken("the endpoint sent text, not tunnel data".into()));
                    }
                    // tungstenite queued the pong; send it now, not with the next data.
                    Some(Ok(Message::Ping(_))) => {
                        let _ = ws.flush().await;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) =
                            frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                        break ended(code, reason, max_duration, opened);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Err(TunnelError::Broken(e.to_string())),
                    None => break Err(TunnelError::Broken("the connection ended without a close".into())),
                },
                n = local_rd.read(&mut buf) => match n {
                    // Local EOF: no half-close over the tunnel (spec §A.5); Close 1000, and
                    // never an empty frame.
                    Ok(0) | Err(_) => break close(&mut ws).await,
                    Ok(n) => {
                        if let Err(e) = ws.send(Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]))).await {
                            break Err(TunnelError::Broken(e.to_string()));
                        }
                    }
                },
            }
        };
        // What the endpoint sent before the end still reaches the user (bounded).
        if user_open && !to_user.is_empty() {
            let flush = async {
                for chunk in to_user {
                    local_wr.write_all(&chunk).await?;
                }
                local_wr.flush().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        }
        if let Err(e @ TunnelError::Duration { .. }) = &result {
            tracing::warn!("{}", describe_duration(e));
        }
        result
    }
}

fn describe_duration(e: &TunnelError) -> String {
    match e {
        TunnelError::Duration { seconds, after } => format!(
            "the EC2 Instance Connect Endpoint closed the tunnel after {}s: the tunnel reached its maximum \
             duration ({seconds} s)",
            after.as_secs()
        ),
        _ => String::new(),
    }
}

/// The endpoint's Close: 1000 is the end of the stream (at the duration limit, say so), any
/// other code an error with its reason.
fn ended(code: u16, reason: String, max_duration: u32, opened: Instant) -> Result<(), TunnelError> {
    if reason.to_ascii_lowercase().contains("duration") {
        return Err(TunnelError::Duration { seconds: max_duration, after: opened.elapsed() });
    }
    if code == 1000 { Ok(()) } else { Err(TunnelError::Closed { code, reason }) }
}

/// Close 1000 and wait briefly for the echo (what arrives meanwhile is dropped: the user is
/// done).
async fn close(ws: &mut Ws) -> Result<(), TunnelError> {
    let _ = ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })).await;
    let echo = async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_ECHO, echo).await;
    Ok(())
}

/// Credentials for signing, asked of the command's provider now.
pub fn credentials(c: &aws_credential_types::Credentials) -> Credentials {
    Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().map(String::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            endpoint_id: "eice-0abc".into(),
            region: "us-east-1".into(),
            dns_name: "eice-0abc.1234.ec2-instance-connect-endpoint.us-east-1.amazonaws.com".into(),
            ip: "10.1.1.10".into(),
            port: 22,
            max_duration: 3600,
            endpoint_security_groups: vec!["sg-ep".into()],
            target_security_groups: vec!["sg-web".into()],
            label: "web".into(),
        }
    }

    #[test]
    fn handshake_bodies_are_parsed_or_cut() {
        let t = target();
        let port = br#"{"ErrorCode":"InvalidParameter","Message":"The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request."}"#;
        let e = refused(400, port, None);
        assert_eq!(
            e.message(&t),
            "EC2 Instance Connect Endpoint eice-0abc refused the tunnel to 10.1.1.10:22 (HTTP 400): InvalidParameter: \
             The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request."
        );
        assert_eq!(e.hints(&t), ["`hop doctor web` checks the EC2 Instance Connect Endpoint path"]);
        let long = "x".repeat(1000);
        let TunnelError::Refused { message, code: None, status: 502, .. } = refused(502, long.as_bytes(), None) else {
            panic!()
        };
        assert_eq!(message.chars().count(), BODY_SHOWN + 1);
        let denied = refused(403, br#"{"ErrorCode":"AccessDenied","Message":"nope"}"#, Some("r-1".into()));
        assert!(denied.hints(&t)[0].contains("ec2-instance-connect:OpenTunnel"), "{:?}", denied.hints(&t));
    }

    #[test]
    fn closes_become_errors_with_the_security_group_hint() {
        let t = target();
        let at = Instant::now();
        assert_eq!(ended(1000, String::new(), 3600, at), Ok(()));
        let e = ended(1011, "Unable to connect to target".into(), 3600, at).unwrap_err();
        assert_eq!(
            e.message(&t),
            "EC2 Instance Connect Endpoint eice-0abc: Websocket closed: Unable to connect to target (code 1011)"
        );
        let hint = &e.hints(&t)[0];
        assert!(hint.contains("allow TCP 22 into sg-web (web) from the endpoint's security group sg-ep"), "{hint}");
        let d = ended(1000, "Tunnel duration exceeded".into(), 3600, at).unwrap_err();
        assert!(d.message(&t).ends_with("the tunnel reached its maximum duration (3600 s)"), "{}", d.message(&t));
    }
}
