//! The command line, as clap types: the one source of `--help`, the man pages and the shell
//! completions. These types only validate; `settings` resolves them into what commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

/// Get into private EC2 instances: find them by tag, jump through the VPC's bastion.
///
/// hop finds the instance tagged Name=TARGET, finds the bastion of its VPC (tag hop:role=bastion,
/// else a running instance with a public IP whose Name contains "bastion") and plans the route:
/// direct for instances with a public IP, through the bastion for private ones, SSM Session
/// Manager when the VPC has no bastion.
#[derive(Debug, Parser)]
#[command(
    name = "hop",
    version,
    after_help = "A target named like a subcommand is reached with `hop connect NAME`.\n\
                  Exit status: 0 ok, 1 `ls` matched nothing, 2 usage/config/unknown or ambiguous \
                  target, 255 connection/AWS/auth failure, 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Instance to connect to: Name tag, instance id, or private/public IP.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::commands::completions::complete_target))]
    pub target: Option<String>,

    /// Command to run on the target instead of a shell (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub remote_command: Vec<String>,

    /// Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop,
    /// kept in memory only (config: auth = "instance-connect").
    #[arg(long)]
    pub push_key: bool,
}

/// Flags shared by every subcommand, named as in OpenSSH and the AWS CLI.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS profile to use (default: $AWS_PROFILE, then the config file, then "default").
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region to search; repeat for several (default: config file, $AWS_REGION, profile).
    #[arg(long = "region", global = true, value_name = "REGION")]
    pub regions: Vec<String>,

    /// Remote user on the target (default: tag hop:user, config, then ec2-user).
    #[arg(short = 'l', long = "login", global = true, value_name = "USER")]
    pub login: Option<String>,

    /// Identity (private key) file for the target.
    #[arg(short = 'i', long = "identity", global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Ignore the discovery cache and ask EC2 again.
    #[arg(long, global = true)]
    pub refresh: bool,

    /// When a name matches several instances, choose the most recently launched.
    #[arg(long, global = true)]
    pub newest: bool,

    /// Trust and record unknown host keys without asking (changed keys are still refused),
    /// like `ssh -o StrictHostKeyChecking=accept-new`.
    #[arg(long, global = true)]
    pub accept_new: bool,

    /// Jump through these hosts instead of the VPC's bastion: [USER@]HOST[:PORT], comma
    /// separated, HOST an instance (name, id, IP) or any host (like `ssh -J`).
    #[arg(short = 'J', global = true, value_name = "JUMPS", value_delimiter = ',')]
    pub jump: Vec<String>,

    /// Route through SSM Session Manager even when a bastion could be used.
    #[arg(long, global = true, conflicts_with = "eice")]
    pub ssm: bool,

    /// Route through an EC2 Instance Connect Endpoint of the target's VPC (or ENDPOINT, an
    /// eice-… id) even when a bastion could be used.
    #[arg(long, global = true, value_name = "ENDPOINT", num_args = 0..=1, default_missing_value = "",
          value_parser = parse_eice_arg)]
    pub eice: Option<String>,

    /// Set from the command's own `--push-key` (top level, `connect`, `forward`).
    #[arg(skip)]
    pub push_key: bool,

    /// Forward the ssh-agent to the target (never to a bastion), bound to the session so
    /// destination-constrained keys keep their limits.
    #[arg(short = 'A', global = true)]
    pub forward_agent: bool,

    /// Force a PTY on the target even for a command (like `ssh -t`).
    #[arg(short = 't', global = true, conflicts_with = "no_tty")]
    pub tty: bool,

    /// Never request a PTY (like `ssh -T`).
    #[arg(short = 'T', global = true)]
    pub no_tty: bool,

    /// Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel
    /// open, Session Manager handshake); a whole connection gets this much per hop.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Connect without a background connection master: neither use one nor leave one behind
    /// (config: `reuse = false`).
    #[arg(long, global = true)]
    pub no_reuse: bool,

    /// More output on stderr (-v, -vv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// When to use colour on stdout (NO_COLOR is respected with auto).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// `--eice`'s optional value: empty (the best endpoint of the VPC) or an `eice-…` id.
