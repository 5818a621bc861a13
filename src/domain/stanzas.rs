//! Which ssh_config stanzas `hop config` generates for an inventory: host aliases (duplicates
//! get `NAME-ID`), bastions first, ProxyJump by alias, HostKeyAlias = instance id.

use std::collections::{BTreeMap, BTreeSet};

use super::inventory::Instance;
use super::resolve::duplicate_alias;
use super::route::Route;
use super::ssh_config::{Skipped, Stanza, is_plain_alias};

/// An instance and its planned route.
pub struct Planned<'a> {
    pub instance: &'a Instance,
    pub route: Route,
}

/// Host patterns per instance id: `[NAME, ID]`, `[NAME-ID, ID]` when the name is shared, `[ID]`
/// when untagged or when the name is not a safe alias: spaces, `*`, `?`, `!` and `,` would turn
/// it into a pattern, and a `.` or `:` could make it a real host name or address (a Name tag of
/// `github.com` must not capture `ssh github.com`, since hop's Include comes first).
pub fn aliases<'a>(instances: impl IntoIterator<Item = &'a Instance> + Clone) -> BTreeMap<String, Vec<String>> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for i in instances.clone() {
        if let Some(n) = i.name.as_deref() {
            *count.entry(n).or_default() += 1;
        }
    }
    instances
        .into_iter()
        .map(|i| {
            let mut hosts = Vec::new();
            if let Some(n) = i.name.as_deref().filter(|n| is_plain_alias(n) && !n.contains(['.', ':'])) {
                hosts.push(if count[n] > 1 { duplicate_alias(n, &i.id) } else { n.to_string() });
            }
            hosts.push(i.id.clone());
            (i.id.clone(), hosts)
        })
        .collect()
}

