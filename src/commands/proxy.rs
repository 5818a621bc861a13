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
    let (loaded, instance, route) = super::target_route(settings, target).await?;
    super::refuse_unreachable(settings, &loaded, &instance, &route)?;
    // `--push-key PUBKEY` (spec §B.3 point 6): the user's own key, for the ssh on top of this
    // bridge to log in with, pushed for the target and its login user before bridging.
    if let (Some(file), Some(login)) = (push_key, route_login(&route)) {
        crate::adapters::eic::push_file(settings, file, &instance.id, &instance.region, &login.user).await?;
    }
    if let Route::Eice { endpoint, target: to, .. } = &route {
        return eice(settings, target, endpoint, to, port).await;
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

/// `hop proxy` over an EC2 Instance Connect Endpoint. Port 22: the tunnel IS the TCP connection
/// to the target's sshd, so stdin/stdout are bridged to it; stdin's EOF ends the tunnel with
/// Close 1000 (the AWS CLI's stdin mode misses it and spins, aws-cli #9344). Other ports (the
/// service takes 22 and 3389 only): SSH over the tunnel, then a direct-tcpip channel from the
/// target to its own address, PORT.
async fn eice(
    settings: &Settings,
    target: &str,
    endpoint: &crate::domain::route::EiceVia,
    to: &crate::domain::route::Endpoint,
    port: u16,
) -> anyhow::Result<u8> {
    let label = to.name.clone().unwrap_or_else(|| to.id.clone());
    if port == to.login.port {
        let mut tunnel = super::connect::open_eice(settings, endpoint, to, port, target).await?;
        let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        let _ = tokio::io::copy_bidirectional(&mut tunnel.stream, &mut stdio).await;
        if let Some(why) = tunnel.ending.error(std::time::Duration::from_secs(2)).await {
            let t = super::connect::eice_target(endpoint, to, port, target);
            return Err(HopError::Ssh { message: why.message(&t), hints: why.hints(&t) }.into());
        }
        return Ok(0);
    }
    let trust = super::connect::trust(settings);
    let hops = ssh::hops(&Route::Eice { endpoint: endpoint.clone(), target: to.clone(), reason: String::new() })
        .expect("an EICE route has hops");
    let mut tunnel = super::connect::open_eice(settings, endpoint, to, to.login.port, target).await?;
    let none = client::FinalHop::default();
    let chain = match client::connect(&hops, &trust, settings.connect_timeout, &none, Some(tunnel.stream)).await {
        Ok(chain) => chain,
        Err(e) => {
            if let Some(why) = tunnel.ending.error(std::time::Duration::from_secs(2)).await {
                let t = super::connect::eice_target(endpoint, to, to.login.port, target);
                return Err(HopError::Ssh { message: why.message(&t), hints: why.hints(&t) }.into());
            }
            return Err(super::connect::ssh_error(e, target).into());
        }
    };
    let stdio = (tokio::io::stdin(), tokio::io::stdout());
    proxy::bridge(&chain, &label, &to.address, port, settings.connect_timeout, stdio.0, stdio.1)
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
