//! The console-output side of the test bed (issue #13, spec §D.2 point 3) checks itself, so
//! hop's console tests fail for hop's reasons only: moto's GetConsoleOutput, patched per
//! instance by fake_console.py, returns (through the EC2 API, boto3) first-boot consoles in the
//! spec's §C.1 formats that print the lab sshds' REAL host keys (as `ssh-keyscan` sees them),
//! a tampered one, one with two conflicting blocks, one without Output; the admin endpoint sets
//! any of these per instance and the bed counts calls and records `Latest`.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::netlab_or_skip;
use crate::support::{NETLAB_STATE, NetLab};

/// The ed25519 key `ssh-keyscan` reads from `host`'s sshd ("ssh-ed25519 AAAA…"), scanned from
/// a namespace that reaches it: the client for the bastion's public address, the bastion for
/// web, sample-eice-web's own namespace for it (nothing else routes there).
fn keyscan(net: &NetLab, host: &str) -> String {
    let s = &net.state;
    let (ns, ip) = match host {
        "bastion" => (net.ns(), s["bastion"]["public_ip"].as_str().unwrap()),
        "web" => (s["bastion_ns"].as_str().unwrap(), s["web"]["ip"].as_str().unwrap()),
        "eice_web" => (s["eice_web_ns"].as_str().unwrap(), s["eice_web"]["ip"].as_str().unwrap()),
        other => panic!("no lab host {other}"),
    };
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ssh-keyscan", "-T", "10", "-t", "ed25519", ip])
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keyscan");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("ssh-ed25519"))
        .unwrap_or_else(|| panic!("ssh-keyscan {ip} in {ns}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    line.split_whitespace().skip(1).take(2).collect::<Vec<_>>().join(" ")
}

/// "type base64" of every key in the console's KEYS blocks, block by block.
fn keys(console: &Value) -> Vec<Vec<String>> {
    console["keys_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["complete"], true, "block not closed: {console}");
            b["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| format!("{} {}", k["type"].as_str().unwrap(), k["base64"].as_str().unwrap()))
                .collect()
        })
        .collect()
}

/// Every block's SHA256 fingerprints: from the KEYS block's keys, and from the FINGERPRINTS
/// block's lines (which must agree with them, as `ssh-keygen -l` printed them).
fn fingerprints(console: &Value) -> Vec<String> {
    let from_keys: Vec<String> = console["keys_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["keys"].as_array().unwrap().iter().map(|k| k["sha256"].as_str().unwrap().to_string()))
        .collect();
    let from_lines: Vec<String> = console["fingerprint_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            assert_eq!(b["complete"], true, "block not closed: {console}");
            b["entries"].as_array().unwrap().iter().map(|e| {
                assert_eq!((e["bits"].as_u64(), e["label"].as_str()), (Some(256), Some("ED25519")), "{e}");
                e["fingerprint"].as_str().unwrap().to_string()
            })
        })
        .collect();
    assert_eq!(from_keys, from_lines, "FINGERPRINTS and KEYS blocks disagree: {console}");
    from_keys
}

#[test]
fn seeded_consoles_print_the_real_sshd_host_keys() {
    let net = netlab_or_skip!();
    let _shared = NETLAB_STATE.read().unwrap_or_else(|e| e.into_inner());
    for (name, host, marker) in [
        ("sample-bastion", "bastion", "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n"),
        ("sample-web", "web", " cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"),
        ("sample-eice-web", "eice_web", " cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"),
    ] {
        let seeded = net.seeded_console(name);
        let id = net.id(name);
        assert_eq!(seeded["id"], id.as_str());
        let console = net.console_fetch(&id, false);
        assert_eq!(console["present"], true, "{name}: {console}");
        let text = console["text"].as_str().unwrap();
        assert!(text.contains(marker), "{name}: not the {marker:?} form:\n{text}");
        let real = keyscan(net, host);
        assert_eq!(real, net.state[host]["host_key_pub"].as_str().unwrap(), "{host}'s sshd key changed under the bed");
        assert_eq!(keys(&console), vec![vec![real.clone()]], "{name}: {text}");
        assert_eq!(fingerprints(&console), vec![seeded["fingerprints"][0].as_str().unwrap().to_string()], "{name}");
    }
    // The legacy (AL2) form prints keys made without a comment: "no comment", trailing space.
    let bastion = net.console_fetch(&net.id("sample-bastion"), false);
    let text = bastion["text"].as_str().unwrap();
    assert!(text.contains(&format!("{} \n", net.state["bastion"]["host_key_pub"].as_str().unwrap())), "{text}");
    assert!(text.contains(" no comment (ED25519)\n"), "{text}");
}

#[test]
fn seeded_consoles_cover_mismatch_ambiguous_and_absent() {
    let net = netlab_or_skip!();
    let web = net.state["web"]["host_key_pub"].as_str().unwrap().to_string();
    // sample-app: a well-formed block whose key is not any lab host's (tampered → mismatch).
    let app = net.console_fetch(&net.id("sample-app"), false);
    let app_keys = keys(&app);
    assert_eq!(app_keys.len(), 1, "{app}");
    assert_eq!(app_keys[0].len(), 1, "{app}");
    assert!(app_keys[0][0].starts_with("ssh-ed25519 "), "{app}");
    for host in ["bastion", "web", "eice_web"] {
        assert_ne!(app_keys[0][0], net.state[host]["host_key_pub"].as_str().unwrap());
    }
    fingerprints(&app);
    // sample-worker: two complete blocks naming different keys of one type (→ ambiguous).
    let worker = net.console_fetch(&net.id("sample-worker"), false);
    let worker_keys = keys(&worker);
    assert_eq!(worker_keys.len(), 2, "{worker}");
    assert_eq!(worker_keys[0], vec![web.clone()]);
    assert_ne!(worker_keys[1], worker_keys[0]);
    assert_eq!(fingerprints(&worker).len(), 2);
    // sample-old: no Output at all; an instance left alone: moto's sample, no block.
    let old = net.console_fetch(&net.id("sample-old"), false);
    assert_eq!((old["present"].clone(), old["text"].clone()), (json!(false), Value::Null), "{old}");
    let api = net.console_fetch(&net.id("edge-jump"), false);
    assert_eq!(api["present"], true);
    assert!(api["text"].as_str().unwrap().starts_with("Linux version 2.6.16-xenU"), "{api}");
    assert_eq!(keys(&api), Vec::<Vec<String>>::new());
}

#[test]
fn admin_sets_any_console_and_the_bed_counts_calls_and_latest() {
    let net = netlab_or_skip!();
    // An instance of this test's own (ec2_admin.py is idempotent by name): no other test asks
    // for its console, so the counts are exact. Its private IP must be one no other test
    // uses (waits.rs blackholes 10.0.1.77: moto would hand the ENI of one to the other).
    let py = crate::support::python().expect("python");
    let endpoint = net.state["moto"]["endpoint"].as_str().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", net.ns()])
        .arg(py)
        .arg(format!("{}/tests/support/ec2_admin.py", crate::support::REPO))
        .args(["--endpoint", endpoint, "web", "console-bed-web", "10.0.1.213"])
        .output()
        .expect("run ec2_admin.py");
    assert!(out.status.success(), "ec2_admin.py: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (before, _) = net.console_calls(&id);

    let set = net.console_set(&id, json!({"text": "hello\r\nconsole\n"}));
    assert_eq!(set["kind"], "text");
    assert_eq!(net.console_fetch(&id, false)["text"], "hello\r\nconsole\n");
    assert_eq!(net.console_calls(&id), (before + 1, false), "no Latest sent yet");

    net.console_set(&id, json!({"absent": true}));
    assert_eq!(net.console_fetch(&id, true)["present"], false);
    assert_eq!(net.console_calls(&id), (before + 2, true), "Latest=true recorded");

    let web = net.state["web"]["host_key_pub"].as_str().unwrap().to_string();
    for style in ["cloud-init-21.2+", "legacy-ec2-tag"] {
        let set = net.console_set(&id, json!({"from_host": "web", "style": style}));
        let console = net.console_fetch(&id, false);
        assert_eq!(keys(&console), vec![vec![web.clone()]], "{style}");
        assert_eq!(fingerprints(&console), vec![set["fingerprints"][0].as_str().unwrap().to_string()]);
        let other = net.console_set(&id, json!({"from_host": "web", "style": style, "keys": "other"}));
        assert_ne!(other["fingerprints"], set["fingerprints"]);
        let console = net.console_fetch(&id, false);
        assert_ne!(keys(&console), vec![vec![web.clone()]], "{style}: keys other");
        net.console_set(&id, json!({"from_host": "web", "style": style, "twice": true}));
        assert_eq!(keys(&net.console_fetch(&id, false)).len(), 2, "{style}: twice");
    }
    net.console_set(&id, json!({"sample": true}));
    assert!(net.console_fetch(&id, false)["text"].as_str().unwrap().starts_with("Linux version"));
    assert_eq!(net.console_calls(&id).0, before + 9);
}

#[test]
fn the_fake_console_passes_its_self_test() {
    let py = match crate::support::python() {
        Ok(p) => p,
        Err(why) => return crate::support::unavailable(&why),
    };
    let out = Command::new(py)
        .arg(format!("{}/tests/support/fake_console.py", crate::support::REPO))
        .arg("--self-test")
        .stdin(Stdio::null())
        .output()
        .expect("run fake_console.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("self-test: ok"), "{text}");
}
