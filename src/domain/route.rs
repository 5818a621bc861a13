//! Route planning: how to reach an instance (direct, through its VPC's bastion, SSM, or not at
//! all, with the reason), who to log in as, and the equivalent OpenSSH command. Pure: takes the
//! inventory and settings as data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::inventory::{ConnectEndpoint, Instance, State};

/// How a VPC's bastion is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BastionRule {
    pub tag_key: String,
    pub tag_value: String,
}

impl Default for BastionRule {
    fn default() -> Self {
        BastionRule { tag_key: "hop:role".into(), tag_value: "bastion".into() }
    }
}

/// Who to log in as, with which key, on which port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    pub user: String,
    /// None: leave it to ssh-agent and the default identities.
    pub identity: Option<PathBuf>,
    pub port: u16,
    /// Whether this hop logs in with a key pushed by EC2 Instance Connect (spec §B.3).
    pub push: Push,
}

/// EC2 Instance Connect key push for one hop (spec §B.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Push {
    /// Log in with the keys the user holds.
    #[default]
    No,
    /// hop holds no identity file for this hop (no `-i`, no `[hosts]` identity, no file for its
    /// `KeyName` or no `KeyName`): push a key unless ssh-agent offers keys.
    Auto,
    /// Asked for (`--push-key`, config `auth = "instance-connect"`, tag
    /// `hop:auth=instance-connect`): always push, offer the pushed key first.
    Always,
}

/// One SSH hop: an instance, the address to dial, and the login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub name: Option<String>,
    pub address: String,
    #[serde(flatten)]
    pub login: Login,
}

impl Endpoint {
    /// Whether this is an EC2 instance. Route planning gives a host that is none (a `-J` host
    /// hop does not know) its own name as both id and address.
    pub fn is_instance(&self) -> bool {
        self.id != self.address || self.id.starts_with("i-")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Route {
    /// The target has a public IP: connect to it.
    Direct {
        target: Endpoint,
    },
    /// Through the VPC's bastion (ProxyJump). `choice` explains the pick when there were several.
    Jump {
        bastion: Endpoint,
        target: Endpoint,
        choice: Option<String>,
    },
    /// Through jump hosts given with `-J` (any number), in order.
    Chain {
        jumps: Vec<Endpoint>,
        target: Endpoint,
    },
    /// No usable bastion in the VPC: Session Manager.
    /// `target.address` is the instance id (Session Manager's Target), `region` its region.
    Ssm {
        target: Endpoint,
        region: String,
        reason: String,
    },
    /// Through an EC2 Instance Connect Endpoint of the target's VPC (spec §A): SSH runs over a
    /// presigned websocket to `target.address` (its private IP), port 22.
    Eice {
        endpoint: EiceVia,
        target: Endpoint,
        /// Why this route and this endpoint (no bastion; same subnet; asked for; …).
        reason: String,
    },
    Unreachable {
        reason: String,
    },
}

impl Route {
    /// The short form `hop ls` shows: direct / via BASTION / ssm / unreachable.
    pub fn summary(&self) -> String {
        match self {
            Route::Direct { .. } => "direct".into(),
            Route::Jump { bastion, .. } => format!("via {}", bastion.name.as_deref().unwrap_or(&bastion.id)),
            Route::Chain { jumps, .. } => format!(
                "via {}",
                jumps.iter().map(|j| j.name.as_deref().unwrap_or(&j.id)).collect::<Vec<_>>().join(",")
            ),
            Route::Ssm { .. } => "ssm".into(),
            Route::Eice { .. } => "eice".into(),
            Route::Unreachable { .. } => "unreachable".into(),
        }
    }
}

/// The endpoint an EICE route goes through, with what the tunnel needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EiceVia {
    pub id: String,
    pub region: String,
    /// `host[:port]` of the websocket URL.
    pub dns_name: String,
    pub subnet_id: String,
    /// `maxTunnelDuration`, seconds (1–3600; always sent, spec §A.3.4).
    pub max_duration: u32,
    /// The endpoint's security groups and the target's, for the hint when the endpoint cannot
    /// reach the target.
    pub security_groups: Vec<String>,
    pub target_security_groups: Vec<String>,
}

/// The default (and largest) `maxTunnelDuration`.
pub const EICE_MAX_DURATION: u32 = 3600;

/// What a connection is for: decides between EICE and SSM where both could serve (spec §A.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// A shell, a command, `hop proxy` (scp, rsync, ssh): short-lived or interactive.
    #[default]
    Session,
    /// `hop forward`: long-lived; EICE cuts a tunnel at an hour, SSM resumes.
    LongLived,
}

/// Which route a target asks for (`--eice`, `--ssm`, config or tag `hop:route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forced {
    Direct,
    Bastion,
    Ssm,
    /// `--eice [ENDPOINT]`, config `eice = …`, tag `hop:eice`.
    Eice(Option<String>),
}

