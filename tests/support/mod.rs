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
    _launcher: Launcher,
}

/// A test-bed launcher (moto_lab.py, netns_lab.py) that has reported ready. Its stdin is held
/// so it lives exactly as long as this test process: it tears down on stdin EOF.
struct Launcher {
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// Start `tests/support/SCRIPT ARGS` and wait for its one line of ready JSON.
fn launch(script: &str, args: &[&str]) -> Result<(Value, Launcher), String> {
    let py = python()?;
    let mut child = Command::new(&py)
        .arg(Path::new(REPO).join("tests/support").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {script} with {}: {e}", py.display()))?;
    let stdin = child.stdin.take().expect("piped");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| format!("{script}: {e}"))?;
    let state: Value =
        serde_json::from_str(&line).map_err(|e| format!("{script} did not report ready ({e}): {line:?}"))?;
    Ok((state, Launcher { _stdin: Mutex::new(stdin), _child: Mutex::new(child) }))
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

/// The venv's python, from `HOP_TEST_PYTHON` (scripts/test.sh sets it after installing the test
/// dependencies; tests never install anything themselves).
pub fn python() -> Result<PathBuf, String> {
    match std::env::var("HOP_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err("HOP_TEST_PYTHON is not set: run scripts/test.sh, which installs the test dependencies \
                  (moto in a venv, openssh) and sets it"
            .into()),
    }
}

fn start_lab() -> Result<Lab, String> {
    let started = Instant::now();
    let (state, launcher) = launch("moto_lab.py", &["--port", "0", "--seed"])?;
    let endpoint = state["endpoint"].as_str().ok_or("moto_lab.py reported no endpoint")?.to_string();
    eprintln!("moto lab ready at {endpoint} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(Lab { endpoint, state, _launcher: launcher })
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
        // `hop config` leaves the names of the system's ssh config alone: not this machine's.
        vars.insert("HOP_SYSTEM_SSH_CONFIG".into(), "/dev/null".into());
        // Connection masters of this test live (and die, see Drop) in its own runtime dir.
        let run = home.path().join("run");
        std::fs::create_dir(&run).expect("runtime dir");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        vars.insert("XDG_RUNTIME_DIR".into(), run.display().to_string());
        Env { home, vars }
    }

    /// The directory this environment's connection masters live in.
    pub fn masters_dir(&self) -> PathBuf {
        PathBuf::from(&self.vars["XDG_RUNTIME_DIR"]).join("hop")
    }

    /// PIDs of the live connection masters of this environment (from their sidecar files),
    /// each checked to be a `hop __master` process.
    pub fn masters(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.masters_dir()) else { return Vec::new() };
        let mut pids = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap_or_default()) else { continue };
            let Some(pid) = v["pid"].as_u64().map(|p| p as u32) else { continue };
            if is_master_process(pid) {
                pids.push(pid);
            }
        }
        pids
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

/// The SSH test bed: client, bastion, web and eice-web network namespaces with real OpenSSH
/// sshd, and a moto lab inside the client namespace whose sample-bastion has exactly the bastion
/// namespace's address, with the fake EC2 Instance Connect Endpoint on 127.0.0.1:443 there
/// (tests/support/netns_lab.py, bed12.md). One per test run.
pub struct NetLab {
    pub state: Value,
    _launcher: Launcher,
}

/// Tests that change the test bed (stop the bastion, replace a host key) take this for
/// writing; every other SSH test reads.
pub static NETLAB_STATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

