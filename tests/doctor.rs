//! `hop doctor` against moto: one small VPC per broken topology (tests/support/doctor_topologies.py,
//! in ap-southeast-2 so no other test sees them), each showing its problem with the fix, and the
//! healthy tutorial passing. Hand-made cases moto cannot produce (blackhole routes, NACL denies,
//! endpoint policies) are the unit tests of `domain::doctor`.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::lab_or_skip;
use crate::support::{Env, Lab, REPO, python};

const REGION: &str = "ap-southeast-2";
const MY_IP: &str = "203.0.113.5/32";

/// The scenarios, built once per test run.
fn scenarios(lab: &Lab) -> &'static Value {
    static SCENARIOS: OnceLock<Value> = OnceLock::new();
    SCENARIOS.get_or_init(|| {
        let out = Command::new(python().unwrap())
            .arg(format!("{REPO}/tests/support/doctor_topologies.py"))
            .args(["--endpoint", &lab.endpoint, "--region", REGION])
            .output()
            .unwrap();
        assert!(out.status.success(), "doctor_topologies.py: {}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["scenarios"].clone()
    })
}

/// Register `id` with the lab's Session Manager with these knobs (PingStatus and so on).
fn agent(lab: &Lab, id: &str, knobs: Value) {
    let out = Command::new(python().unwrap())
        .arg(format!("{REPO}/tests/support/ssm_admin.py"))
        .args(["--endpoint", &lab.endpoint, "target", id, &knobs.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "ssm_admin: {}", String::from_utf8_lossy(&out.stderr));
}

/// `hop doctor NAME --json --my-ip …` for scenario `name`: exit status and the report.
fn doctor(lab: &Lab, name: &str) -> (i32, Value) {
    let s = &scenarios(lab)[name];
    let env = Env::lab(lab);
    let target = s["target_name"].as_str().unwrap();
    let run = env.hop(&["--region", REGION, "doctor", target, "--json", "--my-ip", MY_IP]);
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}\n{}", run.stdout, run.stderr));
    (run.code, report)
}

fn find<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
}

/// Scenario `name` has check `id` with `status`, its summary mentioning `says`, and (for
/// problems) a fix mentioning `fix`; hop exits `code`.
fn expect(lab: &Lab, name: &str, id: &str, status: &str, says: &str, fix: &str, code: i32) -> Value {
    let (got, report) = doctor(lab, name);
    let c = find(&report, id);
    assert_eq!(c["status"], status, "{name}: {c:#}");
    assert!(c["summary"].as_str().unwrap().contains(says), "{name}: {c:#}");
    if !fix.is_empty() {
        assert!(c["fix"].as_str().unwrap_or_default().contains(fix), "{name}: {c:#}");
    }
    assert_eq!(got, code, "{name}: exit status; {report:#}");
    report
}

#[test]
fn the_healthy_tutorial_passes_the_route_hop_takes() {
    let lab = lab_or_skip!();
    let (code, report) = doctor(lab, "healthy");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["route"], json!({"kind": "jump", "summary": "via doc-healthy-bastion"}));
    for id in [
        "hop.resolves",
        "hop.route",
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
    ] {
        assert_eq!(find(&report, id)["status"], "ok", "{id}: {report:#}");
    }
    // No key file for doc-key here: a warning, not a problem.
    assert_eq!(find(&report, "hop.key")["status"], "warning");
    // The document's shape is the stable interface (`version` 1): the same keys, always.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k.join(",")
    };
    assert_eq!(report["version"], 1);
    assert_eq!(keys(&report), "checks,problems,route,route_ok,target,version");
    assert_eq!(keys(&report["target"]), "id,name,region,vpc");
    assert_eq!(keys(&report["route"]), "kind,summary");
    assert_eq!(report["route_ok"], true);
    assert!(report["problems"].is_u64(), "{report:#}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(keys(c), "check,evidence,fix,path,status,summary", "{c:#}");
        assert!(["hop", "bastion", "outbound", "ssm"].contains(&c["path"].as_str().unwrap()), "{c:#}");
        assert!(["ok", "problem", "warning", "unknown"].contains(&c["status"].as_str().unwrap()), "{c:#}");
    }
}

