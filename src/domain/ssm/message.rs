//! The SSM data channel's binary AgentMessage (spec §2): encoding, and the stricter decoding
//! hop applies (§2.2 [hop]), with the MessageId half-swap (§2.3) and the SHA-256 payload
//! digest (§2.5). Pure: bytes in, bytes out.

use sha2::{Digest, Sha256};

/// Offset of the PayloadLength field; what senders write as HeaderLength.
pub const HEADER_LENGTH: u32 = 116;
/// The fixed part of every message.
pub const FIXED_LEN: usize = 120;

/// One AgentMessage, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMessage {
    /// `input_stream_data`, `output_stream_data`, `acknowledge`, `channel_closed`, …
    pub message_type: String,
    pub schema_version: u32,
    /// Milliseconds since the Unix epoch; never 0.
    pub created_date_ms: u64,
    pub sequence_number: i64,
    pub flags: u64,
    /// The UUID in canonical byte order (as in its string form).
    pub message_id: [u8; 16],
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes is shorter than the {FIXED_LEN}-byte header")]
    TooShort(usize),
    #[error("header length {0} is impossible for a {1}-byte message")]
    BadHeaderLength(u32, usize),
    #[error("payload length {declared} does not match the {actual} bytes after the header")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("message type is empty")]
    EmptyType,
    #[error("created date is 0")]
    NoDate,
    #[error("payload digest does not match its bytes")]
    BadDigest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message type {0:?} is longer than 32 bytes")]
    TypeTooLong(String),
    #[error("payload of {0} bytes does not fit a u32 length")]
    PayloadTooLong(usize),
}

/// Types whose digest is never checked (§2.5: the plugin skips them; so does hop).
fn unchecked(message_type: &str) -> bool {
    matches!(message_type, "start_publication" | "pause_publication")
}

