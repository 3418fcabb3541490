//! cert-manager `Certificate`s (cert-manager.io/v1), read without depending on
//! cert-manager's types: the operator needs only `spec.secretName` and the `Ready`
//! condition.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use crate::controller::resolve::CertificateSecrets;
use crate::controller::status::Failure;

pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

pub fn certificates(client: Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &certificate_resource())
}

/// `Ok(secret name)` for a Ready Certificate, or why the binding has to wait.
pub fn ready_secret(
    namespace: &str,
    name: &str,
    certificate: &DynamicObject,
) -> Result<String, String> {
    let ready = certificate.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match ready {
        Some(c) if c["status"] == "True" => {}
        Some(c) => {
            return Err(format!(
                "Certificate {namespace}/{name} is not Ready ({}: {})",
                c["reason"].as_str().unwrap_or("unknown reason"),
                c["message"].as_str().unwrap_or("")
            ));
        }
        None => {
            return Err(format!(
                "Certificate {namespace}/{name} has not been issued yet"
            ));
        }
    }
    certificate.data["spec"]["secretName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("Certificate {namespace}/{name} has no spec.secretName"))
}

/// The Secret of each named Certificate, or `Failure::WaitingForCertificate` for the
/// first one that is missing or not Ready.
pub async fn resolve(
    api: &Api<DynamicObject>,
    namespace: &str,
    names: &[String],
) -> Result<Result<CertificateSecrets, Failure>, kube::Error> {
    let mut secrets = CertificateSecrets::new();
    for name in names {
        let Some(certificate) = api.get_opt(name).await? else {
            return Ok(Err(Failure::WaitingForCertificate(format!(
                "Certificate {namespace}/{name} does not exist (is cert-manager installed, and the name right?)"
            ))));
        };
        match ready_secret(namespace, name, &certificate) {
            Ok(secret) => {
                secrets.insert(name.clone(), secret);
            }
            Err(waiting) => return Ok(Err(Failure::WaitingForCertificate(waiting))),
        }
    }
    Ok(Ok(secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(status: serde_json::Value) -> DynamicObject {
        let mut object = DynamicObject::new("web", &certificate_resource());
        object.data = serde_json::json!({"spec": {"secretName": "web-tls"}, "status": status});
        object
    }

    #[test]
    fn ready_certificates_name_their_secret() {
        let ready =
            certificate(serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(ready_secret("ns", "web", &ready), Ok("web-tls".into()));
        let issuing = certificate(
            serde_json::json!({"conditions": [{"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Issuing certificate"}]}),
        );
        assert_eq!(
            ready_secret("ns", "web", &issuing).unwrap_err(),
            "Certificate ns/web is not Ready (DoesNotExist: Issuing certificate)"
        );
        assert!(
            ready_secret("ns", "web", &certificate(serde_json::json!({})))
                .unwrap_err()
                .contains("not been issued")
        );
    }
}
