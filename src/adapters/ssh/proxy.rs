//! `hop proxy`: bridge stdin/stdout to a TCP port of the target, reached through the chain's
//! last SSH connection (the hop before the target), so OpenSSH's own `ssh`, `scp` and `rsync`
//! can use hop's route with `ProxyCommand hop proxy %n`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::client::{Chain, SshError};

/// Open `address:port` from the last hop of `chain` (within `within`) and copy both ways until
/// either side ends. `label` names the target in errors.
pub async fn bridge<I, O>(
    chain: &Chain,
    label: &str,
    address: &str,
    port: u16,
    within: Duration,
    mut input: I,
    mut output: O,
) -> Result<(), SshError>
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    let error = |reason: String| SshError::Connect {
        label: label.to_string(),
        address: address.to_string(),
        port,
        step: format!("opening a connection to {address}:{port} through {}", chain.target_label()),
        reason,
    };
    let channel = tokio::time::timeout(within, chain.open(address, port, ("127.0.0.1", 0)))
        .await
        .map_err(|_| error(format!("timed out after {}s (--connect-timeout)", within.as_secs())))?
        .map_err(error)?;
    let (mut reader, writer) = channel.split();
    let mut remote_in = writer.make_writer();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut input, &mut remote_in).await;
        let _ = remote_in.shutdown().await;
        let _ = writer.eof().await;
    });
    let mut down = reader.make_reader();
    let _ = tokio::io::copy(&mut down, &mut output).await;
    let _ = output.flush().await;
    up.abort();
    Ok(())
}
