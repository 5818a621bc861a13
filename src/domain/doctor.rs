//! `hop doctor`: why a host is unreachable and how to fix it. Pure: a snapshot of the target's
//! VPC in, checks out (ok / problem / warning / unknown), each with the evidence seen and the
//! exact fix. The adapter fetches the snapshot; the command prints the checks.

use std::net::IpAddr;

use serde::Serialize;

use crate::domain::filter::glob;
use crate::domain::inventory::ConnectEndpoint;

/// One VPC as EC2 (and Session Manager) describe it, reduced to what the rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub region: String,
    pub vpc_id: String,
    pub instances: Vec<Host>,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<RouteTable>,
    /// Internet gateways attached to this VPC.
    pub igws: Vec<String>,
    pub nat_gateways: Vec<NatGateway>,
    pub security_groups: Vec<SecurityGroup>,
    pub nacls: Vec<Nacl>,
    pub endpoints: Vec<Endpoint>,
    /// The target's instance-profile associations (EC2 shows an association's profile on the
    /// instance while it is still being attached or removed; only this says which).
    pub profile_associations: Vec<ProfileAssociation>,
    /// Session Manager's view of the target's agent: None when it could not be asked.
    pub agent: Option<Agent>,
    /// The managed prefix lists security-group rules name, with their entries when read.
    pub prefix_lists: Vec<PrefixList>,
    /// The VPC's EC2 Instance Connect Endpoints, in every state (a deleted or failed one is
    /// worth a word too).
    pub eices: Vec<Eice>,
    /// Why `eices` could not be listed (then it is empty and says nothing).
    pub eices_unlisted: Option<Unlisted>,
}

/// Why a listing is missing from the snapshot: it is a finding, not a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Unlisted {
    /// UnauthorizedOperation or AccessDenied: the identity lacks the permission.
    Denied(String),
    /// Any other error.
    Failed(String),
}

/// An EC2 Instance Connect Endpoint as DescribeInstanceConnectEndpoints shows it, in any state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Eice {
    pub id: String,
    /// `arn:aws:ec2:REGION:ACCOUNT:instance-connect-endpoint/ID`, when EC2 gave it.
    pub arn: Option<String>,
    pub vpc_id: String,
    pub subnet_id: String,
    /// As the API names it: `create-complete`, `delete-in-progress`, …
    pub state: String,
    pub state_message: Option<String>,
    pub security_groups: Vec<String>,
    pub preserve_client_ip: bool,
}

impl Eice {
    pub fn usable(&self) -> bool {
        ConnectEndpoint::USABLE_STATES.contains(&self.state.as_str())
    }
}

impl From<&ConnectEndpoint> for Eice {
    fn from(e: &ConnectEndpoint) -> Eice {
        Eice {
            id: e.id.clone(),
            arn: None,
            vpc_id: e.vpc_id.clone(),
            subnet_id: e.subnet_id.clone(),
            state: e.state.clone(),
            state_message: e.state_message.clone(),
            security_groups: e.security_groups.clone(),
            preserve_client_ip: e.preserve_client_ip,
        }
    }
}

/// A managed prefix list (`pl-…`) a security-group rule names as its source or destination.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixList {
    pub id: String,
    /// Its CIDRs, or why hop could not read them.
    pub entries: Result<Vec<String>, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Host {
    pub id: String,
    pub name: Option<String>,
    pub state: String,
    pub public_ip: Option<String>,
    pub private_ip: Option<String>,
    pub subnet_id: Option<String>,
    pub security_groups: Vec<String>,
    pub source_dest_check: bool,
    pub instance_profile: Option<String>,
    /// `t3.micro`, …: an endpoint that preserves client IPs cannot reach some old families.
    pub instance_type: Option<String>,
}

