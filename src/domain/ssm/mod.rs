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

/// The spec's test vectors: tests/data/ssm-data-channel-vectors.json, a copy of
/// shared/specs/ssm-data-channel-vectors.json kept in the repository so a plain clone tests
/// itself (`copies_of_the_spec_vectors_match_the_spec` checks the copy when the spec is there).
#[cfg(test)]
pub(crate) fn spec_vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/data/ssm-data-channel-vectors.json")).unwrap()
}

#[cfg(test)]
mod tests {
    /// The copies in tests/data are the spec's, byte for byte. The spec lives beside the
    /// repository (../shared/specs), which a plain clone does not have: then this says so and
    /// passes, CI included, as the tests themselves only read the copies.
    #[test]
    fn copies_of_the_spec_vectors_match_the_spec() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let specs = repo.join("../shared/specs");
        if !specs.is_dir() {
            eprintln!("SKIPPED: {} not found: the copies in tests/data are not compared", specs.display());
            return;
        }
        for name in ["ssm-data-channel-vectors.json", "ec2-instance-connect-vectors.json"] {
            let spec = std::fs::read(specs.join(name)).unwrap_or_else(|e| panic!("{name} in {}: {e}", specs.display()));
            let copy = std::fs::read(repo.join("tests/data").join(name)).unwrap();
            assert!(copy == spec, "tests/data/{name} differs from the spec's: copy it again from {}", specs.display());
        }
    }
}
