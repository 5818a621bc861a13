//! The presigned `openTunnel` URL of an EC2 Instance Connect Endpoint (spec §A.3): a pure
//! function of the credentials, the clock and the endpoint, built on `aws-sigv4` (SigV4 query
//! form, signing name `ec2-instance-connect`, valid 60 s, payload hash of the empty body).
//!
//! The URL carries the credential scope and, with temporary credentials, the session token:
//! it is a secret. Nothing here logs it, and callers must not either.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// SigV4 signing name of the service (its `endpointPrefix`; the model has no `signingName`).
pub const SIGNING_NAME: &str = "ec2-instance-connect";
/// `X-Amz-Expires`: the URL opens a tunnel within 60 s of its date (the tunnel lives longer).
pub const URL_EXPIRES: Duration = Duration::from_secs(60);

/// AWS credentials as the signer needs them.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials: signed into the URL (`X-Amz-Security-Token`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret nor the token.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// What a tunnel is opened to: the endpoint and the target's address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel<'a> {
    /// `eice-…`
    pub endpoint_id: &'a str,
    /// The region the endpoint lives in (the signing region).
    pub region: &'a str,
    /// The endpoint's `DnsName`, as given: `host` or `host:port` (opaque, never parsed).
    pub dns_name: &'a str,
    /// The target's private IP (v4 or v6).
    pub ip: &'a str,
    /// 22 (SSH) or 3389; the service refuses any other.
    pub port: u16,
    /// `maxTunnelDuration`, seconds; None leaves it out (the service's default). hop always
    /// sends it (spec §A.3.4: an IAM condition on the key cannot match an absent key).
    pub max_duration: Option<u32>,
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX`, upper-case hex
/// (what SigV4's canonical query uses, and what the AWS CLI puts in the URL).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The presigned `wss://` URL for `tunnel` at `now`, with the parameters in the AWS CLI's order
/// (operation parameters, then `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`,
/// `-SignedHeaders`, `-Security-Token`, `-Signature`): byte for byte the CLI's URL. The order
/// does not matter to AWS (the canonical query is sorted); the signature is aws-sigv4's.
/// `Host` is signed as the websocket client sends it: the DNS name as given.
pub fn presign(credentials: &Credentials, tunnel: &Tunnel, now: SystemTime) -> Result<String, String> {
    let mut operation = vec![
        ("instanceConnectEndpointId", tunnel.endpoint_id.to_string()),
        ("remotePort", tunnel.port.to_string()),
        ("privateIpAddress", tunnel.ip.to_string()),
    ];
    if let Some(d) = tunnel.max_duration {
        operation.push(("maxTunnelDuration", d.to_string()));
    }
    let query = operation.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
    let base = format!("wss://{}/openTunnel?{query}", tunnel.dns_name);
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "hop",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(tunnel.region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the tunnel URL: {e}"))?
        .into();
    // Not UNSIGNED-PAYLOAD: botocore hashes the empty body for a URL that is not https.
    let request = SignableRequest::new("GET", &base, [("host", tunnel.dns_name)].into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("cannot sign the tunnel URL for {}: {e}", tunnel.dns_name))?;
    let (instructions, _) =
        sign(request, &params).map_err(|e| format!("cannot sign the tunnel URL: {e}"))?.into_parts();
    let (_, auth) = instructions.into_parts();
    // aws-sigv4 lists the token after the signature; the CLI (botocore) before it.
    let rank = |name: &str| match name {
        "X-Amz-Signature" => 2,
        "X-Amz-Security-Token" => 1,
        _ => 0,
    };
    let mut auth: Vec<(&str, Cow<'static, str>)> = auth;
    auth.sort_by_key(|(name, _)| rank(name));
    let mut url = base;
    for (name, value) in auth {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&encode(&value));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> SystemTime {
        let t = aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).unwrap();
        SystemTime::try_from(t).unwrap()
    }

    /// Every vector of the spec's file (spec §A.3.3, §F): the URL byte for byte as the AWS CLI
    /// builds it, and the same signature as aws-sigv4's own URL form.
    #[test]
    fn every_vector_is_signed_byte_for_byte() {
        let text = include_str!("../../tests/data/ec2-instance-connect-vectors.json");
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let vectors = json["signing"]["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 5, "the spec has five vectors");
        let mut with_token = 0;
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let i = &v["inputs"];
            assert_eq!(i["signing_name"], SIGNING_NAME, "{name}");
            assert_eq!(i["expires_seconds"].as_u64(), Some(URL_EXPIRES.as_secs()), "{name}");
            let credentials = Credentials {
                access_key_id: i["access_key_id"].as_str().unwrap().into(),
                secret_access_key: i["secret_access_key"].as_str().unwrap().into(),
                session_token: i["session_token"].as_str().map(Into::into),
            };
            let tunnel = Tunnel {
                endpoint_id: i["instance_connect_endpoint_id"].as_str().unwrap(),
                region: i["region"].as_str().unwrap(),
                dns_name: i["dns_name"].as_str().unwrap(),
                ip: i["private_ip_address"].as_str().unwrap(),
                port: i["remote_port"].as_u64().unwrap() as u16,
                max_duration: i["max_tunnel_duration"].as_u64().map(|d| d as u32),
            };
            let url = presign(&credentials, &tunnel, time(i["time"].as_str().unwrap())).unwrap();
            assert_eq!(url, v["url"].as_str().unwrap(), "{name}: the AWS CLI's URL");
            let signature = v["signature"].as_str().unwrap();
            assert!(url.ends_with(&format!("&X-Amz-Signature={signature}")), "{name}");
            // aws-sigv4's own order differs only by where the token goes: same parameters.
            let sorted = |u: &str| {
                let (head, query) = u.split_once('?').unwrap();
                let mut q: Vec<&str> = query.split('&').collect();
                q.sort();
                (head.to_string(), q.join("&"))
            };
            assert_eq!(sorted(&url), sorted(v["url_aws_sigv4_1_6_4"].as_str().unwrap()), "{name}");
            if credentials.session_token.is_some() {
                with_token += 1;
                assert!(url.contains("&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2F%2F"), "{name}: token encoded");
            }
        }
        assert_eq!(with_token, 1, "the session-token vector was checked");
    }

    #[test]
    fn host_with_a_port_is_signed_with_it_and_the_debug_form_hides_secrets() {
        let credentials = Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "secret-value".into(),
            session_token: Some("token-value".into()),
        };
        let at = time("2026-01-02T03:04:05Z");
        let mut tunnel = Tunnel {
            endpoint_id: "eice-1",
            region: "us-east-1",
            dns_name: "127.0.0.1:8443",
            ip: "10.1.1.10",
            port: 22,
            max_duration: Some(3600),
        };
        let with_port = presign(&credentials, &tunnel, at).unwrap();
        assert!(with_port.starts_with("wss://127.0.0.1:8443/openTunnel?instanceConnectEndpointId=eice-1&"));
        tunnel.dns_name = "127.0.0.1";
        let without = presign(&credentials, &tunnel, at).unwrap();
        let sig = |u: &str| u.rsplit_once("X-Amz-Signature=").unwrap().1.to_string();
        assert_ne!(sig(&with_port), sig(&without), "host:port is signed");
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("secret-value") && !debug.contains("token-value"), "{debug}");
        assert_eq!(encode("fe80::1"), "fe80%3A%3A1");
        assert_eq!(encode("a+b/c=~"), "a%2Bb%2Fc%3D~");
    }
}