impl Host {
    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subnet {
    pub id: String,
    pub availability_zone: String,
    /// Its IPv4 CIDR: an endpoint's traffic comes from an address of its subnet.
    pub cidr: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileAssociation {
    pub instance_id: String,
    pub arn: String,
    /// associating, associated, disassociating, disassociated.
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTable {
    pub id: String,
    pub main: bool,
    pub subnets: Vec<String>,
    pub routes: Vec<RouteEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEntry {
    /// A CIDR, or a prefix list id (gateway endpoints).
    pub destination: String,
    pub target: RouteTarget,
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    Local,
    Igw(String),
    Nat(String),
    Instance(String),
    Endpoint(String),
    Other(String),
}

impl std::fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteTarget::Local => f.write_str("local"),
            RouteTarget::Igw(s)
            | RouteTarget::Nat(s)
            | RouteTarget::Instance(s)
            | RouteTarget::Endpoint(s)
            | RouteTarget::Other(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatGateway {
    pub id: String,
    pub subnet_id: String,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub ingress: Vec<Permission>,
    pub egress: Vec<Permission>,
}

/// One permission: protocol ("-1" for all, "tcp", …), port range, sources (or destinations):
/// IPv4 and IPv6 ranges, security groups, managed prefix lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permission {
    pub protocol: String,
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub cidrs: Vec<String>,
    pub groups: Vec<String>,
    pub prefix_lists: Vec<String>,
}

impl Permission {
    pub fn covers(&self, port: u16) -> bool {
        match self.protocol.as_str() {
            "-1" | "all" => true,
            "tcp" | "6" => match (self.from, self.to) {
                (Some(f), Some(t)) => f == -1 || (f <= i32::from(port) && i32::from(port) <= t),
                _ => true,
            },
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nacl {
    pub id: String,
    pub subnets: Vec<String>,
    pub entries: Vec<NaclEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NaclEntry {
    pub number: i32,
    pub egress: bool,
    pub protocol: String,
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub cidr: String,
    pub allow: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub service: String,
    /// "Interface" or "Gateway".
    pub kind: String,
    pub private_dns: bool,
    pub groups: Vec<String>,
    pub route_tables: Vec<String>,
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    NotRegistered,
    Registered { ping_status: String, agent_version: String },
}

/// An IPv4 or IPv6 network. The families never match each other: `::/0` says nothing about
/// an IPv4 caller, `0.0.0.0/0` nothing about an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(Cidr { addr, len })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // The address as 128 bits, left-aligned, so one mask serves both families.
        fn bits(ip: IpAddr) -> u128 {
            match ip {
                IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
                IpAddr::V6(a) => u128::from(a),
            }
        }
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        // Left-aligned, a prefix of either family is the top `len` bits.
        let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
        (bits(self.addr) & mask) == (bits(ip) & mask)
    }
    /// Whether every address of `other` is in `self`.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.len <= other.len && self.contains(other.addr)
    }
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

fn cidr_covers(cidr: &str, what: &Cidr) -> bool {
    cidr.parse::<Cidr>().is_ok_and(|c| c.covers(what))
}

fn ip(s: &Option<String>) -> Option<Cidr> {
    s.as_deref().and_then(|s| s.parse().ok())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    Hop,
    Bastion,
    /// Through an EC2 Instance Connect Endpoint.
    Eice,
    Outbound,
    Ssm,
    /// `--probe`: the route tried for real.
    Probe,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Hop => "hop",
            Path::Bastion => "bastion",
            Path::Eice => "eice",
            Path::Outbound => "outbound",
            Path::Ssm => "ssm",
            Path::Probe => "probe",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Problem,
    Warning,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub path: Path,
    /// Stable id, e.g. `bastion.igw-route`.
    pub check: &'static str,
    pub status: Status,
    pub summary: String,
    /// What was seen: ids, rules, routes.
    pub evidence: Vec<String>,
    /// The command or console step that fixes a problem.
    pub fix: Option<String>,
}

pub fn check(path: Path, id: &'static str, status: Status, summary: impl Into<String>) -> Check {
    Check { path, check: id, status, summary: summary.into(), evidence: Vec::new(), fix: None }
}

impl Check {
    pub fn evidence(mut self, e: impl Into<String>) -> Check {
        self.evidence.push(e.into());
        self
    }
    pub fn fix(mut self, f: impl Into<String>) -> Check {
        self.fix = Some(f.into());
        self
    }
}

/// What the command knows beyond the snapshot.
pub struct Input<'a> {
    pub target: &'a str,
    /// The host hop would enter the VPC through (the bastion, or the target itself for a
    /// direct route); None for SSM and EICE.
    pub entry: Option<&'a str>,
    pub my_ip: Option<Cidr>,
    /// The EC2 Instance Connect Endpoint the route goes through, as discovery saw it (the
    /// snapshot's fresher record of the same id wins); None when the route is no EICE route.
    pub eice: Option<Eice>,
    /// The port hop logs in to the target on (an endpoint reaches 22 only).
    pub port: u16,
}

impl Default for Input<'_> {
    fn default() -> Self {
        Input { target: "", entry: None, my_ip: None, eice: None, port: 22 }
    }
}

impl Snapshot {
    fn host(&self, id: &str) -> Option<&Host> {
        self.instances.iter().find(|h| h.id == id)
    }

    /// The route table a subnet uses: its explicit association, else the VPC's main table.
    pub fn table_of(&self, subnet: &str) -> Option<&RouteTable> {
        self.route_tables
            .iter()
            .find(|t| t.subnets.iter().any(|s| s == subnet))
            .or_else(|| self.route_tables.iter().find(|t| t.main))
    }

    fn default_route(&self, subnet: &str) -> Option<(&RouteTable, Option<&RouteEntry>)> {
        let table = self.table_of(subnet)?;
        Some((table, table.routes.iter().find(|r| r.destination == "0.0.0.0/0")))
    }

    /// Whether a subnet is public: 0.0.0.0/0 to an attached internet gateway, active.
    fn is_public(&self, subnet: &str) -> bool {
        matches!(self.default_route(subnet), Some((_, Some(r)))
            if !r.blackhole && matches!(&r.target, RouteTarget::Igw(g) if self.igws.contains(g)))
    }

    /// Where a new NAT gateway for `near` should go: a public subnet, in `near`'s
    /// availability zone when there is one (no cross-AZ traffic), else the first by id.
    fn public_subnet_near(&self, near: &str) -> Option<&str> {
        let az = self.subnets.iter().find(|s| s.id == near).map(|s| s.availability_zone.as_str());
        self.subnets
            .iter()
            .filter(|s| self.is_public(&s.id))
            .min_by_key(|s| (Some(s.availability_zone.as_str()) != az, s.id.as_str()))
            .map(|s| s.id.as_str())
    }

    /// An available NAT gateway in a public subnet, which a route can point at right away.
    fn usable_nat(&self) -> Option<&NatGateway> {
        self.nat_gateways
            .iter()
            .filter(|g| g.state == "available" && self.is_public(&g.subnet_id))
            .min_by_key(|g| &g.id)
    }

    fn groups(&self, ids: &[String]) -> Vec<&SecurityGroup> {
        self.security_groups.iter().filter(|g| ids.contains(&g.id)).collect()
    }

    fn nacl_of(&self, subnet: &str) -> Option<&Nacl> {
        self.nacls.iter().find(|n| n.subnets.iter().any(|s| s == subnet))
    }
}

/// What the security groups say about one peer.
#[derive(Debug)]
enum Reach<'a> {
    /// This group's rule lets it through, via this source (CIDR, group, or prefix list).
    Allowed(&'a SecurityGroup, String),
    /// No rule hop can read lets it through, but these rules name prefix lists hop could not
    /// read (one line each): the answer depends on them.
    Unknown(Vec<String>),
    Denied,
}

/// Which rule of `groups` (ingress, or egress) lets TCP `port` through for `peer` (an
/// address, and the groups it belongs to). Prefix lists count by their entries.
fn sg_allows<'a>(
    groups: &[&'a SecurityGroup],
    lists: &[PrefixList],
    egress: bool,
    port: u16,
    peer: Option<&Cidr>,
    peer_groups: &[String],
) -> Reach<'a> {
    let mut unread = Vec::new();
    for g in groups {
        let rules = if egress { &g.egress } else { &g.ingress };
        for p in rules.iter().filter(|p| p.covers(port)) {
            if let Some(c) = peer.and_then(|peer| p.cidrs.iter().find(|c| cidr_covers(c, peer))) {
                return Reach::Allowed(g, c.clone());
            }
            if let Some(s) = p.groups.iter().find(|s| peer_groups.contains(s)) {
                return Reach::Allowed(g, s.clone());
            }
            let Some(peer) = peer else { continue };
            for id in &p.prefix_lists {
                match lists.iter().find(|l| &l.id == id).map(|l| &l.entries) {
                    Some(Ok(entries)) => {
                        if let Some(c) = entries.iter().find(|c| cidr_covers(c, peer)) {
                            return Reach::Allowed(g, format!("{id} (its entry {c})"));
                        }
                    }
                    Some(Err(why)) => {
                        unread.push(format!("{}: tcp {port} {} {id}: {why}", g.id, if egress { "to" } else { "from" }))
                    }
                    None => unread.push(format!(
                        "{}: tcp {port} {} {id}: its entries were not read",
                        g.id,
                        if egress { "to" } else { "from" }
                    )),
                }
            }
        }
    }
    if unread.is_empty() { Reach::Denied } else { Reach::Unknown(unread) }
}

/// The check for a rule that depends on prefix lists hop could not read: unknown, never a
/// problem with a fix that would add a rule the list may already grant.
fn unread_lists(p: Path, id: &'static str, summary: String, unread: Vec<String>) -> Check {
    unread.into_iter().fold(check(p, id, Status::Unknown, summary), |c, e| c.evidence(e))
}

/// `aws ec2 authorize-security-group-ingress` for TCP 22 from `peer` (IPv6 ranges have no
/// shorthand flag).
fn authorize_ssh(region: &str, group: &str, peer: &str, ipv6: bool) -> String {
    if ipv6 {
        format!(
            "aws ec2 authorize-security-group-ingress --region {region} --group-id {group} --ip-permissions 'IpProtocol=tcp,FromPort=22,ToPort=22,Ipv6Ranges=[{{CidrIpv6={peer}}}]'"
        )
    } else {
        format!(
            "aws ec2 authorize-security-group-ingress --region {region} --group-id {group} --protocol tcp --port 22 --cidr {peer}"
        )
    }
}

/// NACLs are stateless and ordered: the first entry that matches decides.
fn nacl_allows(nacl: &Nacl, egress: bool, port: u16, peer: &Cidr) -> Option<(bool, i32)> {
    let mut entries: Vec<&NaclEntry> = nacl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.number);
    entries
        .into_iter()
        .find(|e| {
            let proto = matches!(e.protocol.as_str(), "-1" | "6" | "tcp");
            let ports = match (e.from, e.to) {
                (Some(f), Some(t)) => f <= i32::from(port) && i32::from(port) <= t,
                _ => true,
            };
            proto && ports && cidr_covers(&e.cidr, peer)
        })
        .map(|e| (e.allow, e.number))
}

/// The checks for `input.target` in `snap`, grouped by path (bastion, outbound, SSM).
pub fn diagnose(snap: &Snapshot, input: &Input) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(target) = snap.host(input.target) else {
        out.push(check(
            Path::Hop,
            "hop.target",
            Status::Unknown,
            format!("{} is not in {}", input.target, snap.vpc_id),
        ));
        return out;
    };
    match input.entry.map(|e| (e, snap.host(e))) {
        Some((_, Some(entry))) => bastion_path(snap, target, entry, input.my_ip, &mut out),
        Some((e, None)) => out.push(check(
            Path::Bastion,
            "bastion.present",
            Status::Unknown,
            format!("the first hop, {e}, is not an instance of {}: its path is not checked", snap.vpc_id),
        )),
        // The EICE checks below tell that route's story.
        None if input.eice.is_some() => {}
        None => out.push(check(
            Path::Bastion,
            "bastion.present",
            Status::Warning,
            format!("{} has no usable bastion: hop uses Session Manager", snap.vpc_id),
        )),
    }
    // EICE matters when the route takes it, or when there is no bastion and the VPC has an
    // endpoint (or hop may not look): then say why hop does not use it.
    let in_vpc = snap.eices.iter().any(|e| e.vpc_id == snap.vpc_id);
    if input.eice.is_some()
        || (input.entry.is_none() && (in_vpc || matches!(snap.eices_unlisted, Some(Unlisted::Denied(_)))))
    {
        eice_path(snap, target, input, &mut out);
    }
    let nat = outbound_path(snap, target, &mut out);
    ssm_path(snap, target, nat, &mut out);
    out
}

fn bastion_path(snap: &Snapshot, target: &Host, entry: &Host, my_ip: Option<Cidr>, out: &mut Vec<Check>) {
    let p = Path::Bastion;
    let direct = entry.id == target.id;
    let role = if direct { "target" } else { "bastion" };
    // Running with a public IP.
    let c = match (entry.state.as_str(), &entry.public_ip) {
        ("running", Some(ip)) => check(p, "bastion.public-ip", Status::Ok, format!("{role} {} is running, public IP {ip}", entry.label())),
        ("running", None) => check(p, "bastion.public-ip", Status::Problem, format!("{role} {} has no public IP", entry.label()))
            .fix(format!(
                "aws ec2 allocate-address --region {r} && aws ec2 associate-address --region {r} --instance-id {} --allocation-id <eipalloc-…>",
                entry.id,
                r = snap.region
            )),
        (state, _) => check(p, "bastion.public-ip", Status::Problem, format!("{role} {} is {state}", entry.label()))
            .fix(format!("aws ec2 start-instances --region {} --instance-ids {}", snap.region, entry.id)),
    };
    out.push(c);
    // Its subnet routes 0.0.0.0/0 to an attached internet gateway.
    if let Some(subnet) = &entry.subnet_id {
        out.push(igw_route(snap, subnet, role));
    }
    // SSH from you: security groups and the subnet's NACL.
    let groups = snap.groups(&entry.security_groups);
    let sg_ids = entry.security_groups.join(", ");
    let c = match my_ip {
        Some(me) => match sg_allows(&groups, &snap.prefix_lists, false, 22, Some(&me), &[]) {
            Reach::Allowed(g, via) => {
                check(p, "bastion.ssh-from-you", Status::Ok, format!("{} allows TCP 22 from {me}", g.id))
                    .evidence(format!("rule: tcp 22 from {via}"))
            }
            Reach::Unknown(unread) => unread_lists(
                p,
                "bastion.ssh-from-you",
                format!(
                    "whether the {role}'s security groups ({sg_ids}) allow TCP 22 from {me} depends on prefix lists hop could not read"
                ),
                unread,
            ),
            Reach::Denied => check(
                p,
                "bastion.ssh-from-you",
                Status::Problem,
                format!("no security group of the {role} ({sg_ids}) allows TCP 22 from {me}"),
            )
            .evidence(format!("22 is allowed from: {}", allowed_sources(&groups, 22)))
            .fix(authorize_ssh(
                &snap.region,
                entry.security_groups.first().map_or("<sg-…>", String::as_str),
                &me.to_string(),
                me.is_ipv6(),
            )),
        },
        None => {
            let sources = allowed_sources(&groups, 22);
            if sources == "nowhere" {
                check(p, "bastion.ssh-from-you", Status::Problem, format!("no security group of the {role} ({sg_ids}) allows TCP 22 from anywhere"))
                    .fix(format!(
                        "aws ec2 authorize-security-group-ingress --region {} --group-id {} --protocol tcp --port 22 --cidr <your-ip>/32",
                        snap.region,
                        entry.security_groups.first().map_or("<sg-…>", String::as_str)
                    ))
            } else {
                check(
                    p,
                    "bastion.ssh-from-you",
                    Status::Warning,
                    format!("TCP 22 is allowed from {sources}; pass --my-ip to check yours"),
                )
            }
        }
    };
    out.push(c);
    if let (Some(subnet), Some(me)) = (&entry.subnet_id, my_ip) {
        out.push(nacl_check(snap, subnet, &me, "bastion.nacl", role));
    }
    if direct {
        return;
    }
    // The target lets the bastion in, and the bastion may send to it.
    let target_groups = snap.groups(&target.security_groups);
    let bastion_ip = ip(&entry.private_ip);
    let c = match sg_allows(&target_groups, &snap.prefix_lists, false, 22, bastion_ip.as_ref(), &entry.security_groups) {
        Reach::Allowed(g, via) => check(p, "target.ssh-from-bastion", Status::Ok, format!("{} lets the bastion in on TCP 22", g.id))
            .evidence(format!("rule: tcp 22 from {via}")),
        Reach::Unknown(unread) => unread_lists(
            p,
            "target.ssh-from-bastion",
            format!("whether {} lets the bastion in on TCP 22 depends on prefix lists hop could not read", target.label()),
            unread,
        ),
        Reach::Denied => check(
            p,
            "target.ssh-from-bastion",
            Status::Problem,
            format!(
                "no security group of {} ({}) allows TCP 22 from the bastion's group ({}) or address ({})",
                target.label(),
                target.security_groups.join(", "),
                entry.security_groups.join(", "),
                entry.private_ip.as_deref().unwrap_or("?")
            ),
        )
        .evidence(format!("22 is allowed from: {}", allowed_sources(&target_groups, 22)))
        .fix(format!(
            "aws ec2 authorize-security-group-ingress --region {} --group-id {} --protocol tcp --port 22 --source-group {}",
            snap.region,
            target.security_groups.first().map_or("<sg-…>", String::as_str),
            entry.security_groups.first().map_or("<sg-…>", String::as_str)
        )),
    };
    out.push(c);
    let target_ip = ip(&target.private_ip);
    let c = match sg_allows(&groups, &snap.prefix_lists, true, 22, target_ip.as_ref(), &target.security_groups) {
        Reach::Allowed(g, via) => check(p, "bastion.egress", Status::Ok, format!("{} lets the bastion connect out to TCP 22", g.id))
            .evidence(format!("egress: tcp 22 to {via}")),
        Reach::Unknown(unread) => unread_lists(
            p,
            "bastion.egress",
            format!("whether the bastion may connect out to {} on TCP 22 depends on prefix lists hop could not read", target.label()),
            unread,
        ),
        Reach::Denied => check(p, "bastion.egress", Status::Problem, format!("the bastion's security groups ({sg_ids}) allow no TCP 22 out to {}", target.label()))
            .fix(format!(
                "aws ec2 authorize-security-group-egress --region {} --group-id {} --ip-permissions IpProtocol=tcp,FromPort=22,ToPort=22,UserIdGroupPairs=[{{GroupId={}}}]",
                snap.region,
                entry.security_groups.first().map_or("<sg-…>", String::as_str),
                target.security_groups.first().map_or("<sg-…>", String::as_str)
            )),
    };
    out.push(c);
    if let (Some(subnet), Some(b)) = (&target.subnet_id, bastion_ip) {
        out.push(nacl_check(snap, subnet, &b, "target.nacl", "target"));
    }
}

/// Where TCP `port` is allowed from, across `groups`.
fn allowed_sources(groups: &[&SecurityGroup], port: u16) -> String {
    allowed_peers(groups, port, false)
}

/// Where TCP `port` is allowed from (ingress) or to (egress), across `groups`.
fn allowed_peers(groups: &[&SecurityGroup], port: u16, egress: bool) -> String {
    let mut from: Vec<String> = groups
        .iter()
        .flat_map(|g| (if egress { &g.egress } else { &g.ingress }).iter().filter(|p| p.covers(port)))
        .flat_map(|p| p.cidrs.iter().chain(p.groups.iter()).chain(p.prefix_lists.iter()).cloned())
        .collect();
    from.sort();
    from.dedup();
    if from.is_empty() { "nowhere".into() } else { from.join(", ") }
}

fn igw_route(snap: &Snapshot, subnet: &str, role: &str) -> Check {
    let p = Path::Bastion;
    let id = "bastion.igw-route";
    let Some((table, route)) = snap.default_route(subnet) else {
        return check(p, id, Status::Unknown, format!("no route table found for {subnet}"));
    };
    let attached = snap.igws.first().cloned();
    let create = |rt: &str| match &attached {
        Some(igw) => format!(
            "aws ec2 create-route --region {} --route-table-id {rt} --destination-cidr-block 0.0.0.0/0 --gateway-id {igw}",
            snap.region
        ),
        None => format!(
            "aws ec2 create-internet-gateway --region {r}, attach-internet-gateway --vpc-id {} …, then create-route --route-table-id {rt} --destination-cidr-block 0.0.0.0/0 --gateway-id <igw-…>",
            snap.vpc_id,
            r = snap.region
        ),
    };
    match route {
        None => check(p, id, Status::Problem, format!("the {role}'s subnet {subnet} has no route to the internet"))
            .evidence(format!("{}: no 0.0.0.0/0 route", table.id))
            .fix(create(&table.id)),
        Some(r) if r.blackhole => check(
            p,
            id,
            Status::Problem,
            format!("the {role}'s subnet routes 0.0.0.0/0 to {}, which is gone (blackhole)", r.target),
        )
        .evidence(format!("{}: 0.0.0.0/0 → {} (blackhole)", table.id, r.target))
        .fix(format!(
            "aws ec2 replace-route --region {} --route-table-id {} --destination-cidr-block 0.0.0.0/0 --gateway-id {}",
            snap.region,
            table.id,
            attached.as_deref().unwrap_or("<igw-…>")
        )),
        Some(RouteEntry { target: RouteTarget::Igw(g), .. }) if snap.igws.contains(g) => {
            check(p, id, Status::Ok, format!("subnet {subnet} routes 0.0.0.0/0 to {g}, attached"))
                .evidence(format!("{}: 0.0.0.0/0 → {g}", table.id))
        }
        Some(RouteEntry { target: RouteTarget::Igw(g), .. }) => check(
            p,
            id,
            Status::Problem,
            format!("subnet {subnet} routes 0.0.0.0/0 to {g}, which is not attached to {}", snap.vpc_id),
        )
        .evidence(format!("{}: 0.0.0.0/0 → {g}", table.id))
        .fix(format!(
            "aws ec2 attach-internet-gateway --region {} --internet-gateway-id {g} --vpc-id {}",
            snap.region, snap.vpc_id
        )),
        Some(r) => check(
            p,
            id,
            Status::Problem,
            format!(
                "the {role}'s subnet {subnet} routes 0.0.0.0/0 to {}, not to an internet gateway: it is not public",
                r.target
            ),
        )
        .evidence(format!("{}: 0.0.0.0/0 → {}", table.id, r.target))
        .fix(format!(
            "move the {role} to a public subnet, or: {}",
            create(&table.id).replace("create-route", "replace-route")
        )),
    }
}

fn nacl_check(snap: &Snapshot, subnet: &str, peer: &Cidr, id: &'static str, role: &str) -> Check {
    nacl_check_on(Path::Bastion, snap, subnet, peer, id, role)
}

fn nacl_check_on(p: Path, snap: &Snapshot, subnet: &str, peer: &Cidr, id: &'static str, role: &str) -> Check {
    let Some(nacl) = snap.nacl_of(subnet) else {
        return check(p, id, Status::Unknown, format!("no network ACL found for {subnet}"));
    };
    // In: TCP 22 from the peer. Out (stateless): the peer's ephemeral ports.
    let inbound = nacl_allows(nacl, false, 22, peer);
    let outbound = nacl_allows(nacl, true, 40000, peer);
    match (inbound, outbound) {
        (Some((true, a)), Some((true, b))) => {
            check(p, id, Status::Ok, format!("{} lets TCP 22 in from {peer} and the replies out", nacl.id))
                .evidence(format!("rules {a} (in), {b} (out)"))
        }
        (inb, outb) => {
            let what = if !matches!(inb, Some((true, _))) {
                format!("TCP 22 in from {peer}")
            } else {
                format!("the replies out to {peer} (ports 1024-65535)")
            };
            check(p, id, Status::Problem, format!("network ACL {} of the {role}'s subnet blocks {what}", nacl.id))
                .evidence(format!("inbound: {inb:?}, outbound: {outb:?} (first matching rule: allow?, number)"))
                .fix(format!(
                    "aws ec2 create-network-acl-entry --region {} --network-acl-id {} --rule-number <n> {} --protocol tcp --port-range From={},To={} {} {peer} --rule-action allow",
                    snap.region,
                    nacl.id,
                    if matches!(inb, Some((true, _))) { "--egress" } else { "--ingress" },
                    if matches!(inb, Some((true, _))) { 1024 } else { 22 },
                    if matches!(inb, Some((true, _))) { 65535 } else { 22 },
                    if peer.is_ipv6() { "--ipv6-cidr-block" } else { "--cidr-block" },
                ))
        }
    }
}

/// The outbound path for package installs; returns whether the target reaches the internet
/// through NAT (the SSM endpoints then need no VPC endpoints).
fn outbound_path(snap: &Snapshot, target: &Host, out: &mut Vec<Check>) -> bool {
    let p = Path::Outbound;
    let id = "outbound.default-route";
    let Some(subnet) = target.subnet_id.as_deref() else { return false };
    let Some((table, route)) = snap.default_route(subnet) else {
        out.push(check(p, id, Status::Unknown, format!("no route table found for {subnet}")));
        return false;
    };
    let s3 = snap.endpoints.iter().find(|e| {
        e.kind.eq_ignore_ascii_case("gateway") && e.service.ends_with(".s3") && e.route_tables.contains(&table.id)
    });
    let s3_ok = s3.filter(|e| policy_allows_repos(e.policy.as_deref(), &snap.region));
    // Point the route at a NAT gateway that works, or say how to make one, and where.
    let verb = if route.is_some() { "replace-route" } else { "create-route" };
    let route_to = |nat: &str| {
        format!(
            "aws ec2 {verb} --region {} --route-table-id {} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id {nat}",
            snap.region, table.id
        )
    };
    let nat_fix = match snap.usable_nat() {
        Some(g) => route_to(&g.id),
        None => format!(
            "aws ec2 allocate-address --region {r} --domain vpc, then aws ec2 create-nat-gateway --region {r} --subnet-id {} --allocation-id <its eipalloc-…>, then {}",
            snap.public_subnet_near(subnet).unwrap_or("<a public subnet>"),
            route_to("<the new nat-…>"),
            r = snap.region
        ),
    };
    let (c, nat) = match route {
        Some(r) if r.blackhole => (
            check(p, id, Status::Problem, format!("{} routes 0.0.0.0/0 to {}, which is gone (blackhole)", table.id, r.target))
                .evidence(format!("{}: 0.0.0.0/0 → {} (blackhole)", table.id, r.target))
                .fix(nat_fix.clone()),
            false,
        ),
        Some(RouteEntry { target: RouteTarget::Nat(n), .. }) => match snap.nat_gateways.iter().find(|g| &g.id == n) {
            Some(g) if g.state == "available" && snap.is_public(&g.subnet_id) => (
                check(p, id, Status::Ok, format!("0.0.0.0/0 → NAT gateway {n} (available, in public subnet {})", g.subnet_id))
                    .evidence(format!("{}: 0.0.0.0/0 → {n}", table.id)),
                true,
            ),
            Some(g) if g.state != "available" => (
                check(p, id, Status::Problem, format!("0.0.0.0/0 → NAT gateway {n}, which is {}", g.state)).fix(nat_fix.clone()),
                false,
            ),
            Some(g) => (
                check(p, id, Status::Problem, format!("NAT gateway {n} is in subnet {}, which has no route to an internet gateway", g.subnet_id))
                    .fix(format!("route through a NAT gateway in a public subnet: {nat_fix}")),
                false,
            ),
            None => (check(p, id, Status::Problem, format!("0.0.0.0/0 → {n}, which does not exist")).fix(nat_fix.clone()), false),
        },
        Some(RouteEntry { target: RouteTarget::Instance(n), .. }) => {
            let (c, ok) = nat_instance(snap, target, n);
            (c.evidence(format!("{}: 0.0.0.0/0 → {n}", table.id)), ok)
        }
        Some(RouteEntry { target: RouteTarget::Igw(g), .. }) if target.public_ip.is_none() => (
            check(p, id, Status::Problem, format!("0.0.0.0/0 → {g}, but {} has no public IP: nothing gets out", target.label())).fix(nat_fix.clone()),
            false,
        ),
        Some(RouteEntry { target: RouteTarget::Igw(g), .. }) if snap.igws.contains(g) => {
            (check(p, id, Status::Ok, format!("0.0.0.0/0 → {g}, and the instance has a public IP")), true)
        }
        Some(RouteEntry { target: RouteTarget::Igw(g), .. }) => (
            check(p, id, Status::Problem, format!("0.0.0.0/0 → {g}, which is not attached to {}: nothing gets out", snap.vpc_id))
                .evidence(format!("{}: 0.0.0.0/0 → {g}", table.id))
                .fix(format!("aws ec2 attach-internet-gateway --region {} --internet-gateway-id {g} --vpc-id {}", snap.region, snap.vpc_id)),
            false,
        ),
        Some(r) => (check(p, id, Status::Warning, format!("0.0.0.0/0 → {}: hop cannot tell whether it reaches the internet", r.target)), false),
        None => match s3_ok {
            Some(e) => (
                check(p, id, Status::Ok, format!("no internet route, but dnf/yum reach the Amazon Linux repositories through S3 gateway endpoint {}", e.id))
                    .evidence(format!("{}: no 0.0.0.0/0 route; {} on it", table.id, e.id)),
                false,
            ),
            None => (
                check(p, id, Status::Problem, format!("{} has no route to the internet and no S3 gateway endpoint: dnf/yum cannot reach their repositories", table.id))
                    .evidence(format!("{}: no 0.0.0.0/0 route", table.id))
                    .fix(format!(
                        "{nat_fix}; or, for the Amazon Linux repositories only: aws ec2 create-vpc-endpoint --region {r} --vpc-id {} --service-name com.amazonaws.{r}.s3 --route-table-ids {}",
                        snap.vpc_id,
                        table.id,
                        r = snap.region
                    )),
                false,
            ),
        },
    };
    out.push(c);
    if let Some(e) = s3.filter(|e| !policy_allows_repos(e.policy.as_deref(), &snap.region)) {
        out.push(
            check(p, "outbound.s3-endpoint", Status::Warning, format!("S3 gateway endpoint {} has a policy that does not allow the Amazon Linux repository buckets", e.id))
                .fix(format!(
                    "add an Allow of s3:GetObject on arn:aws:s3:::al2023-repos-{r}-de612dc2/* and arn:aws:s3:::amazonlinux-2-repos-{r}/* to the policy (and no Deny of them), then aws ec2 modify-vpc-endpoint --region {r} --vpc-endpoint-id {} --policy-document file://policy.json",
                    e.id,
                    r = snap.region
                )),
        );
    }
    nat
}

/// Whether an endpoint policy lets dnf/yum read the Amazon Linux repositories of `region`
/// (AL2023's `al2023-repos-<region>-de612dc2`, AL2's `amazonlinux-2-repos-<region>`): no
/// policy (full access), or an Allow whose Action and Resource cover `s3:GetObject` on one of
/// them with no Deny covering the same. Wildcards as IAM has them; actions match without
/// case. Conditions and Not* elements are not evaluated: such statements never count.
fn policy_allows_repos(policy: Option<&str>, region: &str) -> bool {
    use serde_json::Value;
    let Some(policy) = policy else { return true };
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return false,
    };
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let covers = |s: &Value, object: &str| {
        let plain = s.get("Condition").is_none() && s.get("NotAction").is_none() && s.get("NotResource").is_none();
        plain
            && strings(&s["Action"]).iter().any(|a| glob(a.to_lowercase().as_bytes(), b"s3:getobject"))
            && strings(&s["Resource"]).iter().any(|r| glob(r.as_bytes(), object.as_bytes()))
    };
    let objects = [
        format!("arn:aws:s3:::al2023-repos-{region}-de612dc2/core/mirrors/latest/x86_64/mirror.list"),
        format!("arn:aws:s3:::amazonlinux-2-repos-{region}/2/core/latest/x86_64/mirror.list"),
    ];
    objects.iter().any(|o| {
        statements.iter().any(|s| s["Effect"] == "Allow" && covers(s, o))
            && !statements.iter().any(|s| s["Effect"] == "Deny" && covers(s, o))
    })
}

