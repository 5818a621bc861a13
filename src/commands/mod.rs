//! One module per subcommand; each orchestrates domain logic and adapters and returns the exit
//! status. `run` resolves settings once and dispatches.

pub mod completions;
pub mod config;
pub mod connect;
pub mod doctor;
pub mod forward;
pub mod ls;
pub mod man;
pub mod master;
pub mod proxy;
pub mod route;
pub mod stop;

use std::io::IsTerminal;
use std::path::Path;

use crate::adapters::inventory::{self, Freshness, Loaded};
use crate::cli::{Cli, Command};
use crate::domain::inventory::Instance;
use crate::domain::resolve::{Resolution, resolve};
use crate::domain::route::{Forced, Network, Route, bastions, eice_forced, plan, plan_jumps};
use crate::error::HopError;
use crate::settings::{self, Settings, World};

pub async fn run(mut cli: Cli) -> anyhow::Result<u8> {
    // Commands that need no settings must work with a broken config file.
    match &cli.command {
        Some(Command::Completions(a)) => return completions::run(a.shell),
        Some(Command::Man(a)) => return man::run(a.subcommand.as_deref()),
        _ => {}
    }
    if let (Some(t), Some(_)) = (&cli.target, &cli.command) {
        return Err(HopError::Usage {
            message: format!("unexpected argument {t:?} before the subcommand"),
            hints: vec!["a target named like a subcommand is reached with `hop connect NAME`".into()],
        }
        .into());
    }
    let world = World::from_process()?;
    if let Some(Command::Stop(a)) = &cli.command {
        // Needs nothing of the config: it must work with a broken one.
        return stop::run(&settings::runtime_dir(&world), a.pattern.as_deref());
    }
    cli.global.push_key = match &cli.command {
        None => cli.push_key,
        Some(Command::Connect(a)) => a.push_key,
        Some(Command::Forward(a)) => a.push_key,
        _ => false,
    };
    let mut settings = settings::resolve(&cli.global, &world, std::io::stdout().is_terminal())?;
    if matches!(cli.command, Some(Command::Forward(_))) {
        settings.purpose = crate::domain::route::Purpose::LongLived;
    }
    match cli.command {
        Some(Command::Ls(a)) => {
            let tags = a
                .tags
                .iter()
                .map(|t| t.parse().map_err(|m| HopError::Usage { message: m, hints: vec![] }))
                .collect::<Result<Vec<_>, _>>()?;
            ls::run(&settings, a.pattern.as_deref(), &tags, a.json).await
        }
        Some(Command::Route(a)) => route::run(&settings, &a.target, a.json).await,
        Some(Command::Doctor(a)) => doctor::run(&settings, a.target, a.json, a.my_ip.as_deref(), a.probe).await,
        Some(Command::Config(a)) => {
            if cli.global.login.is_some() || cli.global.identity.is_some() || !cli.global.jump.is_empty() {
                return Err(HopError::Usage {
                    message: "-l, -i and -J apply to one target, not to every stanza".into(),
                    hints: vec![
                        "set per-host users and keys in ~/.config/hop/config.toml: [hosts.NAME] user/identity".into(),
                    ],
                }
                .into());
            }
            let file = a.file.map(std::path::absolute).transpose()?;
            config::run(&settings, a.write, file).await
        }
        Some(Command::Connect(a)) => connect::run(&settings, &a.target, &a.remote_command).await,
        Some(Command::Proxy(a)) => proxy::run(&settings, &a.target, a.port, a.push_key.as_deref()).await,
        Some(Command::Forward(a)) => forward::run(&settings, &a.args, &a.dynamic, &a.remote, a.native).await,
        Some(Command::Completions(_) | Command::Man(_) | Command::Stop(_)) => {
            unreachable!("handled above")
        }
        None => match cli.target {
            Some(t) => connect::run(&settings, &t, &cli.remote_command).await,
            None => Err(HopError::Usage {
                message: "no target given".into(),
                hints: vec!["usage: hop TARGET [-- CMD…]; `hop ls` lists targets; `hop --help` for more".into()],
            }
            .into()),
        },
    }
}

fn file_exists(p: &Path) -> bool {
    p.is_file()
}

