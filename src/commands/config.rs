//! `hop config [--write] [--file F]`: ssh_config stanzas for every reachable instance; `--write`
//! installs them in `~/.ssh/hop/config` and adds one `Include` line to the user's ssh config.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::adapters::fs::{InstallError, InstallRequest, install};
use crate::adapters::inventory::{self, Freshness};
use crate::domain::ssh_config::{Stanza, render};
use crate::domain::stanzas::{Planned, build};
use crate::error::HopError;
use crate::settings::Settings;

/// `file`: the ssh config to add the Include to (absolute; default ~/.ssh/config).
pub async fn run(settings: &Settings, write: bool, file: Option<std::path::PathBuf>) -> anyhow::Result<u8> {
    let loaded = inventory::load(settings, Freshness::Live).await?;
    let planned: Vec<Planned> = super::plan_all(settings, &loaded.instances)
        .into_iter()
        .map(|(instance, route)| Planned { instance, route })
        .collect();
    let (stanzas, skipped) = build(&planned, &|i| ssm_proxy(settings, i));
    let text = render(&stanzas, &skipped);
    if !write {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(0);
    }
    let user_config = file.unwrap_or_else(|| settings.ssh_dir.join("config"));
    let hop_file = user_config.parent().unwrap_or(Path::new(".")).join("hop").join("config");
    let check = stanzas.first().cloned();
    let validate = move |candidate: &Path| match &check {
        Some(s) => ssh_g_check(candidate, s),
        None => Ok(()),
    };
    let outcome = install(&InstallRequest {
        user_config: &user_config,
        hop_file: &hop_file,
        hop_text: &text,
        validate: &validate,
    })
    .map_err(|e| install_error(e, &user_config))?;
    let mut err = std::io::stderr().lock();
    let n = stanzas.len();
    let verb = if outcome.hop_file_changed { "wrote" } else { "unchanged:" };
    writeln!(err, "hop: {verb} {} ({n} hosts, {} skipped)", hop_file.display(), skipped.len())?;
    if outcome.user_config_changed {
        writeln!(err, "hop: added `Include {}` to {}", hop_file.display(), user_config.display())?;
    }
    if let Some(b) = outcome.backup {
        writeln!(err, "hop: backup of the previous file: {}", b.display())?;
    }
    Ok(0)
}

/// hop itself as the ProxyCommand of SSM-only hosts: this binary's absolute path (ssh's PATH
/// may not have it), the profile when one was named, and the instance's region.
fn ssm_proxy(settings: &Settings, i: &crate::domain::inventory::Instance) -> Vec<String> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "hop".into());
    let mut words = vec![exe];
    if settings.profile_explicit {
        words.extend(["--profile".to_string(), settings.profile.clone()]);
    }
    words.extend(["--region".to_string(), i.region.clone(), "proxy".to_string()]);
    words
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
