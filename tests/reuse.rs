//! Connection reuse (DESIGN §5a) on the namespace bed: the first command leaves a background
//! master holding the bastion's (and the target's) connection, later commands open only
//! channels through it; a master that is gone or not trustworthy is never used, and the command
//! connects directly. Every Env has its own XDG_RUNTIME_DIR, and its Drop kills the masters it
//! started (by PID).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, is_master_process};

/// The sshd log of `host` ("bastion" or "web").
fn log_of(net: &NetLab, host: &str) -> PathBuf {
    PathBuf::from(net.state[host]["log"].as_str().expect("log path"))
}

fn log_len(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.len()).unwrap_or(0)
}

/// What `path` logged after its first `from` bytes.
fn log_since(path: &Path, from: usize) -> String {
    let all = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&all[from.min(all.len())..]).into_owned()
}

/// A change to the masters' directory or socket, and its undoing.
type Change<'a> = Box<dyn Fn() + 'a>;

fn auths(text: &str) -> usize {
    text.matches("Accepted publickey for ec2-user").count()
}

/// Wait (bounded) until `pid` is no live master.
fn ends_within(pid: u32, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if !is_master_process(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    !is_master_process(pid)
}

/// The one socket in the masters' directory.
fn the_socket(env: &Env) -> PathBuf {
    let socks: Vec<PathBuf> = std::fs::read_dir(env.masters_dir())
        .expect("masters dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sock"))
        .collect();
    assert_eq!(socks.len(), 1, "one master socket: {socks:?}");
    socks[0].clone()
}

#[test]
fn ten_commands_authenticate_once_on_each_host() {
    let net = netlab_or_skip!();
    // Exclusive: the sshd logs must show only this test's connections.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let (bastion, web) = (log_of(net, "bastion"), log_of(net, "web"));
    let (b0, w0) = (log_len(&bastion), log_len(&web));
    for n in 0..10 {
        let run = env.hop_in(net, &["sample-web", "--", "echo", &format!("run{n}")], b"");
        run.code(0);
        assert_eq!(run.stdout, format!("run{n}\n"));
        assert_eq!(run.stderr, "");
    }
    let (b, w) = (log_since(&bastion, b0), log_since(&web, w0));
    assert_eq!(auths(&b), 1, "one authentication on the bastion for ten commands:\n{b}");
    assert_eq!(auths(&w), 1, "one authentication on web for ten commands:\n{w}");
    assert_eq!(env.masters().len(), 1, "one master");
    // `hop proxy` uses the same master's bastion connection: still one authentication there.
    for _ in 0..3 {
        let run = env.hop_in(net, &["proxy", "sample-web"], b"");
        run.code(0);
        assert!(run.stdout.starts_with("SSH-2.0-OpenSSH"), "{}", run.stdout);
    }
    let b = log_since(&bastion, b0);
    assert_eq!(auths(&b), 1, "hop proxy reused the bastion connection:\n{b}");
    // Exit status, signals and separate streams come through the master unchanged.
    let run = env.hop_in(net, &["sample-web", "--", "echo", "out;", "echo", "err", ">&2;", "exit", "7"], b"");
    run.code(7);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("out\n", "err\n"));
    env.hop_in(net, &["sample-web", "--", "kill", "-TERM", "$$"], b"").code(128 + 15);
    let run = env.hop_in(net, &["sample-web", "--", "wc", "-c"], b"hello");
    run.code(0);
    assert_eq!(run.stdout.trim(), "5");
    // --no-reuse connects directly: a new authentication on each host.
    env.hop_in(net, &["--no-reuse", "sample-web", "--", "true"], b"").code(0);
    assert_eq!(auths(&log_since(&bastion, b0)), 2);
    assert_eq!(auths(&log_since(&web, w0)), 2);
}