/// Stanzas in a deterministic order: bastions that some route uses first (by alias), then every
/// other reachable instance (by alias). Instances hop cannot write a stanza for are `Skipped`.
///
/// SSM targets get `ProxyCommand` = `ssm_proxy` (hop's own `proxy` subcommand, with the
/// instance's region) followed by `%n %p`.
pub fn build(planned: &[Planned], ssm_proxy: &dyn Fn(&Instance) -> Vec<String>) -> (Vec<Stanza>, Vec<Skipped>) {
    let aliases = aliases(planned.iter().map(|p| p.instance));
    let primary = |id: &str| aliases[id][0].clone();
    let used_bastions: BTreeSet<&str> = planned
        .iter()
        .filter_map(|p| match &p.route {
            Route::Jump { bastion, .. } => Some(bastion.id.as_str()),
            _ => None,
        })
        .collect();
    let mut first = Vec::new();
    let mut rest = Vec::new();
    let mut skipped = Vec::new();
    for p in planned {
        let i = p.instance;
        let comment = format!(
            "{} {} {} {}",
            i.label(),
            i.region,
            i.vpc_id.as_deref().unwrap_or("-"),
            i.az.as_deref().unwrap_or("-")
        );
        let mut proxy_command = None;
        let (target, proxy_jump) = match &p.route {
            Route::Direct { target } => (target, None),
            Route::Jump { bastion, target, .. } => (target, Some(primary(&bastion.id))),
            // `hop config` plans without -J; a chain never reaches here.
            Route::Chain { target, .. } => (target, None),
            Route::Ssm { target, .. } => {
                let mut words = ssm_proxy(i);
                words.extend(["%n".to_string(), "%p".to_string()]);
                proxy_command = Some(words);
                (target, None)
            }
            Route::Unreachable { reason } => {
                skipped.push(Skipped { label: format!("{} ({})", i.label(), i.id), reason: reason.clone() });
                continue;
            }
        };
        let stanza = Stanza {
            hosts: aliases[&i.id].clone(),
            comment: Some(comment),
            host_name: target.address.clone(),
            user: target.login.user.clone(),
            port: Some(target.login.port).filter(|&p| p != 22),
            identity_file: target.login.identity.as_ref().map(|p| p.display().to_string()),
            proxy_jump,
            proxy_command,
            host_key_alias: i.id.clone(),
        };
        if used_bastions.contains(i.id.as_str()) { first.push(stanza) } else { rest.push(stanza) }
    }
    first.sort_by(|a, b| a.hosts.cmp(&b.hosts));
    rest.sort_by(|a, b| a.hosts.cmp(&b.hosts));
    skipped.sort_by(|a, b| a.label.cmp(&b.label));
    first.extend(rest);
    (first, skipped)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::inventory::State;
    use crate::domain::inventory::fixture::{instance, public};
    use crate::domain::route::{BastionRule, LoginPolicy, bastions, plan};

    fn planned(inv: &[Instance]) -> (Vec<Stanza>, Vec<Skipped>) {
        let b = bastions(inv, &BastionRule::default());
        let policy = LoginPolicy { user_tag: "hop:user".into(), ssh_dir: "/h/.ssh".into(), ..Default::default() };
        let exists = |p: &Path| p.extension().is_some_and(|e| e == "pem");
        let planned: Vec<Planned> =
            inv.iter().map(|i| Planned { instance: i, route: plan(i, &b, &policy, &exists) }).collect();
        build(&planned, &|i| vec!["/bin/hop".into(), "--region".into(), i.region.clone(), "proxy".into()])
    }

    #[test]
    fn tutorial_stanzas_bastion_first_duplicates_aliased() {
        let mut web = instance("i-w", Some("sample-web"), "vpc-1", "a");
        web.key_name = Some("sample-web".into());
        let mut b = public(instance("i-b", Some("sample-bastion"), "vpc-1", "a"), "203.0.113.10");
        b.key_name = Some("sample-bastion".into());
        let mut old = instance("i-o", Some("sample-old"), "vpc-1", "a");
        old.state = State::Stopped;
        let inv = vec![
            instance("i-a2", Some("api"), "vpc-1", "a"),
            web,
            instance("i-a1", Some("api"), "vpc-1", "a"),
            b,
            instance("i-s", Some("worker"), "vpc-2", "a"),
            instance("i-x", Some("bad name*"), "vpc-1", "a"),
            instance("i-g", Some("github.com"), "vpc-1", "a"),
            old,
        ];
        let (stanzas, skipped) = planned(&inv);
        let hosts: Vec<String> = stanzas.iter().map(|s| s.hosts.join(" ")).collect();
        assert_eq!(
            hosts,
            ["sample-bastion i-b", "api-i-a1 i-a1", "api-i-a2 i-a2", "i-g", "i-x", "sample-web i-w", "worker i-s"]
        );
        let web = &stanzas[5];
        assert_eq!(web.host_name, "10.0.1.10");
        assert_eq!(web.proxy_jump.as_deref(), Some("sample-bastion"));
        assert_eq!(web.identity_file.as_deref(), Some("/h/.ssh/sample-web.pem"));
        assert_eq!(web.host_key_alias, "i-w");
        assert_eq!(stanzas[0].host_name, "203.0.113.10");
        assert_eq!(stanzas[0].proxy_jump, None);
        let labels: Vec<&str> = skipped.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["sample-old (i-o)"]);
        // The SSM-only worker: hop itself is the ProxyCommand, with the instance's region.
        let worker = &stanzas[6];
        assert_eq!(worker.host_name, "i-s");
        assert_eq!(worker.proxy_jump, None);
        assert_eq!(
            worker.proxy_command.as_deref(),
            Some(&["/bin/hop", "--region", "us-east-1", "proxy", "%n", "%p"].map(String::from)[..])
        );
        // Same input in another order: same output.
        let mut rev = inv.clone();
        rev.reverse();
        let (again, _) = planned(&rev);
        assert_eq!(again.iter().map(|s| s.hosts.join(" ")).collect::<Vec<_>>(), hosts);
    }
}
