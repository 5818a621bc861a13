//! `hop forward`: TCP listeners whose connections become direct-tcpip channels opened on the
//! target, all over one supervised SSH connection.
//!
//! Flow control, per channel (DESIGN §5): every channel has a task that moves what russh
//! receives into that connection's own queue at once, so russh, whose per-channel queues are
//! bounded and would otherwise wait (stalling every other forward, keepalives and inner hops),
//! never waits on one slow client. Once the local client is a window behind, the channel's SSH
//! window is refilled only as it takes the data (vendor/russh patch 0001), so a slow reader slows
//! its own channel's sender and no other, and at most two windows wait in hop for it. A client that takes nothing for the
//! stall timeout (`forward_stall_timeout`) while data waits is cut with a reset, never a clean
//! end: a truncated stream must never look complete. So is every other abnormal end (the SSH
//! connection lost mid-stream, a peer that overruns its window).
//!
//! Supervision: one task owns the connection. When it dies (the bastion went away, keepalive
//! failed), the listeners stay open, the task reconnects with backoff and logs one line per
//! change; connections accepted meanwhile wait (up to `WAIT_FOR_LINK`) instead of being
//! refused. Only transient failures are retried (a refused host key or key ends the command),
//! and after `REDISCOVER_AFTER` failures in a row the route is looked up again in EC2. Each
//! connection's SOCKS request and channel open are bounded by `--connect-timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::client::{Chain, SshError};

/// Default of `forward_stall_timeout`: how long a local client may take nothing while data
/// waits for it before hop resets its connection.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Unread bytes no client may leave behind: more than the windows hop granted (one before the
/// channel switched to refill-on-consume, one after) means the peer ignores flow control.
pub const HARD_LIMIT: usize = 64 * 1024 * 1024;
/// Bytes the client takes before hop reports them to the session as consumed (sooner when
/// nothing more waits): well under the eighth of a window at which russh refills it.
const CONSUMED_BATCH: usize = 1024 * 1024;
/// The most hop reads from a local client at once; each read goes to russh as it is (no copy),
/// which cuts it into packets of the peer's maximum. 8 KiB, not the 32 KiB OpenSSH's sshd
/// accepts on a direct-tcpip channel: on the namespace bench (`scripts/bench-forward.sh`,
/// interleaved runs) 32 and 64 KiB reads moved uploads 20–35 % slower than 8 KiB ones (median
/// 158 against 208 MiB/s) and saved no CPU on hop or on either sshd (issue #11).
const READ_SIZE: usize = 8 * 1024;
/// How long a connection accepted while reconnecting waits for the link.
pub const WAIT_FOR_LINK: Duration = Duration::from_secs(30);

/// The current SSH connection, None while (re)connecting.
pub type Link = watch::Receiver<Option<Arc<Chain>>>;

/// Consecutive failed reconnects after which the route is looked up again in EC2 (a stopped
/// and started bastion has a new public IP), and again every as many failures after that.
pub const REDISCOVER_AFTER: u32 = 3;