#[test]
fn a_killed_master_is_survived() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let masters = env.masters();
    assert_eq!(masters.len(), 1, "a master was left behind");
    // SAFETY: kill(2) of the master this test started, by PID.
    unsafe { libc::kill(masters[0] as i32, libc::SIGKILL) };
    assert!(ends_within(masters[0], Duration::from_secs(10)));
    // Its socket is still there, and stale: removed, and the command connects all the same.
    let run = env.hop_in(net, &["-vv", "sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    assert!(run.stderr.contains("removing the stale socket"), "{}", run.stderr);
    let again = env.masters();
    assert_eq!(again.len(), 1, "a new master");
    assert_ne!(again[0], masters[0]);
}

#[test]
fn sockets_and_directories_of_other_users_are_refused() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let dir = env.masters_dir();
    let sock = the_socket(&env);
    let chown = |path: &Path, uid: u32| {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; lchown(2) has no other preconditions.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, u32::MAX) }, 0, "chown {}", path.display());
    };
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    // 65534: nobody. Each case: the command works (directly) and says at debug why.
    let cases: [(&str, Change, Change); 3] = [
        ("belongs to uid 65534", Box::new(|| chown(&sock, 65534)), Box::new(|| chown(&sock, 0))),
        ("is open to other users", Box::new(|| chmod(&dir, 0o777)), Box::new(|| chmod(&dir, 0o700))),
        ("belongs to uid 65534", Box::new(|| chown(&dir, 65534)), Box::new(|| chown(&dir, 0))),
    ];
    let web = log_of(net, "web");
    for (why, spoil, restore) in cases {
        spoil();
        let before = log_len(&web);
        let run = env.hop_in(net, &["-vv", "sample-web", "--", "hostname"], b"");
        restore();
        run.code(0);
        assert_eq!(run.stdout, "sample-web\n");
        assert!(run.stderr.contains(why), "{why}: {}", run.stderr);
        assert!(run.stderr.contains("connecting directly"), "{}", run.stderr);
        // Direct: the command authenticated on web itself.
        assert!(auths(&log_since(&web, before)) >= 1, "a direct connection to web");
    }
    assert_eq!(env.masters().len(), 1, "no second master was started beside a refused socket");
}

#[test]
fn an_idle_master_ends_itself() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.write(".config/hop/config.toml", b"reuse_idle = \"2s\"\n");
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let masters = env.masters();
    assert_eq!(masters.len(), 1);
    assert!(ends_within(masters[0], Duration::from_secs(30)), "the idle master ended");
    let left: Vec<_> = std::fs::read_dir(env.masters_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sock") || n.ends_with(".json"))
        .collect();
    assert!(left.is_empty(), "it removed its socket and sidecar: {left:?}");
    // reuse = false: no master at all.
    env.write(".config/hop/config.toml", b"reuse = false\n");
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    assert!(env.masters().is_empty());
}

#[test]
fn hop_stop_lists_and_ends_masters() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let run = env.hop_in(net, &["stop"], b"");
    run.code(0);
    assert_eq!(run.stdout, "no connection masters\n");
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let pid = env.masters()[0];
    let run = env.hop_in(net, &["stop", "nomatch"], b"");
    assert_eq!(run.stdout, "no connection masters match nomatch\n");
    assert!(is_master_process(pid));
    let run = env.hop_in(net, &["stop", "web"], b"");
    run.code(0);
    let want = format!("ended master for sample-bastion (pid {pid}): targets sample-web, up ");
    assert!(run.stdout.starts_with(&want), "{}", run.stdout);
    assert!(ends_within(pid, Duration::from_secs(5)));
    assert!(env.masters().is_empty());
    // The next command starts a new one.
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    assert_eq!(env.masters().len(), 1);
}

#[test]
fn with_dash_a_the_agent_reaches_the_final_host_only_and_never_the_master() {
    let net = netlab_or_skip!();
    // Exclusive: the bastion's log must show only this test's sessions.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::net(net);
    env.trust_both(net);
    let agent = crate::ssh::Agent::start(&env, &env.path(".ssh/sample-web.pem"));
    env.set("SSH_AUTH_SOCK", &agent.sock.display().to_string());
    let bastion = log_of(net, "bastion");
    let b0 = log_len(&bastion);
    // A master holding web, started without -A.
    let run = env.hop_in(net, &["sample-web", "--", "ssh-add", "-l"], b"");
    assert_eq!(run.code, 2, "no agent without -A: {}{}", run.stdout, run.stderr);
    // -A: through the master's bastion connection, the command's own session on web.
    let run = env.hop_in(net, &["-A", "sample-web", "--", "ssh-add", "-l"], b"");
    run.code(0);
    assert!(run.stdout.contains("ED25519"), "{}", run.stdout);
    // The held connection never got the agent.
    let run = env.hop_in(net, &["sample-web", "--", "ssh-add", "-l"], b"");
    assert_eq!(run.code, 2, "the held session has no agent: {}{}", run.stdout, run.stderr);
    let b = log_since(&bastion, b0);
    assert_eq!(auths(&b), 1, "every command went through the master:\n{b}");
    assert!(!b.contains("session"), "no session (so no agent) on the bastion:\n{b}");
    assert_eq!(env.masters().len(), 1);
}

