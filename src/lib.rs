//! edgeone-cert-operator: keeps Tencent Cloud EdgeOne host certificates equal to
//! `EdgeOneCertificateBinding` resources.

pub mod api;
pub mod certs;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod run;
pub mod server;
pub mod tencent;
