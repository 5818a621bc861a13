//! `hop TARGET [-- CMD…]`: connect through the planned route and run CMD (or a shell), with the
//! remote exit status as hop's.

use std::io::IsTerminal;

use crate::adapters::inventory::Freshness;
use crate::adapters::ssh::{self, client, session};
use crate::adapters::ssm;
use crate::adapters::term;
use crate::domain::route::Route;
use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(settings: &Settings, target: &str, remote_command: &[String]) -> anyhow::Result<u8> {
    let (loaded, _, route) = super::target_route(settings, target).await?;
    let trust = trust(settings);
    let chain = match connect(settings, &route, &trust, &[]).await {
        // The cached address may be stale (instance restarted): ask EC2 once and retry.
        Err(client::SshError::Connect { .. }) if !loaded.live => {
            tracing::info!("connection failed with cached addresses; refreshing discovery");
            let (_, _, route) = super::target_route_with(settings, target, Freshness::Live).await?;
            connect(settings, &route, &trust, &[]).await
        }
        other => other,
    }
    .map_err(|e| ssh_error(e, target))?;
    // Like ssh, the words after `--` are joined with spaces and run by the remote shell.
    let command = (!remote_command.is_empty()).then(|| remote_command.join(" "));
    // A PTY when asked (-t), or for a shell when stdin is a terminal, as ssh decides.
    let pty = settings.tty.unwrap_or(command.is_none() && std::io::stdin().is_terminal());
    let code = if pty {
        session::interactive(&chain, command.as_deref(), &settings.term, settings.forward_agent).await
    } else {
        let (i, o, e) = (tokio::io::stdin(), tokio::io::stdout(), tokio::io::stderr());
        session::run(&chain, command.as_deref(), settings.forward_agent, i, o, e).await
    }
    .map_err(|e| ssh_error(e, target))?;
    Ok(code)
}

/// Connect through every hop of `route`, over a Session Manager data channel for SSM routes;
/// unreachable routes are errors here.
pub async fn connect(
    settings: &Settings,
    route: &Route,
    trust: &client::Trust,
    remote_forwards: &[crate::domain::forward::RemoteForward],
) -> Result<client::Chain, client::SshError> {
    let last = client::FinalHop { forward_agent: settings.forward_agent, remote_forwards: remote_forwards.to_vec() };
    let first = match route {
        Route::Unreachable { reason } => {
            return Err(client::SshError::Protocol {
                label: "route".into(),
                message: format!("unreachable: {reason}"),
            });
        }
        Route::Ssm { target, region, .. } => {
            let document = ssm::Document::Ssh { port: target.login.port };
            let channel = open_ssm(settings, &target.id, region, &document).await.map_err(|e| {
                let hints = e.hints();
                client::SshError::Ssm { message: e.to_string(), hints }
            })?;
            Some(channel.stream)
        }
        _ => None,
    };
    let hops = ssh::hops(route).expect("every route but unreachable has hops");
    client::connect(&hops, trust, settings.connect_timeout, &last, first).await
}

/// Start a Session Manager session on `id` and open its data channel. DescribeInstanceInformation
/// runs alongside StartSession (no added round trip) and explains a failure: an agent that is
/// not registered or not Online.
pub async fn open_ssm(
    settings: &Settings,
    id: &str,
    region: &str,
    document: &ssm::Document,
) -> Result<ssm::Channel, HopError> {
    let control = ssm::Control::new(settings, region).await;
    let options = ssm::Options { connect_timeout: settings.connect_timeout, give_up: settings.ssm_give_up };
    let (agent, opened) = tokio::join!(control.agent(id), ssm::open(&control, id, document, &options));
    let e = match opened {
        Ok(channel) => return Ok(channel),
        Err(e) => e,
    };
    let why = match agent {
        Ok(None) => Some(format!(
            "Session Manager has no agent registered for {id} (no instance profile, agent not running, \
             or no route to the SSM endpoints)"
        )),
        Ok(Some(a)) if a.ping_status != "Online" => {
            Some(format!("the SSM agent of {id} is {} (agent {})", a.ping_status, a.agent_version))
        }
        _ => None,
    };
    Err(match (why, e) {
        (Some(why), HopError::Aws { hints, .. } | HopError::Ssh { hints, .. }) => HopError::Aws { message: why, hints },
        (_, e) => e,
    })
}

/// known_hosts files as OpenSSH reads them, and how unknown keys are handled.
pub fn trust(settings: &Settings) -> client::Trust {
    let user_file = settings.ssh_dir.join("known_hosts");
    let home = settings.ssh_dir.parent().unwrap_or(&settings.ssh_dir);
    client::Trust {
        files: crate::adapters::ssh::known_hosts::default_paths(home),
        user_file,
        accept_new: settings.accept_new,
        ask: term::tty_asker(),
    }
}

/// SSH failures as exit-255 errors with what was tried and what to do.
pub fn ssh_error(e: client::SshError, target: &str) -> HopError {
    use client::SshError::*;
    let doctor = format!("`hop doctor {target}` explains what stands in the way; `hop route {target}` shows the route");
    let hints = match &e {
        Interrupted => return HopError::Interrupted,
        Connect { .. } => vec![doctor],
        UnknownHostKey { file, .. } => vec![
            "check the fingerprint with the instance's console output (aws ec2 get-console-output)".into(),
            format!(
                "then connect from a terminal to be asked, or pass --accept-new to record it in {}",
                file.display()
            ),
        ],
        ChangedHostKey { alias, file, .. } => vec![
            "someone may be intercepting the connection, or the instance was rebuilt with a new key".into(),
            format!("if you know it was rebuilt: ssh-keygen -R {alias} -f {}", file.display()),
        ],
        RevokedHostKey { .. } => vec!["a revoked key is never accepted".into()],
        Auth { .. } => vec![
            "pass -i KEY, add the key to ssh-agent (ssh-add), or put the key pair's file at ~/.ssh/<KeyName>.pem"
                .into(),
            doctor,
        ],
        Protocol { .. } => vec![doctor],
        Ssm { hints, .. } => hints.clone(),
    };
    HopError::Ssh { message: e.to_string(), hints }
}
