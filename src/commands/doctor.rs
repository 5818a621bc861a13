//! `hop doctor [TARGET] [--json] [--my-ip CIDR] [--probe]`: hop's own view (name, key, route),
//! then the VPC snapshot through `domain::doctor`'s rules, then, with `--probe`, the route tried
//! step by step. Exit 0 when the route hop takes has no problem, 1 otherwise.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::adapters::ssh::{self, client};
use crate::adapters::{eice, ssm, term, vpc};
use crate::domain::display;
use crate::domain::doctor::{self, Check, Cidr, Eice, Path, Status, check};
use crate::domain::inventory::Instance;
use crate::domain::route::{EiceVia, Endpoint, Push, Route, bastions};
use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    target: Option<String>,
    json_out: bool,
    my_ip: Option<&str>,
    probe: bool,
) -> anyhow::Result<u8> {
    let my_ip: Option<Cidr> = my_ip
        .map(|s| s.parse())
        .transpose()
        .map_err(|e: String| HopError::Usage { message: format!("--my-ip: {e}"), hints: vec![] })?;
    let target = match target.or_else(|| settings.default_target.clone()) {
        Some(t) => t,
        None => super::forward::only_target(settings).await?,
    };
    // An unknown or ambiguous name is hop's first finding: the usual error, with candidates.
    let (loaded, instance, route) = super::target_route(settings, &target).await?;
    let mut checks = hop_view(&target, &instance, &route, &loaded.instances);
    let entry = match &route {
        Route::Direct { target } => Some(target.id.clone()),
        Route::Jump { bastion, .. } => Some(bastion.id.clone()),
        Route::Chain { jumps, .. } => jumps.first().map(|j| j.id.clone()),
        // No usable bastion (or EICE asked for): still check the VPC's bastion, if it has one, to
        // say why not. The EICE path has its own checks (`Input.eice`).
        Route::Ssm { .. } | Route::Eice { .. } | Route::Unreachable { .. } => {
            instance.vpc_id.as_deref().and_then(|v| {
                let by_vpc = bastions(&loaded.instances, &settings.bastion);
                by_vpc.get(v).and_then(|b| b.iter().find(|b| b.id != instance.id)).map(|b| b.id.clone())
            })
        }
    };
    // The route's endpoint as discovery saw it (the snapshot's own record wins in the rules).
    let eice = match &route {
        Route::Eice { endpoint, .. } => {
            Some(loaded.endpoints.iter().find(|e| e.id == endpoint.id).map(Eice::from).unwrap_or_else(|| Eice {
                id: endpoint.id.clone(),
                subnet_id: endpoint.subnet_id.clone(),
                state: "create-complete".into(),
                ..Default::default()
            }))
        }
        _ => None,
    };
    let port = match &route {
        Route::Direct { target } | Route::Jump { target, .. } | Route::Chain { target, .. } => target.login.port,
        Route::Ssm { target, .. } | Route::Eice { target, .. } => target.login.port,
        Route::Unreachable { .. } => settings.login.login(&instance, true, &super::file_exists).port,
    };
    let mut eice_arn = None;
    if let Some(vpc_id) = &instance.vpc_id {
        let snap = vpc::snapshot(settings, &instance.region, vpc_id, &instance.id).await?;
        if let Route::Eice { endpoint, .. } = &route {
            eice_arn = snap.eices.iter().find(|e| e.id == endpoint.id).and_then(|e| e.arn.clone());
        }
        checks.extend(doctor::diagnose(
            &snap,
            &doctor::Input { target: &instance.id, entry: entry.as_deref(), my_ip, eice, port },
        ));
    }
    if probe {
        checks.extend(run_probe(settings, &route, eice_arn.as_deref()).await);
    }
    let chosen = chosen_path(&route);
    let ok = doctor::route_ok(&checks, chosen);
    let mut out = std::io::stdout().lock();
    if json_out {
        let problems = checks.iter().filter(|c| c.status == Status::Problem).count();
        let doc = json!({
            "version": 1,
            "target": {"id": instance.id, "name": instance.name, "region": instance.region, "vpc": instance.vpc_id},
            // Route serialises with its kind as the tag, as `hop route --json` prints it.
            "route": {"kind": serde_json::to_value(&route)?["kind"], "summary": route.summary()},
            "route_ok": ok,
            "problems": problems,
            "checks": checks,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        out.write_all(render(&instance, &route, &checks, chosen, ok, settings.color).as_bytes())?;
    }
    Ok(if ok { 0 } else { 1 })
}

/// The doctor path whose problems fail the route: SSM and EICE have their own, direct and jump
/// routes the bastion path (which checks the target itself for a direct route).
fn chosen_path(route: &Route) -> Path {
    match route {
        Route::Ssm { .. } => Path::Ssm,
        Route::Eice { .. } => Path::Eice,
        _ => Path::Bastion,
    }
}

/// hop's own view: the name resolved (else we would not be here), the key files, the route.
fn hop_view(asked: &str, instance: &Instance, route: &Route, all: &[Instance]) -> Vec<Check> {
    let mut out = vec![check(
        Path::Hop,
        "hop.resolves",
        Status::Ok,
        format!(
            "{asked:?} is {} ({}, {}) in {}",
            instance.label(),
            instance.id,
            instance.state.as_str(),
            instance.region
        ),
    )];
    let endpoints: Vec<&Endpoint> = match route {
        Route::Direct { target } | Route::Ssm { target, .. } | Route::Eice { target, .. } => vec![target],
        Route::Jump { bastion, target, .. } => vec![bastion, target],
        Route::Chain { jumps, target } => jumps.iter().chain([target]).collect(),
        Route::Unreachable { .. } => vec![],
    };
    for e in endpoints {
        let who = e.name.clone().unwrap_or_else(|| e.id.clone());
        let key = all.iter().find(|i| i.id == e.id).and_then(|i| i.key_name.clone());
        out.push(match (&e.login.identity, e.login.push) {
            (_, Push::Always) => check(
                Path::Hop,
                "hop.key",
                Status::Ok,
                format!("key for {who}: one hop pushes with EC2 Instance Connect as {}, as asked", e.login.user),
            ),
            (Some(path), _) => check(Path::Hop, "hop.key", Status::Ok, format!("key for {who}: {}", path.display())),
            // Launched without a key pair: pushed keys are how it is meant to be entered.
            (None, Push::Auto) if key.is_none() => check(
                Path::Hop,
                "hop.key",
                Status::Ok,
                format!(
                    "{who} has no key pair: hop pushes a key with EC2 Instance Connect as {} (unless ssh-agent has keys)",
                    e.login.user
                ),
            ),
            (None, push) => {
                let fix = match &key {
                    Some(k) => format!("put the private key of key pair {k} at ~/.ssh/{k}.pem (mode 600), or pass -i"),
                    None => {
                        "pass -i KEY, or set `identity` under [hosts.NAME] in ~/.config/hop/config.toml".to_string()
                    }
                };
                check(
                    Path::Hop,
                    "hop.key",
                    Status::Warning,
                    if push == Push::Auto {
                        format!("no key file for {who}: hop will try ssh-agent, else push a key with EC2 Instance Connect")
                    } else {
                        format!("no key file for {who}: hop will try ssh-agent and ~/.ssh/id_*")
                    },
                )
                .fix(fix)
            }
        });
    }
    out.push(match route {
        Route::Unreachable { reason } => check(Path::Hop, "hop.route", Status::Problem, format!("no route: {reason}")),
        r => check(Path::Hop, "hop.route", Status::Ok, format!("route: {}", r.summary())),
    });
    out
}

/// The route tried step by step; the first step that fails ends the probe.
async fn run_probe(settings: &Settings, route: &Route, eice_arn: Option<&str>) -> Vec<Check> {
    let p = Path::Probe;
    let timeout = settings.connect_timeout;
    let trust = super::connect::trust(settings);
    let mut out = Vec::new();
    let hops = ssh::hops(route).unwrap_or_default();
    match route {
        Route::Ssm { target, region, .. } => {
            let started = Instant::now();
            let document = ssm::Document::Ssh { port: target.login.port };
            match super::connect::open_ssm(settings, &target.id, region, &document).await {
                Err(e) => out.push(check(p, "probe.ssm", Status::Problem, format!("Session Manager: {e}"))),
                Ok(mut channel) => {
                    out.push(check(
                        p,
                        "probe.ssm",
                        Status::Ok,
                        format!("Session Manager session open in {} ms", started.elapsed().as_millis()),
                    ));
                    out.push(
                        banner(&mut channel.stream, timeout, &format!("port {} on the instance", target.login.port))
                            .await,
                    );
                }
            }
        }
        Route::Direct { .. } | Route::Jump { .. } | Route::Chain { .. } => {
            let first = &hops[0];
            let started = Instant::now();
            let tcp =
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect((first.address.as_str(), first.port)))
                    .await;
            let what = format!("TCP to {} ({}:{})", first.label, first.address, first.port);
            match tcp {
                Ok(Ok(_)) => out.push(check(
                    p,
                    "probe.tcp",
                    Status::Ok,
                    format!("{what} answered in {} ms", started.elapsed().as_millis()),
                )),
                Ok(Err(e)) => {
                    out.push(check(p, "probe.tcp", Status::Problem, format!("{what}: {e}")));
                    return out;
                }
                Err(_) => {
                    out.push(check(
                        p,
                        "probe.tcp",
                        Status::Problem,
                        format!("{what}: no answer within {}s (a security group or NACL drops it?)", timeout.as_secs()),
                    ));
                    return out;
                }
            }
            let (before, last) =
                if hops.len() > 1 { (&hops[..hops.len() - 1], Some(&hops[hops.len() - 1])) } else { (&hops[..], None) };
            let chain = match client::connect(before, &trust, timeout, &client::FinalHop::default(), None).await {
                Ok(c) => {
                    out.push(check(
                        p,
                        "probe.ssh",
                        Status::Ok,
                        format!(
                            "SSH to {} (host key verified, authenticated)",
                            before.last().map_or("?", |h| h.label.as_str())
                        ),
                    ));
                    c
                }
                Err(e) => {
                    out.push(check(p, "probe.ssh", Status::Problem, format!("SSH: {e}")));
                    return out;
                }
            };
            if let Some(t) = last {
                let via = before.last().map_or("?", |h| h.label.as_str());
                let opened = tokio::time::timeout(timeout, chain.open(&t.address, t.port, ("127.0.0.1", 0)))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "timed out after {}s (does the target's security group let the bastion in?)",
                            timeout.as_secs()
                        ))
                    });
                match opened {
                    Err(e) => out.push(check(
                        p,
                        "probe.target",
                        Status::Problem,
                        format!("{via} could not open {}:{}: {e}", t.address, t.port),
                    )),
                    Ok(channel) => {
                        let mut stream = channel.into_stream();
                        out.push(
                            banner(
                                &mut stream,
                                timeout,
                                &format!("{} ({}:{}) through the bastion", t.label, t.address, t.port),
                            )
                            .await,
                        );
                    }
                }
            }
        }
        Route::Eice { endpoint, target, .. } => out.extend(probe_eice(settings, endpoint, target, eice_arn).await),
        Route::Unreachable { .. } => {}
    }
    out
}

