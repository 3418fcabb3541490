//! Reconciliation of `EdgeOneCertificateBinding`: resolve → plan → apply → observe → status.

pub mod certificate_bindings;
pub mod certmanager;
pub mod plan;
pub mod reconcile;
pub mod resolve;
pub mod sources;
pub mod status;
pub mod uploads;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::EdgeOneCertificateBinding;
use crate::server::Readiness;
pub use reconcile::{Context, EdgeOne, FINALIZER};

/// Reconciles only for changes the operator must act on: the spec (generation), the
/// start of a deletion, and finalizers. Its own status writes do not come back here.
fn relevant_change(binding: &EdgeOneCertificateBinding) -> Option<u64> {
    let generation = predicates::generation(binding)?;
    let deleting = binding.metadata.deletion_timestamp.is_some() as u64;
    let finalizers = predicates::finalizers(binding).unwrap_or(0);
    Some(
        generation
            .wrapping_mul(31)
            .wrapping_add(deleting)
            .wrapping_mul(31)
            .wrapping_add(finalizers),
    )
}

/// Whether a binding reads the Secret: for its credentials or for a certificate.
fn uses_secret(binding: &EdgeOneCertificateBinding, name: &str) -> bool {
    let spec = &binding.spec;
    spec.credentials_ref
        .as_ref()
        .is_some_and(|r| r.name == name)
        || resolve::secret_sources(spec, &Default::default())
            .iter()
            .any(|s| s.name() == name)
}

/// Bindings in the namespace that name the cert-manager Certificate.
fn bindings_using_certificate(
    store: &Store<EdgeOneCertificateBinding>,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<EdgeOneCertificateBinding>> {
    store
        .state()
        .iter()
        .filter(|b| {
            b.namespace() == namespace
                && resolve::certificate_refs(&b.spec).iter().any(|c| c == name)
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// Bindings in the Secret's namespace that read it.
fn bindings_using_secret(
    store: &Store<EdgeOneCertificateBinding>,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<EdgeOneCertificateBinding>> {
    store
        .state()
        .iter()
        .filter(|b| b.namespace() == namespace && uses_secret(b, name))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one
/// namespace; `None` watches all.
pub async fn run(
    client: Client,
    context: Arc<Context>,
    namespace: Option<&str>,
    readiness: Readiness,
    certificate_driven_bindings: bool,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let bindings: Api<EdgeOneCertificateBinding> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secrets: Api<PartialObjectMeta<Secret>> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    context.set_bindings(store.clone());
    let ready_store = store.clone();
    tokio::spawn(async move {
        if ready_store.wait_until_ready().await.is_ok() {
            readiness.set_ready();
        }
    });
    let binding_changes = watcher(bindings, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(relevant_change, Default::default());
    // Secrets are watched by metadata only (kube asks the apiserver for
    // PartialObjectMetadata): their data is read on demand, so neither the watch nor
    // the cache carries the cluster's Secret data (Helm releases alone can be huge).
    let secret_store = store.clone();
    let secret_changes = watcher(secrets, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .filter_map(|secret| std::future::ready(secret.ok()))
        .flat_map(move |secret| {
            futures::stream::iter(bindings_using_secret(
                &secret_store,
                secret.namespace(),
                &secret.name_any(),
            ))
        });
    // cert-manager may not be installed; then there is nothing to watch, and bindings
    // that name Certificates wait (and poll) with reason WaitingForCertificate.
    let certificates: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &certmanager::certificate_resource()),
        None => Api::all_with(client.clone(), &certmanager::certificate_resource()),
    };
    let cert_manager_installed = certificates
        .list_metadata(&ListParams::default().limit(1))
        .await
        .is_ok();
    let certificate_store = store.clone();
    let certificate_changes = watcher(certificates, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .filter_map(|certificate| std::future::ready(certificate.ok()))
        .flat_map(move |certificate| {
            futures::stream::iter(bindings_using_certificate(
                &certificate_store,
                certificate.namespace(),
                &certificate.name_any(),
            ))
        });
    let mut controller =
        Controller::for_stream(binding_changes, store).reconcile_on(secret_changes);
    if cert_manager_installed {
        controller = controller.reconcile_on(certificate_changes);
    } else {
        tracing::info!(
            "cert-manager Certificates are not served by this cluster; certificateRef sources will wait for them"
        );
    }
    // Both controllers stop on the same signal.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    if cert_manager_installed && certificate_driven_bindings {
        let recorder = context.recorder.clone();
        let namespace = namespace.map(str::to_owned);
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            certificate_bindings::run(client, recorder, namespace.as_deref(), stop).await
        });
    }
    controller
        .graceful_shutdown_on(stopped(stop_rx))
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}
