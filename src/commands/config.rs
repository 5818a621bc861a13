//! `hop config [--write] [--file F]`: ssh_config stanzas for every reachable instance; `--write`
//! installs them in `~/.ssh/hop/config` and adds one `Include` line to the user's ssh config.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::adapters::fs::{InstallError, InstallRequest, install, private_dir};
use crate::adapters::inventory::{self, Freshness};
use crate::adapters::ssh_configs::{self, Sources};
use crate::domain::claims::{Claims, is_instance_id, sharing_claim};
use crate::domain::display::escape;
use crate::domain::ssh_config::{Stanza, is_plain_alias, render};
use crate::domain::stanzas::{self, NoSharing, Planned, build, candidates};
use crate::error::HopError;
use crate::settings::Settings;

/// Where this machine's own names are (see `ssh_configs::loopback_names`).
const HOSTS_FILE: &str = "/etc/hosts";

/// `file`: the ssh config to add the Include to (absolute; default ~/.ssh/config).
pub async fn run(settings: &Settings, write: bool, file: Option<std::path::PathBuf>) -> anyhow::Result<u8> {
    let loaded = inventory::load(settings, Freshness::Live).await?;
    let planned: Vec<Planned> =
        super::plan_all(settings, &loaded).into_iter().map(|(instance, route)| Planned { instance, route }).collect();
    let user_config = file.unwrap_or_else(|| settings.ssh_dir.join("config"));
    let hop_file = user_config.parent().unwrap_or(Path::new(".")).join("hop").join("config");
    let home = settings.ssh_dir.parent().unwrap_or(&settings.ssh_dir);

    // What already answers to a name: the user's and the system's ssh configs (hop's own file
    // aside), and this machine's names. Only names that could become aliases are looked up.
    let config_lines = ssh_configs::lines(&Sources {
        user_config: &user_config,
        system_config: &settings.system_ssh_config,
        home,
        hop_file: &hop_file,
    });
    let host_lines = ssh_configs::host_lines_of(&config_lines);
    let lookups: Vec<String> = candidates(planned.iter().map(|p| p.instance))
        .into_values()
        .filter(|a| is_plain_alias(a) && !a.contains(['.', ':']) && !is_instance_id(a))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let loopback = ssh_configs::loopback_names(&lookups, Path::new(HOSTS_FILE));
    let ids: BTreeSet<String> = loaded.instances.iter().map(|i| i.id.clone()).collect();
    let claims = Claims { host_lines: &host_lines, loopback: &|n| loopback.contains(n), instance_ids: &ids };

    // OpenSSH's connection sharing, with its sockets beside hop's file. Every name hop may
    // write counts for the user's own Control* lines (a superset of the aliases written).
    let names: Vec<String> = candidates(planned.iter().map(|p| p.instance))
        .into_values()
        .chain(planned.iter().map(|p| p.instance.id.clone()))
        .collect();
    let claim = sharing_claim(&config_lines, &names);
    let control_dir = hop_file.parent().unwrap_or(Path::new(".")).join("cm");
    let sharing = stanzas::sharing(settings.share_connections, claim, control_dir.to_str()).and_then(|s| {
        match private_dir(&control_dir, write) {
            Ok(()) => Ok(s),
            Err(why) => Err(NoSharing::Dir { dir: s.dir, why }),
        }
    });
    let notes: Vec<String> = sharing.as_ref().err().map(NoSharing::note).into_iter().collect();

    let program = hop_program();
    let own_key = own_key(&settings.ssh_dir);
    let built =
        build(&planned, &claims, &|i| ssm_proxy(settings, &program, i), sharing.as_ref().ok(), own_key.as_ref());
    // One line per alias not written: before the stanzas when printing, after the install
    // when writing (a failed install reports only why it failed).
    let warn = || -> std::io::Result<()> {
        let mut err = std::io::stderr().lock();
        for a in &built.skipped_aliases {
            writeln!(err, "hop: warning: skipped alias {}: {}; use `ssh {}`", a.label(), a.collision, escape(&a.id))?;
        }
        // Printing does not make the directory: no warning that it is missing.
        if let (true, Err(e @ NoSharing::Dir { .. })) = (write, &sharing) {
            writeln!(err, "hop: warning: {}", escape(&e.note()))?;
        }
        Ok(())
    };
    let text = render(&built.stanzas, &built.skipped_lines(), &notes);
    if !write {
        warn()?;
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(0);
    }
    let check = built.stanzas.first().cloned();
    let validate = move |candidate: &Path| match &check {
        Some(s) => ssh_g_check(candidate, s),
        None => Ok(()),
    };
    let outcome = install(&InstallRequest {
        user_config: &user_config,
        hop_file: &hop_file,
        hop_text: &text,
        home,
        validate: &validate,
    })
    .map_err(|e| install_error(e, &user_config))?;
    warn()?;
    let mut err = std::io::stderr().lock();
    let n = built.stanzas.len();
    let verb = if outcome.hop_file_changed { "wrote" } else { "unchanged:" };
    writeln!(err, "hop: {verb} {} ({n} hosts, {} skipped)", hop_file.display(), built.skipped.len())?;
    if outcome.user_config_changed {
        writeln!(err, "hop: added `Include {}` to {}", hop_file.display(), user_config.display())?;
    }
    if let Some(b) = outcome.backup {
        writeln!(err, "hop: backup of the previous file: {}", b.display())?;
    }
    Ok(0)
}

