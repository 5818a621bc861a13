//! Keys pushed per login with EC2 Instance Connect (spec §B), for real: moto's SendSSHPublicKey
//! (tests/support/fake_eic.py) writes the key store that every lab sshd reads through its
//! AuthorizedKeysCommand (tests/support/eic_keys.sh), so a login that passes here used a key
//! pushed right before it. The tests reset the push knobs and count pushes: each takes the bed
//! for itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, python, unavailable};

/// `METHOD http://moto/PATH [BODY]` from inside the client namespace (moto listens there).
fn admin(net: &NetLab, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}{path}", net.state["moto"]["endpoint"].as_str().expect("moto endpoint"));
    let script = "import sys, urllib.request as u\n\
                  body = sys.argv[2].encode() if len(sys.argv) > 2 else None\n\
                  r = u.Request(sys.argv[1], data=body, method='POST' if body else 'GET',\n\
                  \x20   headers={'Content-Type': 'application/json'})\n\
                  print(u.urlopen(r, timeout=10).read().decode())\n";
    let py = python().expect("the bed runs, so python is set");
    let mut args = vec!["netns".to_string(), "exec".into(), net.ns().into(), py.display().to_string()];
    args.extend(["-c".into(), script.into(), url]);
    if let Some(b) = body {
        args.push(b.to_string());
    }
    let out = Command::new("ip").args(&args).output().expect("run python in the client namespace");
    assert!(out.status.success(), "admin {path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("admin answers JSON")
}

/// Knobs back to their defaults, records cleared; then `knobs` (if any).
fn knobs(net: &NetLab, knobs: Value) {
    admin(net, "/__fake_eic/knobs", Some(json!({"reset": true})));
    if knobs != json!({}) {
        admin(net, "/__fake_eic/knobs", Some(knobs));
    }
}

/// The pushes recorded since the last reset, in call order: (instance id, user, key line).
fn pushes(net: &NetLab) -> Vec<(String, String, String)> {
    admin(net, "/__fake_eic/pushes", None)
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("instance_id"), s("os_user"), s("public_key"))
        })
        .collect()
}

/// The AuthorizedKeysCommand's log: one line per call.
fn akc_log(net: &NetLab) -> PathBuf {
    PathBuf::from(net.state["eic"]["akc_log"].as_str().expect("eic.akc_log"))
}

fn read_from(path: &Path, from: usize) -> String {
    std::fs::read_to_string(path).unwrap_or_default().get(from..).unwrap_or_default().to_string()
}

/// The lab environment with NO key file anywhere: hop holds no identity for either host, and
/// no agent (the environment has no SSH_AUTH_SOCK).
fn no_pem(net: &NetLab) -> Env {
    let env = Env::net(net);
    for key in ["sample-bastion", "sample-web"] {
        std::fs::remove_file(env.path(&format!(".ssh/{key}.pem"))).unwrap();
    }
    env.trust_both(net);
    assert!(!env.vars.contains_key("SSH_AUTH_SOCK"));
    env
}

fn ids(net: &NetLab) -> (String, String) {
    (net.id("sample-bastion"), net.id("sample-web"))
}

