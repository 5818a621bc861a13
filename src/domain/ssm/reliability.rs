//! The data channel's reliability layer (spec §5), as pure state machines: sequence numbers,
//! per-message acknowledgements, in-order delivery with duplicates re-acked, the RTO
//! estimator, and the retransmission decision. Time and fresh message ids are passed in.

use std::collections::{BTreeMap, VecDeque};

use super::message::{AgentMessage, uuid_string};

/// Flags the official senders write on acknowledgements (§2.4).
const ACK_FLAGS: u64 = 3;

/// RTT estimation with the spec's constants (§5.4): α = 1/8, β = 1/4, G = 10 ms, max 1 s.
#[derive(Debug, Clone, PartialEq)]
pub struct Rto {
    pub srtt_ms: f64,
    pub rttvar_ms: f64,
    pub rto_ms: f64,
}

impl Default for Rto {
    fn default() -> Self {
        Rto { srtt_ms: 100.0, rttvar_ms: 0.0, rto_ms: 200.0 }
    }
}

impl Rto {
    /// One RTT sample, in the spec's order: RTTVAR from the old SRTT, then SRTT, then RTO.
    pub fn sample(&mut self, r_ms: f64) {
        self.rttvar_ms = 0.75 * self.rttvar_ms + 0.25 * (self.srtt_ms - r_ms).abs();
        self.srtt_ms = 0.875 * self.srtt_ms + 0.125 * r_ms;
        self.rto_ms = (self.srtt_ms + f64::max(10.0, 4.0 * self.rttvar_ms)).min(1000.0);
    }
}

/// The acknowledgement of `msg` (§5.2), with the given creation time and fresh id.
pub fn ack_for(msg: &AgentMessage, now_ms: u64, id: [u8; 16]) -> AgentMessage {
    let payload = serde_json::json!({
        "AcknowledgedMessageType": msg.message_type,
        "AcknowledgedMessageId": uuid_string(&msg.message_id),
        "AcknowledgedMessageSequenceNumber": msg.sequence_number,
        "IsSequentialMessage": true,
    });
    AgentMessage {
        message_type: "acknowledge".into(),
        schema_version: 1,
        created_date_ms: now_ms,
        sequence_number: 0,
        flags: ACK_FLAGS,
        message_id: id,
        payload_type: 0,
        payload: serde_json::to_vec(&payload).expect("JSON of plain values"),
    }
}

/// What to do with one received sequenced message.
#[derive(Debug, Default, PartialEq)]
pub struct Received {
    /// Messages now deliverable, in sequence order (the new one and any it unblocked).
    pub deliver: Vec<AgentMessage>,
    /// Whether to acknowledge the received message (acks are sent at once, never stored).
    pub ack: bool,
}

/// Payload bytes the out-of-order buffer holds at most. Agents send ~1 KiB messages, but a
/// message may be up to 1 MiB (`engine::MAX_PAYLOAD`): a bound in messages alone would let a
/// peer park gigabytes here.
pub const PENDING_BYTES: usize = 4 * 1024 * 1024;

/// The receiving side of one stream (§5.2): expected sequence number and the out-of-order
/// buffer, bounded in messages and in payload bytes.
#[derive(Debug)]
pub struct Receiver {
    pub expected: i64,
    pending: BTreeMap<i64, AgentMessage>,
    capacity: usize,
    /// Payload bytes in `pending`, and their bound.
    pending_bytes: usize,
    max_bytes: usize,
}

impl Receiver {
    pub fn new(capacity: usize) -> Receiver {
        Receiver { expected: 0, pending: BTreeMap::new(), capacity, pending_bytes: 0, max_bytes: PENDING_BYTES }
    }

    /// Payload bytes held out of order.
    #[cfg(test)]
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Accept `msg`: in order → deliver (and drain); ahead → store and ack (or drop without
    /// ack when the buffer is full, in messages or bytes, so the sender retransmits it later);
    /// behind → re-ack only (hop re-acks duplicates, so a lost ack does not cause endless
    /// retransmission). The message that fills the gap is never stored, so it always gets in.
    pub fn receive(&mut self, msg: AgentMessage) -> Received {
        let seq = msg.sequence_number;
        if seq < self.expected {
            return Received { deliver: vec![], ack: true };
        }
        if seq > self.expected {
            if self.pending.contains_key(&seq) {
                return Received { deliver: vec![], ack: true };
            }
            if self.pending.len() >= self.capacity || self.pending_bytes + msg.payload.len() > self.max_bytes {
                return Received::default();
            }
            self.pending_bytes += msg.payload.len();
            self.pending.insert(seq, msg);
            return Received { deliver: vec![], ack: true };
        }
        let mut deliver = vec![msg];
        self.expected += 1;
        while let Some(next) = self.pending.remove(&self.expected) {
            self.pending_bytes -= next.payload.len();
            deliver.push(next);
            self.expected += 1;
        }
        Received { deliver, ack: true }
    }
}

/// A sent message waiting for its acknowledgement.
#[derive(Debug, Clone)]
struct Unacked {
    seq: i64,
    wire: Vec<u8>,
    last_sent_ms: u64,
    first_resend_ms: Option<u64>,
}

/// The sending side of one stream (§5.1, §5.3): sequence numbers, the unacked buffer (bounded:
/// when full the caller stops reading its source, §5.5 [hop]) and retransmission.
#[derive(Debug)]
pub struct Sender {
    pub next_seq: i64,
    unacked: VecDeque<Unacked>,
    capacity: usize,
    pub rto: Rto,
    /// Give up when the oldest message has been resent for this long (§5.3 [hop]).
    give_up_ms: u64,
}

/// Bound on the messages one retransmission tick resends.
pub const RESEND_PER_TICK: usize = 256;

/// What the retransmission tick decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    Nothing,
    /// Resend these identical bytes (oldest first).
    Resend(Vec<Vec<u8>>),
    /// The oldest message went unacknowledged past the deadline: end the session.
    GiveUp {
        seq: i64,
    },
}