/// Keep a connection up: publish `first`, wait for it to die, reconnect with backoff. `connect`
/// is told when to re-discover the route instead of using the one it has. Only transient
/// failures are retried: it returns the first permanent one (a host key or keys refused,
/// which trying again cannot fix). Otherwise runs until its caller drops it.
pub async fn supervise<F, Fut>(first: Chain, connect: F, link: watch::Sender<Option<Arc<Chain>>>) -> SshError
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = Result<Chain, SshError>>,
{
    let mut backoff = Duration::from_millis(250);
    let mut last_error: Option<String> = None;
    let mut failures = 0u32;
    let mut current = Some(first);
    loop {
        if let Some(chain) = current.take() {
            tracing::warn!("forward: connected");
            backoff = Duration::from_millis(250);
            last_error = None;
            failures = 0;
            let chain = Arc::new(chain);
            let _ = link.send(Some(chain.clone()));
            while !chain.handles.iter().any(|h| h.is_closed()) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = link.send(None);
            tracing::warn!("forward: connection lost; reconnecting (listeners stay open)");
        }
        let rediscover = failures > 0 && failures.is_multiple_of(REDISCOVER_AFTER);
        if rediscover {
            tracing::warn!("forward: {failures} reconnects failed; looking the route up again");
        }
        match connect(rediscover).await {
            Ok(chain) => current = Some(chain),
            Err(e) if e.is_permanent() => return e,
            Err(e) => {
                failures += 1;
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("forward: {msg}; retrying");
                    last_error = Some(msg);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Where an accepted connection goes, as seen from the target.
#[derive(Debug, Clone)]
pub enum Destination {
    Fixed {
        host: String,
        port: u16,
    },
    /// Ask the client (SOCKS 4, 4a or 5).
    Socks,
}

/// Counters for the summary hop prints when it stops.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub errors: AtomicU64,
    /// Connections still open (Ctrl-C waits for these, bounded).
    pub active: AtomicUsize,
}

/// Accept connections on `listener` until the task is dropped; each gets its own task.
/// `open_timeout` bounds a client's SOCKS request and the channel open on the target; `stall`
/// is `forward_stall_timeout` (see `bridge`).
pub async fn serve(
    listener: TcpListener,
    destination: Destination,
    link: Link,
    stats: Arc<Stats>,
    open_timeout: Duration,
    stall: Duration,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("forward: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (destination, link, stats) = (destination.clone(), link.clone(), stats.clone());
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            match connection(stream, peer, destination, link, open_timeout, stall).await {
                Ok((up, down)) => {
                    stats.bytes_up.fetch_add(up, Ordering::Relaxed);
                    stats.bytes_down.fetch_add(down, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("forward: {peer}: {e}");
                }
            }
            stats.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    destination: Destination,
    mut link: Link,
    open_timeout: Duration,
    stall: Duration,
) -> Result<(u64, u64), String> {
    let (host, port, socks) = match destination {
        Destination::Fixed { host, port } => (host, port, None),
        Destination::Socks => {
            let (host, port, version) = tokio::time::timeout(open_timeout, socks_request(&mut stream))
                .await
                .map_err(|_| format!("SOCKS: no complete request within {}s", open_timeout.as_secs()))??;
            (host, port, Some(version))
        }
    };
    let chain = tokio::time::timeout(WAIT_FOR_LINK, link.wait_for(|c| c.is_some()))
        .await
        .map_err(|_| format!("no connection to the target within {}s", WAIT_FOR_LINK.as_secs()))?
        .map_err(|_| "the forwarder is stopping".to_string())?
        .clone()
        .expect("waited for Some");
    let via = chain.target_label().to_string();
    let originator = (peer.ip().to_string(), u32::from(peer.port()));
    let opened = super::client::open_bounded(chain, host.clone(), port, originator, open_timeout).await;
    let channel = match opened {
        Ok(c) => c,
        Err(e) => {
            if let Some(v) = socks {
                let _ = stream.write_all(&socks_reply(v, false)).await;
            }
            return Err(format!("{via} cannot open {host}:{port}: {e}"));
        }
    };
    if let Some(v) = socks {
        stream.write_all(&socks_reply(v, true)).await.map_err(|e| e.to_string())?;
    }
    tracing::info!("forward: {peer} → {host}:{port} open");
    let bridged = bridge(stream, channel, stall).await;
    if matches!(bridged, Err(Cut::Stalled(_) | Cut::Overrun(_))) {
        release_memory();
    }
    let (up, down) = bridged.map_err(|cut| format!("{host}:{port}: {cut}"))?;
    tracing::info!("forward: {peer} → {host}:{port} closed, {up} bytes up, {down} down");
    Ok((up, down))
}

/// Give the buffers of a connection cut with data waiting back to the system. Up to two windows
/// waited in hop for that client; glibc keeps freed heap memory in its arenas, so without this a
/// long-running forwarder would stay at that high-water mark after every stalled client.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the kernel; it
    // touches no memory in use and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Why a forwarded connection was reset instead of ending cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Cut {
    #[error("the client took nothing for {}s with data waiting: reset", .0.as_secs())]
    Stalled(Duration),
    #[error("the SSH connection was lost mid-stream: reset")]
    LinkLost,
    #[error("the peer sent {} MiB past its window: reset", .0 >> 20)]
    Overrun(usize),
}

/// What the drain hands the client's side: data (and whether it goes to the client: extended
/// data has no place in a TCP stream, but its window must come back all the same), then how
/// the channel ended.
enum Down {
    Data(bytes::Bytes, bool),
    End(Result<(), Cut>),
}

/// Copy both ways until both directions end. Returns (bytes up, bytes down), or why the
/// client's connection was reset (see the module's flow-control notes).
pub async fn bridge(
    mut stream: TcpStream,
    channel: russh::Channel<russh::client::Msg>,
    stall: Duration,
) -> Result<(u64, u64), Cut> {
    let (mut reader, writer) = channel.split();
    // From here on the remote may send this channel only what the client has taken, plus a
    // window. A session that cannot take the request is gone, and the drain below says so.
    let _ = writer.refill_window_on_consume().await;
    let buffered = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Down>();
    let drain_buffered = buffered.clone();
    let drain = tokio::spawn(async move {
        let end = loop {
            let (data, deliver) = match reader.wait().await {
                Some(russh::ChannelMsg::Data { data }) => (data, true),
                Some(russh::ChannelMsg::ExtendedData { data, .. }) => (data, false),
                Some(russh::ChannelMsg::Eof | russh::ChannelMsg::Close) => break Ok(()),
                Some(_) => continue,
                // The channel ended without EOF or close: its connection is gone.
                None => break Err(Cut::LinkLost),
            };
            let unread = drain_buffered.fetch_add(data.len(), Ordering::Relaxed) + data.len();
            if unread > HARD_LIMIT {
                break Err(Cut::Overrun(unread));
            }
            if tx.send(Down::Data(data, deliver)).is_err() {
                return;
            }
        };
        let _ = tx.send(Down::End(end));
    });
    let result = {
        let (mut from_client, mut to_client) = stream.split();
        // Down: to the client at its pace; what it takes goes back to the remote as window.
        let down = async {
            let (mut n, mut taken) = (0u64, 0usize);
            loop {
                match rx.recv().await {
                    Some(Down::Data(data, deliver)) => {
                        // The stall clock restarts whenever the client takes anything.
                        let mut at = if deliver { 0 } else { data.len() };
                        while at < data.len() {
                            match tokio::time::timeout(stall, to_client.write(&data[at..])).await {
                                Err(_) => return Err(Cut::Stalled(stall)),
                                // The client closed or reset its end: nothing more to deliver,
                                // and no failure of hop's; the remote learns it at the close.
                                Ok(Err(_)) | Ok(Ok(0)) => return Ok(n),
                                Ok(Ok(k)) => at += k,
                            }
                        }
                        if deliver {
                            n += data.len() as u64;
                        }
                        buffered.fetch_sub(data.len(), Ordering::Relaxed);
                        // Reported in batches: each report is a message to the session task,
                        // and one per packet halved the download rate (measured).
                        taken += data.len();
                        if taken >= CONSUMED_BATCH || rx.is_empty() {
                            let _ = writer.consumed(std::mem::take(&mut taken)).await;
                        }
                    }
                    Some(Down::End(Ok(()))) => {
                        // The remote's EOF, as a FIN.
                        let _ = to_client.shutdown().await;
                        return Ok(n);
                    }
                    Some(Down::End(Err(cut))) => return Err(cut),
                    None => return Err(Cut::LinkLost),
                }
            }
        };
        // Up: client → channel, in reads of up to `READ_SIZE` handed to russh without a copy;
        // russh waits for the remote's window on its own.
        let up = async {
            let mut buf = bytes::BytesMut::new();
            let mut n = 0u64;
            loop {
                buf.reserve(READ_SIZE);
                match from_client.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k as u64,
                }
                if writer.data_bytes(buf.split().freeze()).await.is_err() {
                    break;
                }
            }
            let _ = writer.eof().await;
            n
        };
        tokio::pin!(down, up);
        let mut up_bytes = None;
        let down_result = loop {
            tokio::select! {
                n = &mut up, if up_bytes.is_none() => up_bytes = Some(n),
                d = &mut down => break d,
            }
        };
        match down_result {
            Ok(down_bytes) => {
                let up_bytes = match up_bytes {
                    Some(n) => n,
                    None => up.await,
                };
                Ok((up_bytes, down_bytes))
            }
            Err(cut) => Err(cut),
        }
    };
    drain.abort();
    if result.is_err() {
        // A reset, never a FIN: whatever the client has is not the whole stream.
        let _ = stream.set_zero_linger();
    }
    let _ = writer.close().await;
    result
}

/// Read a SOCKS 5 (CONNECT, no authentication), SOCKS 4 or 4a request: (host, port, version).
/// Domain names are passed on as names, so they are resolved by the target.
async fn socks_request(s: &mut TcpStream) -> Result<(String, u16, u8), String> {
    let io = |e: std::io::Error| format!("SOCKS: {e}");
    let version = s.read_u8().await.map_err(io)?;
    match version {
        5 => {
            let n = s.read_u8().await.map_err(io)? as usize;
            let mut methods = vec![0u8; n];
            s.read_exact(&mut methods).await.map_err(io)?;
            if !methods.contains(&0) {
                let _ = s.write_all(&[5, 0xff]).await;
                return Err("SOCKS5: the client offers no method without authentication".into());
            }
            s.write_all(&[5, 0]).await.map_err(io)?;
            let mut head = [0u8; 4];
            s.read_exact(&mut head).await.map_err(io)?;
            if head[1] != 1 {
                let _ = s.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await;
                return Err(format!("SOCKS5: command {} is not supported (CONNECT only)", head[1]));
            }
            let host = match head[3] {
                1 => {
                    let mut a = [0u8; 4];
                    s.read_exact(&mut a).await.map_err(io)?;
                    std::net::Ipv4Addr::from(a).to_string()
                }
                3 => {
                    let n = s.read_u8().await.map_err(io)? as usize;
                    let mut name = vec![0u8; n];
                    s.read_exact(&mut name).await.map_err(io)?;
                    String::from_utf8(name).map_err(|_| "SOCKS5: the host name is not UTF-8".to_string())?
                }
                4 => {
                    let mut a = [0u8; 16];
                    s.read_exact(&mut a).await.map_err(io)?;
                    std::net::Ipv6Addr::from(a).to_string()
                }
                t => return Err(format!("SOCKS5: address type {t} is not supported")),
            };
            let port = s.read_u16().await.map_err(io)?;
            Ok((host, port, 5))
        }
        4 => {
            let cmd = s.read_u8().await.map_err(io)?;
            let port = s.read_u16().await.map_err(io)?;
            let mut ip = [0u8; 4];
            s.read_exact(&mut ip).await.map_err(io)?;
            read_nul_terminated(s).await?; // user id
            if cmd != 1 {
                let _ = s.write_all(&socks_reply(4, false)).await;
                return Err(format!("SOCKS4: command {cmd} is not supported (CONNECT only)"));
            }
            // 4a: 0.0.0.x (x != 0) means a host name follows.
            let host = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
                read_nul_terminated(s).await?
            } else {
                std::net::Ipv4Addr::from(ip).to_string()
            };
            Ok((host, port, 4))
        }
        v => Err(format!("not a SOCKS request (version byte {v})")),
    }
}

async fn read_nul_terminated(s: &mut TcpStream) -> Result<String, String> {
    let mut out = Vec::new();
    loop {
        let b = s.read_u8().await.map_err(|e| format!("SOCKS: {e}"))?;
        if b == 0 {
            break;
        }
        if out.len() == 255 {
            return Err("SOCKS: field too long".into());
        }
        out.push(b);
    }
    String::from_utf8(out).map_err(|_| "SOCKS: field is not UTF-8".to_string())
}

fn socks_reply(version: u8, ok: bool) -> Vec<u8> {
    match (version, ok) {
        (5, true) => vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        (5, false) => vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0],
        (_, true) => vec![0, 0x5a, 0, 0, 0, 0, 0, 0],
        (_, false) => vec![0, 0x5b, 0, 0, 0, 0, 0, 0],
    }
}
