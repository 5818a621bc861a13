//! smux v1 frames (spec §6.4), the multiplexing of native SSM port-forwarding sessions:
//! encoding, and a streaming parser (frames may span data channel messages, and one message
//! may hold several). Pure.

/// Frame commands of smux v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Syn = 0,
    Fin = 1,
    Psh = 2,
    Nop = 3,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub cmd: Cmd,
    pub stream: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmuxError {
    #[error("smux frame of version {0}: only version 1 is spoken")]
    Version(u8),
    #[error("unknown smux command {0}")]
    Command(u8),
    #[error("smux frame with {0} data bytes: more than one frame may carry")]
    TooLong(usize),
}

impl Frame {
    /// Header (version 1, cmd, u16 LE length, u32 LE stream id) then data. Callers split PSH
    /// data at 32 KiB, the library's default frame size.
    pub fn encode(&self) -> Result<Vec<u8>, SmuxError> {
        let len = u16::try_from(self.data.len()).map_err(|_| SmuxError::TooLong(self.data.len()))?;
        let mut out = Vec::with_capacity(8 + self.data.len());
        out.push(1);
        out.push(self.cmd as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.stream.to_le_bytes());
        out.extend_from_slice(&self.data);
        Ok(out)
    }
}

/// Feeds bytes in, takes whole frames out. A protocol error ends the smux session (§6.4).
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, None when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SmuxError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        if self.buf[0] != 1 {
            return Err(SmuxError::Version(self.buf[0]));
        }
        let cmd = match self.buf[1] {
            0 => Cmd::Syn,
            1 => Cmd::Fin,
            2 => Cmd::Psh,
            3 => Cmd::Nop,
            c => return Err(SmuxError::Command(c)),
        };
        let len = u16::from_le_bytes([self.buf[2], self.buf[3]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let stream = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let data = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Ok(Some(Frame { cmd, stream, data }))
    }
}

/// Client stream ids: odd, the first is 3 (the library increments its counter, starting at
/// 1, by 2 before use).
#[derive(Debug)]
pub struct StreamIds(u32);

impl Default for StreamIds {
    fn default() -> Self {
        StreamIds(1)
    }
}

impl Iterator for StreamIds {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.0 = self.0.checked_add(2)?;
        Some(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "0100000003000000010205000300000068656c6c6f01010000030000000100000005000000";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn frames() -> Vec<Frame> {
        vec![
            Frame { cmd: Cmd::Syn, stream: 3, data: vec![] },
            Frame { cmd: Cmd::Psh, stream: 3, data: b"hello".to_vec() },
            Frame { cmd: Cmd::Fin, stream: 3, data: vec![] },
            Frame { cmd: Cmd::Syn, stream: 5, data: vec![] },
        ]
    }

    /// [`VECTOR`] is the spec's, byte for byte.
    #[test]
    fn vector_is_the_one_in_the_spec_file() {
        let doc = crate::domain::ssm::spec_vectors();
        assert_eq!(doc["smux_v1_client_frames"]["wire_hex"], VECTOR);
    }

    /// The spec's §6.6 capture from the Go library: open, "hello", close, open.
    #[test]
    fn spec_vector_encodes_and_parses_in_any_chunking() {
        let ids: Vec<u32> = StreamIds::default().take(2).collect();
        assert_eq!(ids, [3, 5]);
        let wire: Vec<u8> = frames().iter().flat_map(|f| f.encode().unwrap()).collect();
        assert_eq!(wire, hex(VECTOR));
        // Frames spanning messages: feed it in every chunk size.
        for chunk in 1..=wire.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                p.push(piece);
                while let Some(f) = p.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames(), "chunk size {chunk}");
        }
    }

    #[test]
    fn protocol_errors() {
        let mut p = Parser::default();
        p.push(&[2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(p.next_frame(), Err(SmuxError::Version(2)));
        let mut p = Parser::default();
        p.push(&[1, 9, 0, 0, 3, 0, 0, 0]);
        assert_eq!(p.next_frame(), Err(SmuxError::Command(9)));
        assert!(matches!(
            Frame { cmd: Cmd::Psh, stream: 3, data: vec![0; 70_000] }.encode(),
            Err(SmuxError::TooLong(_))
        ));
        let nop = Frame { cmd: Cmd::Nop, stream: 0, data: vec![] }.encode().unwrap();
        assert_eq!(nop, [1, 3, 0, 0, 0, 0, 0, 0]);
    }
}