#[test]
fn one_credential_resolution_for_discovery_the_vpc_snapshot_and_session_manager() {
    let lab = lab_or_skip!();
    let s = &scenarios(lab)["healthy"];
    let mut env = Env::lab(lab);
    let counter = crate::ls::counted_credentials(&mut env);
    let target = s["target_name"].as_str().unwrap();
    let run = env.hop(&["--profile", "counted", "--region", REGION, "doctor", target, "--json", "--my-ip", MY_IP]);
    run.code(0);
    assert_eq!(crate::ls::credential_calls(&counter), 1, "{}", run.stderr);
}

#[test]
fn bastion_path_problems_each_with_the_fix() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let igw = s["no_igw_route"]["igw"].as_str().unwrap();
    expect(
        lab,
        "no_igw_route",
        "bastion.igw-route",
        "problem",
        "no route to the internet",
        &format!("--gateway-id {igw}"),
        1,
    );
    let igw = s["igw_detached"]["igw"].as_str().unwrap();
    let vpc = s["igw_detached"]["vpc"].as_str().unwrap();
    expect(
        lab,
        "igw_detached",
        "bastion.igw-route",
        "problem",
        "not attached",
        &format!("attach-internet-gateway --region {REGION} --internet-gateway-id {igw} --vpc-id {vpc}"),
        1,
    );
    // Without a public IP the bastion is unusable, so hop would take SSM: doctor says why.
    let report =
        expect(lab, "bastion_no_public_ip", "bastion.public-ip", "problem", "has no public IP", "associate-address", 1);
    assert_eq!(report["route"]["kind"], "ssm");
    let sg = s["sg_wrong_cidr"]["bastion_sg"].as_str().unwrap();
    let report = expect(
        lab,
        "sg_wrong_cidr",
        "bastion.ssh-from-you",
        "problem",
        MY_IP,
        &format!("--group-id {sg} --protocol tcp --port 22 --cidr {MY_IP}"),
        1,
    );
    assert_eq!(find(&report, "bastion.ssh-from-you")["evidence"], json!(["22 is allowed from: 192.0.2.0/24"]));
    let (web, bastion) = (
        s["target_sg_without_bastion_sg"]["target_sg"].as_str().unwrap(),
        s["target_sg_without_bastion_sg"]["bastion_sg"].as_str().unwrap(),
    );
    expect(
        lab,
        "target_sg_without_bastion_sg",
        "target.ssh-from-bastion",
        "problem",
        "allows TCP 22 from the bastion",
        &format!("--group-id {web} --protocol tcp --port 22 --source-group {bastion}"),
        1,
    );
}

#[test]
fn outbound_problems_are_reported_without_failing_the_ssh_route() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let rt = s["nat_route_missing"]["private_route_table"].as_str().unwrap();
    expect(
        lab,
        "nat_route_missing",
        "outbound.default-route",
        "problem",
        "no route to the internet and no S3 gateway endpoint",
        &format!("--route-table-ids {rt}"),
        0,
    );
    let nat = s["nat_instance_srcdst_on"]["nat_instance"].as_str().unwrap();
    expect(
        lab,
        "nat_instance_srcdst_on",
        "outbound.default-route",
        "problem",
        "source/destination check is on",
        &format!("--instance-id {nat} --no-source-dest-check"),
        0,
    );
    expect(lab, "nat_instance_ok", "outbound.default-route", "ok", "NAT instance", "", 0);
    expect(lab, "healthy", "outbound.default-route", "ok", "NAT gateway", "", 0);
}

