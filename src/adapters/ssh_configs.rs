//! What the ssh configs of this machine claim, for `hop config` (rule in `domain::claims`): the
//! `Host`/`Match host` lines of the user's config and the system's, following `Include` the way
//! OpenSSH does, and which names this machine maps to a loopback address.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::domain::claims::{ConfigLine, HostLine};
use crate::domain::ssh_config::{Entry, glob_component, include_pattern, parse_lenient};

/// OpenSSH's `READCONF_MAX_DEPTH`: deeper includes are an error for ssh, and a cycle for us.
const MAX_DEPTH: usize = 16;

/// Where the configs are.
pub struct Sources<'a> {
    /// `~/.ssh/config`, or `--file`.
    pub user_config: &'a Path,
    /// `/etc/ssh/ssh_config` (elsewhere for an OpenSSH built with another sysconfdir); its
    /// directory is where its relative `Include`s resolve.
    pub system_config: &'a Path,
    /// `$HOME`: `~` in `Include`, and the user's relative includes resolve in `~/.ssh`.
    pub home: &'a Path,
    /// hop's own file: never a claimant, even when an `Include` glob takes it in.
    pub hop_file: &'a Path,
}

/// The `Host`/`Match host` lines among [`lines`]: every one ssh may read, in its order, also
/// from files included inside `Host`/`Match` blocks (such an include applies to some hosts, so
/// its names are in use). A missing or unreadable file claims nothing; a line ssh would reject
/// is skipped.
pub fn host_lines_of(lines: &[ConfigLine]) -> Vec<HostLine> {
    lines.iter().filter_map(|l| HostLine::from_entry(&l.file, &l.entry)).collect()
}

/// Every line ssh may read (but `Include`s, which are followed), in its order, each with the
/// `Host`/`Match` line it sits under: the user's config with what it includes inline, then the
/// system's. An included file's lines start under the block of the `Include` line, and the
/// includer's block is back after it, as in OpenSSH.
pub fn lines(sources: &Sources) -> Vec<ConfigLine> {
    let mut walk = Walk {
        home: sources.home,
        skip: std::fs::canonicalize(sources.hop_file).ok(),
        seen: BTreeSet::new(),
        out: Vec::new(),
    };
    let user_dir = sources.home.join(".ssh");
    walk.file(sources.user_config, &user_dir, 0, None);
    let system_dir = sources.system_config.parent().unwrap_or(Path::new("/etc/ssh")).to_path_buf();
    walk.file(sources.system_config, &system_dir, 0, None);
    walk.out
}

struct Walk<'a> {
    home: &'a Path,
    skip: Option<PathBuf>,
    seen: BTreeSet<PathBuf>,
    out: Vec<ConfigLine>,
}

impl Walk<'_> {
    /// `dir`: where relative includes of this file resolve (`~/.ssh` for the user's configs and
    /// everything they include, the system config's directory for the system's). `block`: the
    /// `Host`/`Match` line the file is included under.
    fn file(&mut self, path: &Path, dir: &Path, depth: usize, mut block: Option<Entry>) {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if depth > MAX_DEPTH || self.skip.as_ref() == Some(&canonical) || !self.seen.insert(canonical) {
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!("cannot read {}: {e}", path.display());
                }
                return;
            }
        };
        let shown = shown(path, self.home);
        for entry in parse_lenient(&bytes) {
            if entry.keyword == "include" {
                for arg in &entry.args {
                    let pattern = include_pattern(arg, &self.home.to_string_lossy(), &dir.to_string_lossy());
                    for found in pattern.map(|p| expand(&p)).unwrap_or_default() {
                        self.file(&found, dir, depth + 1, block.clone());
                    }
                }
                continue;
            }
            if entry.keyword == "host" || entry.keyword == "match" {
                block = Some(entry.clone());
            }
            self.out.push(ConfigLine { file: shown.clone(), entry, block: block.clone() });
        }
    }
}

/// A path as the user knows it: `~/…` under the home directory.
pub fn shown(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if !home.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// The files an absolute glob(3) pattern names, sorted per directory like glob's output; a
/// component without `*?[` is taken literally (after removing `\` escapes).
fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if !component.contains(['*', '?', '[']) {
                let p = dir.join(unescape(component));
                if p.symlink_metadata().is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut names: Vec<String> =
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            next.extend(names.into_iter().filter(|n| glob_component(component, n)).map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

fn unescape(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    let mut chars = component.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Which of `names` this machine maps to a loopback address without asking anyone: the hosts
/// file (`/etc/hosts`: where `localhost`, `ip6-localhost` and the machine's own name live),
/// `localhost` and every `*.localhost` (RFC 6761), and loopback IP literals. No DNS: a lookup
/// would send every Name tag to the resolver and could stall `hop config` for seconds, for
/// names a DNS server almost never maps to loopback. An unreadable hosts file counts as empty.
pub fn loopback_names(names: &[String], hosts_file: &Path) -> BTreeSet<String> {
    let hosts = std::fs::read_to_string(hosts_file).unwrap_or_default();
    let mut local = BTreeSet::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<std::net::IpAddr>) else { continue };
        if is_loopback(&ip) {
            local.extend(fields.map(str::to_ascii_lowercase));
        }
    }
    names
        .iter()
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            lower == "localhost"
                || lower.ends_with(".localhost")
                || local.contains(&lower)
                || n.parse::<std::net::IpAddr>().is_ok_and(|ip| is_loopback(&ip))
        })
        .cloned()
        .collect()
}