/// hop itself as the ProxyCommand of SSM-only hosts: this binary's absolute path (ssh's PATH
/// may not have it; see [`invoked_path`]), the profile when one was named, and the instance's
/// region.
fn ssm_proxy(settings: &Settings, program: &Path, i: &crate::domain::inventory::Instance) -> Vec<String> {
    let mut words = vec![program.display().to_string()];
    if settings.profile_explicit {
        words.extend(["--profile".to_string(), settings.profile.clone()]);
    }
    words.extend(["--region".to_string(), i.region.clone(), "proxy".to_string()]);
    words
}

/// The user's key pair `hop proxy --push-key` pushes for hosts whose login pushes a key: the
/// first of `~/.ssh/id_ed25519.pub`, `~/.ssh/id_rsa.pub` that exists.
fn own_key(ssh_dir: &Path) -> Option<stanzas::OwnKey> {
    stanzas::OWN_KEYS.iter().map(|name| ssh_dir.join(name)).find(|p| p.with_extension("pub").is_file()).map(|p| {
        stanzas::OwnKey { public: p.with_extension("pub").display().to_string(), private: p.display().to_string() }
    })
}

/// This process's [`invoked_path`].
fn hop_program() -> PathBuf {
    let Ok(exe) = std::env::current_exe() else { return PathBuf::from("hop") };
    let argv0 = std::env::args_os().next();
    let cwd = std::env::current_dir().ok();
    let path = std::env::var_os("PATH");
    invoked_path(argv0.as_deref(), cwd.as_deref(), path.as_deref(), &exe, &|p| std::fs::canonicalize(p).ok())
}

/// The path to write into ProxyCommand: the one hop was invoked by (`argv0` made absolute
/// against `cwd`, or found on `path` like execvp does) when it is the same file as
/// `current_exe`, else `current_exe`. `current_exe` is the resolved binary (on Linux,
/// `/proc/self/exe`): for `~/.cargo/bin/hop` or Homebrew's `/opt/homebrew/bin/hop` that is a
/// versioned directory that the next upgrade removes, while the invoked path stays valid.
/// `canonical` resolves symlinks (`None`: does not exist).
pub fn invoked_path(
    argv0: Option<&OsStr>,
    cwd: Option<&Path>,
    path: Option<&OsStr>,
    current_exe: &Path,
    canonical: &dyn Fn(&Path) -> Option<PathBuf>,
) -> PathBuf {
    let absolute = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() { p.to_path_buf() } else { cwd?.join(p) };
        // `a/./b` → `a/b`; `..` stays (it may cross a symlink).
        Some(p.components().collect())
    };
    let invoked = argv0.filter(|a| !a.is_empty()).and_then(|a| {
        let a = Path::new(a);
        if a.components().count() > 1 || a.as_os_str().as_encoded_bytes().contains(&b'/') {
            absolute(a)
        } else {
            // As execvp: the first PATH entry that has it (an empty entry is the cwd).
            std::env::split_paths(path?)
                .filter_map(|dir| absolute(&dir.join(a)))
                .find(|candidate| canonical(candidate).is_some())
        }
    });
    match (invoked, canonical(current_exe)) {
        (Some(invoked), Some(exe)) if canonical(&invoked).as_ref() == Some(&exe) => invoked,
        _ => current_exe.to_path_buf(),
    }
}