fn parse_eice_arg(s: &str) -> Result<String, String> {
    if s.is_empty()
        || crate::domain::route::Forced::parse(s)
            .is_ok_and(|f| matches!(f, crate::domain::route::Forced::Eice(Some(_))))
    {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an endpoint id (eice-…)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand).
    Connect(ConnectArgs),
    /// List the instances hop sees and the route it would take to each.
    Ls(LsArgs),
    /// Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere.
    Route(RouteArgs),
    /// Print ssh_config stanzas for every reachable instance; --write installs them.
    Config(ConfigArgs),
    /// Forward local ports to TARGET, or to hosts behind it, over one SSH connection.
    Forward(ForwardArgs),
    /// Bridge stdin/stdout to TARGET's PORT through the route (for ProxyCommand, scp, rsync).
    Proxy(ProxyArgs),
    /// Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it.
    Doctor(DoctorArgs),
    /// List the background connection masters and end them (those matching PATTERN).
    Stop(StopArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print a man page (roff).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Instance to connect to: Name tag, instance id, or private/public IP.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::commands::completions::complete_target))]
    pub target: String,

    /// Command to run on the target instead of a shell (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub remote_command: Vec<String>,

    /// Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop,
    /// kept in memory only (config: auth = "instance-connect").
    #[arg(long)]
    pub push_key: bool,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// An optional TARGET, then forwards: PORT, LPORT:RPORT or LPORT:HOST:RPORT (HOST as seen
    /// from the target), each optionally BIND: first (default 127.0.0.1; [::1], * allowed).
    #[arg(value_name = "[TARGET] SPEC")]
    pub args: Vec<String>,

    /// A SOCKS 5/4a proxy on [BIND:]PORT whose connections leave from the target.
    #[arg(short = 'D', value_name = "[BIND:]PORT")]
    pub dynamic: Vec<String>,

    /// A listener on the target, [BIND:]RPORT, whose connections come back to HOST:PORT here.
    #[arg(short = 'R', value_name = "[BIND:]RPORT:HOST:PORT")]
    pub remote: Vec<String>,

    /// Log in with a fresh key pushed by EC2 Instance Connect on every hop (as `hop --push-key`).
    #[arg(long)]
    pub push_key: bool,

    /// Session Manager's own port forwarding (one session per forward, smux-multiplexed when
    /// the agent supports it) instead of SSH: needs no SSH access to the instance.
    #[arg(long, conflicts_with_all = ["dynamic", "remote"])]
    pub native: bool,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Instance to reach: Name tag, instance id, or private/public IP.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::commands::completions::complete_target))]
    pub target: String,

    /// TCP port on the target.
    #[arg(value_name = "PORT", default_value_t = 22)]
    pub port: u16,

    /// Push this public key (yours, e.g. ~/.ssh/id_ed25519.pub) with EC2 Instance Connect
    /// before bridging, for ssh/scp/rsync through `hop config` stanzas.
    #[arg(long, value_name = "PUBKEY")]
    pub push_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show only instances whose name, id or IP matches (glob with * and ?, else substring).
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,

    /// Show only instances with this tag (KEY=VALUE, or KEY for any value); repeatable.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,

    /// Print JSON (a stable schema, see README) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Instance to route to: Name tag, instance id, or private/public IP.
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::commands::completions::complete_target))]
    pub target: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Instance to diagnose (default: `default_target`, or the only instance that is not a bastion).
    #[arg(value_name = "TARGET", add = ArgValueCompleter::new(crate::commands::completions::complete_target))]
    pub target: Option<String>,

    /// Print JSON instead of the checklist.
    #[arg(long)]
    pub json: bool,

    /// Your public address (or network), to check that the bastion lets SSH in from it.
    #[arg(long, value_name = "CIDR")]
    pub my_ip: Option<String>,

    /// Also try the route for real: TCP to the bastion, SSH to it, then the target's port 22.
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Install the stanzas: write ~/.ssh/hop/config and add one Include line to the ssh config.
    #[arg(long)]
    pub write: bool,

    /// The ssh config file to add the Include line to (default: ~/.ssh/config).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// End only the masters whose first hop or held targets contain PATTERN.
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Print the page of this subcommand instead of hop(1).
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Option<String>,
}
