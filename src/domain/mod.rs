//! The pure core: inventory, name resolution, route planning, ssh_config rendering and merging,
//! filters, text made safe for a terminal. No I/O, no async, no AWS SDK: data in, data out,
//! tested with tables.

pub mod claims;
// Issue #13 foundation: not wired into connect yet; the next session removes the allow.
#[allow(dead_code)]
pub mod console;
pub mod display;
pub mod doctor;
pub mod eice;
pub mod filter;
pub mod forward;
pub mod inventory;
pub mod resolve;
pub mod route;
pub mod ssh_config;
pub mod ssm;
pub mod stanzas;