impl NetLab {
    pub fn ns(&self) -> &str {
        self.state["client_ns"].as_str().expect("client_ns")
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.state["dir"].as_str().expect("dir"))
    }

    /// Instance id (from the moto lab inside the client namespace) by seed key.
    pub fn id(&self, key: &str) -> String {
        self.state["moto"]["instances"][key]["id"].as_str().unwrap_or_else(|| panic!("no {key}")).to_string()
    }

    /// The current host key of `host` ("bastion", "web" or "eice_web"), re-read because
    /// restarts change it.
    pub fn host_key(&self, host: &str) -> String {
        let state: Value = serde_json::from_slice(&std::fs::read(self.dir().join("state.json")).expect("state.json"))
            .expect("state.json is JSON");
        state[host]["host_key_pub"].as_str().expect("host_key_pub").to_string()
    }

    /// Run `netns_lab.py SUBCOMMAND --dir DIR ARGS` (restart, stop).
    pub fn control(&self, sub: &str, args: &[&str]) {
        let py = python().expect("python");
        let out = Command::new(py)
            .arg(Path::new(REPO).join("tests/support/netns_lab.py"))
            .arg(sub)
            .arg("--dir")
            .arg(self.dir())
            .args(args)
            .output()
            .expect("run netns_lab.py");
        assert!(out.status.success(), "netns_lab.py {sub} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The EC2 Instance Connect side of the bed (bed12.md): sample-eice-web, the fake EICE and
/// moto's key push (admin endpoints on moto's HTTP port), the AuthorizedKeysCommand's store and
/// log.
impl NetLab {
    /// The current host key of sample-eice-web (restarts change it).
    pub fn eice_web_host_key(&self) -> String {
        self.host_key("eice_web")
    }

    /// A seeded endpoint by its Name tag (`sample-eice-a`, `sample-eice-b`), as moto reported
    /// it: `{"id", "dns_name", "subnet_id", "sg", …}`.
    pub fn eice_endpoint(&self, name: &str) -> &Value {
        let e = &self.state["moto"]["eice"]["endpoints"][name];
        assert!(e.is_object(), "no endpoint {name} in the lab: {}", self.state["moto"]["eice"]);
        e
    }

    /// The `eice-…` id of a seeded endpoint by its Name tag.
    pub fn eice_endpoint_id(&self, name: &str) -> String {
        self.eice_endpoint(name)["id"].as_str().expect("endpoint id").to_string()
    }

    /// The fake EICE's test CA (what `Env::net` puts in `SSL_CERT_FILE`).
    pub fn eice_ca(&self) -> PathBuf {
        PathBuf::from(self.state["moto"]["eice"]["ca"].as_str().expect("moto.eice.ca"))
    }

    /// The key store moto's SendSSHPublicKey writes: `STORE/<instance-id>/<os-user>`.
    pub fn eic_store(&self) -> PathBuf {
        PathBuf::from(self.state["eic"]["store"].as_str().expect("eic.store"))
    }

    /// The AuthorizedKeysCommand's log: one line per call, `EPOCH host=H user=U
    /// fingerprint=F printed=N blocks=N expired=N other_instance=N not_ssh=N other_key=N`.
    pub fn akc_log(&self) -> PathBuf {
        PathBuf::from(self.state["eic"]["akc_log"].as_str().expect("eic.akc_log"))
    }

    /// Where the log is now: `akc_calls_since(mark)` then reads only later calls.
    pub fn akc_mark(&self) -> u64 {
        std::fs::metadata(self.akc_log()).map(|m| m.len()).unwrap_or(0)
    }

    /// The command's calls logged after `mark` (a line each, see `akc_log`).
    pub fn akc_calls_since(&self, mark: u64) -> Vec<String> {
        let all = std::fs::read(self.akc_log()).unwrap_or_default();
        let from = (mark as usize).min(all.len());
        String::from_utf8_lossy(&all[from..]).lines().map(str::to_string).collect()
    }

    /// `/etc/netns/<client ns>/hosts` (the endpoints' names → 127.0.0.1).
    pub fn hosts_file(&self) -> PathBuf {
        PathBuf::from(self.state["hosts_file"].as_str().expect("hosts_file: moto reported no endpoints"))
    }

    /// Map more names to 127.0.0.1 inside the client namespace (e.g. the DnsName of an
    /// endpoint a test created): for `ip netns exec` runs started from now on.
    pub fn map_to_loopback(&self, names: &[&str]) {
        static HOSTS: Mutex<()> = Mutex::new(());
        let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.hosts_file();
        let mut text = std::fs::read_to_string(&path).expect("read the lab's hosts file");
        for name in names {
            if !text.lines().any(|l| l.split_whitespace().skip(1).any(|n| n == *name)) {
                text.push_str(&format!("127.0.0.1\t{name}\n"));
            }
        }
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).expect("write hosts");
        std::fs::rename(&tmp, &path).expect("rename hosts");
    }

    /// Make `host`'s sshd ("bastion", "web", "eice_web") accept keys pushed to any of `ids`
    /// (its own id first: e.g. an SSM-only instance whose fake agent dials web).
    pub fn eic_instance_ids(&self, host: &str, ids: &[&str]) {
        let path = PathBuf::from(self.state["eic"]["instance_dir"].as_str().expect("eic.instance_dir")).join(host);
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, ids.iter().map(|i| format!("{i}\n")).collect::<String>()).expect("write ids");
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, &path).expect("rename ids");
    }

    /// Append a key block to the store by hand, in the format moto's SendSSHPublicKey writes
    /// (`#Timestamp=expires`, `#Instance=block_instance`, `#Caller`, `#Request`, the key line,
    /// a blank line), to `STORE/<instance_id>/<user>`. For tests of the bed itself; take
    /// `NETLAB_STATE` for writing, since moto rewrites the same files.
    pub fn eic_write_block(&self, instance_id: &str, user: &str, key_line: &str, expires: u64, block_instance: &str) {
        let dir = self.eic_store().join(instance_id);
        std::fs::create_dir_all(&dir).expect("store dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = dir.join(user);
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&format!(
            "#Timestamp={expires}\n#Instance={block_instance}\n#Caller=arn:aws:iam::123456789012:user/hop-test\n\
             #Request=hop-test-{}\n{key_line}\n\n",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let tmp = dir.join(format!(".{user}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).expect("write block");
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, &path).expect("rename block");
    }

    /// `POST /__fake_eice/PATH` with `body` (knobs, credentials): the answer's JSON.
    pub fn eice_admin(&self, path: &str, body: Value) -> Value {
        self.moto_http("POST", &format!("/__fake_eice/{}", path.trim_start_matches('/')), Some(&body))
    }

    /// `POST /__fake_eic/PATH` with `body` (knobs): the answer's JSON.
    pub fn eic_admin(&self, path: &str, body: Value) -> Value {
        self.moto_http("POST", &format!("/__fake_eic/{}", path.trim_start_matches('/')), Some(&body))
    }

    /// The fake EICE's tunnel records, in opening order (`GET /__fake_eice/tunnels`).
    pub fn eice_tunnels(&self) -> Vec<Value> {
        self.eice_tunnels_since(0)
    }

    /// The tunnel records whose `index` is at least `mark` (`eice_tunnels_mark()` taken before
    /// the test's own tunnels: other tests share the fake, and indexes survive resets).
    pub fn eice_tunnels_since(&self, mark: u64) -> Vec<Value> {
        self.admin_list(&format!("/__fake_eice/tunnels?since={mark}"))
    }

    /// The index the next tunnel will get.
    pub fn eice_tunnels_mark(&self) -> u64 {
        Self::next_index(&self.eice_tunnels())
    }

    /// The fake's endpoint API requests (`GET /__fake_eice/calls?since=MARK`): per op and
    /// region counts, the `requests`, and `next_index` (a mark for later calls).
    pub fn eice_calls_since(&self, mark: u64) -> Value {
        self.moto_http("GET", &format!("/__fake_eice/calls?since={mark}"), None)
    }

    /// moto's record of successful SendSSHPublicKey calls (`GET /__fake_eic/pushes`).
    pub fn eic_pushes(&self) -> Vec<Value> {
        self.eic_pushes_since(0)
    }

    /// The pushes whose `index` is at least `mark` (see `eice_tunnels_since`).
    pub fn eic_pushes_since(&self, mark: u64) -> Vec<Value> {
        self.admin_list(&format!("/__fake_eic/pushes?since={mark}"))
    }

    /// The index the next push will get.
    pub fn eic_pushes_mark(&self) -> u64 {
        Self::next_index(&self.eic_pushes())
    }

    fn next_index(records: &[Value]) -> u64 {
        records.iter().filter_map(|r| r["index"].as_u64()).max().map_or(0, |i| i + 1)
    }

    fn admin_list(&self, path: &str) -> Vec<Value> {
        match self.moto_http("GET", path, None) {
            Value::Array(v) => v,
            other => panic!("{path} is not a list: {other}"),
        }
    }

    /// One HTTP/1.0 request to moto's endpoint, which listens on 127.0.0.1 inside the client
    /// namespace: made from a thread that joined that namespace (setns), so no helper process.
    /// Panics unless the answer is 2xx with a JSON body.
    pub fn moto_http(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let port = self.state["moto"]["port"].as_u64().expect("moto.port") as u16;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let raw = in_netns(self.ns(), move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(request.as_bytes())?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(out)
        })
        .unwrap_or_else(|e| panic!("{method} {path} to moto: {e}"));
        let text = String::from_utf8_lossy(&raw);
        let (head, body) =
            text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {text:?}"));
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!((200..300).contains(&status), "{method} {path}: {head}\n{body}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body:?}"))
    }
}

