//! `hop man [SUBCOMMAND]`: the man pages, rendered from the clap definitions.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::HopError;

/// Every page `man/` holds: hop(1) and hop-SUBCOMMAND(1).
pub fn pages() -> Vec<Option<String>> {
    let cmd = Cli::command();
    std::iter::once(None).chain(cmd.get_subcommands().map(|s| Some(s.get_name().to_string()))).collect()
}

pub fn render(subcommand: Option<&str>) -> Result<Vec<u8>, HopError> {
    let cmd = Cli::command();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| HopError::Usage {
                message: format!("no subcommand {name:?}"),
                hints: vec![format!("pages: {}", pages().into_iter().flatten().collect::<Vec<_>>().join(", "))],
            })?;
            sub.name(format!("hop-{name}")).version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out).expect("writing to a Vec cannot fail");
    Ok(out)
}

pub fn run(subcommand: Option<&str>) -> anyhow::Result<u8> {
    std::io::stdout().write_all(&render(subcommand)?)?;
    Ok(0)
}
