//! SSH, in-process with russh: the hop chain (`client`), known_hosts (`known_hosts`), running
//! commands (`session`) and the stdin/stdout bridge for `ProxyCommand` (`proxy`).

pub mod client;
pub mod forward;
pub mod known_hosts;
pub mod proxy;
pub mod session;

use crate::domain::route::{Endpoint, Route};

/// The hops of a planned route, bastion first. None for unreachable routes.
pub fn hops(route: &Route) -> Option<Vec<client::Hop>> {
    fn hop(e: &Endpoint) -> client::Hop {
        client::Hop {
            label: e.name.clone().unwrap_or_else(|| e.id.clone()),
            address: e.address.clone(),
            port: e.login.port,
            user: e.login.user.clone(),
            identity: e.login.identity.clone(),
            host_key_alias: e.id.clone(),
        }
    }
    match route {
        Route::Direct { target } => Some(vec![hop(target)]),
        Route::Jump { bastion, target, .. } => Some(vec![hop(bastion), hop(target)]),
        Route::Chain { jumps, target } => Some(jumps.iter().chain([target]).map(hop).collect()),
        // SSH runs over the data channel straight to the target.
        Route::Ssm { target, .. } => Some(vec![hop(target)]),
        Route::Unreachable { .. } => None,
    }
}
