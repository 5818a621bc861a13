//! `hop route`: every kind of route, name resolution (names, ids, IPs, duplicates), the OpenSSH
//! equivalent, and the target form that cannot connect yet.

use serde_json::Value;

use crate::lab_or_skip;
use crate::support::{Env, hostile, redact, redact_hostile};

#[test]
fn web_goes_through_the_bastion_with_the_tutorial_keys() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    // The tutorial's key files: ~/.ssh/<KeyName>.pem.
    env.write(".ssh/sample-bastion.pem", b"key");
    env.write(".ssh/sample-web.pem", b"key");
    let run = env.hop(&["route", "sample-web"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        redact(lab, &env, &run.stdout),
        "\
target   sample-web (<sample-web>) in us-east-1, <vpc:sample-dev>, us-east-1a, running
route    via sample-bastion
hop 1    ec2-user@203.0.113.10:22  sample-bastion (<sample-bastion>)  key ~/.ssh/sample-bastion.pem
hop 2    ec2-user@10.0.1.10:22     sample-web (<sample-web>)  key ~/.ssh/sample-web.pem
openssh  ssh -o ProxyCommand='ssh -i ~/.ssh/sample-bastion.pem -o HostKeyAlias=<sample-bastion> ec2-user@203.0.113.10 -W %h:%p' -i ~/.ssh/sample-web.pem -o HostKeyAlias=<sample-web> ec2-user@10.0.1.10
"
    );
}

#[test]
fn without_key_files_the_command_is_plain_ssh_j() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-web"]);
    run.code(0);
    let last = run.stdout.lines().last().unwrap();
    assert_eq!(
        last,
        format!("openssh  ssh -J ec2-user@203.0.113.10 -o HostKeyAlias={} ec2-user@10.0.1.10", lab.id("sample-web"))
    );
}

#[test]
fn every_way_of_naming_the_target_gives_the_same_route() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let id = lab.id("sample-web");
    let want = env.hop(&["route", "sample-web"]);
    want.code(0);
    for name in [id.as_str(), "10.0.1.10"] {
        let run = env.hop(&["route", name]);
        run.code(0);
        assert_eq!(run.stdout, want.stdout, "{name}");
    }
    let bastion = env.hop(&["route", "203.0.113.10"]);
    bastion.code(0);
    assert!(bastion.stdout.contains("route    direct (public IP)\n"), "{}", bastion.stdout);
}

#[test]
fn tagged_bastion_and_user_tag() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-app", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["route"]["kind"], "jump");
    assert_eq!(doc["route"]["bastion"]["name"], "edge-jump");
    assert_eq!(doc["route"]["bastion"]["address"], "203.0.113.11");
    assert_eq!(doc["route"]["bastion"]["user"], "ec2-user");
    assert_eq!(doc["route"]["target"]["user"], "ubuntu", "tag hop:user");
    assert_eq!(doc["route"]["target"]["address"], "10.2.1.4");
    assert_eq!(
        doc["openssh"],
        format!("ssh -J ec2-user@203.0.113.11 -o HostKeyAlias={} ubuntu@10.2.1.4", lab.id("sample-app"))
    );
}

#[test]
fn ssm_and_unreachable_routes_say_why() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-worker"]);
    run.code(0);
    assert_eq!(
        redact(lab, &env, &run.stdout),
        "\
target   sample-worker (<sample-worker>) in us-east-1, <vpc:sample-ssm>, us-east-1a, running
route    ssm (<vpc:sample-ssm> has no bastion)
aws cli  aws ssm start-session --target <sample-worker> --document-name AWS-StartSSHSession --parameters portNumber=22 --region us-east-1
"
    );
    // The printed command forwards the port hop would use.
    let mut other = Env::lab(lab);
    let config = other.write("hop.toml", b"[hosts.sample-worker]\nport = 2222\n");
    other.set("HOP_CONFIG", config.to_str().unwrap());
    let run = other.hop(&["route", "sample-worker"]);
    assert!(run.stdout.contains(" --parameters portNumber=2222 "), "{}", run.stdout);
    // --ssm forces Session Manager where the bastion would do.
    let run = env.hop(&["--ssm", "route", "sample-web"]);
    run.code(0);
    assert!(run.stdout.contains("route    ssm (--ssm)\n"), "{}", run.stdout);
    let run = env.hop(&["route", "sample-old"]);
    run.code(0);
    assert_eq!(
        redact(lab, &env, &run.stdout),
        "\
target   sample-old (<sample-old>) in us-east-1, <vpc:sample-dev>, us-east-1a, stopped
route    unreachable: instance is stopped (start it: aws ec2 start-instances --region us-east-1 --instance-ids <sample-old>)
"
    );
}

