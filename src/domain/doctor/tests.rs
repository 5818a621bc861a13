//! Each rule with a passing and a failing snapshot, hand-made (moto never marks a route
//! blackhole, so those cases exist only here).

use super::*;

fn perm(port: i32, cidrs: &[&str], groups: &[&str]) -> Permission {
    Permission {
        protocol: "tcp".into(),
        from: Some(port),
        to: Some(port),
        cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        prefix_lists: vec![],
    }
}

fn all_out() -> Permission {
    Permission { protocol: "-1".into(), cidrs: vec!["0.0.0.0/0".into()], ..Default::default() }
}

fn route(dest: &str, target: RouteTarget) -> RouteEntry {
    RouteEntry { destination: dest.into(), target, blackhole: false }
}

fn host(id: &str, subnet: &str, ip: &str, sg: &str) -> Host {
    Host {
        id: id.into(),
        name: Some(id.trim_start_matches("i-").into()),
        state: "running".into(),
        private_ip: Some(ip.into()),
        subnet_id: Some(subnet.into()),
        security_groups: vec![sg.into()],
        source_dest_check: true,
        ..Default::default()
    }
}

fn allow_all_nacl() -> Nacl {
    let entry = |egress, number, allow| NaclEntry {
        number,
        egress,
        protocol: "-1".into(),
        from: None,
        to: None,
        cidr: "0.0.0.0/0".into(),
        allow,
    };
    Nacl {
        id: "acl-1".into(),
        subnets: vec!["subnet-pub".into(), "subnet-priv".into()],
        entries: vec![
            entry(false, 100, true),
            entry(false, 32767, false),
            entry(true, 100, true),
            entry(true, 32767, false),
        ],
    }
}

/// The tutorial, healthy: bastion in a public subnet, web behind it, NAT gateway, endpoints.
fn healthy() -> Snapshot {
    let mut bastion = host("i-bastion", "subnet-pub", "10.0.0.10", "sg-bastion");
    bastion.public_ip = Some("203.0.113.10".into());
    let mut web = host("i-web", "subnet-priv", "10.0.1.10", "sg-web");
    web.instance_profile = Some("arn:aws:iam::1:instance-profile/ssm".into());
    let endpoint = |id: &str, service: &str| Endpoint {
        id: id.into(),
        service: format!("com.amazonaws.us-east-1.{service}"),
        kind: "Interface".into(),
        private_dns: true,
        groups: vec!["sg-endpoints".into()],
        route_tables: vec![],
        policy: None,
    };
    Snapshot {
        region: "us-east-1".into(),
        vpc_id: "vpc-1".into(),
        instances: vec![bastion, web],
        subnets: vec![
            Subnet { id: "subnet-priv".into(), availability_zone: "us-east-1a".into(), cidr: None },
            Subnet { id: "subnet-pub".into(), availability_zone: "us-east-1a".into(), cidr: None },
        ],
        route_tables: vec![
            RouteTable {
                id: "rtb-main".into(),
                main: true,
                subnets: vec![],
                routes: vec![route("10.0.0.0/16", RouteTarget::Local)],
            },
            RouteTable {
                id: "rtb-pub".into(),
                main: false,
                subnets: vec!["subnet-pub".into()],
                routes: vec![
                    route("10.0.0.0/16", RouteTarget::Local),
                    route("0.0.0.0/0", RouteTarget::Igw("igw-1".into())),
                ],
            },
            RouteTable {
                id: "rtb-priv".into(),
                main: false,
                subnets: vec!["subnet-priv".into()],
                routes: vec![
                    route("10.0.0.0/16", RouteTarget::Local),
                    route("0.0.0.0/0", RouteTarget::Nat("nat-1".into())),
                ],
            },
        ],
        igws: vec!["igw-1".into()],
        nat_gateways: vec![NatGateway {
            id: "nat-1".into(),
            subnet_id: "subnet-pub".into(),
            state: "available".into(),
        }],
        security_groups: vec![
            SecurityGroup {
                id: "sg-bastion".into(),
                name: "bastion".into(),
                ingress: vec![perm(22, &["203.0.113.0/24"], &[])],
                egress: vec![all_out()],
            },
            SecurityGroup {
                id: "sg-web".into(),
                name: "web".into(),
                ingress: vec![perm(22, &[], &["sg-bastion"])],
                egress: vec![all_out()],
            },
            SecurityGroup {
                id: "sg-endpoints".into(),
                name: "endpoints".into(),
                ingress: vec![perm(443, &["10.0.0.0/16"], &[])],
                egress: vec![all_out()],
            },
        ],
        nacls: vec![allow_all_nacl()],
        endpoints: vec![
            endpoint("vpce-1", "ssm"),
            endpoint("vpce-2", "ssmmessages"),
            endpoint("vpce-3", "ec2messages"),
        ],
        profile_associations: vec![ProfileAssociation {
            instance_id: "i-web".into(),
            arn: "arn:aws:iam::1:instance-profile/ssm".into(),
            state: "associated".into(),
        }],
        agent: Some(Agent::Registered { ping_status: "Online".into(), agent_version: "3.3.1142.0".into() }),
        prefix_lists: vec![],
        eices: vec![],
        eices_unlisted: None,
    }
}

fn me() -> Option<Cidr> {
    Some("203.0.113.5/32".parse().unwrap())
}

fn run(s: &Snapshot) -> Vec<Check> {
    diagnose(s, &Input { target: "i-web", entry: Some("i-bastion"), my_ip: me(), ..Default::default() })
}

fn status(checks: &[Check], id: &str) -> Status {
    checks.iter().find(|c| c.check == id).unwrap_or_else(|| panic!("no check {id} in {checks:#?}")).status
}

fn the(checks: &[Check], id: &str) -> Check {
    checks.iter().find(|c| c.check == id).unwrap().clone()
}

fn host_mut<'a>(s: &'a mut Snapshot, id: &str) -> &'a mut Host {
    s.instances.iter_mut().find(|h| h.id == id).unwrap()
}

fn table_mut<'a>(s: &'a mut Snapshot, id: &str) -> &'a mut RouteTable {
    s.route_tables.iter_mut().find(|t| t.id == id).unwrap()
}

fn sg_mut<'a>(s: &'a mut Snapshot, id: &str) -> &'a mut SecurityGroup {
    s.security_groups.iter_mut().find(|g| g.id == id).unwrap()
}

