//! A bounded mutation fuzzer for the decoders that read the network: the AgentMessage decoder,
//! the smux frame parser and the client engine fed whole frames. Not part of the test suite
//! (`#[ignore]`): `scripts/fuzz-ssm.sh` runs it for a set time and reports executions and
//! crashes. No nightly toolchain or libFuzzer needed; the seeds are the spec's vectors.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::Rng;
use super::engine::Engine;
use super::message::AgentMessage;
use super::smux::{Frame, Parser};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The spec's wire vectors and smux frames, plus a handshake request and a channel_closed.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let doc = super::spec_vectors();
    for v in doc["vectors"].as_array().unwrap() {
        out.push(hex(v["wire_hex"].as_str().unwrap()));
    }
    if let Some(h) = doc["smux_v1_client_frames"]["wire_hex"].as_str() {
        out.push(hex(h));
    }
    let msg = |t: &str, seq: i64, pt: u32, payload: &[u8]| AgentMessage {
        message_type: t.into(),
        schema_version: 1,
        created_date_ms: 1,
        sequence_number: seq,
        flags: 0,
        message_id: [7; 16],
        payload_type: pt,
        payload: payload.to_vec(),
    };
    let request = br#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22"}}}]}"#;
    out.push(msg("output_stream_data", 0, 5, request).encode().unwrap());
    out.push(
        msg("output_stream_data", 1, 7, br#"{"HandshakeTimeToComplete":1,"CustomerMessage":""}"#).encode().unwrap(),
    );
    out.push(msg("output_stream_data", 2, 1, b"SSH-2.0-OpenSSH_9.6\r\n").encode().unwrap());
    out.push(msg("channel_closed", 0, 0, br#"{"Output":"bye","SchemaVersion":1}"#).encode().unwrap());
    out.push(hex("0100000003000000010205000300000068656c6c6f01010000030000000100000005000000"));
    out
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 0xff, 0x7f, 0x80, 1, b' '][rng.below(6)];
            }
            2 => input.truncate(rng.below(len + 1)),
            3 => {
                let extra = rng.below(64);
                input.extend((0..extra).map(|_| rng.next() as u8));
            }
            // Length fields: HeaderLength, PayloadLength, smux length.
            4 if len >= 120 => {
                let at = [0usize, 116, 112][rng.below(3)];
                let v = [0u32, 112, 116, 120, u32::MAX, len as u32, rng.next() as u32][rng.below(7)];
                input[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            5 if len >= 8 => {
                let v = rng.next() as u16;
                input[2..4].copy_from_slice(&v.to_le_bytes());
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                input.extend_from_slice(&other[cut..]);
            }
            _ if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            _ => {}
        }
    }
}

/// One input through every decoder, checking what must hold beyond "no panic".
fn exercise(input: &[u8], rng: &mut Rng) {
    if let Ok(m) = AgentMessage::decode(input)
        && let Ok(wire) = m.encode()
    {
        assert_eq!(AgentMessage::decode(&wire).as_ref(), Ok(&m), "re-encoding a decoded message changes it");
    }
    let mut parser = Parser::default();
    let mut at = 0;
    while at < input.len() {
        let n = 1 + rng.below(input.len() - at);
        parser.push(&input[at..at + n]);
        at += n;
        while let Ok(Some(Frame { cmd, stream, data })) = parser.next_frame() {
            let again = Frame { cmd, stream, data }.encode().expect("a parsed frame encodes");
            assert!(again.len() >= 8);
        }
    }
    let mut engine = Engine::new(|| [1; 16], 64, 1_000);
    for (i, seed) in seeds_cache().iter().take(2).enumerate() {
        let _ = engine.on_frame(seed, 10 + i as u64);
    }
    let _ = engine.on_frame(input, 20);
    engine.write(input, 21);
    let _ = engine.tick(500);
    let _ = engine.take_outbox();
    let _ = engine.take_inbox();
}

fn seeds_cache() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let all = SEEDS.get_or_init(seeds);
    // The handshake request and complete come right after the spec vectors.
    let first = all.iter().position(|s| AgentMessage::decode(s).is_ok_and(|m| m.payload_type == 5)).unwrap_or(0);
    &all[first..]
}

#[test]
#[ignore = "a bounded fuzz run: scripts/fuzz-ssm.sh"]
fn fuzz_decoders() {
    let secs: u64 = std::env::var("HOP_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = std::env::var("HOP_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe);
    let crash_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let seeds = seeds();
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let (mut execs, mut crashes) = (0u64, 0u64);
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut input = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &mut input, &seeds);
            let mut inner = Rng(rng.next() | 1);
            if catch_unwind(AssertUnwindSafe(|| exercise(&input, &mut inner))).is_err() {
                crashes += 1;
                let _ = std::fs::create_dir_all(&crash_dir);
                let _ = std::fs::write(crash_dir.join(format!("crash-{execs}.bin")), &input);
            }
            execs += 1;
        }
    }
    let _ = std::panic::take_hook();
    let rate = execs as f64 / started.elapsed().as_secs_f64();
    println!("fuzz: {execs} executions in {secs}s ({rate:.0}/s), {} seeds, {crashes} crashes", seeds.len());
    assert_eq!(crashes, 0, "crashing inputs saved in {}", crash_dir.display());
}
