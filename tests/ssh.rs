//! `hop TARGET -- CMD` and `hop proxy` for real: OpenSSH sshd on a bastion and a web host in
//! their own network namespaces, hop in a client namespace that can reach only the bastion, so
//! every passing test proves the jump happened.

use std::io::Write;
use std::process::Stdio;

use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE};

#[test]
fn the_client_cannot_reach_web_directly() {
    let net = netlab_or_skip!();
    let env = Env::net(net);
    let out = env
        .command_in(net, "bash", &["-c", "exec 3<>/dev/tcp/10.0.1.10/22"])
        .output()
        .expect("run bash in the client namespace");
    assert!(!out.status.success(), "10.0.1.10 must be unreachable from the client");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Network is unreachable"), "{err}");
}

#[test]
fn exec_through_the_bastion_with_status_and_separate_streams() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert_eq!(run.stderr, "");
    // The web host sees the connection coming from the bastion's private address.
    let run = env.hop_in(net, &["sample-web", "--", "echo $SSH_CONNECTION"], b"");
    run.code(0);
    assert!(run.stdout.starts_with("10.0.0.4 "), "{}", run.stdout);
    let run = env.hop_in(net, &["sample-web", "--", "echo", "out;", "echo", "err", ">&2;", "exit", "7"], b"");
    run.code(7);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("out\n", "err\n"));
    // A signal: 128 + n, as ssh.
    let run = env.hop_in(net, &["sample-web", "--", "kill", "-TERM", "$$"], b"");
    run.code(128 + 15);
    // The bastion itself is direct.
    let run = env.hop_in(net, &["sample-bastion", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-bastion\n");
}

#[test]
fn stdin_is_streamed_binary_safe_with_eof() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    // 4 MiB of every byte value, more than any window or buffer.
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["sample-web", "--", "cat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || input.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == data, "round trip differs ({} bytes back of {})", out.stdout.len(), data.len());
    // EOF reaches the remote command: `wc -c` only answers after it.
    let run = env.hop_in(net, &["sample-web", "--", "wc", "-c"], b"hello");
    run.code(0);
    assert_eq!(run.stdout.trim(), "5");
}

#[test]
fn unknown_host_keys_are_refused_without_a_terminal_and_recorded_with_accept_new() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let run = env.hop_in(net, &["sample-web", "--", "true"], b"");
    run.code(255);
    let bastion = net.id("sample-bastion");
    assert!(
        run.stderr.starts_with(&format!("hop: error: host key of sample-bastion ({bastion}) is not known: SHA256:")),
        "the first hop is checked first: {}",
        run.stderr
    );
    assert!(run.stderr.contains("--accept-new"), "{}", run.stderr);
    assert!(!env.path(".ssh/known_hosts").exists(), "nothing recorded without consent");
    let run = env.hop_in(net, &["--accept-new", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    let known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    assert_eq!(
        known,
        format!("{bastion} {}\n{} {}\n", net.host_key("bastion"), net.id("sample-web"), net.host_key("web")),
        "both hops recorded under their instance ids"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path(".ssh/known_hosts")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Recorded keys are now simply trusted.
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
}

/// `ssh -F ~/.ssh/config HOST CMD` in the client namespace. The known_hosts file and the
/// checking policy are global options of that config file, so the jump ssh that ProxyJump
/// starts (which gets `-F` but no `-o`) uses them too. (ssh finds ~ through the passwd
/// entry, not $HOME: the test's HOME must be spelled out.)
fn openssh(net: &crate::support::NetLab, env: &Env, host: &str, cmd: &str) -> std::process::Output {
    let config = env.path(".ssh/config").display().to_string();
    env.command_in(net, "ssh", &["-F", &config, "-o", "BatchMode=yes", host, cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn user_config(env: &Env, policy: &str) {
    let known = env.path(".ssh/known_hosts").display().to_string();
    env.write(".ssh/config", format!("UserKnownHostsFile {known}\nStrictHostKeyChecking {policy}\n").as_bytes());
}

#[test]
fn openssh_and_hop_share_known_hosts_entries() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    // hop records, ssh (through the stanzas `hop config` writes) trusts them strictly.
    let env = Env::net(net);
    user_config(&env, "yes");
    env.hop_in(net, &["--accept-new", "sample-web", "--", "true"], b"").code(0);
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let _masters = Masters { net, env: &env, hosts: &["sample-web", "sample-bastion"] };
    let out = openssh(net, &env, "sample-web", "hostname");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-web\n", "{}", String::from_utf8_lossy(&out.stderr));
    // ssh records (accept-new, through hop's stanzas), hop trusts what it wrote.
    let env = Env::net(net);
    user_config(&env, "accept-new");
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let _masters = Masters { net, env: &env, hosts: &["sample-web", "sample-bastion"] };
    let out = openssh(net, &env, "sample-web", "true");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    assert!(known.contains(&net.id("sample-web")), "ssh recorded web under its instance id: {known}");
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
}

/// Ends the OpenSSH masters of `hosts` (`ssh -O exit`) when dropped, so a failing test leaves
/// no master behind for ControlPersist's ten minutes.
struct Masters<'a> {
    net: &'a crate::support::NetLab,
    env: &'a Env,
    hosts: &'a [&'a str],
}

impl Masters<'_> {
    /// `ssh -O CMD HOST` through the config: (success, stderr).
    fn control(&self, cmd: &str, host: &str) -> (bool, String) {
        let config = self.env.path(".ssh/config").display().to_string();
        let out = self.env.command_in(self.net, "ssh", &["-F", &config, "-O", cmd, host]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The PID of the master `ssh -O check` reports.
    fn pid(&self, host: &str) -> u32 {
        let (ok, err) = self.control("check", host);
        assert!(ok, "no master for {host}: {err}");
        let pid = err.split("pid=").nth(1).and_then(|r| r.split(')').next()).and_then(|p| p.parse().ok());
        pid.unwrap_or_else(|| panic!("no pid in {err:?}"))
    }
}

impl Drop for Masters<'_> {
    fn drop(&mut self) {
        for host in self.hosts {
            let _ = self.control("exit", host);
        }
    }
}

/// Lines of `log` written since byte `from`.
fn log_since(log: &std::path::Path, from: usize) -> String {
    String::from_utf8_lossy(&std::fs::read(log).unwrap()[from..]).into_owned()
}

#[test]
fn openssh_through_the_generated_config_reuses_one_connection_per_host() {
    let net = netlab_or_skip!();
    // Exclusive: the sshd logs must show only this test's connections.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    user_config(&env, "yes");
    env.hop_in(net, &["config", "--write"], b"").code(0);
    let dir = env.path(".ssh/hop/cm");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the control socket directory is private");
    let masters = Masters { net, env: &env, hosts: &["sample-web", "sample-bastion"] };
    let logs: Vec<std::path::PathBuf> =
        ["bastion", "web"].iter().map(|h| net.state[*h]["log"].as_str().unwrap().into()).collect();
    let from: Vec<usize> = logs.iter().map(|l| std::fs::read(l).unwrap().len()).collect();
    for _ in 0..2 {
        let out = openssh(net, &env, "sample-web", "hostname");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-web\n", "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Two commands, one authentication on each host: the second `ssh` opened a channel on the
    // web master's connection, which runs through the bastion master's.
    let (bastion, web) = (log_since(&logs[0], from[0]), log_since(&logs[1], from[1]));
    assert_eq!(bastion.matches("Accepted publickey for ec2-user").count(), 1, "{bastion}");
    assert_eq!(web.matches("Accepted publickey for ec2-user").count(), 1, "{web}");
    let sessions: Vec<&str> = web.lines().filter(|l| l.starts_with("Starting session: command")).collect();
    assert_eq!(sessions.len(), 2, "{web}");
    let port = |l: &str| l.split(" port ").nth(1).map(|r| r.split(' ').next().unwrap().to_string());
    assert_eq!(port(sessions[0]), port(sessions[1]), "both sessions on one connection: {web}");
    let sockets = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(sockets, 2, "one control socket per host");
    // `ssh -O exit` ends each master: its process and its socket are gone.
    for host in ["sample-web", "sample-bastion"] {
        let pid = masters.pid(host);
        let (ok, err) = masters.control("exit", host);
        assert!(ok, "ssh -O exit {host}: {err}");
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while proc.exists() && std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(std::time::Instant::now() < deadline, "the master of {host} (pid {pid}) is still running");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!masters.control("check", host).0, "no master for {host} after -O exit");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "sockets removed");
    // Without masters, ssh connects afresh (and becomes the master again).
    let out = openssh(net, &env, "sample-web", "true");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(log_since(&logs[1], from[1]).matches("Accepted publickey for ec2-user").count(), 2);
}

#[test]
fn a_changed_host_key_is_refused_naming_file_line_and_fix() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    // What a rebuilt (or impersonated) web looks like from here: known_hosts holds another key
    // for its instance id than the one it offers. (A fresh key from ssh-keygen, rather than
    // regenerating the shared sshd's key under every other test.)
    let other = env.path("other_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: String = other_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let web = net.id("sample-web");
    let known = env.write(
        ".ssh/known_hosts",
        format!("{} {}\n{web} {other_pub}\n", net.id("sample-bastion"), net.host_key("bastion")).as_bytes(),
    );
    let run = env.hop_in(net, &["sample-web", "--", "true"], b"");
    run.code(255);
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first
            .starts_with(&format!("hop: error: host key of sample-web ({web}) has CHANGED: the server offers SHA256:")),
        "{}",
        run.stderr
    );
    assert!(
        first.contains(&format!("{}:2 has SHA256:", known.display())),
        "names file, line, fingerprint: {}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("ssh-keygen -R {web} -f {}", known.display())), "{}", run.stderr);
    // --accept-new never overrides a changed key, and the entry is left alone.
    let before = std::fs::read(&known).unwrap();
    env.hop_in(net, &["--accept-new", "sample-web", "--", "true"], b"").code(255);
    assert_eq!(std::fs::read(&known).unwrap(), before);
}

#[test]
fn bastion_down_is_a_connection_failure_with_a_hint() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    net.control("stop", &["bastion"]);
    let run = env.hop_in(net, &["sample-web", "--", "true"], b"");
    net.control("restart", &["bastion"]);
    run.code(255);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "hop: error: cannot connect to sample-bastion (203.0.113.10:22): TCP connect: Connection refused (os error 111)"
    );
    assert!(run.stderr.contains("hint: `hop doctor sample-web`"), "{}", run.stderr);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
}

#[test]
fn proxy_lets_openssh_ssh_and_scp_use_the_route() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let hop = env!("CARGO_BIN_EXE_hop");
    let known = env.path(".ssh/known_hosts").display().to_string();
    let key = env.path(".ssh/sample-web.pem").display().to_string();
    let web = net.id("sample-web");
    let common = [
        "-o".to_string(),
        format!("ProxyCommand={hop} proxy %n"),
        "-o".into(),
        format!("HostKeyAlias={web}"),
        "-o".into(),
        format!("UserKnownHostsFile={known}"),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-i".into(),
        key,
    ];
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend(["ec2-user@sample-web", "hostname"]);
    let out = env.command_in(net, "ssh", &args).stdin(Stdio::null()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sample-web\n", "{}", String::from_utf8_lossy(&out.stderr));
    // scp a file through it and check it arrived whole.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let local = env.write("payload.bin", &payload);
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    let dest = format!("ec2-user@sample-web:/tmp/hop-scp-{}", std::process::id());
    let local = local.display().to_string();
    args.extend([local.as_str(), dest.as_str()]);
    let out = env.command_in(net, "scp", &args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "scp: {}", String::from_utf8_lossy(&out.stderr));
    let remote = format!("/tmp/hop-scp-{}", std::process::id());
    let run = env.hop_in(net, &["sample-web", "--", "cksum", &remote, "&&", "rm", &remote], b"");
    run.code(0);
    let local_sum = env.command_in(net, "cksum", &[&local]).output().unwrap();
    let want = String::from_utf8_lossy(&local_sum.stdout).split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let got = run.stdout.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(got, want);
}

#[test]
fn interactive_shell_on_a_pty_follows_resizes_and_restores_the_terminal() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let py = crate::support::python().unwrap().display().to_string();
    let driver = format!("{}/tests/support/pty_drive.py", crate::support::REPO);
    let hop = format!("{} sample-web", env!("CARGO_BIN_EXE_hop"));
    let out = env.command_in(net, &py, &[&driver, "100", "30", &hop]).stdin(Stdio::null()).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("driver: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let transcript = report["transcript"].as_str().unwrap_or_default();
    assert_eq!(report["sizes"], serde_json::json!(["30 100", "40 120"]), "remote stty size: {transcript}");
    assert_eq!(report["exit"], 3, "the shell's exit status: {transcript}");
    assert_eq!(report["modes_after"], report["modes_before"], "terminal modes restored: {transcript}");
}

/// A real ssh-agent holding `key`, stopped (by PID) when dropped.
pub(crate) struct Agent {
    pid: u32,
    pub(crate) sock: std::path::PathBuf,
}

impl Agent {
    pub(crate) fn start(env: &Env, key: &std::path::Path) -> Agent {
        let sock = env.path("agent.sock");
        let out = std::process::Command::new("ssh-agent").arg("-a").arg(&sock).arg("-s").output().expect("ssh-agent");
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .split(';')
            .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID="))
            .and_then(|p| p.parse().ok())
            .expect("ssh-agent printed its PID");
        let agent = Agent { pid, sock };
        let add =
            std::process::Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", &agent.sock).output().expect("ssh-add");
        assert!(add.status.success(), "ssh-add: {}", String::from_utf8_lossy(&add.stderr));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the agent this test started, by PID.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
    }
}

#[test]
fn agent_forwarding_only_with_dash_a_and_only_to_the_final_host() {
    let net = netlab_or_skip!();
    // Exclusive: the bastion's log must show only this test's connection.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    env.trust_both(net);
    let agent = Agent::start(&env, &env.path(".ssh/sample-web.pem"));
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    // Without -A the target sees no agent.
    let run = env.hop_in(net, &["sample-web", "--", "ssh-add", "-l"], b"");
    assert_eq!(run.code, 2, "ssh-add without an agent: {}{}", run.stdout, run.stderr);
    // With -A it lists the forwarded key.
    let run = env.hop_in(net, &["-A", "sample-web", "--", "ssh-add", "-l"], b"");
    run.code(0);
    assert!(run.stdout.contains("ED25519"), "{}", run.stdout);
    let run = env.hop_in(net, &["-A", "sample-web", "--", "echo", "$SSH_AUTH_SOCK"], b"");
    run.code(0);
    assert!(run.stdout.trim().starts_with("/tmp/ssh-"), "agent socket on web: {}", run.stdout);
    // The bastion only relayed TCP: hop opened no session there, so nothing could have asked
    // it for an agent (sshd logs every session it starts).
    let log = std::path::PathBuf::from(net.state["bastion"]["log"].as_str().unwrap());
    let before = std::fs::read(&log).unwrap().len();
    // Directly: a master left by the commands above would carry the jump without a new login.
    env.hop_in(net, &["--no-reuse", "-A", "sample-web", "--", "true"], b"").code(0);
    let after = std::fs::read(&log).unwrap();
    let new = String::from_utf8_lossy(&after[before..]);
    assert!(new.contains("Accepted publickey for ec2-user"), "the bastion saw the jump: {new}");
    assert!(!new.contains("session"), "no session (so no agent) on the bastion: {new}");
}

#[test]
fn authentication_failure_says_what_was_tried() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    // The bastion's key offered to web (the tutorial keeps them apart).
    let wrong = env.path(".ssh/sample-bastion.pem").display().to_string();
    let run = env.hop_in(net, &["-i", &wrong, "sample-web", "--", "true"], b"");
    run.code(255);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!("hop: error: authentication as ec2-user on sample-web failed (tried: {wrong})")
    );
    assert!(run.stderr.contains("hint: pass -i KEY, add the key to ssh-agent"), "{}", run.stderr);
    // No key at all for web: nothing in ~/.ssh, no agent, and no key pushed with EC2 Instance
    // Connect (which hop would do unasked for a host it holds no key for: tests/push.rs).
    std::fs::remove_file(env.path(".ssh/sample-web.pem")).unwrap();
    env.write(".config/hop/config.toml", b"[hosts.sample-web]\nauth = \"key\"\n");
    let run = env.hop_in(net, &["sample-web", "--", "true"], b"");
    run.code(255);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "hop: error: authentication as ec2-user on sample-web failed (tried: no keys found)"
    );
}

