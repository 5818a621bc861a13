//! `hop stop [PATTERN]`: list the background connection masters (DESIGN §5a) and end them, each
//! by its PID once that PID is checked to be the master its sidecar names.

use std::io::Write;
use std::time::Duration;

use crate::adapters::ssh::reuse;
use crate::domain::display::escape;

pub fn run(dir: &std::path::Path, pattern: Option<&str>) -> anyhow::Result<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let matches =
        |s: &reuse::Sidecar| pattern.is_none_or(|p| s.label.contains(p) || s.targets.iter().any(|t| t.contains(p)));
    // Only a directory that is this user's and private is read: anyone else's sidecars could
    // name any process.
    if dir.exists()
        && let Err(why) = reuse::private_dir(dir)
    {
        return Err(
            crate::error::HopError::Usage { message: format!("not reading masters: {why}"), hints: vec![] }.into()
        );
    }
    let mut out = std::io::stdout().lock();
    let mut ended = 0;
    for (path, master) in reuse::masters(dir) {
        if !matches(&master) {
            continue;
        }
        let key = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if !reuse::end(master.pid, &key, Duration::from_secs(3)) {
            continue;
        }
        let targets = if master.targets.is_empty() { "-".to_string() } else { master.targets.join(",") };
        let idle = match master.idle_since {
            Some(since) => format!("idle {}", age(now.saturating_sub(since))),
            None => "in use".to_string(),
        };
        let _ = writeln!(
            out,
            "ended master for {} (pid {}): targets {}, up {}, {idle}",
            escape(&master.label),
            master.pid,
            escape(&targets),
            age(now.saturating_sub(master.started))
        );
        ended += 1;
    }
    if ended == 0 {
        let _ = writeln!(
            out,
            "no connection masters{}",
            pattern.map(|p| format!(" match {}", escape(p))).unwrap_or_default()
        );
    }
    Ok(0)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}
