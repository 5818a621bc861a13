//! Running a command (or a shell without a terminal) on the target: stdin streamed binary-safe
//! with EOF propagated, stdout and stderr kept apart, output read until the channel closes
//! (not merely until the exit status arrives), the remote status returned as hop's.

use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::client::{Chain, SshError};

/// The exit status the way OpenSSH reports it: the remote status, 128 + n for a signal,
/// 255 when the channel closed without either.
pub async fn run<I, O, E>(
    chain: &Chain,
    command: Option<&str>,
    forward_agent: bool,
    mut stdin: I,
    mut stdout: O,
    mut stderr: E,
) -> Result<u8, SshError>
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let channel = start(chain, command, forward_agent, None).await?;
    let (mut reader, writer) = channel.split();
    // stdin → channel in its own task, so a slow or endless stdin never holds back output.
    let mut remote_in = writer.make_writer();
    let pump = tokio::spawn(async move {
        let copied = tokio::io::copy(&mut stdin, &mut remote_in).await;
        let _ = remote_in.shutdown().await;
        drop(remote_in);
        let _ = writer.eof().await;
        copied
    });
    let mut status: Option<u8> = None;
    while let Some(msg) = reader.wait().await {
        match msg {
            ChannelMsg::Data { data } => write_ignoring_pipe(&mut stdout, &data).await,
            ChannelMsg::ExtendedData { data, ext: 1 } => write_ignoring_pipe(&mut stderr, &data).await,
            ChannelMsg::ExitStatus { exit_status } => status = Some((exit_status & 0xff) as u8),
            ChannelMsg::ExitSignal { signal_name, core_dumped, error_message, .. } => {
                let n = signal_number(&signal_name);
                if !error_message.is_empty() {
                    write_ignoring_pipe(&mut stderr, format!("{error_message}\n").as_bytes()).await;
                }
                tracing::info!(?signal_name, core_dumped, "remote command killed by a signal");
                status = Some(128u8.saturating_add(n));
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
    pump.abort();
    Ok(status.unwrap_or(255))
}

/// What a PTY request carries: `$TERM`, (columns, rows), the local terminal's modes.
struct PtyRequest<'a> {
    term: &'a str,
    size: (u32, u32),
    modes: &'a [(russh::Pty, u32)],
}

/// Open a session channel on the target and start CMD (or a shell) in it: on a PTY when
/// asked, with the agent forwarded when asked.
async fn start(
    chain: &Chain,
    command: Option<&str>,
    forward_agent: bool,
    pty: Option<PtyRequest<'_>>,
) -> Result<russh::Channel<russh::client::Msg>, SshError> {
    let protocol = |e: russh::Error| SshError::Protocol { label: "target".into(), message: e.to_string() };
    let within = chain.open_timeout;
    let channel = tokio::time::timeout(within, chain.target().channel_open_session())
        .await
        .map_err(|_| SshError::Protocol {
            label: chain.target_label().to_string(),
            message: format!("opening a session timed out after {}s (--connect-timeout)", within.as_secs()),
        })?
        .map_err(protocol)?;
    if let Some(PtyRequest { term, size: (cols, rows), modes }) = pty {
        channel.request_pty(true, term, cols, rows, 0, 0, modes).await.map_err(protocol)?;
    }
    if forward_agent {
        channel.agent_forward(true).await.map_err(protocol)?;
    }
    match command {
        Some(cmd) => channel.exec(true, cmd).await.map_err(protocol)?,
        None => channel.request_shell(true).await.map_err(protocol)?,
    }
    Ok(channel)
}

/// A reader that went away (`hop web -- cat big | head`) is not hop's error: keep draining the
/// channel so the remote side is not stalled, and drop the bytes.
async fn write_ignoring_pipe<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) {
    if let Err(e) = w.write_all(data).await {
        tracing::debug!("local output closed: {e}");
    }
}

fn signal_number(sig: &russh::Sig) -> u8 {
    use russh::Sig::*;
    match sig {
        HUP => 1,
        INT => 2,
        QUIT => 3,
        ILL => 4,
        ABRT => 6,
        FPE => 8,
        KILL => 9,
        USR1 => 10,
        SEGV => 11,
        PIPE => 13,
        ALRM => 14,
        TERM => 15,
        _ => 0,
    }
}

/// An interactive session on a PTY: the local terminal in raw mode (restored on every exit
/// path), its modes and `$TERM` sent with the PTY request, window size changes forwarded.
pub async fn interactive(
    chain: &Chain,
    command: Option<&str>,
    term: &str,
    forward_agent: bool,
) -> Result<u8, SshError> {
    use tokio::signal::unix::{SignalKind, signal};

    let size = crate::adapters::term::window_size().unwrap_or((80, 24));
    let raw = crate::adapters::term::RawMode::enable();
    let modes = raw.as_ref().map(|r| r.modes()).unwrap_or_default();
    let channel = start(chain, command, forward_agent, Some(PtyRequest { term, size, modes: &modes })).await?;
    let (mut reader, writer) = channel.split();
    let writer = std::sync::Arc::new(writer);
    let input = writer.clone();
    let pump = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut remote_in = input.make_writer();
        let _ = tokio::io::copy(&mut stdin, &mut remote_in).await;
        let _ = input.eof().await;
    });
    let mut winch = signal(SignalKind::window_change()).ok();
    let mut term_signals = (signal(SignalKind::terminate()).ok(), signal(SignalKind::hangup()).ok());
    let mut stdout = tokio::io::stdout();
    let mut status: Option<u8> = None;
    loop {
        tokio::select! {
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    write_ignoring_pipe(&mut stdout, &data).await;
                    let _ = stdout.flush().await;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some((exit_status & 0xff) as u8),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => status = Some(128u8.saturating_add(signal_number(&signal_name))),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            Some(()) = async { match winch.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                if let Some((c, r)) = crate::adapters::term::window_size() {
                    let _ = writer.window_change(c, r, 0, 0).await;
                }
            }
            Some(()) = async { match term_signals.0.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => break,
            Some(()) = async { match term_signals.1.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => break,
        }
    }
    pump.abort();
    drop(raw);
    Ok(status.unwrap_or(255))
}
