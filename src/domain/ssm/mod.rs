//! The SSM Session Manager data channel (shared/specs/ssm-data-channel.md), its pure parts:
//! the message codec, the reliability layer, the handshake, the client engine and smux
//! framing. `adapters::ssm` drives them over a websocket.

pub mod engine;
#[cfg(test)]
mod fuzz;
pub mod handshake;
pub mod message;
pub mod reliability;
pub mod smux;

/// Deterministic pseudo-random numbers (xorshift) for the lossy-link tests and the fuzzer.
#[cfg(test)]
pub(crate) struct Rng(pub u64);

#[cfg(test)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// The spec's test vectors (shared/specs/ssm-data-channel-vectors.json, beside the repository
/// as CI has it). None when the file is missing: said loudly, and a failure under `CI=true`.
#[cfg(test)]
pub(crate) fn spec_vectors() -> Option<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/specs/ssm-data-channel-vectors.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("SKIPPED: {path} not found");
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "spec vectors missing under CI");
        return None;
    };
    Some(serde_json::from_str(&text).unwrap())
}