impl Sender {
    pub fn new(capacity: usize, give_up_ms: u64) -> Sender {
        Sender { next_seq: 0, unacked: VecDeque::new(), capacity, rto: Rto::default(), give_up_ms }
    }

    /// Whether another message may be sent now (else: backpressure).
    pub fn has_room(&self) -> bool {
        self.unacked.len() < self.capacity
    }

    /// Number `msg` with the next sequence number, keep its bytes for retransmission and
    /// return them to send. Empty data payloads are never sent (§5.1), so callers skip them.
    pub fn send(&mut self, mut msg: AgentMessage, now_ms: u64) -> Vec<u8> {
        msg.sequence_number = self.next_seq;
        self.next_seq += 1;
        let wire = msg.encode().expect("hop's own messages encode");
        self.unacked.push_back(Unacked {
            seq: msg.sequence_number,
            wire: wire.clone(),
            last_sent_ms: now_ms,
            first_resend_ms: None,
        });
        wire
    }

    /// An acknowledgement for `seq`: forget that message and learn from its round trip.
    /// Unknown sequence numbers are ignored. Returns whether it matched.
    pub fn acked(&mut self, seq: i64, now_ms: u64) -> bool {
        let Some(i) = self.unacked.iter().position(|u| u.seq == seq) else { return false };
        let u = self.unacked.remove(i).expect("index from position");
        self.rto.sample(now_ms.saturating_sub(u.last_sent_ms) as f64);
        true
    }

