//! `hop proxy`: bridge stdin/stdout to a TCP port of the target, reached through the chain's
//! last SSH connection (the hop before the target), so OpenSSH's own `ssh`, `scp` and `rsync`
//! can use hop's route with `ProxyCommand hop proxy %n`.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::client::{Chain, SshError};

/// Open `address:port` from the last hop of `chain` and copy both ways until either side ends.
pub async fn bridge<I, O>(chain: &Chain, address: &str, port: u16, mut input: I, mut output: O) -> Result<(), SshError>
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    let channel =
        chain.target().channel_open_direct_tcpip(address.to_string(), port as u32, "127.0.0.1", 0).await.map_err(
            |e| SshError::Protocol {
                label: address.to_string(),
                message: format!("cannot open {address}:{port}: {e}"),
            },
        )?;
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
