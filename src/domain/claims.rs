//! Names hop must not take as host aliases because something else already answers to them: a
//! `Host` or `Match host` pattern of an ssh config the user's ssh reads (their own, the system's,
//! and every file those include), `localhost` and names that resolve to a loopback address,
//! instance ids and IP addresses. hop's `Include` comes first in `~/.ssh/config` (it has to, so
//! that its values win for its own hosts), so an alias taken from a Name tag would otherwise
//! capture `ssh jenkins` for whoever can tag an instance `jenkins`, with the user's own options
//! for jenkins (`ForwardAgent yes`) still applying. Pure: configs come in parsed, name
//! resolution as a precomputed answer.

use std::collections::BTreeSet;
use std::fmt;

use super::filter::glob;
use super::ssh_config::{Entry, is_plain_alias};

/// The host patterns one `Host` or `Match` line of an ssh config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLine {
    /// The file as shown to the user, e.g. `~/.ssh/config`.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// Patterns (`*` and `?` wildcards) with any `!` removed; never a bare `*`.
    pub patterns: Vec<String>,
}

/// `Match` criteria that take no argument; every other one takes one.
const MATCH_FLAGS: &[&str] = &["all", "canonical", "final"];

impl HostLine {
    /// The names a directive claims: every pattern of a `Host` line, and of the `host` and
    /// `originalhost` criteria of a `Match` line. A negated pattern (`Host * !jenkins`) claims
    /// what it names too: the user has a rule for that name, and an alias would change which
    /// rules apply to it. A bare `*` claims nothing: it is every host's defaults, not a name in
    /// use. `None` when the line names no host (`Host *`, `Match all`, `Match user bob`, others).
    pub fn from_entry(file: &str, entry: &Entry) -> Option<HostLine> {
        let mut raw: Vec<&str> = Vec::new();
        match entry.keyword.as_str() {
            "host" => raw.extend(entry.args.iter().map(String::as_str)),
            "match" => {
                let mut args = entry.args.iter().map(String::as_str);
                while let Some(arg) = args.next() {
                    // `!host x` negates a criterion; `host=x` is read like `host x`.
                    let arg = arg.trim_start_matches('!');
                    let (criterion, inline) = match arg.split_once('=') {
                        Some((c, v)) => (c.to_ascii_lowercase(), Some(v)),
                        None => (arg.to_ascii_lowercase(), None),
                    };
                    if MATCH_FLAGS.contains(&criterion.as_str()) {
                        continue;
                    }
                    let Some(value) = inline.or_else(|| args.next()) else { break };
                    if criterion == "host" || criterion == "originalhost" {
                        raw.push(value);
                    }
                }
            }
            _ => return None,
        }
        let patterns: Vec<String> = raw
            .iter()
            .flat_map(|a| a.split(','))
            .map(|p| p.trim_start_matches('!'))
            .filter(|p| !p.is_empty() && *p != "*")
            .map(str::to_string)
            .collect();
        if patterns.is_empty() {
            return None;
        }
        Some(HostLine { file: file.to_string(), line: entry.line, patterns })
    }

    /// Whether `name` matches one of the patterns. Case-insensitive: ssh lowercases the host
    /// it is given.
    pub fn claims(&self, name: &str) -> bool {
        // OpenSSH's `match_pattern`: `*` any run of bytes, `?` one byte, nothing else special.
        let name = name.to_lowercase();
        self.patterns.iter().any(|p| glob(p.to_lowercase().as_bytes(), name.as_bytes()))
    }
}

/// Why a Name tag is not used as a host alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collision {
    /// Whitespace, quotes, pattern, comment or control characters: not a name `Host` takes
    /// literally.
    NotAlias,
    /// A `.` or `:`: could be a real host name or address (`github.com`).
    HostName,
    Localhost,
    /// Resolves to a loopback address, i.e. names this machine.
    Loopback,
    /// Shaped like an instance id; `of` when it is the id of an instance in the inventory.
    InstanceId {
        of: Option<String>,
    },
    /// An IPv4 address in one of the forms `inet_aton` accepts (`2130706433`, `0x7f000001`).
    Address,
    /// Another instance has the same alias (its Name, or its `NAME-ID`).
    Instance {
        id: String,
    },
    /// A `Host` or `Match host` line of an ssh config.
    Config {
        file: String,
        line: usize,
    },
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Collision::NotAlias => {
                f.write_str("not usable as a host alias (only ASCII letters, digits and `-_@+` are)")
            }
            Collision::HostName => f.write_str("could be a real host name or address (has `.` or `:`)"),
            Collision::Localhost => f.write_str("collides with localhost"),
            Collision::Loopback => f.write_str("collides with this machine (the name resolves to a loopback address)"),
            Collision::InstanceId { of: Some(id) } => write!(f, "collides with the instance id of {id}"),
            Collision::InstanceId { of: None } => f.write_str("collides with an instance id"),
            Collision::Address => f.write_str("collides with an IP address"),
            Collision::Instance { id } => write!(f, "collides with an alias of {id}"),
            Collision::Config { file, line } => write!(f, "collides with {file} line {line}"),
        }
    }
}

