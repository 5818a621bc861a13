//! Every wait is bounded and says what it waited for; `hop forward` gives up on what retrying
//! cannot fix and follows a bastion to its new address; a host-key verdict on a cached route is
//! checked against EC2 first. In the namespace test bed of the SSH tests.
//!
//! The blackhole: an instance of the lab's private subnet at 10.0.1.77, an address no namespace
//! has, whose ARP entry on the bastion (and on web) points at a MAC nobody has. SYNs to it
//! vanish without an answer, as when the target's security group drops the bastion (the
//! kernel retries for ~127 s), not the quick "no route to host" of a missing neighbour.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::forward::Forwarder;
use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, REPO, Run, python};

const BLACKHOLE: &str = "10.0.1.77";

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `tests/support/ec2_admin.py ARGS` against the lab's moto (inside the client namespace).
fn ec2_admin(net: &NetLab, args: &[&str]) -> String {
    let py = python().unwrap();
    let script = format!("{REPO}/tests/support/ec2_admin.py");
    let endpoint = net.state["moto"]["endpoint"].as_str().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", net.ns()])
        .arg(py)
        .args([script.as_str(), "--endpoint", endpoint])
        .args(args)
        .output()
        .expect("run ec2_admin.py");
    assert!(out.status.success(), "ec2_admin.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The instance `blackholed-web` at `BLACKHOLE`, made once per run (tests share the lab).
fn blackholed(net: &NetLab) -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let id = ec2_admin(net, &["web", "blackholed-web", BLACKHOLE]);
        // On the bastion, and on web (a forward's channel is opened by web).
        for (ns, dev) in [("bastion_ns", "to-web"), ("web_ns", "to-bastion")] {
            let ns = net.state[ns].as_str().unwrap();
            let mac = "02:00:00:00:00:77";
            ip(&["-n", ns, "neigh", "replace", BLACKHOLE, "lladdr", mac, "dev", dev, "nud", "permanent"]);
        }
        id
    })
}

