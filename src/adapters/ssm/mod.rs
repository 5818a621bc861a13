//! Session Manager: the control plane (`control`, aws-sdk-ssm) and the data channel
//! (`channel`, a websocket driving `domain::ssm`'s engine), in-process: no
//! session-manager-plugin.

pub mod channel;
pub mod control;
pub mod ports;

pub use channel::{Channel, Options, finish, open};
pub use control::{Control, Document};
