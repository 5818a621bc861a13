//! The EC2 Instance Connect half of the test bed checks itself, so hop's EICE and key-push tests
//! fail for hop's reasons only: the fake endpoint's SigV4 verifier against every signing vector
//! of the spec (accepted at its time with its Host, refused with one flipped signature
//! character), the fake's handshake checks, knobs and relay, the key push's validation and key
//! store, and the whole moto side (endpoint API, push, a botocore-presigned tunnel) end to end.

use std::process::{Command, Stdio};

use crate::support::{REPO, python};

/// `python tests/support/SCRIPT ARGS`: (success, stdout + stderr).
fn run(script: &str, args: &[&str]) -> Option<(bool, String)> {
    let py = match python() {
        Ok(p) => p,
        Err(why) => {
            crate::support::unavailable(&why);
            return None;
        }
    };
    let out = Command::new(py)
        .arg(format!("{REPO}/tests/support/{script}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn the_fake_endpoint_verifies_every_signing_vector_and_passes_its_self_test() {
    let Some((ok, text)) = run("fake_eice.py", &["--self-test"]) else { return };
    assert!(ok, "{text}");
    // 5 vectors, each in the CLI's form and in aws-sigv4's (token after the signature).
    assert!(text.contains("ok   verifier: 10 vector URLs accepted"), "{text}");
    assert!(text.contains("self-test passed"), "{text}");
}

#[test]
fn the_fake_key_push_passes_its_self_test() {
    let Some((ok, text)) = run("fake_eic.py", &["--self-test"]) else { return };
    assert!(ok, "{text}");
    assert!(text.contains("self-test passed"), "{text}");
}

#[test]
fn the_moto_side_of_instance_connect_works_end_to_end_with_boto3() {
    let Some((ok, text)) = run("eice_check.py", &[]) else { return };
    assert!(ok, "{text}");
    assert!(text.contains("eice check passed"), "{text}");
}