#[test]
fn the_healthy_tutorial_passes_every_check() {
    let checks = run(&healthy());
    let bad: Vec<&Check> = checks.iter().filter(|c| c.status != Status::Ok).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    for id in [
        "bastion.public-ip",
        "bastion.igw-route",
        "bastion.ssh-from-you",
        "bastion.nacl",
        "target.ssh-from-bastion",
        "bastion.egress",
        "target.nacl",
        "outbound.default-route",
        "ssm.endpoints",
        "ssm.instance-profile",
        "ssm.agent",
    ] {
        assert_eq!(status(&checks, id), Status::Ok, "{id}");
    }
    assert!(route_ok(&checks, Path::Bastion) && route_ok(&checks, Path::Ssm));
}

#[test]
fn bastion_without_public_ip_or_stopped() {
    let mut s = healthy();
    host_mut(&mut s, "i-bastion").public_ip = None;
    let c = the(&run(&s), "bastion.public-ip");
    assert_eq!(c.status, Status::Problem);
    assert!(c.fix.unwrap().contains("associate-address --region us-east-1 --instance-id i-bastion"));
    host_mut(&mut s, "i-bastion").state = "stopped".into();
    let c = the(&run(&s), "bastion.public-ip");
    assert!(c.summary.contains("is stopped") && c.fix.unwrap().contains("start-instances"), "{}", c.summary);
    assert!(!route_ok(&run(&s), Path::Bastion));
}

#[test]
fn igw_route_missing_detached_blackhole_or_not_an_igw() {
    let mut s = healthy();
    table_mut(&mut s, "rtb-pub").routes.pop();
    let c = the(&run(&s), "bastion.igw-route");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(
        c.fix.as_deref(),
        Some(
            "aws ec2 create-route --region us-east-1 --route-table-id rtb-pub --destination-cidr-block 0.0.0.0/0 --gateway-id igw-1"
        )
    );
    // Detached: the route is there, the gateway is not attached to the VPC.
    let mut s = healthy();
    s.igws.clear();
    let c = the(&run(&s), "bastion.igw-route");
    assert_eq!(c.status, Status::Problem);
    assert!(c.summary.contains("not attached"), "{}", c.summary);
    assert!(
        c.fix
            .unwrap()
            .contains("attach-internet-gateway --region us-east-1 --internet-gateway-id igw-1 --vpc-id vpc-1")
    );
    let mut s = healthy();
    table_mut(&mut s, "rtb-pub").routes[1].blackhole = true;
    let c = the(&run(&s), "bastion.igw-route");
    assert!(c.status == Status::Problem && c.summary.contains("blackhole"), "{}", c.summary);
    let mut s = healthy();
    table_mut(&mut s, "rtb-pub").routes[1].target = RouteTarget::Nat("nat-1".into());
    assert!(the(&run(&s), "bastion.igw-route").summary.contains("not to an internet gateway"));
}

#[test]
fn ssh_from_your_address_or_the_allowed_sources_without_one() {
    let mut s = healthy();
    sg_mut(&mut s, "sg-bastion").ingress = vec![perm(22, &["192.0.2.0/24"], &[])];
    let c = the(&run(&s), "bastion.ssh-from-you");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(c.evidence, ["22 is allowed from: 192.0.2.0/24"]);
    assert!(c.fix.unwrap().ends_with("--group-id sg-bastion --protocol tcp --port 22 --cidr 203.0.113.5/32"));
    // Without --my-ip: say where 22 is allowed from.
    let checks = diagnose(&s, &Input { target: "i-web", entry: Some("i-bastion"), my_ip: None, ..Default::default() });
    let c = the(&checks, "bastion.ssh-from-you");
    assert_eq!(c.status, Status::Warning);
    assert!(c.summary.contains("192.0.2.0/24"), "{}", c.summary);
    // All ports open from anywhere counts too.
    sg_mut(&mut s, "sg-bastion").ingress = vec![all_out()];
    assert_eq!(status(&run(&s), "bastion.ssh-from-you"), Status::Ok);
}

#[test]
fn network_acls_are_stateless_and_ordered() {
    let mut s = healthy();
    s.nacls[0].entries.push(NaclEntry {
        number: 50,
        egress: false,
        protocol: "6".into(),
        from: Some(22),
        to: Some(22),
        cidr: "203.0.113.0/24".into(),
        allow: false,
    });
    let c = the(&run(&s), "bastion.nacl");
    assert_eq!(c.status, Status::Problem);
    assert!(c.summary.contains("TCP 22 in from 203.0.113.5/32"), "{}", c.summary);
    // The return path: outbound ephemeral ports denied.
    let mut s = healthy();
    s.nacls[0].entries.retain(|e| !(e.egress && e.allow));
    let c = the(&run(&s), "bastion.nacl");
    assert!(c.status == Status::Problem && c.summary.contains("replies out"), "{}", c.summary);
    assert_eq!(status(&run(&s), "target.nacl"), Status::Problem);
}

#[test]
fn target_must_let_the_bastion_in_by_group_or_address() {
    let mut s = healthy();
    sg_mut(&mut s, "sg-web").ingress = vec![perm(22, &["10.99.0.0/16"], &[])];
    let c = the(&run(&s), "target.ssh-from-bastion");
    assert_eq!(c.status, Status::Problem);
    assert!(c.fix.unwrap().ends_with("--group-id sg-web --protocol tcp --port 22 --source-group sg-bastion"));
    assert!(!route_ok(&run(&s), Path::Bastion));
    assert!(route_ok(&run(&s), Path::Ssm), "SSM does not need it");
    // A CIDR holding the bastion's private address is as good.
    sg_mut(&mut s, "sg-web").ingress = vec![perm(22, &["10.0.0.0/24"], &[])];
    assert_eq!(status(&run(&s), "target.ssh-from-bastion"), Status::Ok);
}

#[test]
fn bastion_egress_must_reach_the_target() {
    let mut s = healthy();
    sg_mut(&mut s, "sg-bastion").egress = vec![perm(443, &["0.0.0.0/0"], &[])];
    assert_eq!(status(&run(&s), "bastion.egress"), Status::Problem);
    sg_mut(&mut s, "sg-bastion").egress = vec![perm(22, &[], &["sg-web"])];
    assert_eq!(status(&run(&s), "bastion.egress"), Status::Ok);
}