/// Everything besides hop's own aliases that claims names.
pub struct Claims<'a> {
    /// In the order ssh reads them: the user's config with its includes inline, then the
    /// system's. hop's own file is not among them.
    pub host_lines: &'a [HostLine],
    /// Whether a name resolves to a loopback address. The caller asks the system resolver
    /// beforehand; the rule stays pure.
    pub loopback: &'a dyn Fn(&str) -> bool,
    /// Every instance id of the inventory.
    pub instance_ids: &'a BTreeSet<String>,
}

impl Claims<'_> {
    /// Why `alias` must not be written, or `None` when nothing but hop claims it. Whether
    /// another instance has the same alias is the caller's to check (it sees them all).
    pub fn collision(&self, alias: &str) -> Option<Collision> {
        if !is_plain_alias(alias) {
            return Some(Collision::NotAlias);
        }
        if alias.eq_ignore_ascii_case("localhost") {
            return Some(Collision::Localhost);
        }
        if is_instance_id(alias) {
            let of = self.instance_ids.iter().find(|id| id.eq_ignore_ascii_case(alias)).cloned();
            return Some(Collision::InstanceId { of });
        }
        if is_address(alias) {
            return Some(Collision::Address);
        }
        if alias.contains(['.', ':']) {
            return Some(Collision::HostName);
        }
        if let Some(l) = self.host_lines.iter().find(|l| l.claims(alias)) {
            return Some(Collision::Config { file: l.file.clone(), line: l.line });
        }
        if (self.loopback)(alias) {
            return Some(Collision::Loopback);
        }
        None
    }
}

/// One line of an ssh config as ssh reads it: the file (as shown to the user), the line, and
/// the `Host` or `Match` line it sits under (`None`: before any, so for every host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    pub file: String,
    pub entry: Entry,
    pub block: Option<Entry>,
}

/// Where the user already decides OpenSSH connection sharing, so hop writes none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingClaim {
    pub file: String,
    pub line: usize,
    /// As written in the config, e.g. `ControlMaster`.
    pub keyword: &'static str,
}

impl fmt::Display for SharingClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {} ({})", self.file, self.line, self.keyword)
    }
}

/// The first `ControlMaster`, `ControlPath` or `ControlPersist` line of the user's (or the
/// system's) configs that may apply to one of `names`: at top level, under `Host *` or a
/// `Host` pattern matching one of them, under a `Match` whose `host` criteria match one of them,
/// or under any other `Match` (`exec`, `user`…: hop cannot tell, so it counts). A user who
/// configured sharing for these hosts keeps their own settings: hop's file comes first, so its
/// values would otherwise win. Negated patterns are ignored (counting more, not less).
pub fn sharing_claim(lines: &[ConfigLine], names: &[String]) -> Option<SharingClaim> {
    let names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let any_name = |pattern: &str| {
        let p = pattern.to_lowercase();
        names.iter().any(|n| glob(p.as_bytes(), n.as_bytes()))
    };
    let applies = |block: &Option<Entry>| match block {
        None => true,
        Some(b) if b.keyword == "host" => {
            b.args.iter().flat_map(|a| a.split(',')).filter(|p| !p.starts_with('!') && !p.is_empty()).any(any_name)
        }
        Some(b) => match HostLine::from_entry("", b) {
            Some(h) => h.patterns.iter().any(|p| any_name(p)),
            None => true,
        },
    };
    lines.iter().find_map(|l| {
        let keyword = match l.entry.keyword.as_str() {
            "controlmaster" => "ControlMaster",
            "controlpath" => "ControlPath",
            "controlpersist" => "ControlPersist",
            _ => return None,
        };
        applies(&l.block).then(|| SharingClaim { file: l.file.clone(), line: l.entry.line, keyword })
    })
}