/// The ways into VPCs besides a public IP: bastions by VPC, EC2 Instance Connect Endpoints.
#[derive(Debug, Clone)]
pub struct Network<'a> {
    pub bastions: BTreeMap<&'a str, Vec<&'a Instance>>,
    pub endpoints: &'a [ConnectEndpoint],
    pub purpose: Purpose,
    /// `--eice`/`--ssm` on the command line: applies to the target; else config and tags.
    pub forced: Option<Forced>,
    /// `maxTunnelDuration` for EICE routes.
    pub eice_max_duration: u32,
}

/// One `-J` element: `[USER@]HOST[:PORT]`, HOST being an instance (name, id, IP) or any host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl std::str::FromStr for JumpSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid jump host {s:?}: {why} (expected [USER@]HOST[:PORT])");
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if valid_user(u) => (Some(u.to_string()), r),
            Some(_) => return Err(bad("bad user name")),
            None => (None, s),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| bad("bad port"))?)),
            None => (rest, None),
        };
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad("bad host"));
        }
        Ok(JumpSpec { user, host: host.to_string(), port })
    }
}

/// `-J a,b`: the route through the given jump hosts instead of the VPC's bastion, as with
/// `ssh -J`. A jump host that is an instance (by name, id or IP) gets its login and host key
/// alias as usual and is dialled at its public IP when first, its private IP after another
/// jump; any other host is dialled as given and known by its name in known_hosts.
pub fn plan_jumps(
    target: &Instance,
    jumps: &[JumpSpec],
    instances: &[Instance],
    policy: &LoginPolicy,
    exists: &dyn Fn(&Path) -> bool,
) -> Route {
    let mut endpoints = Vec::new();
    for (n, spec) in jumps.iter().enumerate() {
        let found = instances.iter().find(|i| {
            i.id == spec.host
                || i.name.as_deref() == Some(spec.host.as_str())
                || i.private_ip.as_deref() == Some(spec.host.as_str())
                || i.public_ip.as_deref() == Some(spec.host.as_str())
        });
        let endpoint = match found {
            Some(i) => {
                let mut login = policy.login(i, false, exists);
                let address = if spec.host.parse::<std::net::IpAddr>().is_ok() {
                    spec.host.clone()
                } else if n == 0 {
                    i.public_ip.clone().or_else(|| i.private_ip.clone()).unwrap_or_default()
                } else {
                    i.private_ip.clone().or_else(|| i.public_ip.clone()).unwrap_or_default()
                };
                if let Some(u) = &spec.user {
                    login.user = u.clone();
                }
                if let Some(p) = spec.port {
                    login.port = p;
                }
                Endpoint { id: i.id.clone(), name: i.name.clone(), address, login }
            }
            None => Endpoint {
                id: spec.host.clone(),
                name: None,
                address: spec.host.clone(),
                login: Login {
                    user: spec
                        .user
                        .clone()
                        .or_else(|| policy.default_user.clone())
                        .unwrap_or_else(|| "ec2-user".into()),
                    identity: None,
                    port: spec.port.unwrap_or(22),
                    push: Push::No,
                },
            },
        };
        endpoints.push(endpoint);
    }
    let Some(address) = target.private_ip.clone().or_else(|| target.public_ip.clone()) else {
        return Route::Unreachable { reason: "instance has neither a public nor a private IP".into() };
    };
    let target = Endpoint {
        id: target.id.clone(),
        name: target.name.clone(),
        address,
        login: policy.login(target, true, exists),
    };
    Route::Chain { jumps: endpoints, target }
}

/// What decides logins, besides the instance's own tags.
#[derive(Debug, Clone, Default)]
pub struct LoginPolicy {
    /// `-l`: the target's user (never the bastion's, as with `ssh -l`).
    pub cli_user: Option<String>,
    /// `-i`: the target's identity.
    pub cli_identity: Option<PathBuf>,
    /// Config file `user`, else "ec2-user".
    pub default_user: Option<String>,
    /// Tag carrying the login user.
    pub user_tag: String,
    /// Config file `[hosts.NAME]` (NAME is a Name tag or an instance id).
    pub overrides: BTreeMap<String, HostOverride>,
    /// Where `<KeyName>.pem` files live (~/.ssh).
    pub ssh_dir: PathBuf,
    /// `--push-key` or config `auth = "instance-connect"`: every instance hop logs in with a key
    /// pushed by EC2 Instance Connect.
    pub push_key: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOverride {
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    pub port: Option<u16>,
    /// `route = "direct" | "bastion" | "ssm" | "eice" | "eice-…"`.
    pub route: Option<Forced>,
    /// `auth = "instance-connect"` (Some(true)) or `"key"` (Some(false)).
    pub push_key: Option<bool>,
}

impl LoginPolicy {
    fn override_for(&self, i: &Instance) -> Option<&HostOverride> {
        self.overrides.get(&i.id).or_else(|| i.name.as_ref().and_then(|n| self.overrides.get(n)))
    }

