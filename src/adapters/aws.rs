//! EC2 discovery: the AWS credential chain (env, profiles, SSO, credential_process, instance
//! metadata with short timeouts), one paginated DescribeInstances and one paginated
//! DescribeInstanceConnectEndpoints per region, regions in parallel, and AWS errors turned into
//! one clear line with a hint.

use std::sync::Arc;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Filter;
use aws_smithy_types::date_time::Format;
use tokio::sync::OnceCell;

use crate::domain::inventory::{ConnectEndpoint, Instance, State};
use crate::error::HopError;
use crate::settings::Settings;

/// Off EC2 the metadata endpoint never answers; the SDK's defaults wait 1 s per attempt and
/// retry. One short attempt keeps "no region"/"no credentials" errors well under a second.
fn quick_imds() -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_millis(250))
        .read_timeout(Duration::from_millis(250))
        .max_attempts(1)
        .build()
}

/// The regions to search: from settings, else the AWS profile's region, else instance metadata.
pub async fn regions(settings: &Settings) -> Result<Vec<String>, HopError> {
    if !settings.regions.is_empty() {
        return Ok(settings.regions.clone());
    }
    let chain = RegionProviderChain::first_try(
        aws_config::profile::ProfileFileRegionProvider::builder().profile_name(&settings.profile).build(),
    )
    .or_else(aws_config::imds::region::ImdsRegionProvider::builder().imds_client(quick_imds()).build());
    match chain.region().await {
        Some(r) => Ok(vec![r.to_string()]),
        None => Err(HopError::NoRegion { profile: settings.profile.clone() }),
    }
}

/// The AWS configuration of one command: loaded on first use, then shared by every client it
/// makes (EC2 in each region, Session Manager, the VPC snapshot), so they share one credential
/// provider and one identity cache. An SSO token, an assumed role or a `credential_process` is
/// then resolved once per command, not once per client. Cloning shares the same configuration.
#[derive(Clone, Default)]
pub struct Session(Arc<OnceCell<SdkConfig>>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(&if self.0.initialized() { "loaded" } else { "not loaded" }).finish()
    }
}

/// The command's shared SDK configuration, loaded by the first caller (whose region is the
/// default region of the credential providers, e.g. for STS). Clients take their own region
/// from [`ec2`] and [`ssm`], never from this configuration.
async fn shared<'a>(settings: &'a Settings, first_region: &str) -> &'a SdkConfig {
    settings.aws.0.get_or_init(|| load(settings, first_region)).await
}

/// An EC2 client for `region`, on the command's shared configuration.
pub async fn ec2(settings: &Settings, region: &str) -> aws_sdk_ec2::Client {
    let sdk = shared(settings, region).await;
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(sdk).region(Region::new(region.to_string())).build(),
    )
}

/// A Session Manager client for `region`, on the command's shared configuration.
pub async fn ssm(settings: &Settings, region: &str) -> aws_sdk_ssm::Client {
    let sdk = shared(settings, region).await;
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(sdk).region(Region::new(region.to_string())).build(),
    )
}

/// An EC2 Instance Connect client (SendSSHPublicKey) for `region`, on the command's shared
/// configuration.
pub async fn instance_connect(settings: &Settings, region: &str) -> aws_sdk_ec2instanceconnect::Client {
    let sdk = shared(settings, region).await;
    aws_sdk_ec2instanceconnect::Client::from_conf(
        aws_sdk_ec2instanceconnect::config::Builder::from(sdk).region(Region::new(region.to_string())).build(),
    )
}

/// Credentials for signing something hop sends itself (the EC2 Instance Connect tunnel URL),
/// asked of the command's provider now: SSO and assumed-role credentials rotate, so each
/// tunnel gets what the provider gives at that moment (it caches what is still valid).
pub async fn credentials(settings: &Settings, region: &str) -> Result<aws_credential_types::Credentials, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let sdk = shared(settings, region).await;
    let provider = sdk.credentials_provider().ok_or("no AWS credential provider is configured")?;
    provider.provide_credentials().await.map_err(|e| error_chain(&e))
}

/// The AWS CLI's chain for the settings' profile: with `--profile`, that profile's
/// credentials; otherwise the environment first, then the profile, then instance metadata.
async fn load(settings: &Settings, first_region: &str) -> SdkConfig {
    let region = Region::new(first_region.to_string());
    let loader = aws_config::defaults(BehaviorVersion::latest()).profile_name(&settings.profile).region(region.clone());
    let loader = if settings.profile_explicit {
        // `--profile` wins over environment credentials, as with the AWS CLI: the profile
        // provider alone (it handles SSO, credential_process and role chains itself).
        loader.credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(&settings.profile).build(),
        )
    } else {
        loader.credentials_provider(
            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                .profile_name(&settings.profile)
                .region(region)
                .imds_client(quick_imds())
                .build()
                .await,
        )
    };
    tracing::debug!(profile = %settings.profile, "loading the AWS configuration (once per command)");
    loader.load().await
}

