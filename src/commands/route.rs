//! `hop route TARGET [--json]`: explain the route and print the equivalent OpenSSH command;
//! connects nowhere.

use std::io::Write;

use serde::Serialize;

use crate::domain::inventory::Instance;
use crate::domain::route::{Endpoint, Route, openssh_command};
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
}

pub async fn run(settings: &Settings, target: &str, json: bool) -> anyhow::Result<u8> {
    let (_, instance, route) = super::target_route(settings, target).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = RouteJson {
            version: 1,
            target: &instance,
            openssh: openssh_command(&route),
            aws_cli: aws_cli(settings, &instance, &route),
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

/// `hop N` lines, the login column padded so the hops line up.
fn hop_lines(hops: &[&Endpoint]) -> String {
    let logins: Vec<String> = hops.iter().map(|e| format!("{}@{}:{}", e.login.user, e.address, e.login.port)).collect();
    let width = logins.iter().map(String::len).max().unwrap_or(0);
    let mut s = String::new();
    for (n, (e, login)) in hops.iter().zip(&logins).enumerate() {
        let key = e
            .login
            .identity
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ssh-agent / default keys".into());
        let who = format!("{} ({})", e.name.as_deref().unwrap_or(&e.id), e.id);
        s.push_str(&format!("hop {}    {login:width$}  {who}  key {key}\n", n + 1));
    }
    s
}

/// The text form: target, route, each hop, the equivalent command.
pub fn explain(settings: &Settings, i: &Instance, route: &Route) -> String {
    let mut s = format!(
        "target   {} ({}) in {}, {}, {}, {}\n",
        i.label(),
        i.id,
        i.region,
        i.vpc_id.as_deref().unwrap_or("no VPC"),
        i.az.as_deref().unwrap_or("-"),
        i.state.as_str()
    );
    match route {
        Route::Direct { target } => {
            s.push_str("route    direct (public IP)\n");
            s.push_str(&hop_lines(&[target]));
        }
        Route::Jump { bastion, target, choice } => {
            s.push_str(&format!("route    via {}\n", bastion.name.as_deref().unwrap_or(&bastion.id)));
            if let Some(c) = choice {
                s.push_str(&format!("note     {c}\n"));
            }
            s.push_str(&hop_lines(&[bastion, target]));
        }
        Route::Chain { jumps, target } => {
            s.push_str(&format!("route    {} (-J)\n", route.summary()));
            let hops: Vec<&Endpoint> = jumps.iter().chain([target]).collect();
            s.push_str(&hop_lines(&hops));
        }
        Route::Ssm { reason, .. } => {
            s.push_str(&format!("route    ssm ({reason})\n"));
        }
        Route::Unreachable { reason } => {
            s.push_str(&format!("route    unreachable: {reason}\n"));
        }
    }
    if let Some(cmd) = openssh_command(route) {
        s.push_str(&format!("openssh  {cmd}\n"));
    }
    if let Some(cmd) = aws_cli(settings, i, route) {
        s.push_str(&format!("aws cli  {cmd}\n"));
    }
    s
}