impl AgentMessage {
    /// The wire bytes (§2.1, §2.2): HeaderLength 116, space-padded type, swapped MessageId,
    /// SHA-256 of the payload.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let kind = self.message_type.as_bytes();
        if kind.len() > 32 {
            return Err(EncodeError::TypeTooLong(self.message_type.clone()));
        }
        let len = u32::try_from(self.payload.len()).map_err(|_| EncodeError::PayloadTooLong(self.payload.len()))?;
        let mut out = Vec::with_capacity(FIXED_LEN + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut name = [b' '; 32];
        name[..kind.len()].copy_from_slice(kind);
        out.extend_from_slice(&name);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date_ms.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        // §2.3: the least-significant half of the UUID goes first.
        out.extend_from_slice(&self.message_id[8..16]);
        out.extend_from_slice(&self.message_id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Decode with hop's rules (§2.2 [hop]): exact lengths, HeaderLength 112 tolerated
    /// (PayloadType then 0), NUL and space padding trimmed, digest checked but for the
    /// publication messages. A message that fails is dropped unacknowledged by the caller.
    pub fn decode(bytes: &[u8]) -> Result<AgentMessage, DecodeError> {
        let len = bytes.len();
        if len < FIXED_LEN - 4 {
            return Err(DecodeError::TooShort(len));
        }
        let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let header_length = be32(0);
        let h = header_length as usize;
        if header_length < 112 || h + 4 > len {
            return Err(DecodeError::BadHeaderLength(header_length, len));
        }
        if len < FIXED_LEN && h >= 116 {
            return Err(DecodeError::TooShort(len));
        }
        let declared = be32(h);
        let actual = len - (h + 4);
        if declared as usize != actual {
            return Err(DecodeError::LengthMismatch { declared, actual });
        }
        let message_type =
            String::from_utf8_lossy(&bytes[4..36]).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
        if message_type.is_empty() {
            return Err(DecodeError::EmptyType);
        }
        let created_date_ms = be64(40);
        let mut message_id = [0u8; 16];
        message_id[0..8].copy_from_slice(&bytes[72..80]);
        message_id[8..16].copy_from_slice(&bytes[64..72]);
        let payload = bytes[h + 4..].to_vec();
        if !unchecked(&message_type) {
            if created_date_ms == 0 {
                return Err(DecodeError::NoDate);
            }
            if bytes[80..112] != Sha256::digest(&payload)[..] {
                return Err(DecodeError::BadDigest);
            }
        }
        Ok(AgentMessage {
            message_type,
            schema_version: be32(36),
            created_date_ms,
            sequence_number: be64(48) as i64,
            flags: be64(56),
            message_id,
            payload_type: if h >= 116 { be32(112) } else { 0 },
            payload,
        })
    }
}

/// A UUID's canonical bytes from its hyphenated string form.
#[cfg(test)]
pub fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The canonical lower-case hyphenated form (what JSON payloads such as acks carry).
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The spec's vectors (tests/data/ssm-data-channel-vectors.json, §2.6), produced by the
    /// plugin's own serializer: encode must give the exact bytes, decode must give back the
    /// fields.
    #[test]
    fn spec_vectors_round_trip_byte_exactly() {
        let doc = crate::domain::ssm::spec_vectors();
        let vectors = doc["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 4);
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let msg = AgentMessage {
                message_type: v["message_type"].as_str().unwrap().into(),
                schema_version: v["schema_version"].as_u64().unwrap() as u32,
                created_date_ms: v["created_date_ms"].as_u64().unwrap(),
                sequence_number: v["sequence_number"].as_i64().unwrap(),
                flags: v["flags"].as_u64().unwrap(),
                message_id: uuid_bytes(v["message_id"].as_str().unwrap()).unwrap(),
                payload_type: v["payload_type"].as_u64().unwrap() as u32,
                payload: hex(v["payload_hex"].as_str().unwrap()),
            };
            let wire = hex(v["wire_hex"].as_str().unwrap());
            assert_eq!(wire.len() as u64, v["total_length"].as_u64().unwrap(), "{name}");
            assert_eq!(msg.encode().unwrap(), wire, "vector {name}: encoding");
            assert_eq!(AgentMessage::decode(&wire).unwrap(), msg, "vector {name}: decoding");
            assert_eq!(&wire[80..112], &hex(v["payload_sha256_hex"].as_str().unwrap())[..], "{name}: digest");
            assert_eq!(uuid_string(&msg.message_id), v["message_id"].as_str().unwrap());
        }
    }

    fn sample() -> AgentMessage {
        AgentMessage {
            message_type: "output_stream_data".into(),
            schema_version: 1,
            created_date_ms: 1_700_000_000_000,
            sequence_number: 3,
            flags: 0,
            message_id: uuid_bytes("dd01e56b-ff48-483e-a508-b5f073f31b16").unwrap(),
            payload_type: 1,
            payload: b"data".to_vec(),
        }
    }

    #[test]
    fn hop_decoding_rules() {
        let good = sample().encode().unwrap();
        let mut bad_digest = good.clone();
        bad_digest[80] ^= 1;
        let mut long = good.clone();
        long.push(0);
        let mut no_date = sample();
        no_date.created_date_ms = 0;
        let mut nul_padded = good.clone();
        for b in &mut nul_padded[4 + 18..36] {
            *b = 0;
        }
        let table: Vec<(&str, Vec<u8>, Result<(), DecodeError>)> = vec![
            ("good", good.clone(), Ok(())),
            ("empty", vec![], Err(DecodeError::TooShort(0))),
            ("truncated", good[..100].to_vec(), Err(DecodeError::TooShort(100))),
            ("bad digest", bad_digest, Err(DecodeError::BadDigest)),
            ("extra byte", long, Err(DecodeError::LengthMismatch { declared: 4, actual: 5 })),
            ("no date", no_date.encode().unwrap(), Err(DecodeError::NoDate)),
            ("NUL padding", nul_padded, Ok(())),
        ];
        for (name, bytes, want) in table {
            assert_eq!(AgentMessage::decode(&bytes).map(|_| ()), want, "{name}");
        }
        // Publication messages skip the digest check (§2.5).
        let mut publication = sample();
        publication.message_type = "pause_publication".into();
        let mut wire = publication.encode().unwrap();
        wire[90] ^= 0xff;
        assert!(AgentMessage::decode(&wire).is_ok());
        // A type longer than 32 bytes cannot be encoded.
        let mut long_type = sample();
        long_type.message_type = "x".repeat(33);
        assert!(matches!(long_type.encode(), Err(EncodeError::TypeTooLong(_))));
    }

    /// HeaderLength 112 (no PayloadType field), as reported for service `channel_closed`.
    #[test]
    fn header_length_112_is_tolerated() {
        let payload = br#"{"MessageType":"channel_closed"}"#;
        let mut wire = Vec::new();
        wire.extend_from_slice(&112u32.to_be_bytes());
        let mut name = [0u8; 32];
        name[..14].copy_from_slice(b"channel_closed");
        wire.extend_from_slice(&name);
        wire.extend_from_slice(&1u32.to_be_bytes());
        wire.extend_from_slice(&1u64.to_be_bytes());
        wire.extend_from_slice(&0u64.to_be_bytes());
        wire.extend_from_slice(&0u64.to_be_bytes());
        wire.extend_from_slice(&[7u8; 16]);
        wire.extend_from_slice(&Sha256::digest(payload));
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(payload);
        let m = AgentMessage::decode(&wire).unwrap();
        assert_eq!(
            (m.message_type.as_str(), m.payload_type, m.payload.as_slice()),
            ("channel_closed", 0, &payload[..])
        );
    }

    #[test]
    fn decoding_never_panics() {
        // xorshift over lengths and bytes, including mutations of a valid message.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let good = sample().encode().unwrap();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = if x.is_multiple_of(2) { good.clone() } else { vec![0u8; (x % 300) as usize] };
            let n = m.len().max(1);
            for k in 0..(x % 8) {
                let i = ((x >> (k * 7)) as usize) % n;
                if let Some(b) = m.get_mut(i) {
                    *b = (x >> k) as u8;
                }
            }
            m.truncate(((x >> 20) as usize) % (n + 1));
            let _ = AgentMessage::decode(&m);
        }
    }
}