/// What discovery of several regions gave: the instances of the regions that answered, and an
/// error for each region that did not.
pub struct Described {
    pub instances: Vec<Instance>,
    /// The EC2 Instance Connect Endpoints of the regions that answered (none for a region whose
    /// endpoint call failed: that failure is logged, not fatal).
    pub endpoints: Vec<ConnectEndpoint>,
    pub failed: Vec<(String, HopError)>,
}

/// Every instance that is not terminated, in every region, in parallel. One region failing
/// (an opt-in region not enabled, say) does not hide the others: it is reported in `failed`.
pub async fn describe_all(settings: &Settings, regions: &[String]) -> Result<Described, HopError> {
    let mut set = tokio::task::JoinSet::new();
    for (n, region) in regions.iter().enumerate() {
        let client = ec2(settings, region).await;
        let region = region.clone();
        // The endpoints alongside the instances: no added round trip.
        set.spawn(async move {
            let (instances, endpoints) =
                tokio::join!(describe_region(&client, &region), describe_endpoints(&client, &region));
            (n, instances.map(|i| (i, endpoints)))
        });
    }
    type Region = (Vec<Instance>, Vec<ConnectEndpoint>);
    let mut results: Vec<(usize, Result<Region, Failure>)> = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r.map_err(|e| HopError::Aws { message: format!("discovery task failed: {e}"), hints: vec![] })?);
    }
    results.sort_by_key(|(n, _)| *n);
    let mut described = Described { instances: Vec::new(), endpoints: Vec::new(), failed: Vec::new() };
    for (n, r) in results {
        match r {
            Ok((instances, endpoints)) => {
                described.instances.extend(instances);
                described.endpoints.extend(endpoints);
            }
            Err(e) => described.failed.push((regions[n].clone(), e.into_error(settings, &regions[n]))),
        }
    }
    Ok(described)
}

/// Discover one region (the cache stores regions separately).
async fn describe_region(client: &aws_sdk_ec2::Client, region: &str) -> Result<Vec<Instance>, Failure> {
    let states = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(["pending", "running", "stopping", "stopped"].map(String::from).to_vec()))
        .build();
    // No MaxResults: AWS then answers in as few pages as it can (fewer round trips); the
    // paginator follows NextToken whatever the server's page size.
    let mut pages = client.describe_instances().filters(states).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify(e, region, "EC2"))?;
        for reservation in page.reservations() {
            for i in reservation.instances() {
                out.push(convert(i, region));
            }
        }
    }
    Ok(out)
}

/// Every EC2 Instance Connect Endpoint of a region, all pages (spec §A.2 hop rules 1, 4, 5).
/// Not filtered on state: unusable ones are kept so that asking for one by id says what state
/// it is in (`ConnectEndpoint::usable` decides), and doctor sees them. An error is not fatal:
/// no endpoints for that region, logged at -v (doctor names the missing permission).
async fn describe_endpoints(client: &aws_sdk_ec2::Client, region: &str) -> Vec<ConnectEndpoint> {
    let mut pages = client.describe_instance_connect_endpoints().max_results(50).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let failure = classify(e, region, "EC2 (DescribeInstanceConnectEndpoints)");
                tracing::info!("no EC2 Instance Connect Endpoints known in {region}: {}", failure.message);
                return Vec::new();
            }
        };
        for e in page.instance_connect_endpoints() {
            let Some(endpoint) = convert_endpoint(e, region) else { continue };
            if endpoint.state == "update-failed" {
                tracing::info!(
                    "EC2 Instance Connect Endpoint {} is update-failed: still used, as the AWS CLI does",
                    endpoint.id
                );
            }
            out.push(endpoint);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn convert_endpoint(e: &aws_sdk_ec2::types::Ec2InstanceConnectEndpoint, region: &str) -> Option<ConnectEndpoint> {
    let mut security_groups = e.security_group_ids().to_vec();
    security_groups.sort();
    Some(ConnectEndpoint {
        id: e.instance_connect_endpoint_id()?.to_string(),
        region: region.to_string(),
        vpc_id: e.vpc_id()?.to_string(),
        subnet_id: e.subnet_id().unwrap_or_default().to_string(),
        az: e.availability_zone().map(String::from),
        state: e.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        state_message: e.state_message().filter(|m| !m.is_empty()).map(String::from),
        dns_name: e.dns_name()?.to_string(),
        fips_dns_name: e.fips_dns_name().filter(|n| !n.is_empty()).map(String::from),
        security_groups,
        preserve_client_ip: e.preserve_client_ip().unwrap_or(false),
        ip_address_type: e.ip_address_type().map(|t| t.as_str().to_string()).unwrap_or_else(|| "ipv4".into()),
    })
}

fn convert(i: &aws_sdk_ec2::types::Instance, region: &str) -> Instance {
    let tags: std::collections::BTreeMap<String, String> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect();
    // moto (and NIC-style launches) list groups only under the network interfaces.
    let mut groups: Vec<String> = i.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
    for nic in i.network_interfaces() {
        groups.extend(nic.groups().iter().filter_map(|g| g.group_id().map(String::from)));
    }
    groups.sort();
    groups.dedup();
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        name: tags.get("Name").cloned(),
        state: State::parse(i.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or("unknown")),
        region: region.to_string(),
        az: i.placement().and_then(|p| p.availability_zone()).map(String::from),
        vpc_id: i.vpc_id().map(String::from),
        subnet_id: i.subnet_id().map(String::from),
        private_ip: i.private_ip_address().map(String::from),
        public_ip: i.public_ip_address().map(String::from),
        key_name: i.key_name().map(String::from),
        launch_time: i.launch_time().and_then(|t| t.fmt(Format::DateTime).ok()),
        instance_profile: i.iam_instance_profile().and_then(|p| p.arn()).map(String::from),
        security_groups: groups,
        tags,
    }
}

