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