/// Per-instance console output (fake_console.py, spec §D.2 point 3): moto's GetConsoleOutput
/// answers per instance with a stored text, no `Output`, or moto's sample; seeded at startup
/// (`state.moto.console`: sample-bastion/-web/-eice-web from their sshd's real host keys,
/// sample-app tampered, sample-worker two conflicting blocks, sample-old absent).
impl NetLab {
    /// `POST /__fake_eic/console` for `instance_id` with the other fields of `body` ("text",
    /// "absent", "sample", or "from_host" + "style"/"keys"/"twice"): `{kind, fingerprints}`.
    pub fn console_set(&self, instance_id: &str, body: Value) -> Value {
        let mut body = body;
        body["instance_id"] = Value::String(instance_id.to_string());
        self.moto_http("POST", "/__fake_eic/console", Some(&body))
    }

    /// `GET /__fake_eic/console_calls`: GetConsoleOutput calls of `instance_id` so far and
    /// whether any sent `Latest` (`{calls: 0, latest_sent: false}` when never asked).
    pub fn console_calls(&self, instance_id: &str) -> (u64, bool) {
        let all = self.moto_http("GET", "/__fake_eic/console_calls", None);
        let c = &all[instance_id];
        (c["calls"].as_u64().unwrap_or(0), c["latest_sent"].as_bool().unwrap_or(false))
    }

