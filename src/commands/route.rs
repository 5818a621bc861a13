//! `hop route TARGET [--json]`: explain the route and print the equivalent OpenSSH command;
//! connects nowhere.

use std::io::Write;

use serde::Serialize;

use crate::domain::display;
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
        let key = e
            .login
            .identity
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ssh-agent / default keys".into());
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
            lines.extend(hop_lines(&[target]));
        }
        Route::Unreachable { reason } => lines.push(safe(format!("route    unreachable: {reason}"))),
    }
    if let Some(cmd) = openssh_command(route) {
        lines.push(safe(format!("openssh  {cmd}")));
    }
    if let Some(cmd) = aws_cli(settings, i, route) {
        lines.push(safe(format!("aws cli  {cmd}")));
    }
    lines.into_iter().map(|l| l + "\n").collect()
}
