//! `hop TARGET [-- CMD…]`: connect through the planned route and run CMD (or a shell), with the
//! remote exit status as hop's.

use std::io::IsTerminal;

use crate::adapters::eice;
use crate::adapters::inventory::Freshness;
use crate::adapters::ssh::reuse::{self, Want};
use crate::adapters::ssh::{self, client, session};
use crate::adapters::ssm;
use crate::adapters::term;
use crate::domain::route::{EiceVia, Endpoint, Route};
use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(settings: &Settings, target: &str, remote_command: &[String]) -> anyhow::Result<u8> {
    let (loaded, instance, route) = super::target_route(settings, target).await?;
    super::refuse_unreachable(settings, &loaded, &instance, &route)?;
    let trust = trust(settings);
    let (_, chain) = connect_planned(settings, target, loaded.live, route, &trust, &[], Want::Target).await?;
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

/// Connect to `target` by `route`. A route from the cache (`live` false) is checked against
/// EC2 when it fails in a way a stale cache explains, and tried again only if EC2 gives a
/// different route: the connection failed (an instance restarted with a new address), or a
/// host key is unknown or changed (a private IP reused by a new instance). So on a cached
/// route nobody is asked about a host key before EC2 has confirmed which instance it is.
/// Returns the route that connected.
pub async fn connect_planned(
    settings: &Settings,
    target: &str,
    live: bool,
    route: Route,
    trust: &client::Trust,
    remote_forwards: &[crate::domain::forward::RemoteForward],
    want: Want,
) -> Result<(Route, client::Chain), HopError> {
    if live {
        let chain = connect(settings, &route, trust, remote_forwards, want).await.map_err(|e| ssh_error(e, target))?;
        return Ok((route, chain));
    }
    // No host key is accepted or asked about yet (passphrases still are).
    let ask = trust.ask.clone().map(|ask| -> client::Ask {
        std::sync::Arc::new(move |q: &client::Question| match q {
            client::Question::UnknownHostKey { .. } => client::Answer::No,
            q => ask(q),
        })
    });
    let cautious = client::Trust { ask, accept_new: false, ..trust.clone() };
    let e = match connect(settings, &route, &cautious, remote_forwards, want).await {
        Ok(chain) => return Ok((route, chain)),
        Err(e) => e,
    };
    use client::SshError::*;
    // An instance EC2 Instance Connect does not know: the cache may name one that is gone.
    let unknown_to_eic = matches!(&e, Push(p) if p.kind == client::PushFailure::NotFound);
    if !matches!(e, Connect { .. } | UnknownHostKey { .. } | ChangedHostKey { .. }) && !unknown_to_eic {
        return Err(ssh_error(e, target));
    }
    tracing::info!("{e}; refreshing discovery: the cached route may be stale");
    // EC2 unreachable: the cached route is all there is (as before the refresh).
    let fresh = match super::target_route_with(settings, target, Freshness::Live).await {
        Ok((_, _, fresh)) => fresh,
        Err(why) => {
            tracing::warn!("cannot refresh discovery: {why}");
            route.clone()
        }
    };
    // An unknown key on an unchanged route is asked about (or accepted) now.
    let ask_now = matches!(e, UnknownHostKey { .. }) && (trust.ask.is_some() || trust.accept_new);
    if fresh == route && !ask_now {
        return Err(ssh_error(e, target));
    }
    if fresh != route {
        tracing::info!("EC2 gives another route ({}); connecting again", fresh.summary());
    }
    let chain = connect(settings, &fresh, trust, remote_forwards, want).await.map_err(|e| ssh_error(e, target))?;
    Ok((fresh, chain))
}

/// Connect through every hop of `route`, over a Session Manager data channel for SSM routes;
/// unreachable routes are errors here. With reuse on, SSH routes go through this user's
/// connection master for the first hop (started when there is none); `want` says whether the
/// master may hold the target too.
pub async fn connect(
    settings: &Settings,
    route: &Route,
    trust: &client::Trust,
    remote_forwards: &[crate::domain::forward::RemoteForward],
    want: Want,
) -> Result<client::Chain, client::SshError> {
    let last = client::FinalHop {
        forward_agent: settings.forward_agent,
        remote_forwards: remote_forwards.to_vec(),
        forward_stall: settings.forward_stall_timeout,
    };
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
                client::SshError::Transport { message: e.to_string(), hints }
            })?;
            Some(channel.stream)
        }
        // SSH over the endpoint's tunnel, straight to the target. No connection master for EICE
        // routes, as for SSM: the tunnel is the connection (signed for this one use, cut at its
        // duration limit, 20 per endpoint), nothing a master could share.
        Route::Eice { endpoint, target, .. } => {
            let hops = ssh::hops(route).expect("an EICE route has hops");
            let label = target.name.clone().unwrap_or_else(|| target.id.clone());
            let mut tunnel = open_eice(settings, endpoint, target, target.login.port, &label).await.map_err(|e| {
                let hints = e.hints();
                client::SshError::Transport { message: e.to_string(), hints }
            })?;
            return match client::connect(&hops, trust, settings.connect_timeout, &last, Some(tunnel.stream)).await {
                Ok(chain) => Ok(chain),
                // SSH saw the stream end: the endpoint's close says why.
                Err(e) => match tunnel.ending.error(std::time::Duration::from_secs(2)).await {
                    Some(why) => {
                        let t = eice_target(endpoint, target, target.login.port, &label);
                        Err(client::SshError::Transport { message: why.message(&t), hints: why.hints(&t) })
                    }
                    None => Err(e),
                },
            };
        }
        _ => None,
    };
    let hops = ssh::hops(route).expect("every route but unreachable has hops");
    // Session Manager routes have no master: the data channel is the connection.
    if first.is_none()
        && let Some(chain) = through_master(settings, &hops, trust, &last, want).await
    {
        return chain;
    }
    client::connect(&hops, trust, settings.connect_timeout, &last, first).await
}