#[test]
fn login_flags_and_config_overrides_apply_to_the_target_only() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.write(".config/hop/config.toml", b"user = \"admin\"\n[hosts.sample-web]\nport = 2222\n");
    let run = env.hop(&["route", "sample-web", "-l", "root", "-i", "~/.ssh/other.pem"]);
    run.code(0);
    let out = redact(lab, &env, &run.stdout);
    assert!(out.contains("hop 1    admin@203.0.113.10:22 "), "{out}");
    assert!(out.contains("hop 2    root@10.0.1.10:2222 "), "{out}");
    assert!(out.contains("key ~/.ssh/other.pem"), "{out}");
    assert!(out.contains("-p 2222 -i ~/.ssh/other.pem -o HostKeyAlias=<sample-web> root@10.0.1.10"), "{out}");
}

#[test]
fn ambiguous_names_list_every_candidate_and_change_nothing() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-api"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    let err = redact(lab, &env, &run.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "hop: error: \"sample-api\" matches 2 instances");
    assert_eq!(lines[1], "hint: candidates:");
    assert!(
        lines[2]
            .starts_with("  sample-api  <sample-api#1>  private 10.0.1.4  public -  us-east-1a  running  launched 20")
    );
    assert!(
        lines[3]
            .starts_with("  sample-api  <sample-api#2>  private 10.0.2.4  public -  us-east-1b  running  launched 20")
    );
    assert_eq!(lines[4], "hint: name one by instance id or IP, or pass --newest for the most recently launched");
    assert_eq!(lines.len(), 5);
    // An id, an IP or the NAME-ID alias chooses.
    let second = lab.id("sample-api#2");
    for name in [second.clone(), "10.0.2.4".into(), format!("sample-api-{second}")] {
        let run = env.hop(&["route", &name, "--json"]);
        run.code(0);
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["target"]["id"], second, "{name}");
    }
}

#[test]
fn newest_chooses_the_latest_launch() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let ls: Value = serde_json::from_str(&env.hop(&["ls", "sample-api", "--json"]).stdout).unwrap();
    // Latest launch time; launches in the same second are ordered by id, so the pick is stable.
    let newest = ls["instances"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|i| (i["launch_time"].as_str().unwrap().to_string(), i["id"].as_str().unwrap().to_string()))
        .unwrap()["id"]
        .clone();
    let run = env.hop(&["--newest", "route", "sample-api", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["target"]["id"], newest);
}

#[test]
fn unknown_names_exit_2_with_close_matches() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-wbe"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        "hop: error: no instance matches \"sample-wbe\" in us-east-1\n\
         hint: did you mean: sample-web\n\
         hint: `hop ls` lists every instance; add --region for other regions, --refresh if it is new\n"
    );
}

#[test]
fn a_stray_target_before_a_subcommand_is_a_usage_error() {
    let run = Env::bare().hop(&["sample-web", "ls"]);
    run.code(2);
    assert!(run.stderr.contains("hop connect NAME"), "{}", run.stderr);
}

#[test]
fn route_escapes_the_tags_it_quotes() {
    let lab = lab_or_skip!();
    let hostile = hostile(lab);
    let env = Env::lab(lab);
    let id = hostile["instances"]["c1-bidi"]["id"].as_str().unwrap();
    let run = env.hop(&["--region", "sa-east-1", "route", id]);
    run.code(0);
    assert_eq!(
        redact_hostile(hostile, &run.stdout),
        r"target   web\u{9b}31m\u{202e}gnp.exe (<c1-bidi>__________) in sa-east-1, <vpc>________________, sa-east-1a, running
route    via bastion\u{2066}-\u{2069}x
hop 1    ec2-user@<public>____:22  bastion\u{2066}-\u{2069}x (<bastion>__________)  key ssh-agent, else pushed with EC2 Instance Connect
hop 2    ec2-user@10.9.1.11:22     web\u{9b}31m\u{202e}gnp.exe (<c1-bidi>__________)  key ssh-agent, else pushed with EC2 Instance Connect
push     aws ec2-instance-connect send-ssh-public-key --region sa-east-1 --instance-id <bastion>__________ --instance-os-user ec2-user --ssh-public-key file://~/.ssh/id_ed25519.pub
push     aws ec2-instance-connect send-ssh-public-key --region sa-east-1 --instance-id <c1-bidi>__________ --instance-os-user ec2-user --ssh-public-key file://~/.ssh/id_ed25519.pub
openssh  ssh -J ec2-user@<public>____ -o HostKeyAlias=<c1-bidi>__________ ec2-user@10.9.1.11
"
    );
    // --json is exact.
    let run = env.hop(&["--region", "sa-east-1", "route", id, "--json"]);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["target"]["name"], "web\u{9b}31m\u{202e}gnp.exe");
    assert_eq!(doc["route"]["bastion"]["name"], "bastion\u{2066}-\u{2069}x");
}

/// `redact`, and the seeded endpoints' ids, names, subnets and group by `<eice:NAME>`…
fn redact_eice(lab: &crate::support::Lab, env: &Env, text: &str) -> String {
    let mut out = redact(lab, env, text);
    for (name, e) in lab.state["eice"]["endpoints"].as_object().expect("seeded endpoints") {
        for (key, tag) in [("dns_name", "dns"), ("id", "eice"), ("subnet_id", "subnet")] {
            out = out.replace(e[key].as_str().unwrap(), &format!("<{tag}:{name}>"));
        }
        out = out.replace(e["sg"].as_str().unwrap(), "<sg:sample-eice-ep-sg>");
    }
    out
}

