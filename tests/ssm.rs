//! Session Manager for real, but for AWS: hop's aws-sdk-ssm calls reach the fake control plane
//! in front of moto, its websocket reaches the fake agent (tests/support/fake_ssm.py, written
//! from the spec, independent of hop's code), and the agent dials the web namespace's sshd from
//! inside that namespace, as the real agent dials localhost:22 on the instance. The client
//! namespace has no route to the web host, so a passing test proves the data channel carried
//! the bytes.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::forward::{Forwarder, WebServer, curl, load};
use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, REPO, noise, python};

/// Run tests/support/ssm_admin.py in the client namespace (where moto and the fake listen).
fn admin(net: &NetLab, env: &Env, args: &[&str]) -> String {
    let py = python().unwrap().display().to_string();
    let script = format!("{REPO}/tests/support/ssm_admin.py");
    let endpoint = net.state["moto"]["endpoint"].as_str().unwrap();
    let mut argv = vec![script.as_str(), "--endpoint", endpoint];
    argv.extend_from_slice(args);
    let out = env.command_in(net, &py, &argv).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "ssm_admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh SSM-only instance named `name` whose agent reaches web's sshd, with `knobs`; its
/// host key (web's) is trusted under its instance id. Returns the instance id.
pub(crate) fn target(net: &NetLab, env: &Env, name: &str, knobs: Value) -> String {
    let id = admin(net, env, &["launch", name]);
    let mut all = json!({"dial": {"netns": net.state["web_ns"], "host": "10.0.1.10", "port": 22}});
    all.as_object_mut().unwrap().extend(knobs.as_object().unwrap().clone());
    admin(net, env, &["target", &id, &all.to_string()]);
    env.trust_both(net);
    let mut known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    known.push_str(&format!("{id} {}\n", net.host_key("web")));
    env.write(".ssh/known_hosts", known.as_bytes());
    id
}

fn knobs(net: &NetLab, env: &Env, id: &str, knobs: Value) {
    admin(net, env, &["target", id, &knobs.to_string()]);
}

/// The fake's record of the sessions on `id`, oldest first.
fn sessions(net: &NetLab, env: &Env, id: &str) -> Vec<Value> {
    let state: Value = serde_json::from_str(&admin(net, env, &["state"])).unwrap();
    let mut out: Vec<Value> =
        state["sessions"].as_object().unwrap().values().filter(|s| s["target"] == id).cloned().collect();
    out.sort_by_key(|s| s["index"].as_u64());
    out
}

/// The Parameters of every StartSession call hop made for `id`, as sent (lists of strings).
fn start_parameters(net: &NetLab, env: &Env, id: &str) -> Vec<Value> {
    let state: Value = serde_json::from_str(&admin(net, env, &["state"])).unwrap();
    state["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["op"] == "StartSession" && c["body"]["Target"] == id)
        .map(|c| c["body"]["Parameters"].clone())
        .collect()
}

/// What every session hop ran must show: a clean protocol record and a termination.
fn assert_clean(session: &Value) {
    assert_eq!(session["violations"], json!([]), "protocol violations: {session}");
    assert_eq!(session["client_version"], "1.2.650.0", "{session}");
    assert_eq!(session["terminated_by_api"], true, "TerminateSession called: {session}");
}

/// `hop -l ec2-user -i web-key ARGS`: the instance's own tags say ssm-user, web's sshd wants
/// ec2-user with sample-web's key.
fn hop(net: &NetLab, env: &Env, args: &[&str], stdin: &[u8]) -> crate::support::Run {
    let key = env.path(".ssh/sample-web.pem").display().to_string();
    let mut argv = vec!["-l", "ec2-user", "-i", key.as_str()];
    argv.extend_from_slice(args);
    env.hop_in(net, &argv, stdin)
}

#[test]
fn exec_over_ssm_with_status_route_and_a_terminated_session() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-exec", json!({}));
    let run = env.hop_in(net, &["route", "ssm-exec"], b"");
    run.code(0);
    assert!(run.stdout.contains("route    ssm ("), "{}", run.stdout);
    assert!(run.stdout.contains("AWS-StartSSHSession"), "{}", run.stdout);
    let run = hop(net, &env, &["ssm-exec", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n", "{}", run.stderr);
    // The agent dials from the instance itself.
    let run = hop(net, &env, &["ssm-exec", "--", "echo $SSH_CONNECTION"], b"");
    assert!(run.stdout.starts_with("10.0.1.10 "), "{}{}", run.stdout, run.stderr);
    let run = hop(net, &env, &["ssm-exec", "--", "echo", "out;", "echo", "err", ">&2;", "exit", "7"], b"");
    run.code(7);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("out\n", "err\n"));
    // Every value a list of strings, numbers too (§1.1).
    assert_eq!(start_parameters(net, &env, &id), vec![json!({"portNumber": ["22"]}); 3]);
    let all = sessions(net, &env, &id);
    assert_eq!(all.len(), 3, "{all:?}");
    for s in &all {
        assert_clean(s);
        assert_eq!(s["document"], "AWS-StartSSHSession");
        assert_eq!(s["parameters"]["portNumber"], "22", "{s}");
        assert_eq!(s["terminate_flag_received"], true, "the TerminateSession flag came first: {s}");
        assert!(s["max_client_payload"].as_u64().unwrap() <= 1024, "{s}");
    }
}

/// Secrets never reach the log, whatever HOP_LOG asks for: at `trace` the AWS SDK would log
/// StartSession's response (its TokenValue) and tungstenite the data channel's frames.
#[test]
fn the_session_token_never_reaches_the_log_even_at_trace() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    let id = target(net, &env, "ssm-trace", json!({}));
    for directive in ["trace", "aws_smithy_runtime=trace,aws_sdk_ssm=trace,tungstenite=trace,hop=trace"] {
        env.set("HOP_LOG", directive);
        let run = hop(net, &env, &["ssm-trace", "--", "hostname"], b"");
        run.code(0);
        assert_eq!(run.stdout, "sample-web\n");
        let session = sessions(net, &env, &id).pop().unwrap();
        let token = session["token"].as_str().unwrap();
        assert!(token.len() >= 32, "{session}");
        assert!(!run.stderr.contains(token), "HOP_LOG={directive}: the token is in the log");
        // Trace output is there: hop's own, for every frame from the agent.
        assert!(run.stderr.contains("TRACE data channel: a "), "HOP_LOG={directive}: {}", run.stderr);
        // And the SDK still says what it does, at debug.
        assert!(run.stderr.contains("beginning attempt #1"), "HOP_LOG={directive}");
    }
}

#[test]
fn openssh_uses_the_ssm_route_through_hop_config_and_hop_proxy() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-openssh", json!({}));
    let known = env.path(".ssh/known_hosts").display().to_string();
    env.write(".ssh/config", format!("UserKnownHostsFile {known}\nStrictHostKeyChecking yes\n").as_bytes());
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let written = std::fs::read_to_string(env.path(".ssh/hop/config")).unwrap();
    let stanza = written.split("\n\n").find(|s| s.contains("Host ssm-openssh ")).expect("a stanza for the SSM host");
    assert!(stanza.contains(&format!("HostName {id}")), "{stanza}");
    assert!(stanza.contains(" proxy %h %p"), "{stanza}");
    assert!(stanza.contains(&format!("HostKeyAlias {id}")), "{stanza}");
    let config = env.path(".ssh/config").display().to_string();
    let key = env.path(".ssh/sample-web.pem").display().to_string();
    let out = env
        .command_in(
            net,
            "ssh",
            &["-F", &config, "-o", "BatchMode=yes", "-l", "ec2-user", "-i", &key, "ssm-openssh", "hostname"],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-web\n", "{}", String::from_utf8_lossy(&out.stderr));
    // The stanza shares the connection (ControlPersist): the session lives as long as ssh's
    // master. Ending the master ends its ProxyCommand with SIGHUP: hop still terminates the
    // session, shortly after.
    let exit = env
        .command_in(net, "ssh", &["-F", &config, "-l", "ec2-user", "-O", "exit", "ssm-openssh"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(exit.status.success(), "ssh -O exit: {}", String::from_utf8_lossy(&exit.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut all = sessions(net, &env, &id);
    while all[0]["terminated_by_api"] != true && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        all = sessions(net, &env, &id);
    }
    assert_eq!(all.len(), 1);
    assert_clean(&all[0]);
}

/// `hop TARGET -- cat` with `data` on stdin: what came back.
fn round_trip(net: &NetLab, env: &Env, target: &str, data: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    let key = env.path(".ssh/sample-web.pem").display().to_string();
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["-l", "ec2-user", "-i", &key, target, "--", "cat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let sent = data.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    let _ = writer.join().unwrap();
    (out.status.code(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn ten_megabytes_round_trip_over_a_lossy_duplicating_reordering_channel() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let faults = json!({"drop_percent": 5, "dup_percent": 5, "reorder_percent": 5, "drop_ack_percent": 5, "seed": 7});
    let id = target(net, &env, "ssm-lossy", faults);
    let data = noise(10 * 1024 * 1024, 0x5eed);
    let started = std::time::Instant::now();
    let (code, back, err) = round_trip(net, &env, "ssm-lossy", &data);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(back.len(), data.len(), "{err}");
    assert!(back == data, "10 MiB came back different");
    eprintln!("10 MiB each way over a 5% lossy data channel: {:.1}s", started.elapsed().as_secs_f64());
    let all = sessions(net, &env, &id);
    assert_clean(&all[0]);
}

#[test]
fn every_fault_knob_leaves_a_working_session() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-faults", json!({}));
    let cases = [
        json!({"withhold_acks_ms": 700}),
        json!({"corrupt_digest_every": 5}),
        json!({"drop_first_handshake_complete": true}),
        json!({"ignore_handshake_request_ack": true}),
        json!({"publications": true}),
        json!({"oversize_payloads": true}),
        json!({"malformed_frames": true}),
        json!({"dial_delay_ms": 500}),
        json!({"agent_version": "2.3.722.0"}),
    ];
    let reset = json!({"withhold_acks_ms": 0, "corrupt_digest_every": 0, "drop_first_handshake_complete": false,
        "ignore_handshake_request_ack": false, "publications": false, "oversize_payloads": false,
        "malformed_frames": false, "dial_delay_ms": 0, "agent_version": "3.3.1142.0"});
    let data = noise(300_000, 3);
    for case in &cases {
        knobs(net, &env, &id, reset.clone());
        knobs(net, &env, &id, case.clone());
        let (code, back, err) = round_trip(net, &env, "ssm-faults", &data);
        assert_eq!(code, Some(0), "{case}: {err}");
        assert!(back == data, "{case}: {} bytes back of {}", back.len(), data.len());
        let last = sessions(net, &env, &id).pop().unwrap();
        assert_clean(&last);
        // An old agent does not know the TerminateSession flag: the API call alone.
        let flag_expected = case["agent_version"] != "2.3.722.0";
        assert_eq!(last["terminate_flag_received"], flag_expected, "{case}: {last}");
    }
}

#[test]
fn a_websocket_closed_by_the_service_is_resumed_and_the_ssh_session_lives_on() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-resume", json!({"close_ws_after_messages": 300}));
    let data = noise(2 * 1024 * 1024, 11);
    let (code, back, err) = round_trip(net, &env, "ssm-resume", &data);
    assert_eq!(code, Some(0), "{err}");
    assert!(back == data, "{} bytes back of {}", back.len(), data.len());
    let s = sessions(net, &env, &id).pop().unwrap();
    assert_clean(&s);
    assert_eq!(s["resumes"], 1, "one ResumeSession: {s}");
    assert_eq!(s["open_data_channel"], 2, "a second OpenDataChannel, same ClientId: {s}");
    // A session the service timed out: ResumeSession without a token is a clear end.
    knobs(net, &env, &id, json!({"resume_no_token": true}));
    let (code, _, err) = round_trip(net, &env, "ssm-resume", &data);
    assert_ne!(code, Some(0));
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn kms_is_refused_clearly_and_the_session_terminated() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-kms", json!({"kms": true}));
    let run = hop(net, &env, &["ssm-kms", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("KMS encryption"), "{}", run.stderr);
    assert!(run.elapsed < std::time::Duration::from_secs(10), "no hang: {:?}", run.elapsed);
    let s = sessions(net, &env, &id).pop().unwrap();
    assert_eq!(s["terminated_by_api"], true, "{s}");
    // §4.6: the agent was told, in the HandshakeResponse, before the session ended.
    assert_eq!(s["handshake"], "failed", "{s}");
    let kms = s["handshake_response"]["ProcessedClientActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ActionType"] == "KMSEncryption")
        .unwrap_or_else(|| panic!("no KMSEncryption answer: {s}"))
        .clone();
    assert_eq!(kms["ActionStatus"], 2, "{kms}");
    assert!(!kms["Error"].as_str().unwrap_or_default().is_empty(), "{kms}");
    // Unknown actions and other session types are refused the same way.
    for (k, v, says) in [("kms", json!(false), ""), ("unknown_action", json!(true), "FakeUnknownAction")] {
        knobs(net, &env, &id, json!({k: v}));
        if says.is_empty() {
            continue;
        }
        let run = hop(net, &env, &["ssm-kms", "--", "true"], b"");
        run.code(255);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    knobs(net, &env, &id, json!({"unknown_action": false, "session_type": "Standard_Stream"}));
    let run = hop(net, &env, &["ssm-kms", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("Standard_Stream"), "{}", run.stderr);
    // Every refusal still ends the session: no orphan left with Session Manager.
    for s in sessions(net, &env, &id) {
        assert_eq!(s["terminated_by_api"], true, "{s}");
    }
}

#[test]
fn unreachable_agents_and_denied_calls_say_why_and_what_to_do() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = target(net, &env, "ssm-down", json!({"registered": false}));
    let run = hop(net, &env, &["ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains(&format!("Session Manager has no agent registered for {id}")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("hint: `hop doctor {id}`")), "{}", run.stderr);
    knobs(net, &env, &id, json!({"registered": true, "ping_status": "ConnectionLost"}));
    let run = hop(net, &env, &["ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("is ConnectionLost"), "{}", run.stderr);
    knobs(net, &env, &id, json!({"ping_status": "Online", "start_error": "AccessDeniedException"}));
    let run = hop(net, &env, &["ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("denied"), "{}", run.stderr);
    assert!(run.stderr.contains("ssm:StartSession"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("`hop doctor {id}`")), "{}", run.stderr);
    // The agent looks Online, yet StartSession says it is not connected (it just dropped).
    knobs(net, &env, &id, json!({"start_error": "TargetNotConnected"}));
    let run = hop(net, &env, &["ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains(&format!("{id} is not connected to Session Manager in ")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("`hop doctor {id}`")), "{}", run.stderr);
    // One line says what failed; the rest are hints.
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("hop: error:")).count(), 1, "{}", run.stderr);
    // The handshake never comes, or the token is refused: clear errors, sessions terminated.
    knobs(net, &env, &id, json!({"start_error": null, "reject_token": true}));
    let run = hop(net, &env, &["ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("before the handshake"), "{}", run.stderr);
    assert_eq!(sessions(net, &env, &id).pop().unwrap()["terminated_by_api"], true);
    // An agent that never starts the handshake: bounded by --connect-timeout, then ended.
    knobs(net, &env, &id, json!({"reject_token": false, "no_handshake": true}));
    let run = hop(net, &env, &["--connect-timeout", "2", "ssm-down", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("no handshake from the SSM agent within 2s"), "{}", run.stderr);
    assert!(run.elapsed < std::time::Duration::from_secs(8), "{:?}", run.elapsed);
    assert_eq!(sessions(net, &env, &id).pop().unwrap()["terminated_by_api"], true);
}

#[test]
fn channel_closed_mid_session_ends_hop_with_the_reason() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let knobs = json!({"channel_closed_after_bytes": 200_000, "channel_closed_output": "terminated by an administrator",
        "channel_closed_hl112": true});
    let id = target(net, &env, "ssm-closed", knobs);
    let started = std::time::Instant::now();
    let (code, back, err) = round_trip(net, &env, "ssm-closed", &noise(5 * 1024 * 1024, 5));
    assert_eq!(code, Some(255), "{err}");
    assert!(back.len() < 5 * 1024 * 1024);
    assert!(err.contains("terminated by an administrator"), "{err}");
    // Ended by the service, and still TerminateSession'd: hop does not guess what the
    // service did with it.
    assert_eq!(sessions(net, &env, &id).pop().unwrap()["terminated_by_api"], true);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn ssh_forwards_over_ssm_and_native_smux_with_fifty_parallel_streams() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let web = WebServer::start(net, &env, 18090);
    let id = target(net, &env, "ssm-ports", json!({}));
    let small = "hello through the tunnel\n";
    // Default: SSH over the data channel, #4's forwards on top (two forwards, one session).
    {
        let key = env.path(".ssh/sample-web.pem").display().to_string();
        let a = format!("21090:localhost:{}", web.port);
        let b = format!("21091:127.0.0.1:{}", web.port);
        let _fwd = Forwarder::start(net, &env, &["-l", "ec2-user", "-i", &key, "ssm-ports", &a, &b]);
        for url in ["http://127.0.0.1:21090/small", "http://127.0.0.1:21091/small"] {
            assert_eq!(curl(net, &env, &[url]), (true, small.to_string()), "{url}");
        }
        let report = load(net, &env, &["parallel", "21090", "100", "20"]);
        assert_eq!(report["failures"], 0, "{report}");
    }
    // --native: the port-forwarding document, smux (agent 3.3.1142.0), 50 streams at once.
    // The second stream's dial fails on the instance (ConnectToPortError + FIN): that
    // connection alone is closed, the session and the other streams carry on.
    knobs(
        net,
        &env,
        &id,
        json!({"dial": {"netns": net.state["web_ns"], "host": null, "port": null}, "mux_connect_error": 2}),
    );
    let before = sessions(net, &env, &id).len();
    assert_eq!(before, 1, "two forwards and 100 connections, one Session Manager session");
    assert_clean(&sessions(net, &env, &id)[0]);
    {
        let spec = format!("21092:localhost:{}", web.port);
        let fwd = Forwarder::start(net, &env, &["--native", "ssm-ports", &spec]);
        assert_eq!(curl(net, &env, &["http://127.0.0.1:21092/small"]), (true, small.to_string()));
        assert!(!curl(net, &env, &["http://127.0.0.1:21092/small"]).0, "the failed dial closes that connection");
        assert_eq!(curl(net, &env, &["http://127.0.0.1:21092/small"]), (true, small.to_string()));
        let report = load(net, &env, &["parallel", "21092", "50", "50"]);
        assert_eq!(report["failures"], 0, "{report}");
        eprintln!("50 parallel streams over one smux session: {:.2}s", report["seconds"].as_f64().unwrap());
        let log = fwd.log.lock().unwrap().clone();
        assert!(log.contains("could not connect to the destination port"), "{log}");
        drop(fwd);
    }
    let all = sessions(net, &env, &id);
    let native = &all[before];
    assert_eq!(native["document"], "AWS-StartPortForwardingSession", "{native}");
    assert_eq!(native["parameters"]["portNumber"], web.port.to_string(), "{native}");
    let ids: Vec<u64> = native["mux_stream_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 53, "{native}");
    assert_eq!(&ids[..3], &[3, 5, 7], "client stream ids are odd from 3");
    assert_clean(native);
    // An agent from before smux (≤ 3.0.196.0): basic mode, one connection at a time.
    knobs(net, &env, &id, json!({"agent_version": "3.0.196.0"}));
    {
        let spec = format!("21093:localhost:{}", web.port);
        let fwd = Forwarder::start(net, &env, &["--native", "ssm-ports", &spec]);
        for _ in 0..3 {
            assert_eq!(curl(net, &env, &["http://127.0.0.1:21093/small"]), (true, small.to_string()));
        }
        drop(fwd);
    }
    let basic = sessions(net, &env, &id).pop().unwrap();
    assert_eq!(basic["mux_stream_ids"], json!([]), "{basic}");
    assert!(basic["disconnect_to_port"].as_u64().unwrap() >= 2, "one DisconnectToPort per connection: {basic}");
    assert_clean(&basic);
    // A host behind the instance: AWS-StartPortForwardingSessionToRemoteHost, the host in its
    // parameters (the fake then dials the lab's web server, wherever the document points).
    knobs(
        net,
        &env,
        &id,
        json!({"agent_version": "3.3.1142.0", "dial": {"netns": net.state["web_ns"], "host": "127.0.0.1", "port": null}}),
    );
    {
        let spec = format!("21094:10.0.1.10:{}", web.port);
        let fwd = Forwarder::start(net, &env, &["--native", "ssm-ports", &spec]);
        assert_eq!(curl(net, &env, &["http://127.0.0.1:21094/small"]), (true, small.to_string()));
        drop(fwd);
    }
    let remote = sessions(net, &env, &id).pop().unwrap();
    assert_eq!(remote["document"], "AWS-StartPortForwardingSessionToRemoteHost", "{remote}");
    assert_eq!(remote["parameters"]["host"], "10.0.1.10", "{remote}");
    assert_eq!(remote["parameters"]["portNumber"], web.port.to_string(), "{remote}");
    assert_clean(&remote);
}

/// The fake itself is checked against the spec: its codec against the spec's vectors, and its
/// agent against an independent Python client (echo with faults, resume, KMS, mux, …).
#[test]
fn the_fake_agent_passes_its_own_spec_self_test() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => return crate::support::unavailable(&why),
    };
    let out = std::process::Command::new(py)
        .arg(format!("{REPO}/tests/support/fake_ssm.py"))
        .arg("--self-test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok   codec: 4 AgentMessage vectors"), "{text}");
}

#[test]
fn interactive_shell_over_a_faulty_data_channel() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let faults = json!({"drop_percent": 5, "dup_percent": 5, "reorder_percent": 5, "corrupt_digest_every": 9,
        "publications": true, "seed": 3, "withhold_acks_ms": 500, "drop_ack_percent": 10,
        "close_ws_after_messages": 6});
    let id = target(net, &env, "ssm-shell", faults);
    let py = python().unwrap().display().to_string();
    let driver = format!("{REPO}/tests/support/pty_drive.py");
    let key = env.path(".ssh/sample-web.pem").display().to_string();
    let hop = format!("{} -l ec2-user -i {key} ssm-shell", env!("CARGO_BIN_EXE_hop"));
    let out = env.command_in(net, &py, &[&driver, "100", "30", &hop]).stdin(Stdio::null()).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("driver: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let transcript = report["transcript"].as_str().unwrap_or_default();
    assert_eq!(report["sizes"], json!(["30 100", "40 120"]), "remote stty size: {transcript}");
    assert_eq!(report["exit"], 3, "the shell's exit status: {transcript}");
    assert_eq!(report["modes_after"], report["modes_before"], "terminal modes restored: {transcript}");
    let session = sessions(net, &env, &id).pop().unwrap();
    assert_clean(&session);
    assert!(session["resumes"].as_u64().unwrap_or(0) >= 1, "the websocket was closed and resumed: {session}");
}

#[test]
fn host_keys_are_checked_and_the_agent_forwarded_only_when_asked_over_ssm() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    let id = target(net, &env, "ssm-keys", json!({}));
    // The data channel is no excuse: an unknown host key is refused, and the session ended.
    env.trust_both(net);
    let run = hop(net, &env, &["ssm-keys", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains(&format!("host key of ssm-keys ({id}) is not known")), "{}", run.stderr);
    assert_eq!(sessions(net, &env, &id).pop().unwrap()["terminated_by_api"], true);
    let run = hop(net, &env, &["--accept-new", "ssm-keys", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    let known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    assert!(known.contains(&format!("{id} {}", net.host_key("web"))), "recorded under the instance id: {known}");
    // -A forwards the agent to the target; without it there is none.
    let agent = crate::ssh::Agent::start(&env, &env.path(".ssh/sample-web.pem"));
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let run = hop(net, &env, &["ssm-keys", "--", "ssh-add", "-l"], b"");
    assert_eq!(run.code, 2, "no agent without -A: {}{}", run.stdout, run.stderr);
    let run = hop(net, &env, &["-A", "ssm-keys", "--", "ssh-add", "-l"], b"");
    run.code(0);
    assert!(run.stdout.contains("ED25519"), "{}", run.stdout);
}

/// §8.3.4: an agent that acknowledges nothing. hop retransmits until `ssm_give_up` (config),
/// then ends the session with TerminateSession and exits 255 saying why.
#[test]
fn an_agent_that_acknowledges_nothing_is_given_up_on() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    let config = env.write("hop.toml", b"ssm_give_up = \"3s\"\n");
    env.set("HOP_CONFIG", config.to_str().unwrap());
    let id = target(net, &env, "ssm-deaf", json!({"withhold_acks_ms": 600_000}));
    let started = std::time::Instant::now();
    let run = hop(net, &env, &["ssm-deaf", "--", "sleep", "30"], b"");
    assert_eq!(run.code, 255, "{}", run.stderr);
    assert!(run.stderr.contains("did not acknowledge"), "{}", run.stderr);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(3) && took < std::time::Duration::from_secs(20), "{took:?}");
    assert_eq!(sessions(net, &env, &id).pop().unwrap()["terminated_by_api"], true);
}