    /// The seeded console of `name` (`state.moto.console.NAME`: id, kind, fingerprints).
    pub fn seeded_console(&self, name: &str) -> &Value {
        let c = &self.state["moto"]["console"][name];
        assert!(c.is_object(), "moto_lab seeded no console for {name}");
        c
    }

    /// GetConsoleOutput of `instance_id` through the EC2 API (boto3, in the client namespace),
    /// read by `console_check.py`: `{present, text, keys_blocks, fingerprint_blocks}`.
    pub fn console_fetch(&self, instance_id: &str, latest: bool) -> Value {
        let py = python().expect("python");
        let endpoint = self.state["moto"]["endpoint"].as_str().expect("moto endpoint");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns()])
            .arg(py)
            .arg(Path::new(REPO).join("tests/support/console_check.py"))
            .args(["--endpoint", endpoint]);
        if latest {
            cmd.arg("--latest");
        }
        let out = cmd.arg(instance_id).output().expect("run console_check.py");
        assert!(out.status.success(), "console_check.py {instance_id}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("console_check.py prints JSON")
    }
}

/// Run `f` on a fresh thread that has joined network namespace `ns` (`ip netns` name). Only that
/// thread changes namespace (setns with CLONE_NEWNET), and it ends with `f`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns(2) with a namespace fd we hold open; it affects only this thread,
        // which runs `f` and ends.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}

pub fn netlab() -> Option<&'static NetLab> {
    static LAB: OnceLock<Result<NetLab, String>> = OnceLock::new();
    match LAB.get_or_init(start_netlab) {
        Ok(l) => Some(l),
        Err(why) => {
            unavailable(why);
            None
        }
    }
}

fn start_netlab() -> Result<NetLab, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the SSH test bed needs root (network namespaces)".into());
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        return Err("/usr/sbin/sshd missing: run scripts/install-test-deps.sh".into());
    }
    let started = Instant::now();
    let (state, launcher) = launch("netns_lab.py", &["--moto"])?;
    eprintln!("SSH test bed ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(NetLab { state, _launcher: launcher })
}

/// Skip (loudly) unless the SSH test bed runs: `let Some(net) = netlab_or_skip!();`
#[macro_export]
macro_rules! netlab_or_skip {
    () => {
        match $crate::support::netlab() {
            Some(l) => l,
            None => return,
        }
    };
}

