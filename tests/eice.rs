//! EC2 Instance Connect Endpoint tunnels for real, but for AWS: hop discovers the seeded
//! endpoints through moto, resolves their DnsName with the system resolver (the bed's
//! /etc/netns hosts file), and opens a presigned websocket to the fake EICE
//! (tests/support/fake_eice.py, written from the spec, independent of hop's code), which checks
//! the SigV4 signature and dials sample-eice-web's sshd inside its namespace. That namespace is
//! linked to nothing: a passing test proves the tunnel carried the bytes.
//!
//! Every test here takes the bed exclusively: the fake's knobs and tunnel records are global.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, REPO, noise, python};

/// GET or POST (with a JSON body) one of moto's admin paths (`/__fake_eice/…`), from inside the
/// client namespace where moto listens.
fn admin(net: &NetLab, env: &Env, path: &str, body: Option<Value>) -> Value {
    let py = python().unwrap().display().to_string();
    let endpoint = net.state["moto"]["endpoint"].as_str().unwrap();
    let code = "import sys, urllib.request\n\
                url, body = sys.argv[1], sys.argv[2]\n\
                data = body.encode() if body else None\n\
                req = urllib.request.Request(url, data=data, method='POST' if data else 'GET', \
                headers={'Content-Type': 'application/json'})\n\
                print(urllib.request.urlopen(req, timeout=10).read().decode())\n";
    let url = format!("{endpoint}{path}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let out = env.command_in(net, &py, &["-c", code, &url, &body]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "admin {path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("admin {path}: {e}"))
}

fn knobs(net: &NetLab, env: &Env, knobs: Value) {
    admin(net, env, "/__fake_eice/knobs", Some(knobs));
}

fn tunnels(net: &NetLab, env: &Env) -> Vec<Value> {
    admin(net, env, "/__fake_eice/tunnels", None).as_array().cloned().unwrap_or_default()
}

/// The seeded endpoint `name` (`sample-eice-a` or `sample-eice-b`).
fn endpoint(net: &NetLab, name: &str) -> Value {
    net.state["moto"]["eice"]["endpoints"][name].clone()
}

/// An environment for hop in the client namespace, the fake reset, the lab's known_hosts
/// (sample-eice-web's host key under its instance id), the fake's CA trusted
/// (SSL_CERT_FILE), and a key of this test's own made and authorized on sample-eice-web the
/// way EC2 Instance Connect does (a block in the bed's key store, valid an hour), at
/// `~/.ssh/own` for tests that pass `-i`.
fn setup(net: &NetLab) -> Env {
    let mut env = Env::net(net);
    let known = std::fs::read(net.state["known_hosts"].as_str().expect("known_hosts")).unwrap();
    env.write(".ssh/known_hosts", &known);
    env.set("SSL_CERT_FILE", net.state["moto"]["eice"]["ca"].as_str().expect("the fake's CA"));
    knobs(net, &env, json!({"reset": true}));
    let key = env.path(".ssh/own");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&made.stderr));
    let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let id = net.id("sample-eice-web");
    let store = std::path::Path::new(net.state["eic"]["store"].as_str().expect("eic store")).join(&id);
    std::fs::create_dir_all(&store).unwrap();
    let file = store.join("ec2-user");
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let block = format!(
        "#Timestamp={expires}\n#Instance={id}\n#Caller=arn:aws:iam::123456789012:user/eice-test\n\
         #Request=eice-test-{}\n{}\n\n",
        std::process::id(),
        line.trim()
    );
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&file).unwrap();
    f.write_all(block.as_bytes()).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    env
}

/// `hop -i ~/.ssh/own ARGS` (a key of the test's own, pushed by hand).
fn hop_own(net: &NetLab, env: &Env, args: &[&str], stdin: &[u8]) -> crate::support::Run {
    let key = env.path(".ssh/own").display().to_string();
    let mut argv = vec!["-i", key.as_str()];
    argv.extend_from_slice(args);
    env.hop_in(net, &argv, stdin)
}

