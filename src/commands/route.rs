//! `hop route TARGET [--json]`: explain the route and print the equivalent OpenSSH command;
//! connects nowhere.

use std::io::Write;

use serde::Serialize;

use crate::domain::display;
use crate::domain::inventory::Instance;
use crate::domain::route::{Endpoint, Push, Route, openssh_command, shell_quote};
use crate::settings::Settings;

#[derive(Serialize)]
struct RouteJson<'a> {
    version: u32,
    target: &'a Instance,
    route: &'a Route,
    /// The command that does the same with OpenSSH (null for ssm/unreachable).
    openssh: Option<String>,
    /// For SSM routes: the AWS CLI command (needs session-manager-plugin).
    aws_cli: Option<String>,
    /// For hops that log in with a key pushed by EC2 Instance Connect: the command that pushes
    /// the user's own key, to run right before `openssh` (a pushed key lives 60 s).
    push: Vec<String>,
}

pub async fn run(settings: &Settings, target: &str, json: bool) -> anyhow::Result<u8> {
    let (loaded, instance, route) = super::target_route(settings, target).await?;
    // `--eice` (config, tag) with no usable endpoint: the user's to fix, exit 2 with the reason.
    super::refuse_unreachable(settings, &loaded, &instance, &route)?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = RouteJson {
            version: 1,
            target: &instance,
            openssh: openssh_command(&route),
            aws_cli: aws_cli(settings, &instance, &route),
            push: push_commands(settings, &instance, &route),
            route: &route,
        };
        let mut json = serde_json::to_vec_pretty(&doc)?;
        json.push(b'\n');
        out.write_all(&json)?;
    } else {
        out.write_all(explain(settings, &instance, &route).as_bytes())?;
    }
    out.flush()?;
    Ok(0)
}

fn aws_cli(settings: &Settings, i: &Instance, route: &Route) -> Option<String> {
    let profile =
        if settings.profile == "default" { String::new() } else { format!(" --profile {}", settings.profile) };
    // The document hop's SSH over SSM uses, so the printed command does the same thing.
    match route {
        Route::Ssm { target, .. } => Some(format!(
            "aws ssm start-session --target {} --document-name AWS-StartSSHSession --parameters portNumber={} --region {}{profile}",
            i.id, target.login.port, i.region
        )),
        _ => None,
    }
}

/// The hops of a route, first to last.
fn hops(route: &Route) -> Vec<&Endpoint> {
    match route {
        Route::Direct { target } | Route::Eice { target, .. } => vec![target],
        Route::Jump { bastion, target, .. } => vec![bastion, target],
        Route::Chain { jumps, target } => jumps.iter().chain([target]).collect(),
        Route::Ssm { .. } | Route::Unreachable { .. } => vec![],
    }
}

/// `aws ec2-instance-connect send-ssh-public-key` for every instance hop that logs in with a
/// pushed key: what an OpenSSH user runs before the `openssh` command (hop pushes a key of its
/// own, in memory; OpenSSH needs the user's).
fn push_commands(settings: &Settings, i: &Instance, route: &Route) -> Vec<String> {
    let profile =
        if settings.profile == "default" { String::new() } else { format!(" --profile {}", settings.profile) };
    hops(route)
        .into_iter()
        .filter(|e| e.login.push != Push::No && e.is_instance())
        .map(|e| {
            format!(
                "aws ec2-instance-connect send-ssh-public-key --region {} --instance-id {} --instance-os-user {} --ssh-public-key file://~/.ssh/id_ed25519.pub{profile}",
                i.region,
                e.id,
                shell_quote(&e.login.user)
            )
        })
        .collect()
}

/// `hop N` lines, the login column padded so the hops line up. Each line is escaped: names,
/// users and addresses come from EC2 tags.
fn hop_lines(hops: &[&Endpoint]) -> Vec<String> {
    let logins: Vec<String> = hops
        .iter()
        .map(|e| display::escape(&format!("{}@{}:{}", e.login.user, e.address, e.login.port)).into_owned())
        .collect();
    let width = logins.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut lines = Vec::new();
    for (n, (e, login)) in hops.iter().zip(&logins).enumerate() {
        let file = e.login.identity.as_ref().map(|p| p.display().to_string());
        let key = match (e.login.push, file) {
            (Push::Always, Some(f)) => format!("pushed with EC2 Instance Connect, then {f}"),
            (Push::Always, None) => "pushed with EC2 Instance Connect".into(),
            (Push::Auto, None) => "ssh-agent, else pushed with EC2 Instance Connect".into(),
            (_, Some(f)) => f,
            (_, None) => "ssh-agent / default keys".into(),
        };
        let who = format!("{} ({})", e.name.as_deref().unwrap_or(&e.id), e.id);
        let rest = display::escape(&format!("{who}  key {key}")).into_owned();
        lines.push(format!("hop {}    {login:width$}  {rest}", n + 1));
    }
    lines
}

/// The text form: target, route, each hop, the equivalent command. Every line is escaped for
/// the terminal (tags, key names and reasons come from EC2).
pub fn explain(settings: &Settings, i: &Instance, route: &Route) -> String {
    let safe = |line: String| display::escape(&line).into_owned();
    let mut lines = vec![safe(format!(
        "target   {} ({}) in {}, {}, {}, {}",
        i.label(),
        i.id,
        i.region,
        i.vpc_id.as_deref().unwrap_or("no VPC"),
        i.az.as_deref().unwrap_or("-"),
        i.state.as_str()
    ))];
    match route {
        Route::Direct { target } => {
            lines.push("route    direct (public IP)".into());
            lines.extend(hop_lines(&[target]));
        }
        Route::Jump { bastion, target, choice } => {
            lines.push(safe(format!("route    via {}", bastion.name.as_deref().unwrap_or(&bastion.id))));
            if let Some(c) = choice {
                lines.push(safe(format!("note     {c}")));
            }
            lines.extend(hop_lines(&[bastion, target]));
        }
        Route::Chain { jumps, target } => {
            lines.push(safe(format!("route    {} (-J)", route.summary())));
            let hops: Vec<&Endpoint> = jumps.iter().chain([target]).collect();
            lines.extend(hop_lines(&hops));
        }
        Route::Ssm { reason, .. } => lines.push(safe(format!("route    ssm ({reason})"))),
        Route::Eice { endpoint, target, reason } => {
            lines.push(safe(format!("route    eice {} ({reason})", endpoint.id)));
            lines.push(safe(format!(
                "endpoint {} in {}, wss://{}, tunnels end after {} s",
                endpoint.id, endpoint.subnet_id, endpoint.dns_name, endpoint.max_duration
            )));
            lines.extend(hop_lines(&[target]));
        }
        Route::Unreachable { reason } => lines.push(safe(format!("route    unreachable: {reason}"))),
    }
    for cmd in push_commands(settings, i, route) {
        lines.push(safe(format!("push     {cmd}")));
    }
    if let Some(cmd) = openssh_command(route) {
        lines.push(safe(format!("openssh  {cmd}")));
    }
    if let Some(cmd) = aws_cli(settings, i, route) {
        lines.push(safe(format!("aws cli  {cmd}")));
    }
    lines.into_iter().map(|l| l + "\n").collect()
}
