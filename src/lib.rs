//! edgeone-cert-operator: keeps Tencent Cloud EdgeOne host certificates equal to
//! `EdgeOneCertificateBinding` resources.

pub mod tencent;