    /// The login for `i`; `is_target` says whether `-l`/`-i` apply. `exists` is injected so the
    /// `~/.ssh/<KeyName>.pem` convention is testable without files.
    pub fn login(&self, i: &Instance, is_target: bool, exists: &dyn Fn(&Path) -> bool) -> Login {
        let ov = self.override_for(i);
        let user = (if is_target { self.cli_user.clone() } else { None })
            .or_else(|| ov.and_then(|o| o.user.clone()))
            // Anyone who can tag an instance sets this one: only a plain user name is taken.
            .or_else(|| i.tag(&self.user_tag).filter(|u| valid_user(u)).map(str::to_string))
            .or_else(|| self.default_user.clone())
            .unwrap_or_else(|| "ec2-user".to_string());
        let identity = (if is_target { self.cli_identity.clone() } else { None })
            .or_else(|| ov.and_then(|o| o.identity.clone()))
            .or_else(|| {
                // The tutorial's convention: the key pair's file is ~/.ssh/<KeyName>.pem.
                let key = i.key_name.as_deref()?;
                [format!("{key}.pem"), key.to_string()].into_iter().map(|f| self.ssh_dir.join(f)).find(|p| exists(p))
            });
        let port = ov.and_then(|o| o.port).unwrap_or(22);
        let asked = ov
            .and_then(|o| o.push_key)
            .or_else(|| match i.tag("hop:auth") {
                Some("instance-connect") => Some(true),
                Some("key") => Some(false),
                _ => None,
            })
            .unwrap_or(self.push_key);
        let push = if asked {
            Push::Always
        } else if identity.is_none() && ov.and_then(|o| o.push_key) != Some(false) && i.tag("hop:auth") != Some("key") {
            Push::Auto
        } else {
            Push::No
        };
        Login { user, identity, port, push }
    }
}

/// A POSIX-style login name: letters, digits, `_`, `.`, `-`, not starting with `-` (which ssh
/// would read as an option).
pub fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && !u.starts_with('-')
        && u.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The usable bastions of every VPC, best first per VPC before AZ preference: instances tagged
/// with the rule; when a VPC has none tagged, instances whose Name contains "bastion" and that
/// have a public IP. Returned per VPC as (candidates, usable) so callers can say why a VPC's
/// bastion is not usable.
pub fn bastions<'a>(instances: &'a [Instance], rule: &BastionRule) -> BTreeMap<&'a str, Vec<&'a Instance>> {
    let mut tagged: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
    let mut named: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
    for i in instances {
        let Some(vpc) = i.vpc_id.as_deref() else { continue };
        if i.tag(&rule.tag_key) == Some(rule.tag_value.as_str()) {
            tagged.entry(vpc).or_default().push(i);
        } else if i.name.as_ref().is_some_and(|n| n.to_lowercase().contains("bastion")) && i.public_ip.is_some() {
            named.entry(vpc).or_default().push(i);
        }
    }
    for (vpc, list) in named {
        tagged.entry(vpc).or_insert(list);
    }
    for list in tagged.values_mut() {
        list.sort_by(|a, b| (a.label(), &a.id).cmp(&(b.label(), &b.id)));
    }
    tagged
}

fn usable(b: &Instance) -> bool {
    b.state.is_up() && b.public_ip.is_some()
}

/// The Session Manager route to `target`: SSH runs over the data channel, so the login is
/// the one a direct connection would use.
pub fn ssm(target: &Instance, policy: &LoginPolicy, exists: &dyn Fn(&Path) -> bool, reason: String) -> Route {
    let target_endpoint = Endpoint {
        id: target.id.clone(),
        name: target.name.clone(),
        address: target.id.clone(),
        login: policy.login(target, true, exists),
    };
    Route::Ssm { target: target_endpoint, region: target.region.clone(), reason }
}

impl Default for Network<'_> {
    fn default() -> Self {
        Network {
            bastions: BTreeMap::new(),
            endpoints: &[],
            purpose: Purpose::Session,
            forced: None,
            eice_max_duration: EICE_MAX_DURATION,
        }
    }
}

impl<'a> Network<'a> {
    /// Bastions only (no endpoints, nothing forced): the network before EC2 Instance Connect.
    #[cfg(test)]
    pub fn of_bastions(bastions: BTreeMap<&'a str, Vec<&'a Instance>>) -> Network<'a> {
        Network { bastions, ..Default::default() }
    }
}

/// The route a target asks for, and who asked: the command line (`forced`) wins, then
/// `[hosts.NAME] route`, then the tags `hop:eice` (an endpoint id) and `hop:route`.
fn forced_for(target: &Instance, net: &Network, policy: &LoginPolicy) -> Option<(Forced, &'static str)> {
    if let Some(f) = &net.forced {
        let source = match f {
            Forced::Ssm => "--ssm",
            _ => "--eice",
        };
        return Some((f.clone(), source));
    }
    if let Some(f) = policy.override_for(target).and_then(|o| o.route.clone()) {
        return Some((f, "config [hosts] route"));
    }
    if let Some(id) = target.tag("hop:eice").filter(|v| v.starts_with("eice-")) {
        return Some((Forced::Eice(Some(id.to_string())), "tag hop:eice"));
    }
    target.tag("hop:route").and_then(|v| Forced::parse(v).ok()).map(|f| (f, "tag hop:route"))
}

/// Whether the route to `target` was asked to go through an EC2 Instance Connect Endpoint
/// (`--eice`, config, tag): then no usable endpoint is the user's to fix (exit 2), not a
/// connection failure.
pub fn eice_forced(target: &Instance, net: &Network, policy: &LoginPolicy) -> bool {
    matches!(forced_for(target, net, policy), Some((Forced::Eice(_), _)))
}