#[test]
fn ssm_path_problems_and_a_healthy_ssm_vpc() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let report =
        expect(lab, "ssm_no_endpoints_no_nat", "ssm.endpoints", "problem", "no NAT path", "create-vpc-endpoint", 1);
    assert_eq!(report["route"]["kind"], "ssm");
    // An agent Online (as it would be for a moment after its profile went), so that the exit
    // status is this rule's alone.
    agent(lab, s["ssm_missing_profile"]["target"].as_str().unwrap(), json!({"ping_status": "Online"}));
    let report = expect(
        lab,
        "ssm_missing_profile",
        "ssm.instance-profile",
        "problem",
        "no instance profile",
        "associate-iam-instance-profile",
        1,
    );
    let ssm_problems: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["path"] == "ssm" && c["status"] == "problem")
        .collect();
    assert_eq!(ssm_problems.len(), 1, "{report:#}");
    // The agent as Session Manager sees it decides too.
    let id = s["ssm_healthy"]["target"].as_str().unwrap();
    agent(lab, id, json!({"ping_status": "ConnectionLost"}));
    expect(lab, "ssm_healthy", "ssm.agent", "problem", "ConnectionLost", "", 1);
    agent(lab, id, json!({"ping_status": "Online"}));
    let report = expect(lab, "ssm_healthy", "ssm.agent", "ok", "Online", "", 0);
    assert_eq!(find(&report, "ssm.endpoints")["status"], "ok");
    assert_eq!(find(&report, "ssm.instance-profile")["status"], "ok");
}

#[test]
fn the_snapshot_costs_the_same_calls_for_a_small_vpc_and_a_150_instance_one() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let calls = |region: &str, target: &str| {
        let mut env = Env::lab(lab);
        // Warm the inventory cache, so only the snapshot is counted.
        env.hop(&["--region", region, "ls"]).code(0);
        env.set("HOP_LOG", "aws_smithy_runtime=debug");
        let run = env.hop(&["--region", region, "doctor", target, "--json"]);
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        run.stderr.matches("beginning attempt #1").count()
    };
    // 2, 5 and 151 instances in the VPC.
    let small = calls(REGION, s["healthy"]["target_name"].as_str().unwrap());
    let tutorial = calls("us-east-1", "sample-web");
    let fleet = calls("us-west-2", &lab.id("fleet-bastion"));
    let lists = calls(REGION, s["prefix_lists"]["target_name"].as_str().unwrap());
    let eice = calls("us-east-1", "sample-eice-web");
    // Instances, subnets, route tables, internet gateways, NAT gateways, security groups, network
    // ACLs, VPC endpoints, EC2 Instance Connect Endpoints, the target's instance-profile
    // associations, and Session Manager's DescribeInstanceInformation; and one
    // GetManagedPrefixListEntries per prefix list an SSH rule names (two there; at most four in
    // any VPC).
    assert_eq!((small, tutorial, fleet, lists, eice), (11, 11, 11, 13, 11));
}

/// Rules that name managed prefix lists are resolved (the caller's range is in one, the
/// bastion's subnet in another): a working bastion passes, no problem and no wrong fix. An IPv6
/// caller is checked against the IPv6 ranges (and the NACL's ::/0 rules), never the IPv4 ones.
#[test]
fn prefix_list_and_ipv6_rules_are_understood() {
    let lab = lab_or_skip!();
    let s = &scenarios(lab)["prefix_lists"];
    let env = Env::lab(lab);
    let target = s["target_name"].as_str().unwrap();
    let doctor = |my_ip: &str| {
        let run = env.hop(&["--region", REGION, "doctor", target, "--json", "--my-ip", my_ip]);
        let report: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
        (run.code, report)
    };
    let (code, report) = doctor(MY_IP);
    let you = find(&report, "bastion.ssh-from-you");
    assert_eq!(you["status"], "ok", "{report:#}");
    let evidence = you["evidence"][0].as_str().unwrap();
    assert!(
        evidence.starts_with("rule: tcp 22 from pl-") && evidence.ends_with(" (its entry 203.0.113.0/24)"),
        "{you:#}"
    );
    let from_bastion = find(&report, "target.ssh-from-bastion");
    assert_eq!(from_bastion["status"], "ok", "{report:#}");
    assert!(from_bastion["evidence"][0].as_str().unwrap().ends_with(" (its entry 10.22.0.0/24)"), "{from_bastion:#}");
    for c in report["checks"].as_array().unwrap().iter().filter(|c| c["path"] == "bastion") {
        assert_eq!(c["status"], "ok", "{c:#}");
    }
    assert_eq!((code, &report["route_ok"]), (0, &json!(true)), "{report:#}");
    // An IPv6 caller inside 2001:db8::/32.
    let (code, report) = doctor("2001:db8::5");
    let you = find(&report, "bastion.ssh-from-you");
    assert_eq!(you["status"], "ok", "{report:#}");
    assert_eq!(you["evidence"], json!(["rule: tcp 22 from 2001:db8::/32"]));
    assert_eq!(find(&report, "bastion.nacl")["status"], "ok", "{report:#}");
    assert_eq!(code, 0, "{report:#}");
    // Outside it: a problem whose fix adds an IPv6 range (`--cidr` takes IPv4 only).
    let (code, report) = doctor("2001:db9::5");
    let you = find(&report, "bastion.ssh-from-you");
    assert_eq!(you["status"], "problem", "{report:#}");
    assert!(you["fix"].as_str().unwrap().contains("Ipv6Ranges=[{CidrIpv6=2001:db9::5/128}]"), "{you:#}");
    assert_eq!(code, 1);
}

