//! Flags + environment + `~/.config/hop/config.toml` + the AWS profile, resolved once into the
//! `Settings` every command uses. Commands never see clap types; the environment and the home,
//! config and cache directories are passed in, never read deep inside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{ColorChoice, GlobalArgs};
use crate::domain::route::{BastionRule, HostOverride, LoginPolicy};
use crate::error::HopError;

/// What the outside world provides: environment and well-known directories.
#[derive(Debug, Clone)]
pub struct World {
    pub env: BTreeMap<String, String>,
    pub home: PathBuf,
    pub config_dir: PathBuf,
    pub cache_dir: PathBuf,
}

impl World {
    pub fn from_process() -> anyhow::Result<World> {
        let home = dirs::home_dir().ok_or_else(|| anyhow::anyhow!("cannot find the home directory (set HOME)"))?;
        Ok(World {
            env: std::env::vars().collect(),
            // ~/.config on every platform (not macOS's Application Support), as documented.
            config_dir: std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".config")),
            cache_dir: dirs::cache_dir().unwrap_or_else(|| home.join(".cache")),
            home,
        })
    }

    pub fn var(&self, k: &str) -> Option<&str> {
        self.env.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// The config file, as written by the user. Unknown keys are errors (typos should not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub profile: Option<String>,
    /// What `hop forward` targets when no TARGET is given.
    pub default_target: Option<String>,
    pub regions: Option<Vec<String>>,
    pub user: Option<String>,
    pub user_tag: Option<String>,
    /// "90s", "10m", "1h" or a number of seconds.
    pub cache_ttl: Option<toml::Value>,
    /// How long hop retransmits to a Session Manager agent that acknowledges nothing before it
    /// ends the session; a duration as for `cache_ttl`.
    pub ssm_give_up: Option<toml::Value>,
    /// `hop forward`: how long a local client may take nothing while data waits for it before
    /// its connection is reset; a duration as for `cache_ttl`.
    pub forward_stall_timeout: Option<toml::Value>,
    /// Connection reuse (default true): leave a background connection master behind for later
    /// commands. `false` also leaves OpenSSH's connection sharing (`ControlMaster`) out of the
    /// stanzas `hop config` writes.
    pub reuse: Option<bool>,
    /// How long a connection master with no client stays (hop's, and OpenSSH's
    /// `ControlPersist` in `hop config`'s stanzas); a duration as for `cache_ttl`.
    pub reuse_idle: Option<toml::Value>,
    /// `"instance-connect"`: log in with keys pushed by EC2 Instance Connect on every hop;
    /// `"key"` (default): with the keys the user holds (a key is still pushed for a hop hop
    /// holds no identity for).
    pub auth: Option<String>,
    /// `maxTunnelDuration` of EC2 Instance Connect Endpoint tunnels: a duration as for
    /// `cache_ttl`, 1 s to 1 h (default 1 h).
    pub eice_max_duration: Option<toml::Value>,
    #[serde(default)]
    pub bastion: BastionConfig,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionConfig {
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub regions: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub user: Option<String>,
    pub identity: Option<String>,
    pub port: Option<u16>,
    /// `direct`, `bastion`, `ssm`, `eice`, or an endpoint id `eice-…`.
    pub route: Option<String>,
    /// As the top-level `auth`, for this host.
    pub auth: Option<String>,
}

/// Everything a command needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_target: Option<String>,
    pub profile: String,
    /// `--profile` was given: as with the AWS CLI, the profile's credentials then win over
    /// AWS_ACCESS_KEY_ID in the environment.
    pub profile_explicit: bool,
    /// Empty when nothing but the AWS profile / instance metadata could say; `aws` resolves those.
    pub regions: Vec<String>,
    pub bastion: BastionRule,
    pub login: LoginPolicy,
    pub cache_ttl: Duration,
    /// See [`FileConfig::ssm_give_up`].
    pub ssm_give_up: Duration,
    /// See [`FileConfig::forward_stall_timeout`].
    pub forward_stall_timeout: Duration,
    /// `hop config` writes OpenSSH connection sharing, with this `ControlPersist`: config
    /// `reuse` and `reuse_idle` (`--no-reuse` is per command and does not change the stanzas).
    pub share_connections: Option<Duration>,
    pub cache_dir: PathBuf,
    pub ssh_dir: PathBuf,
    /// OpenSSH's system-wide client config, whose `Host` names `hop config` leaves alone:
    /// `HOP_SYSTEM_SSH_CONFIG` (for an OpenSSH built with another sysconfdir, e.g. Homebrew's
    /// `/opt/homebrew/etc/ssh/ssh_config`; tests point it at their own file), else
    /// `/etc/ssh/ssh_config`.
    pub system_ssh_config: PathBuf,
    pub refresh: bool,
    pub newest: bool,
    pub accept_new: bool,
    pub forward_agent: bool,
    /// `--ssm`: Session Manager even where a bastion would do.
    pub force_ssm: bool,
    /// `--eice [ENDPOINT]`: through an EC2 Instance Connect Endpoint (that one, or the best of
    /// the target's VPC) even where a bastion would do.
    pub force_eice: Option<Option<String>>,
    /// `eice_max_duration`, seconds.
    pub eice_max_duration: u32,
    /// What the command's connection is for (`hop forward`: long-lived), for route planning.
    pub purpose: crate::domain::route::Purpose,
    /// `-J`: jump hosts replacing the VPC's bastion.
    pub jumps: Vec<crate::domain::route::JumpSpec>,
    pub connect_timeout: Duration,
    /// `-t` (Some(true)), `-T` (Some(false)), or decide from stdin (None).
    pub tty: Option<bool>,
    /// `$TERM`, sent with the PTY request.
    pub term: String,
    pub color: bool,
    /// `AWS_ENDPOINT_URL`, part of the cache key so a lab never mixes with a real account.
    pub endpoint: Option<String>,
    /// AWS_ACCESS_KEY_ID when environment credentials are in use (aws-vault, CI): part of the
    /// cache key, so switching accounts that way never serves another account's instances.
    pub env_access_key: Option<String>,
    /// The AWS configuration, loaded on first use and shared by every AWS client of the
    /// command (one credential resolution per command).
    pub aws: crate::adapters::aws::Session,
    /// Connection reuse (config `reuse`, `--no-reuse`): None when off.
    pub reuse: Option<crate::adapters::ssh::reuse::Reuse>,
}