/// What every tunnel hop opened must show (spec §A.3–A.5, bed12.md).
fn assert_clean(t: &Value) {
    assert_eq!(t["signature_ok"], true, "{t}");
    assert_eq!(t["status"], 101, "{t}");
    assert_eq!(t["query"]["maxTunnelDuration"], "3600", "{t}");
    assert_eq!(t["query"]["X-Amz-Expires"], "60", "{t}");
    assert_eq!(t["query"]["remotePort"], "22", "{t}");
    assert_eq!(t["query"]["privateIpAddress"], "10.1.1.10", "{t}");
    assert!(t["extensions"].is_null() && t["protocols"].is_null(), "no extension, no subprotocol: {t}");
    assert!(t["user_agent"].as_str().unwrap_or_default().starts_with("hop/"), "{t}");
    assert_eq!(t["violations"], json!([]), "{t}");
    assert!(t["max_client_frame"].as_u64().unwrap_or(0) <= 65_000, "{t}");
}

/// Wait (bounded) until every tunnel is closed, then return them.
fn closed_tunnels(net: &NetLab, env: &Env) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = tunnels(net, env);
        if all.iter().all(|t| !t["closed_at"].is_null()) || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The demo: no bastion in the VPC, no key pair on the instance, no .pem anywhere.
/// hop pushes a key of its own (colleague `push`'s part) and goes through the endpoint.
#[test]
fn exec_over_eice_with_no_pem_anywhere() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    for pem in ["sample-bastion", "sample-web"] {
        std::fs::remove_file(env.path(&format!(".ssh/{pem}.pem"))).unwrap();
    }
    std::fs::remove_file(env.path(".ssh/own")).unwrap();
    let run = env.hop_in(net, &["sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-eice-web\n", "{}", run.stderr);
    let all = closed_tunnels(net, &env);
    assert_eq!(all.len(), 1, "one tunnel: {all:?}");
    assert_clean(&all[0]);
    assert_eq!(all[0]["endpoint"], endpoint(net, "sample-eice-a")["id"], "the endpoint of the target's subnet");
}

#[test]
fn exec_shell_status_and_route_over_eice() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    let a = endpoint(net, "sample-eice-a");
    let a_id = a["id"].as_str().unwrap();
    // hop route: the endpoint, why, and the AWS CLI's ProxyCommand.
    let run = env.hop_in(net, &["route", "sample-eice-web"], b"");
    run.code(0);
    assert!(run.stdout.contains(&format!("route    eice {a_id} (")), "{}", run.stdout);
    assert!(run.stdout.contains("same subnet as the target"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "aws ec2-instance-connect open-tunnel --region us-east-1 --instance-id {} --instance-connect-endpoint-id \
             {a_id} --private-ip-address 10.1.1.10 --remote-port 22 --max-tunnel-duration 3600",
            net.id("sample-eice-web")
        )),
        "{}",
        run.stdout
    );
    let run = env.hop_in(net, &["route", "--json", "sample-eice-web"], b"");
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["route"]["kind"], "eice");
    assert_eq!(doc["route"]["endpoint"]["id"], a_id);
    assert!(doc["openssh"].as_str().unwrap().contains("ec2-instance-connect open-tunnel"));
    // exec: stdout, stderr and the status kept apart.
    let run = hop_own(net, &env, &["sample-eice-web", "--", "echo", "out;", "echo", "err", ">&2;", "exit", "7"], b"");
    run.code(7);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("out\n", "err\n"));
    // A shell on a pty, with resizes, and the terminal restored.
    let py = python().unwrap().display().to_string();
    let driver = format!("{REPO}/tests/support/pty_drive.py");
    let key = env.path(".ssh/own").display().to_string();
    let hop = format!("{} -i {key} sample-eice-web", env!("CARGO_BIN_EXE_hop"));
    let out = env.command_in(net, &py, &[&driver, "100", "30", &hop]).stdin(Stdio::null()).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("driver: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let transcript = report["transcript"].as_str().unwrap_or_default();
    assert_eq!(report["sizes"], json!(["30 100", "40 120"]), "remote stty size: {transcript}");
    assert_eq!(report["exit"], 3, "the shell's exit status: {transcript}");
    assert_eq!(report["modes_after"], report["modes_before"], "terminal modes restored: {transcript}");
    let all = closed_tunnels(net, &env);
    assert_eq!(all.len(), 2, "{all:?}");
    for t in &all {
        assert_clean(t);
        assert_eq!(t["close_received"]["code"], 1000, "hop closed with 1000: {t}");
    }
}