#[test]
fn the_master_refuses_a_client_of_another_user() {
    let net = netlab_or_skip!();
    // Exclusive: the end counts authentications in web's sshd log, which must show only this
    // test's connections (another test's command authenticating there meanwhile failed it).
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let sock = the_socket(&env);
    let dir = env.masters_dir();
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    // Let nobody (65534) reach the socket, as a careless umask or a shared directory would:
    // the master itself must still refuse to talk to another uid (SO_PEERCRED).
    let traversed = [env.home.path().to_path_buf(), dir.parent().unwrap().to_path_buf(), dir.clone()];
    for d in &traversed {
        chmod(d, 0o711);
    }
    chmod(&sock, 0o666);
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect(sys.argv[1])\n\
                  print(repr(s.recv(100)))";
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script])
        .arg(&sock)
        .output()
        .expect("run setpriv");
    for d in &traversed {
        chmod(d, 0o700);
    }
    chmod(&sock, 0o600);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nobody could not even connect: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said.trim(), "b''", "the master closed without a word (no SSH banner)");
    // It still serves its own user.
    let web = log_of(net, "web");
    let before = log_len(&web);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    assert_eq!(auths(&log_since(&web, before)), 0, "through the held connection");
}

#[test]
fn hop_forward_uses_the_masters_bastion_connection() {
    let net = netlab_or_skip!();
    // Exclusive: the sshd logs must show only this test's connections.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    let (bastion, web) = (log_of(net, "bastion"), log_of(net, "web"));
    let (b0, w0) = (log_len(&bastion), log_len(&web));
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let server = crate::forward::WebServer::start(net, &env, 18095);
    let spec = format!("21095:localhost:{}", server.port);
    let mut fwd = crate::forward::Forwarder::start(net, &env, &["sample-web", &spec]);
    let (ok, body) = crate::forward::curl(net, &env, &["http://127.0.0.1:21095/small"]);
    assert!(ok, "{body}");
    assert_eq!(body, "hello through the tunnel\n");
    assert_eq!(fwd.interrupt(), Some(130));
    let (b, w) = (log_since(&bastion, b0), log_since(&web, w0));
    assert_eq!(auths(&b), 1, "the forward went through the master's bastion connection:\n{b}");
    // The forward's own session on web (its -L/-R/-D semantics stay in the command), beside
    // the master's held one.
    assert_eq!(auths(&w), 2, "{w}");
}

#[test]
fn more_sessions_at_once_than_sshd_allows_on_one_connection() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    // sshd's MaxSessions (50 on the bed, 10 by default) counts one connection's sessions: more
    // at once through the held connection make the master open another connection instead of
    // failing commands.
    let children: Vec<_> = (0..56)
        .map(|n| {
            env.command_in(net, env!("CARGO_BIN_EXE_hop"), &["sample-web", "--", "sleep 4; echo", &n.to_string()])
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("spawn hop")
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "command {n}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{n}\n"));
    }
}

#[test]
fn a_master_whose_bastion_connection_dies_ends_and_the_next_command_starts_another() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    let pid = env.masters()[0];
    // A network failure between the master and the bastion (RST of its TCP connection).
    crate::waits::cut_connections_of(net, pid);
    assert!(ends_within(pid, Duration::from_secs(30)), "the master ended with its connection");
    let run = env.hop_in(net, &["sample-web", "--", "hostname"], b"");
    run.code(0);
    assert_eq!(run.stdout, "sample-web\n");
    let again = env.masters();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0], pid);
}

/// Both ends of the link to a master are russh, whose session loop writes all it has before
/// it reads again, and both windows are far larger than the socket's buffers. A command whose
/// input and output both stream in bulk at once once left the two loops each waiting for the
/// other to read (seen as `hop web -- cat` hanging under CPU load): every end of the link now
/// reads while it writes (`reuse::ReadAhead`). The wait is bounded so that a stall fails
/// instead of hanging the suite; the bound is no speed requirement.
#[test]
fn input_and_output_streaming_at_once_through_the_master_never_stall() {
    use std::io::{Read, Write};
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    env.trust_both(net);
    env.hop_in(net, &["sample-web", "--", "true"], b"").code(0);
    const SIZE: usize = 32 * 1024 * 1024;
    // The output does not wait for the input: both directions are busy from the start.
    let command = format!("head -c {SIZE} /dev/zero & wc -c >&2; wait");
    let mut child = env
        .command_in(net, env!("CARGO_BIN_EXE_hop"), &["sample-web", "--", &command])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn hop");
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x5a_u8; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() {
            if input.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let (mut n, mut buf) = (0usize, vec![0u8; 1 << 16]);
        while let Ok(k @ 1..) = stdout.read(&mut buf) {
            n += k;
        }
        n
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            // Our own child, by PID; the master ends with the Env.
            let _ = child.kill();
            let _ = child.wait();
            panic!("stalled: {SIZE} bytes each way did not get through the master within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    writer.join().unwrap();
    let (received, said) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(received, SIZE, "every byte of the output arrived");
    assert_eq!(said.trim(), SIZE.to_string(), "every byte of the input arrived");
}