/// The EICE route tried: the tunnel (a freshly presigned handshake), then SSH through it (host
/// key verified, authenticated). A handshake refused with 403 gets the IAM fix with the real
/// ARNs; a tunnel the endpoint closes at once says why (its close reason, the SG hint).
async fn probe_eice(settings: &Settings, endpoint: &EiceVia, target: &Endpoint, eice_arn: Option<&str>) -> Vec<Check> {
    let p = Path::Probe;
    let label = target.name.clone().unwrap_or_else(|| target.id.clone());
    let t = super::connect::eice_target(endpoint, target, target.login.port, &label);
    let mut out = Vec::new();
    let explain = |e: &eice::TunnelError| -> Option<String> {
        match e {
            eice::TunnelError::Refused { status: 403, .. } => {
                let push = (target.login.push != Push::No).then_some(target.login.user.as_str());
                Some(doctor::eice_iam_fix(&endpoint.region, &endpoint.id, eice_arn, &target.id, push))
            }
            _ => {
                let hints: Vec<String> = e.hints(&t).into_iter().filter(|h| !h.contains("hop doctor")).collect();
                (!hints.is_empty()).then(|| hints.join("; "))
            }
        }
    };
    let started = Instant::now();
    let credentials = match crate::adapters::aws::credentials(settings, &endpoint.region).await {
        Ok(c) => c,
        Err(why) => {
            out.push(check(p, "probe.eice", Status::Problem, eice::TunnelError::Credentials(why).message(&t)));
            return out;
        }
    };
    let eice::Opened { stream, mut ending } =
        match eice::open(&t, &eice::credentials(&credentials), settings.connect_timeout).await {
            Ok(o) => o,
            Err(e) => {
                let mut c = check(p, "probe.eice", Status::Problem, e.message(&t));
                if let Some(fix) = explain(&e) {
                    c = c.fix(fix);
                }
                out.push(c);
                return out;
            }
        };
    out.push(check(
        p,
        "probe.eice",
        Status::Ok,
        format!(
            "tunnel through {} to {}:{} open in {} ms",
            endpoint.id,
            target.address,
            target.login.port,
            started.elapsed().as_millis()
        ),
    ));
    let hops = ssh::hops(&Route::Eice { endpoint: endpoint.clone(), target: target.clone(), reason: String::new() })
        .unwrap_or_default();
    let trust = super::connect::trust(settings);
    let what = format!("SSH to {label} ({}:{}) through {}", target.address, target.login.port, endpoint.id);
    match client::connect(&hops, &trust, settings.connect_timeout, &client::FinalHop::default(), Some(stream)).await {
        Ok(_) => out.push(check(p, "probe.ssh", Status::Ok, format!("{what} (host key verified, authenticated)"))),
        // The stream ended under SSH: the endpoint's close says why.
        Err(e) => out.push(match ending.error(Duration::from_secs(2)).await {
            Some(why) => {
                let c = check(p, "probe.ssh", Status::Problem, format!("{what}: {}", why.message(&t)));
                match explain(&why) {
                    Some(fix) => c.fix(fix),
                    None => c,
                }
            }
            None => check(p, "probe.ssh", Status::Problem, format!("{what}: {e}")),
        }),
    }
    out
}