/// `i-` followed by hex digits, in any case: what EC2 instance ids look like (8 or 17 digits
/// today; any length here, so no future length slips through).
pub fn is_instance_id(name: &str) -> bool {
    name.len() > 2 && name[..2].eq_ignore_ascii_case("i-") && name[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An IP address as `ssh` would take it: IPv6, or IPv4 in any form `inet_aton` accepts (one to
/// four parts, each decimal, octal or `0x` hex), so `2130706433` is 127.0.0.1.
fn is_address(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 4
        && parts.iter().all(|p| {
            let hex = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"));
            match hex {
                Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
                None => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ssh_config::parse_lenient;

    fn lines(file: &str, text: &str) -> Vec<HostLine> {
        parse_lenient(text.as_bytes()).iter().filter_map(|e| HostLine::from_entry(file, e)).collect()
    }

    #[test]
    fn host_lines_from_host_and_match() {
        let text = "Host *\n\
                    Host web-* !web-old\n\
                    Match host db-?,!cache exec \"test -n x\"\n\
                    Match !originalhost=legacy user bob\n\
                    Match all\n\
                    Match user bob exec \"host x\"\n\
                    Host !*\n\
                    Match canonical final host a,*\n\
                    HostName not-a-claim\n\
                    Match host\n";
        let found = lines("f", text);
        let got: Vec<(usize, Vec<&str>)> =
            found.iter().map(|l| (l.line, l.patterns.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            got,
            vec![(2, vec!["web-*", "web-old"]), (3, vec!["db-?", "cache"]), (4, vec!["legacy"]), (8, vec!["a"])]
        );
    }

    #[test]
    fn patterns_match_like_openssh() {
        let l = HostLine { file: "f".into(), line: 1, patterns: vec!["web-*".into(), "db-?".into(), "Jenkins".into()] };
        for yes in ["web-", "web-1", "WEB-x", "db-1", "jenkins"] {
            assert!(l.claims(yes), "{yes}");
        }
        for no in ["web", "db-12", "db-", "jenkins2", "xweb-1"] {
            assert!(!l.claims(no), "{no}");
        }
    }

    #[test]
    fn addresses_and_ids() {
        for a in ["127.0.0.1", "2130706433", "0x7f000001", "0X7F.1", "10.1", "::1", "fe80::1"] {
            assert!(is_address(a), "{a}");
        }
        for n in ["web", "1a", "", "1.2.3.4.5", "0xg", "web1"] {
            assert!(!is_address(n), "{n}");
        }
        for id in ["i-0123456789abcdef0", "I-DEADBEEF", "i-b"] {
            assert!(is_instance_id(id), "{id}");
        }
        for n in ["i-", "i-web", "mi-0123", "x-0123"] {
            assert!(!is_instance_id(n), "{n}");
        }
    }

    /// Lines of one file with their blocks, as the config adapter hands them over.
    fn config_lines(text: &str) -> Vec<ConfigLine> {
        let mut block = None;
        let mut out = Vec::new();
        for entry in parse_lenient(text.as_bytes()) {
            if entry.keyword == "host" || entry.keyword == "match" {
                block = Some(entry.clone());
            }
            out.push(ConfigLine { file: "~/.ssh/config".into(), entry, block: block.clone() });
        }
        out
    }

    #[test]
    fn sharing_the_user_configured_wins() {
        let names: Vec<String> = ["sample-web", "i-0123", "sample-bastion"].map(String::from).into();
        let claim = |text: &str| sharing_claim(&config_lines(text), &names).map(|c| c.to_string());
        let at = |line: usize, keyword: &str| Some(format!("~/.ssh/config line {line} ({keyword})"));
        let rows: Vec<(&str, Option<String>)> = vec![
            ("", None),
            ("Host *\n  User me\n", None),
            ("ControlMaster no\nHost x\n", at(1, "ControlMaster")),
            ("Host *\n  ControlPath ~/.ssh/cm/%C\n", at(2, "ControlPath")),
            ("Host github.com gitlab.com\n  ControlMaster auto\n  ControlPersist 5m\n", None),
            ("Host sample-*\n  ControlPersist 1h\n", at(2, "ControlPersist")),
            ("Host i-*,x\n  ControlMaster no\n", at(2, "ControlMaster")),
            ("Host !sample-web other\n  ControlMaster auto\n", None),
            ("Match host github.com\n  ControlMaster auto\n", None),
            ("Match host SAMPLE-WEB\n  ControlMaster auto\n", at(2, "ControlMaster")),
            ("Match exec \"true\"\n  ControlMaster auto\n", at(2, "ControlMaster")),
            ("Match all\n  controlmaster=auto\n", at(2, "ControlMaster")),
            ("Host github.com\n  ControlMaster auto\nHost *\n  ControlMaster no\n", at(4, "ControlMaster")),
        ];
        for (text, want) in rows {
            assert_eq!(claim(text), want, "{text:?}");
        }
    }
}
