//! The discovery cache: one JSON file per profile and region under `<cache dir>/hop`, written
//! atomically, trusted for a TTL. A corrupt, stale or foreign file is ignored and rewritten,
//! never fatal.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::domain::inventory::{ConnectEndpoint, Instance};

/// 2: the region's EC2 Instance Connect Endpoints are stored with its instances (older files
/// are ignored and rewritten).
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// Seconds since the epoch.
    fetched_at: u64,
    region: String,
    instances: Vec<Instance>,
    /// Every endpoint DescribeInstanceConnectEndpoints listed, usable or not.
    #[serde(default)]
    endpoints: Vec<ConnectEndpoint>,
}

/// What the cache holds for a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub instances: Vec<Instance>,
    pub endpoints: Vec<ConnectEndpoint>,
}

pub struct Cache {
    dir: PathBuf,
}

/// FNV-1a: a stable, dependency-free short hash for the endpoint part of the cache key.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Cache {
    /// The cache of one profile. A scope (custom endpoint, environment credentials) gets its
    /// own directory, so a lab's instances never show up for the real account and one
    /// account's never for another.
    pub fn new(root: &Path, profile: &str, scope: Option<&str>) -> Cache {
        let mut key = safe(profile);
        if let Some(e) = scope {
            key.push_str(&format!("@{:016x}", fnv(e)));
        }
        Cache { dir: root.join(key) }
    }

    fn path(&self, region: &str) -> PathBuf {
        self.dir.join(format!("{}.json", safe(region)))
    }

    /// The cached instances and endpoints of `region` if present, readable and younger than
    /// `ttl`.
    pub fn load(&self, region: &str, now: SystemTime, ttl: Duration) -> Option<Region> {
        let bytes = std::fs::read(self.path(region)).ok()?;
        let file: CacheFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %self.path(region).display(), "ignoring corrupt cache: {e}");
                return None;
            }
        };
        let age = unix(now).checked_sub(file.fetched_at)?;
        (file.version == VERSION && file.region == region && age <= ttl.as_secs())
            .then_some(Region { instances: file.instances, endpoints: file.endpoints })
    }

    /// Store `instances` and `endpoints` for `region`. Failing to cache is not worth failing the
    /// command for: callers log and go on.
    pub fn store(
        &self,
        region: &str,
        instances: &[Instance],
        endpoints: &[ConnectEndpoint],
        now: SystemTime,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let file = CacheFile {
            version: VERSION,
            fetched_at: unix(now),
            region: region.into(),
            instances: instances.to_vec(),
            endpoints: endpoints.to_vec(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        crate::adapters::fs::write_atomic(&self.path(region), &bytes, 0o600)
    }

    /// Every Name in every cache file under `root`, for shell completion (cheap, never fails).
    pub fn all_names(root: &Path) -> Vec<String> {
        let mut names = Vec::new();
        let Ok(profiles) = std::fs::read_dir(root) else { return names };
        for p in profiles.flatten() {
            let Ok(files) = std::fs::read_dir(p.path()) else { continue };
            for f in files.flatten() {
                let Ok(bytes) = std::fs::read(f.path()) else { continue };
                if let Ok(file) = serde_json::from_slice::<CacheFile>(&bytes) {
                    names.extend(file.instances.into_iter().flat_map(|i| i.name.into_iter().chain([i.id])));
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixture::{eice, instance};

    #[test]
    fn round_trip_ttl_and_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path(), "dev", Some("http://127.0.0.1:5000"));
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let inv = vec![instance("i-1", Some("web"), "vpc", "a")];
        let eps = vec![eice("eice-1", "vpc", "subnet-vpc")];
        let region = Region { instances: inv.clone(), endpoints: eps.clone() };
        assert_eq!(cache.load("us-east-1", t0, Duration::from_secs(60)), None);
        cache.store("us-east-1", &inv, &eps, t0).unwrap();
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.load("us-east-1", t0 + Duration::from_secs(60), ttl), Some(region.clone()));
        assert_eq!(cache.load("us-east-1", t0 + Duration::from_secs(61), ttl), None, "stale");
        assert_eq!(cache.load("eu-west-1", t0, ttl), None, "other region");
        assert_eq!(Cache::new(tmp.path(), "dev", None).load("us-east-1", t0, ttl), None, "other endpoint");
        assert_eq!(Cache::all_names(tmp.path()), ["i-1", "web"]);
        std::fs::write(cache.path("us-east-1"), b"{not json").unwrap();
        assert_eq!(cache.load("us-east-1", t0, ttl), None, "corrupt");
        cache.store("us-east-1", &inv, &eps, t0).unwrap();
        assert_eq!(cache.load("us-east-1", t0, ttl), Some(region));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(cache.path("us-east-1")).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn files_of_the_previous_version_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path(), "dev", None);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        std::fs::create_dir_all(&cache.dir).unwrap();
        let old = serde_json::json!({"version": 1, "fetched_at": 1_000_000, "region": "us-east-1", "instances": []});
        std::fs::write(cache.path("us-east-1"), old.to_string()).unwrap();
        assert_eq!(cache.load("us-east-1", t0, Duration::from_secs(60)), None, "version 1 has no endpoints");
    }
}