#[test]
fn outbound_nat_gateway_missing_unavailable_or_private() {
    let mut s = healthy();
    table_mut(&mut s, "rtb-priv").routes.pop();
    let c = the(&run(&s), "outbound.default-route");
    assert_eq!(c.status, Status::Problem);
    assert!(c.fix.unwrap().contains("--service-name com.amazonaws.us-east-1.s3 --route-table-ids rtb-priv"));
    assert!(route_ok(&run(&s), Path::Bastion), "outbound problems do not fail the SSH route");
    let mut s = healthy();
    s.nat_gateways[0].state = "failed".into();
    assert!(the(&run(&s), "outbound.default-route").summary.contains("which is failed"));
    let mut s = healthy();
    s.nat_gateways[0].subnet_id = "subnet-priv".into();
    assert!(the(&run(&s), "outbound.default-route").summary.contains("no route to an internet gateway"));
    let mut s = healthy();
    table_mut(&mut s, "rtb-priv").routes[1].blackhole = true;
    let c = the(&run(&s), "outbound.default-route");
    assert!(c.status == Status::Problem && c.summary.contains("blackhole"), "{}", c.summary);
}

/// The fix names what exists: an available NAT gateway to route to, else a public subnet
/// (in the target's zone first) to create one in.
#[test]
fn outbound_fixes_name_the_nat_gateway_or_the_public_subnet() {
    let mut s = healthy();
    table_mut(&mut s, "rtb-priv").routes.pop();
    let fix = the(&run(&s), "outbound.default-route").fix.unwrap();
    assert!(
        fix.starts_with(
            "aws ec2 create-route --region us-east-1 --route-table-id rtb-priv --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-1;"
        ),
        "{fix}"
    );
    let mut s = healthy();
    table_mut(&mut s, "rtb-priv").routes[1].blackhole = true;
    assert_eq!(
        the(&run(&s), "outbound.default-route").fix.unwrap(),
        "aws ec2 replace-route --region us-east-1 --route-table-id rtb-priv --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-1"
    );
    // No usable NAT gateway: create one in a public subnet, the target's zone first.
    let mut s = healthy();
    s.nat_gateways[0].state = "deleted".into();
    s.subnets.push(Subnet { id: "subnet-a-pub".into(), availability_zone: "us-east-1b".into(), cidr: None });
    table_mut(&mut s, "rtb-pub").subnets.push("subnet-a-pub".into());
    let fix = the(&run(&s), "outbound.default-route").fix.unwrap();
    assert!(fix.contains("create-nat-gateway --region us-east-1 --subnet-id subnet-pub "), "{fix}");
    assert!(fix.ends_with("replace-route --region us-east-1 --route-table-id rtb-priv --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <the new nat-…>"), "{fix}");
    s.subnets.iter_mut().find(|n| n.id == "subnet-priv").unwrap().availability_zone = "us-east-1b".into();
    let fix = the(&run(&s), "outbound.default-route").fix.unwrap();
    assert!(fix.contains("--subnet-id subnet-a-pub "), "{fix}");
}

#[test]
fn a_public_target_behind_a_detached_internet_gateway_gets_nothing_out() {
    let mut s = healthy();
    host_mut(&mut s, "i-web").public_ip = Some("203.0.113.11".into());
    table_mut(&mut s, "rtb-priv").routes[1].target = RouteTarget::Igw("igw-1".into());
    assert_eq!(status(&run(&s), "outbound.default-route"), Status::Ok);
    s.igws.clear();
    let c = the(&run(&s), "outbound.default-route");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(
        c.fix.unwrap(),
        "aws ec2 attach-internet-gateway --region us-east-1 --internet-gateway-id igw-1 --vpc-id vpc-1"
    );
}

#[test]
fn outbound_through_a_nat_instance() {
    let mut s = healthy();
    let mut nat = host("i-nat", "subnet-pub", "10.0.0.20", "sg-nat");
    nat.public_ip = Some("203.0.113.20".into());
    s.instances.push(nat);
    s.security_groups.push(SecurityGroup {
        id: "sg-nat".into(),
        name: "nat".into(),
        ingress: vec![perm(443, &["10.0.1.0/24"], &[]), perm(80, &["10.0.1.0/24"], &[])],
        egress: vec![all_out()],
    });
    table_mut(&mut s, "rtb-priv").routes[1].target = RouteTarget::Instance("i-nat".into());
    let c = the(&run(&s), "outbound.default-route");
    assert_eq!(c.status, Status::Problem, "source/dest check is on by default");
    assert!(
        c.fix
            .unwrap()
            .contains("modify-instance-attribute --region us-east-1 --instance-id i-nat --no-source-dest-check")
    );
    host_mut(&mut s, "i-nat").source_dest_check = false;
    assert_eq!(status(&run(&s), "outbound.default-route"), Status::Ok);
    sg_mut(&mut s, "sg-nat").ingress.pop();
    assert!(the(&run(&s), "outbound.default-route").summary.contains("TCP 80"));
}

