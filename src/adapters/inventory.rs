//! Loading the inventory: the cache when it is fresh enough, else EC2 (regions in parallel),
//! storing what was fetched. The one place commands get instances from.

use std::time::SystemTime;

use crate::adapters::{aws, cache::Cache, term::Spinner};
use crate::domain::inventory::{self, ConnectEndpoint, Instance};
use crate::error::HopError;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use cached regions younger than the TTL (connect, route).
    Cached,
    /// Always ask EC2 (ls, config, --refresh).
    Live,
}

pub struct Loaded {
    pub instances: Vec<Instance>,
    /// The EC2 Instance Connect Endpoints of the same regions (spec §A.2).
    pub endpoints: Vec<ConnectEndpoint>,
    pub regions: Vec<String>,
    /// Whether any region came from EC2 just now (a cache miss can be retried live).
    pub live: bool,
    /// Regions EC2 could not list, with why; the others are listed regardless.
    pub failed: Vec<(String, HopError)>,
}

pub async fn load(settings: &Settings, freshness: Freshness) -> Result<Loaded, HopError> {
    let regions = aws::regions(settings).await?;
    let cache = Cache::new(&settings.cache_dir, &settings.profile, settings.cache_scope().as_deref());
    let now = SystemTime::now();
    let mut instances = Vec::new();
    let mut endpoints = Vec::new();
    let mut missing = Vec::new();
    for r in &regions {
        match (freshness, settings.refresh) {
            (Freshness::Cached, false) => match cache.load(r, now, settings.cache_ttl) {
                Some(cached) => {
                    instances.extend(cached.instances);
                    endpoints.extend(cached.endpoints);
                }
                None => missing.push(r.clone()),
            },
            _ => missing.push(r.clone()),
        }
    }
    let live = !missing.is_empty();
    let mut failed = Vec::new();
    if live {
        let _spinner = Spinner::start(format!("asking EC2 in {}…", missing.join(", ")));
        let mut described = aws::describe_all(settings, &missing).await?;
        // Nothing answered: that is the error, not an empty inventory.
        if described.failed.len() == missing.len() && instances.is_empty() {
            return Err(described.failed.remove(0).1);
        }
        for r in missing.iter().filter(|r| !described.failed.iter().any(|(f, _)| f == *r)) {
            let of_region: Vec<Instance> = described.instances.iter().filter(|i| &i.region == r).cloned().collect();
            let eps: Vec<ConnectEndpoint> = described.endpoints.iter().filter(|e| &e.region == r).cloned().collect();
            if let Err(e) = cache.store(r, &of_region, &eps, now) {
                tracing::warn!("cannot write the discovery cache: {e}");
            }
        }
        failed = described.failed;
        instances.extend(described.instances);
        endpoints.extend(described.endpoints);
    }
    inventory::sort(&mut instances);
    endpoints.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
    Ok(Loaded { instances, endpoints, regions, live, failed })
}