fn nat_instance(snap: &Snapshot, target: &Host, id: &str) -> (Check, bool) {
    let p = Path::Outbound;
    let c = "outbound.default-route";
    let Some(nat) = snap.host(id) else {
        return (
            check(p, c, Status::Problem, format!("0.0.0.0/0 → instance {id}, which is not in the VPC any more")),
            false,
        );
    };
    let r = &snap.region;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if nat.state != "running" {
        problems.push(format!("it is {}", nat.state));
        fixes.push(format!("aws ec2 start-instances --region {r} --instance-ids {id}"));
    }
    if nat.source_dest_check {
        problems.push("its source/destination check is on, so it drops forwarded traffic".to_string());
        fixes.push(format!("aws ec2 modify-instance-attribute --region {r} --instance-id {id} --no-source-dest-check"));
    }
    if nat.public_ip.is_none() || !nat.subnet_id.as_deref().is_some_and(|s| snap.is_public(s)) {
        problems.push("it is not in a public subnet with a public IP".to_string());
        fixes.push("move it to a public subnet and give it an Elastic IP".to_string());
    }
    let target_ip = ip(&target.private_ip);
    let groups = snap.groups(&nat.security_groups);
    for port in [443, 80] {
        // A rule naming a prefix list hop could not read is not reported as missing.
        if let Reach::Denied =
            sg_allows(&groups, &snap.prefix_lists, false, port, target_ip.as_ref(), &target.security_groups)
        {
            problems.push(format!("its security groups do not allow TCP {port} from the target"));
            fixes.push(format!(
                "aws ec2 authorize-security-group-ingress --region {r} --group-id {} --protocol tcp --port {port} --source-group {}",
                nat.security_groups.first().map_or("<sg-…>", String::as_str),
                target.security_groups.first().map_or("<sg-…>", String::as_str)
            ));
        }
    }
    if problems.is_empty() {
        (
            check(
                p,
                c,
                Status::Ok,
                format!(
                    "0.0.0.0/0 → NAT instance {} (running, public, source/dest check off, 443/80 allowed)",
                    nat.label()
                ),
            ),
            true,
        )
    } else {
        (
            check(
                p,
                c,
                Status::Problem,
                format!("0.0.0.0/0 → NAT instance {}, but {}", nat.label(), problems.join("; ")),
            )
            .fix(fixes.join(" && ")),
            false,
        )
    }
}