#[test]
fn eice_route_names_the_endpoint_and_the_open_tunnel_command() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-eice-web"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        redact_eice(lab, &env, &run.stdout),
        "\
target   sample-eice-web (<sample-eice-web>) in us-east-1, <vpc:sample-eice-vpc>, us-east-1a, running
route    eice <eice:sample-eice-a> (<vpc:sample-eice-vpc> has no bastion; <subnet:sample-eice-a>, same subnet as the target; 2 endpoints in <vpc:sample-eice-vpc>)
endpoint <eice:sample-eice-a> in <subnet:sample-eice-a>, wss://<dns:sample-eice-a>, tunnels end after 3600 s
hop 1    ec2-user@10.1.1.10:22  sample-eice-web (<sample-eice-web>)  key ssh-agent, else pushed with EC2 Instance Connect
push     aws ec2-instance-connect send-ssh-public-key --region us-east-1 --instance-id <sample-eice-web> --instance-os-user ec2-user --ssh-public-key file://~/.ssh/id_ed25519.pub
openssh  ssh -o ProxyCommand='aws ec2-instance-connect open-tunnel --region us-east-1 --instance-id <sample-eice-web> --instance-connect-endpoint-id <eice:sample-eice-a> --private-ip-address 10.1.1.10 --remote-port 22 --max-tunnel-duration 3600' -o HostKeyAlias=<sample-eice-web> ec2-user@10.1.1.10
"
    );
    // --json: the endpoint, the reason, the target's login, the commands.
    let run = env.hop(&["route", "sample-eice-web", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&redact_eice(lab, &env, &run.stdout)).unwrap();
    assert_eq!(doc["route"]["kind"], "eice");
    assert_eq!(
        doc["route"]["endpoint"],
        serde_json::json!({
            "id": "<eice:sample-eice-a>",
            "region": "us-east-1",
            "dns_name": "<dns:sample-eice-a>",
            "subnet_id": "<subnet:sample-eice-a>",
            "max_duration": 3600,
            "security_groups": ["<sg:sample-eice-ep-sg>"],
            "target_security_groups": doc["target"]["security_groups"].clone(),
        })
    );
    assert_eq!(
        doc["route"]["reason"],
        "<vpc:sample-eice-vpc> has no bastion; <subnet:sample-eice-a>, same subnet as the target; 2 endpoints in <vpc:sample-eice-vpc>"
    );
    assert_eq!(
        doc["route"]["target"],
        serde_json::json!({"id": "<sample-eice-web>", "name": "sample-eice-web", "address": "10.1.1.10", "user": "ec2-user", "identity": null, "port": 22, "push": "auto"})
    );
    assert!(
        doc["openssh"].as_str().unwrap().contains("--instance-connect-endpoint-id <eice:sample-eice-a> "),
        "{doc:#}"
    );
    assert_eq!(doc["aws_cli"], Value::Null);
    assert_eq!(doc["push"].as_array().unwrap().len(), 1, "{doc:#}");
    // The other endpoint, asked for by id; a bounded tunnel duration from the config.
    let mut other = Env::lab(lab);
    let config = other.write("hop.toml", b"eice_max_duration = 600\n");
    other.set("HOP_CONFIG", config.to_str().unwrap());
    let b = lab.state["eice"]["endpoints"]["sample-eice-b"]["id"].as_str().unwrap();
    let run = other.hop(&["route", "sample-eice-web", "--eice", b]);
    run.code(0);
    let out = redact_eice(lab, &other, &run.stdout);
    assert!(
        out.contains("\nroute    eice <eice:sample-eice-b> (--eice; <subnet:sample-eice-b>, the endpoint asked for)\n"),
        "{out}"
    );
    assert!(out.contains("tunnels end after 600 s\n") && out.contains("--max-tunnel-duration 600'"), "{out}");
}

/// `--eice` where the VPC has no endpoint: nothing to route through, exit 2 with the reason;
/// without it, the bastion route as usual.
#[test]
fn eice_forced_in_a_vpc_without_an_endpoint_is_a_usage_error() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["route", "sample-web", "--eice"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    let err = redact(lab, &env, &run.stderr);
    assert!(
        err.starts_with(
            "hop: error: sample-web (<sample-web>) cannot be reached through EC2 Instance Connect: --eice: <vpc:sample-dev> has no usable EC2 Instance Connect Endpoint\n"
        ),
        "{err}"
    );
    assert!(err.contains("hint: create an endpoint in <vpc:sample-dev>: aws ec2 create-instance-connect-endpoint --region us-east-1 --subnet-id "), "{err}");
    env.hop(&["route", "sample-web"]).code(0);
}
