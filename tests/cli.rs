//! The command line itself: help, usage errors, and the generated completions and man pages
//! being fresh.

use std::path::Path;

use crate::support::{Env, REPO};

#[test]
fn help_and_version_succeed() {
    let env = Env::bare();
    let run = env.hop(&["--help"]);
    run.code(0);
    for word in ["ls", "route", "config", "completions", "man", "--profile", "--region", "-l", "-i", "--refresh"] {
        assert!(run.stdout.contains(word), "--help lacks {word}:\n{}", run.stdout);
    }
    let v = env.hop(&["--version"]);
    v.code(0);
    assert_eq!(v.stdout, format!("hop {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::bare();
    for args in [&["--bogus"][..], &["ls", "--tag"], &["completions", "tcsh"], &["route"]] {
        let run = env.hop(args);
        run.code(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
    let run = env.hop(&[]);
    run.code(2);
    assert_eq!(
        run.stderr,
        "hop: error: no target given\nhint: usage: hop TARGET [-- CMD…]; `hop ls` lists targets; `hop --help` for more\n"
    );
}

#[test]
fn tag_filter_without_key_is_a_usage_error() {
    let env = Env::bare();
    let run = env.hop(&["--region", "us-east-1", "ls", "--tag", "=x"]);
    run.code(2);
    assert_eq!(run.stderr, "hop: error: invalid tag filter \"=x\": expected KEY=VALUE or KEY\n");
}

/// The checked-in files under completions/ and man/, and how to regenerate each.
fn generated() -> Vec<(String, Vec<&'static str>)> {
    let mut files: Vec<(String, Vec<&str>)> = vec![
        ("completions/hop.bash".into(), vec!["completions", "bash"]),
        ("completions/_hop".into(), vec!["completions", "zsh"]),
        ("completions/hop.fish".into(), vec!["completions", "fish"]),
        ("completions/_hop.ps1".into(), vec!["completions", "powershell"]),
        ("completions/hop.elv".into(), vec!["completions", "elvish"]),
        ("man/hop.1".into(), vec!["man"]),
    ];
    for sub in ["connect", "ls", "route", "config", "forward", "proxy", "doctor", "stop", "completions", "man"] {
        files.push((format!("man/hop-{sub}.1"), vec!["man", sub]));
    }
    files
}

/// Fails when a checked-in generated file differs from what the binary generates now; run with
/// HOP_BLESS=1 to rewrite them.
#[test]
fn completions_and_man_pages_are_fresh() {
    let env = Env::bare();
    let bless = std::env::var("HOP_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (file, args) in generated() {
        let run = env.hop(&args);
        run.code(0);
        assert!(!run.stdout.is_empty(), "{args:?} printed nothing");
        let path = Path::new(REPO).join(&file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != run.stdout {
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &run.stdout).unwrap();
            } else {
                stale.push(file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `HOP_BLESS=1 cargo test completions_and_man` and commit"
    );
}

#[test]
fn man_page_for_unknown_subcommand_is_a_usage_error() {
    let run = Env::bare().hop(&["man", "nope"]);
    run.code(2);
    assert!(
        run.stderr.starts_with("hop: error: no subcommand \"nope\"\nhint: pages: connect, ls, route, config"),
        "{}",
        run.stderr
    );
}

#[test]
fn dynamic_completion_offers_cached_names() {
    let env = Env::bare();
    // A cache as discovery writes it; completion must not call AWS.
    let cache = r#"{"version":1,"fetched_at":0,"region":"us-east-1","instances":[
        {"id":"i-0123","name":"sample-web","state":"running","region":"us-east-1","az":null,"vpc_id":null,
         "subnet_id":null,"private_ip":null,"public_ip":null,"key_name":null,"launch_time":null,
         "instance_profile":null,"security_groups":[],"tags":{}}]}"#;
    env.write(".cache/hop/default/us-east-1.json", cache.as_bytes());
    let mut cmd = env.command(&["--", "hop", "sam"]);
    cmd.env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "1")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_IFS", "\n");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.trim() == "sample-web"), "completion output: {stdout:?}");
}

#[test]
fn dynamic_completion_leaves_out_names_unsafe_for_a_terminal() {
    let env = Env::bare();
    // Tags are anyone's to write: a newline would forge a second candidate, U+009B and U+202E
    // reach the terminal raw. Those names are left out; their ids are still offered.
    let instance = |id: &str, name: &str| {
        serde_json::json!({"id": id, "name": name, "state": "running", "region": "us-east-1", "az": null,
            "vpc_id": null, "subnet_id": null, "private_ip": null, "public_ip": null, "key_name": null,
            "launch_time": null, "instance_profile": null, "security_groups": [], "tags": {}})
    };
    let cache = serde_json::json!({"version": 1, "fetched_at": 0, "region": "us-east-1", "instances": [
        instance("i-0aaa", "sam-web\nsam-forged"),
        instance("i-0bbb", "sam-\u{9b}31m\u{202e}txt"),
        instance("i-0ccc", "sam-本番-🚀"),
    ]});
    env.write(".cache/hop/default/us-east-1.json", cache.to_string().as_bytes());
    let complete = |word: &str| {
        let mut cmd = env.command(&["--", "hop", word]);
        cmd.env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "1")
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_IFS", "\n");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut words: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
        words.sort();
        words
    };
    assert_eq!(complete("sam"), ["sam-本番-🚀"]);
    assert_eq!(complete("i-0"), ["i-0aaa", "i-0bbb", "i-0ccc"]);
}
