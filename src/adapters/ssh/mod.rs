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

use crate::domain::route::{Endpoint, Push, Route};

/// The name a hop's host key is recorded under in known_hosts. An instance: its id (the
/// `HostKeyAlias` the generated ssh config sets, so `ssh` and hop share the entry; ssh adds no
/// port to an alias). Any other host (a `-J` host that is no instance): as ssh records it,
/// `HOST` on port 22, `[HOST]:PORT` elsewhere.
fn host_key_alias(e: &Endpoint) -> String {
    if e.is_instance() || e.login.port == 22 { e.id.clone() } else { format!("[{}]:{}", e.id, e.login.port) }
}

/// The hops of a planned route, bastion first. None for unreachable routes.
pub fn hops(route: &Route) -> Option<Vec<client::Hop>> {
    fn hop(e: &Endpoint, region: Option<&str>) -> client::Hop {
        client::Hop {
            label: e.name.clone().unwrap_or_else(|| e.id.clone()),
            address: e.address.clone(),
            port: e.login.port,
            user: e.login.user.clone(),
            identity: e.login.identity.clone(),
            host_key_alias: host_key_alias(e),
            push: push_to(e, region),
        }
    }
    match route {
        Route::Direct { target } => Some(vec![hop(target, None)]),
        Route::Jump { bastion, target, .. } => Some(vec![hop(bastion, None), hop(target, None)]),
        Route::Chain { jumps, target } => Some(jumps.iter().chain([target]).map(|e| hop(e, None)).collect()),
        // SSH runs over the data channel straight to the target.
        Route::Ssm { target, region, .. } => Some(vec![hop(target, Some(region))]),
        // SSH runs over the endpoint's tunnel straight to the target.
        Route::Eice { target, endpoint, .. } => Some(vec![hop(target, Some(&endpoint.region))]),
        Route::Unreachable { .. } => None,
    }
}

/// Where a hop's pushed key would go: instances whose login may push (spec §B.3).
fn push_to(e: &Endpoint, region: Option<&str>) -> Option<client::PushTo> {
    let always = match e.login.push {
        Push::No => return None,
        Push::Auto => false,
        Push::Always => true,
    };
    e.id.starts_with("i-").then(|| client::PushTo {
        instance_id: e.id.clone(),
        region: region.map(str::to_string),
        always,
    })
}

/// Whether a hop that may push does: always when asked; for hop's own guess (`Auto`), only when
/// ssh-agent holds no key (asked once per process: every hop of the command gets the same
/// answer). A key the agent holds is what the user logs in with.
pub async fn wants_push(to: &client::PushTo) -> bool {
    static AGENT_HAS_KEYS: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    if to.always {
        return true;
    }
    let has_keys = *AGENT_HAS_KEYS
        .get_or_init(|| async {
            let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await else {
                return false;
            };
            let n = agent.request_identities().await.map(|ids| ids.len()).unwrap_or(0);
            tracing::debug!("ssh-agent holds {n} keys");
            n > 0
        })
        .await;
    !has_keys
}

/// Whether `hop` logs in with a pushed key in this command.
pub async fn pushes(hop: &client::Hop) -> bool {
    match &hop.push {
        Some(to) => wants_push(to).await,
        None => false,
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

    /// Which hops push (spec §B.3): instances whose login asks for it or has no key file; never a
    /// `-J` host that is no instance. The region goes with the hop when the route knows it.
    #[test]
    fn hops_say_where_a_pushed_key_goes() {
        use crate::domain::route::{EiceVia, Push};
        let with = |id: &str, push: Push| {
            let mut e = endpoint(id, "10.0.1.10", 22);
            e.login.push = push;
            e
        };
        let jump = Route::Jump { bastion: with("i-0b", Push::Auto), target: with("i-0w", Push::Always), choice: None };
        let pushes: Vec<_> = hops(&jump).unwrap().into_iter().map(|h| h.push).collect();
        assert_eq!(
            pushes,
            [
                Some(client::PushTo { instance_id: "i-0b".into(), region: None, always: false }),
                Some(client::PushTo { instance_id: "i-0w".into(), region: None, always: true }),
            ]
        );
        let chain =
            Route::Chain { jumps: vec![with("jump.example.com", Push::Always)], target: with("i-0w", Push::No) };
        assert_eq!(hops(&chain).unwrap().iter().map(|h| h.push.clone()).collect::<Vec<_>>(), [None, None]);
        let eice = Route::Eice {
            endpoint: EiceVia {
                id: "eice-0".into(),
                region: "eu-west-1".into(),
                dns_name: "x".into(),
                subnet_id: "subnet-0".into(),
                max_duration: 3600,
                security_groups: vec![],
                target_security_groups: vec![],
            },
            target: with("i-0e", Push::Auto),
            reason: String::new(),
        };
        assert_eq!(hops(&eice).unwrap()[0].push.as_ref().and_then(|p| p.region.as_deref()), Some("eu-west-1"));
        // A hop without a push serializes as before (a master's name is a hash of it).
        let plain = &hops(&Route::Direct { target: with("i-0w", Push::No) }).unwrap()[0];
        assert!(!serde_json::to_string(plain).unwrap().contains("push"));
    }

    #[tokio::test]
    async fn a_push_asked_for_never_depends_on_the_agent() {
        let to = client::PushTo { instance_id: "i-0w".into(), region: None, always: true };
        assert!(wants_push(&to).await);
    }
}
