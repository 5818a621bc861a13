//! Session Manager's control plane (spec §1.1): StartSession, ResumeSession, TerminateSession
//! and DescribeInstanceInformation, with aws-sdk-ssm. Errors become one line with the fix.

use std::collections::HashMap;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::InstanceInformationStringFilter;

use crate::adapters::aws;
use crate::error::HopError;
use crate::settings::Settings;

/// The document a session runs (§1.1) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// `AWS-StartSSHSession`: one byte stream to `localhost:port` on the instance.
    Ssh { port: u16 },
    /// `AWS-StartPortForwardingSession`: connections to `localhost:port` on the instance.
    Port { port: u16 },
    /// `AWS-StartPortForwardingSessionToRemoteHost`: connections to `host:port`, dialled by
    /// the instance.
    RemoteHost { host: String, port: u16 },
}

impl Document {
    pub fn name(&self) -> &'static str {
        match self {
            Document::Ssh { .. } => "AWS-StartSSHSession",
            Document::Port { .. } => "AWS-StartPortForwardingSession",
            Document::RemoteHost { .. } => "AWS-StartPortForwardingSessionToRemoteHost",
        }
    }

    /// Every value is a list of strings, numbers too (§1.1).
    pub fn parameters(&self) -> HashMap<String, Vec<String>> {
        let mut p = HashMap::new();
        match self {
            Document::Ssh { port } | Document::Port { port } => {
                p.insert("portNumber".to_string(), vec![port.to_string()]);
            }
            Document::RemoteHost { host, port } => {
                p.insert("host".to_string(), vec![host.clone()]);
                p.insert("portNumber".to_string(), vec![port.to_string()]);
            }
        }
        p
    }
}

/// What StartSession (or ResumeSession) handed out. The token is secret: never logged.
#[derive(Clone)]
pub struct Started {
    pub session_id: String,
    pub stream_url: String,
    pub token: String,
}

/// The agent as Session Manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub ping_status: String,
    pub agent_version: String,
}

#[derive(Clone)]
pub struct Control {
    client: aws_sdk_ssm::Client,
    region: String,
    profile: String,
    endpoint: Option<String>,
}

impl Control {
    pub async fn new(settings: &Settings, region: &str) -> Control {
        Control {
            client: aws::ssm(settings, region).await,
            region: region.to_string(),
            profile: settings.profile.clone(),
            endpoint: settings.endpoint.clone(),
        }
    }

    /// The agent's registration, None when Session Manager does not know the instance.
    pub async fn agent(&self, instance_id: &str) -> Result<Option<AgentInfo>, HopError> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance_id)
            .build()
            .expect("key and values are set");
        let out = self
            .client
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| self.error("DescribeInstanceInformation", instance_id, e))?;
        Ok(out.instance_information_list().iter().find(|i| i.instance_id() == Some(instance_id)).map(|i| AgentInfo {
            ping_status: i.ping_status().map(|p| p.as_str().to_string()).unwrap_or_default(),
            agent_version: i.agent_version().unwrap_or_default().to_string(),
        }))
    }

    pub async fn start(&self, target: &str, document: &Document) -> Result<Started, HopError> {
        let out = self
            .client
            .start_session()
            .target(target)
            .document_name(document.name())
            .set_parameters(Some(document.parameters()))
            .reason("hop")
            .send()
            .await
            .map_err(|e| self.error("StartSession", target, e))?;
        match (out.session_id(), out.stream_url(), out.token_value()) {
            (Some(id), Some(url), Some(token)) => {
                Ok(Started { session_id: id.into(), stream_url: url.into(), token: token.into() })
            }
            _ => Err(HopError::Aws {
                message: format!("Session Manager in {} answered StartSession without a session", self.region),
                hints: vec![],
            }),
        }
    }

    /// A fresh token for a session whose websocket closed (§5.8); None when the session has
    /// timed out.
    pub async fn resume(&self, session_id: &str, target: &str) -> Result<Option<String>, HopError> {
        let out = self
            .client
            .resume_session()
            .session_id(session_id)
            .send()
            .await
            .map_err(|e| self.error("ResumeSession", target, e))?;
        Ok(out.token_value().filter(|t| !t.is_empty()).map(str::to_string))
    }

    /// Best effort and idempotent (§7.1): failures are logged, not returned.
    pub async fn terminate(&self, session_id: &str) {
        match self.client.terminate_session().session_id(session_id).send().await {
            Ok(_) => tracing::debug!("terminated SSM session {session_id}"),
            Err(e) => tracing::info!("TerminateSession {session_id}: {}", aws::error_chain(&e)),
        }
    }

    fn error<E>(&self, op: &str, target: &str, e: SdkError<E, aws_sdk_ssm::config::http::HttpResponse>) -> HopError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let doctor = format!("`hop doctor {target}` checks the instance profile, the agent and the SSM endpoints");
        let code = e.code().map(str::to_string);
        let message = e.message().filter(|m| !m.is_empty()).map(str::to_string);
        match code.as_deref() {
            Some("TargetNotConnected") => HopError::Aws {
                message: format!("{target} is not connected to Session Manager in {}", self.region),
                hints: not_connected_hints(target, &doctor),
            },
            Some("AccessDeniedException" | "AccessDenied") => HopError::Aws {
                message: format!(
                    "{op} on {target} was denied{}",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                hints: vec![
                    format!(
                        "the identity of profile {:?} needs ssm:{op} on the instance and the document (and ssm:TerminateSession)",
                        self.profile
                    ),
                    doctor,
                ],
            },
            Some("InvalidDocument") => HopError::Aws {
                message: format!("Session Manager in {} does not have the session document hop asked for", self.region),
                hints: vec![message.unwrap_or_default()],
            },
            _ => aws::classify(e, &self.region, "Session Manager").into_error_for(
                &self.profile,
                self.endpoint.as_deref(),
                &self.region,
            ),
        }
    }
}

/// What to do about an instance Session Manager cannot reach.
pub fn not_connected_hints(target: &str, doctor: &str) -> Vec<String> {
    vec![
        "the SSM agent must run on the instance, with an instance profile allowing \
         AmazonSSMManagedInstanceCore, and reach the ssm, ssmmessages and ec2messages endpoints \
         (VPC endpoints or a NAT gateway)"
            .into(),
        format!("check: aws ssm describe-instance-information --filters Key=InstanceIds,Values={target}"),
        doctor.to_string(),
    ]
}
