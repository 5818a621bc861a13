//! The first connect's round trips (issue #11): hop sends its KEXINIT with its version line,
//! its first USERAUTH_REQUEST right behind the SERVICE_REQUEST, and that request signed (no
//! probe waiting for PK_OK). Counted, never timed: `scripts/delay_relay.py` in front of each
//! sshd counts the client's turns (how often the client spoke again after the server had), and
//! sshd's own log tells whether a key was probed first ("Postponed publickey"). Every run is a
//! first connect (`--no-reuse`: no connection master holds it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::netlab_or_skip;
use crate::ssh::Agent;
use crate::support::{Env, NETLAB_STATE, NetLab, REPO};

/// A delaying relay on ADDRESS:2222 in front of the sshd on ADDRESS:22, inside `ns`; killed (by
/// PID) when dropped. Its log has one line per closed connection: "... client flights N".
struct Relay {
    child: Child,
    log: PathBuf,
}

impl Relay {
    /// `delay_ms` one way: the relay reads both sides as data comes, so a turn is counted
    /// when it happens; the delay only keeps the client's replies well apart from the
    /// server's next words on a loaded machine.
    fn start(env: &Env, ns: &str, address: &str, delay_ms: u32) -> Relay {
        let py = crate::support::python().expect("the lab runs, so python is set");
        let log = env.path(&format!("relay-{address}.log"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(py)
            .arg(format!("{REPO}/scripts/delay_relay.py"))
            .args([address, "2222", address, "22", &delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("relay log"))
            .spawn()
            .expect("start delay_relay.py");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut ready).expect("relay says ready");
        assert_eq!(ready.trim(), "ready", "delay_relay.py: {}", std::fs::read_to_string(&log).unwrap_or_default());
        Relay { child, log }
    }

    /// The client turns of the first `n` connections, once they have all closed (the relay
    /// reports a connection when both of its sides are closed: waited for, at most 10 s).
    fn turns(&self, n: usize) -> Vec<u32> {
        let parse = || -> Vec<u32> {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.rsplit_once("client flights ").and_then(|(_, n)| n.trim().parse().ok()))
                .collect()
        };
        for _ in 0..200 {
            if parse().len() >= n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let turns = parse();
        assert_eq!(turns.len(), n, "connections the relay saw close: {}", std::fs::read_to_string(&self.log).unwrap());
        turns
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the relay this test started, by PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Both hosts reached on port 2222, through relays.
fn via_relays(env: &Env) {
    env.write(".config/hop/config.toml", b"[hosts.sample-bastion]\nport = 2222\n[hosts.sample-web]\nport = 2222\n");
}

fn ns(net: &NetLab, host: &str) -> String {
    net.state[format!("{host}_ns")].as_str().expect("namespace name").to_string()
}

/// What sshd logged on `host` while `f` ran.
fn sshd_log_during(net: &NetLab, host: &str, f: impl FnOnce()) -> String {
    let log = PathBuf::from(net.state[host]["log"].as_str().expect("sshd log"));
    let before = std::fs::read(&log).expect("sshd log").len();
    f();
    let after = std::fs::read(&log).expect("sshd log");
    String::from_utf8_lossy(&after[before..]).into_owned()
}

/// Per hop, first contact: 1 version + KEXINIT (+ a guessed key exchange packet the server
/// ignores: its first choice is not ours), 2 key exchange, 3 NEWKEYS + SERVICE_REQUEST + signed
/// USERAUTH_REQUEST, 4 CHANNEL_OPEN, 5 exec (it needs the server's channel number, so it cannot
/// ride with the open), 6 CHANNEL_CLOSE. Without any one of russh patches 0002–0004 it is 7,
/// without all of them 9.
const FIRST_CONTACT: u32 = 6;
/// Once hop remembers the server's first key exchange choice and puts it first too, the guessed
/// packet is the one the server answers (russh 0006): turn 2 is gone. A host met for the first
/// time gets the last server's choice.
const REMEMBERED: u32 = 5;

#[test]
fn client_turns_per_hop_are_six_on_first_contact_and_five_after() {
    let net = netlab_or_skip!();
    // Exclusive: port 2222 on both hosts, and the relays must see only this test's connections.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    via_relays(&env);
    let bastion = Relay::start(&env, &ns(net, "bastion"), "203.0.113.10", 20);
    let web = Relay::start(&env, &ns(net, "web"), "10.0.1.10", 20);
    // Nothing remembered: the guess (hop's own first choice) is wrong, and costs no turn.
    env.hop_in(net, &["--no-reuse", "sample-bastion", "--", "true"], b"").code(0);
    assert_eq!(bastion.turns(1), [FIRST_CONTACT], "client turns, hop direct to the bastion, first contact");
    // Web is new, but gets the bastion's choice, which is web's too. Counted at web; at the
    // bastion: its handshake (2), the direct-tcpip open (1), then web's hop carried inside it.
    env.hop_in(net, &["--no-reuse", "sample-web", "--", "true"], b"").code(0);
    assert_eq!(web.turns(1), [REMEMBERED], "client turns at web, guessed from the bastion");
    assert_eq!(bastion.turns(2)[1], 2 + 1 + REMEMBERED, "client turns at the bastion, hop to web");
    // What was remembered: each server's first choice, the post-quantum hybrid both agreed.
    for file in [net.id("sample-bastion"), net.id("sample-web"), "@last".into()] {
        let remembered = std::fs::read_to_string(env.path(&format!(".cache/hop/kex/{file}"))).unwrap();
        assert_eq!(remembered, "sntrup761x25519-sha512", "{file}");
    }
}

#[test]
fn a_key_file_is_signed_first_without_a_probe() {
    let net = netlab_or_skip!();
    // Exclusive: the hosts' logs must show only this test's connections.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let mut bastion_log = String::new();
    let web_log = sshd_log_during(net, "web", || {
        bastion_log = sshd_log_during(net, "bastion", || {
            env.hop_in(net, &["--no-reuse", "sample-web", "--", "true"], b"").code(0);
        });
    });
    for (host, log) in [("bastion", &bastion_log), ("web", &web_log)] {
        assert!(log.contains("Accepted publickey for ec2-user"), "{host} took the key: {log}");
        assert!(!log.contains("Postponed publickey"), "{host} was asked about the key before it was signed: {log}");
    }
}

#[test]
fn agent_keys_are_signed_first_and_a_refused_key_costs_no_extra_turn() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    env.trust_both(net);
    env.write(".config/hop/config.toml", b"[hosts.sample-web]\nport = 2222\n");
    // No key files: every key comes from the agent, the bastion's first (which web refuses).
    let agent = Agent::start(&env, &env.path(".ssh/sample-bastion.pem"));
    let add = Command::new("ssh-add")
        .arg(env.path(".ssh/sample-web.pem"))
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .expect("ssh-add");
    assert!(add.status.success(), "ssh-add: {}", String::from_utf8_lossy(&add.stderr));
    for key in ["sample-bastion", "sample-web"] {
        std::fs::remove_file(env.path(&format!(".ssh/{key}.pem"))).unwrap();
    }
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let web = Relay::start(&env, &ns(net, "web"), "10.0.1.10", 20);
    let log = sshd_log_during(net, "web", || {
        env.hop_in(net, &["--no-reuse", "sample-web", "--", "true"], b"").code(0);
    });
    assert!(log.contains("Accepted publickey for ec2-user"), "web took the agent's key: {log}");
    assert!(!log.contains("Postponed publickey"), "web was asked about a key before it was signed: {log}");
    // The refused key took one turn, as a probe would have; the accepted one one, not two (and
    // web's key exchange was guessed from the bastion's).
    assert_eq!(web.turns(1), [REMEMBERED + 1], "client turns at web with one refused agent key first");
}

/// A second sshd on web (its config, host key and users), on port 2223, logging at DEBUG1 and
/// offering only `kex`; killed (by PID) when dropped.
struct KexSshd {
    child: Child,
    log: PathBuf,
}

impl KexSshd {
    fn start(net: &NetLab, env: &Env, kex: &str) -> KexSshd {
        let config = net.state["web"]["sshd_config"].as_str().expect("web sshd_config").to_string();
        let log = env.path(&format!("sshd-{kex}.log"));
        let child = Command::new("ip")
            .args(["netns", "exec", &ns(net, "web"), "/usr/sbin/sshd", "-D", "-e", "-f", &config, "-p", "2223"])
            .args(["-o", "LogLevel=DEBUG1", "-o", &format!("KexAlgorithms={kex}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("sshd log"))
            .spawn()
            .expect("start sshd");
        let sshd = KexSshd { child, log };
        // Bounded wait for "Server listening on 10.0.1.10 port 2223".
        for _ in 0..200 {
            if sshd.log().contains("port 2223") {
                return sshd;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sshd on web:2223 did not start: {}", sshd.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KexSshd {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the sshd this test started, by PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[test]
fn sntrup761x25519_is_agreed_with_a_server_that_lacks_mlkem() {
    let net = netlab_or_skip!();
    // Exclusive: port 2223 on web.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.write(".config/hop/config.toml", b"[hosts.sample-web]\nport = 2223\n");
    // The lab's OpenSSH (Debian 12: 9.2) has no mlkem768x25519-sha256; a server offering only
    // the post-quantum hybrid leaves no fallback, so the connect proves the agreement, and
    // sshd's own log names the algorithm.
    for kex in ["sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512"] {
        let sshd = KexSshd::start(net, &env, kex);
        let run = env.hop_in(net, &["--no-reuse", "sample-web", "--", "true"], b"");
        run.code(0);
        let log = sshd.log();
        assert!(log.contains(&format!("kex: algorithm: {kex}")), "sshd agreed {kex}: {log}");
    }
}
