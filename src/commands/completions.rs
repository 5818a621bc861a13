//! `hop completions SHELL`, and the dynamic completer of TARGET (names from the cache).

use std::ffi::OsStr;
use std::io::Write;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;

use crate::adapters::cache::Cache;
use crate::cli::Cli;
use crate::domain::display;

pub fn run(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hop", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(0)
}

/// Instance names and ids from every discovery cache: no AWS call while the user waits on TAB.
/// A name with characters unsafe for a terminal (control characters, bidi overrides) is not
/// offered: the shell would put it on the command line and in its menu as it is, and an escaped
/// form would name nothing. Its instance id is offered like every other.
pub fn complete_target(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let root = dirs::cache_dir().map(|d| d.join("hop"));
    root.map(|r| Cache::all_names(&r))
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()) && display::is_plain(n))
        .map(CompletionCandidate::new)
        .collect()
}