/// The ways into VPCs a loaded inventory offers, for planning routes.
pub fn network<'a>(settings: &Settings, loaded: &'a Loaded) -> Network<'a> {
    Network {
        bastions: bastions(&loaded.instances, &settings.bastion),
        endpoints: &loaded.endpoints,
        purpose: settings.purpose,
        forced: if settings.force_ssm { Some(Forced::Ssm) } else { settings.force_eice.clone().map(Forced::Eice) },
        eice_max_duration: settings.eice_max_duration,
    }
}

/// Plan the route to every instance of a loaded inventory (`--ssm`/`--eice` are per target and
/// not applied here).
pub fn plan_all<'a>(settings: &Settings, loaded: &'a Loaded) -> Vec<(&'a Instance, Route)> {
    let net = Network { forced: None, ..network(settings, loaded) };
    loaded.instances.iter().map(|i| (i, plan(i, &net, &settings.login, &file_exists))).collect()
}

/// An unreachable route the user asked for: `--eice` (config, tag) with no usable endpoint is
/// theirs to fix (exit 2, spec §A.8 row 7), with the ways in there are. Other unreachable
/// routes fail when connecting, as before.
pub fn refuse_unreachable(
    settings: &Settings,
    loaded: &Loaded,
    instance: &Instance,
    route: &Route,
) -> Result<(), HopError> {
    let Route::Unreachable { reason } = route else { return Ok(()) };
    if !settings.jumps.is_empty() || !eice_forced(instance, &network(settings, loaded), &settings.login) {
        return Ok(());
    }
    let vpc = instance.vpc_id.as_deref().unwrap_or("its VPC");
    let subnet = instance.subnet_id.as_deref().unwrap_or("SUBNET");
    Err(HopError::Usage {
        message: format!(
            "{} ({}) cannot be reached through EC2 Instance Connect: {reason}",
            instance.label(),
            instance.id
        ),
        hints: vec![
            format!(
                "create an endpoint in {vpc}: aws ec2 create-instance-connect-endpoint --region {} --subnet-id {subnet}",
                instance.region
            ),
            "or run a bastion in the VPC (tag hop:role=bastion), or enable SSM (instance profile and agent)".into(),
            format!("`hop doctor {}` explains what stands in the way", instance.label()),
        ],
    })
}

/// Find exactly one instance for `target` and plan its route. A name missing from the cache is
/// looked up live once (the instance may be new).
pub async fn target_route(settings: &Settings, target: &str) -> Result<(Loaded, Instance, Route), HopError> {
    target_route_with(settings, target, Freshness::Cached).await
}

pub async fn target_route_with(
    settings: &Settings,
    target: &str,
    freshness: Freshness,
) -> Result<(Loaded, Instance, Route), HopError> {
    let mut loaded = inventory::load(settings, freshness).await?;
    if !loaded.live && !matches!(resolve(&loaded.instances, target, settings.newest), Resolution::Found(_)) {
        tracing::info!("{target:?} not found unambiguously in the cache; asking EC2");
        loaded = inventory::load(settings, Freshness::Live).await?;
    }
    let instance = match resolve(&loaded.instances, target, settings.newest) {
        Resolution::Found(i) => i.clone(),
        Resolution::Ambiguous(c) => {
            return Err(HopError::Ambiguous {
                target: target.into(),
                candidates: c.iter().map(|i| i.describe()).collect(),
            });
        }
        // The target may be in a region EC2 could not list: that failure is the answer.
        Resolution::NotFound { .. } if !loaded.failed.is_empty() => {
            let (region, e) = loaded.failed.into_iter().next().expect("not empty");
            return Err(HopError::Aws {
                message: format!("no instance matches {target:?} in the regions that answered; {region} failed: {e}"),
                hints: e.hints(),
            });
        }
        Resolution::NotFound { suggestions } => {
            return Err(HopError::UnknownTarget {
                target: target.into(),
                regions: loaded.regions.clone(),
                suggestions,
            });
        }
    };
    let route = if settings.jumps.is_empty() {
        plan(&instance, &network(settings, &loaded), &settings.login, &file_exists)
    } else {
        plan_jumps(&instance, &settings.jumps, &loaded.instances, &settings.login, &file_exists)
    };
    Ok((loaded, instance, route))
}