impl Forced {
    /// `direct`, `bastion`, `ssm`, `eice` or an endpoint id `eice-…` (config and tag values).
    pub fn parse(s: &str) -> Result<Forced, String> {
        match s {
            "direct" => Ok(Forced::Direct),
            "bastion" => Ok(Forced::Bastion),
            "ssm" => Ok(Forced::Ssm),
            "eice" => Ok(Forced::Eice(None)),
            id if id.starts_with("eice-") && id.len() > 5 && id[5..].chars().all(|c| c.is_ascii_alphanumeric()) => {
                Ok(Forced::Eice(Some(id.to_string())))
            }
            other => Err(format!("unknown route {other:?} (expected direct, bastion, ssm, eice or an eice-… id)")),
        }
    }
}

/// The EICE route to `target`, if an endpoint serves it: the one asked for (`wanted`), else the
/// usable endpoints of its VPC, same subnet first, then same AZ, then the lowest id (spec §A.2).
/// Err: why none serves it.
fn eice(
    target: &Instance,
    private_ip: &str,
    net: &Network,
    login: &Login,
    wanted: Option<&str>,
) -> Result<Route, String> {
    if login.port != 22 {
        return Err(format!(
            "an EC2 Instance Connect Endpoint reaches port 22 (and 3389) only, and {} logs in on port {}",
            target.label(),
            login.port
        ));
    }
    let vpc = target.vpc_id.as_deref().unwrap_or_default();
    let (chosen, reason) = match wanted {
        Some(id) => {
            let Some(e) = net.endpoints.iter().find(|e| e.id == id) else {
                return Err(format!("no EC2 Instance Connect Endpoint {id} in {}", target.region));
            };
            if !e.usable() {
                return Err(format!("{id} is {}", e.state));
            }
            if e.vpc_id != vpc && e.preserve_client_ip {
                return Err(format!(
                    "{id} is in {} and preserves the client IP, so it reaches its own VPC only ({} is in {vpc})",
                    e.vpc_id,
                    target.label()
                ));
            }
            (e, "the endpoint asked for".to_string())
        }
        None => {
            let mut in_vpc: Vec<&ConnectEndpoint> =
                net.endpoints.iter().filter(|e| e.vpc_id == vpc && e.region == target.region && e.usable()).collect();
            in_vpc.sort_by(|a, b| {
                let rank = |e: &ConnectEndpoint| {
                    (Some(&e.subnet_id) != target.subnet_id.as_ref(), e.az.is_none() || e.az != target.az)
                };
                (rank(a), &a.id).cmp(&(rank(b), &b.id))
            });
            let Some(&e) = in_vpc.first() else {
                return Err(format!("{vpc} has no usable EC2 Instance Connect Endpoint"));
            };
            let why = if Some(&e.subnet_id) == target.subnet_id.as_ref() {
                "same subnet as the target"
            } else if e.az.is_some() && e.az == target.az {
                "same AZ as the target"
            } else {
                "in the target's VPC"
            };
            let why = if in_vpc.len() > 1 { format!("{why}; {} endpoints in {vpc}", in_vpc.len()) } else { why.into() };
            (e, why)
        }
    };
    let endpoint = EiceVia {
        id: chosen.id.clone(),
        region: chosen.region.clone(),
        dns_name: chosen.dns_name.clone(),
        subnet_id: chosen.subnet_id.clone(),
        max_duration: net.eice_max_duration.clamp(1, EICE_MAX_DURATION),
        security_groups: chosen.security_groups.clone(),
        target_security_groups: target.security_groups.clone(),
    };
    let target =
        Endpoint { id: target.id.clone(), name: target.name.clone(), address: private_ip.into(), login: login.clone() };
    Ok(Route::Eice { endpoint, target, reason: format!("{}, {reason}", chosen.subnet_id) })
}