impl Settings {
    /// What besides the profile decides which account and endpoint the cache holds.
    pub fn cache_scope(&self) -> Option<String> {
        match (&self.endpoint, &self.env_access_key) {
            (None, None) => None,
            (e, k) => Some(format!("{}|{}", e.as_deref().unwrap_or(""), k.as_deref().unwrap_or(""))),
        }
    }
}

pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default of `reuse_idle`.
pub const DEFAULT_REUSE_IDLE: Duration = Duration::from_secs(600);

/// Where connection masters live: `$XDG_RUNTIME_DIR/hop`, else `/tmp/hop-UID`.
pub fn runtime_dir(world: &World) -> PathBuf {
    crate::adapters::ssh::reuse::runtime_dir(world.var("XDG_RUNTIME_DIR").map(Path::new))
}
/// `reuse_idle`, or its default.
fn reuse_idle(file: &FileConfig) -> Duration {
    file.reuse_idle.as_ref().and_then(|v| parse_duration("reuse_idle", v).ok()).unwrap_or(DEFAULT_REUSE_IDLE)
}

/// Five minutes without an acknowledgement: the data channel is dead.
pub const DEFAULT_SSM_GIVE_UP: Duration = Duration::from_secs(300);

pub fn config_path(world: &World) -> PathBuf {
    match world.var("HOP_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => world.config_dir.join("hop").join("config.toml"),
    }
}

/// Read and parse the config file; a missing file is the defaults, a malformed one an error
/// naming the file and line.
pub fn load_file(path: &Path) -> Result<FileConfig, HopError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(HopError::ConfigFile { path: path.into(), line: 0, message: format!("cannot read: {e}") });
        }
    };
    parse_file(&text).map_err(|(line, message)| HopError::ConfigFile { path: path.into(), line, message })
}