impl Env {
    /// An environment for hop inside the client namespace: the moto lab there, the tutorial's
    /// key files in ~/.ssh. known_hosts is left to the test.
    pub fn net(net: &NetLab) -> Env {
        let mut e = Env::bare();
        e.set("AWS_ENDPOINT_URL", net.state["moto"]["endpoint"].as_str().expect("moto endpoint"))
            .set("AWS_ACCESS_KEY_ID", "testing")
            .set("AWS_SECRET_ACCESS_KEY", "testing")
            .set("AWS_REGION", "us-east-1");
        // The fake EICE's TLS: rustls-native-certs then trusts only the lab's test CA.
        if let Some(ca) = net.state["moto"]["eice"]["ca"].as_str() {
            e.set("SSL_CERT_FILE", ca);
        }
        for key in ["sample-bastion", "sample-web"] {
            let src = net.state["keys"][key].as_str().expect("key path");
            let dst = e.write(&format!(".ssh/{key}.pem"), &std::fs::read(src).expect("read key"));
            std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        e
    }

    /// known_hosts naming both hosts by instance id, as `hop --accept-new` or `hop config` users
    /// would have it.
    pub fn trust_both(&self, net: &NetLab) {
        let text = format!(
            "{} {}\n{} {}\n",
            net.id("sample-bastion"),
            net.host_key("bastion"),
            net.id("sample-web"),
            net.host_key("web")
        );
        self.write(".ssh/known_hosts", text.as_bytes());
    }

    /// Add sample-eice-web's host key under its instance id to ~/.ssh/known_hosts (after
    /// `trust_both`, or alone).
    pub fn trust_eice_web(&self, net: &NetLab) {
        let mut known = std::fs::read_to_string(self.path(".ssh/known_hosts")).unwrap_or_default();
        known.push_str(&format!("{} {}\n", net.id("sample-eice-web"), net.eice_web_host_key()));
        self.write(".ssh/known_hosts", known.as_bytes());
    }

    /// `hop ARGS` run inside the client namespace, with `stdin` as its input.
    pub fn hop_in(&self, net: &NetLab, args: &[&str], stdin: &[u8]) -> Run {
        let started = Instant::now();
        let mut child =
            self.command_in(net, env!("CARGO_BIN_EXE_hop"), args).stdin(Stdio::piped()).spawn().expect("spawn");
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait");
        writer.join().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Any program run inside the client namespace with this environment.
    pub fn command_in(&self, net: &NetLab, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", net.ns(), program])
            .args(args)
            .env_clear()
            .envs(&self.vars)
            .current_dir(self.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

/// Instances whose Name tags try to take over a terminal (newline, C1 controls, bidi
/// overrides), in a region of their own: tests/support/hostile_names.py, built once per run.
pub fn hostile(lab: &Lab) -> &'static Value {
    static HOSTILE: OnceLock<Value> = OnceLock::new();
    HOSTILE.get_or_init(|| {
        let out = Command::new(python().expect("the lab runs, so python is set"))
            .arg(format!("{REPO}/tests/support/hostile_names.py"))
            .args(["--endpoint", &lab.endpoint])
            .output()
            .expect("run hostile_names.py");
        assert!(out.status.success(), "hostile_names.py: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("hostile_names.py prints JSON")
    })
}

/// Replace each of the hostile lab's ids (and the bastion's public address, which depends on
/// what other tests launched first) with `<key>` padded to the same width, so whole tables can
/// be compared with their columns as hop aligned them.
pub fn redact_hostile(hostile: &Value, text: &str) -> String {
    let same_width = |value: &str, label: String| format!("{label:_<width$}", width = value.chars().count());
    let mut out = text.to_string();
    for (key, i) in hostile["instances"].as_object().expect("instances") {
        let id = i["id"].as_str().expect("id");
        out = out.replace(id, &same_width(id, format!("<{key}>")));
        if let Some(ip) = i["public_ip"].as_str() {
            out = out.replace(ip, &same_width(ip, "<public>".into()));
        }
    }
    let vpc = hostile["vpc"].as_str().expect("vpc");
    out.replace(vpc, &same_width(vpc, "<vpc>".into()))
}

/// Whether `pid` is a running (not zombie) `hop __master`.
pub fn is_master_process(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true);
    cmdline.split(|b| *b == 0).any(|a| a == b"__master") && !zombie
}

/// No test leaves a connection master behind: each is killed by the PID its sidecar names.
impl Drop for Env {
    fn drop(&mut self) {
        for pid in self.masters() {
            // SAFETY: kill(2) of a checked master process this test's hop started, by PID.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// Reproducible incompressible bytes (xorshift32), for data-path tests.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
