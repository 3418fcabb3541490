//! The admin kubeconfig: self-contained (certificates embedded, no paths), so it keeps
//! working when copied elsewhere and kubectl, helm and kube-rs all read it alike.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::certs::Pki;

/// The context, cluster and user name in the kubeconfig.
pub const CONTEXT: &str = "testbed";

/// Renders the kubeconfig YAML for the admin user against `server`.
pub fn render(server: &str, pki: &Pki) -> String {
    let ca = STANDARD.encode(&pki.ca_cert_pem);
    let cert = STANDARD.encode(&pki.admin_cert_pem);
    let key = STANDARD.encode(&pki.admin_key_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {CONTEXT}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}
current-context: {CONTEXT}
"
    )
}

/// Builds a kube-rs client from rendered kubeconfig text. Must run inside a Tokio
/// runtime: the client's connection pool lives on it.
pub async fn client_from(kubeconfig_yaml: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml)
        .context("parsing the generated kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("loading the generated kubeconfig")?;
    kube::Client::try_from(config).context("building a Kubernetes client")
}
