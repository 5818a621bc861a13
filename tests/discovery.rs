//! Discovery: the cache (TTL, --refresh, corrupt files, misses), and where profile and regions
//! come from (flags, config file, environment, AWS profile).

use std::path::PathBuf;

use serde_json::Value;

use crate::lab_or_skip;
use crate::support::Env;

/// The one cache file of the lab's us-east-1 for this HOME.
fn cache_file(env: &Env) -> PathBuf {
    let root = env.path(".cache/hop");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|d| d.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "one cache directory per profile, endpoint and credentials: {dirs:?}");
    let name = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("default@"), "keyed by profile and endpoint: {name}");
    dirs[0].join("us-east-1.json")
}

/// Rewrite sample-web's private IP in the cache, so output shows whether the cache was used.
fn doctor_cache(env: &Env, ip: &str) {
    let path = cache_file(env);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for i in doc["instances"].as_array_mut().unwrap() {
        if i["name"] == "sample-web" {
            i["private_ip"] = ip.into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

#[test]
fn route_uses_a_fresh_cache_and_refresh_bypasses_it() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.hop(&["route", "sample-web"]).code(0);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(cache_file(&env)).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    doctor_cache(&env, "10.0.1.99");
    let cached = env.hop(&["route", "sample-web"]);
    cached.code(0);
    assert!(cached.stdout.contains("ec2-user@10.0.1.99:22"), "served from the cache: {}", cached.stdout);
    let fresh = env.hop(&["--refresh", "route", "sample-web"]);
    fresh.code(0);
    assert!(fresh.stdout.contains("ec2-user@10.0.1.10:22"), "--refresh asks EC2: {}", fresh.stdout);
    // ...and rewrote the cache.
    let again = env.hop(&["route", "sample-web"]);
    assert!(again.stdout.contains("ec2-user@10.0.1.10:22"), "{}", again.stdout);
}

#[test]
fn ls_is_always_live() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.hop(&["route", "sample-web"]).code(0);
    doctor_cache(&env, "10.0.1.99");
    let run = env.hop(&["ls", "sample-web"]);
    run.code(0);
    assert!(run.stdout.contains("10.0.1.10 "), "{}", run.stdout);
}

#[test]
fn stale_cache_is_refreshed_per_the_configured_ttl() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.write(".config/hop/config.toml", b"cache_ttl = 0\n");
    env.hop(&["route", "sample-web"]).code(0);
    doctor_cache(&env, "10.0.1.99");
    // fetched_at has second resolution: wait past it so age > 0.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.hop(&["route", "sample-web"]);
    run.code(0);
    assert!(run.stdout.contains("ec2-user@10.0.1.10:22"), "stale entry not used: {}", run.stdout);
}

#[test]
fn corrupt_cache_is_ignored_and_rewritten() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.hop(&["route", "sample-web"]).code(0);
    let path = cache_file(&env);
    std::fs::write(&path, b"{\"version\": 1, \"instances\": [tru").unwrap();
    let run = env.hop(&["route", "sample-web"]);
    run.code(0);
    assert_eq!(run.stderr, "");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("rewritten as valid JSON");
    assert_eq!(doc["region"], "us-east-1");
}

#[test]
fn a_name_missing_from_the_cache_is_looked_up_live_once() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.hop(&["route", "sample-web"]).code(0);
    let path = cache_file(&env);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["instances"].as_array_mut().unwrap().retain(|i| i["name"] != "sample-app");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let run = env.hop(&["route", "sample-app"]);
    run.code(0);
    assert!(run.stdout.contains("via edge-jump"), "{}", run.stdout);
}