/// Plan the route to `target` (spec §A.8): what was asked for; else a public IP, direct; else
/// the VPC's bastion; else an EC2 Instance Connect Endpoint for sessions, Session Manager for
/// long-lived work on an instance that has an instance profile (SSM resumes where EICE cuts
/// tunnels at an hour); else Session Manager, which explains itself when it fails.
pub fn plan(target: &Instance, net: &Network, policy: &LoginPolicy, exists: &dyn Fn(&Path) -> bool) -> Route {
    if !target.state.is_up() {
        let fix = match target.state {
            State::Stopped | State::Stopping => {
                format!(" (start it: aws ec2 start-instances --region {} --instance-ids {})", target.region, target.id)
            }
            _ => String::new(),
        };
        return Route::Unreachable { reason: format!("instance is {}{fix}", target.state.as_str()) };
    }
    let endpoint = |i: &Instance, address: &str, is_target: bool| Endpoint {
        id: i.id.clone(),
        name: i.name.clone(),
        address: address.to_string(),
        login: policy.login(i, is_target, exists),
    };
    let (forced, source) = forced_for(target, net, policy).unzip();
    match &forced {
        Some(Forced::Ssm) => return ssm(target, policy, exists, source.unwrap_or_default().into()),
        Some(Forced::Eice(wanted)) => {
            let Some(ip) = target.private_ip.as_deref() else {
                return Route::Unreachable { reason: "instance has no private IPv4 address for EICE".into() };
            };
            return match eice(target, ip, net, &policy.login(target, true, exists), wanted.as_deref()) {
                Ok(Route::Eice { endpoint, target, reason }) => {
                    Route::Eice { endpoint, target, reason: format!("{}; {reason}", source.unwrap_or_default()) }
                }
                Ok(other) => other,
                Err(reason) => Route::Unreachable { reason: format!("{}: {reason}", source.unwrap_or_default()) },
            };
        }
        Some(Forced::Direct) => {
            let Some(ip) = target.public_ip.as_deref() else {
                return Route::Unreachable {
                    reason: "route direct asked for, but the instance has no public IP".into(),
                };
            };
            return Route::Direct { target: endpoint(target, ip, true) };
        }
        Some(Forced::Bastion) | None => {}
    }
    if forced.is_none()
        && let Some(ip) = target.public_ip.as_deref()
    {
        return Route::Direct { target: endpoint(target, ip, true) };
    }
    let Some(private_ip) = target.private_ip.as_deref() else {
        return Route::Unreachable { reason: "instance has neither a public nor a private IP".into() };
    };
    let Some(vpc) = target.vpc_id.as_deref() else {
        return Route::Unreachable { reason: "instance is in no VPC".into() };
    };
    let candidates = net.bastions.get(vpc).map(Vec::as_slice).unwrap_or_default();
    let mut up: Vec<&Instance> = candidates.iter().copied().filter(|b| usable(b) && b.id != target.id).collect();
    if up.is_empty() {
        let reason = match candidates.first() {
            Some(b) => format!(
                "bastion {} ({}) of {vpc} is not usable: {}",
                b.label(),
                b.id,
                if b.state.is_up() { "no public IP" } else { b.state.as_str() }
            ),
            None => format!("{vpc} has no bastion"),
        };
        if forced == Some(Forced::Bastion) {
            return Route::Unreachable { reason };
        }
        let login = policy.login(target, true, exists);
        let ssm_managed = target.instance_profile.is_some();
        if net.purpose == Purpose::LongLived && ssm_managed {
            return ssm(target, policy, exists, format!("{reason}; Session Manager for long-lived work"));
        }
        return match eice(target, private_ip, net, &login, None) {
            Ok(Route::Eice { endpoint, target, reason: why }) => {
                Route::Eice { endpoint, target, reason: format!("{reason}; {why}") }
            }
            Ok(other) => other,
            // A VPC without endpoints is the common case, not worth a word.
            Err(_) if !net.endpoints.iter().any(|e| e.vpc_id == vpc) => ssm(target, policy, exists, reason),
            Err(no_eice) => ssm(target, policy, exists, format!("{reason}; {no_eice}")),
        };
    }
    // Same AZ first (no cross-AZ hop, and it survives an AZ outage with the target), then the
    // stable order `bastions` gave.
    up.sort_by_key(|b| b.az != target.az);
    let b = up[0];
    let choice = (up.len() > 1).then(|| {
        let same_az = b.az == target.az && up[1..].iter().any(|o| o.az != target.az);
        format!(
            "{} bastions in {vpc}; chose {} ({}){}",
            up.len(),
            b.label(),
            b.id,
            if same_az { ", same AZ as the target" } else { ", first by name" }
        )
    });
    Route::Jump {
        bastion: endpoint(b, b.public_ip.as_deref().unwrap_or_default(), false),
        target: endpoint(target, private_ip, true),
        choice,
    }
}

