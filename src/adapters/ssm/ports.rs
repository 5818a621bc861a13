//! Native port forwarding over Session Manager (spec §6): local connections carried by an
//! `AWS-StartPortForwardingSession[ToRemoteHost]` data channel, multiplexed with smux v1 when
//! the agent supports it (many connections per session), one at a time otherwise (basic mode).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::channel::Channel;
use crate::domain::ssm::engine::FLAG_DISCONNECT_TO_PORT;
use crate::domain::ssm::smux::{Cmd, Frame, Parser, StreamIds};

/// PSH data per frame: below the library's 32 KiB maximum (§6.4).
const FRAME_DATA: usize = 16 * 1024;
/// smux keep-alive interval when the agent needs it (§6.4).
const NOP_EVERY: Duration = Duration::from_secs(10);
/// Frames queued towards the agent, and per stream towards its local connection.
const QUEUE: usize = 256;

/// Serve `listener` over `channel` until the session ends; the reason is returned.
pub async fn serve(listener: &TcpListener, channel: Channel) -> String {
    if channel.request.mux() {
        let keepalive = channel.request.smux_keepalive();
        serve_mux(listener, channel, keepalive).await
    } else {
        serve_basic(listener, channel).await
    }
}

type Streams = Arc<Mutex<HashMap<u32, mpsc::Sender<Vec<u8>>>>>;

fn frame(cmd: Cmd, stream: u32, data: &[u8]) -> Vec<u8> {
    Frame { cmd, stream, data: data.to_vec() }.encode().expect("frames are cut below 64 KiB")
}

/// Mux mode: the smux client role (§6.4). Each local connection is a stream (ids 3, 5, …);
/// FIN is a full close either way.
async fn serve_mux(listener: &TcpListener, channel: Channel, keepalive: bool) -> String {
    let (mut rd, mut wr) = tokio::io::split(channel.stream);
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let streams: Streams = Arc::default();
    let writer = async {
        while let Some(f) = out_rx.recv().await {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
        "the data channel closed".to_string()
    };
    let reader = async {
        let mut parser = Parser::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return "the Session Manager session ended".to_string(),
                Ok(n) => n,
            };
            parser.push(&buf[..n]);
            loop {
                let f = match parser.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return format!("smux protocol error from the agent: {e}"),
                };
                let tx = streams.lock().expect("not poisoned").get(&f.stream).cloned();
                match (f.cmd, tx) {
                    (Cmd::Psh, Some(tx)) => {
                        // A full queue waits: smux v1 has no per-stream flow control.
                        let _ = tx.send(f.data).await;
                    }
                    // Dropping the sender ends the local connection after what is queued.
                    (Cmd::Fin, Some(_)) => drop(streams.lock().expect("not poisoned").remove(&f.stream)),
                    // NOPs, SYNs (the agent opens none) and frames for forgotten streams.
                    _ => {}
                }
            }
        }
    };
    let nops = async {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + NOP_EVERY, NOP_EVERY);
        loop {
            every.tick().await;
            if keepalive && out.send(frame(Cmd::Nop, 0, &[])).await.is_err() {
                return "the data channel closed".to_string();
            }
        }
    };
    let accept = async {
        let mut ids = StreamIds::default();
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => return format!("cannot accept: {e}"),
            };
            let Some(id) = ids.next() else { return "smux stream ids exhausted".to_string() };
            let (tx, rx) = mpsc::channel(QUEUE);
            streams.lock().expect("not poisoned").insert(id, tx);
            tracing::info!("{peer}: smux stream {id}");
            if out.send(frame(Cmd::Syn, id, &[])).await.is_err() {
                return "the data channel closed".to_string();
            }
            tokio::spawn(stream(tcp, id, rx, out.clone(), streams.clone()));
        }
    };
    tokio::select! {
        why = writer => why,
        why = reader => why,
        why = nops => why,
        why = accept => why,
    }
}

/// One local connection as smux stream `id`.
async fn stream(
    tcp: TcpStream,
    id: u32,
    mut down: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Vec<u8>>,
    streams: Streams,
) {
    let _ = tcp.set_nodelay(true);
    let (mut r, mut w) = tcp.into_split();
    let up = async {
        let mut buf = vec![0u8; FRAME_DATA];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.send(frame(Cmd::Psh, id, &buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let down = async {
        while let Some(data) = down.recv().await {
            if w.write_all(&data).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    // Whichever side ended, the stream is over (FIN is a full close): tell the agent unless
    // it already closed it.
    if streams.lock().expect("not poisoned").remove(&id).is_some() {
        let _ = out.send(frame(Cmd::Fin, id, &[])).await;
    }
}

/// Basic mode (agents up to 3.0.196.0): one local connection at a time; when it ends, the
/// DisconnectToPort flag tells the agent to close its side and re-dial on the next data.
async fn serve_basic(listener: &TcpListener, channel: Channel) -> String {
    let Channel { stream: mut session, flags, .. } = channel;
    let mut down = vec![0u8; 32 * 1024];
    let mut up = vec![0u8; 16 * 1024];
    loop {
        let (mut tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => return format!("cannot accept: {e}"),
        };
        tracing::info!("{peer}: forwarded (basic mode: one connection at a time)");
        loop {
            tokio::select! {
                n = tcp.read(&mut up) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if session.write_all(&up[..n]).await.is_err() {
                            return "the Session Manager session ended".to_string();
                        }
                    }
                },
                n = session.read(&mut down) => match n {
                    Ok(0) | Err(_) => return "the Session Manager session ended".to_string(),
                    Ok(n) => {
                        if tcp.write_all(&down[..n]).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = flags.send(FLAG_DISCONNECT_TO_PORT);
    }
}
