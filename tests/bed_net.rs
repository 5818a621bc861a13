//! The namespace side of the EC2 Instance Connect test bed, checked with OpenSSH and the system
//! resolver, not hop: sample-eice-web is reachable by nothing but the fake EICE's setns, keys
//! pushed into the store open the lab hosts exactly as Amazon's `eic_parse_authorized_keys`
//! decides (our AuthorizedKeysCommand, tests/support/eic_keys.sh), and the endpoints' names
//! resolve to the fake inside the client namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::netlab_or_skip;
use crate::support::{Env, NETLAB_STATE, NetLab, REPO, netlab, python};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A fresh ed25519 key pair in `dir`; returns its path and its public line (no comment).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let line = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    (path, line)
}

/// An ssh config for plain OpenSSH in the client namespace: the bastion as `lab-bastion` with
/// its .pem, the lab's known_hosts (by address) checked strictly, nothing from root's own ssh
/// setup (no agent, no default identities).
fn ssh_config(net: &NetLab, env: &Env) -> PathBuf {
    let bastion_key = net.state["keys"]["sample-bastion"].as_str().unwrap();
    let known = net.state["known_hosts"].as_str().unwrap();
    env.write(
        ".ssh/config",
        format!(
            "Host lab-bastion\n    HostName 203.0.113.10\n    User ec2-user\n    IdentityFile {bastion_key}\n\
             Host *\n    UserKnownHostsFile {known}\n    GlobalKnownHostsFile /dev/null\n    \
             StrictHostKeyChecking yes\n    IdentitiesOnly yes\n    IdentityAgent none\n    BatchMode yes\n    \
             ConnectTimeout 5\n    LogLevel ERROR\n"
        )
        .as_bytes(),
    )
}

