//! The client's data channel engine (spec §5.9), pure: incoming frames, local bytes and clock
//! ticks in; frames to send and session bytes out. It answers the handshake, acknowledges,
//! delivers in order, retransmits, and holds local bytes until the handshake completes (the
//! agent discards data sent earlier, §4.3). The websocket task that drives it is I/O.

use std::collections::VecDeque;

use super::handshake::{self, HandshakeError, Request};
use super::message::AgentMessage;
use super::reliability::{Receiver, Sender, Tick, ack_for};

/// Payload bytes per data message (§5.5).
pub const CHUNK: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    AwaitingHandshake,
    /// Handshake answered, waiting for HandshakeComplete.
    Answered(Request),
    Established(Request),
    /// The service ended the session (`channel_closed`, with its `Output` text, possibly
    /// empty), or the handshake failed (the reason).
    Closed(String),
}

/// Flag values (spec §3.3, PayloadType 10).
pub const FLAG_DISCONNECT_TO_PORT: u32 = 1;
pub const FLAG_TERMINATE_SESSION: u32 = 2;
pub const FLAG_CONNECT_TO_PORT_ERROR: u32 = 3;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("the agent did not acknowledge message {seq} in time: giving up")]
    GaveUp { seq: i64 },
    /// §8.3.8: agents send about 1 KiB per message; one far bigger is a broken or hostile
    /// peer, not data to buffer.
    #[error("the agent sent a {len}-byte message, over hop's limit of {MAX_PAYLOAD} bytes")]
    Oversize { len: usize },
}

/// Largest payload hop accepts in one message (the spec suggests 1 MiB).
pub const MAX_PAYLOAD: usize = 1024 * 1024;

pub struct Engine<F: FnMut() -> [u8; 16]> {
    pub state: State,
    rx: Receiver,
    tx: Sender,
    new_id: F,
    /// Frames to write to the websocket, in order.
    outbox: Vec<Vec<u8>>,
    /// Session bytes delivered in order.
    inbox: Vec<u8>,
    /// Local bytes not yet sent (before the handshake, or while the unacked buffer is full).
    pending: VecDeque<u8>,
    /// Flags the agent sent, in stream order.
    flags: Vec<u32>,
    /// HandshakeComplete's note for the user (§4.4), if it had one.
    pub customer_message: Option<String>,
}

impl<F: FnMut() -> [u8; 16]> Engine<F> {
    pub fn new(new_id: F, buffer_messages: usize, give_up_ms: u64) -> Engine<F> {
        Engine {
            state: State::AwaitingHandshake,
            rx: Receiver::new(buffer_messages),
            tx: Sender::new(buffer_messages, give_up_ms),
            new_id,
            outbox: Vec::new(),
            inbox: Vec::new(),
            pending: VecDeque::new(),
            flags: Vec::new(),
            customer_message: None,
        }
    }

    fn message(&mut self, payload_type: u32, payload: Vec<u8>, now_ms: u64) -> AgentMessage {
        AgentMessage {
            message_type: "input_stream_data".into(),
            schema_version: 1,
            created_date_ms: now_ms.max(1),
            sequence_number: 0,
            flags: 0,
            message_id: (self.new_id)(),
            payload_type,
            payload,
        }
    }