fn ssm_path(snap: &Snapshot, target: &Host, nat: bool, out: &mut Vec<Check>) {
    let p = Path::Ssm;
    let r = &snap.region;
    let target_ip = ip(&target.private_ip);
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for service in ["ssm", "ssmmessages", "ec2messages"] {
        let name = format!("com.amazonaws.{r}.{service}");
        let e = snap.endpoints.iter().find(|e| e.service == name && e.kind.eq_ignore_ascii_case("interface"));
        match e {
            None => missing.push(service),
            Some(e) => {
                let groups = snap.groups(&e.groups);
                let https = !matches!(
                    sg_allows(&groups, &snap.prefix_lists, false, 443, target_ip.as_ref(), &target.security_groups),
                    Reach::Denied
                );
                if !e.private_dns {
                    // The public name still works through NAT; without NAT it leads nowhere.
                    let (status, then) = if nat {
                        (Status::Warning, "and reaches it through NAT, not through the endpoint")
                    } else {
                        (Status::Problem, "which it cannot reach without NAT")
                    };
                    out.push(
                        check(
                            p,
                            "ssm.endpoint-dns",
                            status,
                            format!(
                                "endpoint {} ({service}) has private DNS off: the agent resolves the public name, {then}",
                                e.id
                            ),
                        )
                        .fix(format!(
                            "aws ec2 modify-vpc-endpoint --region {r} --vpc-endpoint-id {} --private-dns-enabled",
                            e.id
                        )),
                    );
                } else if !https {
                    out.push(
                        check(p, "ssm.endpoint-sg", Status::Problem, format!("endpoint {} ({service}): its security groups ({}) do not allow TCP 443 from the target", e.id, e.groups.join(", ")))
                            .fix(format!(
                                "aws ec2 authorize-security-group-ingress --region {r} --group-id {} --protocol tcp --port 443 --source-group {}",
                                e.groups.first().map_or("<sg-…>", String::as_str),
                                target.security_groups.first().map_or("<sg-…>", String::as_str)
                            )),
                    );
                } else {
                    found.push(e.id.clone());
                }
            }
        }
    }
    let c = if missing.is_empty() {
        check(p, "ssm.endpoints", Status::Ok, "interface endpoints ssm, ssmmessages and ec2messages are in the VPC")
            .evidence(found.join(", "))
    } else if nat {
        check(
            p,
            "ssm.endpoints",
            Status::Ok,
            format!(
                "no interface endpoint for {}: the agent reaches the public endpoints through NAT",
                missing.join(", ")
            ),
        )
    } else {
        check(p, "ssm.endpoints", Status::Problem, format!("no interface endpoint for {} and no NAT path: the agent cannot reach Session Manager", missing.join(", ")))
            .fix(
                missing
                    .iter()
                    .map(|s| {
                        format!(
                            "aws ec2 create-vpc-endpoint --region {r} --vpc-id {} --vpc-endpoint-type Interface --service-name com.amazonaws.{r}.{s} --subnet-ids {} --security-group-ids <sg allowing 443 from the instance> --private-dns-enabled",
                            snap.vpc_id,
                            target.subnet_id.as_deref().unwrap_or("<subnet-…>")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" && "),
            )
    };
    out.push(c);
    let associate = format!(
        "aws ec2 associate-iam-instance-profile --region {r} --instance-id {} --iam-instance-profile Name=<a profile whose role has AmazonSSMManagedInstanceCore>",
        target.id
    );
    let id = "ssm.instance-profile";
    // A replaced profile leaves its old association behind (disassociated): the live one wins.
    let mine = || snap.profile_associations.iter().filter(|a| a.instance_id == target.id);
    let association = ["associated", "associating", "disassociating"]
        .iter()
        .find_map(|state| mine().find(|a| a.state == *state))
        .or_else(|| mine().next());
    out.push(match (association, &target.instance_profile) {
        (Some(a), _) if a.state == "associated" => {
            check(p, id, Status::Ok, format!("instance profile {} is attached", a.arn))
                .evidence(format!("association: {}", a.state))
        }
        (Some(a), _) if a.state == "associating" => check(
            p,
            id,
            Status::Warning,
            format!(
                "instance profile {} is still being attached: the agent gets credentials once it is associated",
                a.arn
            ),
        )
        .evidence(format!("association: {}", a.state)),
        (Some(a), _) => check(
            p,
            id,
            Status::Problem,
            format!("instance profile {} is {}: the agent is losing its credentials", a.arn, a.state),
        )
        .evidence(format!("association: {}", a.state))
        .fix(format!("once it is disassociated: {associate}")),
        (None, Some(profile)) => check(p, id, Status::Ok, format!("instance profile {profile} is attached")),
        (None, None) => check(
            p,
            id,
            Status::Problem,
            format!("{} has no instance profile: the agent has no credentials", target.label()),
        )
        .fix(associate),
    });
    out.push(match &snap.agent {
        None => check(p, "ssm.agent", Status::Unknown, "Session Manager could not be asked about the agent"),
        Some(Agent::NotRegistered) => check(p, "ssm.agent", Status::Problem, format!("Session Manager has no agent registered for {}", target.id))
            .fix("start the agent (sudo systemctl enable --now amazon-ssm-agent) once the profile and endpoints above are right; it registers within minutes"),
        Some(Agent::Registered { ping_status, agent_version }) if ping_status == "Online" => {
            check(p, "ssm.agent", Status::Ok, format!("agent {agent_version} is Online"))
        }
        Some(Agent::Registered { ping_status, agent_version }) => check(p, "ssm.agent", Status::Problem, format!("agent {agent_version} is {ping_status}"))
            .fix("check the agent on the instance (sudo systemctl status amazon-ssm-agent) and its path to the endpoints"),
    });
}

/// The instance type families an endpoint that preserves client IPs cannot reach (spec §A.6).
const NO_CLIENT_IP_FAMILIES: [&str; 9] = ["c1", "cg1", "cg2", "g1", "hi1", "m1", "m2", "m3", "t1"];

/// The endpoint the EICE checks are about: the route's (the snapshot's record of it when it
/// has one), else the best of the VPC's as the route planner ranks them (usable first, then
/// the target's subnet, its AZ, the lowest id), with why it is the one.
fn eice_of(snap: &Snapshot, target: &Host, input: &Input) -> Option<(Eice, String)> {
    if let Some(asked) = &input.eice {
        let e = snap.eices.iter().find(|e| e.id == asked.id).cloned().unwrap_or_else(|| asked.clone());
        return Some((e, "the route's endpoint".into()));
    }
    let az = |subnet: &str| snap.subnets.iter().find(|s| s.id == subnet).map(|s| s.availability_zone.as_str());
    let target_subnet = target.subnet_id.as_deref().unwrap_or_default();
    let mut in_vpc: Vec<&Eice> = snap.eices.iter().filter(|e| e.vpc_id == snap.vpc_id).collect();
    in_vpc.sort_by_key(|e| {
        (
            !e.usable(),
            e.subnet_id != target_subnet,
            az(&e.subnet_id).is_none() || az(&e.subnet_id) != az(target_subnet),
            &e.id,
        )
    });
    let e = *in_vpc.first()?;
    let why = if in_vpc.len() > 1 {
        format!("the first of {} endpoints in {} (usable, same subnet, same AZ, lowest id)", in_vpc.len(), snap.vpc_id)
    } else {
        format!("the one endpoint in {}", snap.vpc_id)
    };
    Some((e.clone(), why))
}

/// `aws ec2 create-instance-connect-endpoint` for a replacement of `e` in `subnet`.
fn create_eice(region: &str, subnet: &str, e: &Eice) -> String {
    let groups = if e.security_groups.is_empty() { "<sg-…>".to_string() } else { e.security_groups.join(" ") };
    format!(
        "aws ec2 create-instance-connect-endpoint --region {region} --subnet-id {subnet} --security-group-ids {groups}{}",
        if e.preserve_client_ip { " --preserve-client-ip" } else { "" }
    )
}

/// The EICE route: port 22, the endpoint's state, its security groups' egress to the target,
/// the target's ingress from it (or from you, when it preserves client IPs), the target
/// subnet's NACL, and the client-IP caveats (spec §A.6, §A.8).
fn eice_path(snap: &Snapshot, target: &Host, input: &Input, out: &mut Vec<Check>) {
    let p = Path::Eice;
    let r = &snap.region;
    match &snap.eices_unlisted {
        Some(Unlisted::Denied(e)) => out.push(
            check(
                p,
                "eice.list",
                Status::Warning,
                format!(
                    "hop may not list the EC2 Instance Connect Endpoints of {}: it cannot route through them",
                    snap.vpc_id
                ),
            )
            .evidence(e.clone())
            .fix(
                "allow ec2:DescribeInstanceConnectEndpoints (no resource-level permissions: Resource \"*\"): \
                 aws iam put-user-policy --user-name <you> --policy-name hop-eice-describe --policy-document \
                 '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ec2:DescribeInstanceConnectEndpoints\",\"Resource\":\"*\"}]}' \
                 (put-role-policy --role-name <role> for a role)",
            ),
        ),
        Some(Unlisted::Failed(e)) => out.push(
            check(
                p,
                "eice.list",
                Status::Unknown,
                format!("the EC2 Instance Connect Endpoints of {} could not be listed", snap.vpc_id),
            )
            .evidence(e.clone()),
        ),
        None => {}
    }
    let Some((e, why)) = eice_of(snap, target, input) else { return };
    let subnet = target.subnet_id.as_deref().unwrap_or("<subnet-…>");
    if input.port != 22 {
        out.push(
            check(
                p,
                "eice.port",
                Status::Problem,
                format!(
                    "hop logs in to {} on port {}, and an EC2 Instance Connect Endpoint reaches port 22 (and 3389) only",
                    target.label(),
                    input.port
                ),
            )
            .fix(format!(
                "let sshd listen on 22 and drop `port = {}` for it from ~/.config/hop/config.toml, or use Session Manager (hop --ssm …), which reaches any port",
                input.port
            )),
        );
    }
    // Present and usable.
    let label = format!("{} ({}, {})", e.id, e.subnet_id, if e.vpc_id.is_empty() { "?" } else { &e.vpc_id });
    let said = e.state_message.as_deref().filter(|m| !m.trim().is_empty());
    let describe = format!(
        "aws ec2 describe-instance-connect-endpoints --region {r} --instance-connect-endpoint-ids {} --query 'InstanceConnectEndpoints[0].[State,StateMessage]'",
        e.id
    );
    let delete =
        format!("aws ec2 delete-instance-connect-endpoint --region {r} --instance-connect-endpoint-id {}", e.id);
    let create = create_eice(r, subnet, &e);
    let state = e.state.as_str();
    let mut c = match state {
        "create-complete" | "update-complete" => check(p, "eice.endpoint", Status::Ok, format!("endpoint {label} is {state}")),
        "update-in-progress" => check(p, "eice.endpoint", Status::Ok, format!("endpoint {label} is {state}: usable while it updates")),
        "update-failed" => check(
            p,
            "eice.endpoint",
            Status::Warning,
            format!("endpoint {label} is update-failed: still usable, but its last change did not apply"),
        )
        .fix(format!(
            "see why: {describe}; then apply the change again: aws ec2 modify-instance-connect-endpoint --region {r} --instance-connect-endpoint-id {} …",
            e.id
        )),
        "create-in-progress" => check(
            p,
            "eice.endpoint",
            Status::Problem,
            format!("endpoint {label} is still being created: not usable until create-complete"),
        )
        .fix(format!("wait a few minutes, watching {describe}")),
        "create-failed" => check(p, "eice.endpoint", Status::Problem, format!("endpoint {label} could not be created (create-failed)"))
            .fix(format!("{delete} && {create}")),
        "delete-in-progress" | "delete-complete" => check(
            p,
            "eice.endpoint",
            Status::Problem,
            format!("endpoint {label} is {}: nothing goes through it any more", if state == "delete-complete" { "deleted" } else { "being deleted (delete-in-progress)" }),
        )
        .fix(create.clone()),
        "delete-failed" => check(p, "eice.endpoint", Status::Problem, format!("endpoint {label} failed to delete (delete-failed) and is not usable"))
            .fix(format!("{delete} && {create}")),
        other => check(p, "eice.endpoint", Status::Unknown, format!("endpoint {label} is in a state hop does not know: {other:?}")),
    };
    if let Some(m) = said {
        c = c.evidence(format!("StateMessage: {m}"));
    }
    out.push(c.evidence(format!("chosen: {why}")));
    let target_ip = ip(&target.private_ip);
    let elsewhere = !e.vpc_id.is_empty() && e.vpc_id != snap.vpc_id;
    // Client-IP preservation: own VPC only, and not some old instance families.
    if e.preserve_client_ip {
        let family = target.instance_type.as_deref().and_then(|t| t.split('.').next()).map(str::to_lowercase);
        let off = format!(
            "aws ec2 modify-instance-connect-endpoint --region {r} --instance-connect-endpoint-id {} --no-preserve-client-ip",
            e.id
        );
        out.push(if elsewhere {
            check(
                p,
                "eice.preserve-client-ip",
                Status::Problem,
                format!(
                    "{} preserves client IPs, so it reaches its own VPC ({}) only, and {} is in {}",
                    e.id,
                    e.vpc_id,
                    target.label(),
                    snap.vpc_id
                ),
            )
            .fix(format!("{off}, or use an endpoint in {}: {create}", snap.vpc_id))
        } else if let Some(f) = family.as_deref().filter(|f| NO_CLIENT_IP_FAMILIES.contains(f)) {
            check(
                p,
                "eice.preserve-client-ip",
                Status::Problem,
                format!(
                    "{} preserves client IPs, which does not work for {} instances, and {} is a {}",
                    e.id,
                    f.to_uppercase(),
                    target.label(),
                    target.instance_type.as_deref().unwrap_or_default()
                ),
            )
            .fix(off)
        } else {
            check(
                p,
                "eice.preserve-client-ip",
                Status::Ok,
                format!("{} preserves client IPs: {} sees your address, not the endpoint's", e.id, target.label()),
            )
            .evidence(format!("instance type: {}", target.instance_type.as_deref().unwrap_or("unknown")))
        });
    }
    if elsewhere {
        out.push(check(
            p,
            "eice.security-groups",
            Status::Unknown,
            format!(
                "{} is in {}, not in {}: its security groups are not in this snapshot and are not checked",
                e.id, e.vpc_id, snap.vpc_id
            ),
        ));
        return;
    }
    // The endpoint's groups let it out to the target's 22.
    let ep_groups = snap.groups(&e.security_groups);
    let ep_sgs = e.security_groups.join(", ");
    let target_sg = target.security_groups.first().map_or("<sg-…>", String::as_str);
    let ep_sg = e.security_groups.first().map_or("<sg-…>", String::as_str);
    let who = format!("{} at {}", target.label(), target.private_ip.as_deref().unwrap_or("?"));
    out.push(if ep_groups.is_empty() {
        check(
            p,
            "eice.egress",
            Status::Unknown,
            format!("the endpoint's security groups ({ep_sgs}) are not among {}'s", snap.vpc_id),
        )
    } else {
        match sg_allows(&ep_groups, &snap.prefix_lists, true, 22, target_ip.as_ref(), &target.security_groups) {
            Reach::Allowed(g, via) => {
                check(p, "eice.egress", Status::Ok, format!("{} lets the endpoint connect out to TCP 22 of {who}", g.id))
                    .evidence(format!("egress: tcp 22 to {via}"))
            }
            Reach::Unknown(unread) => unread_lists(
                p,
                "eice.egress",
                format!("whether the endpoint may connect out to {who} on TCP 22 depends on prefix lists hop could not read"),
                unread,
            ),
            Reach::Denied => check(
                p,
                "eice.egress",
                Status::Problem,
                format!("the endpoint's security groups ({ep_sgs}) allow no TCP 22 out to {who}"),
            )
            .evidence(format!("22 is allowed out to: {}", allowed_peers(&ep_groups, 22, true)))
            .fix(format!(
                "aws ec2 authorize-security-group-egress --region {r} --group-id {ep_sg} --ip-permissions 'IpProtocol=tcp,FromPort=22,ToPort=22,UserIdGroupPairs=[{{GroupId={target_sg}}}]'"
            )),
        }
    });
    // The target lets the endpoint in: from its group or its subnet; with client IPs
    // preserved, from you (or its group).
    let target_groups = snap.groups(&target.security_groups);
    let ep_cidr: Option<Cidr> =
        snap.subnets.iter().find(|s| s.id == e.subnet_id).and_then(|s| s.cidr.as_deref()).and_then(|c| c.parse().ok());
    let peer = if e.preserve_client_ip { input.my_ip } else { ep_cidr };
    let from = match (e.preserve_client_ip, &peer) {
        (true, Some(me)) => format!("your address ({me}) or the endpoint's group ({ep_sgs})"),
        (true, None) => format!("the endpoint's group ({ep_sgs}) or your address"),
        (false, Some(c)) => format!("the endpoint's group ({ep_sgs}) or its subnet {} ({c})", e.subnet_id),
        (false, None) => format!("the endpoint's group ({ep_sgs}) or its subnet {}", e.subnet_id),
    };
    out.push(match sg_allows(&target_groups, &snap.prefix_lists, false, 22, peer.as_ref(), &e.security_groups) {
        Reach::Allowed(g, via) => check(
            p,
            "eice.target-ingress",
            Status::Ok,
            format!("{} lets the endpoint into {} on TCP 22", g.id, target.label()),
        )
            .evidence(format!("rule: tcp 22 from {via}")),
        Reach::Unknown(unread) => unread_lists(
            p,
            "eice.target-ingress",
            format!("whether {} lets the endpoint in on TCP 22 depends on prefix lists hop could not read", target.label()),
            unread,
        ),
        Reach::Denied if e.preserve_client_ip && peer.is_none() => check(
            p,
            "eice.target-ingress",
            Status::Warning,
            format!(
                "{} preserves client IPs, so {} must let your address in on TCP 22; pass --my-ip to check it",
                e.id,
                target.label()
            ),
        )
        .evidence(format!("22 is allowed from: {}", allowed_sources(&target_groups, 22))),
        Reach::Denied => check(
            p,
            "eice.target-ingress",
            Status::Problem,
            format!(
                "no security group of {} ({}) allows TCP 22 from {from}",
                target.label(),
                target.security_groups.join(", ")
            ),
        )
        .evidence(format!("22 is allowed from: {}", allowed_sources(&target_groups, 22)))
        .fix(match (e.preserve_client_ip, peer) {
            (true, Some(me)) => authorize_ssh(r, target_sg, &me.to_string(), me.is_ipv6()),
            _ => format!(
                "aws ec2 authorize-security-group-ingress --region {r} --group-id {target_sg} --protocol tcp --port 22 --source-group {ep_sg}"
            ),
        }),
    });
    // A NACL stands between two subnets only.
    if let (Some(t), Some(peer)) = (target.subnet_id.as_deref(), peer)
        && (e.preserve_client_ip || t != e.subnet_id)
    {
        out.push(nacl_check_on(p, snap, t, &peer, "eice.nacl", "target"));
    }
}

/// The fix for a tunnel the endpoint refused with AccessDenied: the IAM actions the identity
/// needs, on the real ARNs (spec §A.6, §B.4). `endpoint_arn` as EC2 gave it (else built with
/// an `<account>` placeholder); `push`: the route pushes a key to `target` as `user`.
pub fn eice_iam_fix(
    region: &str,
    endpoint: &str,
    endpoint_arn: Option<&str>,
    target: &str,
    push: Option<&str>,
) -> String {
    // arn:PARTITION:ec2:REGION:ACCOUNT:instance-connect-endpoint/ID
    let parts: Vec<&str> = endpoint_arn.map(|a| a.split(':').collect()).unwrap_or_default();
    let (partition, account) = match parts.as_slice() {
        ["arn", partition, "ec2", _, account, ..] if !account.is_empty() => (*partition, *account),
        _ => ("aws", "<account>"),
    };
    let eice_arn = endpoint_arn
        .map(str::to_string)
        .unwrap_or_else(|| format!("arn:{partition}:ec2:{region}:{account}:instance-connect-endpoint/{endpoint}"));
    let mut statements =
        vec![format!(r#"{{"Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"{eice_arn}"}}"#)];
    let mut what = format!("ec2-instance-connect:OpenTunnel on {eice_arn}");
    if let Some(user) = push {
        let instance_arn = format!("arn:{partition}:ec2:{region}:{account}:instance/{target}");
        statements.push(format!(
            r#"{{"Effect":"Allow","Action":"ec2-instance-connect:SendSSHPublicKey","Resource":"{instance_arn}","Condition":{{"StringEquals":{{"ec2:osuser":"{user}"}}}}}}"#
        ));
        what.push_str(&format!(" and ec2-instance-connect:SendSSHPublicKey on {instance_arn} (as {user})"));
    }
    format!(
        "allow {what}: aws iam put-user-policy --user-name <you> --policy-name hop-eice --policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}' (put-role-policy --role-name <role> for a role)",
        statements.join(",")
    )
}

/// Whether the checks of the chosen route (`hop` always, then `chosen`: `Bastion` for direct
/// and jump routes, `Ssm`, or `Eice`) hold.
pub fn route_ok(checks: &[Check], chosen: Path) -> bool {
    !checks.iter().any(|c| {
        c.status == Status::Problem && matches!(c.path, p if p == Path::Hop || p == Path::Probe || p == chosen)
    })
}

#[cfg(test)]
mod tests;
