//! hop: get into private EC2 instances.
//!
//! # Layout
//! - `cli`: clap types, the one source of help, man pages and completions.
//! - `settings`: flags + environment + config file + AWS profile, resolved once.
//! - `commands`: one file per subcommand; orchestrates domain and adapters.
//! - `domain`: pure inventory, name resolution, route planning, ssh_config rendering/merging.
//! - `adapters`: AWS, cache, filesystem, terminal.
//! - `logging`: the log on stderr (-v, -vv, HOP_LOG), secrets kept out of it.
//!
//! `main` parses, runs and reports: it is the only place that prints errors and picks the exit
//! status.

mod adapters;
mod cli;
mod commands;
mod domain;
mod error;
mod logging;
mod settings;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::error::exit;

fn main() -> ExitCode {
    // `hop __master SPEC`: a background connection master, started by hop itself (DESIGN §5a).
    // Not a clap subcommand, so it stays out of help, completions and man pages.
    if std::env::args_os().nth(1).is_some_and(|a| a == commands::master::ARG) {
        return ExitCode::from(commands::master::main(std::env::args_os().nth(2)));
    }
    // Dynamic completion (`source <(COMPLETE=bash hop)`): answers and returns true when the
    // shell is asking; a no-op otherwise.
    match clap_complete::CompleteEnv::with_factory(cli::Cli::command).try_complete(std::env::args_os(), None) {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "hop: error: completion failed: {e}");
            return ExitCode::from(exit::USAGE);
        }
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version are successes; every other clap error is a usage error.
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    logging::init(cli.global.verbose);
    // Ctrl-C drops the command's future (so guards like the spinner clean up) and exits 130,
    // as a shell reports a process killed by SIGINT. `hop forward` handles it itself: it
    // drains open connections first.
    let own_interrupt = matches!(cli.command, Some(cli::Command::Forward(_)));
    let runtime = match runtime(own_interrupt) {
        Ok(r) => r,
        Err(e) => return report(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        if own_interrupt {
            return tokio::select! {
                r = commands::run(cli) => r,
                n = hangup_or_term() => Ok(128 + n),
            };
        }
        tokio::select! {
            r = commands::run(cli) => r,
            _ = tokio::signal::ctrl_c() => Ok(exit::INTERRUPTED),
            // ssh ends a ProxyCommand with SIGHUP; kill sends SIGTERM. Both end cleanly
            // (128 + n), so open Session Manager sessions are terminated below.
            n = hangup_or_term() => Ok(128 + n),
        }
    });
    // Every exit path, Ctrl-C included, ends the Session Manager sessions it opened (§7.1) and
    // closes its EC2 Instance Connect tunnels with Close 1000.
    runtime.block_on(async {
        tokio::join!(
            adapters::ssm::finish(std::time::Duration::from_secs(3)),
            adapters::eice::finish(std::time::Duration::from_secs(2))
        )
    });
    // Reading stdin blocks a thread the runtime cannot interrupt; the remote side is done, so
    // do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(e),
    }
}

/// One thread for every command but `hop forward`, whose two layers of encryption (the
/// bastion's session and the target's, nested in it) get a worker each, so that a forward's
/// throughput is not bound to one core (issue #11).
fn runtime(forward: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if forward && cores > 1 {
        return tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Resolves with the signal number on SIGHUP or SIGTERM.
async fn hangup_or_term() -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term)) = (signal(SignalKind::hangup()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = hup.recv() => libc::SIGHUP as u8,
        _ = term.recv() => libc::SIGTERM as u8,
    }
}

/// Print `hop: error: …` and the hints (escaped for the terminal); pick the exit status.
fn report(e: anyhow::Error) -> ExitCode {
    if error::is_broken_pipe(&e) {
        return ExitCode::SUCCESS;
    }
    // Ctrl-C at a question: the ^C on the terminal says it all, as elsewhere.
    if let Some(error::HopError::Interrupted) = e.downcast_ref::<error::HopError>() {
        return ExitCode::from(exit::INTERRUPTED);
    }
    let mut err = std::io::stderr().lock();
    for line in error::report(&e) {
        let _ = writeln!(err, "{line}");
    }
    ExitCode::from(error::exit_code(&e))
}
