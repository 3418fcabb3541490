//! Certificate-driven bindings, the cert-manager way of opting in: a `Certificate`
//! annotated with `edgeone.operators.dev/zone-id` (and optionally
//! `edgeone.operators.dev/hosts`, default its `spec.dnsNames`) gets a binding of the
//! same name, owned by it, so Kubernetes garbage collection removes the binding with the
//! Certificate. Removing the annotation removes the binding.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::api::EdgeOneCertificateBinding;
use crate::controller::certmanager::certificate_resource;

pub const ZONE_ANNOTATION: &str = "edgeone.operators.dev/zone-id";
pub const HOSTS_ANNOTATION: &str = "edgeone.operators.dev/hosts";
const MANAGER: &str = "edgeone-cert-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
}

/// The binding an annotated Certificate asks for, or `None` without the annotation.
pub fn desired_binding(certificate: &DynamicObject) -> Option<serde_json::Value> {
    let annotations = certificate.annotations();
    let zone = annotations.get(ZONE_ANNOTATION)?.trim();
    let hosts: Vec<String> = match annotations.get(HOSTS_ANNOTATION) {
        Some(list) => list
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        None => certificate.data["spec"]["dnsNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect(),
    };
    let name = certificate.name_any();
    Some(json!({
        "apiVersion": "edgeone.operators.dev/v1alpha1",
        "kind": "EdgeOneCertificateBinding",
        "metadata": {
            "name": name,
            "labels": {"edgeone.operators.dev/certificate": name},
            "ownerReferences": [{
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "name": name,
                "uid": certificate.uid().unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "zoneId": zone,
            "hosts": hosts,
            "mode": "sslcert",
            "serverCertificates": [{"certificateRef": {"name": name}}],
        },
    }))
}

fn owned_by(binding: &EdgeOneCertificateBinding, certificate: &DynamicObject) -> bool {
    binding
        .owner_references()
        .iter()
        .any(|o| o.kind == "Certificate" && Some(&o.uid) == certificate.uid().as_ref())
}

async fn warn(ctx: &Context, certificate: &DynamicObject, reason: &str, note: String) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: "CreateBinding".into(),
        secondary: None,
    };
    if let Err(error) = ctx
        .recorder
        .publish(&event, &certificate.object_ref(&certificate_resource()))
        .await
    {
        tracing::warn!(%error, reason, "could not publish event");
    }
}

async fn reconcile(certificate: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = certificate.namespace().unwrap_or_default();
    let bindings: Api<EdgeOneCertificateBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = certificate.name_any();
    let existing = bindings.get_opt(&name).await?;
    if let Some(binding) = &existing
        && !owned_by(binding, &certificate)
    {
        if certificate.annotations().contains_key(ZONE_ANNOTATION) {
            let note = format!(
                "binding {namespace}/{name} exists and is not owned by this Certificate; rename one of them"
            );
            warn(&ctx, &certificate, "BindingNameTaken", note).await;
        }
        return Ok(Action::await_change());
    }
    match desired_binding(&certificate) {
        Some(binding) => {
            let params = PatchParams::apply(MANAGER).force();
            if let Err(error) = bindings
                .patch(&name, &params, &Patch::Apply(&binding))
                .await
            {
                // Most likely the apiserver refused the spec (bad zone id or hosts).
                warn(&ctx, &certificate, "InvalidBinding", format!("the binding for this Certificate was refused: {error}; fix the {ZONE_ANNOTATION} / {HOSTS_ANNOTATION} annotations")).await;
                return Ok(Action::requeue(Duration::from_secs(300)));
            }
        }
        None if existing.is_some() => {
            bindings.delete(&name, &DeleteParams::default()).await?;
        }
        None => {}
    }
    Ok(Action::await_change())
}

fn error_policy(_certificate: Arc<DynamicObject>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "certificate-driven binding failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

/// Runs until `shutdown`; `namespace` limits it to one namespace.
pub async fn run(
    client: Client,
    recorder: Recorder,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let resource = certificate_resource();
    let certificates: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let context = Arc::new(Context { client, recorder });
    Controller::new_with(certificates, watcher::Config::default(), resource)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(annotations: &[(&str, &str)]) -> DynamicObject {
        let mut object = DynamicObject::new("web", &certificate_resource()).within("apps");
        object.metadata.uid = Some("uid-1".into());
        object.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        object.data =
            json!({"spec": {"secretName": "web-tls", "dnsNames": ["a.test.com", "b.test.com"]}});
        object
    }

    #[test]
    fn annotations_make_an_owned_binding() {
        assert_eq!(desired_binding(&certificate(&[])), None);
        let binding = desired_binding(&certificate(&[(ZONE_ANNOTATION, "zone-1")])).unwrap();
        assert_eq!(
            binding["spec"]["hosts"],
            json!(["a.test.com", "b.test.com"])
        );
        assert_eq!(
            binding["spec"]["serverCertificates"][0]["certificateRef"]["name"],
            "web"
        );
        assert_eq!(binding["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let narrowed = desired_binding(&certificate(&[
            (ZONE_ANNOTATION, "zone-1"),
            (HOSTS_ANNOTATION, " a.test.com , "),
        ]))
        .unwrap();
        assert_eq!(narrowed["spec"]["hosts"], json!(["a.test.com"]));
    }
}