/// Run hop on a terminal in the client namespace, answering PROMPT with ANSWERS.
pub(crate) fn on_tty(
    net: &crate::support::NetLab,
    env: &Env,
    prompt: &str,
    answers: &str,
    args: &[&str],
) -> serde_json::Value {
    let py = crate::support::python().unwrap().display().to_string();
    let driver = format!("{}/tests/support/pty_answer.py", crate::support::REPO);
    let mut argv = vec![driver.as_str(), prompt, answers, env!("CARGO_BIN_EXE_hop")];
    argv.extend_from_slice(args);
    let out = env.command_in(net, &py, &argv).stdin(Stdio::null()).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("driver: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
fn on_a_terminal_unknown_keys_are_asked_about_with_their_fingerprint() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let prompt = r"continue connecting \(yes/no\)\? ";
    // "no": refused, nothing recorded.
    let report = on_tty(net, &env, prompt, "no", &["sample-web", "--", "hostname"]);
    assert_eq!(report["exit"], 255, "{report}");
    assert!(!env.path(".ssh/known_hosts").exists());
    // "yes" to both hops: recorded, connected.
    let report = on_tty(net, &env, prompt, "yes", &["sample-web", "--", "hostname"]);
    let transcript = report["transcript"].as_str().unwrap();
    assert_eq!(report["exit"], 0, "{transcript}");
    assert_eq!(report["prompts"], 2, "one question per hop: {transcript}");
    assert!(
        transcript.contains(&format!(
            "The authenticity of host 'sample-bastion' ({}) can't be established.",
            net.id("sample-bastion")
        )),
        "{transcript}"
    );
    assert!(transcript.contains("Key fingerprint is SHA256:"), "{transcript}");
    assert!(transcript.contains("sample-web\r\n"), "{transcript}");
    let known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    assert_eq!(known.lines().count(), 2, "{known}");
}

#[test]
fn encrypted_keys_ask_for_the_passphrase_and_say_when_it_is_wrong() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let locked = env.path(".ssh/web-locked");
    std::fs::copy(env.path(".ssh/sample-web.pem"), &locked).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-q")
        .arg("-p")
        .args(["-N", "s3cret", "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let locked = locked.display().to_string();
    let prompt = r"Enter passphrase for key '[^']*': ";
    let report = on_tty(net, &env, prompt, "s3cret", &["-i", &locked, "sample-web", "--", "hostname"]);
    let transcript = report["transcript"].as_str().unwrap();
    assert_eq!(report["exit"], 0, "{transcript}");
    assert_eq!(report["prompts"], 1, "asked once: {transcript}");
    assert!(!transcript.contains("s3cret"), "the passphrase is not echoed: {transcript}");
    let report = on_tty(net, &env, prompt, "wrong", &["-i", &locked, "sample-web", "--", "hostname"]);
    let transcript = report["transcript"].as_str().unwrap();
    assert_eq!(report["exit"], 255, "{transcript}");
    assert!(transcript.contains("wrong passphrase"), "{transcript}");
    // Without a terminal it cannot ask, and says what to do instead.
    let run = env.hop_in(net, &["-i", &locked, "sample-web", "--", "true"], b"");
    run.code(255);
    assert!(run.stderr.contains("add it to ssh-agent"), "{}", run.stderr);
}

/// `-vv` shows russh's own lines (it logs with the `log` crate, bridged to hop's log).
#[test]
fn dash_vv_shows_what_russh_logs() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    // Directly (a connection master would carry both hops).
    let run = env.hop_in(net, &["--no-reuse", "-vv", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    // russh's client, once per hop: the server accepted the key; then the session channel.
    assert_eq!(run.stderr.matches("DEBUG userauth_success\n").count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("DEBUG channel_open_confirmation\n"), "{}", run.stderr);
    // Without -v, none of it.
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
}

/// Ctrl-C at a question ends hop at once with 130, as Ctrl-C anywhere else, and leaves the
/// terminal as it found it (echo back on after the passphrase question turned it off).
#[test]
fn ctrl_c_at_a_question_exits_130_at_once_with_the_terminal_restored() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let check = |report: &serde_json::Value, what: &str| {
        let transcript = report["transcript"].as_str().unwrap();
        assert_eq!(
            (&report["exit"], &report["prompts"]),
            (&serde_json::json!(130), &serde_json::json!(1)),
            "{what}: {transcript}"
        );
        let took = report["after_last_answer_s"].as_f64().unwrap();
        assert!(took < 1.0, "{what}: exit {took:.2} s after Ctrl-C");
        assert_eq!(report["echo_after"], true, "{what}: echo restored");
        assert!(!transcript.contains("hop: error"), "{what}: Ctrl-C is no error: {transcript}");
    };
    // The host-key question (nothing trusted yet).
    let prompt = r"continue connecting \(yes/no\)\? ";
    let report = on_tty(net, &env, prompt, "^C", &["sample-web", "--", "hostname"]);
    check(&report, "host key");
    assert!(!env.path(".ssh/known_hosts").exists(), "nothing recorded");
    // The passphrase question, with echo off while it waits.
    env.trust_both(net);
    let locked = env.path(".ssh/web-locked");
    std::fs::copy(env.path(".ssh/sample-web.pem"), &locked).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "s3cret", "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let prompt = r"Enter passphrase for key '[^']*': ";
    let report = on_tty(net, &env, prompt, "^C", &["-i", locked.to_str().unwrap(), "sample-web", "--", "hostname"]);
    check(&report, "passphrase");
}

#[test]
fn dash_j_overrides_the_jump_chain_like_ssh() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    // By name and by address (the bastion's public IP is an instance too: its key and alias).
    for jump in ["sample-bastion", "ec2-user@203.0.113.10:22"] {
        let run = env.hop_in(net, &["-J", jump, "sample-web", "--", "hostname"], b"");
        run.code(0);
        assert_eq!(run.stdout, "sample-web\n", "-J {jump}");
    }
    let run = env.hop_in(net, &["-J", "sample-bastion", "route", "sample-web"], b"");
    run.code(0);
    assert!(run.stdout.contains("route    via sample-bastion (-J)\n"), "{}", run.stdout);
    // A host outside the inventory is dialled as given: here it cannot be reached.
    let run = env.hop_in(net, &["-J", "198.51.100.99", "sample-web", "--", "true"], b"");
    run.code(255);
    assert!(
        run.stderr.starts_with("hop: error: cannot connect to 198.51.100.99 (198.51.100.99:22): "),
        "{}",
        run.stderr
    );
    let run = env.hop_in(net, &["-J", "bastion:0", "sample-web", "--", "true"], b"");
    run.code(2);
    assert!(run.stderr.contains("invalid jump host \"bastion:0\""), "{}", run.stderr);
}