fn install_error(e: InstallError, user_config: &Path) -> HopError {
    let mut hints = Vec::new();
    match &e {
        InstallError::Contended { .. } => {
            hints.push("run `hop config --write` again: every version written was complete and valid".to_string())
        }
        InstallError::Rejected { .. } if std::fs::read(user_config).is_ok_and(|b| b.starts_with(b"\xEF\xBB\xBF")) => {
            hints.push(format!(
                "OpenSSH cannot read {} already: remove the byte order mark at its start",
                user_config.display()
            ));
            hints.push(format!("nothing was changed; {} is as it was", user_config.display()));
        }
        _ => hints.push(format!("nothing was changed; {} is as it was", user_config.display())),
    }
    HopError::Usage { message: e.to_string(), hints }
}

/// Ask the real OpenSSH whether `candidate` parses and makes `stanza`'s alias resolve to our
/// HostName (which also proves the Include comes first). Skipped when `ssh` is not installed.
fn ssh_g_check(candidate: &Path, stanza: &Stanza) -> Result<(), String> {
    let alias = &stanza.hosts[0];
    // `Match exec` lines run commands during `ssh -G`: bounded, so a hanging one cannot hang hop.
    let child = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(candidate)
        .arg(alias)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!("ssh not installed; skipping the `ssh -G` check");
            return Ok(());
        }
        Err(e) => return Err(format!("cannot run ssh -G: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("ssh -G did not finish within 10 s (a `Match exec` that hangs?)".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("ssh -G rejects it: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("hostname {}", stanza.host_name);
    if !stdout.lines().any(|l| l == want) {
        let got = stdout.lines().find(|l| l.starts_with("hostname ")).unwrap_or("hostname ?");
        return Err(format!(
            "ssh -G {alias} gives `{got}`, expected `{want}`: an earlier line of the file overrides hop's"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn invoked_path_table() {
        // A cargo-installed hop linked into a versioned directory, an old copy elsewhere.
        let links: BTreeMap<&str, &str> = [
            ("/home/u/.cargo/bin/hop", "/opt/hop/1.2/bin/hop"),
            ("/opt/hop/1.2/bin/hop", "/opt/hop/1.2/bin/hop"),
            ("/usr/local/bin/hop", "/usr/local/bin/hop"),
            ("/home/u/proj/target/debug/hop", "/home/u/proj/target/debug/hop"),
            ("/home/u/bin/hop", "/opt/hop/1.2/bin/hop"),
        ]
        .into();
        let canonical = |p: &Path| links.get(p.to_str()?).map(PathBuf::from);
        let exe = Path::new("/opt/hop/1.2/bin/hop");
        let cwd = Some(Path::new("/home/u"));
        let path = |s: &'static str| Some(OsStr::new(s));
        let cases: Vec<(Option<&str>, Option<&OsStr>, &str)> = vec![
            // Found on PATH: the PATH entry, not the versioned directory.
            (Some("hop"), path("/usr/bin:/home/u/.cargo/bin:/usr/local/bin"), "/home/u/.cargo/bin/hop"),
            // Absolute argv0.
            (Some("/home/u/.cargo/bin/hop"), None, "/home/u/.cargo/bin/hop"),
            // Relative argv0, made absolute against the working directory.
            (Some("bin/hop"), None, "/home/u/bin/hop"),
            (Some("./bin/hop"), None, "/home/u/bin/hop"),
            // A relative PATH entry.
            (Some("hop"), path("bin"), "/home/u/bin/hop"),
            // The first match on PATH is another file: not what runs, so the real binary.
            (Some("hop"), path("/usr/local/bin:/home/u/.cargo/bin"), "/opt/hop/1.2/bin/hop"),
            (Some("/usr/local/bin/hop"), None, "/opt/hop/1.2/bin/hop"),
            // Nothing usable.
            (Some("hop"), None, "/opt/hop/1.2/bin/hop"),
            (Some("hop"), path("/nowhere"), "/opt/hop/1.2/bin/hop"),
            (Some(""), None, "/opt/hop/1.2/bin/hop"),
            (None, path("/home/u/.cargo/bin"), "/opt/hop/1.2/bin/hop"),
        ];
        for (argv0, path, want) in cases {
            let got = invoked_path(argv0.map(OsStr::new), cwd, path, exe, &canonical);
            assert_eq!(got, Path::new(want), "{argv0:?} {path:?}");
        }
        // No working directory: a relative argv0 cannot be made absolute.
        assert_eq!(invoked_path(Some(OsStr::new("bin/hop")), None, None, exe, &canonical), exe);
        // current_exe that does not resolve (deleted binary): kept as is.
        let gone = Path::new("/gone/hop");
        assert_eq!(invoked_path(Some(OsStr::new("/home/u/.cargo/bin/hop")), cwd, None, gone, &canonical), gone);
    }
}