#[test]
fn agent_forwarding_reaches_the_target_only_with_dash_a() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = setup(net);
    let agent = crate::ssh::Agent::start(&env, &env.path(".ssh/sample-web.pem"));
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let run = hop_own(net, &env, &["sample-eice-web", "--", "ssh-add", "-l"], b"");
    assert_eq!(run.code, 2, "no agent without -A: {}{}", run.stdout, run.stderr);
    let run = hop_own(net, &env, &["-A", "sample-eice-web", "--", "ssh-add", "-l"], b"");
    run.code(0);
    assert!(run.stdout.contains("ED25519") || run.stdout.contains("RSA"), "{}", run.stdout);
}

/// Unknown and changed host keys are refused over the tunnel as anywhere.
#[test]
fn host_keys_are_checked_over_eice() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    env.write(".ssh/known_hosts", b"");
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    let id = net.id("sample-eice-web");
    assert!(run.stderr.contains(&format!("host key of sample-eice-web ({id}) is not known")), "{}", run.stderr);
}

/// The endpoint's state moved to update-complete (aws-cli #9715): still used. Explicit
/// `--eice` of the other subnet's endpoint: used. One Describe per region per discovery.
#[test]
fn endpoint_choice_states_and_one_describe_per_region() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    let (a, b) = (endpoint(net, "sample-eice-a"), endpoint(net, "sample-eice-b"));
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let before = admin(net, &env, "/__fake_eice/calls", None)["describe"]["us-east-1"].as_u64().unwrap_or(0);
    let run = hop_own(net, &env, &["--refresh", "sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    let after = admin(net, &env, "/__fake_eice/calls", None)["describe"]["us-east-1"].as_u64().unwrap_or(0);
    assert_eq!(after - before, 1, "one DescribeInstanceConnectEndpoints per region per discovery");
    // From the cache: no call at all.
    hop_own(net, &env, &["sample-eice-web", "--", "true"], b"").code(0);
    let cached = admin(net, &env, "/__fake_eice/calls", None)["describe"]["us-east-1"].as_u64().unwrap_or(0);
    assert_eq!(cached, after, "the endpoints are cached with the instances");
    // update-complete is usable.
    knobs(net, &env, json!({"endpoint": a_id, "state": "update-complete"}));
    let run = hop_own(net, &env, &["--refresh", "sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-eice-web\n");
    // The other subnet's endpoint when asked for.
    let run = hop_own(net, &env, &["--eice", b_id, "sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    let all = closed_tunnels(net, &env);
    let used: Vec<&str> = all.iter().map(|t| t["endpoint"].as_str().unwrap_or("-")).collect();
    assert_eq!(used, [a_id, a_id, a_id, b_id], "{all:?}");
    all.iter().for_each(assert_clean);
    // An endpoint being deleted is not used; asked for by id, it is a usage error (exit 2).
    knobs(net, &env, json!({"endpoint": b_id, "state": "delete-in-progress"}));
    let run = hop_own(net, &env, &["--refresh", "--eice", b_id, "sample-eice-web", "--", "true"], b"");
    run.code(2);
    assert!(run.stderr.contains(&format!("{b_id} is delete-in-progress")), "{}", run.stderr);
    assert!(run.stderr.contains("hint: create an endpoint in"), "{}", run.stderr);
    assert!(run.stderr.contains("or enable SSM"), "{}", run.stderr);
    let run = hop_own(net, &env, &["--eice", "eice-0000000000000000f", "sample-eice-web", "--", "true"], b"");
    run.code(2);
    assert_eq!(tunnels(net, &env).len(), 4, "no tunnel tried for an unusable endpoint");
}

/// Temporary credentials: the session token is signed into the URL.
#[test]
fn temporary_credentials_sign_the_session_token() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = setup(net);
    let token = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+test/token=";
    admin(
        net,
        &env,
        "/__fake_eice/credentials",
        Some(
            json!({"access_key_id": "ASIAEICETEST", "secret_access_key": "temporary/secret+key", "session_token": token}),
        ),
    );
    // Discovery first with the lab's keys (moto takes any), then the tunnel with the pair.
    hop_own(net, &env, &["ls"], b"").code(0);
    env.set("AWS_ACCESS_KEY_ID", "ASIAEICETEST")
        .set("AWS_SECRET_ACCESS_KEY", "temporary/secret+key")
        .set("AWS_SESSION_TOKEN", token);
    let run = hop_own(net, &env, &["sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    let t = closed_tunnels(net, &env).pop().unwrap();
    assert_clean(&t);
    assert_eq!(t["query"]["X-Amz-Security-Token"], token, "{t}");
    // The same pair without its token: refused by the fake (a token-bound pair), 403.
    env.unset("AWS_SESSION_TOKEN");
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("(HTTP 403): AccessDenied: "), "{}", run.stderr);
}

/// A bad signature (wrong secret): 403 from the fake, exit 255 with its message; the URL (its
/// credential scope, its signature) is never shown, not even at -vv.
#[test]
fn a_refused_signature_exits_255_without_the_url() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = setup(net);
    hop_own(net, &env, &["ls"], b"").code(0);
    env.set("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let run = hop_own(net, &env, &["-vv", "sample-eice-web", "--", "true"], b"");
    run.code(255);
    let a_id = endpoint(net, "sample-eice-a")["id"].as_str().unwrap().to_string();
    let first = run.stderr.lines().find(|l| l.starts_with("hop: error: ")).unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "hop: error: EC2 Instance Connect Endpoint {a_id} refused the tunnel to 10.1.1.10:22 (HTTP 403): AccessDenied: "
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: `hop doctor sample-eice-web`"), "{}", run.stderr);
    for secret in ["X-Amz-Signature", "X-Amz-Credential", "openTunnel?", "not-the-secret"] {
        assert!(!run.stderr.contains(secret), "{secret} in the log: {}", run.stderr);
    }
    let t = tunnels(net, &env).pop().unwrap();
    assert_eq!(t["signature_ok"], false, "the fake checked the signature: {t}");
    assert_eq!(t["status"], 403);
}

/// A URL used more than 60 s after it was signed is refused (403), by the endpoint's clock: here
/// the fake's runs 90 s ahead, so hop's fresh URL arrives expired. The error says so and points
/// at the clock; the fake recorded why it refused.
#[test]
fn an_expired_url_is_refused_and_the_hint_names_the_clock() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    knobs(net, &env, json!({"reset": true}));
    knobs(net, &env, json!({"clock_offset_s": 90}));
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    let t = tunnels(net, &env).pop().expect("the fake recorded the attempt");
    knobs(net, &env, json!({"reset": true}));
    run.code(255);
    assert!(run.stderr.contains("(HTTP 403): AccessDenied: "), "{}", run.stderr);
    assert!(run.stderr.contains("URL expired"), "{}", run.stderr);
    assert!(run.stderr.contains("the clock"), "{}", run.stderr);
    assert_eq!(t["signature_ok"], false, "{t}");
    assert!(t["why"].as_str().unwrap_or_default().starts_with("URL expired"), "{t}");
    // Within the URL's 60 s the same clock difference is no problem.
    knobs(net, &env, json!({"clock_offset_s": 30}));
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    knobs(net, &env, json!({"reset": true}));
    run.code(0);
}

/// hop only ever asks for port 22; the service's refusal of another port (the exact body of
/// spec §D.3) is shown as the service words it.
#[test]
fn handshake_refusals_show_the_service_message() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    let body = "{\"ErrorCode\":\"InvalidParameter\",\"Message\":\"The specified RemotePort is not valid. Specify either \
                22 or 3389 as the RemotePort and retry your request.\"}";
    knobs(net, &env, json!({"handshake_status": 400, "handshake_body": body}));
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    assert!(
        run.stderr.contains(
            "(HTTP 400): InvalidParameter: The specified RemotePort is not valid. Specify either 22 or 3389 as the \
             RemotePort and retry your request."
        ),
        "{}",
        run.stderr
    );
    // Over the cap: 429.
    knobs(net, &env, json!({"reset": true}));
    knobs(net, &env, json!({"max_tunnels": 0}));
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("(HTTP 429)"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: an endpoint takes 20 connections at a time"), "{}", run.stderr);
}

/// The endpoint cannot reach the target: the close reason, and the security-group hint.
#[test]
fn unable_to_connect_to_target_names_the_security_groups() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    knobs(net, &env, json!({"dial_refuse": true}));
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    let a = endpoint(net, "sample-eice-a");
    let (a_id, sg) = (a["id"].as_str().unwrap(), a["sg"].as_str().unwrap());
    assert!(
        run.stderr.contains(&format!(
            "hop: error: EC2 Instance Connect Endpoint {a_id}: Websocket closed: Unable to connect to target (code 1011)"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("from the endpoint's security group {sg}")), "{}", run.stderr);
    assert!(run.stderr.contains("hint: `hop doctor sample-eice-web`"), "{}", run.stderr);
}

/// 10 MB through `hop -- cat` with the server re-chunking its frames at random and pinging:
/// intact, pongs answered, no frame over 65 000 bytes, none empty.
#[test]
fn ten_megabytes_round_trip_rechunked_and_pinged() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    knobs(net, &env, json!({"rechunk": true, "ping_every_ms": 50}));
    let data = noise(10 * 1024 * 1024, 0xe1ce);
    let key = env.path(".ssh/own").display().to_string();
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["-i", &key, "sample-eice-web", "--", "cat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || input.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    let _ = writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "10 MiB came back different");
    let t = closed_tunnels(net, &env).pop().unwrap();
    assert_clean(&t);
    assert!(t["pings_sent"].as_u64().unwrap_or(0) > 0, "{t}");
    assert!(t["pongs_received"].as_u64().unwrap_or(0) > 0, "pongs answered: {t}");
}

/// `hop proxy` over EICE bridges to the tunnel itself (port 22) and ends on stdin EOF with
/// Close 1000; OpenSSH through `hop config`'s stanza works.
#[test]
fn hop_proxy_and_openssh_through_hop_config_over_eice() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    // The SSH banner comes through; then stdin's EOF ends hop and the tunnel.
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["proxy", "sample-eice-web", "22"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner:?}");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hop proxy did not end on stdin EOF");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let t = closed_tunnels(net, &env).pop().unwrap();
    assert_clean(&t);
    assert_eq!(t["close_received"]["code"], 1000, "Close 1000 from hop on stdin EOF: {t}");
    // Another port: hop still asks the endpoint for 22 only (the service takes 22 and 3389),
    // and opens PORT from the target over SSH; nothing listens on 80 there.
    let run = hop_own(net, &env, &["proxy", "sample-eice-web", "80"], b"");
    run.code(255);
    assert!(run.stderr.contains("10.1.1.10:80"), "{}", run.stderr);
    let last = closed_tunnels(net, &env).pop().unwrap();
    assert_clean(&last);
    // ssh with the generated stanza (ProxyCommand hop proxy %h %p).
    let known = env.path(".ssh/known_hosts").display().to_string();
    env.write(".ssh/config", format!("UserKnownHostsFile {known}\nStrictHostKeyChecking yes\n").as_bytes());
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let written = std::fs::read_to_string(env.path(".ssh/hop/config")).unwrap();
    let stanza = written
        .split("\n\n")
        .find(|s| s.contains("Host sample-eice-web"))
        .unwrap_or_else(|| panic!("a stanza for sample-eice-web: {written}"));
    assert!(stanza.contains(" proxy %h %p") || stanza.contains(" proxy %n"), "{stanza}");
    let config = env.path(".ssh/config").display().to_string();
    let key = env.path(".ssh/own").display().to_string();
    let out = env
        .command_in(
            net,
            "ssh",
            &[
                "-F",
                &config,
                "-o",
                "BatchMode=yes",
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
                "-i",
                &key,
                "-o",
                "IdentitiesOnly=yes",
                "sample-eice-web",
                "hostname",
            ],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-eice-web\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// `hop forward` over EICE; the endpoint ends the tunnel at its duration limit (2 s here) and
/// the forwarder reconnects with its listener kept.
#[test]
fn forward_over_eice_reconnects_at_the_duration_limit() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = setup(net);
    knobs(net, &env, json!({"close_after_seconds": 2}));
    let key = env.path(".ssh/own").display().to_string();
    // Forward to the target's own sshd (it listens on 10.1.1.10): its banner proves the path.
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["-i", &key, "forward", "sample-eice-web", "21322:10.1.1.10:22"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("hop: forwarding 127.0.0.1:21322"), "hop forward did not start: {line}");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut rest = String::new();
        while err.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
            sink.lock().unwrap().push_str(&rest);
            rest.clear();
        }
    });
    let banner = || {
        let out = env
            .command_in(net, "bash", &["-c", "exec 3<>/dev/tcp/127.0.0.1/21322 && timeout 5 head -c 7 <&3"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(banner(), "SSH-2.0");
    // Wait (bounded) for the first tunnel to be cut at its limit and a second one to open.
    let deadline = Instant::now() + Duration::from_secs(20);
    while tunnels(net, &env).len() < 2 {
        assert!(Instant::now() < deadline, "no second tunnel: {}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = tunnels(net, &env).remove(0);
    assert_eq!(first["close_sent"]["reason"], "Tunnel duration exceeded", "{first}");
    // The listener still serves (bounded retries: the new tunnel may still be opening).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = banner();
    while got != "SSH-2.0" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = banner();
    }
    assert_eq!(got, "SSH-2.0", "{}", log.lock().unwrap());
    assert!(child.try_wait().unwrap().is_none(), "hop forward must not exit: {}", log.lock().unwrap());
    assert!(log.lock().unwrap().contains("maximum duration"), "{}", log.lock().unwrap());
    // SAFETY: kill(2) of the child this test started, by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut code = None;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(code, Some(130));
}

/// The endpoint's certificate is checked against the system's roots (SSL_CERT_FILE here): an
/// untrusted one is a connection error naming the endpoint, exit 255, and no tunnel opens.
#[test]
fn an_untrusted_certificate_is_refused() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = setup(net);
    // The system's public roots: valid, but none signed the bed's test CA.
    let public = "/etc/ssl/certs/ca-certificates.crt";
    if !std::path::Path::new(public).exists() {
        crate::support::unavailable("no /etc/ssl/certs/ca-certificates.crt (ca-certificates)");
        return;
    }
    env.set("SSL_CERT_FILE", public);
    let run = hop_own(net, &env, &["sample-eice-web", "--", "true"], b"");
    run.code(255);
    let a = endpoint(net, "sample-eice-a");
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "hop: error: cannot reach EC2 Instance Connect Endpoint {} at {}: ",
            a["id"].as_str().unwrap(),
            a["dns_name"].as_str().unwrap()
        )),
        "{}",
        run.stderr
    );
    assert!(first.to_lowercase().contains("certificate"), "{}", run.stderr);
    assert!(tunnels(net, &env).iter().all(|t| t["status"] != 101), "no tunnel opened");
}
