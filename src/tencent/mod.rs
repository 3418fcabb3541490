//! Tencent Cloud API client. Knows nothing of Kubernetes.
//!
//! One [`Transport`] per process signs, rate-limits, sends and classifies every call;
//! [`TeoApi`] and [`SslApi`] are typed actions on top of it; [`credentials`] says whose
//! name the calls are made in.

pub mod coalesce;
pub mod credentials;
pub mod error;
pub mod ratelimit;
pub mod sign;
pub mod ssl;
pub mod teo;
pub mod transport;
pub mod zones;

pub use credentials::{
    CredentialProvider, Credentials, CredentialsError, EnvCredentials, StaticCredentials,
    TkeOidcCredentials, default_chain,
};
pub use error::{ApiError, CallError, ErrorClass};
pub use ssl::{CertificateDetail, SslApi};
pub use teo::TeoApi;
pub use transport::{Endpoints, Reply, Service, Transport, TransportConfig, TransportError};