/// The OpenSSH command that does what hop would do, host key alias included so both share
/// known_hosts entries. `ssh -J` cannot give the jump host its own key (`-i` only reaches the
/// final host), so when the bastion needs a different identity the command spells the jump as
/// a ProxyCommand instead.
pub fn openssh_command(route: &Route) -> Option<String> {
    fn dest(e: &Endpoint) -> String {
        let mut s = String::new();
        if e.login.port != 22 {
            s.push_str(&format!("-p {} ", e.login.port));
        }
        if let Some(id) = &e.login.identity {
            s.push_str(&format!("-i {} ", shell_quote(&id.display().to_string())));
        }
        // A host that is no instance is known as ssh knows it (`[HOST]:PORT` off port 22), as hop
        // records it too: no alias.
        if e.is_instance() {
            s.push_str(&format!("-o HostKeyAlias={} ", e.id));
        }
        s.push_str(&shell_quote(&format!("{}@{}", e.login.user, e.address)));
        s
    }
    match route {
        Route::Direct { target } => Some(format!("ssh {}", dest(target))),
        Route::Jump { bastion, target, .. } => {
            // The process `-J` starts gets neither `-i` nor `-o`: only a bastion that needs no
            // key file of its own can be written that way.
            if bastion.login.identity.is_none() {
                let port = if bastion.login.port != 22 { format!(":{}", bastion.login.port) } else { String::new() };
                let jump = shell_quote(&format!("{}@{}{port}", bastion.login.user, bastion.address));
                Some(format!("ssh -J {jump} {}", dest(target)))
            } else {
                let inner = format!("ssh {} -W %h:%p", dest(bastion));
                Some(format!("ssh -o ProxyCommand={} {}", shell_quote(&inner), dest(target)))
            }
        }
        Route::Chain { jumps, target } => {
            // Each jump's key goes through a ProxyCommand of its own, innermost first.
            let mut proxy: Option<String> = None;
            for j in jumps {
                let via = proxy.map(|p| format!("-o ProxyCommand={} ", shell_quote(&p))).unwrap_or_default();
                proxy = Some(format!("ssh {via}{} -W %h:%p", dest(j)));
            }
            let via = proxy.map(|p| format!("-o ProxyCommand={} ", shell_quote(&p))).unwrap_or_default();
            Some(format!("ssh {via}{}", dest(target)))
        }
        Route::Eice { endpoint, target, .. } => {
            // What `aws ec2-instance-connect ssh` runs (spec §A.8), with hop's host key alias.
            let inner = format!(
                "aws ec2-instance-connect open-tunnel --region {} --instance-id {} --instance-connect-endpoint-id {} \
                 --private-ip-address {} --remote-port {} --max-tunnel-duration {}",
                endpoint.region, target.id, endpoint.id, target.address, target.login.port, endpoint.max_duration
            );
            Some(format!("ssh -o ProxyCommand={} {}", shell_quote(&inner), dest(target)))
        }
        Route::Ssm { .. } | Route::Unreachable { .. } => None,
    }
}

