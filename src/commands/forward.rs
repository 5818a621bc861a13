//! `hop forward [TARGET] SPEC… [-D [BIND:]PORT]…`: local listeners forwarded over one supervised
//! SSH connection to the target (as `ssh -J bastion -L …` would), until interrupted.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

use crate::adapters::inventory::{self, Freshness};
use crate::adapters::ssh::forward::{self, Destination, Stats};
use crate::adapters::ssh::reuse::Want;
use crate::adapters::ssm;
use crate::domain::display::escape;
use crate::domain::forward::{Bind, DynamicForward, LocalForward, RemoteForward};
use crate::domain::route::bastions;
use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    args: &[String],
    dynamic: &[String],
    remote: &[String],
    native: bool,
) -> anyhow::Result<u8> {
    let usage = |message: String| HopError::Usage { message, hints: vec![] };
    // TARGET is optional: the first word is a target unless it reads as a forward.
    let (target, specs) = match args.first() {
        Some(first) if first.parse::<LocalForward>().is_err() => (Some(first.clone()), &args[1..]),
        _ => (None, args),
    };
    let locals: Vec<LocalForward> = specs.iter().map(|s| s.parse()).collect::<Result<_, _>>().map_err(usage)?;
    let socks: Vec<DynamicForward> = dynamic.iter().map(|s| s.parse()).collect::<Result<_, _>>().map_err(usage)?;
    let remotes: Vec<RemoteForward> = remote.iter().map(|s| s.parse()).collect::<Result<_, _>>().map_err(usage)?;
    if locals.is_empty() && socks.is_empty() && remotes.is_empty() {
        return Err(HopError::Usage {
            message: "nothing to forward".into(),
            hints: vec![
                "hop forward [TARGET] 8080 | 9000:80 | 5432:db.internal:5432 [-D 1080] [-R 9000:localhost:3000]".into(),
            ],
        }
        .into());
    }
    let target = match target.or_else(|| settings.default_target.clone()) {
        Some(t) => t,
        None => only_target(settings).await?,
    };
    let (loaded, instance, route) = super::target_route(settings, &target).await?;
    super::refuse_unreachable(settings, &loaded, &instance, &route)?;
    if native {
        return run_native(settings, &instance, &locals).await;
    }
    // Listen first: a port in use is an error before any connection is made.
    let mut listeners = Vec::new();
    for f in &locals {
        let dest = Destination::Fixed { host: f.host.clone(), port: f.port };
        listeners.push((bind(&f.bind, f.listen_port).await?, dest, format!("{}:{}", f.host, f.port)));
    }
    for d in &socks {
        listeners.push((bind(&d.bind, d.listen_port).await?, Destination::Socks, "SOCKS".to_string()));
    }
    let trust = super::connect::trust(settings);
    // The first connection is made before anything is announced: what stops it (an unreachable
    // route, a refused host key or key, a timeout) is the command's error, exit 255.
    let (route, first) =
        super::connect::connect_planned(settings, &target, loaded.live, route, &trust, &remotes, Want::Jump).await?;
    listen_remote(&first, &remotes, &instance).await.map_err(|e| super::connect::ssh_error(e, &target))?;
    for (l, _, to) in &listeners {
        let addr = l.local_addr()?;
        eprintln!("hop: forwarding {addr} → {to} from {} ({})", escape(instance.label()), escape(&instance.id));
    }
    for r in &remotes {
        let on = escape(instance.label());
        eprintln!("hop: forwarding {}:{} on {on} → {}:{} here", r.bind, r.remote_port, r.host, r.port);
    }
    let (tx, rx) = tokio::sync::watch::channel(None);
    // Reconnects use the route that worked; after a few failures, the route EC2 gives now.
    let route = std::sync::Mutex::new(route);
    let reconnect = |rediscover: bool| {
        let (route, trust, remotes, instance, target) = (&route, &trust, &remotes, &instance, &target);
        async move {
            if rediscover {
                let (_, _, fresh) = super::target_route_with(settings, target, Freshness::Live).await.map_err(|e| {
                    crate::adapters::ssh::client::SshError::Protocol {
                        label: "discovery".into(),
                        message: e.to_string(),
                    }
                })?;
                let mut current = route.lock().expect("not poisoned");
                if *current != fresh {
                    let entry = crate::adapters::ssh::hops(&fresh)
                        .and_then(|h| h.into_iter().next())
                        .map_or_else(|| fresh.summary(), |h| format!("{} at {}", h.label, h.address));
                    tracing::warn!("forward: the route changed; now through {entry}");
                    *current = fresh;
                }
            }
            let planned = route.lock().expect("not poisoned").clone();
            let chain = super::connect::connect(settings, &planned, trust, remotes, Want::Jump).await?;
            listen_remote(&chain, remotes, instance).await?;
            Ok(chain)
        }
    };
    let supervisor = forward::supervise(first, reconnect, tx);
    let stats = Arc::new(Stats::default());
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|(l, dest, _)| {
            let (open, stall) = (settings.connect_timeout, settings.forward_stall_timeout);
            tokio::spawn(forward::serve(l, dest, rx.clone(), stats.clone(), open, stall))
        })
        .collect();
    // Runs until interrupted, or until reconnecting meets a failure retrying cannot fix. Ctrl-C
    // closes the listeners, lets open connections finish for a bounded time, prints a summary
    // and exits 130.
    let gave_up = tokio::select! {
        e = supervisor => Some(e),
        _ = tokio::signal::ctrl_c() => None,
    };
    for s in &servers {
        s.abort();
    }
    if let Some(e) = gave_up {
        return Err(super::connect::ssh_error(e, &target).into());
    }
    let deadline = tokio::time::Instant::now() + DRAIN;
    while stats.active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = stats.active.load(Ordering::Relaxed);
    eprintln!(
        "hop: forwarded {} connections, {} bytes up, {} down, {} failed{}",
        stats.connections.load(Ordering::Relaxed),
        stats.bytes_up.load(Ordering::Relaxed),
        stats.bytes_down.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
        if left > 0 { format!("; {left} still open were cut after {}s", DRAIN.as_secs()) } else { String::new() }
    );
    Ok(crate::error::exit::INTERRUPTED)
}

