//! Tencent Cloud API client. Knows nothing of Kubernetes.

pub mod error;
pub mod sign;
