//! hop's integration tests: the real binary against a real EC2 emulator (moto), with a scrubbed
//! environment per test. One binary; modules by capability.

mod support;

mod bed_console;
mod bed_eice;
mod bed_net;
mod cli;
mod config;
mod discovery;
mod doctor;
mod eice;
mod errors;
mod forward;
mod handshake;
mod ls;
mod push;
mod reuse;
mod route;
mod ssh;
mod ssm;
mod waits;
