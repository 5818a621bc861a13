//! The SSM Session Manager data channel (docs/specs/ssm-data-channel.md), its pure parts:
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

/// The spec's test vectors: tests/data/ssm-data-channel-vectors.json, kept in the repository
/// with the spec (docs/specs) so a plain clone tests itself (`scripts/sync-specs.sh` refreshes
/// both from the specs' source).
#[cfg(test)]
pub(crate) fn spec_vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/data/ssm-data-channel-vectors.json")).unwrap()
}