/// `hops` through this user's connection master of the first hop, when reuse is on and a master
/// can be had: the target held by the master (`Want::Target`, unless `-A` or `-R` need the
/// command's own session on it), else the command's own connection to the rest of the route
/// through the master's first hop. None: no master; connect directly (why is logged at debug).
pub async fn through_master(
    settings: &Settings,
    hops: &[client::Hop],
    trust: &client::Trust,
    last: &client::FinalHop,
    want: Want,
) -> Option<Result<client::Chain, client::SshError>> {
    let reuse = settings.reuse.as_ref()?;
    // The master never forwards an agent nor listens for -R: those need the command's own
    // session on the target.
    if want == Want::Target && !last.forward_agent && last.remote_forwards.is_empty() {
        match reuse::connect_target(reuse, hops, trust).await {
            Ok(chain) => return Some(Ok(chain)),
            // The route beyond the first hop fails for the master as it would here: say so
            // now instead of paying the same timeout again.
            Err(refusal) if refusal.is_final() => {
                let reuse::Refusal::Target(e) = refusal else { unreachable!("only a target's refusal is final") };
                return Some(Err(e));
            }
            Err(why) => tracing::debug!("reuse: no held connection to the target: {why}"),
        }
    }
    if hops.len() < 2 {
        // A direct route: the first hop is the target; nothing to jump through.
        return None;
    }
    match reuse::connect_jump(reuse, hops, trust, last).await {
        Ok(chain) => Some(chain),
        Err(why) => {
            tracing::debug!("reuse: {why}; connecting directly");
            None
        }
    }
}

/// What a tunnel through `endpoint` to `target`'s private IP, `port`, needs.
pub fn eice_target(endpoint: &EiceVia, target: &Endpoint, port: u16, label: &str) -> eice::Target {
    eice::Target {
        endpoint_id: endpoint.id.clone(),
        region: endpoint.region.clone(),
        dns_name: endpoint.dns_name.clone(),
        ip: target.address.clone(),
        port,
        max_duration: endpoint.max_duration,
        endpoint_security_groups: endpoint.security_groups.clone(),
        target_security_groups: endpoint.target_security_groups.clone(),
        label: label.to_string(),
    }
}

/// Open a tunnel through `endpoint` to `target`'s private IP, `port`: credentials asked of the
/// provider now, a URL signed now (spec §A.3.4).
pub async fn open_eice(
    settings: &Settings,
    endpoint: &EiceVia,
    target: &Endpoint,
    port: u16,
    label: &str,
) -> Result<eice::Opened, HopError> {
    let t = eice_target(endpoint, target, port, label);
    let fail = |e: eice::TunnelError| HopError::Ssh { message: e.message(&t), hints: e.hints(&t) };
    let credentials = crate::adapters::aws::credentials(settings, &endpoint.region)
        .await
        .map_err(|why| fail(eice::TunnelError::Credentials(why)))?;
    eice::open(&t, &eice::credentials(&credentials), settings.connect_timeout).await.map_err(fail)
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
        kex_memory: Some(settings.cache_dir.join("kex")),
        // Hops whose login pushes a key (spec §B.3) push this run's in-memory key.
        pusher: Some(std::sync::Arc::new(crate::adapters::eic::Pusher::new(settings))),
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
        Auth { pushed: true, .. } => {
            // The key was pushed (the API took it), and the instance's sshd refused it.
            let mut hints: Vec<String> = crate::adapters::eic::REFUSED_HINTS.map(String::from).to_vec();
            hints.push("or log in with a key of your own: -i KEY, or ssh-add it".into());
            hints.push(doctor);
            hints
        }
        Auth { .. } => vec![
            "pass -i KEY, add the key to ssh-agent (ssh-add), or put the key pair's file at ~/.ssh/<KeyName>.pem"
                .into(),
            doctor,
        ],
        Push(p) => return crate::adapters::eic::hop_error(p.clone()),
        Protocol { .. } => vec![doctor],
        Transport { hints, .. } => hints.clone(),
    };
    HopError::Ssh { message: e.to_string(), hints }
}