/// A TCP relay in the client namespace on 127.0.0.1:PORT to the bastion's sshd, for 30 s at
/// most: a jump host on another port that is no instance. Killed (by PID) when dropped.
struct Relay {
    child: std::process::Child,
    port: u16,
}

const RELAY: &str = r#"
import socket, sys, threading, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
srv.settimeout(1)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    u = socket.create_connection((sys.argv[1], 22), timeout=5)
    u.settimeout(None)
    c.settimeout(None)
    for a, b in ((c, u), (u, c)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
"#;

impl Relay {
    fn start(net: &crate::support::NetLab, env: &Env, to: &str) -> Relay {
        use std::io::BufRead;
        let py = crate::support::python().unwrap().display().to_string();
        let mut child = env.command_in(net, &py, &["-c", RELAY, to]).stdin(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|e| panic!("relay port {line:?}: {e}"));
        Relay { child, port }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `-J HOST:PORT` for a host that is no instance is known as `[HOST]:PORT`, as ssh records it:
/// recorded that way with --accept-new, found that way next time.
#[test]
fn a_jump_host_on_another_port_is_known_as_host_and_port() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let bastion = net.state["bastion"]["public_ip"].as_str().unwrap();
    let relay = Relay::start(net, &env, bastion);
    // Not an instance, so no key file of its own: the default identity is the bastion's key.
    std::fs::copy(env.path(".ssh/sample-bastion.pem"), env.path(".ssh/id_ed25519")).unwrap();
    let jump = format!("ec2-user@127.0.0.1:{}", relay.port);
    let run = env.hop_in(net, &["--accept-new", "-J", &jump, "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    let known = std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap();
    let added: Vec<&str> = known.lines().skip(2).collect();
    assert_eq!(added.len(), 1, "{known}");
    assert!(added[0].starts_with(&format!("[127.0.0.1]:{} ssh-", relay.port)), "{known}");
    assert_eq!(added[0].split(' ').nth(2), net.host_key("bastion").split(' ').nth(1), "the bastion's key: {known}");
    // Found under that name: no question, no --accept-new needed.
    let run = env.hop_in(net, &["-J", &jump, "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(std::fs::read_to_string(env.path(".ssh/known_hosts")).unwrap(), known);
}

#[test]
fn a_stale_cached_address_is_refreshed_once_and_retried() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["route", "sample-web"], b"").code(0);
    // The cache says web moved (as after a stop/start); EC2 knows better.
    let dir = std::fs::read_dir(env.path(".cache/hop")).unwrap().next().unwrap().unwrap().path();
    let path = dir.join("us-east-1.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"10.0.1.10\"", "\"10.0.1.99\"");
    std::fs::write(&path, text).unwrap();
    let run = env.hop_in(net, &["-v", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert!(run.stderr.contains("refreshing discovery"), "{}", run.stderr);
}

/// A fresh key no authorized_keys lists, and (with `sign`) its certificate from the lab's user
/// CA for principal ec2-user, as `ssh-keygen -s` makes them.
fn fresh_key(net: &crate::support::NetLab, env: &Env, name: &str, sign: bool) -> std::path::PathBuf {
    let key = env.path(&format!(".ssh/{name}"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("ssh-keygen").args(args).output().expect("ssh-keygen");
        assert!(out.status.success(), "ssh-keygen {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()]);
    if sign {
        let ca = net.state["keys"]["user_ca"].as_str().unwrap();
        run(&["-q", "-s", ca, "-I", "hop-test", "-n", "ec2-user", "-V", "-5m:+1h", &format!("{}.pub", key.display())]);
    }
    key
}

#[test]
fn openssh_certificates_from_a_file_or_the_agent() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    env.trust_both(net);
    // KEY-cert.pub beside -i KEY: the certificate gets in although the key is listed nowhere.
    let certified = fresh_key(net, &env, "certified", true);
    assert!(env.path(".ssh/certified-cert.pub").is_file());
    let key = certified.display().to_string();
    let run = env.hop_in(net, &["-i", &key, "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    // The same kind of key without a certificate is refused: the certificate did it.
    let plain = fresh_key(net, &env, "plain", false).display().to_string();
    env.hop_in(net, &["-i", &plain, "sample-web", "--", "true"], b"").code(255);
    // From ssh-agent (ssh-add loads KEY-cert.pub with KEY), with no key file for web.
    std::fs::remove_file(env.path(".ssh/sample-web.pem")).unwrap();
    let agent = Agent::start(&env, &certified);
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
}

#[test]
fn rsync_works_through_hop_proxy() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    if std::process::Command::new("rsync").arg("--version").output().is_err() {
        crate::support::unavailable("rsync not installed (scripts/install-test-deps.sh installs it)");
        return;
    }
    let env = Env::net(net);
    env.trust_both(net);
    let src = env.path("tree");
    for (name, size) in [("a.bin", 70_000usize), ("sub/b.txt", 1_234), ("sub/deeper/c", 0)] {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        env.write(&format!("tree/{name}"), &bytes);
    }
    let rsh = format!(
        "ssh -o ProxyCommand='{} proxy %n' -o HostKeyAlias={} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \
         -o BatchMode=yes -i {}",
        env!("CARGO_BIN_EXE_hop"),
        net.id("sample-web"),
        env.path(".ssh/known_hosts").display(),
        env.path(".ssh/sample-web.pem").display()
    );
    let dest = format!("/tmp/hop-rsync-{}", std::process::id());
    let out = env
        .command_in(
            net,
            "rsync",
            &["-a", "-e", &rsh, &format!("{}/", src.display()), &format!("ec2-user@sample-web:{dest}/")],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {}", String::from_utf8_lossy(&out.stderr));
    let run = env.hop_in(
        net,
        &[
            "sample-web",
            "--",
            "cd",
            &dest,
            "&&",
            "find",
            ".",
            "-type",
            "f",
            "|",
            "sort",
            "|",
            "xargs",
            "cksum",
            "&&",
            "rm",
            "-r",
            &dest,
        ],
        b"",
    );
    run.code(0);
    let local = env
        .command_in(net, "sh", &["-c", &format!("cd {} && find . -type f | sort | xargs cksum", src.display())])
        .output()
        .unwrap();
    assert_eq!(run.stdout, String::from_utf8_lossy(&local.stdout));
}
