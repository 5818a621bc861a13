//! `hop __master SPEC`: the background connection master a command starts for itself
//! (DESIGN §5a), run straight from `main` (it is no user-facing subcommand);
//! `adapters::ssh::master` does the work.

use std::ffi::OsString;

use crate::adapters::ssh::{master, reuse};

/// The first argument that makes hop a master.
pub const ARG: &str = reuse::MASTER_ARG;

/// Run a master; its exit status. It has no terminal: what goes wrong goes to its log (stderr,
/// a file in the runtime directory) and to the one line its starter reads.
pub fn main(spec: Option<OsString>) -> u8 {
    let spec: reuse::MasterSpec = match spec.as_deref().and_then(|s| s.to_str()).map(serde_json::from_str) {
        Some(Ok(spec)) => spec,
        _ => {
            eprintln!("hop: error: {ARG} is started by hop itself, with the spec it writes");
            return crate::error::exit::USAGE;
        }
    };
    crate::logging::init(spec.verbose);
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(master::run(spec)),
        Err(e) => {
            eprintln!("hop: error: cannot start the async runtime: {e}");
            255
        }
    }
}