fn is_loopback(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_lines(sources: &Sources) -> Vec<HostLine> {
        host_lines_of(&lines(sources))
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn follows_includes_like_openssh() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let ssh = home.join(".ssh");
        let etc = dir.path().join("etc/ssh");
        write(
            &ssh.join("config"),
            "Include hop/config\nHost a\nInclude conf.d/*.conf\nInclude ~/extra/[x]y\nHost b\nInclude missing/*\nInclude ~/.ssh/config\n",
        );
        write(&ssh.join("hop/config"), "Host hop-alias\n");
        write(&ssh.join("conf.d/2.conf"), "Host c2\n");
        write(&ssh.join("conf.d/1.conf"), "Host c1\nInclude deeper\n");
        write(&ssh.join("conf.d/skip.txt"), "Host no\n");
        write(&ssh.join("conf.d/.hidden.conf"), "Host no\n");
        write(&ssh.join("deeper"), "Match host d\n");
        write(&home.join("extra/xy"), "Host xy\n");
        write(&etc.join("ssh_config"), "Include ssh_config.d/*.conf\nHost *\nHost sys\n");
        write(&etc.join("ssh_config.d/10.conf"), "Host sys-d\n");
        let lines = host_lines(&Sources {
            user_config: &ssh.join("config"),
            system_config: &etc.join("ssh_config"),
            home: &home,
            hop_file: &ssh.join("hop/config"),
        });
        let got: Vec<(String, usize, String)> =
            lines.into_iter().map(|l| (l.file, l.line, l.patterns.join(" "))).collect();
        let etc = etc.display();
        let want = vec![
            ("~/.ssh/config".to_string(), 2, "a"),
            ("~/.ssh/conf.d/1.conf".into(), 1, "c1"),
            ("~/.ssh/deeper".into(), 1, "d"),
            ("~/.ssh/conf.d/2.conf".into(), 1, "c2"),
            ("~/extra/xy".into(), 1, "xy"),
            ("~/.ssh/config".into(), 5, "b"),
            (format!("{etc}/ssh_config.d/10.conf"), 1, "sys-d"),
            (format!("{etc}/ssh_config"), 3, "sys"),
        ];
        assert_eq!(got, want.into_iter().map(|(f, l, p)| (f, l, p.to_string())).collect::<Vec<_>>());
    }

    /// Each line with the `Host`/`Match` it sits under, across includes: an included file
    /// starts under the `Include` line's block, and the includer's block is back after it.
    #[test]
    fn lines_know_their_block_across_includes() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        write(&home.join(".ssh/config"), "ControlMaster no\nHost a\nInclude inc\nUser x\n");
        write(&home.join(".ssh/inc"), "Port 1\nHost b\nPort 2\n");
        write(&home.join("etc/ssh_config"), "User top\n");
        let got: Vec<(String, usize, String, Option<String>)> = lines(&Sources {
            user_config: &home.join(".ssh/config"),
            system_config: &home.join("etc/ssh_config"),
            home,
            hop_file: &home.join(".ssh/hop/config"),
        })
        .into_iter()
        .map(|l| (l.file, l.entry.line, l.entry.keyword, l.block.map(|b| b.args.join(" "))))
        .collect();
        let want = [
            ("~/.ssh/config", 1, "controlmaster", None),
            ("~/.ssh/config", 2, "host", Some("a")),
            ("~/.ssh/inc", 1, "port", Some("a")),
            ("~/.ssh/inc", 2, "host", Some("b")),
            ("~/.ssh/inc", 3, "port", Some("b")),
            ("~/.ssh/config", 4, "user", Some("a")),
            ("~/etc/ssh_config", 1, "user", None),
        ];
        let want: Vec<(String, usize, String, Option<String>)> =
            want.iter().map(|(f, l, k, b)| (f.to_string(), *l, k.to_string(), b.map(str::to_string))).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn include_cycles_end() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        write(&home.join(".ssh/config"), "Include a\nHost top\n");
        write(&home.join(".ssh/a"), "Include b\nHost in-a\n");
        write(&home.join(".ssh/b"), "Include a\nInclude config\n");
        let lines = host_lines(&Sources {
            user_config: &home.join(".ssh/config"),
            system_config: &home.join("none"),
            home,
            hop_file: &home.join(".ssh/hop/config"),
        });
        let got: Vec<String> = lines.into_iter().map(|l| l.patterns.join(" ")).collect();
        assert_eq!(got, ["in-a", "top"]);
    }

    #[test]
    fn loopback_names_from_the_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        write(
            &hosts,
            "127.0.0.1 localhost\n127.0.1.1 buildbox buildbox.lan # this machine\n::1 ip6-localhost ip6-loopback\n\
             10.0.0.5 jenkins\n# 127.0.0.1 commented\n::ffff:127.0.0.2 mapped\n",
        );
        let names: Vec<String> = [
            "localhost",
            "LocalHost",
            "web.localhost",
            "buildbox",
            "ip6-loopback",
            "mapped",
            "jenkins",
            "commented",
            "127.0.0.1",
            "::1",
            "192.0.2.1",
            "sample-web",
        ]
        .map(String::from)
        .into();
        let got = loopback_names(&names, &hosts);
        let want: BTreeSet<String> =
            ["localhost", "LocalHost", "web.localhost", "buildbox", "ip6-loopback", "mapped", "127.0.0.1", "::1"]
                .map(String::from)
                .into();
        assert_eq!(got, want);
        // No hosts file: still localhost and loopback literals.
        let got = loopback_names(&names, &dir.path().join("missing"));
        assert_eq!(got, ["localhost", "LocalHost", "web.localhost", "127.0.0.1", "::1"].map(String::from).into());
    }
}
