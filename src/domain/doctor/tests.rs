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
            Subnet { id: "subnet-priv".into(), availability_zone: "us-east-1a".into() },
            Subnet { id: "subnet-pub".into(), availability_zone: "us-east-1a".into() },
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
    }
}

fn me() -> Option<Cidr> {
    Some("203.0.113.5/32".parse().unwrap())
}

fn run(s: &Snapshot) -> Vec<Check> {
    diagnose(s, &Input { target: "i-web", entry: Some("i-bastion"), my_ip: me() })
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
    assert!(route_ok(&checks, false) && route_ok(&checks, true));
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
    assert!(!route_ok(&run(&s), false));
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
    let checks = diagnose(&s, &Input { target: "i-web", entry: Some("i-bastion"), my_ip: None });
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
    assert!(!route_ok(&run(&s), false));
    assert!(route_ok(&run(&s), true), "SSM does not need it");
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
    assert!(route_ok(&run(&s), false), "outbound problems do not fail the SSH route");
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
    s.subnets.push(Subnet { id: "subnet-a-pub".into(), availability_zone: "us-east-1b".into() });
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
    assert!(!route_ok(&checks, true));
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
    let checks = diagnose(&s, &Input { target: "i-web", entry: None, my_ip: me() });
    assert_eq!(status(&checks, "bastion.present"), Status::Warning);
    assert!(route_ok(&checks, true));
    // A -J host outside the VPC: said, not guessed at.
    let checks = diagnose(&s, &Input { target: "i-web", entry: Some("jump.example.com"), my_ip: me() });
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
        let checks = diagnose(&s, &Input { target: "i-web", entry: Some("i-bastion"), my_ip: Some(my_ip) });
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
        assert_eq!(route_ok(&checks, false), want_you != Status::Problem, "case {n}");
    }
    // The target's rule through a list hop could not read: unknown, and the route is not
    // declared broken.
    let mut s = healthy();
    sg_mut(&mut s, "sg-web").ingress = vec![from_list(22, "pl-subnets")];
    let checks = run(&s);
    let c = the(&checks, "target.ssh-from-bastion");
    assert_eq!((c.status, c.fix.as_deref()), (Status::Unknown, None), "{c:#?}");
    assert_eq!(c.evidence, ["sg-web: tcp 22 from pl-subnets: its entries were not read"]);
    assert!(route_ok(&checks, false));
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