/// Parse config text; errors carry the 1-based line.
pub fn parse_file(text: &str) -> Result<FileConfig, (usize, String)> {
    let cfg: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(1);
        (line, e.message().trim().to_string())
    })?;
    for (key, v) in [
        ("cache_ttl", &cfg.cache_ttl),
        ("ssm_give_up", &cfg.ssm_give_up),
        ("forward_stall_timeout", &cfg.forward_stall_timeout),
        ("reuse_idle", &cfg.reuse_idle),
        ("eice_max_duration", &cfg.eice_max_duration),
    ] {
        if let Some(v) = v {
            parse_duration(key, v).map_err(|m| (line_of(text, key), m))?;
        }
    }
    if let Some(v) = &cfg.eice_max_duration {
        let d = parse_duration("eice_max_duration", v).map_err(|m| (line_of(text, "eice_max_duration"), m))?;
        if d.is_zero() || d > Duration::from_secs(3600) {
            return Err((line_of(text, "eice_max_duration"), format!("invalid eice_max_duration {v}: 1s to 1h")));
        }
    }
    if let Some(a) = &cfg.auth {
        parse_auth(a).map_err(|m| (line_of(text, "auth"), m))?;
    }
    for (name, h) in &cfg.hosts {
        if let Some(a) = &h.auth {
            parse_auth(a).map_err(|m| (line_of(text, "auth"), format!("[hosts.{name}] {m}")))?;
        }
        if let Some(r) = &h.route {
            crate::domain::route::Forced::parse(r)
                .map_err(|m| (line_of(text, "route"), format!("[hosts.{name}] {m}")))?;
        }
    }
    Ok(cfg)
}

/// `auth`: whether keys are pushed with EC2 Instance Connect.
fn parse_auth(s: &str) -> Result<bool, String> {
    match s {
        "instance-connect" => Ok(true),
        "key" => Ok(false),
        other => Err(format!("invalid auth {other:?}: expected \"instance-connect\" or \"key\"")),
    }
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.trim_start().starts_with(key)).map_or(1, |n| n + 1)
}