    /// The 100 ms tick (§5.3). The oldest unacked message decides giving up. Unlike the
    /// plugin, which looks only at the oldest (so each lost ack costs a tick), every message
    /// unacked for longer than the RTO is resent, at most `RESEND_PER_TICK` per tick: the
    /// agent re-acks duplicates, so this is safe, and a lossy link does not serialise.
    pub fn tick(&mut self, now_ms: u64) -> Tick {
        let rto = self.rto.rto_ms;
        let expired = |u: &Unacked| (now_ms.saturating_sub(u.last_sent_ms) as f64) > rto;
        let Some(oldest) = self.unacked.front_mut() else { return Tick::Nothing };
        if expired(oldest) {
            let first = *oldest.first_resend_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(first) > self.give_up_ms {
                return Tick::GiveUp { seq: oldest.seq };
            }
        }
        let mut resend = Vec::new();
        for u in self.unacked.iter_mut().filter(|u| expired(u)).take(RESEND_PER_TICK) {
            u.last_sent_ms = now_ms;
            resend.push(u.wire.clone());
        }
        if resend.is_empty() { Tick::Nothing } else { Tick::Resend(resend) }
    }

    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seq: i64, payload: &[u8]) -> AgentMessage {
        AgentMessage {
            message_type: "output_stream_data".into(),
            schema_version: 1,
            created_date_ms: 1,
            sequence_number: seq,
            flags: 0,
            message_id: [seq as u8; 16],
            payload_type: 1,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn rto_follows_the_spec_worked_example() {
        let mut r = Rto::default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        r.sample(50.0);
        assert!(close(r.rttvar_ms, 12.5) && close(r.srtt_ms, 93.75) && close(r.rto_ms, 143.75), "{r:?}");
        r.sample(50.0);
        assert!(close(r.rttvar_ms, 20.3125) && close(r.srtt_ms, 88.28125) && close(r.rto_ms, 169.53125), "{r:?}");
        r.sample(5000.0);
        assert!(close(r.srtt_ms, 702.24609375) && close(r.rto_ms, 1000.0), "{r:?}");
        assert!((r.rttvar_ms - 1243.16).abs() < 0.01, "{r:?}");
    }

    #[test]
    fn in_order_delivery_with_duplicates_reacked_and_reordering_buffered() {
        let mut rx = Receiver::new(2);
        let seqs = |r: &Received| r.deliver.iter().map(|m| m.sequence_number).collect::<Vec<_>>();
        let r = rx.receive(data(0, b"a"));
        assert_eq!((seqs(&r), r.ack), (vec![0], true));
        // Ahead: stored and acked, not delivered.
        let r = rx.receive(data(2, b"c"));
        assert_eq!((seqs(&r), r.ack), (vec![], true));
        // The same ahead message again: acked, still stored once.
        let r = rx.receive(data(2, b"c"));
        assert_eq!((seqs(&r), r.ack), (vec![], true));
        // The gap filled: 1 and the stored 2, in order.
        let r = rx.receive(data(1, b"b"));
        assert_eq!((seqs(&r), r.ack), (vec![1, 2], true));
        // A duplicate of something delivered: re-acked, not delivered again.
        let r = rx.receive(data(1, b"b"));
        assert_eq!((seqs(&r), r.ack), (vec![], true));
        assert_eq!(rx.expected, 3);
        // The buffer is bounded: beyond it, dropped without ack (the sender retransmits).
        rx.receive(data(5, b""));
        rx.receive(data(6, b""));
        assert_eq!(rx.receive(data(7, b"")), Received::default());
    }

    #[test]
    fn the_out_of_order_buffer_is_bounded_in_bytes_not_only_in_messages() {
        // Room for 10 000 messages, but 1 MiB ones (the largest the engine accepts): only
        // PENDING_BYTES of them are kept; the rest are dropped unacked and come back later.
        let mut rx = Receiver::new(10_000);
        let big = vec![7u8; 1024 * 1024];
        let mut acked = Vec::new();
        for seq in 1..=64 {
            let r = rx.receive(data(seq, &big));
            assert!(r.deliver.is_empty());
            if r.ack {
                acked.push(seq);
            }
            assert!(rx.pending_bytes() <= PENDING_BYTES, "{} bytes held", rx.pending_bytes());
        }
        assert_eq!(acked, vec![1, 2, 3, 4], "4 MiB kept, everything beyond dropped without an ack");
        // The gap filled: the stored ones are delivered and their bytes released.
        let r = rx.receive(data(0, b"a"));
        assert_eq!(r.deliver.iter().map(|m| m.sequence_number).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert_eq!(rx.pending_bytes(), 0);
        // The dropped ones, retransmitted, now fit (and 5 is delivered at once).
        assert_eq!(rx.receive(data(6, &big)), Received { deliver: vec![], ack: true });
        assert_eq!(rx.receive(data(5, &big)).deliver.len(), 2);
        assert_eq!((rx.expected, rx.pending_bytes()), (7, 0));
    }

    #[test]
    fn the_ack_matches_the_spec_vector_b() {
        // Vector B of the spec is the ack of vector A.
        let a = AgentMessage {
            message_type: "input_stream_data".into(),
            schema_version: 1,
            created_date_ms: 1503434274948,
            sequence_number: 1,
            flags: 2,
            message_id: super::super::message::uuid_bytes("dd01e56b-ff48-483e-a508-b5f073f31b16").unwrap(),
            payload_type: 0,
            payload: b"payload".to_vec(),
        };
        let id = super::super::message::uuid_bytes("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0").unwrap();
        let ack = ack_for(&a, 1503434274948, id);
        let want = br#"{"AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":1,"AcknowledgedMessageType":"input_stream_data","IsSequentialMessage":true}"#;
        // Same fields (serde_json orders keys; the vector's order differs, JSON does not care).
        let got: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
        let want: serde_json::Value = serde_json::from_slice(want).unwrap();
        assert_eq!(got, want);
        assert_eq!((ack.sequence_number, ack.flags, ack.payload_type), (0, 3, 0));
    }

    #[test]
    fn retransmission_of_the_oldest_after_rto_and_giving_up() {
        let mut tx = Sender::new(2, 1_000);
        let first = tx.send(data(99, b"x"), 0);
        tx.send(data(99, b"y"), 10);
        assert!(!tx.has_room(), "bounded: the caller must stop reading its source");
        assert_eq!(tx.tick(150), Tick::Nothing, "within the initial RTO of 200 ms");
        assert_eq!(tx.tick(205), Tick::Resend(vec![first.clone()]), "the oldest, identical bytes");
        let second = tx.unacked.back().unwrap().wire.clone();
        assert_eq!(tx.tick(250), Tick::Resend(vec![second]), "then the next one that expired");
        assert_eq!(tx.tick(300), Tick::Nothing, "their send times were updated");
        assert_eq!(tx.tick(1_300), Tick::GiveUp { seq: 0 }, "unacked past the deadline");
        // Acks by sequence number; unknown ones ignored.
        assert!(!tx.acked(7, 400));
        assert!(tx.acked(0, 400));
        assert_eq!(tx.unacked(), 1);
        assert_eq!(tx.next_seq, 2);
    }
}
