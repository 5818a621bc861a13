//! Which ssh_config stanzas `hop config` generates for an inventory: host aliases (duplicates
//! get `NAME-ID`, names something else claims get none), bastions first, ProxyJump by alias,
//! HostKeyAlias = instance id.

use std::collections::{BTreeMap, BTreeSet};

use super::claims::{Claims, Collision, SharingClaim};
use super::display::escape;
use super::inventory::Instance;
use super::resolve::duplicate_alias;
use super::route::{Push, Route};
use super::ssh_config::{SUN_PATH, Sharing, Skipped, Stanza};

/// An instance and its planned route.
pub struct Planned<'a> {
    pub instance: &'a Instance,
    pub route: Route,
}

/// A Name-tag alias hop did not write, and why. The instance keeps its id alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAlias {
    /// As the tag has it (unescaped).
    pub alias: String,
    pub id: String,
    pub collision: Collision,
}

impl SkippedAlias {
    /// `NAME (ID)` with the tag text escaped: safe on one comment line or one terminal line.
    pub fn label(&self) -> String {
        format!("{} ({})", escape(&self.alias), escape(&self.id))
    }

    /// The `# skipped NAME (ID): REASON` line of hop's file.
    pub fn as_skipped(&self) -> Skipped {
        Skipped { label: self.label(), reason: self.collision.to_string() }
    }
}

/// The alias a named instance asks for before anything is checked: its Name, or `NAME-ID` when
/// another instance has the same Name. Keyed by instance id; untagged instances (and an empty
/// Name) have none.
pub fn candidates<'a>(instances: impl IntoIterator<Item = &'a Instance> + Clone) -> BTreeMap<String, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for i in instances.clone() {
        if let Some(n) = i.name.as_deref() {
            *count.entry(n).or_default() += 1;
        }
    }
    instances
        .into_iter()
        .filter_map(|i| {
            let n = i.name.as_deref().filter(|n| !n.is_empty())?;
            let alias = if count[n] > 1 { duplicate_alias(n, &i.id) } else { n.to_string() };
            Some((i.id.clone(), alias))
        })
        .collect()
}

/// Host patterns per instance id: `[ALIAS, ID]` when the instance's [`candidates`] alias is
/// free, else `[ID]` and a [`SkippedAlias`]. Free means: nothing in `claims` has it (see
/// [`Claims::collision`]: an ssh config's `Host`/`Match host`, localhost, loopback names,
/// instance ids, addresses, names that are not plain aliases or could be real host names) and
/// no other instance's alias is the same name up to case (ssh lowercases what it is given);
/// in that case neither instance gets it.
pub fn aliases<'a>(
    instances: impl IntoIterator<Item = &'a Instance> + Clone,
    claims: &Claims,
) -> (BTreeMap<String, Vec<String>>, Vec<SkippedAlias>) {
    let candidates = candidates(instances.clone());
    let mut owners: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (id, alias) in &candidates {
        owners.entry(alias.to_lowercase()).or_default().insert(id);
    }
    let mut skipped = Vec::new();
    let hosts = instances
        .into_iter()
        .map(|i| {
            let mut hosts = Vec::new();
            if let Some(alias) = candidates.get(&i.id) {
                let other = owners[&alias.to_lowercase()].iter().find(|o| **o != i.id);
                let collision =
                    claims.collision(alias).or_else(|| other.map(|o| Collision::Instance { id: o.to_string() }));
                match collision {
                    None => hosts.push(alias.clone()),
                    Some(collision) => skipped.push(SkippedAlias { alias: alias.clone(), id: i.id.clone(), collision }),
                }
            }
            hosts.push(i.id.clone());
            (i.id.clone(), hosts)
        })
        .collect();
    skipped.sort_by(|a: &SkippedAlias, b| (&a.alias, &a.id).cmp(&(&b.alias, &b.id)));
    (hosts, skipped)
}