/// `ssh -J lab-bastion -i KEY USER@10.0.1.10 CMD` from the client namespace.
fn ssh_web(net: &NetLab, env: &Env, key: &Path, user: &str, cmd: &str) -> Output {
    let config = ssh_config(net, env);
    env.command_in(net, "ssh", &["-F", &config.display().to_string(), "-J", "lab-bastion", "-i"])
        .arg(key)
        .args([&format!("{user}@10.0.1.10"), cmd])
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn sample_eice_web_is_reachable_from_no_other_namespace() {
    let net = netlab_or_skip!();
    let ns = |key: &str| net.state[key].as_str().unwrap().to_string();
    for (from, what) in [("client_ns", "client"), ("bastion_ns", "bastion"), ("web_ns", "web")] {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns(from), "bash", "-c", "exec 3<>/dev/tcp/10.1.1.10/22"])
            .stdin(Stdio::null())
            .output()
            .expect("run bash in a namespace");
        assert!(!out.status.success(), "10.1.1.10 must be unreachable from {what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Network is unreachable"), "{what}: {err}");
    }
    // Its own namespace has nothing but the /24 it sits in (no default route, no other link).
    let out = Command::new("ip").args(["-n", &ns("eice_web_ns"), "-4", "route"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10.1.1.0/24 dev eth0 proto kernel scope link src 10.1.1.10 \n");
    assert_eq!(net.state["eice_web"]["hostname"], "sample-eice-web");
    assert_eq!(net.state["eice_web"]["ip"], "10.1.1.10");
}

#[test]
fn a_block_pushed_for_web_opens_it_with_plain_ssh_through_the_bastion() {
    let net = netlab_or_skip!();
    // The store's files are moto's too: no push of another test in between.
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let web = net.id("sample-web");
    let (key, line) = keypair(env.home.path(), "pushed");
    // Not pushed yet: the key opens nothing.
    let out = ssh_web(net, &env, &key, "ec2-user", "hostname");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"), "{}", text(&out));
    let mark = net.akc_mark();
    net.eic_write_block(&web, "ec2-user", &line, now() + 120, &web);
    let out = ssh_web(net, &env, &key, "ec2-user", "hostname; echo $SSH_CONNECTION");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("sample-web\n10.0.0.4 "), "{stdout}");
    // sshd asked the command (as the package's command is asked: key query, then the signed
    // attempt), and it printed the key for that fingerprint.
    let fingerprint = {
        let out = Command::new("ssh-keygen").arg("-lf").arg(key.with_extension("pub")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
    };
    let calls = net.akc_calls_since(mark);
    let ours: Vec<&String> =
        calls.iter().filter(|c| c.contains(" host=web user=ec2-user ") && c.contains(&fingerprint)).collect();
    assert!(!ours.is_empty() && ours.iter().all(|c| c.contains(" printed=1 ")), "{calls:#?}");
    // sshd's log names the command as where it found the key.
    let log = std::fs::read_to_string(net.state["web"]["log"].as_str().unwrap()).unwrap();
    let command = net.state["eic"]["command"].as_str().unwrap();
    assert!(
        log.lines().any(|l| l.contains(&fingerprint) && l.contains(&format!("found at {command}"))),
        "web's sshd log has no \"found at {command}\" line for {fingerprint}"
    );
}

#[test]
fn expired_other_instance_and_other_user_blocks_do_not_open_web() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let web = net.id("sample-web");
    let bastion = net.id("sample-bastion");
    let dir = env.home.path().to_path_buf();
    let (expired, expired_line) = keypair(&dir, "expired");
    let (other, other_line) = keypair(&dir, "other-instance");
    let (user, user_line) = keypair(&dir, "ec2-user-only");
    let (root, root_line) = keypair(&dir, "root");
    net.eic_write_block(&web, "ec2-user", &expired_line, now() - 1, &web);
    // In web's file, but the block names the bastion: the package checks #Instance itself.
    net.eic_write_block(&web, "ec2-user", &other_line, now() + 120, &bastion);
    net.eic_write_block(&web, "ec2-user", &user_line, now() + 120, &web);
    net.eic_write_block(&web, "root", &root_line, now() + 120, &web);
    let mark = net.akc_mark();
    for (key, who, what) in [
        (&expired, "ec2-user", "an expired block"),
        (&other, "ec2-user", "a block for another instance"),
        (&user, "root", "a block for ec2-user, offered for root"),
    ] {
        let out = ssh_web(net, &env, key, who, "true");
        assert_eq!(out.status.code(), Some(255), "{what}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"),
            "{what}: {}",
            text(&out)
        );
    }
    // The refusals were the command's: it was asked for each (root too: the lab's sshd lets root
    // in only through it) and printed nothing, for the reason each block gives.
    let calls = net.akc_calls_since(mark);
    let printed_nothing = |user: &str, why: &str| {
        calls.iter().any(|c| c.contains(&format!(" user={user} ")) && c.contains(" printed=0 ") && c.contains(why))
    };
    assert!(printed_nothing("ec2-user", " expired=1 "), "{calls:#?}");
    assert!(printed_nothing("ec2-user", " other_instance=1 "), "{calls:#?}");
    assert!(printed_nothing("root", " blocks=1 "), "{calls:#?}");
    // And the controls: the same keys do open web where their blocks say so.
    let out = ssh_web(net, &env, &user, "ec2-user", "id -un");
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "ec2-user\n"),
        "{}",
        text(&out)
    );
    let out = ssh_web(net, &env, &root, "root", "id -un");
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "root\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_pushed_block_opens_sample_eice_web_and_the_pem_keys_do_not() {
    let net = netlab_or_skip!();
    let _exclusive = NETLAB_STATE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = net.id("sample-eice-web");
    let (key, line) = keypair(env.home.path(), "pushed");
    let known = env.write(".ssh/known_hosts", format!("10.1.1.10 {}\n", net.eice_web_host_key()).as_bytes());
    let ssh = |key: &Path| {
        Command::new("ip")
            .args(["netns", "exec", net.state["eice_web_ns"].as_str().unwrap(), "ssh", "-F", "/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-i"])
            .arg(key)
            .args(["ec2-user@10.1.1.10", "hostname"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Launched without a key pair: the tutorial's .pem keys open nothing there.
    for pem in ["sample-web", "sample-bastion"] {
        let out = ssh(Path::new(net.state["keys"][pem].as_str().unwrap()));
        assert_eq!(out.status.code(), Some(255), "{pem}: {}", text(&out));
    }
    net.eic_write_block(&id, "ec2-user", &line, now() + 120, &id);
    let out = ssh(&key);
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "sample-eice-web\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_endpoint_names_resolve_to_the_fake_inside_the_client_namespace() {
    let net = netlab_or_skip!();
    let env = Env::net(net);
    let endpoints = net.state["moto"]["eice"]["endpoints"].as_object().expect("moto.eice.endpoints");
    assert!(endpoints.contains_key("sample-eice-a") && endpoints.contains_key("sample-eice-b"), "{endpoints:?}");
    let hosts = std::fs::read_to_string(net.hosts_file()).unwrap();
    for (name, e) in endpoints {
        let dns = e["dns_name"].as_str().unwrap();
        let fips = dns.replacen(".ec2-instance-connect-endpoint.", ".fips.ec2-instance-connect-endpoint.", 1);
        for host in [dns, fips.as_str()] {
            let out = env.command_in(net, "getent", &["hosts", host]).output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).split_whitespace().next(),
                Some("127.0.0.1"),
                "{name} {host}: {}",
                text(&out)
            );
        }
        assert!(hosts.contains(&format!("127.0.0.1\t{dns}\n")), "{hosts}");
    }
    // The machine's own names still resolve as outside (the file starts with /etc/hosts).
    let out = env.command_in(net, "getent", &["ahostsv4", "localhost"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).split_whitespace().next(), Some("127.0.0.1"), "{}", text(&out));
    // The fake answers there over TLS with a certificate of the lab's CA for that name (no
    // websocket upgrade asked: any HTTP status proves name, port, CA and certificate fit).
    let dns = net.eice_endpoint("sample-eice-a")["dns_name"].as_str().unwrap();
    let ca = net.eice_ca().display().to_string();
    let out = env
        .command_in(net, "curl", &["-sS", "--max-time", "10", "--cacert", &ca, "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://{dns}/openTunnel"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && code != "000", "{}", text(&out));
}

#[test]
fn the_admin_helpers_reach_the_fakes_in_the_client_namespace() {
    let net = netlab_or_skip!();
    // Plain GETs: records only, nothing changes.
    let mark = net.eice_tunnels_mark();
    assert!(net.eice_tunnels().len() as u64 <= mark && net.eice_tunnels_since(mark + 1_000_000).is_empty());
    let mark = net.eic_pushes_mark();
    assert!(net.eic_pushes().len() as u64 <= mark && net.eic_pushes_since(mark + 1_000_000).is_empty());
    let calls = net.eice_calls_since(0);
    assert!(calls["next_index"].is_u64(), "{calls}");
    let state = net.moto_http("GET", "/__fake_eice/state", None);
    assert_eq!(state["ca"].as_str().map(PathBuf::from), Some(net.eice_ca()), "{state}");
    assert!(net.eic_store().is_dir() && net.akc_log().is_file());
    let id = net.eice_endpoint_id("sample-eice-a");
    assert!(id.starts_with("eice-"), "{id}");
}

/// netns_lab.py's own self-test (its own four namespaces, no moto: the shared bed covers moto):
/// routes, keys per hop, host-key restarts, pushed blocks on every host (stand-in instance ids),
/// and that teardown leaves nothing behind (namespaces, processes, /tmp and /run directories,
/// root namespace unchanged).
#[test]
fn the_namespace_lab_passes_its_self_test() {
    if netlab().is_none() {
        return; // said why
    }
    let py = python().unwrap();
    let out = Command::new(py)
        .arg(format!("{REPO}/tests/support/netns_lab.py"))
        .arg("--self-test")
        .stdin(Stdio::null())
        .output()
        .expect("run netns_lab.py --self-test");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.contains("OK: "), "{}", text(&out));
    assert!(!report.contains("FAIL"), "{report}");
}