    /// One frame from the websocket. Undecodable frames are dropped unacknowledged (the agent
    /// retransmits); a refused handshake is an error after its answer is queued (§4.6).
    pub fn on_frame(&mut self, bytes: &[u8], now_ms: u64) -> Result<(), EngineError> {
        let Ok(msg) = AgentMessage::decode(bytes) else { return Ok(()) };
        if msg.payload.len() > MAX_PAYLOAD {
            self.state = State::Closed("oversize message".into());
            return Err(EngineError::Oversize { len: msg.payload.len() });
        }
        match msg.message_type.as_str() {
            "acknowledge" => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&msg.payload)
                    && let Some(seq) = v["AcknowledgedMessageSequenceNumber"].as_i64()
                {
                    self.tx.acked(seq, now_ms);
                    self.flush(now_ms);
                }
            }
            "output_stream_data" => {
                let received = self.rx.receive(msg.clone());
                if received.ack {
                    let id = (self.new_id)();
                    self.outbox.push(ack_for(&msg, now_ms.max(1), id).encode().expect("acks encode"));
                }
                for m in received.deliver {
                    self.dispatch(m, now_ms)?;
                }
            }
            "channel_closed" => {
                // §7.2: the reason is the JSON's `Output`; some services NUL-pad the payload.
                let text = String::from_utf8_lossy(&msg.payload);
                let json = text.trim_matches(char::from(0));
                let output = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v["Output"].as_str().map(str::to_string))
                    .unwrap_or_default();
                self.state = State::Closed(output);
            }
            // start/pause_publication and unknown types: ignored, never acked (§3.1).
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, m: AgentMessage, now_ms: u64) -> Result<(), EngineError> {
        match (m.payload_type, &self.state) {
            (5, State::AwaitingHandshake) => {
                let (response, result) = handshake::respond(&m.payload);
                let reply = self.message(6, response, now_ms);
                self.outbox.push(self.tx.send(reply, now_ms));
                match result {
                    Ok(request) => self.state = State::Answered(request),
                    Err(e) => {
                        self.state = State::Closed(e.to_string());
                        return Err(e.into());
                    }
                }
            }
            (7, State::Answered(request)) => {
                self.customer_message = handshake::complete_message(&m.payload);
                self.state = State::Established(request.clone());
                self.flush(now_ms);
            }
            (1, State::Established(_)) => self.inbox.extend_from_slice(&m.payload),
            (10, State::Established(_)) if m.payload.len() == 4 => {
                self.flags.push(u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes")));
            }
            // Flags, sizes, a second handshake request: nothing for the byte stream.
            _ => {}
        }
        Ok(())
    }

    /// Local bytes for the agent: sent in ≤ 1024-byte messages once established, as far as
    /// the unacked buffer allows; the rest waits (backpressure, never eviction).
    pub fn write(&mut self, data: &[u8], now_ms: u64) {
        self.pending.extend(data);
        self.flush(now_ms);
    }

    fn flush(&mut self, now_ms: u64) {
        self.send_pending(now_ms, true);
    }

    /// Pending bytes out in ≤ 1024-byte messages; `bounded`: only as far as the unacked
    /// buffer has room.
    fn send_pending(&mut self, now_ms: u64, bounded: bool) {
        if !matches!(self.state, State::Established(_)) {
            return;
        }
        while !self.pending.is_empty() && (!bounded || self.tx.has_room()) {
            let n = self.pending.len().min(CHUNK);
            let chunk: Vec<u8> = self.pending.drain(..n).collect();
            let msg = self.message(1, chunk, now_ms);
            let wire = self.tx.send(msg, now_ms);
            self.outbox.push(wire);
        }
    }

    /// The 100 ms retransmission tick.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), EngineError> {
        match self.tx.tick(now_ms) {
            Tick::Nothing => Ok(()),
            Tick::Resend(wires) => {
                self.outbox.extend(wires);
                Ok(())
            }
            Tick::GiveUp { seq } => Err(EngineError::GaveUp { seq }),
        }
    }

    /// Send a flag (§3.3) after every byte written so far: flags are sequenced like data.
    /// Only once established; the unacked limit is not applied to this one message.
    pub fn flag(&mut self, value: u32, now_ms: u64) {
        if !matches!(self.state, State::Established(_)) {
            return;
        }
        self.send_pending(now_ms, false);
        let msg = self.message(10, value.to_be_bytes().to_vec(), now_ms);
        let wire = self.tx.send(msg, now_ms);
        self.outbox.push(wire);
    }

    /// Local bytes waiting for room in the unacked buffer: the driver stops reading its
    /// local side while this is large (backpressure).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn take_flags(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.flags)
    }

    pub fn take_outbox(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbox)
    }

    pub fn take_inbox(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbox)
    }

    /// Whether everything written so far has been acknowledged.
    pub fn drained(&self) -> bool {
        self.pending.is_empty() && self.tx.unacked() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::domain::ssm::Rng;
    use crate::domain::ssm::reliability::{Receiver, Sender, Tick};

    /// A link that drops, duplicates and reorders frames.
    struct Link {
        queue: VecDeque<Vec<u8>>,
        rng: Rng,
        drop: u64,
        dup: u64,
        reorder: u64,
    }
    impl Link {
        fn send(&mut self, frame: Vec<u8>) {
            if self.rng.chance(self.drop) {
                return;
            }
            if self.rng.chance(self.dup) {
                self.queue.push_back(frame.clone());
            }
            if self.rng.chance(self.reorder) && !self.queue.is_empty() {
                let at = (self.rng.next() as usize) % self.queue.len();
                self.queue.insert(at, frame);
            } else {
                self.queue.push_back(frame);
            }
        }
    }

    /// A minimal agent built from the same primitives (the faithful fake agent with fault
    /// knobs is test-bed code for the integration tests).
    struct Agent {
        rx: Receiver,
        tx: Sender,
        got: Vec<u8>,
        next_id: u8,
        handshake_done: bool,
    }
    impl Agent {
        fn msg(&mut self, payload_type: u32, payload: Vec<u8>) -> AgentMessage {
            self.next_id = self.next_id.wrapping_add(1);
            AgentMessage {
                message_type: "output_stream_data".into(),
                schema_version: 1,
                created_date_ms: 1,
                sequence_number: 0,
                flags: 0,
                message_id: [self.next_id; 16],
                payload_type,
                payload,
            }
        }
    }

    #[test]
    fn ten_megabytes_both_ways_over_a_lossy_reordering_link() {
        let mut ids = 0u64;
        let mut client = Engine::new(
            move || {
                ids += 1;
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&ids.to_be_bytes());
                id
            },
            10_000,
            300_000,
        );
        let mut agent = Agent {
            rx: Receiver::new(10_000),
            tx: Sender::new(10_000, 300_000),
            got: vec![],
            next_id: 0,
            handshake_done: false,
        };
        let mut up = Link { queue: VecDeque::new(), rng: Rng(7), drop: 5, dup: 5, reorder: 5 };
        let mut down = Link { queue: VecDeque::new(), rng: Rng(11), drop: 5, dup: 5, reorder: 5 };
        let size = 10 * 1024 * 1024;
        let upload: Vec<u8> = (0..size).map(|i: usize| (i.wrapping_mul(31) >> 3) as u8).collect();
        let download: Vec<u8> = (0..size).map(|i: usize| (i.wrapping_mul(17) >> 2) as u8).collect();
        let request = br#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22"}}}]}"#;
        let m = agent.msg(5, request.to_vec());
        down.send(agent.tx.send(m, 0));
        client.write(&upload, 0); // held until the handshake completes
        let mut received = Vec::new();
        let mut agent_sent = 0usize;
        let mut now = 0u64;
        // Bounded: a simulated 10 minutes of 10 ms steps.
        while now < 600_000 {
            now += 10;
            for frame in client.take_outbox() {
                up.send(frame);
            }
            while let Some(frame) = up.queue.pop_front() {
                let Ok(msg) = AgentMessage::decode(&frame) else { continue };
                match msg.message_type.as_str() {
                    "acknowledge" => {
                        let v: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
                        agent.tx.acked(v["AcknowledgedMessageSequenceNumber"].as_i64().unwrap(), now);
                    }
                    "input_stream_data" => {
                        let r = agent.rx.receive(msg.clone());
                        if r.ack {
                            down.send(ack_for(&msg, now.max(1), [0xaa; 16]).encode().unwrap());
                        }
                        for m in r.deliver {
                            match m.payload_type {
                                6 if !agent.handshake_done => {
                                    agent.handshake_done = true;
                                    let c =
                                        agent.msg(7, br#"{"HandshakeTimeToComplete":1,"CustomerMessage":""}"#.to_vec());
                                    down.send(agent.tx.send(c, now));
                                }
                                1 => agent.got.extend_from_slice(&m.payload),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            // The agent streams its download once the handshake is done, within its buffer.
            while agent.handshake_done && agent_sent < download.len() && agent.tx.has_room() {
                let n = (download.len() - agent_sent).min(CHUNK);
                let m = agent.msg(1, download[agent_sent..agent_sent + n].to_vec());
                down.send(agent.tx.send(m, now));
                agent_sent += n;
            }
            if let Tick::Resend(ws) = agent.tx.tick(now) {
                ws.into_iter().for_each(|w| down.send(w));
            }
            while let Some(frame) = down.queue.pop_front() {
                client.on_frame(&frame, now).unwrap();
            }
            received.extend(client.take_inbox());
            client.tick(now).unwrap();
            if received.len() == download.len() && agent.got.len() == upload.len() && client.drained() {
                break;
            }
        }
        assert!(matches!(client.state, State::Established(_)), "{:?}", client.state);
        assert_eq!(agent.got.len(), upload.len(), "upload complete");
        assert!(agent.got == upload, "upload identical");
        assert_eq!(received.len(), download.len(), "download complete");
        assert!(received == download, "download identical");
    }

    #[test]
    fn kms_ends_the_session_after_answering() {
        let mut client = Engine::new(|| [1; 16], 100, 1000);
        let kms = br#"{"AgentVersion":"3","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{}}},{"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"k"}}]}"#;
        let mut agent = Sender::new(10, 1000);
        let req = AgentMessage {
            message_type: "output_stream_data".into(),
            schema_version: 1,
            created_date_ms: 1,
            sequence_number: 0,
            flags: 1,
            message_id: [2; 16],
            payload_type: 5,
            payload: kms.to_vec(),
        };
        let frame = agent.send(req, 0);
        let err = client.on_frame(&frame, 1).unwrap_err();
        assert!(matches!(err, EngineError::Handshake(HandshakeError::KmsEncryptionUnsupported { .. })));
        // The ack and the (failing) HandshakeResponse were still queued, so the agent ends
        // its side promptly (§4.6).
        let out = client.take_outbox();
        assert_eq!(out.len(), 2);
        let response = AgentMessage::decode(&out[1]).unwrap();
        assert_eq!(response.payload_type, 6);
        assert!(matches!(client.state, State::Closed(_)));
        // Nothing written goes out on a closed session.
        client.write(b"data", 2);
        assert!(client.take_outbox().is_empty());
    }

    /// §8.3.8: 64 KiB is data; more than the hard cap is a protocol error that ends the session.
    #[test]
    fn a_payload_over_the_cap_ends_the_session() {
        let data = |seq: i64, len: usize| AgentMessage {
            message_type: "output_stream_data".into(),
            schema_version: 1,
            created_date_ms: 1,
            sequence_number: seq,
            flags: 0,
            message_id: [2; 16],
            payload_type: 1,
            payload: vec![b'x'; len],
        };
        let mut client = Engine::new(|| [1; 16], 100, 1000);
        client.on_frame(&data(0, 64 * 1024).encode().unwrap(), 1).unwrap();
        let err = client.on_frame(&data(1, MAX_PAYLOAD + 1).encode().unwrap(), 2).unwrap_err();
        assert!(matches!(err, EngineError::Oversize { len } if len == MAX_PAYLOAD + 1), "{err}");
        assert!(matches!(client.state, State::Closed(_)));
    }
}