/// `hop ARGS` in the client namespace, killed after `within` (then code -1): a hang fails the
/// test instead of stalling the run.
fn hop_bounded(net: &NetLab, env: &Env, args: &[&str], within: Duration) -> Run {
    let started = Instant::now();
    let mut child = env.command_in(net, env!("CARGO_BIN_EXE_hop"), args).stdin(Stdio::null()).spawn().unwrap();
    while child.try_wait().unwrap().is_none() && started.elapsed() < within {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Abort (RST) the TCP connections process `pid` holds in the client namespace, as a network
/// failure would, leaving every other test's connections alone.
pub(crate) fn cut_connections_of(net: &NetLab, pid: u32) {
    let out =
        Command::new("ip").args(["netns", "exec", net.ns(), "ss", "-tnpH", "state", "established"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut cut = 0;
    for line in text.lines().filter(|l| l.contains(&format!("pid={pid},"))) {
        // Recv-Q Send-Q Local:Port Peer:Port Process
        let local = line.split_whitespace().nth(2).unwrap();
        let port = local.rsplit(':').next().unwrap();
        ip(&["netns", "exec", net.ns(), "ss", "-K", "state", "established", "sport", "=", &format!(":{port}")]);
        cut += 1;
    }
    assert!(cut > 0, "hop (pid {pid}) holds no TCP connection:\n{text}");
}

/// Wait (bounded) for a child to exit; its code, or None if it is still running.
fn exit_within(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Bash in the client namespace: connect to 127.0.0.1:PORT and read until the far end closes
/// (at most 15 s). (seconds it took, whether the far end closed).
fn held_open(net: &NetLab, env: &Env, port: u16) -> (f64, bool) {
    let t = Instant::now();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && timeout 15 cat <&3 >/dev/null");
    let out = env.command_in(net, "bash", &["-c", &script]).stdin(Stdio::null()).output().unwrap();
    (t.elapsed().as_secs_f64(), out.status.success())
}

#[test]
fn a_target_behind_a_dropping_security_group_fails_within_the_connect_timeout() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    blackholed(net);
    let env = Env::net(net);
    env.trust_both(net);
    // The route comes from the cache, as after any earlier command: the failure asks EC2 once,
    // which gives the same route, so it is not tried a second time.
    env.hop_in(net, &["route", "blackholed-web"], b"").code(0);
    let limit = Duration::from_secs(5);
    let open = "opening a connection to 10.0.1.77:22 through sample-bastion: timed out after 3s";
    // Through a connection master the master's own 3 s may run out first: it relays its
    // refusal, which says the same with the channel-open wording in front.
    let relayed = "opening a connection to 10.0.1.77:22 through sample-bastion: refused (connect failed): timed out \
                   after 3s";
    let timed_out = |stderr: &str| stderr.contains(open) || stderr.contains(relayed);

    let run =
        hop_bounded(net, &env, &["--connect-timeout", "3", "blackholed-web", "--", "true"], Duration::from_secs(60));
    eprintln!("hop TARGET: exit {} after {:.1}s", run.code, run.elapsed.as_secs_f64());
    run.code(255);
    assert!(run.elapsed < limit, "took {:?}: {}", run.elapsed, run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        [open, relayed].iter().any(|why| first
            == format!("hop: error: cannot connect to blackholed-web (10.0.1.77:22): {why} (--connect-timeout)")),
        "{first}"
    );

    let run =
        hop_bounded(net, &env, &["--connect-timeout", "3", "proxy", "blackholed-web", "22"], Duration::from_secs(60));
    eprintln!("hop proxy: exit {} after {:.1}s", run.code, run.elapsed.as_secs_f64());
    run.code(255);
    assert!(run.elapsed < limit, "took {:?}: {}", run.elapsed, run.stderr);
    assert!(run.stderr.contains("cannot connect to blackholed-web (10.0.1.77:22): "), "{}", run.stderr);
    assert!(timed_out(&run.stderr), "{}", run.stderr);

    let run = hop_bounded(
        net,
        &env,
        &["--connect-timeout", "3", "forward", "blackholed-web", "21330"],
        Duration::from_secs(60),
    );
    eprintln!("hop forward: exit {} after {:.1}s", run.code, run.elapsed.as_secs_f64());
    run.code(255);
    assert!(run.elapsed < limit, "took {:?}: {}", run.elapsed, run.stderr);
    assert!(timed_out(&run.stderr), "{}", run.stderr);
    assert!(
        !run.stderr.contains("hop: forwarding"),
        "nothing is announced before the first connection: {}",
        run.stderr
    );

    let run = hop_bounded(
        net,
        &env,
        &["--connect-timeout", "3", "doctor", "blackholed-web", "--probe", "--json"],
        Duration::from_secs(60),
    );
    eprintln!("hop doctor --probe: exit {} after {:.1}s", run.code, run.elapsed.as_secs_f64());
    run.code(1);
    assert!(run.elapsed < limit, "took {:?}: {}", run.elapsed, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let target =
        report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "probe.target").expect("probe.target");
    assert_eq!(target["status"], "problem", "{target}");
    let summary = target["summary"].as_str().unwrap();
    assert!(summary.starts_with("sample-bastion could not open 10.0.1.77:22: timed out after 3s"), "{summary}");

    // A port nothing listens on: the server's own reason reaches the user.
    let run = hop_bounded(net, &env, &["--connect-timeout", "3", "proxy", "sample-web", "2"], Duration::from_secs(60));
    run.code(255);
    assert!(
        run.stderr.contains(
            "cannot connect to sample-web (10.0.1.10:2): opening a connection to 10.0.1.10:2 through sample-bastion: \
             refused (connect failed): Connection refused"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn forwarded_connections_and_socks_requests_are_bounded_and_say_why_they_failed() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    blackholed(net);
    let env = Env::net(net);
    env.trust_both(net);
    let fwd = Forwarder::start(
        net,
        &env,
        &["--connect-timeout", "3", "sample-web", "21331:10.0.1.77:80", "21332:localhost:2", "-D", "21333"],
    );
    fwd.wait_for("forward: connected", Duration::from_secs(20));
    // The target's open towards a dropping host: closed after the timeout, with the reason.
    let (secs, closed) = held_open(net, &env, 21331);
    eprintln!("forward to a blackholed host closed after {secs:.1}s");
    assert!(closed && secs < 5.0, "closed {closed} after {secs:.1}s");
    fwd.wait_for("sample-web cannot open 10.0.1.77:80: timed out after 3s", Duration::from_secs(2));
    // Refused: the server's words.
    let (secs, closed) = held_open(net, &env, 21332);
    assert!(closed && secs < 5.0, "closed {closed} after {secs:.1}s");
    fwd.wait_for(
        "sample-web cannot open localhost:2: refused (connect failed): Connection refused",
        Duration::from_secs(2),
    );
    // A SOCKS client that never sends its request.
    let (secs, closed) = held_open(net, &env, 21333);
    eprintln!("silent SOCKS client closed after {secs:.1}s");
    assert!(closed && secs < 5.0, "closed {closed} after {secs:.1}s");
    fwd.wait_for("SOCKS: no complete request within 3s", Duration::from_secs(2));
}

#[test]
fn forward_exits_on_an_unknown_host_key_without_a_terminal_instead_of_retrying() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let run =
        hop_bounded(net, &env, &["--connect-timeout", "3", "forward", "sample-web", "21334"], Duration::from_secs(30));
    eprintln!("hop forward, unknown key: exit {} after {:.1}s", run.code, run.elapsed.as_secs_f64());
    run.code(255);
    assert!(run.elapsed < Duration::from_secs(6), "took {:?}", run.elapsed);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("hop: error: host key of sample-bastion (") && first.contains("is not known"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(!run.stderr.contains("hop: forwarding") && !run.stderr.contains("retrying"), "{}", run.stderr);
    // Keys the target refuses: the same.
    env.trust_both(net);
    let wrong = env.path(".ssh/sample-bastion.pem").display().to_string();
    let args = ["--connect-timeout", "3", "-i", &wrong, "forward", "sample-web", "21334"];
    let run = hop_bounded(net, &env, &args, Duration::from_secs(30));
    run.code(255);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("hop: error: authentication as ec2-user on sample-web failed"), "{}", run.stderr);
    assert!(!run.stderr.contains("hop: forwarding") && !run.stderr.contains("retrying"), "{}", run.stderr);
}

#[test]
fn forward_ends_when_a_reconnect_meets_a_changed_host_key() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    // --no-reuse: the test cuts the forwarder's own TCP connections (a master would hold them).
    let mut fwd =
        Forwarder::start(net, &env, &["--no-reuse", "--connect-timeout", "3", "sample-web", "21335:10.0.1.10:22"]);
    fwd.wait_for("forward: connected", Duration::from_secs(20));
    // known_hosts now holds another key for the bastion (as if someone intercepted it).
    let text = format!(
        "{} {}\n{} {}\n",
        net.id("sample-bastion"),
        net.host_key("web"),
        net.id("sample-web"),
        net.host_key("web")
    );
    env.write(".ssh/known_hosts", text.as_bytes());
    cut_connections_of(net, fwd.child.id());
    let code = exit_within(&mut fwd.child, Duration::from_secs(20));
    let log = fwd.log.lock().unwrap().clone();
    assert_eq!(code, Some(255), "hop forward keeps retrying a changed host key:\n{log}");
    assert!(log.contains("has CHANGED"), "{log}");
}

/// Undoes the moving-bastion test's changes to the lab, however it ends: its addresses and
/// routes, and its own sshd on the bastion.
struct Moved {
    commands: Vec<Vec<String>>,
    sshd: Option<std::process::Child>,
}

impl Drop for Moved {
    fn drop(&mut self) {
        if let Some(mut sshd) = self.sshd.take() {
            // SAFETY: kill(2) of the sshd this test started, by PID.
            unsafe { libc::kill(sshd.id() as i32, libc::SIGTERM) };
            let _ = sshd.wait();
        }
        for c in self.commands.iter().rev() {
            let _ = Command::new("ip").args(c).output();
        }
    }
}

impl Moved {
    /// `ip ARGS` now, and `ip UNDO` when dropped.
    fn apply(&mut self, args: &[&str], undo: &[&str]) {
        ip(args);
        self.commands.push(undo.iter().map(|s| s.to_string()).collect());
    }
}

#[test]
fn forward_follows_a_bastion_to_its_new_public_address() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    // A VPC of this test's own: moving-bastion in front of moving-web (10.0.1.10, the web
    // namespace). The bastion namespace gets moving-bastion's public IP and the one it will
    // have after its "restart", with an sshd of this test's own answering on both.
    let made: Value = serde_json::from_str(&ec2_admin(net, &["vpc", "moving"])).unwrap();
    let bastion_id = made["bastion"]["id"].as_str().unwrap().to_string();
    let old_ip = made["bastion"]["public_ip"].as_str().expect("moving-bastion has a public IP").to_string();
    let allocated = ec2_admin(net, &["allocate"]);
    let (new_ip, allocation) = allocated.split_once(' ').unwrap();
    let (client_ns, bastion_ns) = (net.ns().to_string(), net.state["bastion_ns"].as_str().unwrap().to_string());
    let mut moved = Moved { commands: Vec::new(), sshd: None };
    let (old32, new32) = (format!("{old_ip}/32"), format!("{new_ip}/32"));
    for a in [&old32, &new32] {
        moved.apply(
            &["-n", &bastion_ns, "addr", "add", a, "dev", "to-client"],
            &["-n", &bastion_ns, "addr", "del", a, "dev", "to-client"],
        );
    }
    // The client reaches the new address (outside its /24) only once the bastion has it.
    let config = net.state["bastion"]["sshd_config"].as_str().unwrap();
    let (listen_old, listen_new) = (format!("ListenAddress={old_ip}"), format!("ListenAddress={new_ip}"));
    moved.sshd = Some(
        Command::new("ip")
            .args(["netns", "exec", &bastion_ns, "/usr/sbin/sshd", "-D", "-e", "-f", config])
            .args(["-o", &listen_old, "-o", &listen_new])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let env = Env::net(net);
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = format!("exec 3<>/dev/tcp/{old_ip}/22");
    while !env.command_in(net, "bash", &["-c", &probe]).output().unwrap().status.success() {
        assert!(Instant::now() < deadline, "the test's sshd does not answer on {old_ip}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = format!(
        "{bastion_id} {}\n{} {}\n",
        net.host_key("bastion"),
        made["web"]["id"].as_str().unwrap(),
        net.host_key("web")
    );
    env.write(".ssh/known_hosts", text.as_bytes());
    // --no-reuse: the test cuts the forwarder's own TCP connections (a master would hold them).
    let mut fwd =
        Forwarder::start(net, &env, &["--no-reuse", "--connect-timeout", "2", "moving-web", "21336:10.0.1.10:22"]);
    fwd.wait_for("forward: connected", Duration::from_secs(20));
    let banner = |env: &Env| {
        let script = "exec 3<>/dev/tcp/127.0.0.1/21336 && timeout 5 head -c 8 <&3";
        let out = env.command_in(net, "bash", &["-c", script]).stdin(Stdio::null()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(banner(&env), "SSH-2.0-");
    // Stopped and started: a new public IP in EC2; the old one leads nowhere.
    ec2_admin(net, &["associate", allocation, &bastion_id]);
    moved.apply(
        &["-n", &client_ns, "route", "add", &new32, "dev", "to-bastion"],
        &["-n", &client_ns, "route", "del", &new32, "dev", "to-bastion"],
    );
    moved.apply(
        &["-n", &client_ns, "route", "add", "unreachable", &old32],
        &["-n", &client_ns, "route", "del", "unreachable", &old32],
    );
    let t = Instant::now();
    cut_connections_of(net, fwd.child.id());
    fwd.wait_for("the route changed", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while fwd.log.lock().unwrap().matches("forward: connected").count() < 2 {
        assert!(Instant::now() < deadline, "no reconnect to {new_ip}: {}", fwd.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("forward reconnected to the new address {:.1}s after the cut", t.elapsed().as_secs_f64());
    assert_eq!(banner(&env), "SSH-2.0-");
    let log = fwd.log.lock().unwrap().clone();
    assert!(log.contains("looking the route up again"), "{log}");
    assert!(fwd.child.try_wait().unwrap().is_none(), "hop forward must not exit");
    assert_eq!(fwd.interrupt(), Some(130));
}

#[test]
fn a_cached_address_reused_by_another_instance_is_checked_with_ec2_before_any_host_key_verdict() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let web = net.id("sample-web");
    // The instance the cache remembers at 10.0.1.10: since terminated, its address reused by
    // today's sample-web.
    let old = "i-0aaaaaaaaaaaaaaaa";
    for known_old in [true, false] {
        let env = Env::net(net);
        let mut text =
            format!("{} {}\n{web} {}\n", net.id("sample-bastion"), net.host_key("bastion"), net.host_key("web"));
        if known_old {
            // The old instance's key, which today's host does not have.
            text.push_str(&format!("{old} {}\n", net.host_key("bastion")));
        }
        env.write(".ssh/known_hosts", text.as_bytes());
        env.hop_in(net, &["route", "sample-web"], b"").code(0);
        let dir = std::fs::read_dir(env.path(".cache/hop")).unwrap().next().unwrap().unwrap().path();
        let path = dir.join("us-east-1.json");
        let cached = std::fs::read_to_string(&path).unwrap();
        assert!(cached.contains(&web), "{cached}");
        std::fs::write(&path, cached.replace(&web, old)).unwrap();
        let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
        run.code(0);
        assert_eq!(run.stdout, "sample-web\n");
        assert!(!run.stderr.contains("CHANGED") && !run.stderr.contains(old), "known_old {known_old}: {}", run.stderr);
    }
    // On a terminal, a key nobody knows yet is asked about once, naming today's instance.
    let env = Env::net(net);
    env.write(".ssh/known_hosts", format!("{} {}\n", net.id("sample-bastion"), net.host_key("bastion")).as_bytes());
    env.hop_in(net, &["route", "sample-web"], b"").code(0);
    let dir = std::fs::read_dir(env.path(".cache/hop")).unwrap().next().unwrap().unwrap().path();
    let path = dir.join("us-east-1.json");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace(&web, old)).unwrap();
    let prompt = r"continue connecting \(yes/no\)\? ";
    let report = crate::ssh::on_tty(net, &env, prompt, "yes", &["sample-web", "--", "hostname"]);
    let transcript = report["transcript"].as_str().unwrap();
    assert_eq!(report["exit"], 0, "{transcript}");
    assert_eq!(report["prompts"], 1, "{transcript}");
    assert!(transcript.contains(&format!("The authenticity of host 'sample-web' ({web})")), "{transcript}");
    assert!(!transcript.contains(old), "{transcript}");
}
