//! The SSM Session Manager data channel (shared/specs/ssm-data-channel.md), its pure parts.
//! The transport that uses them (websocket, control plane, SSH over SSM) is issue #5's
//! remaining work; until it lands the binary does not call these yet.
#![cfg_attr(not(test), allow(dead_code))]

pub mod engine;
pub mod handshake;
pub mod message;
pub mod reliability;
pub mod smux;
