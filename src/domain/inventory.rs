//! What discovery found: instances as plain data, independent of the AWS SDK.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// EC2 instance state, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Unknown,
}

impl State {
    pub fn parse(s: &str) -> State {
        match s {
            "pending" => State::Pending,
            "running" => State::Running,
            "stopping" => State::Stopping,
            "stopped" => State::Stopped,
            "shutting-down" => State::ShuttingDown,
            "terminated" => State::Terminated,
            _ => State::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::ShuttingDown => "shutting-down",
            State::Terminated => "terminated",
            State::Unknown => "unknown",
        }
    }

    /// Whether an SSH connection could be attempted now.
    pub fn is_up(self) -> bool {
        matches!(self, State::Running | State::Pending)
    }
}

/// One EC2 instance, with just what hop needs to name it, route to it and log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    /// The `Name` tag.
    pub name: Option<String>,
    pub state: State,
    pub region: String,
    pub az: Option<String>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub key_name: Option<String>,
    /// RFC 3339, UTC; sorts chronologically as a string.
    pub launch_time: Option<String>,
    pub instance_profile: Option<String>,
    pub security_groups: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    /// The name if tagged, else the id: what tables and messages show.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// A one-line description for candidate lists: id, IPs, AZ, launch time.
    pub fn describe(&self) -> String {
        format!(
            "{}  {}  private {}  public {}  {}  {}  launched {}",
            self.label(),
            self.id,
            self.private_ip.as_deref().unwrap_or("-"),
            self.public_ip.as_deref().unwrap_or("-"),
            self.az.as_deref().unwrap_or("-"),
            self.state.as_str(),
            self.launch_time.as_deref().unwrap_or("-"),
        )
    }
}

/// An EC2 Instance Connect Endpoint (EICE) as discovery found it (spec §A.2): a way into the
/// private addresses of its VPC with no instance to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectEndpoint {
    /// `eice-…`
    pub id: String,
    pub region: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub az: Option<String>,
    /// As the API names it: `create-complete`, `update-failed`, …
    pub state: String,
    pub state_message: Option<String>,
    /// The websocket host (`host[:port]`, opaque: never parsed beyond URL syntax).
    pub dns_name: String,
    pub fips_dns_name: Option<String>,
    pub security_groups: Vec<String>,
    pub preserve_client_ip: bool,
    /// `ipv4`, `dualstack` or `ipv6`.
    pub ip_address_type: String,
}

impl ConnectEndpoint {
    /// The states the AWS CLI (since 2025-09) accepts an endpoint in (spec §A.2).
    pub const USABLE_STATES: [&'static str; 4] =
        ["create-complete", "update-in-progress", "update-complete", "update-failed"];

    pub fn usable(&self) -> bool {
        Self::USABLE_STATES.contains(&self.state.as_str())
    }
}

/// Sort instances the way every listing shows them: by name (untagged last), then id.
pub fn sort(instances: &mut [Instance]) {
    instances.sort_by(|a, b| {
        (a.name.is_none(), &a.name, &a.region, &a.id).cmp(&(b.name.is_none(), &b.name, &b.region, &b.id))
    });
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small inventory shaped like the tutorial topology, for the pure tests.
    use super::*;

    pub fn instance(id: &str, name: Option<&str>, vpc: &str, az: &str) -> Instance {
        Instance {
            id: id.into(),
            name: name.map(Into::into),
            state: State::Running,
            region: "us-east-1".into(),
            az: Some(az.into()),
            vpc_id: Some(vpc.into()),
            subnet_id: Some(format!("subnet-{vpc}")),
            private_ip: Some("10.0.1.10".into()),
            public_ip: None,
            key_name: None,
            launch_time: Some("2026-01-01T00:00:00Z".into()),
            instance_profile: None,
            security_groups: vec![],
            tags: name.map(|n| [("Name".to_string(), n.to_string())].into()).unwrap_or_default(),
        }
    }

    pub fn eice(id: &str, vpc: &str, subnet: &str) -> ConnectEndpoint {
        ConnectEndpoint {
            id: id.into(),
            region: "us-east-1".into(),
            vpc_id: vpc.into(),
            subnet_id: subnet.into(),
            az: Some("us-east-1a".into()),
            state: "create-complete".into(),
            state_message: None,
            dns_name: format!("{id}.12345678.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"),
            fips_dns_name: None,
            security_groups: vec![format!("sg-{id}")],
            preserve_client_ip: false,
            ip_address_type: "ipv4".into(),
        }
    }

    pub fn public(mut i: Instance, ip: &str) -> Instance {
        i.public_ip = Some(ip.into());
        i
    }
}