/// Read the first line the far side sends (an SSH server speaks first).
async fn banner<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration, what: &str) -> Check {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {
            let line = String::from_utf8_lossy(&buf[..n]);
            let line = line.lines().next().unwrap_or_default().trim().to_string();
            check(Path::Probe, "probe.target", Status::Ok, format!("{what} answered: {line}"))
        }
        Ok(Ok(_)) => check(
            Path::Probe,
            "probe.target",
            Status::Problem,
            format!("{what} closed the connection at once (nothing listening?)"),
        ),
        Ok(Err(e)) => check(Path::Probe, "probe.target", Status::Problem, format!("{what}: {e}")),
        Err(_) => check(
            Path::Probe,
            "probe.target",
            Status::Problem,
            format!("{what}: no answer within {}s", within.as_secs()),
        ),
    }
}

/// The checklist. Summaries, evidence and fixes quote EC2 (tags, group names) and servers
/// (banners, reasons): each is escaped for the terminal.
fn render(instance: &Instance, route: &Route, checks: &[Check], chosen: Path, ok: bool, color: bool) -> String {
    let safe = |text: &str| display::escape(text).into_owned();
    let mut s = safe(&format!(
        "hop doctor: {} ({}) in {} ({}), route: {}",
        instance.label(),
        instance.id,
        instance.vpc_id.as_deref().unwrap_or("no VPC"),
        instance.region,
        route.summary()
    ));
    s.push('\n');
    for path in [Path::Hop, Path::Bastion, Path::Eice, Path::Outbound, Path::Ssm, Path::Probe] {
        let group: Vec<&Check> = checks.iter().filter(|c| c.path == path).collect();
        if group.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{}\n", path.as_str()));
        for c in group {
            let (word, code) = match c.status {
                Status::Ok => ("ok", "32"),
                Status::Problem => ("PROBLEM", "1;31"),
                Status::Warning => ("warning", "33"),
                Status::Unknown => ("unknown", "2"),
            };
            s.push_str(&format!("  {} {}\n", term::paint(&format!("{word:<8}"), code, color), safe(&c.summary)));
            for e in &c.evidence {
                s.push_str(&format!("           seen: {}\n", safe(e)));
            }
            if let Some(f) = &c.fix {
                s.push_str(&format!("           fix:  {}\n", safe(f)));
            }
        }
    }
    let problems = checks.iter().filter(|c| c.status == Status::Problem).count();
    let chosen = match chosen {
        Path::Ssm => "Session Manager",
        Path::Eice => "EC2 Instance Connect Endpoint",
        _ => "SSH",
    };
    s.push_str(&format!(
        "\n{}\n",
        if ok {
            format!("the {chosen} route has no problem ({problems} elsewhere)")
        } else {
            format!("the {chosen} route has problems: fix them in the order shown")
        }
    ));
    s
}
