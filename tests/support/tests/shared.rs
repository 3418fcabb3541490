//! The shared control plane as tests use it: one per binary, several tests at once,
//! each in its own namespace, with kube-rs, kubectl and helm.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

#[tokio::test]
async fn tests_share_one_control_plane_and_get_their_own_namespaces() -> anyhow::Result<()> {
    let control_plane = testbed::shared();
    assert!(std::ptr::eq(control_plane, testbed::shared()));
    let client = control_plane.kube_client().await?;

    let first = testbed::fresh_namespace(&client, "shared").await?;
    let second = testbed::fresh_namespace(&client, "shared").await?;
    assert_ne!(first, second);
    assert!(first.starts_with("shared-"));

    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), &first)
        .create(&PostParams::default(), &config_map)
        .await?;
    let in_second = Api::<ConfigMap>::namespaced(client, &second)
        .get_opt("hello")
        .await?;
    assert!(in_second.is_none());
    Ok(())
}

#[tokio::test]
async fn kubectl_and_helm_talk_to_the_shared_control_plane() -> anyhow::Result<()> {
    let control_plane = testbed::shared();
    let client = control_plane.kube_client().await?;
    let namespace = testbed::fresh_namespace(&client, "tools").await?;

    let whoami = control_plane
        .kubectl()
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        "admin",
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );

    let get = control_plane
        .kubectl()
        .args(["get", "namespace", &namespace, "-o", "name"])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        format!("namespace/{namespace}")
    );

    let helm = control_plane
        .helm()
        .args(["list", "--namespace", &namespace, "--output", "json"])
        .output()?;
    assert!(
        helm.status.success(),
        "helm list failed: {}",
        String::from_utf8_lossy(&helm.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&helm.stdout).trim(), "[]");
    Ok(())
}
