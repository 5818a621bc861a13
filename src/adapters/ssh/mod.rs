//! SSH, in-process with russh: the hop chain (`client`), known_hosts (`known_hosts`), running
//! commands (`session`), the stdin/stdout bridge for `ProxyCommand` (`proxy`), and connection
//! reuse: the background master (`master`) and the commands' side of it (`reuse`).

pub mod client;
pub mod forward;
pub mod known_hosts;
pub mod master;
pub mod proxy;
mod quickack;
pub mod reuse;
pub mod session;

use crate::domain::route::{Endpoint, Route};

/// The name a hop's host key is recorded under in known_hosts. An instance: its id (the
/// `HostKeyAlias` the generated ssh config sets, so `ssh` and hop share the entry; ssh adds no
/// port to an alias). Any other host (a `-J` host that is no instance): as ssh records it,
/// `HOST` on port 22, `[HOST]:PORT` elsewhere.
fn host_key_alias(e: &Endpoint) -> String {
    if e.is_instance() || e.login.port == 22 { e.id.clone() } else { format!("[{}]:{}", e.id, e.login.port) }
}

/// The hops of a planned route, bastion first. None for unreachable routes.
pub fn hops(route: &Route) -> Option<Vec<client::Hop>> {
    fn hop(e: &Endpoint) -> client::Hop {
        client::Hop {
            label: e.name.clone().unwrap_or_else(|| e.id.clone()),
            address: e.address.clone(),
            port: e.login.port,
            user: e.login.user.clone(),
            identity: e.login.identity.clone(),
            host_key_alias: host_key_alias(e),
        }
    }
    match route {
        Route::Direct { target } => Some(vec![hop(target)]),
        Route::Jump { bastion, target, .. } => Some(vec![hop(bastion), hop(target)]),
        Route::Chain { jumps, target } => Some(jumps.iter().chain([target]).map(hop).collect()),
        // SSH runs over the data channel straight to the target.
        Route::Ssm { target, .. } => Some(vec![hop(target)]),
        // SSH runs over the endpoint's tunnel straight to the target.
        Route::Eice { target, .. } => Some(vec![hop(target)]),
        Route::Unreachable { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::route::Login;

    fn endpoint(id: &str, address: &str, port: u16) -> Endpoint {
        let login = Login { user: "ec2-user".into(), identity: None, port, push: Default::default() };
        Endpoint { id: id.into(), name: None, address: address.into(), login }
    }

    #[test]
    fn a_jump_host_off_port_22_is_known_as_ssh_records_it() {
        for (e, want) in [
            // `-J HOST:PORT`, HOST no instance: like ssh, `[HOST]:PORT`; port 22 stays plain.
            (endpoint("jump.example.com", "jump.example.com", 2222), "[jump.example.com]:2222"),
            (endpoint("198.51.100.7", "198.51.100.7", 2200), "[198.51.100.7]:2200"),
            (endpoint("jump.example.com", "jump.example.com", 22), "jump.example.com"),
            // Instances keep their id (HostKeyAlias), whatever the port: direct, by IP, SSM.
            (endpoint("i-0abc", "203.0.113.10", 2222), "i-0abc"),
            (endpoint("i-0abc", "i-0abc", 2222), "i-0abc"),
        ] {
            assert_eq!(host_key_alias(&e), want, "{e:?}");
        }
    }
}