#[test]
fn regions_come_from_flags_then_environment_then_config_then_profile() {
    let lab = lab_or_skip!();
    let names = |env: &Env, args: &[&str]| -> Vec<String> {
        let run = env.hop(args);
        run.code(0);
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        doc["regions"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
    };
    let mut env = Env::lab(lab);
    assert_eq!(names(&env, &["ls", "--json"]), ["us-east-1"]);
    env.set("AWS_DEFAULT_REGION", "eu-west-1");
    assert_eq!(names(&env, &["ls", "--json"]), ["us-east-1"], "AWS_REGION beats AWS_DEFAULT_REGION");
    env.unset("AWS_REGION");
    assert_eq!(names(&env, &["ls", "--json"]), ["eu-west-1"]);
    env.write(
        ".config/hop/config.toml",
        b"regions = [\"us-west-2\", \"eu-west-1\"]\n[profiles.other]\nregions = [\"us-east-1\"]\n",
    );
    assert_eq!(names(&env, &["ls", "--json"]), ["eu-west-1"], "the environment beats config files, as in the AWS CLI");
    env.unset("AWS_DEFAULT_REGION");
    assert_eq!(names(&env, &["ls", "--json"]), ["us-west-2", "eu-west-1"], "the config file's list");
    env.write(".aws/config", b"[profile other]\n");
    env.set("AWS_PROFILE", "other");
    assert_eq!(names(&env, &["ls", "--json"]), ["us-east-1"], "per-profile regions");
    env.unset("AWS_PROFILE");
    assert_eq!(names(&env, &["--region", "eu-west-1", "ls", "--json"]), ["eu-west-1"], "flags beat everything");
    // Nothing but the AWS profile's region.
    let mut env = Env::lab(lab);
    env.unset("AWS_REGION").set("AWS_PROFILE", "lab");
    env.write(".aws/config", b"[profile lab]\nregion = eu-west-1\n");
    assert_eq!(names(&env, &["ls", "--json"]), ["eu-west-1"]);
}

#[test]
fn an_explicit_profile_wins_over_environment_credentials() {
    // As with the AWS CLI: `--profile` uses that profile's credentials even when
    // AWS_ACCESS_KEY_ID is set; a profile without any is an error, not the env account.
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    env.write(".aws/config", b"[profile empty]\nregion = us-east-1\n");
    let run = env.hop(&["--profile", "empty", "ls"]);
    run.code(255);
    assert!(run.stderr.starts_with("hop: error: no AWS credentials found\n"), "{}", run.stderr);
    env.write(".aws/credentials", b"[somewhere]\naws_access_key_id = k\naws_secret_access_key = s\n");
    env.hop(&["--profile", "somewhere", "ls"]).code(0);
}

#[test]
fn a_profile_that_does_not_exist_is_named() {
    let env = Env::bare();
    let run = env.hop(&["--profile", "nowhere", "--region", "us-east-1", "ls"]);
    run.code(2);
    assert_eq!(
        run.stderr,
        format!(
            "hop: error: AWS profile \"nowhere\" not found in {} or {}\n\
             hint: list profiles with `aws configure list-profiles`; create one with `aws configure --profile NAME`\n",
            env.path(".aws/config").display(),
            env.path(".aws/credentials").display()
        )
    );
}

#[test]
fn environment_credentials_get_their_own_cache() {
    let lab = lab_or_skip!();
    let mut env = Env::lab(lab);
    env.hop(&["route", "sample-web"]).code(0);
    env.set("AWS_ACCESS_KEY_ID", "other-account");
    env.hop(&["route", "sample-web"]).code(0);
    let dirs = std::fs::read_dir(env.path(".cache/hop")).unwrap().count();
    assert_eq!(dirs, 2, "one cache per set of environment credentials");
}

#[test]
fn bastion_tag_is_configurable() {
    let lab = lab_or_skip!();
    let env = Env::lab(lab);
    // Make the private sample-api the "bastion" of sample-dev: it has no public IP, so the VPC
    // has no usable bastion and sample-web falls back to SSM, saying why.
    env.write(".config/hop/config.toml", b"[bastion]\ntag_key = \"Name\"\ntag_value = \"sample-api\"\n");
    let run = env.hop(&["route", "sample-web", "--json"]);
    run.code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["route"]["kind"], "ssm");
    assert!(doc["route"]["reason"].as_str().unwrap().contains("is not usable: no public IP"), "{doc}");
}