/// Where the pushed key's bytes could be if hop wrote its private key: the raw 32 bytes of the
/// ed25519 public key (inside any binary form of the key pair), the public key's base64 (the
/// private key file repeats it), and the key's bytes base64-encoded at each of the three
/// alignments a PEM body could put them at.
fn traces(line: &str) -> Vec<Vec<u8>> {
    let key = russh::keys::PublicKey::from_openssh(line).expect("an OpenSSH public key");
    let raw = key.key_data().ed25519().expect("ed25519").0.to_vec();
    let b64 = line.split(' ').nth(1).expect("TYPE BASE64");
    assert_eq!(
        (base64(b"foob"), base64(b"fooba"), base64(b"foo")),
        ("Zm9vYg==".into(), "Zm9vYmE=".into(), "Zm9v".into())
    );
    let mut out = vec![raw.clone(), b64.as_bytes().to_vec()];
    for s in 0..3 {
        out.push(base64(&raw[s..s + 27]).into_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Files under `dirs` (at most 20000, each read up to 4 MiB) that contain any of `needles`, with
/// newlines removed too (PEM wraps lines).
fn files_containing(dirs: &[PathBuf], needles: &[Vec<u8>]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            continue;
        }
        if !meta.is_file() || meta.len() > 4 << 20 {
            continue;
        }
        seen += 1;
        if seen > 20_000 {
            break;
        }
        let Ok(bytes) = std::fs::read(&p) else { continue };
        let joined: Vec<u8> = bytes.iter().copied().filter(|b| *b != b'\n' && *b != b'\r').collect();
        let has = |hay: &[u8]| needles.iter().any(|n| hay.windows(n.len()).any(|w| w == n.as_slice()));
        if has(&bytes) || has(&joined) {
            found.push(p);
        }
    }
    found
}

#[test]
fn both_hops_log_in_with_keys_pushed_right_before_their_own_authentication() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    knobs(net, json!({}));
    let log = akc_log(net);
    let from = std::fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert_eq!(run.stderr, "");
    let (bastion, web) = ids(net);
    let pushed = pushes(net);
    let who: Vec<(&str, &str)> = pushed.iter().map(|(i, u, _)| (i.as_str(), u.as_str())).collect();
    assert_eq!(who, [(bastion.as_str(), "ec2-user"), (web.as_str(), "ec2-user")], "two pushes, in hop order");
    // One key per run, pushed for both: ed25519, no comment, 80 characters (spec §B.1).
    let key = &pushed[0].2;
    assert_eq!(&pushed[1].2, key);
    assert!(key.starts_with("ssh-ed25519 ") && key.len() == 80, "{key}");
    // Each push right before its own hop's authentication: web's push came after the bastion
    // accepted its key (the AuthorizedKeysCommand printed it), not both up front.
    let calls = read_from(&log, from);
    let bastion_ok = calls.lines().position(|l| l.contains(" host=bastion ") && l.contains(" printed=1 "));
    let web_ok = calls.lines().position(|l| l.contains(" host=web ") && l.contains(" printed=1 "));
    assert!(matches!((bastion_ok, web_ok), (Some(b), Some(w)) if b < w), "{calls}");
    let records = admin(net, "/__fake_eic/pushes", None);
    let bastion_accepted: f64 =
        calls.lines().nth(bastion_ok.unwrap()).unwrap().split(' ').next().unwrap().parse().unwrap();
    let web_pushed_at = records[1]["at"].as_f64().unwrap();
    assert!(web_pushed_at >= bastion_accepted, "web pushed at {web_pushed_at}, bastion accepted at {bastion_accepted}");
    // The pushed key never went to disk: not in HOME, the lab's directory, nor /tmp.
    let dirs = [env.home.path().to_path_buf(), net.dir(), PathBuf::from("/tmp")];
    assert_eq!(files_containing(&dirs, &traces(key)), Vec::<PathBuf>::new());
    // No connection master: a master never pushes, and every hop here does.
    assert_eq!(env.masters(), Vec::<u32>::new());
}

#[test]
fn a_refused_pushed_key_is_pushed_again_once_then_the_clear_error() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    let (bastion, web) = ids(net);
    // The first push is already expired on the instance: refused, pushed again, accepted.
    knobs(net, json!({"next_validities": [0]}));
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    let who: Vec<(String, String)> = pushes(net).into_iter().map(|(i, u, _)| (i, u)).collect();
    let want = |i: &str| (i.to_string(), "ec2-user".to_string());
    assert_eq!(who, [want(&bastion), want(&bastion), want(&web)], "3 pushes for 2 hops");
    // Every push expired: two pushes for the bastion, then the error with spec §B.4's hints.
    knobs(net, json!({"validity_seconds": 0}));
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(255);
    let who: Vec<(String, String)> = pushes(net).into_iter().map(|(i, u, _)| (i, u)).collect();
    assert_eq!(who, [want(&bastion), want(&bastion)]);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "hop: error: authentication as ec2-user on sample-bastion failed (tried: a key pushed with EC2 Instance \
         Connect, the same key pushed again)"
    );
    for hint in ["ec2-instance-connect package", "AuthorizedKeysCommand", "IMDS", "user that exists", "60 s", "clock"] {
        assert!(run.stderr.contains(hint), "hint {hint:?} missing:\n{}", run.stderr);
    }
    knobs(net, json!({}));
}