/// `ControlPersist` for an idle time: as long as hop's own masters stay (`reuse_idle`), in
/// OpenSSH's time format.
pub fn persist(idle: std::time::Duration) -> String {
    match idle.as_secs().max(1) {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Why the stanzas get no connection sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSharing {
    /// `reuse = false` in hop's config.
    Off,
    /// The user's ssh config already decides it for some of these hosts.
    User(SharingClaim),
    /// The control socket directory cannot be used: not valid UTF-8, has `${` (which OpenSSH
    /// would expand), or its sockets' paths would not fit `sun_path`; or it could not be made.
    Dir { dir: String, why: String },
}

impl NoSharing {
    /// The note in hop's file.
    pub fn note(&self) -> String {
        match self {
            NoSharing::Off => "OpenSSH connection sharing: off (reuse = false in hop's config.toml)".into(),
            NoSharing::User(claim) => format!("OpenSSH connection sharing: left to {claim}"),
            NoSharing::Dir { dir, why } => format!("OpenSSH connection sharing: off, {dir}: {why}"),
        }
    }
}

/// Connection sharing for every stanza, with control sockets in `dir` (`None`: not UTF-8), unless
/// `reuse` is off (`None`; else the idle time of a master), the user's configs decide it
/// (`claim`), or `dir` cannot hold them.
pub fn sharing(
    reuse: Option<std::time::Duration>,
    claim: Option<SharingClaim>,
    dir: Option<&str>,
) -> Result<Sharing, NoSharing> {
    let Some(idle) = reuse else {
        return Err(NoSharing::Off);
    };
    if let Some(claim) = claim {
        return Err(NoSharing::User(claim));
    }
    let Some(dir) = dir else {
        return Err(NoSharing::Dir { dir: "the control socket directory".into(), why: "not valid UTF-8".into() });
    };
    let bad = |why: String| Err(NoSharing::Dir { dir: dir.to_string(), why });
    if dir.contains("${") {
        return bad("OpenSSH would expand `${` in a ControlPath".into());
    }
    if !Sharing::fits(dir) {
        return bad(format!(
            "socket paths would be {} bytes, over the {} a Unix socket path can have",
            Sharing::longest_socket_path(dir) + 1,
            SUN_PATH
        ));
    }
    Ok(Sharing { dir: dir.to_string(), persist: persist(idle) })
}

/// The user's own key pair, for hosts whose login pushes a key: `ssh` logs in with it after
/// `hop proxy --push-key PUBLIC` pushed it with EC2 Instance Connect (spec §B.3 point 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnKey {
    /// Absolute path of the public key file (`~/.ssh/id_ed25519.pub`).
    pub public: String,
    /// Absolute path of its private key (`~/.ssh/id_ed25519`).
    pub private: String,
}

/// The public key files `hop config` pushes, first that exists (ECDSA keys are ignored by the
/// instance, spec §B.2).
pub const OWN_KEYS: [&str; 2] = ["id_ed25519", "id_rsa"];

/// What [`build`] makes of an inventory.
#[derive(Debug)]
pub struct Built {
    pub stanzas: Vec<Stanza>,
    /// Instances without a stanza.
    pub skipped: Vec<Skipped>,
    /// Aliases not written, of instances that have a stanza (under their id).
    pub skipped_aliases: Vec<SkippedAlias>,
}

impl Built {
    /// Every `# skipped` line of hop's file: instances first, then aliases.
    pub fn skipped_lines(&self) -> Vec<Skipped> {
        self.skipped.iter().cloned().chain(self.skipped_aliases.iter().map(SkippedAlias::as_skipped)).collect()
    }
}

/// Stanzas in a deterministic order: bastions that some route uses first (by alias), then every
/// other reachable instance (by alias). Instances hop cannot write a stanza for are `Skipped`.
///
/// SSM targets get `ProxyCommand` = `ssm_proxy` (hop's own `proxy` subcommand, with the
/// instance's region) followed by `%h %p`: `%h` is the stanza's HostName, the instance id,
/// which `hop proxy` resolves exactly, whatever alias the user typed (`%n`).
///
/// `sharing`, when given, goes on every stanza: a target's own master makes the next `ssh`,
/// `scp` or `rsync` to it one channel open, and the bastion's (which the ProxyJump `ssh` reads)
/// makes a first connection to another target behind it skip the bastion's handshake. SSM-only
/// hosts gain the most: their master holds the Session Manager session too.
///
/// Hosts whose login pushes a key (asked for, or hop's guess for a host it holds no key file
/// for) get `ProxyCommand … proxy --push-key PUBLIC %h %p` and `IdentityFile PRIVATE` of
/// `own_key` on every route: `hop proxy` pushes the key and bridges, through the bastion
/// itself (no ProxyJump). Without `own_key`, a host that asked for a push says so in its
/// comment; hop's guesses are left as they were (the user's agent may well log in).
pub fn build(
    planned: &[Planned],
    claims: &Claims,
    ssm_proxy: &dyn Fn(&Instance) -> Vec<String>,
    sharing: Option<&Sharing>,
    own_key: Option<&OwnKey>,
) -> Built {
    let (aliases, mut skipped_aliases) = aliases(planned.iter().map(|p| p.instance), claims);
    let primary = |id: &str| aliases[id][0].clone();
    let used_bastions: BTreeSet<&str> = planned
        .iter()
        .filter_map(|p| match &p.route {
            Route::Jump { bastion, .. } => Some(bastion.id.as_str()),
            _ => None,
        })
        .collect();
    let mut first = Vec::new();
    let mut rest = Vec::new();
    let mut skipped = Vec::new();
    for p in planned {
        let i = p.instance;
        let mut comment = format!(
            "{} {} {} {}",
            i.label(),
            i.region,
            i.vpc_id.as_deref().unwrap_or("-"),
            i.az.as_deref().unwrap_or("-")
        );
        let mut proxy_command = None;
        let (target, mut proxy_jump) = match &p.route {
            Route::Direct { target } => (target, None),
            Route::Jump { bastion, target, .. } => (target, Some(primary(&bastion.id))),
            // `hop config` plans without -J; a chain never reaches here.
            Route::Chain { target, .. } => (target, None),
            Route::Ssm { target, .. } | Route::Eice { target, .. } => {
                let mut words = ssm_proxy(i);
                words.extend(["%h".to_string(), "%p".to_string()]);
                proxy_command = Some(words);
                (target, None)
            }
            Route::Unreachable { reason } => {
                skipped.push(Skipped { label: format!("{} ({})", i.label(), i.id), reason: reason.clone() });
                skipped_aliases.retain(|a| a.id != i.id);
                continue;
            }
        };
        // `hop proxy` resolves the instance id exactly, whatever the route; an EICE target's
        // private IP may be another VPC's too.
        let mut host_name = if proxy_command.is_some() { i.id.clone() } else { target.address.clone() };
        let mut identity_file = target.login.identity.as_ref().map(|p| p.display().to_string());
        let pushes = match target.login.push {
            Push::Always => true,
            Push::Auto => target.login.identity.is_none(),
            Push::No => false,
        };
        match own_key {
            Some(key) if pushes => {
                let mut words = ssm_proxy(i);
                words.extend(["--push-key".to_string(), key.public.clone(), "%h".to_string(), "%p".to_string()]);
                proxy_command = Some(words);
                proxy_jump = None;
                host_name = i.id.clone();
                identity_file = Some(key.private.clone());
            }
            None if target.login.push == Push::Always => comment.push_str(&format!(
                "; logs in with a pushed key, but there is no ~/.ssh/{}.pub to push (ssh-keygen -t ed25519)",
                OWN_KEYS.join(".pub or ")
            )),
            _ => {}
        }
        let stanza = Stanza {
            hosts: aliases[&i.id].clone(),
            comment: Some(comment),
            host_name,
            user: target.login.user.clone(),
            port: Some(target.login.port).filter(|&p| p != 22),
            identity_file,
            proxy_jump,
            proxy_command,
            host_key_alias: i.id.clone(),
            sharing: sharing.cloned(),
        };
        if used_bastions.contains(i.id.as_str()) { first.push(stanza) } else { rest.push(stanza) }
    }
    first.sort_by(|a, b| a.hosts.cmp(&b.hosts));
    rest.sort_by(|a, b| a.hosts.cmp(&b.hosts));
    skipped.sort_by(|a, b| a.label.cmp(&b.label));
    first.extend(rest);
    Built { stanzas: first, skipped, skipped_aliases }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::claims::HostLine;
    use crate::domain::inventory::State;
    use crate::domain::inventory::fixture::{instance, public};
    use crate::domain::route::{BastionRule, LoginPolicy, Network, bastions, plan};
    use crate::domain::ssh_config::{parse_lenient, render};

    fn planned(inv: &[Instance]) -> (Vec<Stanza>, Vec<Skipped>) {
        let built = planned_with(inv, &[]);
        let skipped = built.skipped_lines();
        (built.stanzas, skipped)
    }

    fn planned_with(inv: &[Instance], host_lines: &[HostLine]) -> Built {
        let b = bastions(inv, &BastionRule::default());
        let policy = LoginPolicy { user_tag: "hop:user".into(), ssh_dir: "/h/.ssh".into(), ..Default::default() };
        let exists = |p: &Path| p.extension().is_some_and(|e| e == "pem");
        let planned: Vec<Planned> = inv
            .iter()
            .map(|i| Planned { instance: i, route: plan(i, &Network::of_bastions(b.clone()), &policy, &exists) })
            .collect();
        let ids: BTreeSet<String> = inv.iter().map(|i| i.id.clone()).collect();
        let claims = Claims { host_lines, loopback: &|_| false, instance_ids: &ids };
        build(
            &planned,
            &claims,
            &|i| vec!["/bin/hop".into(), "--region".into(), i.region.clone(), "proxy".into()],
            None,
            None,
        )
    }

    /// The files of the table below, as the config adapter would hand them over: the user's
    /// config with an included file inline, then the system's.
    fn claimants() -> Vec<HostLine> {
        let files = [
            (
                "~/.ssh/config",
                "Host *\n  User me\nHost jenkins\n  ForwardAgent yes\nHost build-* !bastion-old\n\
                 Match host db-?,cache exec \"true\"\nMatch originalhost legacy\nMatch all\n",
            ),
            ("~/.ssh/config.d/work", "Host work-box\n"),
            ("/etc/ssh/ssh_config", "Host *\n  SendEnv LANG\nHost corp-gw\n"),
        ];
        files
            .iter()
            .flat_map(|(file, text)| {
                parse_lenient(text.as_bytes())
                    .into_iter()
                    .filter_map(|e| HostLine::from_entry(file, &e))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The collision rule, one row per kind of claimant: the alias a Name tag asks for, and
    /// why it is skipped (`None`: written).
    #[test]
    fn alias_collision_table() {
        let host_lines = claimants();
        let ids: BTreeSet<String> = ["i-0aa", "i-0bb"].map(String::from).into();
        let loopback = |n: &str| n == "vm" || n == "runner-7";
        let claims = Claims { host_lines: &host_lines, loopback: &loopback, instance_ids: &ids };
        let config = |file: &str, line| Some(Collision::Config { file: file.into(), line });
        let rows: Vec<(&str, Option<Collision>)> = vec![
            ("sample-web", None),
            // Only a bare `*` claims nothing: these match it and are still written.
            ("anything", None),
            ("jenkins", config("~/.ssh/config", 3)),
            ("JENKINS", config("~/.ssh/config", 3)),
            ("build-42", config("~/.ssh/config", 5)),
            ("build-", config("~/.ssh/config", 5)),
            ("bastion-old", config("~/.ssh/config", 5)),
            ("db-1", config("~/.ssh/config", 6)),
            ("db-12", None),
            ("cache", config("~/.ssh/config", 6)),
            ("legacy", config("~/.ssh/config", 7)),
            ("work-box", config("~/.ssh/config.d/work", 1)),
            ("corp-gw", config("/etc/ssh/ssh_config", 3)),
            ("localhost", Some(Collision::Localhost)),
            ("LocalHost", Some(Collision::Localhost)),
            ("vm", Some(Collision::Loopback)),
            ("runner-7", Some(Collision::Loopback)),
            ("i-0bb", Some(Collision::InstanceId { of: Some("i-0bb".into()) })),
            ("I-0BB", Some(Collision::InstanceId { of: Some("i-0bb".into()) })),
            ("i-0123456789abcdef0", Some(Collision::InstanceId { of: None })),
            ("10.0.0.5", Some(Collision::Address)),
            ("2130706433", Some(Collision::Address)),
            ("0x7f000001", Some(Collision::Address)),
            ("fe80::1", Some(Collision::Address)),
            ("github.com", Some(Collision::HostName)),
            ("*", Some(Collision::NotAlias)),
            ("bad name", Some(Collision::NotAlias)),
            ("a\nHost *", Some(Collision::NotAlias)),
            ("x#y", Some(Collision::NotAlias)),
            ("a,b", Some(Collision::NotAlias)),
            ("!x", Some(Collision::NotAlias)),
            ("w?b", Some(Collision::NotAlias)),
        ];
        for (alias, want) in &rows {
            assert_eq!(&claims.collision(alias), want, "{alias:?}");
        }
        // The same rows through `aliases`: one instance per row.
        let inv: Vec<Instance> = rows
            .iter()
            .enumerate()
            .map(|(n, (name, _))| instance(&format!("i-{n:04}"), Some(name), "vpc-1", "a"))
            .collect();
        let (hosts, skipped) = aliases(&inv, &claims);
        for (n, (name, want)) in rows.iter().enumerate() {
            let id = format!("i-{n:04}");
            let expected = if want.is_none() { vec![name.to_string(), id.clone()] } else { vec![id.clone()] };
            assert_eq!(hosts[&id], expected, "{name:?}");
            let got = skipped.iter().find(|s| s.id == id).map(|s| s.collision.clone());
            assert_eq!(&got, want, "{name:?}");
        }
    }

    /// Another instance's alias, `NAME-ID` or id: nobody gets a name two instances answer to.
    #[test]
    fn aliases_never_shared_between_instances() {
        let ids: BTreeSet<String> = BTreeSet::new();
        let claims = Claims { host_lines: &[], loopback: &|_| false, instance_ids: &ids };
        let inv = vec![
            instance("i-a1", Some("api"), "vpc-1", "a"),
            instance("i-a2", Some("api"), "vpc-1", "a"),
            instance("i-c1", Some("api-i-a1"), "vpc-1", "a"),
            instance("i-d1", Some("Web"), "vpc-1", "a"),
            instance("i-d2", Some("web"), "vpc-1", "a"),
            instance("i-e1", Some("i-a2"), "vpc-1", "a"),
            instance("i-f1", Some("solo"), "vpc-1", "a"),
            instance("i-f2", None, "vpc-1", "a"),
            instance("i-f3", Some(""), "vpc-1", "a"),
        ];
        let (hosts, skipped) = aliases(&inv, &claims);
        let got: Vec<String> = hosts.values().map(|h| h.join(" ")).collect();
        assert_eq!(got, ["i-a1", "api-i-a2 i-a2", "i-c1", "i-d1", "i-d2", "i-e1", "solo i-f1", "i-f2", "i-f3"]);
        let got: Vec<(String, String)> = skipped.iter().map(|s| (s.label(), s.collision.to_string())).collect();
        let want = [
            ("Web (i-d1)", "collides with an alias of i-d2"),
            ("api-i-a1 (i-a1)", "collides with an alias of i-c1"),
            ("api-i-a1 (i-c1)", "collides with an alias of i-a1"),
            // Shaped like an id: the instance-id rule names the instance when it is known.
            ("i-a2 (i-e1)", "collides with an instance id"),
            ("web (i-d2)", "collides with an alias of i-d1"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    /// The comment and warning text: one line, tag text escaped.
    #[test]
    fn skipped_alias_lines_are_escaped() {
        let host_lines = claimants();
        let inv = vec![
            instance("i-j", Some("jenkins"), "vpc-1", "a"),
            instance("i-n", Some("a\n  ProxyCommand evil\u{9b}"), "vpc-1", "a"),
            instance("i-l", Some("localhost"), "vpc-1", "a"),
        ];
        let built = planned_with(&inv, &host_lines);
        let hosts: Vec<String> = built.stanzas.iter().map(|s| s.hosts.join(" ")).collect();
        assert_eq!(hosts, ["i-j", "i-l", "i-n"]);
        let text = render(&built.stanzas, &built.skipped_lines(), &[]);
        let tail: Vec<&str> = text.lines().filter(|l| l.starts_with("# skipped")).collect();
        assert_eq!(
            tail,
            [
                "# skipped a\\n  ProxyCommand evil\\u{9b} (i-n): not usable as a host alias (only ASCII letters, digits and `-_@+` are)",
                "# skipped jenkins (i-j): collides with ~/.ssh/config line 3",
                "# skipped localhost (i-l): collides with localhost",
            ]
        );
    }

    #[test]
    fn tutorial_stanzas_bastion_first_duplicates_aliased() {
        let mut web = instance("i-w", Some("sample-web"), "vpc-1", "a");
        web.key_name = Some("sample-web".into());
        let mut b = public(instance("i-b", Some("sample-bastion"), "vpc-1", "a"), "203.0.113.10");
        b.key_name = Some("sample-bastion".into());
        let mut old = instance("i-o", Some("sample-old"), "vpc-1", "a");
        old.state = State::Stopped;
        let inv = vec![
            instance("i-a2", Some("api"), "vpc-1", "a"),
            web,
            instance("i-a1", Some("api"), "vpc-1", "a"),
            b,
            instance("i-s", Some("worker"), "vpc-2", "a"),
            instance("i-x", Some("bad name*"), "vpc-1", "a"),
            instance("i-g", Some("github.com"), "vpc-1", "a"),
            old,
        ];
        let (stanzas, skipped) = planned(&inv);
        let hosts: Vec<String> = stanzas.iter().map(|s| s.hosts.join(" ")).collect();
        assert_eq!(
            hosts,
            ["sample-bastion i-b", "api-i-a1 i-a1", "api-i-a2 i-a2", "i-g", "i-x", "sample-web i-w", "worker i-s"]
        );
        let web = &stanzas[5];
        assert_eq!(web.host_name, "10.0.1.10");
        assert_eq!(web.proxy_jump.as_deref(), Some("sample-bastion"));
        assert_eq!(web.identity_file.as_deref(), Some("/h/.ssh/sample-web.pem"));
        assert_eq!(web.host_key_alias, "i-w");
        assert_eq!(stanzas[0].host_name, "203.0.113.10");
        assert_eq!(stanzas[0].proxy_jump, None);
        let labels: Vec<&str> = skipped.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["sample-old (i-o)", "bad name* (i-x)", "github.com (i-g)"]);
        // The SSM-only worker: hop itself is the ProxyCommand, with the instance's region.
        let worker = &stanzas[6];
        assert_eq!(worker.host_name, "i-s");
        assert_eq!(worker.proxy_jump, None);
        assert_eq!(
            worker.proxy_command.as_deref(),
            Some(&["/bin/hop", "--region", "us-east-1", "proxy", "%h", "%p"].map(String::from)[..])
        );
        // Same input in another order: same output.
        let mut rev = inv.clone();
        rev.reverse();
        let (again, _) = planned(&rev);
        assert_eq!(again.iter().map(|s| s.hosts.join(" ")).collect::<Vec<_>>(), hosts);
    }

    #[test]
    fn sharing_unless_off_claimed_or_unusable() {
        let claim = SharingClaim { file: "~/.ssh/config".into(), line: 4, keyword: "ControlMaster" };
        const TEN_MIN: Option<std::time::Duration> = Some(std::time::Duration::from_secs(600));
        let on = Sharing { dir: "/home/u/.ssh/hop/cm".into(), persist: "10m".into() };
        assert_eq!(sharing(TEN_MIN, None, Some("/home/u/.ssh/hop/cm")), Ok(on.clone()));
        assert_eq!(persist(std::time::Duration::from_secs(90)), "90s");
        assert_eq!(persist(std::time::Duration::from_secs(7200)), "2h");
        assert_eq!(sharing(None, None, Some("/home/u/.ssh/hop/cm")), Err(NoSharing::Off));
        let left = sharing(TEN_MIN, Some(claim.clone()), Some("/home/u/.ssh/hop/cm")).unwrap_err();
        assert_eq!(left, NoSharing::User(claim));
        assert_eq!(left.note(), "OpenSSH connection sharing: left to ~/.ssh/config line 4 (ControlMaster)");
        assert!(matches!(sharing(TEN_MIN, None, None), Err(NoSharing::Dir { .. })));
        assert!(matches!(sharing(TEN_MIN, None, Some("/home/${USER}/.ssh/hop/cm")), Err(NoSharing::Dir { .. })));
        let long = format!("/home/{}/.ssh/hop/cm", "n".repeat(60));
        let err = sharing(TEN_MIN, None, Some(&long)).unwrap_err();
        assert_eq!(
            err.note(),
            format!(
                "OpenSSH connection sharing: off, {long}: socket paths would be 137 bytes, over the {SUN_PATH} a Unix socket path can have"
            )
        );
        // On every stanza, bastions included.
        let inv = vec![
            public(instance("i-b", Some("bastion"), "vpc-1", "a"), "203.0.113.10"),
            instance("i-w", Some("web"), "vpc-1", "a"),
        ];
        let b = bastions(&inv, &BastionRule::default());
        let policy = LoginPolicy::default();
        let planned: Vec<Planned> = inv
            .iter()
            .map(|i| Planned { instance: i, route: plan(i, &Network::of_bastions(b.clone()), &policy, &|_| false) })
            .collect();
        let ids: BTreeSet<String> = inv.iter().map(|i| i.id.clone()).collect();
        let claims = Claims { host_lines: &[], loopback: &|_| false, instance_ids: &ids };
        let built = build(&planned, &claims, &|_| vec![], Some(&on), None);
        assert_eq!(built.stanzas.len(), 2);
        assert!(built.stanzas.iter().all(|s| s.sharing.as_ref() == Some(&on)), "{:?}", built.stanzas);
    }

    /// Hosts whose login pushes a key: `hop proxy --push-key` (no ProxyJump: hop bridges through
    /// the bastion itself) and the private key; hosts with a key file of their own are unchanged;
    /// without a key pair to push, only hosts that asked for a push say so.
    #[test]
    fn hosts_that_push_get_hop_proxy_with_the_users_own_key() {
        let mut asked = instance("i-a", Some("asked"), "vpc-1", "a");
        asked.tags.insert("hop:auth".into(), "instance-connect".into());
        let mut keyed = instance("i-k", Some("keyed"), "vpc-1", "a");
        keyed.key_name = Some("web".into());
        let inv = vec![
            public(instance("i-b", Some("bastion"), "vpc-1", "a"), "203.0.113.10"),
            instance("i-w", Some("web"), "vpc-1", "a"),
            asked,
            keyed,
        ];
        let b = bastions(&inv, &BastionRule::default());
        let policy = LoginPolicy { ssh_dir: "/h/.ssh".into(), ..Default::default() };
        let exists = |p: &Path| p == Path::new("/h/.ssh/web.pem");
        let planned: Vec<Planned> = inv
            .iter()
            .map(|i| Planned { instance: i, route: plan(i, &Network::of_bastions(b.clone()), &policy, &exists) })
            .collect();
        let ids: BTreeSet<String> = inv.iter().map(|i| i.id.clone()).collect();
        let claims = Claims { host_lines: &[], loopback: &|_| false, instance_ids: &ids };
        let proxy = |i: &Instance| vec!["/bin/hop".to_string(), "--region".into(), i.region.clone(), "proxy".into()];
        let key = OwnKey { public: "/h/.ssh/id_ed25519.pub".into(), private: "/h/.ssh/id_ed25519".into() };
        let with_key = build(&planned, &claims, &proxy, None, Some(&key));
        let text = render(&with_key.stanzas, &[], &[]);
        let body = text.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        assert_eq!(
            body,
            "\
# bastion us-east-1 vpc-1 a
Host bastion i-b
  HostName i-b
  User ec2-user
  IdentityFile /h/.ssh/id_ed25519
  IdentitiesOnly yes
  ProxyCommand /bin/hop --region us-east-1 proxy --push-key /h/.ssh/id_ed25519.pub %h %p
  HostKeyAlias i-b

# asked us-east-1 vpc-1 a
Host asked i-a
  HostName i-a
  User ec2-user
  IdentityFile /h/.ssh/id_ed25519
  IdentitiesOnly yes
  ProxyCommand /bin/hop --region us-east-1 proxy --push-key /h/.ssh/id_ed25519.pub %h %p
  HostKeyAlias i-a

# keyed us-east-1 vpc-1 a
Host keyed i-k
  HostName 10.0.1.10
  User ec2-user
  IdentityFile /h/.ssh/web.pem
  IdentitiesOnly yes
  ProxyJump bastion
  HostKeyAlias i-k

# web us-east-1 vpc-1 a
Host web i-w
  HostName i-w
  User ec2-user
  IdentityFile /h/.ssh/id_ed25519
  IdentitiesOnly yes
  ProxyCommand /bin/hop --region us-east-1 proxy --push-key /h/.ssh/id_ed25519.pub %h %p
  HostKeyAlias i-w
"
        );
        // No key pair: the host that asked says why it cannot log in; the others are as before.
        let without = build(&planned, &claims, &proxy, None, None);
        let comments: Vec<&str> = without.stanzas.iter().filter_map(|s| s.comment.as_deref()).collect();
        assert_eq!(
            comments,
            [
                "bastion us-east-1 vpc-1 a",
                "asked us-east-1 vpc-1 a; logs in with a pushed key, but there is no ~/.ssh/id_ed25519.pub or id_rsa.pub \
                 to push (ssh-keygen -t ed25519)",
                "keyed us-east-1 vpc-1 a",
                "web us-east-1 vpc-1 a",
            ]
        );
        assert!(
            without.stanzas.iter().all(|s| !s.proxy_command.as_ref().is_some_and(|w| w.contains(&"--push-key".into())))
        );
        assert_eq!(without.stanzas[3].proxy_jump.as_deref(), Some("bastion"));
    }
}
