//! Test fixtures: the moto lab (a real EC2 emulator seeded with the tutorial topology, started
//! once per test run) and a runner for the real `hop` binary with a scrubbed environment.
//!
//! A fixture that cannot run says why on stderr and, under CI (`CI=true`), fails the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The seeded moto server, shared by every test of this run.
pub struct Lab {
    pub endpoint: String,
    pub state: Value,
    /// Held so the launcher lives exactly as long as this test process: it exits on stdin EOF.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

impl Lab {
    /// Instance id by seed key (`sample-web`, `sample-api#1`, …).
    pub fn id(&self, key: &str) -> String {
        self.state["instances"][key]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no instance {key} in the lab"))
            .to_string()
    }
}

/// Why a fixture cannot run: printed, and fatal under CI.
pub fn unavailable(why: &str) {
    eprintln!("SKIPPED: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("test bed unavailable under CI: {why}");
    }
}

/// The lab, or None (after saying why) when moto cannot be started here.
pub fn lab() -> Option<&'static Lab> {
    static LAB: OnceLock<Result<Lab, String>> = OnceLock::new();
    match LAB.get_or_init(start_lab) {
        Ok(l) => Some(l),
        Err(why) => {
            unavailable(why);
            None
        }
    }
}

/// The venv's python: `HOP_TEST_PYTHON`, else what the project's install script reports (it is
/// idempotent and quick once done).
pub fn python() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("HOP_TEST_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("bash")
            .arg(Path::new(REPO).join("scripts/install-test-deps.sh"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/install-test-deps.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("scripts/install-test-deps.sh failed ({})", out.status));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .ok_or_else(|| "install script printed no python path".into())
    })
    .clone()
}

fn start_lab() -> Result<Lab, String> {
    let py = python()?;
    let started = Instant::now();
    let mut child = Command::new(&py)
        .arg(Path::new(REPO).join("tests/support/moto_lab.py"))
        .args(["--port", "0", "--seed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start moto_lab.py with {}: {e}", py.display()))?;
    let stdin = child.stdin.take().expect("piped");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| format!("moto_lab.py: {e}"))?;
    let state: Value =
        serde_json::from_str(&line).map_err(|e| format!("moto_lab.py did not report ready ({e}): {line:?}"))?;
    let endpoint = state["endpoint"].as_str().ok_or("moto_lab.py reported no endpoint")?.to_string();
    eprintln!("moto lab ready at {endpoint} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(Lab { endpoint, state, _stdin: Mutex::new(stdin), _child: Mutex::new(child) })
}

/// What one run of `hop` gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// A scrubbed environment for `hop`: its own HOME (so its own ~/.ssh, ~/.aws, cache, config),
/// dummy credentials, the lab's endpoint, no instance metadata, no retries.
pub struct Env {
    pub home: tempfile::TempDir,
    pub vars: BTreeMap<String, String>,
}

impl Env {
    /// An environment pointed at the lab.
    pub fn lab(lab: &Lab) -> Env {
        let mut e = Env::bare();
        e.set("AWS_ENDPOINT_URL", &lab.endpoint);
        e.set("AWS_ACCESS_KEY_ID", "testing");
        e.set("AWS_SECRET_ACCESS_KEY", "testing");
        e.set("AWS_REGION", "us-east-1");
        e
    }

    /// Dummy credentials, us-east-1 and `endpoint` (for fake or dead endpoints), no lab.
    pub fn endpoint(endpoint: &str) -> Env {
        let mut e = Env::bare();
        e.set("AWS_REGION", "us-east-1")
            .set("AWS_ACCESS_KEY_ID", "testing")
            .set("AWS_SECRET_ACCESS_KEY", "testing")
            .set("AWS_ENDPOINT_URL", endpoint);
        e
    }

    /// No AWS anything: just HOME, PATH and the no-metadata switch.
    pub fn bare() -> Env {
        let home = tempfile::tempdir().expect("tempdir");
        let mut vars = BTreeMap::new();
        vars.insert("HOME".into(), home.path().display().to_string());
        vars.insert("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
        vars.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        vars.insert("AWS_MAX_ATTEMPTS".into(), "1".into());
        vars.insert("TERM".into(), "dumb".into());
        Env { home, vars }
    }

    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    pub fn unset(&mut self, k: &str) -> &mut Self {
        self.vars.remove(k);
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    /// Write a file under HOME, creating directories.
    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hop"));
        c.args(args).env_clear().envs(&self.vars).current_dir(self.home.path()).stdin(Stdio::null());
        c
    }

    pub fn hop(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = self.command(args).output().expect("run hop");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

impl Env {
    /// Run `hop ARGS` on a pseudo-terminal (script(1)), returning what the terminal showed
    /// (stdout and stderr together), or None after saying why when script(1) is missing.
    pub fn hop_on_tty(&self, args: &str, extra: &[(&str, &str)]) -> Option<String> {
        if Command::new("script").arg("--version").output().is_err() {
            unavailable("script(1) not installed: cannot run hop on a terminal");
            return None;
        }
        let out = Command::new("script")
            .args(["-qec", &format!("{} {args}", env!("CARGO_BIN_EXE_hop")), "/dev/null"])
            .env_clear()
            .envs(&self.vars)
            .envs(extra.iter().copied())
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .output()
            .expect("run script(1)");
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Run {
    /// Assert the exit status, showing everything on failure.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(self.code, want, "exit status\n--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// Replace every lab instance id by `<key>` and VPC id by `<vpc:name>`, and the per-test HOME
/// by `~`, so whole outputs can be compared.
pub fn redact(lab: &Lab, env: &Env, text: &str) -> String {
    let mut out = text.replace(&env.home.path().display().to_string(), "~");
    if let Some(m) = lab.state["instances"].as_object() {
        for (key, v) in m {
            if let Some(id) = v["id"].as_str() {
                out = out.replace(id, &format!("<{key}>"));
            }
        }
    }
    if let Some(m) = lab.state["vpcs"].as_object() {
        for (name, id) in m {
            if let Some(id) = id.as_str() {
                out = out.replace(id, &format!("<vpc:{name}>"));
            }
        }
    }
    out
}

/// Skip (loudly) unless the lab runs: `let Some(lab) = lab_or_skip!();`
#[macro_export]
macro_rules! lab_or_skip {
    () => {
        match $crate::support::lab() {
            Some(l) => l,
            None => return,
        }
    };
}

/// A text table as rows of cells (cells are separated by two or more spaces), after `redact`.
/// Also checks that every column starts at the same offset on every line.
pub fn table_cells(lab: &Lab, env: &Env, text: &str) -> Vec<Vec<String>> {
    let mut starts: Option<Vec<usize>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut cells = Vec::new();
        let mut offsets = Vec::new();
        let mut i = 0;
        let b = line.as_bytes();
        while i < b.len() {
            let start = i;
            while i < b.len() && !(b[i] == b' ' && i + 1 < b.len() && b[i + 1] == b' ') {
                i += 1;
            }
            cells.push(redact(lab, env, &line[start..i]));
            offsets.push(line[..start].chars().count());
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
        }
        match &starts {
            None => starts = Some(offsets),
            Some(s) => assert_eq!(s, &offsets, "misaligned table line {line:?}\n{text}"),
        }
        rows.push(cells);
    }
    rows
}

/// Rows written as in a table, for comparison with `table_cells`.
pub fn rows(spec: &str) -> Vec<Vec<String>> {
    spec.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}