#[test]
fn push_errors_have_their_message_and_exit_status() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = no_pem(net);
    let (bastion, _) = ids(net);
    let first_line = |stderr: &str| stderr.lines().next().unwrap_or_default().to_string();
    knobs(net, json!({"fail": {"error": "AuthException", "count": 1}}));
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(255);
    assert_eq!(
        first_line(&run.stderr),
        format!(
            "hop: error: not allowed to push a key to {bastion} as ec2-user (ec2-instance-connect:SendSSHPublicKey, \
             condition ec2:osuser)"
        )
    );
    assert!(
        run.stderr.contains("hint: the identity of profile \"default\" needs ec2-instance-connect:SendSSHPublicKey")
    );
    knobs(net, json!({"fail": {"error": "EC2InstanceStateInvalidException", "count": 1}}));
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(255);
    assert_eq!(first_line(&run.stderr), format!("hop: error: {bastion} is stopped"));
    knobs(net, json!({"fail": {"error": "EC2InstanceNotFoundException", "count": 1}}));
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(2);
    assert_eq!(
        first_line(&run.stderr),
        format!("hop: error: EC2 Instance Connect does not know {bastion} in us-east-1")
    );
    // Throttled twice: with retries (AWS_MAX_ATTEMPTS, the SDK's own), the third call goes through.
    knobs(net, json!({"fail": {"error": "ThrottlingException", "count": 2}}));
    env.set("AWS_MAX_ATTEMPTS", "3");
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert_eq!(pushes(net).len(), 2);
    // Without retries: the throttling is the error.
    knobs(net, json!({"fail": {"error": "ThrottlingException", "count": 1}}));
    env.set("AWS_MAX_ATTEMPTS", "1");
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(255);
    assert_eq!(
        first_line(&run.stderr),
        format!(
            "hop: error: cannot push a key to {bastion} in us-east-1: EC2 Instance Connect answered ThrottlingException"
        )
    );
    knobs(net, json!({}));
}

#[test]
fn without_a_key_file_hop_pushes_unasked_and_a_failed_push_falls_back() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    knobs(net, json!({}));
    // No -i, no ~/.ssh/<KeyName>.pem, no agent: Auto pushes on both hops.
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert_eq!(pushes(net).len(), 2);
    // Auto and a push that fails: logged at -v, the usual keys are tried, and without any the
    // authentication error says what was tried.
    knobs(net, json!({"fail": {"error": "AuthException", "count": 5}}));
    let run = env.hop_in(net, &["-v", "sample-bastion", "--", "hostname"], b"");
    run.code(255);
    assert!(run.stderr.contains("no key pushed with EC2 Instance Connect: not allowed to push"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hop: error: authentication as ec2-user on sample-bastion failed (tried: no keys found)"),
        "{}",
        run.stderr
    );
    knobs(net, json!({}));
}