/// The whole bed with OpenSSH and no hop: a key pushed with moto's SendSSHPublicKey, a URL
/// presigned as the AWS CLI presigns it, the endpoint's name resolved in the client namespace,
/// TLS with the lab's CA, the fake endpoint dialling sample-eice-web inside its namespace, and
/// that host's sshd taking the pushed key through the AuthorizedKeysCommand
/// (tests/support/eice_proxy.py is the ProxyCommand, like `aws ec2-instance-connect open-tunnel`).
#[test]
fn openssh_reaches_sample_eice_web_through_the_fake_endpoint_with_a_pushed_key() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    let env = Env::net(net);
    let id = net.id("sample-eice-web");
    let endpoint = net.eice_endpoint("sample-eice-a");
    let (eice, dns) = (endpoint["id"].as_str().unwrap(), endpoint["dns_name"].as_str().unwrap());
    let known = env.write(".ssh/known_hosts", format!("10.1.1.10 {}\n", net.eice_web_host_key()).as_bytes());
    let py = python().unwrap().display().to_string();
    let ssh = |key: &Path, push: bool| {
        let push =
            if push { format!("--push {id} ec2-user {}", key.with_extension("pub").display()) } else { String::new() };
        let proxy = format!("{py} {REPO}/tests/support/eice_proxy.py --endpoint-id {eice} --dns {dns} {push} %h %p");
        env.command_in(net, "ssh", &["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .arg("-o")
            .arg(format!("ProxyCommand={proxy}"))
            .arg("-i")
            .arg(key)
            .args(["ec2-user@10.1.1.10", "hostname"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (tunnels, pushes, calls) = (net.eice_tunnels_mark(), net.eic_pushes_mark(), net.akc_mark());
    // Not pushed: the tunnel works, the key does not.
    let (unpushed, _) = keypair(env.home.path(), "unpushed");
    let out = ssh(&unpushed, false);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"), "{}", text(&out));
    // Pushed: in.
    let (key, line) = keypair(env.home.path(), "pushed");
    let out = ssh(&key, true);
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "sample-eice-web\n"),
        "{}",
        text(&out)
    );
    let pushed = net.eic_pushes_since(pushes);
    assert!(
        pushed
            .iter()
            .any(|p| p["instance_id"] == id.as_str() && p["os_user"] == "ec2-user" && p["public_key"] == line.as_str()),
        "{pushed:#?}"
    );
    let ours: Vec<Value> = net
        .eice_tunnels_since(tunnels)
        .into_iter()
        .filter(|t| t["user_agent"] == "hop-lab-eice-proxy" && t["endpoint"] == eice)
        .collect();
    assert!(ours.len() >= 2, "{ours:#?}");
    for t in &ours {
        assert_eq!((t["status"].as_u64(), t["signature_ok"].as_bool()), (Some(101), Some(true)), "{t:#}");
        assert_eq!(t["dialed"], "10.1.1.10:22", "{t:#}");
        assert_eq!(t["netns"], net.state["eice_web_ns"], "{t:#}");
        assert_eq!(t["sni"], dns, "{t:#}");
    }
    let calls = net.akc_calls_since(calls);
    assert!(
        calls.iter().any(|c| c.contains(" host=eice_web user=ec2-user ") && c.contains(" printed=1 ")),
        "{calls:#?}"
    );
}