#[test]
fn the_checklist_is_readable_and_bad_input_is_a_usage_error() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let env = Env::lab(lab);
    let target = s["no_igw_route"]["target_name"].as_str().unwrap();
    let run = env.hop(&["--region", REGION, "doctor", target, "--my-ip", MY_IP]);
    run.code(1);
    assert!(run.stdout.starts_with(&format!("hop doctor: {target} (")), "{}", run.stdout);
    assert!(run.stdout.contains("\nbastion\n  ok       bastion "), "{}", run.stdout);
    assert!(run.stdout.contains("\n  PROBLEM  the bastion's subnet"), "{}", run.stdout);
    assert!(run.stdout.contains("put the private key of key pair doc-key at ~/.ssh/doc-key.pem"), "{}", run.stdout);
    assert!(run.stdout.contains("           fix:  aws ec2 create-route"), "{}", run.stdout);
    assert!(run.stdout.ends_with("the SSH route has problems: fix them in the order shown\n"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "no colour off a terminal");
    // Colour when asked (as on a terminal: `--color auto` decides like `hop ls`, tested there).
    let run = env.hop(&["--color", "always", "--region", REGION, "doctor", target, "--my-ip", MY_IP]);
    assert!(run.stdout.contains("\n  \x1b[1;31mPROBLEM \x1b[0m the bastion's subnet"), "{:?}", run.stdout);
    let run = env.hop(&["--region", REGION, "doctor", target, "--my-ip", "my-laptop"]);
    run.code(2);
    assert!(run.stderr.contains("--my-ip: \"my-laptop\" is not an IP address or CIDR"), "{}", run.stderr);
    env.hop(&["--region", REGION, "doctor", "doc-nonexistent"]).code(2);
}