#[test]
fn s3_gateway_endpoint_is_enough_for_dnf_when_its_policy_allows_the_repositories() {
    let mut s = healthy();
    table_mut(&mut s, "rtb-priv").routes.pop();
    s.endpoints.push(Endpoint {
        id: "vpce-s3".into(),
        service: "com.amazonaws.us-east-1.s3".into(),
        kind: "Gateway".into(),
        route_tables: vec!["rtb-priv".into()],
        ..Default::default()
    });
    assert_eq!(status(&run(&s), "outbound.default-route"), Status::Ok);
    s.endpoints.last_mut().unwrap().policy = Some(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::my-bucket/*"}]}"#.into(),
    );
    let checks = run(&s);
    assert_eq!(status(&checks, "outbound.default-route"), Status::Problem);
    assert_eq!(status(&checks, "outbound.s3-endpoint"), Status::Warning);
    s.endpoints.last_mut().unwrap().policy = Some(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":["arn:aws:s3:::al2023-repos-us-east-1-de612dc2/*"]}}"#.into(),
    );
    assert_eq!(status(&run(&s), "outbound.default-route"), Status::Ok);
}

#[test]
fn endpoint_policies_are_read_like_iam() {
    let allows = |p: &str| policy_allows_repos(Some(p), "us-east-1");
    let allow = |action: &str, resource: &str| {
        format!(r#"{{"Effect":"Allow","Principal":"*","Action":{action},"Resource":{resource}}}"#)
    };
    let doc = |statements: &[String]| format!(r#"{{"Version":"2008-10-17","Statement":[{}]}}"#, statements.join(","));
    // The default policy, and the AWS-documented repository policies.
    assert!(allows(&doc(&[allow(r#""*""#, r#""*""#)])));
    assert!(allows(&doc(&[allow(r#""s3:GetObject""#, r#""arn:aws:s3:::al2023-repos-us-east-1-de612dc2/*""#)])));
    assert!(allows(&doc(&[allow(r#"["S3:Get*"]"#, r#"["arn:aws:s3:::amazonlinux-2-repos-us-east-1/*"]"#)])));
    assert!(allows(&doc(&[allow(r#""s3:*""#, r#""arn:aws:s3:::al2023-repos-*/*""#)])));
    // Another region's repositories, another action, the bucket but not its objects.
    assert!(!allows(&doc(&[allow(r#""s3:GetObject""#, r#""arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*""#)])));
    assert!(!allows(&doc(&[allow(r#""s3:PutObject""#, r#""*""#)])));
    assert!(!allows(&doc(&[allow(r#""s3:GetObject""#, r#""arn:aws:s3:::al2023-repos-us-east-1-de612dc2""#)])));
    // A bucket name that merely mentions repos.
    assert!(!allows(&doc(&[allow(r#""s3:GetObject""#, r#""arn:aws:s3:::my-repos/*""#)])));
    // A Deny wins over an Allow; one family of repositories allowed is enough.
    let deny = r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::*-repos-*/*"}"#;
    assert!(!allows(&doc(&[allow(r#""*""#, r#""*""#), deny.to_string()])));
    assert!(allows(&doc(&[allow(r#""*""#, r#""*""#), deny.replace("*-repos-*", "al2023-repos-*")])));
    assert!(allows(&doc(&[allow(r#""*""#, r#""*""#), deny.replace("*-repos-*", "other")])));
    // Conditions are not evaluated: such an Allow does not count.
    let conditional = r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}"#;
    assert!(!allows(&doc(&[conditional.to_string()])));
    assert!(!allows("not json"));
    assert!(policy_allows_repos(None, "us-east-1"));
}

#[test]
fn ssm_endpoints_or_a_nat_path() {
    let mut s = healthy();
    s.endpoints.clear();
    assert_eq!(status(&run(&s), "ssm.endpoints"), Status::Ok, "NAT reaches the public endpoints");
    table_mut(&mut s, "rtb-priv").routes.pop();
    let checks = run(&s);
    let c = the(&checks, "ssm.endpoints");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(c.fix.as_ref().unwrap().matches("create-vpc-endpoint").count(), 3);
    assert!(!route_ok(&checks, Path::Ssm));
    // Private DNS off, or an endpoint group without 443 from the target.
    // Private DNS off: the public name still works through NAT, and leads nowhere without.
    let mut s = healthy();
    s.endpoints[0].private_dns = false;
    assert_eq!(status(&run(&s), "ssm.endpoint-dns"), Status::Warning);
    table_mut(&mut s, "rtb-priv").routes.pop();
    let c = the(&run(&s), "ssm.endpoint-dns");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(
        c.fix.unwrap(),
        "aws ec2 modify-vpc-endpoint --region us-east-1 --vpc-endpoint-id vpce-1 --private-dns-enabled"
    );
    let mut s = healthy();
    sg_mut(&mut s, "sg-endpoints").ingress = vec![perm(443, &["10.9.0.0/16"], &[])];
    assert_eq!(status(&run(&s), "ssm.endpoint-sg"), Status::Problem);
}

#[test]
fn ssm_instance_profile_and_agent() {
    let mut s = healthy();
    host_mut(&mut s, "i-web").instance_profile = None;
    s.profile_associations.clear();
    let c = the(&run(&s), "ssm.instance-profile");
    assert_eq!(c.status, Status::Problem);
    assert!(c.fix.unwrap().contains("associate-iam-instance-profile --region us-east-1 --instance-id i-web"));
    // EC2 shows the profile on the instance whatever the association's state; only the
    // association says whether it is still coming or already going.
    let mut s = healthy();
    s.profile_associations[0].state = "associating".into();
    assert_eq!(status(&run(&s), "ssm.instance-profile"), Status::Warning);
    s.profile_associations[0].state = "disassociating".into();
    let c = the(&run(&s), "ssm.instance-profile");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(c.evidence, ["association: disassociating"]);
    // An old association left behind by a replaced profile does not hide the live one.
    s.profile_associations[0].state = "disassociated".into();
    let mut live = s.profile_associations[0].clone();
    live.state = "associated".into();
    s.profile_associations.push(live);
    assert_eq!(status(&run(&s), "ssm.instance-profile"), Status::Ok);
    s.profile_associations.pop();
    assert_eq!(status(&run(&s), "ssm.instance-profile"), Status::Problem);
    // Without the associations (not allowed to ask), the instance's own view decides.
    s.profile_associations.clear();
    assert_eq!(status(&run(&s), "ssm.instance-profile"), Status::Ok);
    let mut s = healthy();
    s.agent = Some(Agent::NotRegistered);
    assert_eq!(status(&run(&s), "ssm.agent"), Status::Problem);
    s.agent = Some(Agent::Registered { ping_status: "ConnectionLost".into(), agent_version: "3.2.0.0".into() });
    assert!(the(&run(&s), "ssm.agent").summary.contains("ConnectionLost"));
    s.agent = None;
    assert_eq!(status(&run(&s), "ssm.agent"), Status::Unknown);
}

#[test]
fn without_a_bastion_only_the_ssm_path_decides() {
    let mut s = healthy();
    s.instances.retain(|h| h.id != "i-bastion");
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), ..Default::default() });
    assert_eq!(status(&checks, "bastion.present"), Status::Warning);
    assert!(route_ok(&checks, Path::Ssm));
    // A -J host outside the VPC: said, not guessed at.
    let checks =
        diagnose(&s, &Input { target: "i-web", entry: Some("jump.example.com"), my_ip: me(), ..Default::default() });
    assert_eq!(status(&checks, "bastion.present"), Status::Unknown);
}

#[test]
fn cidr_arithmetic() {
    let c: Cidr = "10.0.0.0/16".parse().unwrap();
    assert!(c.contains("10.0.255.1".parse().unwrap()));
    assert!(!c.contains("10.1.0.1".parse().unwrap()));
    assert!(c.covers(&"10.0.1.0/24".parse().unwrap()));
    assert!(!c.covers(&"10.0.0.0/8".parse().unwrap()));
    assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("198.51.100.7".parse().unwrap()));
    assert_eq!("1.2.3.4".parse::<Cidr>().unwrap().to_string(), "1.2.3.4/32");
    assert!("1.2.3.4/33".parse::<Cidr>().is_err() && "host".parse::<Cidr>().is_err());
}

fn from_list(port: i32, list: &str) -> Permission {
    Permission { prefix_lists: vec![list.into()], ..perm(port, &[], &[]) }
}

fn list(id: &str, entries: &[&str]) -> PrefixList {
    PrefixList { id: id.into(), entries: Ok(entries.iter().map(|e| e.to_string()).collect()) }
}

/// Rules whose source is a managed prefix list: resolved, the list's entries decide; unread,
/// the check is `unknown` naming the list, never a problem with a fix.
#[test]
fn security_group_rules_naming_prefix_lists() {
    let unread = || PrefixList { id: "pl-admin".into(), entries: Err("AccessDenied".into()) };
    // (bastion's 22 rule, target's 22 rule, the lists in the snapshot, my IP) →
    // (bastion.ssh-from-you, target.ssh-from-bastion, evidence of the first)
    type Case = (Permission, Permission, Vec<PrefixList>, &'static str, Status, Status, &'static str);
    let cases: Vec<Case> = vec![
        // The list holds the caller's range: ok, naming the list and the entry.
        (
            from_list(22, "pl-admin"),
            perm(22, &[], &["sg-bastion"]),
            vec![list("pl-admin", &["192.0.2.0/24", "203.0.113.0/24"])],
            "203.0.113.5/32",
            Status::Ok,
            Status::Ok,
            "rule: tcp 22 from pl-admin (its entry 203.0.113.0/24)",
        ),
        // It does not: a problem, as with a CIDR rule, the list named where 22 is allowed from.
        (
            from_list(22, "pl-admin"),
            perm(22, &[], &["sg-bastion"]),
            vec![list("pl-admin", &["192.0.2.0/24"])],
            "203.0.113.5/32",
            Status::Problem,
            Status::Ok,
            "22 is allowed from: pl-admin",
        ),
        // Its entries could not be read: unknown, with the list as evidence.
        (
            from_list(22, "pl-admin"),
            perm(22, &[], &["sg-bastion"]),
            vec![unread()],
            "203.0.113.5/32",
            Status::Unknown,
            Status::Ok,
            "sg-bastion: tcp 22 from pl-admin: AccessDenied",
        ),
        // The target lets the bastion in through a list of the public subnet's range.
        (
            perm(22, &["203.0.113.0/24"], &[]),
            from_list(22, "pl-subnets"),
            vec![list("pl-subnets", &["10.0.0.0/24"])],
            "203.0.113.5/32",
            Status::Ok,
            Status::Ok,
            "rule: tcp 22 from 203.0.113.0/24",
        ),
        // IPv6: a ::/0 or 2001:db8::/32 rule admits an IPv6 caller…
        (
            perm(22, &["::/0"], &[]),
            perm(22, &[], &["sg-bastion"]),
            vec![],
            "2001:db8::5",
            Status::Ok,
            Status::Ok,
            "rule: tcp 22 from ::/0",
        ),
        (
            perm(22, &["2001:db8::/32"], &[]),
            perm(22, &[], &["sg-bastion"]),
            vec![],
            "2001:db8:1::5/128",
            Status::Ok,
            Status::Ok,
            "rule: tcp 22 from 2001:db8::/32",
        ),
        // …and never an IPv4 one, nor does 0.0.0.0/0 admit an IPv6 caller.
        (
            perm(22, &["::/0"], &[]),
            perm(22, &[], &["sg-bastion"]),
            vec![],
            "203.0.113.5/32",
            Status::Problem,
            Status::Ok,
            "22 is allowed from: ::/0",
        ),
        (
            perm(22, &["0.0.0.0/0", "2001:db9::/32"], &[]),
            perm(22, &[], &["sg-bastion"]),
            vec![],
            "2001:db8::5",
            Status::Problem,
            Status::Ok,
            "22 is allowed from: 0.0.0.0/0, 2001:db9::/32",
        ),
        // A list of IPv6 ranges for an IPv6 caller.
        (
            from_list(22, "pl-v6"),
            perm(22, &[], &["sg-bastion"]),
            vec![list("pl-v6", &["2001:db8::/48"])],
            "2001:db8:0:1::9",
            Status::Ok,
            Status::Ok,
            "rule: tcp 22 from pl-v6 (its entry 2001:db8::/48)",
        ),
    ];
    for (n, (bastion_rule, target_rule, lists, my_ip, want_you, want_target, evidence)) in cases.into_iter().enumerate()
    {
        let mut s = healthy();
        sg_mut(&mut s, "sg-bastion").ingress = vec![bastion_rule];
        sg_mut(&mut s, "sg-web").ingress = vec![target_rule];
        s.prefix_lists = lists;
        // The subnets' NACL admits IPv6 too, as AWS's default one does in an IPv6 VPC.
        for (egress, number) in [(false, 101), (true, 101)] {
            s.nacls[0].entries.push(NaclEntry {
                number,
                egress,
                protocol: "-1".into(),
                from: None,
                to: None,
                cidr: "::/0".into(),
                allow: true,
            });
        }
        let my_ip: Cidr = my_ip.parse().unwrap();
        let checks = diagnose(
            &s,
            &Input { target: "i-web", entry: Some("i-bastion"), my_ip: Some(my_ip), ..Default::default() },
        );
        let you = the(&checks, "bastion.ssh-from-you");
        assert_eq!(you.status, want_you, "case {n}: {you:#?}");
        assert_eq!(you.evidence, [evidence], "case {n}: {you:#?}");
        assert_eq!(status(&checks, "target.ssh-from-bastion"), want_target, "case {n}");
        assert_eq!(status(&checks, "bastion.nacl"), Status::Ok, "case {n}: {checks:#?}");
        match want_you {
            Status::Problem => {
                let fix = you.fix.unwrap();
                if my_ip.is_ipv6() {
                    assert!(fix.contains(&format!("Ipv6Ranges=[{{CidrIpv6={my_ip}}}]")), "case {n}: {fix}");
                } else {
                    assert!(fix.ends_with(&format!("--cidr {my_ip}")), "case {n}: {fix}");
                }
            }
            _ => assert_eq!(you.fix, None, "case {n}: no fix for what may work"),
        }
        assert_eq!(route_ok(&checks, Path::Bastion), want_you != Status::Problem, "case {n}");
    }
    // The target's rule through a list hop could not read: unknown, and the route is not
    // declared broken.
    let mut s = healthy();
    sg_mut(&mut s, "sg-web").ingress = vec![from_list(22, "pl-subnets")];
    let checks = run(&s);
    let c = the(&checks, "target.ssh-from-bastion");
    assert_eq!((c.status, c.fix.as_deref()), (Status::Unknown, None), "{c:#?}");
    assert_eq!(c.evidence, ["sg-web: tcp 22 from pl-subnets: its entries were not read"]);
    assert!(route_ok(&checks, Path::Bastion));
}

#[test]
fn cidr_arithmetic_ipv6() {
    let c: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(c.contains("2001:db8:ffff::1".parse().unwrap()));
    assert!(!c.contains("2001:db9::1".parse().unwrap()));
    assert!(!c.contains("32.1.13.184".parse().unwrap()), "the same leading bits in IPv4 are not in it");
    assert!(!"0.0.0.0/0".parse::<Cidr>().unwrap().contains("::1".parse().unwrap()));
    assert!(!"::/0".parse::<Cidr>().unwrap().contains("10.0.0.1".parse().unwrap()));
    assert!("::/0".parse::<Cidr>().unwrap().covers(&"2001:db8::5".parse().unwrap()));
    assert_eq!("2001:db8::5".parse::<Cidr>().unwrap().to_string(), "2001:db8::5/128");
    assert!("2001:db8::/129".parse::<Cidr>().is_err());
    assert!("10.0.0.0/0".parse::<Cidr>().unwrap().contains("192.0.2.1".parse().unwrap()));
}

/// The tutorial VPC without its bastion, entered through EC2 Instance Connect Endpoint eice-1
/// (its own subnet in another AZ, group sg-eice: TCP 22 out to the VPC); web lets sg-eice in.
fn eice_vpc() -> Snapshot {
    let mut s = healthy();
    s.instances.retain(|h| h.id != "i-bastion");
    host_mut(&mut s, "i-web").instance_type = Some("t3.micro".into());
    for sub in &mut s.subnets {
        sub.cidr = Some(if sub.id == "subnet-pub" { "10.0.0.0/24" } else { "10.0.1.0/24" }.into());
    }
    s.subnets.push(Subnet {
        id: "subnet-eice".into(),
        availability_zone: "us-east-1b".into(),
        cidr: Some("10.0.2.0/24".into()),
    });
    s.nacls[0].subnets.push("subnet-eice".into());
    sg_mut(&mut s, "sg-web").ingress = vec![perm(22, &[], &["sg-eice"])];
    s.security_groups.push(SecurityGroup {
        id: "sg-eice".into(),
        name: "eice".into(),
        ingress: vec![],
        egress: vec![perm(22, &["10.0.0.0/16"], &[])],
    });
    s.eices = vec![Eice {
        id: "eice-1".into(),
        arn: Some("arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1".into()),
        vpc_id: "vpc-1".into(),
        subnet_id: "subnet-eice".into(),
        state: "create-complete".into(),
        state_message: None,
        security_groups: vec!["sg-eice".into()],
        preserve_client_ip: false,
    }];
    s
}

/// `hop doctor` for web over the route's endpoint `eice-1`, as discovery saw it.
fn over_eice(s: &Snapshot, my_ip: Option<Cidr>) -> Vec<Check> {
    let eice = Eice { id: "eice-1".into(), state: "create-complete".into(), ..Default::default() };
    diagnose(s, &Input { target: "i-web", entry: None, my_ip, eice: Some(eice), port: 22 })
}

fn eice_mut(s: &mut Snapshot) -> &mut Eice {
    &mut s.eices[0]
}

#[test]
fn the_eice_route_through_a_healthy_endpoint_passes() {
    let checks = over_eice(&eice_vpc(), me());
    let eice: Vec<(&str, Status)> =
        checks.iter().filter(|c| c.path == Path::Eice).map(|c| (c.check, c.status)).collect();
    assert_eq!(
        eice,
        [
            ("eice.endpoint", Status::Ok),
            ("eice.egress", Status::Ok),
            ("eice.target-ingress", Status::Ok),
            ("eice.nacl", Status::Ok)
        ],
        "{checks:#?}"
    );
    assert!(route_ok(&checks, Path::Eice));
    // The bastion path has nothing to say when the route needs none.
    assert!(!checks.iter().any(|c| c.path == Path::Bastion), "{checks:#?}");
    assert_eq!(the(&checks, "eice.endpoint").summary, "endpoint eice-1 (subnet-eice, vpc-1) is create-complete");
    assert_eq!(the(&checks, "eice.egress").evidence, ["egress: tcp 22 to 10.0.0.0/16"]);
    assert_eq!(the(&checks, "eice.target-ingress").evidence, ["rule: tcp 22 from sg-eice"]);
    // In the target's own subnet no NACL stands between them.
    let mut s = eice_vpc();
    eice_mut(&mut s).subnet_id = "subnet-priv".into();
    assert!(!over_eice(&s, me()).iter().any(|c| c.check == "eice.nacl"));
}

#[test]
fn endpoint_states_usable_or_not_with_the_fix() {
    let delete = "aws ec2 delete-instance-connect-endpoint --region us-east-1 --instance-connect-endpoint-id eice-1";
    let create = "aws ec2 create-instance-connect-endpoint --region us-east-1 --subnet-id subnet-priv --security-group-ids sg-eice";
    let table: [(&str, Status, &str, String); 9] = [
        ("create-complete", Status::Ok, "is create-complete", String::new()),
        ("update-complete", Status::Ok, "is update-complete", String::new()),
        ("update-in-progress", Status::Ok, "usable while it updates", String::new()),
        (
            "update-failed",
            Status::Warning,
            "still usable, but its last change did not apply",
            "aws ec2 modify-instance-connect-endpoint --region us-east-1 --instance-connect-endpoint-id eice-1".into(),
        ),
        ("create-in-progress", Status::Problem, "still being created", "describe-instance-connect-endpoints".into()),
        ("create-failed", Status::Problem, "could not be created (create-failed)", format!("{delete} && {create}")),
        ("delete-in-progress", Status::Problem, "being deleted (delete-in-progress)", create.into()),
        ("delete-complete", Status::Problem, "is deleted", create.into()),
        ("delete-failed", Status::Problem, "failed to delete", format!("{delete} && {create}")),
    ];
    for (state, status, says, fix) in table {
        let mut s = eice_vpc();
        eice_mut(&mut s).state = state.into();
        eice_mut(&mut s).state_message = Some("Subnet has insufficient addresses".into());
        let checks = over_eice(&s, me());
        let c = the(&checks, "eice.endpoint");
        assert_eq!(c.status, status, "{state}: {c:#?}");
        assert!(c.summary.contains(says), "{state}: {c:#?}");
        assert!(c.fix.as_deref().unwrap_or_default().contains(&fix), "{state}: {c:#?}");
        assert_eq!(c.evidence[0], "StateMessage: Subnet has insufficient addresses", "{state}");
        assert_eq!(route_ok(&checks, Path::Eice), status != Status::Problem, "{state}");
    }
}

#[test]
fn the_endpoint_group_must_let_it_out_to_the_target() {
    let fix = "aws ec2 authorize-security-group-egress --region us-east-1 --group-id sg-eice --ip-permissions \
               'IpProtocol=tcp,FromPort=22,ToPort=22,UserIdGroupPairs=[{GroupId=sg-web}]'";
    let table: [(Permission, Status); 5] = [
        (perm(22, &["10.0.1.10/32"], &[]), Status::Ok),
        (perm(22, &[], &["sg-web"]), Status::Ok),
        (all_out(), Status::Ok),
        (perm(22, &["10.9.0.0/16"], &[]), Status::Problem),
        (perm(443, &["10.0.0.0/16"], &[]), Status::Problem),
    ];
    for (n, (rule, want)) in table.into_iter().enumerate() {
        let mut s = eice_vpc();
        sg_mut(&mut s, "sg-eice").egress = vec![rule];
        let checks = over_eice(&s, me());
        let c = the(&checks, "eice.egress");
        assert_eq!(c.status, want, "case {n}: {c:#?}");
        if want == Status::Problem {
            assert_eq!(
                c.summary, "the endpoint's security groups (sg-eice) allow no TCP 22 out to web (i-web) at 10.0.1.10",
                "case {n}"
            );
            assert_eq!(c.fix.as_deref(), Some(fix), "case {n}");
            assert!(!route_ok(&checks, Path::Eice));
            assert!(route_ok(&checks, Path::Ssm), "SSM does not need it");
        }
    }
}

#[test]
fn the_target_must_let_the_endpoint_in_by_group_or_subnet() {
    let table: [(Permission, Status); 5] = [
        (perm(22, &[], &["sg-eice"]), Status::Ok),
        (perm(22, &["10.0.2.0/24"], &[]), Status::Ok),
        (perm(22, &["10.0.0.0/16"], &[]), Status::Ok),
        // Only part of the endpoint's subnet: its address may be anywhere in it.
        (perm(22, &["10.0.2.0/28"], &[]), Status::Problem),
        (perm(22, &[], &["sg-bastion"]), Status::Problem),
    ];
    for (n, (rule, want)) in table.into_iter().enumerate() {
        let mut s = eice_vpc();
        sg_mut(&mut s, "sg-web").ingress = vec![rule];
        let checks = over_eice(&s, me());
        let c = the(&checks, "eice.target-ingress");
        assert_eq!(c.status, want, "case {n}: {c:#?}");
        if want == Status::Problem {
            assert_eq!(
                c.summary,
                "no security group of web (i-web) (sg-web) allows TCP 22 from the endpoint's group (sg-eice) or its subnet subnet-eice (10.0.2.0/24)"
            );
            assert_eq!(
                c.fix.as_deref(),
                Some(
                    "aws ec2 authorize-security-group-ingress --region us-east-1 --group-id sg-web --protocol tcp --port 22 --source-group sg-eice"
                )
            );
            assert!(!route_ok(&checks, Path::Eice));
        }
    }
}

#[test]
fn preserved_client_ips_need_your_address_the_same_vpc_and_a_recent_instance_type() {
    let mut s = eice_vpc();
    eice_mut(&mut s).preserve_client_ip = true;
    sg_mut(&mut s, "sg-web").ingress = vec![perm(22, &["10.0.2.0/24"], &[])];
    // Your address is not let in: the fix lets it in.
    let checks = over_eice(&s, me());
    let c = the(&checks, "eice.target-ingress");
    assert_eq!(c.status, Status::Problem, "{c:#?}");
    assert!(
        c.summary.ends_with("allows TCP 22 from your address (203.0.113.5/32) or the endpoint's group (sg-eice)"),
        "{c:#?}"
    );
    assert_eq!(
        c.fix.as_deref(),
        Some(
            "aws ec2 authorize-security-group-ingress --region us-east-1 --group-id sg-web --protocol tcp --port 22 --cidr 203.0.113.5/32"
        )
    );
    assert_eq!(the(&checks, "eice.preserve-client-ip").status, Status::Ok);
    // The NACL is checked against your address too.
    assert!(the(&checks, "eice.nacl").summary.contains("203.0.113.5/32"), "{checks:#?}");
    // Without --my-ip: a warning that says what to pass.
    let c = the(&over_eice(&s, None), "eice.target-ingress");
    assert_eq!(c.status, Status::Warning, "{c:#?}");
    assert!(c.summary.contains("pass --my-ip"), "{c:#?}");
    // Let in: ok.
    sg_mut(&mut s, "sg-web").ingress = vec![perm(22, &["203.0.113.0/24"], &[])];
    assert_eq!(the(&over_eice(&s, me()), "eice.target-ingress").status, Status::Ok);
    // The instance families it cannot reach.
    let off = "aws ec2 modify-instance-connect-endpoint --region us-east-1 --instance-connect-endpoint-id eice-1 --no-preserve-client-ip";
    for (ty, want) in [
        ("m3.medium", Status::Problem),
        ("t1.micro", Status::Problem),
        ("m5.large", Status::Ok),
        ("t3.micro", Status::Ok),
    ] {
        host_mut(&mut s, "i-web").instance_type = Some(ty.into());
        let checks = over_eice(&s, me());
        let c = the(&checks, "eice.preserve-client-ip");
        assert_eq!(c.status, want, "{ty}: {c:#?}");
        if want == Status::Problem {
            assert!(c.summary.ends_with(&format!("instances, and web (i-web) is a {ty}")), "{c:#?}");
            assert_eq!(c.fix.as_deref(), Some(off), "{ty}");
            assert!(!route_ok(&checks, Path::Eice));
        }
    }
    // An endpoint of another VPC (asked for): unreachable with preservation on; its groups
    // are not in this snapshot.
    let mut s = eice_vpc();
    s.eices.clear();
    let other = Eice {
        id: "eice-9".into(),
        vpc_id: "vpc-9".into(),
        subnet_id: "subnet-9".into(),
        state: "create-complete".into(),
        security_groups: vec!["sg-9".into()],
        preserve_client_ip: true,
        ..Default::default()
    };
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), eice: Some(other), port: 22 });
    let c = the(&checks, "eice.preserve-client-ip");
    assert_eq!(c.status, Status::Problem, "{c:#?}");
    assert_eq!(
        c.summary,
        "eice-9 preserves client IPs, so it reaches its own VPC (vpc-9) only, and web (i-web) is in vpc-1"
    );
    assert_eq!(the(&checks, "eice.security-groups").status, Status::Unknown);
    assert!(!checks.iter().any(|c| c.check == "eice.egress"), "{checks:#?}");
}

#[test]
fn another_port_than_22_cannot_go_through_an_endpoint() {
    let s = eice_vpc();
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), eice: None, port: 2222 });
    let c = the(&checks, "eice.port");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(
        c.summary,
        "hop logs in to web (i-web) on port 2222, and an EC2 Instance Connect Endpoint reaches port 22 (and 3389) only"
    );
    assert!(c.fix.as_deref().unwrap().contains("drop `port = 2222`"), "{c:#?}");
    // Not the route: the SSM route's verdict is its own.
    assert!(route_ok(&checks, Path::Ssm));
}

#[test]
fn without_a_bastion_the_vpc_endpoint_is_checked_even_when_the_route_is_ssm() {
    let mut s = eice_vpc();
    eice_mut(&mut s).state = "create-failed".into();
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), ..Default::default() });
    let c = the(&checks, "eice.endpoint");
    assert_eq!(c.status, Status::Problem);
    assert_eq!(c.evidence, ["chosen: the one endpoint in vpc-1"]);
    assert_eq!(status(&checks, "bastion.present"), Status::Warning);
    assert!(route_ok(&checks, Path::Ssm));
    // Usable endpoints first, then the target's subnet: eice-0 in web's subnet but failed loses.
    let mut failed = s.eices[0].clone();
    failed.id = "eice-0".into();
    failed.subnet_id = "subnet-priv".into();
    s.eices[0].state = "create-complete".into();
    s.eices.push(failed);
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), ..Default::default() });
    assert_eq!(the(&checks, "eice.endpoint").summary, "endpoint eice-1 (subnet-eice, vpc-1) is create-complete");
    // With a bastion the endpoint is not hop's business.
    let mut with_bastion = healthy();
    with_bastion.eices = s.eices.clone();
    assert!(!run(&with_bastion).iter().any(|c| c.path == Path::Eice));
}

#[test]
fn an_unlisted_endpoint_listing_names_the_permission() {
    let mut s = eice_vpc();
    s.eices.clear();
    s.eices_unlisted = Some(Unlisted::Denied(
        "DescribeInstanceConnectEndpoints: UnauthorizedOperation: You are not authorized to perform this operation."
            .into(),
    ));
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), ..Default::default() });
    let c = the(&checks, "eice.list");
    assert_eq!(c.status, Status::Warning, "{c:#?}");
    assert!(
        c.fix.as_deref().unwrap().contains(r#""Action":"ec2:DescribeInstanceConnectEndpoints","Resource":"*""#),
        "{c:#?}"
    );
    assert_eq!(checks.iter().filter(|c| c.path == Path::Eice).count(), 1, "{checks:#?}");
    // Any other error: unknown, and only where EICE could matter (no bastion).
    s.eices_unlisted = Some(Unlisted::Failed("DescribeInstanceConnectEndpoints: timeout".into()));
    assert!(!checks_have(
        &diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me(), ..Default::default() }),
        "eice.list"
    ));
    let mut with_bastion = healthy();
    with_bastion.eices_unlisted = s.eices_unlisted.clone();
    assert!(!checks_have(&run(&with_bastion), "eice.list"));
}

fn checks_have(checks: &[Check], id: &str) -> bool {
    checks.iter().any(|c| c.check == id)
}

#[test]
fn the_iam_fix_names_open_tunnel_on_the_endpoint_and_the_key_push_on_the_instance() {
    let arn = "arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1";
    assert_eq!(
        eice_iam_fix("us-east-1", "eice-1", Some(arn), "i-0abc", None),
        "allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1: \
         aws iam put-user-policy --user-name <you> --policy-name hop-eice --policy-document \
         '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ec2-instance-connect:OpenTunnel\",\
         \"Resource\":\"arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1\"}]}' \
         (put-role-policy --role-name <role> for a role)"
    );
    let with_push = eice_iam_fix("us-east-1", "eice-1", Some(arn), "i-0abc", Some("ec2-user"));
    assert!(
        with_push.starts_with(
            "allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:us-east-1:123456789012:instance-connect-endpoint/eice-1 \
             and ec2-instance-connect:SendSSHPublicKey on arn:aws:ec2:us-east-1:123456789012:instance/i-0abc (as ec2-user): "
        ),
        "{with_push}"
    );
    assert!(with_push.contains(r#""Condition":{"StringEquals":{"ec2:osuser":"ec2-user"}}"#), "{with_push}");
    // No ARN from EC2: the account is a placeholder, the rest is real.
    assert!(eice_iam_fix("eu-west-1", "eice-2", None, "i-1", None).starts_with(
        "allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:eu-west-1:<account>:instance-connect-endpoint/eice-2: "
    ));
}
