//! `hop ls [PATTERN] [--tag K=V] [--json]`: the inventory and the route hop would take to each.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::adapters::inventory::{self, Freshness};
use crate::adapters::term::paint;
use crate::domain::display;
use crate::domain::filter::{Pattern, TagFilter};
use crate::domain::inventory::{Instance, State};
use crate::domain::route::Route;
use crate::error::exit;
use crate::settings::Settings;

/// One row of `hop ls --json`. The schema is stable: fields are only ever added.
#[derive(Serialize)]
struct Row<'a> {
    name: Option<&'a str>,
    id: &'a str,
    state: State,
    region: &'a str,
    az: Option<&'a str>,
    vpc_id: Option<&'a str>,
    subnet_id: Option<&'a str>,
    private_ip: Option<&'a str>,
    public_ip: Option<&'a str>,
    key_name: Option<&'a str>,
    launch_time: Option<&'a str>,
    tags: &'a BTreeMap<String, String>,
    route: RouteRow,
}

#[derive(Serialize)]
struct RouteRow {
    /// direct | jump | eice | ssm | unreachable
    kind: &'static str,
    /// The bastion's name (or id) for jump routes, the endpoint id for eice routes.
    via: Option<String>,
    via_id: Option<String>,
    reason: Option<String>,
}

impl RouteRow {
    fn of(r: &Route) -> RouteRow {
        match r {
            Route::Direct { .. } => RouteRow { kind: "direct", via: None, via_id: None, reason: None },
            Route::Jump { bastion, .. } => RouteRow {
                kind: "jump",
                via: Some(bastion.name.clone().unwrap_or_else(|| bastion.id.clone())),
                via_id: Some(bastion.id.clone()),
                reason: None,
            },
            // `ls` plans without -J, so no chains here; listed as jumps for completeness.
            Route::Chain { jumps, .. } => RouteRow {
                kind: "jump",
                via: jumps.first().map(|j| j.name.clone().unwrap_or_else(|| j.id.clone())),
                via_id: jumps.first().map(|j| j.id.clone()),
                reason: None,
            },
            Route::Eice { endpoint, reason, .. } => RouteRow {
                kind: "eice",
                via: Some(endpoint.id.clone()),
                via_id: Some(endpoint.id.clone()),
                reason: Some(reason.clone()),
            },
            Route::Ssm { reason, .. } => {
                RouteRow { kind: "ssm", via: None, via_id: None, reason: Some(reason.clone()) }
            }
            Route::Unreachable { reason } => {
                RouteRow { kind: "unreachable", via: None, via_id: None, reason: Some(reason.clone()) }
            }
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    version: u32,
    regions: &'a [String],
    instances: Vec<Row<'a>>,
}

pub async fn run(settings: &Settings, pattern: Option<&str>, tags: &[TagFilter], json: bool) -> anyhow::Result<u8> {
    let loaded = inventory::load(settings, Freshness::Live).await?;
    let filter = pattern.map(Pattern::new);
    // Routes are planned over the whole inventory (a filtered-out bastion still routes).
    let planned: Vec<(&Instance, Route)> = super::plan_all(settings, &loaded)
        .into_iter()
        .filter(|(i, _)| filter.as_ref().is_none_or(|p| p.matches(i)) && tags.iter().all(|t| t.matches(i)))
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let rows = planned
            .iter()
            .map(|(i, r)| Row {
                name: i.name.as_deref(),
                id: &i.id,
                state: i.state,
                region: &i.region,
                az: i.az.as_deref(),
                vpc_id: i.vpc_id.as_deref(),
                subnet_id: i.subnet_id.as_deref(),
                private_ip: i.private_ip.as_deref(),
                public_ip: i.public_ip.as_deref(),
                key_name: i.key_name.as_deref(),
                launch_time: i.launch_time.as_deref(),
                tags: &i.tags,
                route: RouteRow::of(r),
            })
            .collect();
        // Serialised first, so a closed stdout surfaces as an io::Error (BrokenPipe is no error).
        let mut json = serde_json::to_vec_pretty(&Listing { version: 1, regions: &loaded.regions, instances: rows })?;
        json.push(b'\n');
        out.write_all(&json)?;
    } else if !planned.is_empty() {
        out.write_all(table(&planned, loaded.regions.len() > 1, settings.color).as_bytes())?;
    }
    out.flush()?;
    drop(out);
    // A region EC2 could not list makes the listing incomplete: say so, and fail (after
    // showing what was found), so scripts do not take a partial list for the whole.
    if !loaded.failed.is_empty() {
        for (region, e) in &loaded.failed {
            eprintln!("hop: warning: {region} is not listed: {}", display::escape(&e.to_string()));
        }
        return Ok(exit::CONNECT);
    }
    if planned.is_empty() {
        let what = match (pattern, tags.is_empty()) {
            (None, true) => {
                eprintln!("hop: no instances in {}", loaded.regions.join(", "));
                return Ok(exit::OK);
            }
            (Some(p), _) => format!("{p:?}"),
            (None, false) => tags.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        };
        eprintln!("hop: no instance matches {what} in {}", loaded.regions.join(", "));
        return Ok(exit::PROBLEMS);
    }
    Ok(exit::OK)
}

fn table(rows: &[(&Instance, Route)], show_region: bool, color: bool) -> String {
    let mut header = vec!["NAME", "ID", "STATE", "PRIVATE IP", "PUBLIC IP", "VPC", "AZ", "ROUTE"];
    if show_region {
        header.insert(6, "REGION");
    }
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for (i, r) in rows {
        let mut row = vec![
            i.name.clone().unwrap_or_else(|| "-".into()),
            i.id.clone(),
            i.state.as_str().into(),
            i.private_ip.clone().unwrap_or_else(|| "-".into()),
            i.public_ip.clone().unwrap_or_else(|| "-".into()),
            i.vpc_id.clone().unwrap_or_else(|| "-".into()),
            i.az.clone().unwrap_or_else(|| "-".into()),
            r.summary(),
        ];
        if show_region {
            row.insert(6, i.region.clone());
        }
        // Tags and ids come from EC2: escaped before measuring, so a newline cannot add a row
        // and the columns line up on what is shown.
        cells.push(row.into_iter().map(|c| display::escape(&c).into_owned()).collect());
    }
    let widths: Vec<usize> =
        (0..cells[0].len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let state_col = 2;
    let mut s = String::new();
    for (n, row) in cells.iter().enumerate() {
        let last = row.len() - 1;
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            let text = if n > 0 && c == state_col {
                let code = match cell.as_str() {
                    "running" => "32",
                    "stopped" | "stopping" => "31",
                    _ => "33",
                };
                paint(cell, code, color)
            } else if n == 0 {
                paint(cell, "1", color)
            } else {
                cell.clone()
            };
            s.push_str(&text);
            if c != last {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.push('\n');
    }
    s
}
