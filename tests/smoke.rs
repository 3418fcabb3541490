//! Smoke test of the end-to-end test bed: a custom resource on a real kube-apiserver
//! goes through everything the operator relies on — CRD install with kubectl,
//! create, watch, `/status` subresource, finalizers and deletion.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{Stream, StreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher::{self, Event};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A test-only kind, in its own group so it can never clash with the operator's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "smoke.edgeone.operators.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
struct WidgetSpec {
    size: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
struct WidgetStatus {
    phase: String,
}

const FINALIZER: &str = "smoke.edgeone.operators.dev/hold";
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn custom_resource_lifecycle_on_a_real_apiserver() -> Result<()> {
    let control_plane = testbed::shared();
    let client = control_plane.kube_client().await?;

    install_crd_with_kubectl(control_plane).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_name = Widget::crd_name();
    tokio::time::timeout(
        EVENT_TIMEOUT,
        await_condition(crds, crd_name, conditions::is_crd_established()),
    )
    .await
    .context("the Widget CRD was not Established in time")??;

    let namespace = testbed::fresh_namespace(&client, "smoke").await?;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), &namespace);
    let mut events = watcher::watcher(widgets.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();

    let widget = Widget::new("w1", WidgetSpec { size: 3 });
    widgets.create(&PostParams::default(), &widget).await?;
    let seen = applied(&mut events, "the created widget", |w| w.spec.size == 3).await?;
    assert_eq!(seen.metadata.generation, Some(1));

    // The real kubectl must find the new kind through discovery.
    let listed = control_plane
        .kubectl()
        .args([
            "get",
            "widgets",
            "--namespace",
            &namespace,
            "--output",
            "name",
        ])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "widget.smoke.edgeone.operators.dev/w1",
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    let status = json!({ "status": { "phase": "Ready" } });
    widgets
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let seen = applied(&mut events, "the status update", |w| {
        w.status.as_ref().is_some_and(|s| s.phase == "Ready")
    })
    .await?;
    // A write through /status leaves the spec's generation alone: the subresource is on.
    assert_eq!(seen.metadata.generation, Some(1));

    let finalizers = json!({ "metadata": { "finalizers": [FINALIZER] } });
    widgets
        .patch("w1", &PatchParams::default(), &Patch::Merge(&finalizers))
        .await?;
    applied(&mut events, "the finalizer", |w| {
        w.finalizers().iter().any(|f| f == FINALIZER)
    })
    .await?;

    widgets.delete("w1", &DeleteParams::default()).await?;
    let terminating = applied(&mut events, "the deletion timestamp", |w| {
        w.metadata.deletion_timestamp.is_some()
    })
    .await?;
    assert_eq!(terminating.finalizers(), [FINALIZER]);
    assert!(
        widgets.get_opt("w1").await?.is_some(),
        "the finalizer must hold the object"
    );

    let release = json!({ "metadata": { "finalizers": null } });
    widgets
        .patch("w1", &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    next_event(
        &mut events,
        "the deletion",
        |event| matches!(event, Event::Delete(w) if w.name_any() == "w1"),
    )
    .await?;
    assert!(widgets.get_opt("w1").await?.is_none());
    Ok(())
}

/// Applies the CRD the way a user would: its JSON (valid YAML) through kubectl.
async fn install_crd_with_kubectl(control_plane: &testbed::ControlPlane) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("widgets.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&Widget::crd())?)?;
    let mut kubectl = control_plane.kubectl();
    kubectl.arg("apply").arg("--filename").arg(&path);
    let output = tokio::process::Command::from(kubectl).output().await?;
    if !output.status.success() {
        bail!(
            "kubectl apply of the CRD failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The next event that applies (adds or changes) a widget matching `wanted`.
async fn applied(
    events: &mut (impl Stream<Item = Result<Event<Widget>, watcher::Error>> + Unpin),
    what: &str,
    wanted: impl Fn(&Widget) -> bool,
) -> Result<Widget> {
    let event = next_event(events, what, |event| match event {
        Event::Apply(w) | Event::InitApply(w) => wanted(w),
        _ => false,
    })
    .await?;
    match event {
        Event::Apply(w) | Event::InitApply(w) => Ok(w),
        _ => bail!("unreachable: the predicate only accepts applied widgets"),
    }
}

/// Skips watch events until one matches, failing after [`EVENT_TIMEOUT`].
async fn next_event(
    events: &mut (impl Stream<Item = Result<Event<Widget>, watcher::Error>> + Unpin),
    what: &str,
    wanted: impl Fn(&Event<Widget>) -> bool,
) -> Result<Event<Widget>> {
    let search = async {
        while let Some(event) = events.next().await {
            match event {
                Ok(event) if wanted(&event) => return Ok(event),
                Ok(_) => {}
                // The watcher re-lists and carries on after an error; report and wait.
                Err(error) => eprintln!("watch error (retrying): {error}"),
            }
        }
        bail!("the watch ended before {what} was seen")
    };
    tokio::time::timeout(EVENT_TIMEOUT, search)
        .await
        .with_context(|| format!("no watch event showed {what} within {EVENT_TIMEOUT:?}"))?
}