/// Ask the target to listen for the `-R` forwards (on every connection: a new connection has
/// none).
async fn listen_remote(
    chain: &crate::adapters::ssh::client::Chain,
    remotes: &[RemoteForward],
    instance: &crate::domain::inventory::Instance,
) -> Result<(), crate::adapters::ssh::client::SshError> {
    for r in remotes {
        let address = match &r.bind {
            Bind::Loopback => "localhost".to_string(),
            Bind::Any => String::new(),
            Bind::Address(a) => a.clone(),
        };
        chain.target().tcpip_forward(address, u32::from(r.remote_port)).await.map_err(|e| {
            crate::adapters::ssh::client::SshError::Protocol {
                label: instance.label().to_string(),
                message: format!("the target refused to listen on {}:{} for -R: {e}", r.bind, r.remote_port),
            }
        })?;
    }
    Ok(())
}

/// `--native`: one Session Manager port session per forward (the agent dials HOST:PORT),
/// reopened when it ends, until interrupted.
async fn run_native(
    settings: &Settings,
    instance: &crate::domain::inventory::Instance,
    locals: &[LocalForward],
) -> anyhow::Result<u8> {
    if !instance.state.is_up() {
        return Err(HopError::Ssh {
            message: format!("{} is {}", instance.label(), instance.state.as_str()),
            hints: vec![],
        }
        .into());
    }
    let mut sessions = Vec::new();
    for f in locals {
        let document = match f.host.as_str() {
            "localhost" | "127.0.0.1" | "::1" => ssm::Document::Port { port: f.port },
            host => ssm::Document::RemoteHost { host: host.to_string(), port: f.port },
        };
        let listener = bind(&f.bind, f.listen_port).await?;
        // The first session opens before anything is announced: its errors are the command's.
        let channel = super::connect::open_ssm(settings, &instance.id, &instance.region, &document).await?;
        eprintln!(
            "hop: forwarding {} → {}:{} from {} ({}) by Session Manager session {} ({} mode)",
            listener.local_addr()?,
            f.host,
            f.port,
            escape(instance.label()),
            escape(&instance.id),
            escape(&channel.session_id),
            if channel.request.mux() { "smux" } else { "basic" }
        );
        sessions.push((listener, document, channel));
    }
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|(listener, document, channel)| async move {
            let mut channel = Some(channel);
            loop {
                let open = match channel.take() {
                    Some(c) => Ok(c),
                    None => super::connect::open_ssm(settings, &instance.id, &instance.region, &document).await,
                };
                match open {
                    Ok(c) => {
                        let why = ssm::ports::serve(&listener, c).await;
                        eprintln!("hop: {}; opening a new session", escape(&why));
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        eprintln!("hop: {}; retrying in 5s", escape(&e.to_string()));
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                }
            }
        })
        .collect();
    tokio::select! {
        _ = futures_util::future::join_all(tasks) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(crate::error::exit::INTERRUPTED)
}

/// How long Ctrl-C lets open connections finish.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Listen on BIND:PORT, with the errors a user can act on.
async fn bind(bind: &Bind, port: u16) -> Result<TcpListener, HopError> {
    TcpListener::bind((bind.host(), port)).await.map_err(|e| {
        let what = format!("{bind}:{port}");
        let message = match e.kind() {
            ErrorKind::AddrInUse => match holder(port) {
                Some(who) => format!("port {port} is already in use ({what}) by {who}"),
                None => format!("port {port} is already in use ({what})"),
            },
            ErrorKind::PermissionDenied => format!("port {port} is privileged ({what}): pick one above 1023"),
            _ => format!("cannot listen on {what}: {e}"),
        };
        HopError::Usage { message, hints: vec![] }
    })
}

/// Which process listens on TCP `port` here, as "NAME (pid N)", when /proc tells (Linux; the
/// process's network namespace; other users' processes only as root).
fn holder(port: u16) -> Option<String> {
    let hex = format!(":{port:04X}");
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address ends with :PORT (hex); state 0A is LISTEN; field 9 is the inode.
            (f.len() > 9 && f[1].ends_with(&hex) && f[3] == "0A").then(|| f[9].to_string())
        })
    })?;
    let needle = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == needle) {
                let pid = proc_dir.file_name().to_string_lossy().into_owned();
                let name = std::fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
                return Some(format!("{} (pid {pid})", name.trim()));
            }
        }
    }
    None
}

/// With no TARGET and no `default_target`: the only running instance that is not a bastion.
pub(super) async fn only_target(settings: &Settings) -> Result<String, HopError> {
    let loaded = inventory::load(settings, Freshness::Cached).await?;
    let by_vpc = bastions(&loaded.instances, &settings.bastion);
    let is_bastion = |id: &str| by_vpc.values().flatten().any(|b| b.id == id);
    let candidates: Vec<_> = loaded.instances.iter().filter(|i| i.state.is_up() && !is_bastion(&i.id)).collect();
    match candidates.as_slice() {
        [only] => Ok(only.id.clone()),
        _ => Err(HopError::Usage {
            message: format!("no TARGET given and {} instances could be meant", candidates.len()),
            hints: std::iter::once("candidates:".to_string())
                .chain(candidates.iter().map(|i| format!("  {}", i.describe())))
                .chain(["name one, or set `default_target` in ~/.config/hop/config.toml".to_string()])
                .collect(),
        }),
    }
}
