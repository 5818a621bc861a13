//! `hop forward`: TCP listeners whose connections become direct-tcpip channels opened on the
//! target, all over one supervised SSH connection.
//!
//! Head-of-line safety: russh hands channel data to each channel through a bounded queue and
//! waits when it is full, so one channel nobody reads would stall the whole connection (every
//! other forward, keepalives, inner hops). And it refills each channel's window as data
//! arrives, not as it is consumed, so SSH flow control never slows a sender down for a slow
//! local client. So every channel has a task that drains it at once into that connection's
//! own buffer. A client that keeps reading may fall behind (its buffer grows, bounded by
//! `HARD_LIMIT`); one that has read nothing for `STALL_TIMEOUT` while more than
//! `SLOW_CLIENT_LIMIT` waits for it is closed, instead of holding everything up.
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
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::client::{Chain, SshError};

/// Unread bytes above which a client that makes no progress is closed.
pub const SLOW_CLIENT_LIMIT: usize = 16 * 1024 * 1024;
/// How long a client over `SLOW_CLIENT_LIMIT` may read nothing.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Unread bytes no client may leave behind, progressing or not (memory bound).
pub const HARD_LIMIT: usize = 256 * 1024 * 1024;
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
/// `open_timeout` bounds a client's SOCKS request and the channel open on the target.
pub async fn serve(
    listener: TcpListener,
    destination: Destination,
    link: Link,
    stats: Arc<Stats>,
    open_timeout: Duration,
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
            match connection(stream, peer, destination, link, open_timeout).await {
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
    let (up, down) = bridge(stream, channel).await;
    tracing::info!("forward: {peer} → {host}:{port} closed, {up} bytes up, {down} down");
    Ok((up, down))
}

/// Copy both ways until both directions end. Returns (bytes up, bytes down).
pub async fn bridge(stream: TcpStream, channel: russh::Channel<russh::client::Msg>) -> (u64, u64) {
    let (mut from_client, mut to_client) = stream.into_split();
    let (mut reader, writer) = channel.split();
    // Down: the channel is drained at once into an unbounded queue (so russh never waits on
    // this channel); a separate task writes to the client at the client's pace.
    let buffered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Milliseconds since `started` of the client's last read progress.
    let progress = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<bytes::Bytes>();
    let (drain_buffered, drain_progress) = (buffered.clone(), progress.clone());
    let drain = tokio::spawn(async move {
        while let Some(msg) = reader.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => {
                    let unread = drain_buffered.fetch_add(data.len(), Ordering::Relaxed) + data.len();
                    let last = Duration::from_millis(drain_progress.load(Ordering::Relaxed));
                    let idle = started.elapsed().saturating_sub(last);
                    if unread > HARD_LIMIT || (unread > SLOW_CLIENT_LIMIT && idle > STALL_TIMEOUT) {
                        tracing::warn!(
                            "forward: a client stopped reading ({} MiB unread, idle {}s): closing it",
                            unread >> 20,
                            idle.as_secs()
                        );
                        break;
                    }
                    if tx.send(data).is_err() {
                        break;
                    }
                }
                russh::ChannelMsg::Eof | russh::ChannelMsg::Close => break,
                _ => {}
            }
        }
    });
    let down = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(data) = rx.recv().await {
            if to_client.write_all(&data).await.is_err() {
                break;
            }
            buffered.fetch_sub(data.len(), Ordering::Relaxed);
            progress.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            n += data.len() as u64;
        }
        let _ = to_client.shutdown().await;
        n
    });
    // Up: client → channel; russh's writer waits for window on its own, stalling nothing else.
    let mut remote_in = writer.make_writer();
    let up = tokio::io::copy(&mut from_client, &mut remote_in).await.unwrap_or(0);
    let _ = remote_in.shutdown().await;
    let _ = writer.eof().await;
    let down = down.await.unwrap_or(0);
    drain.abort();
    (up, down)
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
