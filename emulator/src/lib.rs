//! teo-emulator: a stateful, signature-checking stand-in for the parts of Tencent Cloud
//! that edgeone-cert-operator uses (EdgeOne `teo`, SSL Certificates `ssl`, STS `sts`),
//! for tests, benchmarks and the local demo. See the README for the admin endpoint.

pub mod auth;
pub mod error;
pub mod faults;
pub mod model;
pub mod ratelimit;
pub mod server;
pub mod ssl;
pub mod sts;
pub mod teo;

pub use model::{Seed, Settings, State};
pub use server::{CallRecord, Emulator};