/// A duration key (`cache_ttl`, `ssm_give_up`): seconds as a number, or a string with an
/// s/m/h suffix.
pub fn parse_duration(key: &str, v: &toml::Value) -> Result<Duration, String> {
    let bad = || format!("invalid {key} {v}: expected seconds or a duration like \"90s\", \"10m\", \"1h\"");
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::String(s) => {
            let s = s.trim();
            let (num, mult) = match s.char_indices().last() {
                Some((i, 's')) => (&s[..i], 1),
                Some((i, 'm')) => (&s[..i], 60),
                Some((i, 'h')) => (&s[..i], 3600),
                _ => (s, 1),
            };
            num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).map(Duration::from_secs).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// A named profile must exist, as the AWS CLI insists ("the config profile could not be
/// found"); otherwise the SDK's errors about it are misleading (no credentials, no region).
fn check_profile_exists(profile: &str, world: &World) -> Result<(), HopError> {
    let config = world.var("AWS_CONFIG_FILE").map(PathBuf::from).unwrap_or_else(|| world.home.join(".aws/config"));
    let credentials = world
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| world.home.join(".aws/credentials"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    if aws_profile_names(&read(&config), true)
        .iter()
        .chain(&aws_profile_names(&read(&credentials), false))
        .any(|n| n == profile)
    {
        return Ok(());
    }
    Err(HopError::Usage {
        message: format!("AWS profile {profile:?} not found in {} or {}", config.display(), credentials.display()),
        hints: vec![
            "list profiles with `aws configure list-profiles`; create one with `aws configure --profile NAME`".into(),
        ],
    })
}

/// Profile names declared in an AWS config file (`[profile NAME]`, and `[default]`) or
/// credentials file (`[NAME]`).
pub fn aws_profile_names(text: &str, config_file: bool) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
        .filter_map(|section| {
            let section = section.trim();
            if !config_file {
                return Some(section.to_string());
            }
            match section.strip_prefix("profile") {
                Some(rest) if rest.starts_with(char::is_whitespace) => Some(rest.trim().to_string()),
                _ if section == "default" => Some(section.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn expand_tilde(p: &str, home: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if p == "~" => home.to_path_buf(),
        None => PathBuf::from(p),
    }
}

/// Resolve flags, environment and the config file, in the AWS CLI's order (flags, then the
/// environment, then configuration files):
/// profile: --profile, AWS_PROFILE, config `profile`, "default";
/// regions: --region, AWS_REGION, AWS_DEFAULT_REGION, config `[profiles.P] regions`, config
/// `regions` (then the AWS profile's region, resolved by the aws adapter).
pub fn resolve(args: &GlobalArgs, world: &World, stdout_is_tty: bool) -> Result<Settings, HopError> {
    let file = load_file(&config_path(world))?;
    let profile = args
        .profile
        .clone()
        .or_else(|| world.var("AWS_PROFILE").map(str::to_string))
        .or_else(|| file.profile.clone())
        .unwrap_or_else(|| "default".to_string());
    if profile != "default" {
        check_profile_exists(&profile, world)?;
    }
    let env_region = world.var("AWS_REGION").or_else(|| world.var("AWS_DEFAULT_REGION"));
    let mut regions: Vec<String> = if !args.regions.is_empty() {
        args.regions.clone()
    } else if let Some(r) = env_region {
        vec![r.to_string()]
    } else if let Some(r) = file.profiles.get(&profile).and_then(|p| p.regions.clone()) {
        r
    } else {
        file.regions.clone().unwrap_or_default()
    };
    // Several --region flags naming the same region would query it twice.
    let mut seen = std::collections::BTreeSet::new();
    regions.retain(|r| seen.insert(r.clone()));
    for r in &regions {
        if r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(HopError::Usage {
                message: format!("invalid region {r:?}"),
                hints: vec!["regions look like us-east-1".into()],
            });
        }
    }
    let ssh_dir = world.home.join(".ssh");
    let login = LoginPolicy {
        cli_user: args.login.clone(),
        cli_identity: args.identity.as_ref().map(|p| expand_tilde(&p.to_string_lossy(), &world.home)),
        default_user: file.user.clone(),
        user_tag: file.user_tag.clone().unwrap_or_else(|| "hop:user".into()),
        overrides: file
            .hosts
            .iter()
            .map(|(k, h)| {
                let ov = HostOverride {
                    user: h.user.clone(),
                    identity: h.identity.as_deref().map(|p| expand_tilde(p, &world.home)),
                    port: h.port,
                    // Both checked by `parse_file`.
                    route: h.route.as_deref().and_then(|r| crate::domain::route::Forced::parse(r).ok()),
                    push_key: h.auth.as_deref().and_then(|a| parse_auth(a).ok()),
                };
                (k.clone(), ov)
            })
            .collect(),
        ssh_dir: ssh_dir.clone(),
        push_key: args.push_key || file.auth.as_deref().and_then(|a| parse_auth(a).ok()).unwrap_or(false),
    };
    let default_rule = BastionRule::default();
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_is_tty && world.var("NO_COLOR").is_none() && world.var("TERM") != Some("dumb"),
    };
    Ok(Settings {
        default_target: file.default_target.clone(),
        profile_explicit: args.profile.is_some(),
        profile,
        regions,
        bastion: BastionRule {
            tag_key: file.bastion.tag_key.clone().unwrap_or(default_rule.tag_key),
            tag_value: file.bastion.tag_value.clone().unwrap_or(default_rule.tag_value),
        },
        login,
        cache_ttl: file.cache_ttl.as_ref().and_then(|v| parse_duration("cache_ttl", v).ok()).unwrap_or(DEFAULT_TTL),
        ssm_give_up: file
            .ssm_give_up
            .as_ref()
            .and_then(|v| parse_duration("ssm_give_up", v).ok())
            .unwrap_or(DEFAULT_SSM_GIVE_UP),
        forward_stall_timeout: file
            .forward_stall_timeout
            .as_ref()
            .and_then(|v| parse_duration("forward_stall_timeout", v).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(crate::adapters::ssh::forward::STALL_TIMEOUT),
        share_connections: (file.reuse != Some(false)).then(|| reuse_idle(&file)),
        cache_dir: world.cache_dir.join("hop"),
        ssh_dir,
        system_ssh_config: world
            .var("HOP_SYSTEM_SSH_CONFIG")
            .map_or_else(|| PathBuf::from("/etc/ssh/ssh_config"), PathBuf::from),
        refresh: args.refresh,
        newest: args.newest,
        accept_new: args.accept_new,
        forward_agent: args.forward_agent,
        force_ssm: args.ssm,
        force_eice: args.eice.clone().map(|e| Some(e).filter(|id| !id.is_empty())),
        eice_max_duration: file
            .eice_max_duration
            .as_ref()
            .and_then(|v| parse_duration("eice_max_duration", v).ok())
            .map_or(crate::domain::route::EICE_MAX_DURATION, |d| d.as_secs().clamp(1, 3600) as u32),
        purpose: Default::default(),
        jumps: args
            .jump
            .iter()
            .map(|j| j.parse().map_err(|message| HopError::Usage { message, hints: vec![] }))
            .collect::<Result<_, _>>()?,
        tty: if args.tty {
            Some(true)
        } else if args.no_tty {
            Some(false)
        } else {
            None
        },
        term: world.var("TERM").unwrap_or("xterm-256color").to_string(),
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        reuse: (!args.no_reuse && file.reuse != Some(false)).then(|| crate::adapters::ssh::reuse::Reuse {
            dir: runtime_dir(world),
            idle: reuse_idle(&file),
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
            verbose: args.verbose,
        }),
        color,
        env_access_key: if args.profile.is_some() { None } else { world.var("AWS_ACCESS_KEY_ID").map(str::to_string) },
        endpoint: world.var("AWS_ENDPOINT_URL_EC2").or_else(|| world.var("AWS_ENDPOINT_URL")).map(str::to_string),
        aws: Default::default(),
    })
}

/// The settings of `hop` with no flags, no environment and no files: for unit tests of adapters
/// that need a `Settings` but never reach AWS with it.
#[cfg(test)]
pub fn for_tests() -> Settings {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from(["hop"]).expect("parses");
    let world = World {
        env: Default::default(),
        home: "/nonexistent".into(),
        config_dir: "/nonexistent".into(),
        cache_dir: "/nonexistent".into(),
    };
    resolve(&cli.global, &world, false).expect("settings")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_errors_name_the_line() {
        let table = [
            ("profile = \"x\"\nregions = [\"a\"\n", 2),
            ("profile = \"x\"\n\n[hosts.web]\nport = \"twenty-two\"\n", 4),
            ("profile = \"x\"\nbogus = 1\n", 2),
            ("cache_ttl = \"ten minutes\"\n", 1),
            ("profile = \"x\"\nssm_give_up = \"never\"\n", 2),
            ("[bastion]\ntag_key = \"k\"\ntag_vlaue = \"v\"\n", 3),
        ];
        for (text, line) in table {
            match parse_file(text) {
                Err((l, m)) => assert_eq!(l, line, "{text:?}: {m}"),
                Ok(_) => panic!("{text:?} parsed"),
            }
        }
    }

    #[test]
    fn config_file_full() {
        let text = r#"
profile = "dev"
regions = ["us-east-1", "eu-west-1"]
user = "admin"
cache_ttl = "5m"
ssm_give_up = "30s"
[bastion]
tag_key = "role"
tag_value = "jump"
[profiles.prod]
regions = ["us-west-2"]
[hosts.sample-web]
user = "deploy"
identity = "~/.ssh/deploy.pem"
port = 2222
"#;
        let c = parse_file(text).unwrap();
        assert_eq!(c.profile.as_deref(), Some("dev"));
        assert_eq!(parse_duration("cache_ttl", c.cache_ttl.as_ref().unwrap()).unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("ssm_give_up", c.ssm_give_up.as_ref().unwrap()).unwrap(), Duration::from_secs(30));
        assert_eq!(c.hosts["sample-web"].port, Some(2222));
        assert_eq!(c.profiles["prod"].regions.as_deref(), Some(&["us-west-2".to_string()][..]));
    }

    #[test]
    fn aws_profile_sections() {
        let config = "[default]\nregion=x\n[profile dev]\n[ profile  prod ]\n[sso-session corp]\n[profilex]\n";
        assert_eq!(aws_profile_names(config, true), ["default", "dev", "prod"]);
        assert_eq!(aws_profile_names("[default]\n[ci]\n", false), ["default", "ci"]);
    }

    #[test]
    fn ttl_forms() {
        let table = [
            (toml::Value::Integer(30), Some(30)),
            (toml::Value::String("90s".into()), Some(90)),
            (toml::Value::String("10m".into()), Some(600)),
            (toml::Value::String("1h".into()), Some(3600)),
            (toml::Value::String("45".into()), Some(45)),
            (toml::Value::String("soon".into()), None),
            (toml::Value::Integer(-1), None),
        ];
        for (v, want) in table {
            assert_eq!(parse_duration("cache_ttl", &v).ok().map(|d| d.as_secs()), want, "{v}");
        }
    }
}