/// Quote for a POSIX shell, only when needed.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%=+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixture::{instance, public};

    fn policy() -> LoginPolicy {
        LoginPolicy { user_tag: "hop:user".into(), ssh_dir: PathBuf::from("/home/u/.ssh"), ..Default::default() }
    }

    fn keyed(mut i: Instance, key: &str) -> Instance {
        i.key_name = Some(key.into());
        i
    }

    fn tutorial() -> Vec<Instance> {
        vec![
            keyed(
                public(instance("i-b", Some("sample-bastion"), "vpc-1", "us-east-1a"), "203.0.113.10"),
                "sample-bastion",
            ),
            keyed(instance("i-w", Some("sample-web"), "vpc-1", "us-east-1a"), "sample-web"),
            instance("i-s", Some("sample-worker"), "vpc-2", "us-east-1a"),
        ]
    }

    fn all_exist(_: &Path) -> bool {
        true
    }

    fn route_of(inv: &[Instance], id: &str, exists: &dyn Fn(&Path) -> bool) -> Route {
        let b = bastions(inv, &BastionRule::default());
        plan(inv.iter().find(|i| i.id == id).unwrap(), &Network::of_bastions(b), &policy(), exists)
    }

    #[test]
    fn eice_routes_follow_the_spec_order() {
        use crate::domain::inventory::fixture::eice;
        let mut inv = tutorial();
        inv[2].subnet_id = Some("subnet-b".into());
        let endpoints = vec![
            eice("eice-0b", "vpc-2", "subnet-a"),
            eice("eice-0a", "vpc-9", "subnet-x"),
            eice("eice-0c", "vpc-2", "subnet-b"),
        ];
        let by_vpc = bastions(&inv, &BastionRule::default());
        let net = |purpose, forced| Network {
            bastions: by_vpc.clone(),
            endpoints: &endpoints,
            purpose,
            forced,
            eice_max_duration: 600,
        };
        let route =
            |id: &str, net: &Network| plan(inv.iter().find(|i| i.id == id).unwrap(), net, &policy(), &all_exist);
        // No bastion in vpc-2: the endpoint of the target's subnet, over the lower id elsewhere.
        match route("i-s", &net(Purpose::Session, None)) {
            Route::Eice { endpoint, target, reason } => {
                assert_eq!((endpoint.id.as_str(), endpoint.max_duration), ("eice-0c", 600));
                assert_eq!(target.address, "10.0.1.10");
                assert!(reason.contains("same subnet as the target"), "{reason}");
            }
            r => panic!("{r:?}"),
        }
        // A bastion wins; public IPs stay direct; asking for EICE wins over the bastion.
        assert_eq!(route("i-w", &net(Purpose::Session, None)).summary(), "via sample-bastion");
        assert_eq!(route("i-b", &net(Purpose::Session, None)).summary(), "direct");
        assert_eq!(route("i-w", &net(Purpose::Session, Some(Forced::Eice(None)))).summary(), "unreachable");
        // Long-lived work on an instance with a profile: Session Manager (no hourly cut).
        assert_eq!(route("i-s", &net(Purpose::LongLived, None)).summary(), "eice");
        let mut managed = inv[2].clone();
        managed.instance_profile = Some("ssm-role".into());
        let plan_managed = |purpose| plan(&managed, &net(purpose, None), &policy(), &all_exist).summary();
        assert_eq!(plan_managed(Purpose::LongLived), "ssm");
        assert_eq!(plan_managed(Purpose::Session), "eice");
        // An endpoint of another VPC only when asked for, and never one that preserves client IPs.
        match route("i-s", &net(Purpose::Session, Some(Forced::Eice(Some("eice-0a".into()))))) {
            Route::Eice { endpoint, .. } => assert_eq!(endpoint.id, "eice-0a"),
            r => panic!("{r:?}"),
        }
        // Another port than 22: no EICE, with the reason.
        let mut p = policy();
        p.overrides.insert("sample-worker".into(), HostOverride { port: Some(2222), ..Default::default() });
        match plan(&inv[2], &net(Purpose::Session, Some(Forced::Eice(None))), &p, &all_exist) {
            Route::Unreachable { reason } => assert!(reason.contains("port 22 (and 3389) only"), "{reason}"),
            r => panic!("{r:?}"),
        }
        assert_eq!(plan(&inv[2], &net(Purpose::Session, None), &p, &all_exist).summary(), "ssm");
    }

    #[test]
    fn tutorial_routes() {
        let inv = tutorial();
        let table = [("i-b", "direct"), ("i-w", "via sample-bastion"), ("i-s", "ssm")];
        for (id, want) in table {
            assert_eq!(route_of(&inv, id, &all_exist).summary(), want, "{id}");
        }
    }

    #[test]
    fn stopped_is_unreachable_with_the_fix() {
        let mut inv = tutorial();
        inv[1].state = State::Stopped;
        match route_of(&inv, "i-w", &all_exist) {
            Route::Unreachable { reason } => {
                assert!(
                    reason.contains("stopped")
                        && reason.contains("start-instances --region us-east-1 --instance-ids i-w"),
                    "{reason}"
                )
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn stopped_bastion_falls_back_to_ssm_and_says_why() {
        let mut inv = tutorial();
        inv[0].state = State::Stopped;
        match route_of(&inv, "i-w", &all_exist) {
            Route::Ssm { reason, .. } => {
                assert!(reason.contains("sample-bastion (i-b) of vpc-1 is not usable: stopped"), "{reason}")
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn tagged_bastion_wins_over_name_and_needs_no_bastion_in_its_name() {
        let mut inv = tutorial();
        let mut jump = public(instance("i-j", Some("edge-jump"), "vpc-1", "us-east-1b"), "203.0.113.11");
        jump.tags.insert("hop:role".into(), "bastion".into());
        inv.push(jump);
        assert_eq!(route_of(&inv, "i-w", &all_exist).summary(), "via edge-jump");
    }

    #[test]
    fn several_bastions_same_az_first_then_name_order() {
        let mut inv = tutorial();
        inv.push(public(instance("i-a", Some("a-bastion"), "vpc-1", "us-east-1b"), "203.0.113.12"));
        // Same AZ (1a) beats the alphabetically first bastion in 1b.
        match route_of(&inv, "i-w", &all_exist) {
            Route::Jump { bastion, choice, .. } => {
                assert_eq!(bastion.id, "i-b");
                assert_eq!(
                    choice.as_deref(),
                    Some("2 bastions in vpc-1; chose sample-bastion (i-b), same AZ as the target")
                );
            }
            r => panic!("{r:?}"),
        }
        // No bastion in the target's AZ: first by name.
        inv[1].az = Some("us-east-1c".into());
        match route_of(&inv, "i-w", &all_exist) {
            Route::Jump { bastion, choice, .. } => {
                assert_eq!(bastion.id, "i-a");
                assert!(choice.unwrap().ends_with("first by name"));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn a_bastion_named_so_without_public_ip_is_no_bastion() {
        let mut inv = tutorial();
        inv[0].public_ip = None;
        assert_eq!(route_of(&inv, "i-w", &all_exist).summary(), "ssm");
    }

    #[test]
    fn login_precedence() {
        let mut p = policy();
        let mut web = keyed(instance("i-w", Some("sample-web"), "vpc-1", "a"), "sample-web");
        let none = |_: &Path| false;
        let pem_only = |p: &Path| p.extension().is_some_and(|e| e == "pem");
        let bare_only = |p: &Path| p.extension().is_none();
        // Defaults: ec2-user, no identity when no key file exists.
        assert_eq!(
            p.login(&web, true, &none),
            Login { user: "ec2-user".into(), identity: None, port: 22, push: Push::Auto }
        );
        assert_eq!(p.login(&web, true, &pem_only).identity, Some(PathBuf::from("/home/u/.ssh/sample-web.pem")));
        assert_eq!(p.login(&web, true, &bare_only).identity, Some(PathBuf::from("/home/u/.ssh/sample-web")));
        p.default_user = Some("admin".into());
        assert_eq!(p.login(&web, true, &none).user, "admin");
        web.tags.insert("hop:user".into(), "$(touch x)".into());
        assert_eq!(p.login(&web, true, &none).user, "admin", "an unsafe tag is ignored");
        web.tags.insert("hop:user".into(), "-oProxyCommand=x".into());
        assert_eq!(p.login(&web, true, &none).user, "admin", "an option-looking tag is ignored");
        web.tags.insert("hop:user".into(), "ubuntu".into());
        assert_eq!(p.login(&web, true, &none).user, "ubuntu");
        p.overrides.insert(
            "sample-web".into(),
            HostOverride {
                user: Some("deploy".into()),
                identity: Some("/k".into()),
                port: Some(2222),
                ..Default::default()
            },
        );
        assert_eq!(
            p.login(&web, true, &pem_only),
            Login { user: "deploy".into(), identity: Some("/k".into()), port: 2222, push: Push::No }
        );
        p.cli_user = Some("root".into());
        p.cli_identity = Some("/cli".into());
        assert_eq!(p.login(&web, true, &none).user, "root");
        assert_eq!(p.login(&web, true, &none).identity, Some(PathBuf::from("/cli")));
        // -l and -i never apply to a bastion.
        assert_eq!(p.login(&web, false, &none).user, "deploy");
    }

    #[test]
    fn openssh_equivalents() {
        let inv = tutorial();
        let pem = |p: &Path| p.extension().is_some_and(|e| e == "pem");
        assert_eq!(
            openssh_command(&route_of(&inv, "i-w", &pem)).unwrap(),
            "ssh -o ProxyCommand='ssh -i /home/u/.ssh/sample-bastion.pem -o HostKeyAlias=i-b ec2-user@203.0.113.10 -W %h:%p' \
             -i /home/u/.ssh/sample-web.pem -o HostKeyAlias=i-w ec2-user@10.0.1.10"
        );
        let none = |_: &Path| false;
        assert_eq!(
            openssh_command(&route_of(&inv, "i-w", &none)).unwrap(),
            "ssh -J ec2-user@203.0.113.10 -o HostKeyAlias=i-w ec2-user@10.0.1.10"
        );
        assert_eq!(
            openssh_command(&route_of(&inv, "i-b", &pem)).unwrap(),
            "ssh -i /home/u/.ssh/sample-bastion.pem -o HostKeyAlias=i-b ec2-user@203.0.113.10"
        );
        assert_eq!(openssh_command(&route_of(&inv, "i-s", &pem)), None);
        // A host that is no instance gets no alias: ssh then records it as `[HOST]:PORT`, as hop.
        let jump = Endpoint {
            id: "jump.example".into(),
            name: None,
            address: "jump.example".into(),
            login: Login { user: "me".into(), identity: None, port: 2222, push: Push::No },
        };
        assert!(!jump.is_instance());
        assert_eq!(openssh_command(&Route::Direct { target: jump }).unwrap(), "ssh -p 2222 me@jump.example");
        // The same key file on both hops still needs the ProxyCommand form: `-J` would not pass it.
        let mut same = tutorial();
        same[0].key_name = Some("sample-web".into());
        assert!(
            openssh_command(&route_of(&same, "i-w", &pem))
                .unwrap()
                .starts_with("ssh -o ProxyCommand='ssh -i /home/u/.ssh/sample-web.pem")
        );
    }

    type Parsed<'a> = Option<(Option<&'a str>, &'a str, Option<u16>)>;

    #[test]
    fn jump_specs() {
        let table: [(&str, Parsed); 7] = [
            ("bastion", Some((None, "bastion", None))),
            ("admin@bastion", Some((Some("admin"), "bastion", None))),
            ("admin@203.0.113.10:2222", Some((Some("admin"), "203.0.113.10", Some(2222)))),
            ("bastion:0", None),
            ("bastion:x", None),
            ("-oProxyCommand=x", None),
            ("$(x)@bastion", None),
        ];
        for (s, want) in table {
            let got = s.parse::<JumpSpec>().ok().map(|j| (j.user, j.host, j.port));
            let want = want.map(|(u, h, p)| (u.map(String::from), h.to_string(), p));
            assert_eq!(got, want, "{s}");
        }
    }

    #[test]
    fn jumps_override_the_bastion() {
        let inv = tutorial();
        let pem = |p: &Path| p.extension().is_some_and(|e| e == "pem");
        let jumps = vec!["sample-bastion".parse().unwrap(), "root@10.9.9.9:2200".parse().unwrap()];
        let route = plan_jumps(&inv[1], &jumps, &inv, &policy(), &pem);
        match &route {
            Route::Chain { jumps, target } => {
                assert_eq!((jumps[0].id.as_str(), jumps[0].address.as_str()), ("i-b", "203.0.113.10"));
                assert_eq!(jumps[0].login.identity, Some(PathBuf::from("/home/u/.ssh/sample-bastion.pem")));
                assert_eq!(
                    (jumps[1].id.as_str(), jumps[1].login.user.as_str(), jumps[1].login.port),
                    ("10.9.9.9", "root", 2200)
                );
                assert_eq!(target.address, "10.0.1.10");
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(route.summary(), "via sample-bastion,10.9.9.9");
        assert!(
            openssh_command(&route)
                .unwrap()
                .starts_with("ssh -o ProxyCommand='ssh -o ProxyCommand='\\''ssh -i /home/u/.ssh/sample-bastion.pem")
        );
    }

    #[test]
    fn shell_quoting() {
        for (s, want) in [("abc", "abc"), ("a b", "'a b'"), ("it's", r"'it'\''s'"), ("", "''")] {
            assert_eq!(shell_quote(s), want);
        }
    }
}