/// `--probe` in the namespace lab: every step of the real route, or the first that fails.
#[test]
fn probe_walks_the_route_and_stops_at_the_first_failure() {
    let net = crate::netlab_or_skip!();
    let _shared = crate::support::NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let probes = |run: &crate::support::Run| -> Vec<(String, String, String)> {
        let report: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["path"] == "probe")
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap().to_string();
                (s("check"), s("status"), s("summary"))
            })
            .collect()
    };
    let run = env.hop_in(net, &["doctor", "sample-web", "--probe", "--json"], b"");
    let got = probes(&run);
    let steps: Vec<(&str, &str)> = got.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    assert_eq!(steps, [("probe.tcp", "ok"), ("probe.ssh", "ok"), ("probe.target", "ok")], "{got:?}");
    assert!(got[2].2.contains("answered: SSH-2.0-OpenSSH"), "{got:?}");
    // Without the bastion's key in known_hosts the SSH step fails, and the probe stops there.
    env.write(".ssh/known_hosts", b"");
    let run = env.hop_in(net, &["doctor", "sample-web", "--probe", "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = probes(&run);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("probe.ssh", "problem"));
    assert!(got[1].2.contains("is not known"), "{got:?}");
    // Nothing listens on the first hop's port: the TCP step fails, and nothing after it runs.
    let bastion = net.state["bastion"]["public_ip"].as_str().unwrap();
    let jump = format!("ec2-user@{bastion}:2");
    let run = env.hop_in(net, &["-J", &jump, "doctor", "sample-web", "--probe", "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = probes(&run);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("probe.tcp", "problem"));
    assert!(got[0].2.contains(&format!("{bastion}:2")) && got[0].2.contains("refused"), "{got:?}");
    // Nothing listens on the target's port (config `port = 2`): the bastion cannot open the
    // channel, and the probe says so at that step.
    let mut env = Env::net(net);
    env.trust_both(net);
    let config = env.write("hop.toml", b"[hosts.sample-web]\nport = 2\n");
    env.set("HOP_CONFIG", config.to_str().unwrap());
    let run = env.hop_in(net, &["doctor", "sample-web", "--probe", "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = probes(&run);
    let steps: Vec<(&str, &str)> = got.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    assert_eq!(steps, [("probe.tcp", "ok"), ("probe.ssh", "ok"), ("probe.target", "problem")], "{got:?}");
    assert!(got[2].2.contains("could not open 10.0.1.10:2"), "{got:?}");
    // Over Session Manager: the session, then sshd's banner through it.
    let env = Env::net(net);
    crate::ssm::target(net, &env, "doctor-ssm", json!({}));
    let run = env.hop_in(net, &["doctor", "doctor-ssm", "--probe", "--json"], b"");
    let got = probes(&run);
    let steps: Vec<(&str, &str)> = got.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    assert_eq!(steps, [("probe.ssm", "ok"), ("probe.target", "ok")], "{got:?}");
}

#[test]
fn the_checklist_escapes_the_tags_it_quotes() {
    let lab = lab_or_skip!();
    let hostile = crate::support::hostile(lab);
    let env = Env::lab(lab);
    let id = hostile["instances"]["newline"]["id"].as_str().unwrap();
    let run = env.hop(&["--region", "sa-east-1", "doctor", id, "--my-ip", MY_IP]);
    run.code(1);
    // Nothing a terminal would obey: no control character but the line ends, no bidi control.
    let obeyed = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    assert!(!run.stdout.chars().any(obeyed), "{:?}", run.stdout);
    // The tags are quoted escaped; no line is forged.
    let shown = crate::support::redact_hostile(hostile, &run.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    let name = r"web\nforged-row   i-0f0f0f0f0f0f0f0f0  running  10.9.1.99";
    // Launched without key pairs: hop pushes keys to both hops.
    let push = "has no key pair: hop pushes a key with EC2 Instance Connect as ec2-user (unless ssh-agent has keys)";
    assert_eq!(
        lines[..7],
        [
            format!(
                r"hop doctor: {name} (<newline>__________) in <vpc>________________ (sa-east-1), route: via bastion\u{{2066}}-\u{{2069}}x"
            ),
            String::new(),
            "hop".into(),
            format!(r#"  ok       "<newline>__________" is {name} (<newline>__________, running) in sa-east-1"#),
            format!(r"  ok       bastion\u{{2066}}-\u{{2069}}x {push}"),
            format!(r"  ok       {name} {push}"),
            r"  ok       route: via bastion\u{2066}-\u{2069}x".into(),
        ],
        "{shown}"
    );
    assert!(!shown.lines().any(|l| l.starts_with("forged-row")), "{shown}");
}

/// The seeded EC2 Instance Connect VPC (sample-eice-vpc: two endpoints, no bastion, no SSM):
/// the route hop takes is the endpoint of the target's subnet, and every check of it passes.
#[test]
fn the_seeded_eice_target_passes_every_check_of_its_route() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["doctor", "sample-eice-web", "--json", "--my-ip", MY_IP]);
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    assert_eq!(run.code, 0, "{report:#}");
    assert_eq!(report["route"], json!({"kind": "eice", "summary": "eice"}));
    assert_eq!(report["route_ok"], true);
    let seen: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["path"] == "hop" || c["path"] == "eice" || c["path"] == "bastion")
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("hop.resolves", "ok"),
            ("hop.key", "ok"),
            ("hop.route", "ok"),
            ("eice.endpoint", "ok"),
            ("eice.egress", "ok"),
            ("eice.target-ingress", "ok"),
        ],
        "{report:#}"
    );
    let endpoint = lab.state["eice"]["endpoints"]["sample-eice-a"]["id"].as_str().unwrap();
    let subnet = lab.state["eice"]["endpoints"]["sample-eice-a"]["subnet_id"].as_str().unwrap();
    let c = find(&report, "eice.endpoint");
    assert_eq!(
        c["summary"],
        format!(
            "endpoint {endpoint} ({subnet}, {}) is create-complete",
            lab.state["vpcs"]["sample-eice-vpc"].as_str().unwrap()
        )
    );
    assert_eq!(c["evidence"], json!(["chosen: the route's endpoint"]));
    assert_eq!(find(&report, "eice.egress")["evidence"], json!(["egress: tcp 22 to 10.1.0.0/16"]));
    assert!(
        find(&report, "hop.key")["summary"]
            .as_str()
            .unwrap()
            .contains("has no key pair: hop pushes a key with EC2 Instance Connect as ec2-user"),
        "{report:#}"
    );
    // The text form: the eice section, and the verdict names the route.
    let run = env.hop(&["doctor", "sample-eice-web", "--my-ip", MY_IP]);
    run.code(0);
    assert!(run.stdout.contains(&format!("\neice\n  ok       endpoint {endpoint} (")), "{}", run.stdout);
    assert!(
        run.stdout.ends_with(" elsewhere)\n")
            && run.stdout.contains("\nthe EC2 Instance Connect Endpoint route has no problem ("),
        "{}",
        run.stdout
    );
}

/// One broken EC2 Instance Connect VPC per rule (tests/support/doctor_topologies.py, eice_*),
/// each naming the problem and the fix with the real ids.
#[test]
fn eice_path_problems_each_with_the_fix() {
    let lab = lab_or_skip!();
    let s = scenarios(lab);
    let (code, report) = doctor(lab, "eice_healthy");
    assert_eq!((code, &report["route"]["kind"]), (0, &json!("eice")), "{report:#}");
    for c in report["checks"].as_array().unwrap().iter().filter(|c| c["path"] == "eice") {
        assert_eq!(c["status"], "ok", "{c:#}");
    }
    // Another port than 22: no EICE route (Session Manager instead), and doctor says why.
    let mut env = Env::lab(lab);
    let target = s["eice_healthy"]["target_name"].as_str().unwrap();
    let config = env.write("hop.toml", format!("[hosts.{target}]\nport = 2222\n").as_bytes());
    env.set("HOP_CONFIG", config.to_str().unwrap());
    let run = env.hop(&["--region", REGION, "doctor", target, "--json", "--my-ip", MY_IP]);
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    assert_eq!(report["route"]["kind"], "ssm", "{report:#}");
    let c = find(&report, "eice.port");
    assert_eq!(c["status"], "problem", "{c:#}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .ends_with("on port 2222, and an EC2 Instance Connect Endpoint reaches port 22 (and 3389) only"),
        "{c:#}"
    );
    // The endpoint may not connect out to the target.
    let o = &s["eice_egress_broken"];
    let (eice_sg, web_sg) = (o["eice_sg"].as_str().unwrap(), o["target_sg"].as_str().unwrap());
    let report = expect(
        lab,
        "eice_egress_broken",
        "eice.egress",
        "problem",
        &format!("the endpoint's security groups ({eice_sg}) allow no TCP 22 out to doc-eice_egress_broken-web"),
        &format!(
            "aws ec2 authorize-security-group-egress --region {REGION} --group-id {eice_sg} --ip-permissions 'IpProtocol=tcp,FromPort=22,ToPort=22,UserIdGroupPairs=[{{GroupId={web_sg}}}]'"
        ),
        1,
    );
    assert_eq!(find(&report, "eice.egress")["evidence"], json!(["22 is allowed out to: 10.99.0.0/16"]));
    // The target does not let the endpoint in.
    let o = &s["eice_no_target_ingress"];
    let (eice_sg, web_sg) = (o["eice_sg"].as_str().unwrap(), o["target_sg"].as_str().unwrap());
    expect(
        lab,
        "eice_no_target_ingress",
        "eice.target-ingress",
        "problem",
        &format!(
            "allows TCP 22 from the endpoint's group ({eice_sg}) or its subnet {} ({})",
            o["eice_subnet"].as_str().unwrap(),
            o["eice_subnet_cidr"].as_str().unwrap()
        ),
        &format!("--group-id {web_sg} --protocol tcp --port 22 --source-group {eice_sg}"),
        1,
    );
    // An endpoint that failed to create: not usable, so hop takes Session Manager; doctor says
    // why not the endpoint, and how to replace it.
    let o = &s["eice_create_failed"];
    let eice = o["eice"].as_str().unwrap();
    let report = expect(
        lab,
        "eice_create_failed",
        "eice.endpoint",
        "problem",
        &format!(
            "endpoint {eice} ({}, {}) could not be created (create-failed)",
            o["eice_subnet"].as_str().unwrap(),
            o["vpc"].as_str().unwrap()
        ),
        &format!(
            "aws ec2 delete-instance-connect-endpoint --region {REGION} --instance-connect-endpoint-id {eice} && aws ec2 create-instance-connect-endpoint --region {REGION} --subnet-id {} --security-group-ids {}",
            o["private_subnet"].as_str().unwrap(),
            o["eice_sg"].as_str().unwrap()
        ),
        1,
    );
    assert_eq!(report["route"]["kind"], "ssm", "{report:#}");
    // PreserveClientIp: the target must let the caller's address in, and an m3 cannot be reached.
    let o = &s["eice_preserve_ip"];
    let eice = o["eice"].as_str().unwrap();
    let report = expect(
        lab,
        "eice_preserve_ip",
        "eice.target-ingress",
        "problem",
        &format!("allows TCP 22 from your address ({MY_IP}) or the endpoint's group"),
        &format!("--group-id {} --protocol tcp --port 22 --cidr {MY_IP}", o["target_sg"].as_str().unwrap()),
        1,
    );
    let c = find(&report, "eice.preserve-client-ip");
    assert_eq!(c["status"], "problem", "{c:#}");
    let summary = c["summary"].as_str().unwrap();
    assert!(summary.contains("which does not work for M3 instances, and doc-eice_preserve_ip-web ("), "{c:#}");
    assert!(summary.ends_with(") is a m3.medium"), "{c:#}");
    assert_eq!(
        c["fix"],
        format!(
            "aws ec2 modify-instance-connect-endpoint --region {REGION} --instance-connect-endpoint-id {eice} --no-preserve-client-ip"
        )
    );
}

/// POST `body` to the fake EICE's knobs in the namespace lab (moto's endpoint, client namespace).
fn eice_knobs(net: &crate::support::NetLab, env: &Env, body: Value) {
    let code = "import sys, urllib.request\n\
                req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST', \
                headers={'Content-Type': 'application/json'})\n\
                urllib.request.urlopen(req, timeout=10).read()\n";
    let url = format!("{}/__fake_eice/knobs", net.state["moto"]["endpoint"].as_str().unwrap());
    let py = python().unwrap().display().to_string();
    let out = env
        .command_in(net, &py, &["-c", code, &url, &body.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "knobs: {}", String::from_utf8_lossy(&out.stderr));
}

/// `--probe` over EC2 Instance Connect in the namespace lab: the tunnel through the fake EICE,
/// then SSH through it (host key verified, authenticated with a key authorized the way EC2
/// Instance Connect does); a handshake refused with 403 gets the IAM fix with the endpoint's
/// ARN; a target the endpoint cannot reach gets its close reason and the security-group hint.
#[test]
fn probe_over_eice_opens_the_tunnel_and_logs_in() {
    let net = crate::netlab_or_skip!();
    let _exclusive = crate::support::NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    let known = std::fs::read(net.state["known_hosts"].as_str().expect("known_hosts")).unwrap();
    env.write(".ssh/known_hosts", &known);
    env.set("SSL_CERT_FILE", net.state["moto"]["eice"]["ca"].as_str().expect("the fake's CA"));
    eice_knobs(net, &env, json!({"reset": true}));
    // A key of this test's own, authorized on sample-eice-web for an hour as a push would.
    let key = env.path(".ssh/own");
    let made =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"]).arg(&key).output().unwrap();
    assert!(made.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&made.stderr));
    let id = net.id("sample-eice-web");
    let store = std::path::Path::new(net.state["eic"]["store"].as_str().expect("eic store")).join(&id);
    std::fs::create_dir_all(&store).unwrap();
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let block = format!(
        "#Timestamp={expires}\n#Instance={id}\n#Caller=arn:aws:iam::123456789012:user/doctor-test\n#Request=doctor-{}\n{}\n\n",
        std::process::id(),
        std::fs::read_to_string(key.with_extension("pub")).unwrap().trim()
    );
    {
        use std::io::Write;
        let file = store.join("ec2-user");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&file).unwrap();
        f.write_all(block.as_bytes()).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let key = key.display().to_string();
    let probe = |env: &Env| -> (i32, Vec<Value>) {
        let run = env.hop_in(net, &["-i", &key, "doctor", "sample-eice-web", "--probe", "--json"], b"");
        let report: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
        let probes = report["checks"].as_array().unwrap().iter().filter(|c| c["path"] == "probe").cloned().collect();
        (run.code, probes)
    };
    let steps = |p: &[Value]| -> Vec<(String, String)> {
        p.iter().map(|c| (c["check"].as_str().unwrap().into(), c["status"].as_str().unwrap().into())).collect()
    };
    let endpoint = net.state["moto"]["eice"]["endpoints"]["sample-eice-a"]["id"].as_str().unwrap().to_string();
    let (code, got) = probe(&env);
    assert_eq!(steps(&got), [("probe.eice".into(), "ok".into()), ("probe.ssh".into(), "ok".into())], "{got:#?}");
    assert!(
        got[0]["summary"].as_str().unwrap().starts_with(&format!("tunnel through {endpoint} to 10.1.1.10:22 open in ")),
        "{got:#?}"
    );
    assert!(got[1]["summary"].as_str().unwrap().ends_with("(host key verified, authenticated)"), "{got:#?}");
    assert_eq!(code, 0);
    // Refused with 403: the IAM action on the endpoint's ARN.
    let denied = json!({"ErrorCode": "AccessDenied", "Message": "User is not authorized to perform ec2-instance-connect:OpenTunnel"});
    eice_knobs(net, &env, json!({"handshake_status": 403, "handshake_body": denied.to_string()}));
    let (code, got) = probe(&env);
    eice_knobs(net, &env, json!({"reset": true}));
    assert_eq!(steps(&got), [("probe.eice".into(), "problem".into())], "{got:#?}");
    assert!(got[0]["summary"].as_str().unwrap().contains("(HTTP 403): AccessDenied"), "{got:#?}");
    let fix = got[0]["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("allow ec2-instance-connect:OpenTunnel on arn:aws:ec2:us-east-1:")
            && fix.contains(&format!(":instance-connect-endpoint/{endpoint}: aws iam put-user-policy ")),
        "{fix}"
    );
    assert_eq!(code, 1);
    // The endpoint cannot reach the target: its close reason and the security-group hint.
    eice_knobs(net, &env, json!({"dial_refuse": true}));
    let (code, got) = probe(&env);
    eice_knobs(net, &env, json!({"reset": true}));
    assert_eq!(steps(&got), [("probe.eice".into(), "ok".into()), ("probe.ssh".into(), "problem".into())], "{got:#?}");
    assert!(got[1]["summary"].as_str().unwrap().contains("Unable to connect to target"), "{got:#?}");
    assert!(got[1]["fix"].as_str().unwrap().contains("allow TCP 22 into"), "{got:#?}");
    assert_eq!(code, 1);
}
