//! The data channel handshake (spec §4), pure: read the agent's HandshakeRequest, answer it
//! (only `Port` sessions are supported; KMS encryption is refused with a clear error), read
//! HandshakeComplete.

use serde_json::{Value, json};

/// What hop sends as ClientVersion (§1.3): the plugin's version scheme, so the agent's
/// feature checks (§6.2) see a modern client.
pub const CLIENT_VERSION: &str = "1.2.650.0";

/// The plugin's version test (§6.2): both versions split on `.`, same number of decimal
/// components, and `agent` strictly greater than `threshold`; anything else is "no".
pub fn newer_than(agent: &str, threshold: &str) -> bool {
    let parse = |v: &str| v.split('.').map(|c| c.parse::<u64>().ok()).collect::<Option<Vec<u64>>>();
    match (parse(agent), parse(threshold)) {
        (Some(a), Some(t)) if a.len() == t.len() => a > t,
        _ => false,
    }
}

/// The agent's request, as hop understood it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub agent_version: String,
    /// `Properties` of the `SessionType` action (e.g. `{"portNumber":"22"}`).
    pub properties: Value,
}

impl Request {
    /// Whether the session speaks smux (§6.1): a port-forwarding document and an agent newer
    /// than 3.0.196.0 (the agent decides the same, since hop reports a client ≥ 1.1.70).
    pub fn mux(&self) -> bool {
        self.properties["type"] == "LocalPortForwarding" && newer_than(&self.agent_version, "3.0.196.0")
    }

    /// Whether smux keep-alive NOPs are needed (§6.4): only with agents up to 3.1.1511.0.
    pub fn smux_keepalive(&self) -> bool {
        !newer_than(&self.agent_version, "3.1.1511.0")
    }

    /// Whether the agent understands the TerminateSession flag (§7.1).
    pub fn terminate_flag(&self) -> bool {
        newer_than(&self.agent_version, "2.3.722.0")
    }
}

/// Why the handshake cannot go on. The response is still sent (so the agent ends its side
/// promptly, §4.6), then the session is terminated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "the target requires Session Manager KMS encryption (key {kms_key_id}); hop does not support \
         encrypted SSM sessions: use a bastion, or disable KMS encryption in Session Manager preferences"
    )]
    KmsEncryptionUnsupported { kms_key_id: String },
    #[error("the agent asked for a {0:?} session; hop only supports Port sessions")]
    UnsupportedSessionType(String),
    #[error("the agent asked for {0:?}, which hop does not support")]
    UnsupportedAction(String),
    #[error("malformed handshake request: {0}")]
    Malformed(String),
}

/// Answer a HandshakeRequest payload (PayloadType 5): the HandshakeResponse JSON (PayloadType
/// 6) to send in every case, and what was understood or why the session must end.
pub fn respond(request: &[u8]) -> (Vec<u8>, Result<Request, HandshakeError>) {
    let parsed: Value = match serde_json::from_slice(request) {
        Ok(v) => v,
        Err(e) => {
            let err = HandshakeError::Malformed(e.to_string());
            return (response(vec![], vec![err.to_string()]), Err(err));
        }
    };
    let agent_version = parsed["AgentVersion"].as_str().unwrap_or_default().to_string();
    let actions = parsed["RequestedClientActions"].as_array().cloned().unwrap_or_default();
    let mut processed = Vec::new();
    let mut errors = Vec::new();
    let mut outcome: Result<Option<Value>, HandshakeError> = Ok(None);
    for action in &actions {
        let kind = action["ActionType"].as_str().unwrap_or_default().to_string();
        let params = &action["ActionParameters"];
        let (status, failure) = match kind.as_str() {
            "SessionType" => match params["SessionType"].as_str() {
                Some("Port") => {
                    if let Ok(None) = outcome {
                        outcome = Ok(Some(params["Properties"].clone()));
                    }
                    (1, None)
                }
                other => (2, Some(HandshakeError::UnsupportedSessionType(other.unwrap_or_default().to_string()))),
            },
            "KMSEncryption" => (
                2,
                Some(HandshakeError::KmsEncryptionUnsupported {
                    kms_key_id: params["KMSKeyId"].as_str().unwrap_or("?").to_string(),
                }),
            ),
            // 3 = Unsupported (the plugin leaves status 0 here: a failure all the same).
            _ => (3, Some(HandshakeError::UnsupportedAction(kind.clone()))),
        };
        let error_text = failure.as_ref().map(ToString::to_string).unwrap_or_default();
        if let Some(f) = failure {
            errors.push(error_text.clone());
            if outcome.is_ok() {
                outcome = Err(f);
            }
        }
        processed.push(json!({"ActionType": kind, "ActionStatus": status, "ActionResult": null, "Error": error_text}));
    }
    let result = match outcome {
        Ok(Some(properties)) => Ok(Request { agent_version, properties }),
        Ok(None) => Err(HandshakeError::Malformed("no SessionType action".into())),
        Err(e) => Err(e),
    };
    (response(processed, errors), result)
}

