//! `hop proxy TARGET [PORT]`: stdin/stdout bridged to TARGET:PORT over the route, for
//! `ProxyCommand hop proxy %n`, `scp` and `rsync`. Only the hops before the target are SSH
//! connections; the target's port is reached as plain TCP from the last of them.

use crate::adapters::ssh::reuse;
use crate::adapters::ssh::{self, client, proxy};
use crate::adapters::ssm;
use crate::domain::route::Route;
use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    target: &str,
    port: u16,
    push_key: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    let (_, instance, route) = super::target_route(settings, target).await?;
    // `--push-key PUBKEY` (spec §B.3 point 6): the user's own key, for the ssh on top of this
    // bridge to log in with, pushed for the target and its login user before bridging.
    if let (Some(file), Some(login)) = (push_key, route_login(&route)) {
        crate::adapters::eic::push_file(settings, file, &instance.id, &instance.region, &login.user).await?;
    }
    if let Route::Ssm { target: endpoint, region, .. } = &route {
        // The data channel is the connection: AWS-StartSSHSession to PORT on the instance.
        let document = ssm::Document::Ssh { port };
        let mut channel = super::connect::open_ssm(settings, &endpoint.id, region, &document).await?;
        let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        let _ = tokio::io::copy_bidirectional(&mut channel.stream, &mut stdio).await;
        return Ok(0);
    }
    let Some(hops) = ssh::hops(&route) else {
        let Route::Unreachable { reason } = &route else { unreachable!("only unreachable routes have no hops") };
        return Err(HopError::Ssh { message: format!("unreachable: {reason}"), hints: vec![] }.into());
    };
    let (last, before) = hops.split_last().expect("a route has a target");
    let trust = super::connect::trust(settings);
    if before.is_empty() {
        // Direct route: nothing to tunnel through.
        let mut tcp = tokio::time::timeout(
            settings.connect_timeout,
            tokio::net::TcpStream::connect((last.address.as_str(), port)),
        )
        .await
        .map_err(|_| HopError::Ssh {
            message: format!("cannot connect to {}:{port}: timed out", last.address),
            hints: vec![],
        })?
        .map_err(|e| HopError::Ssh {
            message: format!("cannot connect to {}:{port}: {e}", last.address),
            hints: vec![],
        })?;
        let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut stdio).await;
        return Ok(0);
    }
    // A bridge never forwards the agent: the ssh on top of it decides that itself. With reuse,
    // the hops before the target come from this user's connection master.
    let none = client::FinalHop::default();
    let via_master = match &settings.reuse {
        Some(r) => reuse::connect_jump(r, before, &trust, &none)
            .await
            .inspect_err(|why| tracing::debug!("reuse: {why}; connecting directly"))
            .ok(),
        None => None,
    };
    let chain = match via_master {
        Some(chain) => chain,
        None => client::connect(before, &trust, settings.connect_timeout, &none, None).await,
    }
    .map_err(|e| super::connect::ssh_error(e, target))?;
    let stdio = (tokio::io::stdin(), tokio::io::stdout());
    proxy::bridge(&chain, &last.label, &last.address, port, settings.connect_timeout, stdio.0, stdio.1)
        .await
        .map_err(|e| super::connect::ssh_error(e, target))?;
    Ok(0)
}

/// The target's login on `route` (None: unreachable).
fn route_login(route: &Route) -> Option<&crate::domain::route::Login> {
    match route {
        Route::Direct { target }
        | Route::Jump { target, .. }
        | Route::Chain { target, .. }
        | Route::Ssm { target, .. }
        | Route::Eice { target, .. } => Some(&target.login),
        Route::Unreachable { .. } => None,
    }
}
