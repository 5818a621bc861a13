//! The VPC snapshot `hop doctor` reasons about: one call per kind of resource, filtered by the
//! VPC (instances paginated by 1000) or by the target (its instance-profile association), all
//! at once, plus Session Manager's view of the agent: eleven calls (the EC2 Instance Connect
//! Endpoints of the VPC, in every state, are one of them). Then, only when SSH rules name
//! managed prefix lists, one GetManagedPrefixListEntries per distinct list, at most
//! `PREFIX_LISTS` of them (the rest are reported unread). The number of calls does not grow
//! with the VPC.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;

use crate::adapters::aws;
use crate::adapters::ssm::Control;
use crate::domain::doctor::{
    Agent, Eice, Endpoint, Host, Nacl, NaclEntry, NatGateway, Permission, PrefixList, ProfileAssociation, RouteEntry,
    RouteTable, RouteTarget, SecurityGroup, Snapshot, Subnet, Unlisted,
};
use crate::error::HopError;
use crate::settings::Settings;

/// Prefix lists resolved per snapshot, at most: a bound on the calls, not on correctness (an
/// unread list makes its checks `unknown`, never a problem).
const PREFIX_LISTS: usize = 4;

fn by_vpc(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

pub async fn snapshot(settings: &Settings, region: &str, vpc: &str, target: &str) -> Result<Snapshot, HopError> {
    let ec2 = aws::ec2(settings, region).await;
    let control = Control::new(settings, region).await;
    let err = |what: &str, e: String| HopError::Aws {
        message: format!("cannot describe the {what} of {vpc} in {region}: {e}"),
        hints: vec!["the identity needs ec2:Describe* (the ReadOnlyAccess policy has it)".into()],
    };
    let instances = async {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = ec2
                .describe_instances()
                .filters(by_vpc(vpc))
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| err("instances", aws::error_chain(&e)))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                out.push(Host {
                    id: i.instance_id().unwrap_or_default().into(),
                    name: i.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).map(str::to_string),
                    state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
                    public_ip: i.public_ip_address().map(str::to_string),
                    private_ip: i.private_ip_address().map(str::to_string),
                    subnet_id: i.subnet_id().map(str::to_string),
                    security_groups: i
                        .security_groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string))
                        .collect(),
                    source_dest_check: i.source_dest_check().unwrap_or(true),
                    instance_profile: i.iam_instance_profile().and_then(|p| p.arn()).map(str::to_string),
                    instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                });
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok::<_, HopError>(out);
            }
        }
    };
    let tables = async {
        let out = ec2
            .describe_route_tables()
            .filters(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("route tables", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.route_tables()
                .iter()
                .map(|t| RouteTable {
                    id: t.route_table_id().unwrap_or_default().into(),
                    main: t.associations().iter().any(|a| a.main() == Some(true)),
                    subnets: t.associations().iter().filter_map(|a| a.subnet_id().map(str::to_string)).collect(),
                    routes: t
                        .routes()
                        .iter()
                        .map(|r| RouteEntry {
                            destination: r
                                .destination_cidr_block()
                                .or(r.destination_prefix_list_id())
                                .or(r.destination_ipv6_cidr_block())
                                .unwrap_or_default()
                                .into(),
                            target: route_target(r),
                            blackhole: r.state().is_some_and(|s| s.as_str() == "blackhole"),
                        })
                        .collect(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let igws = async {
        let f = Filter::builder().name("attachment.vpc-id").values(vpc).build();
        let out = ec2
            .describe_internet_gateways()
            .filters(f)
            .send()
            .await
            .map_err(|e| err("internet gateways", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.internet_gateways()
                .iter()
                .filter(|g| {
                    g.attachments().iter().any(|a| {
                        a.vpc_id() == Some(vpc)
                            && a.state().is_some_and(|s| matches!(s.as_str(), "available" | "attached"))
                    })
                })
                .filter_map(|g| g.internet_gateway_id().map(str::to_string))
                .collect::<Vec<_>>(),
        )
    };
    let nats = async {
        let out = ec2
            .describe_nat_gateways()
            .filter(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("NAT gateways", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.nat_gateways()
                .iter()
                .map(|n| NatGateway {
                    id: n.nat_gateway_id().unwrap_or_default().into(),
                    subnet_id: n.subnet_id().unwrap_or_default().into(),
                    state: n.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let groups = async {
        let out = ec2
            .describe_security_groups()
            .filters(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("security groups", aws::error_chain(&e)))?;
        let perms = |ps: &[aws_sdk_ec2::types::IpPermission]| {
            ps.iter()
                .map(|p| Permission {
                    protocol: p.ip_protocol().unwrap_or("-1").into(),
                    from: p.from_port(),
                    to: p.to_port(),
                    cidrs: p
                        .ip_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ip().map(str::to_string))
                        .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(str::to_string)))
                        .collect(),
                    groups: p.user_id_group_pairs().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
                    prefix_lists: p
                        .prefix_list_ids()
                        .iter()
                        .filter_map(|l| l.prefix_list_id().map(str::to_string))
                        .collect(),
                })
                .collect()
        };
        Ok::<_, HopError>(
            out.security_groups()
                .iter()
                .map(|g| SecurityGroup {
                    id: g.group_id().unwrap_or_default().into(),
                    name: g.group_name().unwrap_or_default().into(),
                    ingress: perms(g.ip_permissions()),
                    egress: perms(g.ip_permissions_egress()),
                })
                .collect::<Vec<_>>(),
        )
    };
    let nacls = async {
        let out = ec2
            .describe_network_acls()
            .filters(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("network ACLs", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.network_acls()
                .iter()
                .map(|n| Nacl {
                    id: n.network_acl_id().unwrap_or_default().into(),
                    subnets: n.associations().iter().filter_map(|a| a.subnet_id().map(str::to_string)).collect(),
                    entries: n
                        .entries()
                        .iter()
                        .filter(|e| e.cidr_block().or(e.ipv6_cidr_block()).is_some())
                        .map(|e| NaclEntry {
                            number: e.rule_number().unwrap_or(32767),
                            egress: e.egress().unwrap_or(false),
                            protocol: e.protocol().unwrap_or("-1").into(),
                            from: e.port_range().and_then(|r| r.from()),
                            to: e.port_range().and_then(|r| r.to()),
                            cidr: e.cidr_block().or(e.ipv6_cidr_block()).unwrap_or_default().into(),
                            allow: e.rule_action().is_some_and(|a| a.as_str() == "allow"),
                        })
                        .collect(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let endpoints = async {
        let out = ec2
            .describe_vpc_endpoints()
            .filters(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("VPC endpoints", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.vpc_endpoints()
                .iter()
                .map(|e| Endpoint {
                    id: e.vpc_endpoint_id().unwrap_or_default().into(),
                    service: e.service_name().unwrap_or_default().into(),
                    kind: e.vpc_endpoint_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    private_dns: e.private_dns_enabled().unwrap_or(false),
                    groups: e.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
                    route_tables: e.route_table_ids().to_vec(),
                    policy: e.policy_document().map(str::to_string),
                })
                .collect::<Vec<_>>(),
        )
    };
    let subnets = async {
        let out = ec2
            .describe_subnets()
            .filters(by_vpc(vpc))
            .send()
            .await
            .map_err(|e| err("subnets", aws::error_chain(&e)))?;
        Ok::<_, HopError>(
            out.subnets()
                .iter()
                .map(|s| Subnet {
                    id: s.subnet_id().unwrap_or_default().into(),
                    availability_zone: s.availability_zone().unwrap_or_default().into(),
                    cidr: s.cidr_block().map(str::to_string),
                })
                .collect::<Vec<_>>(),
        )
    };
    // The target's only: a region-wide listing would grow with the account.
    let associations = async {
        let f = Filter::builder().name("instance-id").values(target).build();
        match ec2.describe_iam_instance_profile_associations().filters(f).send().await {
            Ok(out) => out
                .iam_instance_profile_associations()
                .iter()
                .map(|a| ProfileAssociation {
                    instance_id: a.instance_id().unwrap_or_default().into(),
                    arn: a.iam_instance_profile().and_then(|p| p.arn()).unwrap_or_default().into(),
                    state: a.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                })
                .collect(),
            // The instance's own view of its profile is still there; say why in the log.
            Err(e) => {
                tracing::info!("DescribeIamInstanceProfileAssociations: {}", aws::error_chain(&e));
                Vec::new()
            }
        }
    };
    let agent = async {
        match control.agent(target).await {
            Ok(None) => Some(Agent::NotRegistered),
            Ok(Some(a)) => Some(Agent::Registered { ping_status: a.ping_status, agent_version: a.agent_version }),
            Err(e) => {
                tracing::info!("DescribeInstanceInformation: {e}");
                None
            }
        }
    };
    // Every state (no state filter): doctor names a failed or deleted endpoint. A VPC holds a
    // handful at most (a quota), so one page of 50; more pages are read, boundedly.
    let eices = async {
        let mut out = Vec::new();
        let mut token = None;
        for _ in 0..10 {
            let page = match ec2
                .describe_instance_connect_endpoints()
                .filters(by_vpc(vpc))
                .max_results(50)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let why = format!("DescribeInstanceConnectEndpoints: {}", aws::error_chain(&e));
                    tracing::info!("{why}");
                    return Err(match e.code() {
                        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
                            Unlisted::Denied(why)
                        }
                        _ => Unlisted::Failed(why),
                    });
                }
            };
            out.extend(page.instance_connect_endpoints().iter().map(|e| Eice {
                id: e.instance_connect_endpoint_id().unwrap_or_default().into(),
                arn: e.instance_connect_endpoint_arn().map(str::to_string),
                vpc_id: e.vpc_id().unwrap_or_default().into(),
                subnet_id: e.subnet_id().unwrap_or_default().into(),
                state: e.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                state_message: e.state_message().map(str::to_string),
                security_groups: e.security_group_ids().to_vec(),
                preserve_client_ip: e.preserve_client_ip().unwrap_or(false),
            }));
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
        Err(Unlisted::Failed("DescribeInstanceConnectEndpoints: more than 10 pages".into()))
    };
    let (
        instances,
        subnets,
        route_tables,
        igws,
        nat_gateways,
        security_groups,
        nacls,
        endpoints,
        associations,
        agent,
        eices,
    ) = tokio::join!(instances, subnets, tables, igws, nats, groups, nacls, endpoints, associations, agent, eices);
    let (eices, eices_unlisted) = match eices {
        Ok(list) => (list, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let security_groups = security_groups?;
    let prefix_lists = prefix_lists(&ec2, &security_groups).await;
    Ok(Snapshot {
        region: region.into(),
        vpc_id: vpc.into(),
        instances: instances?,
        subnets: subnets?,
        route_tables: route_tables?,
        igws: igws?,
        nat_gateways: nat_gateways?,
        security_groups,
        nacls: nacls?,
        endpoints: endpoints?,
        profile_associations: associations,
        agent,
        prefix_lists,
        eices,
        eices_unlisted,
    })
}

/// The entries of the managed prefix lists that rules covering TCP 22 name (the only port the
/// SSH checks read through a list), first `PREFIX_LISTS` by id, concurrently. A list that
/// cannot be read (no permission, gone, over the bound) carries the reason instead.
async fn prefix_lists(ec2: &aws_sdk_ec2::Client, groups: &[SecurityGroup]) -> Vec<PrefixList> {
    let mut ids: Vec<&String> = groups
        .iter()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .filter(|p| p.covers(22))
        .flat_map(|p| &p.prefix_lists)
        .collect();
    ids.sort();
    ids.dedup();
    let read = ids.iter().take(PREFIX_LISTS).map(|id| async move {
        let mut entries = Vec::new();
        let mut token = None;
        // A list holds at most 1000 entries (its max-entries): one page, or a few.
        for _ in 0..10 {
            let page = ec2
                .get_managed_prefix_list_entries()
                .prefix_list_id(id.as_str())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| format!("GetManagedPrefixListEntries: {}", aws::error_chain(&e)))?;
            entries.extend(page.entries().iter().filter_map(|e| e.cidr().map(str::to_string)));
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok(entries);
            }
        }
        Err("GetManagedPrefixListEntries: more pages than a prefix list can have".to_string())
    });
    let mut out: Vec<PrefixList> = futures_util::future::join_all(read)
        .await
        .into_iter()
        .zip(&ids)
        .map(|(entries, id)| PrefixList { id: id.to_string(), entries })
        .collect();
    out.extend(ids.iter().skip(PREFIX_LISTS).map(|id| PrefixList {
        id: id.to_string(),
        entries: Err(format!("not read: hop reads at most {PREFIX_LISTS} prefix lists per VPC")),
    }));
    out
}

fn route_target(r: &aws_sdk_ec2::types::Route) -> RouteTarget {
    if let Some(n) = r.nat_gateway_id() {
        return RouteTarget::Nat(n.into());
    }
    if let Some(i) = r.instance_id() {
        return RouteTarget::Instance(i.into());
    }
    match r.gateway_id() {
        Some("local") => RouteTarget::Local,
        Some(g) if g.starts_with("igw-") => RouteTarget::Igw(g.into()),
        Some(g) if g.starts_with("vpce-") => RouteTarget::Endpoint(g.into()),
        Some(g) => RouteTarget::Other(g.into()),
        None => RouteTarget::Other(
            r.network_interface_id().or(r.transit_gateway_id()).or(r.vpc_peering_connection_id()).unwrap_or("?").into(),
        ),
    }
}