/// What went wrong, before it is told which profile it was for.
#[derive(Debug)]
pub struct Failure {
    kind: FailureKind,
    message: String,
}

#[derive(Debug)]
enum FailureKind {
    /// The service answered with an error code.
    Service(String),
    SsoExpired,
    NoCredentials,
    Unreachable,
    Other,
}

pub fn classify<E>(e: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>, region: &str, service: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let chain = error_chain(&e);
    tracing::debug!(region, error = %chain, "{service} call failed");
    if let SdkError::ServiceError(se) = &e {
        let code = se.err().code().unwrap_or("Unknown").to_string();
        let message = match se.err().message().filter(|m| !m.is_empty()) {
            Some(msg) => format!("{service} in {region} said {code}: {msg}"),
            None => format!("{service} in {region} answered HTTP {} ({code})", se.raw().status().as_u16()),
        };
        return Failure { message, kind: FailureKind::Service(code) };
    }
    let lower = chain.to_lowercase();
    let (kind, message) = if lower.contains("sso") && (lower.contains("expired") || lower.contains("token")) {
        (FailureKind::SsoExpired, "the AWS SSO session has expired".to_string())
    } else if lower.contains("no credentials found in chain")
        || lower.contains("credential provider was not enabled")
        || lower.contains("no providers in chain provided credentials")
        || lower.contains("credentialsnotloaded")
    {
        (FailureKind::NoCredentials, "no AWS credentials found".to_string())
    } else if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
        (FailureKind::Unreachable, format!("cannot reach {service} in {region}: {chain}"))
    } else {
        (FailureKind::Other, format!("{service} in {region} failed: {chain}"))
    };
    Failure { kind, message }
}

impl Failure {
    /// The user-facing error, with hints naming the profile so the command can be pasted.
    fn into_error(self, settings: &Settings, region: &str) -> HopError {
        self.into_error_for(&settings.profile, settings.endpoint.as_deref(), region)
    }

    pub fn into_error_for(self, p: &str, endpoint: Option<&str>, region: &str) -> HopError {
        let flag = if p == "default" { String::new() } else { format!(" --profile {p}") };
        let hints = match &self.kind {
            FailureKind::SsoExpired => vec![format!("run: aws sso login{flag}")],
            FailureKind::NoCredentials => vec![
                format!(
                    "hop looked for profile {p:?} in: the environment (AWS_ACCESS_KEY_ID), ~/.aws/credentials, \
                     ~/.aws/config (SSO, credential_process), instance metadata"
                ),
                format!("configure one: aws configure{flag}   or   aws configure sso{flag}"),
            ],
            FailureKind::Service(code) => match code.as_str() {
                "ExpiredToken" | "RequestExpired" | "ExpiredTokenException" => {
                    vec![format!(
                        "the credentials of profile {p:?} have expired: aws sso login{flag} (SSO), or refresh them"
                    )]
                }
                "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" => {
                    vec![format!("check the credentials of profile {p:?}: aws sts get-caller-identity{flag}")]
                }
                "UnauthorizedOperation" | "AccessDenied" => vec!["the identity needs ec2:DescribeInstances".into()],
                _ => vec![],
            },
            FailureKind::Unreachable => vec![format!(
                "check the network and the region ({region}){}",
                endpoint.map(|e| format!("; AWS_ENDPOINT_URL is {e}")).unwrap_or_default()
            )],
            FailureKind::Other => vec![],
        };
        HopError::Aws { message: self.message, hints }
    }
}

/// `a: b: c` from an error and its sources, without repeats (the SDK nests the same text).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}