fn response(processed: Vec<Value>, errors: Vec<String>) -> Vec<u8> {
    let errors = if errors.is_empty() { Value::Null } else { json!(errors) };
    serde_json::to_vec(&json!({"ClientVersion": CLIENT_VERSION, "ProcessedClientActions": processed, "Errors": errors}))
        .expect("JSON of plain values")
}

/// The CustomerMessage of a HandshakeComplete payload (PayloadType 7), if any.
pub fn complete_message(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v["CustomerMessage"].as_str().filter(|m| !m.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_port_session_is_accepted_as_the_plugin_answers() {
        let req = br#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22"}}}]}"#;
        let (resp, result) = respond(req);
        // The spec's example of the plugin's answer (§4.2), field for field.
        let want = json_of(
            br#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#,
        );
        assert_eq!(json_of(&resp), want);
        assert_eq!(result, Ok(Request { agent_version: "3.3.1142.0".into(), properties: json!({"portNumber": "22"}) }));
    }

    #[test]
    fn kms_and_other_requests_are_refused_with_an_answer() {
        let kms = br#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[
            {"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{}}},
            {"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:us-east-1:1:key/k","Challenge":"AAAA"}}]}"#;
        let (resp, result) = respond(kms);
        let r = json_of(&resp);
        assert_eq!(r["ProcessedClientActions"][0]["ActionStatus"], 1);
        assert_eq!(r["ProcessedClientActions"][1]["ActionStatus"], 2);
        assert!(r["Errors"][0].as_str().unwrap().contains("does not support encrypted SSM sessions"));
        assert_eq!(
            result,
            Err(HandshakeError::KmsEncryptionUnsupported { kms_key_id: "arn:aws:kms:us-east-1:1:key/k".into() })
        );

        let shell = br#"{"AgentVersion":"3","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Standard_Stream"}}]}"#;
        assert_eq!(respond(shell).1, Err(HandshakeError::UnsupportedSessionType("Standard_Stream".into())));
        let odd = br#"{"AgentVersion":"3","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port"}},{"ActionType":"Telepathy"}]}"#;
        let (resp, result) = respond(odd);
        assert_eq!(json_of(&resp)["ProcessedClientActions"][1]["ActionStatus"], 3);
        assert_eq!(result, Err(HandshakeError::UnsupportedAction("Telepathy".into())));
        assert!(matches!(respond(b"not json").1, Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn version_thresholds_as_the_plugin_compares_them() {
        for (agent, threshold, newer) in [
            ("3.0.196.0", "3.0.196.0", false),
            ("3.0.196.1", "3.0.196.0", true),
            ("3.0.197.0", "3.0.196.0", true),
            ("3.1.1511.0", "3.1.1511.0", false),
            ("3.1.1512.0", "3.1.1511.0", true),
            ("3.0", "3.0.196.0", false),
            ("10.0.0.0", "9.9.9.9", true),
            ("3.x.1.0", "3.0.196.0", false),
            ("", "2.3.722.0", false),
        ] {
            assert_eq!(newer_than(agent, threshold), newer, "{agent} > {threshold}");
        }
    }

    #[test]
    fn handshake_complete_message() {
        assert_eq!(complete_message(br#"{"HandshakeTimeToComplete":153241773,"CustomerMessage":""}"#), None);
        assert_eq!(
            complete_message(
                br#"{"HandshakeTimeToComplete":1,"CustomerMessage":"This session is encrypted using AWS KMS."}"#
            )
            .as_deref(),
            Some("This session is encrypted using AWS KMS.")
        );
    }
}
