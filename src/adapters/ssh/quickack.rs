//! The TCP stream to the first hop, acknowledging what it reads at once (TCP_QUICKACK) during
//! the connection's first exchanges.
//!
//! sshd leaves Nagle's algorithm on for sessions without a terminal. When it answers one client
//! flight with packets written one after the other (SERVICE_ACCEPT, then USERAUTH_SUCCESS once
//! the signature is checked; a channel's SUCCESS, then its EOF, exit status and CLOSE; an inner
//! hop's key exchange relayed in pieces), each small packet after the first waits until the
//! first is acknowledged, and Linux delays that acknowledgement by up to 40 ms when the client
//! has nothing to send back: 40 ms stalls, several per connect. Asking for a quick ACK after a
//! read sends the pending one now; Linux does not keep the setting, hence after every read.
//! Only the first reads: later bulk transfers keep the kernel's delayed ACKs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads acknowledged at once: the handshake, authentication, the first channels and the end
/// of a short command take a few dozen.
const QUICK_READS: u32 = 256;

pub struct QuickAck {
    inner: TcpStream,
    left: u32,
}

impl QuickAck {
    pub fn new(inner: TcpStream) -> QuickAck {
        QuickAck { inner, left: QUICK_READS }
    }
}

#[cfg(target_os = "linux")]
fn ack_now(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this stream owns, with a pointer to a c_int and its size.
    // A failure only means the usual delayed ACK.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn ack_now(_stream: &TcpStream) {}

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before && self.left > 0 {
            self.left -= 1;
            ack_now(&self.inner);
        }
        read
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Whether the socket is in quick-ACK mode (Linux reports "not in interactive mode").
    fn quick(stream: &TcpStream) -> bool {
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on an open socket into a c_int of the given size.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", io::Error::last_os_error());
        on != 0
    }

    /// A client that answers each byte at once is "interactive" to Linux, which then delays
    /// its ACKs (hoping to send them with the answer); after each read through QuickAck the
    /// socket is in quick-ACK mode again, through a plain stream it is not.
    #[tokio::test(flavor = "current_thread")]
    async fn a_read_leaves_the_socket_acking_at_once() {
        async fn exchange(quick_ack: bool) -> Vec<bool> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 1];
                for _ in 0..8 {
                    s.write_all(b"x").await.unwrap();
                    s.read_exact(&mut b).await.unwrap();
                }
            });
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut client = QuickAck { inner: tcp, left: if quick_ack { QUICK_READS } else { 0 } };
            let mut b = [0u8; 1];
            let mut seen = Vec::new();
            for _ in 0..8 {
                client.read_exact(&mut b).await.unwrap();
                seen.push(quick(&client.inner));
                client.write_all(b"y").await.unwrap();
            }
            server.await.unwrap();
            seen
        }
        // Linux: quick ACKs on the first exchange, delayed ones from the second on.
        let plain = exchange(false).await;
        assert!(!plain.last().unwrap(), "a plain stream delays its ACKs: {plain:?}");
        let quick = exchange(true).await;
        assert!(quick.iter().all(|q| *q), "QuickAck asks for a quick ACK after each read: {quick:?}");
    }
}