/// hop's own guess (Auto) with a default identity left to try: a refused pushed key is not pushed
/// again nor waited for (the instance may simply not run ec2-instance-connect); the default
/// identity logs in.
#[test]
fn an_unasked_push_that_is_refused_goes_on_to_the_default_identities_at_once() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    let key = net.state["keys"]["sample-bastion"].as_str().expect("the bastion's key");
    std::fs::copy(key, env.path(".ssh/id_ed25519")).unwrap();
    std::fs::set_permissions(env.path(".ssh/id_ed25519"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // Every pushed key is already expired on the instance: refused.
    knobs(net, json!({"validity_seconds": 0}));
    let (bastion, _) = ids(net);
    let run = env.hop_in(net, &["--no-reuse", "sample-bastion", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-bastion\n");
    let who: Vec<String> = pushes(net).into_iter().map(|(i, _, _)| i).collect();
    assert_eq!(who, [bastion], "one push, no second one");
    knobs(net, json!({}));
}

/// An ssh-agent of this test, killed by PID when dropped.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_with(env: &Env, keys: &[&str]) -> Option<Agent> {
    let sock = env.path("agent.sock");
    let child = match Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn() {
        Ok(c) => c,
        Err(e) => {
            unavailable(&format!("ssh-agent cannot run: {e}"));
            return None;
        }
    };
    let agent = Agent { child, sock };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for key in keys {
        let out = Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", &agent.sock).output().expect("ssh-add");
        assert!(out.status.success(), "ssh-add {key}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(agent)
}

#[test]
fn with_a_key_in_the_agent_hop_does_not_push_unasked() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = no_pem(net);
    knobs(net, json!({}));
    let keys: Vec<String> =
        ["sample-bastion", "sample-web"].iter().map(|k| net.state["keys"][k].as_str().unwrap().to_string()).collect();
    let Some(agent) = agent_with(&env, &[&keys[0], &keys[1]]) else { return };
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert_eq!(pushes(net), Vec::new(), "the agent's keys log in: nothing pushed");
    // Asked for, it pushes whatever the agent holds.
    let run = env.hop_in(net, &["--push-key", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(pushes(net).len(), 2);
}

#[test]
fn a_pushing_target_behind_a_keyed_bastion_keeps_the_bastions_master() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    std::fs::remove_file(env.path(".ssh/sample-web.pem")).unwrap();
    env.write(".config/hop/config.toml", b"[hosts.sample-web]\nauth = \"instance-connect\"\n");
    knobs(net, json!({}));
    let (_, web) = ids(net);
    for _ in 0..2 {
        let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
        run.code(0);
        assert_eq!(run.stdout, "sample-web\n");
    }
    // The bastion (its .pem) through one master; web pushed to by each command itself.
    assert_eq!(env.masters().len(), 1);
    let who: Vec<String> = pushes(net).into_iter().map(|(i, _, _)| i).collect();
    assert_eq!(who, [web.clone(), web]);
}

#[test]
fn plain_ssh_through_hop_config_with_the_users_own_key_pushed_by_hop_proxy() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    knobs(net, json!({}));
    let key = env.path(".ssh/id_ed25519");
    let made =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f"]).arg(&key).output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            unavailable(&format!("ssh-keygen cannot run: {other:?}"));
            return;
        }
    }
    let own = std::fs::read_to_string(env.path(".ssh/id_ed25519.pub")).unwrap();
    let own_line: String = own.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let known = env.path(".ssh/known_hosts").display().to_string();
    env.write(".ssh/config", format!("UserKnownHostsFile {known}\nStrictHostKeyChecking yes\n").as_bytes());
    // No OpenSSH masters left behind by this test.
    env.write(".config/hop/config.toml", b"reuse = false\n");
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let written = std::fs::read_to_string(env.path(".ssh/hop/config")).unwrap();
    let (bastion, web) = ids(net);
    let stanza = written.split("\n\n").find(|s| s.contains("Host sample-web ")).expect("a stanza for sample-web");
    let pubkey = env.path(".ssh/id_ed25519.pub").display().to_string();
    assert!(stanza.contains(&format!("  HostName {web}\n")), "{stanza}");
    assert!(stanza.contains(&format!(" proxy --push-key {pubkey} %h %p\n")), "{stanza}");
    assert!(stanza.contains(&format!("  IdentityFile {}\n", key.display())), "{stanza}");
    assert!(!stanza.contains("ProxyJump"), "{stanza}");
    let config = env.path(".ssh/config").display().to_string();
    let ssh = |args: &[&str]| {
        let mut all = vec!["-F", config.as_str(), "-o", "BatchMode=yes"];
        all.extend(args);
        env.command_in(net, "ssh", &all).stdin(Stdio::null()).output().unwrap()
    };
    let out = ssh(&["sample-web", "hostname"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-web\n", "{}", String::from_utf8_lossy(&out.stderr));
    // hop proxy pushed the user's key for web (which ssh logged in with), then logged in to the
    // bastion with a key of its own, pushed right before the bastion's authentication.
    let pushed = pushes(net);
    let who: Vec<(&str, &str)> = pushed.iter().map(|(i, u, _)| (i.as_str(), u.as_str())).collect();
    assert_eq!(who, [(web.as_str(), "ec2-user"), (bastion.as_str(), "ec2-user")]);
    assert_eq!(pushed[0].2, own_line);
    assert_ne!(pushed[1].2, own_line);
    // The key pushed for ec2-user does not open root.
    let out = ssh(&["-l", "root", "sample-web", "id", "-un"]);
    assert_eq!(out.status.code(), Some(255), "root must be refused: {}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An ECDSA key is refused before anything is pushed, with the reason.
    let ecdsa = env.path(".ssh/id_ecdsa");
    Command::new("ssh-keygen").args(["-q", "-t", "ecdsa", "-N", "", "-f"]).arg(&ecdsa).output().unwrap();
    knobs(net, json!({}));
    let pubfile = format!("{}.pub", ecdsa.display());
    let run = env.hop_in(net, &["proxy", "--push-key", &pubfile, "sample-web", "22"], b"");
    run.code(2);
    assert!(run.stderr.contains("keys are ignored by EC2 Instance Connect on the instance"), "{}", run.stderr);
    assert_eq!(pushes(net), Vec::new());
}

/// The demo with the key pushed: sample-eice-web (no KeyName, no bastion, reached only
/// through the endpoint's tunnel) gets one key pushed unasked, for its id and user, and logs in.
#[test]
fn an_instance_without_a_key_pair_behind_an_endpoint_gets_a_pushed_key_unasked() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = no_pem(net);
    let known = std::fs::read(net.state["known_hosts"].as_str().expect("known_hosts")).unwrap();
    env.write(".ssh/known_hosts", &known);
    env.set("SSL_CERT_FILE", net.state["moto"]["eice"]["ca"].as_str().expect("the fake EICE's CA"));
    knobs(net, json!({}));
    // The fake endpoint as seeded (another test may have left a fault knob on).
    admin(net, "/__fake_eice/knobs", Some(json!({"endpoint": null, "reset": true})));
    let run = env.hop_in(net, &["sample-eice-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-eice-web\n", "{}", run.stderr);
    let pushed = pushes(net);
    let who: Vec<(&str, &str)> = pushed.iter().map(|(i, u, _)| (i.as_str(), u.as_str())).collect();
    let id = net.id("sample-eice-web");
    assert_eq!(who, [(id.as_str(), "ec2-user")]);
    assert_eq!(
        files_containing(&[env.home.path().to_path_buf(), net.dir()], &traces(&pushed[0].2)),
        Vec::<PathBuf>::new()
    );
}

/// `hop forward` with no key file: both hops log in with pushed keys (the forwarder's own
/// connection, no master), and the forward carries data.
#[test]
fn hop_forward_logs_in_with_pushed_keys() {
    use crate::forward::{Forwarder, WebServer, curl};
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = no_pem(net);
    knobs(net, json!({}));
    let web = WebServer::start(net, &env, 18093);
    let spec = format!("21093:localhost:{}", web.port);
    let _fwd = Forwarder::start(net, &env, &["sample-web", &spec]);
    let small = "hello through the tunnel\n";
    assert_eq!(curl(net, &env, &["http://127.0.0.1:21093/small"]), (true, small.to_string()));
    let (bastion, web_id) = ids(net);
    let who: Vec<String> = pushes(net).into_iter().map(|(i, _, _)| i).collect();
    assert_eq!(who, [bastion, web_id]);
    assert_eq!(env.masters(), Vec::<u32>::new());
}
