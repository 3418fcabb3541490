//! The Helm chart (charts/edgeone-cert-operator) and the manifests in deploy/ rendered
//! from it: up to date, lint-clean, rendering what the operator needs (security
//! context, probes, leader election, credentials, least-privilege RBAC), values checked
//! by values.schema.json, installable, upgradable and removable on a real apiserver,
//! and RBAC that is proven sufficient (the operator reconciles with nothing but the
//! chart's ServiceAccount token) and not broader (other requests are refused).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use edgeone_cert_operator::api::EdgeOneCertificateBinding;
use edgeone_cert_operator::tencent::credentials::{
    ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN, ENV_TKE_PROVIDER_ID, ENV_TKE_REGION,
    ENV_TKE_ROLE_ARN, ENV_TKE_TOKEN_FILE,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use teo_emulator::{Emulator, Seed, State};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const CHART_CRD: &str =
    "charts/edgeone-cert-operator/crds/edgeone.operators.dev_edgeonecertificatebindings.yaml";
const TOP_CRD: &str = "crds/edgeone.operators.dev_edgeonecertificatebindings.yaml";
const DEPLOY_FILE: &str = "deploy/edgeone-cert-operator.yaml";
const CUSTOM_VALUES: &str = "tests/helm/values-custom.yaml";
const DEPLOY_NAMESPACE: &str = "edgeone-system";

fn chart() -> PathBuf {
    Path::new(REPO).join("charts/edgeone-cert-operator")
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(REPO).join(relative)
}

// ---------------------------------------------------------------------------------
// Running helm and kubectl
// ---------------------------------------------------------------------------------

/// The pinned helm, without a cluster: its cache, config and data in a temporary
/// directory of this test binary, never in $HOME.
fn helm_offline() -> Command {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("helm-chart-test-")
            .tempdir()
            .expect("a temporary helm home")
    });
    let bin = testbed::tools_bin().expect("the pinned tools (tests/controlplane/build.sh)");
    let mut command = Command::new(bin.join("helm"));
    command
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG");
    command
}

fn describe(command: &Command) -> String {
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        args.join(" ")
    )
}

/// Runs the command to completion, capturing stdout and stderr.
fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null());
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(command)))
}

/// Runs the command and returns its stdout; panics with stderr when it fails.
fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "`{}` failed ({}); expected success.\nstderr:\n{}\nstdout:\n{}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The YAML documents of a multi-document stream, without empty ones.
fn parse_documents(yaml: &str, what: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}\n{yaml}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// `helm template <release> <chart> --namespace edgeone-system <args>`, parsed.
fn render(release: &str, args: &[&str]) -> Vec<Value> {
    let yaml = run_ok(
        helm_offline()
            .args(["template", release])
            .arg(chart())
            .args(["--namespace", DEPLOY_NAMESPACE])
            .args(args),
    );
    parse_documents(&yaml, "helm template's output")
}

fn render_defaults() -> Vec<Value> {
    render("edgeone-cert-operator", &[])
}

fn render_custom() -> Vec<Value> {
    let values = repo_path(CUSTOM_VALUES);
    render(
        "custom",
        &["--values", values.to_str().expect("utf-8 path")],
    )
}

/// `helm template` that must fail; returns its stderr.
fn render_fails(args: &[&str]) -> String {
    let mut command = helm_offline();
    command
        .args(["template", "bad"])
        .arg(chart())
        .args(["--namespace", DEPLOY_NAMESPACE])
        .args(args);
    let output = run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "`{}` succeeded; expected the values to be refused.\nstdout:\n{}",
        describe(&command),
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

// ---------------------------------------------------------------------------------
// Looking into rendered objects
// ---------------------------------------------------------------------------------

fn kinds(documents: &[Value]) -> Vec<String> {
    documents
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap_or("?"), name(d)))
        .collect()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

fn all_of<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found = all_of(documents, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}; rendered: {:?}",
        kinds(documents)
    );
    found[0]
}

fn none_of(documents: &[Value], kind: &str) {
    assert!(
        all_of(documents, kind).is_empty(),
        "expected no {kind}; rendered: {:?}",
        kinds(documents)
    );
}

fn container(documents: &[Value]) -> &Value {
    let containers = &one(documents, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

/// The container's environment by name.
fn env(documents: &[Value]) -> BTreeMap<String, Value> {
    container(documents)["env"]
        .as_array()
        .expect("the container has env")
        .iter()
        .map(|e| (e["name"].as_str().expect("env name").to_owned(), e.clone()))
        .collect()
}

/// A plain `value:` of the environment, or None if absent (or from a reference).
fn env_value(documents: &[Value], key: &str) -> Option<String> {
    env(documents)
        .get(key)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// RBAC rules flattened to (apiGroup, resource[, resourceName]) -> verbs.
fn rules(role: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut flat: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let names = strings("resourceNames");
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                let mut keys = vec![];
                if names.is_empty() {
                    keys.push(format!("{group}/{resource}"));
                } else {
                    for n in &names {
                        keys.push(format!("{group}/{resource}[{n}]"));
                    }
                }
                for key in keys {
                    flat.entry(key).or_default().extend(strings("verbs"));
                }
            }
        }
    }
    flat
}

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

/// The rules the operator needs outside leader election.
fn operator_rules(certificate_driven: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut binding_verbs = vec!["get", "list", "watch", "patch"];
    if certificate_driven {
        binding_verbs.extend(["create", "delete"]);
    }
    let mut expected = BTreeMap::from([
        (
            "edgeone.operators.dev/edgeonecertificatebindings".to_owned(),
            verbs(&binding_verbs),
        ),
        (
            "edgeone.operators.dev/edgeonecertificatebindings/status".to_owned(),
            verbs(&["get", "patch"]),
        ),
        ("/secrets".to_owned(), verbs(&["get", "list", "watch"])),
        (
            "cert-manager.io/certificates".to_owned(),
            verbs(&["get", "list", "watch"]),
        ),
        (
            "events.k8s.io/events".to_owned(),
            verbs(&["create", "patch"]),
        ),
        ("/events".to_owned(), verbs(&["create", "patch"])),
    ]);
    if certificate_driven {
        expected.insert(
            "cert-manager.io/certificates/finalizers".to_owned(),
            verbs(&["update"]),
        );
    }
    expected
}

fn lease_rules(lease: &str) -> BTreeMap<String, BTreeSet<String>> {
    BTreeMap::from([
        ("coordination.k8s.io/leases".to_owned(), verbs(&["create"])),
        (
            format!("coordination.k8s.io/leases[{lease}]"),
            verbs(&["get", "update"]),
        ),
    ])
}

// ---------------------------------------------------------------------------------
// Files kept in sync
// ---------------------------------------------------------------------------------

#[test]
fn chart_crds_equal_the_top_level_crds() {
    let top = std::fs::read(repo_path(TOP_CRD)).expect("read crds/");
    let chart = std::fs::read(repo_path(CHART_CRD)).unwrap_or_else(|e| {
        panic!("cannot read {CHART_CRD}: {e}; run `make chart-crds` (or `make crds`)")
    });
    assert!(
        top == chart,
        "{CHART_CRD} differs from {TOP_CRD}; run `make crds` (or `make chart-crds`) and commit"
    );
    let entries: Vec<String> = std::fs::read_dir(repo_path("charts/edgeone-cert-operator/crds"))
        .expect("the chart's crds/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        vec!["edgeone.operators.dev_edgeonecertificatebindings.yaml"],
        "the chart's crds/ holds exactly the one CRD"
    );
}

#[test]
fn deploy_manifests_equal_a_fresh_rendering() {
    let out = tempfile::tempdir().expect("tempdir");
    let fresh = out.path().join("edgeone-cert-operator.yaml");
    let helm = testbed::tools_bin().expect("the pinned tools").join("helm");
    // The Makefile's own target, so the test renders exactly what the target does.
    run_ok(
        Command::new("make")
            .current_dir(REPO)
            .args(["--silent", "--no-print-directory", "deploy-manifests"])
            .arg(format!("HELM={}", helm.display()))
            .arg(format!("DEPLOY_FILE={}", fresh.display()))
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL"),
    );
    let fresh = std::fs::read_to_string(&fresh).expect("the fresh rendering");
    let committed = std::fs::read_to_string(repo_path(DEPLOY_FILE))
        .unwrap_or_else(|e| panic!("cannot read {DEPLOY_FILE}: {e}; run `make deploy-manifests`"));
    assert!(
        committed == fresh,
        "{DEPLOY_FILE} is not what the chart renders with its default values; run `make deploy-manifests` and commit"
    );
    let documents = parse_documents(&committed, DEPLOY_FILE);
    assert_eq!(
        documents[0]["kind"], "Namespace",
        "the Namespace comes first"
    );
    assert_eq!(name(&documents[0]), DEPLOY_NAMESPACE);
    assert_eq!(
        documents[1]["kind"], "CustomResourceDefinition",
        "then the CRD, before anything that could use it"
    );
    for document in &documents {
        let kind = document["kind"].as_str().unwrap_or("");
        let cluster_scoped = [
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
        ];
        if !cluster_scoped.contains(&kind) {
            assert_eq!(
                document["metadata"]["namespace"],
                DEPLOY_NAMESPACE,
                "{kind}/{} in {DEPLOY_NAMESPACE}",
                name(document)
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Lint and rendering
// ---------------------------------------------------------------------------------

#[test]
fn helm_lint_passes_with_default_and_custom_values() {
    let out = run_ok(helm_offline().args(["lint", "--strict"]).arg(chart()));
    assert!(out.contains("0 chart(s) failed"), "helm lint: {out}");
    let out = run_ok(
        helm_offline()
            .args(["lint", "--strict"])
            .arg(chart())
            .arg("--values")
            .arg(repo_path(CUSTOM_VALUES)),
    );
    assert!(out.contains("0 chart(s) failed"), "helm lint: {out}");
}

#[test]
fn default_rendering_is_a_hardened_leader_elected_cluster_wide_operator() {
    let documents = render_defaults();
    let deployment = one(&documents, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(&documents);

    // Image and command.
    assert_eq!(
        c["image"], "ghcr.io/edgeone-cert-operator/edgeone-cert-operator:0.1.0",
        "default tag = appVersion"
    );
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["args"], json!(["run"]));

    // Replicas and leader election.
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        env_value(&documents, "LEADER_ELECT").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(&documents, "LEADER_ELECTION_NAMESPACE").as_deref(),
        Some(DEPLOY_NAMESPACE)
    );
    assert_eq!(
        env_value(&documents, "LEADER_ELECTION_ID").as_deref(),
        Some("edgeone-cert-operator")
    );
    let environment = env(&documents);
    for (key, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert_eq!(
            environment[key]["valueFrom"]["fieldRef"]["fieldPath"], field,
            "{key} from the downward API"
        );
    }
    assert!(
        !environment.contains_key("WATCH_NAMESPACE"),
        "all namespaces by default"
    );

    // Security context.
    let security = &c["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["runAsGroup"], 65532);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    // Probes and the port.
    assert_eq!(c["ports"][0]["name"], "http-metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(
        env_value(&documents, "HEALTH_ADDR").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http-metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http-metrics");

    // Resources.
    assert_eq!(c["resources"]["requests"]["cpu"], "50m");
    assert_eq!(c["resources"]["requests"]["memory"], "64Mi");
    assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);

    // No default credentials: nothing refers to a Secret, none is created.
    none_of(&documents, "Secret");
    for key in [ENV_SECRET_ID, ENV_SECRET_KEY, ENV_TKE_ROLE_ARN] {
        assert!(!environment.contains_key(key), "no {key} by default");
    }

    // RBAC: a ClusterRole with exactly the operator's rules, the lease Role.
    let cluster_role = one(&documents, "ClusterRole");
    assert_eq!(rules(cluster_role), operator_rules(true));
    assert_eq!(
        rules(cluster_role)["/secrets"],
        verbs(&["get", "list", "watch"]),
        "secrets: read only"
    );
    let binding = one(&documents, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], name(cluster_role));
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "edgeone-cert-operator", "namespace": DEPLOY_NAMESPACE}])
    );
    let lease_role = one(&documents, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], DEPLOY_NAMESPACE);
    assert_eq!(rules(lease_role), lease_rules("edgeone-cert-operator"));
    assert_eq!(
        one(&documents, "RoleBinding")["roleRef"]["name"],
        name(lease_role)
    );

    // Metrics Service, PDB; no ServiceMonitor or NetworkPolicy unless asked for.
    let service = one(&documents, "Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http-metrics");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let pdb = one(&documents, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    none_of(&documents, "ServiceMonitor");
    none_of(&documents, "NetworkPolicy");
    let account = one(&documents, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], name(account));

    // Every object carries the standard labels.
    for document in &documents {
        assert_eq!(
            document["metadata"]["labels"]["app.kubernetes.io/instance"],
            "edgeone-cert-operator",
            "{} is labelled",
            name(document)
        );
    }
}

#[test]
fn custom_rendering_is_namespaced_with_tke_identity_and_extras() {
    let documents = render_custom();
    let deployment = one(&documents, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(&documents);
    assert_eq!(
        c["image"],
        "registry.example.com/platform/edgeone-cert-operator:0.1.0-rc.1"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );

    // One replica, leader election asked for: on; no PDB for one pod.
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        env_value(&documents, "LEADER_ELECT").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(&documents, "LEADER_ELECTION_ID").as_deref(),
        Some("eo-custom-lease")
    );
    assert_eq!(
        env_value(&documents, "LEADER_ELECTION_LEASE_DURATION").as_deref(),
        Some("30s")
    );
    none_of(&documents, "PodDisruptionBudget");

    // One namespace: a Role there, no ClusterRole, no create/delete of bindings.
    none_of(&documents, "ClusterRole");
    none_of(&documents, "ClusterRoleBinding");
    assert_eq!(
        env_value(&documents, "WATCH_NAMESPACE").as_deref(),
        Some("team-a")
    );
    let roles = all_of(&documents, "Role");
    let operator_role = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == "team-a")
        .expect("a Role in the watched namespace");
    assert_eq!(rules(operator_role), operator_rules(false));
    let lease_role = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == DEPLOY_NAMESPACE)
        .expect("the lease Role in the release namespace");
    assert_eq!(rules(lease_role), lease_rules("eo-custom-lease"));
    let role_binding = all_of(&documents, "RoleBinding")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == "team-a")
        .expect("a RoleBinding in the watched namespace");
    assert_eq!(role_binding["roleRef"]["kind"], "Role");
    assert_eq!(
        role_binding["subjects"][0]["namespace"], DEPLOY_NAMESPACE,
        "binds the release namespace's ServiceAccount"
    );
    assert_eq!(
        env_value(&documents, "EDGEONE_CERTIFICATE_DRIVEN_BINDINGS").as_deref(),
        Some("false")
    );

    // TKE pod identity: env, the projected token and the ServiceAccount annotations.
    assert_eq!(
        env_value(&documents, ENV_TKE_ROLE_ARN).as_deref(),
        Some("qcs::cam::uin/100000000001:roleName/edgeone-cert-operator")
    );
    assert_eq!(
        env_value(&documents, ENV_TKE_PROVIDER_ID).as_deref(),
        Some("cls-abcd1234")
    );
    assert_eq!(
        env_value(&documents, ENV_TKE_REGION).as_deref(),
        Some("ap-singapore")
    );
    let token_file = env_value(&documents, ENV_TKE_TOKEN_FILE).expect("the token file env");
    let mount = c["volumeMounts"]
        .as_array()
        .expect("volume mounts")
        .iter()
        .find(|m| token_file.starts_with(m["mountPath"].as_str().unwrap_or("-")))
        .expect("the token file is on a mounted volume");
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let projected = &volume["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(projected["audience"], "sts.cloud.tencent.com");
    assert_eq!(
        format!(
            "{}/{}",
            mount["mountPath"].as_str().unwrap(),
            projected["path"].as_str().unwrap()
        ),
        token_file
    );
    let account = one(&documents, "ServiceAccount");
    assert_eq!(
        account["metadata"]["annotations"]["tke.cloud.tencent.com/role-arn"],
        "qcs::cam::uin/100000000001:roleName/edgeone-cert-operator"
    );
    assert_eq!(
        account["metadata"]["annotations"]["example.com/owner"],
        "platform"
    );
    assert!(!env(&documents).contains_key(ENV_SECRET_ID));

    // Operator settings.
    for (key, value) in [
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info,edgeone_cert_operator=debug"),
        (
            "EDGEONE_TEO_ENDPOINT",
            "https://teo.intl.tencentcloudapi.com",
        ),
        ("EDGEONE_REGION", "ap-singapore"),
        ("EDGEONE_TEO_RATE_LIMIT", "5"),
        ("EDGEONE_DRIFT_INTERVAL", "30m"),
        ("EDGEONE_COALESCE_WINDOW", "0"),
        ("EDGEONE_MAX_HOSTS_PER_CALL", "50"),
        ("EDGEONE_SHARED_OBSERVATION", "false"),
        ("HTTPS_PROXY", "http://proxy.example.com:3128"),
    ] {
        assert_eq!(env_value(&documents, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(c["args"], json!(["run", "--allow-insecure-http"]));

    // Scheduling and pod metadata.
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread["labelSelector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"],
        "the spread selects the operator's pods by default"
    );
    let template = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template["labels"]["team"], "platform");
    assert_eq!(template["annotations"]["example.com/scrape"], "true");

    // ServiceMonitor and NetworkPolicy.
    let monitor = one(&documents, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let policy = one(&documents, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{
            "ports": [{"port": "http-metrics", "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        }]),
        "ingress only to the metrics port"
    );
    assert_eq!(policy["spec"]["egress"], json!([{}]), "all egress");
}

#[test]
fn certificate_driven_bindings_off_removes_create_and_delete() {
    let documents = render(
        "edgeone-cert-operator",
        &["--set", "certificateDrivenBindings=false"],
    );
    let flat = rules(one(&documents, "ClusterRole"));
    assert_eq!(flat, operator_rules(false));
    assert_eq!(
        flat["edgeone.operators.dev/edgeonecertificatebindings"],
        verbs(&["get", "list", "watch", "patch"])
    );
}

#[test]
fn one_replica_without_leader_election_has_no_lease_role_and_no_pdb() {
    let documents = render("edgeone-cert-operator", &["--set", "replicas=1"]);
    assert_eq!(env_value(&documents, "LEADER_ELECT"), None);
    none_of(&documents, "Role");
    none_of(&documents, "RoleBinding");
    none_of(&documents, "PodDisruptionBudget");
    one(&documents, "ClusterRole");
}

#[test]
fn credentials_modes_render_and_conflicts_fail() {
    // (a) an existing Secret.
    let documents = render(
        "edgeone-cert-operator",
        &["--set", "credentials.existingSecret=tencent-cloud"],
    );
    none_of(&documents, "Secret");
    let environment = env(&documents);
    for (key, secret_key, optional) in [
        (ENV_SECRET_ID, "secretId", false),
        (ENV_SECRET_KEY, "secretKey", false),
        (ENV_SESSION_TOKEN, "token", true),
    ] {
        let reference = &environment[key]["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "tencent-cloud", "{key}");
        assert_eq!(reference["key"], secret_key, "{key}");
        assert_eq!(
            reference["optional"].as_bool().unwrap_or(false),
            optional,
            "{key}"
        );
    }

    // (b) a Secret created from the values; a change rolls the pods.
    let documents = render(
        "edgeone-cert-operator",
        &[
            "--set",
            "credentials.secretId=AKIDexample",
            "--set",
            "credentials.secretKey=example-key",
        ],
    );
    let secret = one(&documents, "Secret");
    assert_eq!(secret["data"]["secretId"], "QUtJRGV4YW1wbGU=");
    assert_eq!(secret["data"]["secretKey"], "ZXhhbXBsZS1rZXk=");
    assert!(secret["data"].get("token").is_none());
    let environment = env(&documents);
    assert_eq!(
        environment[ENV_SECRET_ID]["valueFrom"]["secretKeyRef"]["name"],
        name(secret)
    );
    let checksum = |docs: &[Value]| {
        one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/credentials"]
            .as_str()
            .expect("a credentials checksum")
            .to_owned()
    };
    let rotated = render(
        "edgeone-cert-operator",
        &[
            "--set",
            "credentials.secretId=AKIDexample",
            "--set",
            "credentials.secretKey=rotated-key",
        ],
    );
    assert_ne!(checksum(&documents), checksum(&rotated));

    // (c) TKE pod identity is covered by the custom values test; here its conflicts.
    for (args, expected) in [
        (
            vec![
                "--set",
                "credentials.existingSecret=a",
                "--set",
                "credentials.secretId=b",
                "--set",
                "credentials.secretKey=c",
            ],
            "existingSecret and values are set",
        ),
        (
            vec![
                "--set",
                "credentials.existingSecret=a",
                "--set",
                "credentials.tkePodIdentity.enabled=true",
            ],
            "existingSecret and tkePodIdentity are set",
        ),
        (
            vec!["--set", "credentials.secretId=b"],
            "credentials.secretId and credentials.secretKey must both be set",
        ),
        (
            vec![
                "--set",
                "credentials.tkePodIdentity.enabled=true",
                "--set",
                "credentials.tkePodIdentity.roleArn=qcs::cam::uin/1:roleName/r",
                "--set",
                "credentials.tkePodIdentity.region=ap-guangzhou",
            ],
            "credentials.tkePodIdentity.enabled needs credentials.tkePodIdentity.providerId",
        ),
    ] {
        let stderr = render_fails(&args);
        assert!(
            stderr.contains(expected),
            "helm template {args:?}: expected an error saying {expected:?}; stderr:\n{stderr}"
        );
    }
}

#[test]
fn values_schema_rejects_bad_values_naming_the_field() {
    // (value flag, what the message must contain)
    let cases: &[(&[&str], &[&str])] = &[
        (&["--set", "replicas=-1"], &["/replicas", "minimum"]),
        (&["--set-string", "replicas=two"], &["/replicas", "integer"]),
        (
            &["--set", "logFormat=xml"],
            &["/logFormat", "'text', 'json'"],
        ),
        (
            &["--set", "edgeone.maxHostsPerCall=500"],
            &["/edgeone/maxHostsPerCall", "maximum"],
        ),
        (
            &["--set", "edgeone.maxHostsPerCall=0"],
            &["/edgeone/maxHostsPerCall", "minimum"],
        ),
        (
            &["--set", "edgeone.driftInterval=ten minutes"],
            &["/edgeone/driftInterval", "pattern"],
        ),
        (
            &["--set-string", "leaderElection.leaseDuration=15"],
            &["/leaderElection/leaseDuration", "pattern"],
        ),
        (
            &["--set", "edgeone.teoRateLimit=0"],
            &["/edgeone/teoRateLimit", "minimum"],
        ),
        (
            &["--set", "replicaCount=3"],
            &["'replicaCount' not allowed"],
        ),
        (
            &["--set", "edgeone.endpoint=https://x"],
            &["/edgeone", "'endpoint' not allowed"],
        ),
        (
            &["--set", "image.pullPolicy=Sometimes"],
            &["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"],
        ),
        (
            &["--set-string", "certificateDrivenBindings=yes"],
            &["/certificateDrivenBindings", "boolean"],
        ),
        (
            &["--set", "watchNamespace=Team_A"],
            &["/watchNamespace", "pattern"],
        ),
    ];
    for (args, expected) in cases {
        let stderr = render_fails(args);
        for needle in *expected {
            assert!(
                stderr.contains(needle),
                "helm template {args:?}: expected the schema error to contain {needle:?}; stderr:\n{stderr}"
            );
        }
    }
}

/// Every environment variable the chart sets is one the operator reads, and the
/// chart's defaults are the operator's defaults.
#[test]
fn chart_env_matches_the_operator_flags() {
    let help = run_ok(
        Command::new(env!("CARGO_BIN_EXE_edgeone-cert-operator"))
            .args(["run", "--help"])
            .env_clear(),
    );
    // "[env: NAME=] [default: VALUE]" per option.
    let mut operator: BTreeMap<String, Option<String>> = BTreeMap::new();
    for piece in help.split("[env: ").skip(1) {
        let key = piece.split('=').next().expect("env name").to_owned();
        let default = piece
            .split_once("] [default: ")
            .filter(|(before, _)| !before.contains('\n'))
            .and_then(|(_, after)| after.split(']').next())
            .map(str::to_owned);
        operator.insert(key, default);
    }
    assert!(operator.len() > 20, "parsed `run --help`: {operator:?}");
    let credentials = [
        ENV_SECRET_ID,
        ENV_SECRET_KEY,
        ENV_SESSION_TOKEN,
        ENV_TKE_ROLE_ARN,
        ENV_TKE_PROVIDER_ID,
        ENV_TKE_REGION,
        ENV_TKE_TOKEN_FILE,
    ];
    let other = ["POD_NAME", "POD_NAMESPACE"];
    let mut set_somewhere: BTreeSet<String> = BTreeSet::new();
    let renderings = [
        render_defaults(),
        render_custom(),
        render(
            "edgeone-cert-operator",
            &["--set", "credentials.existingSecret=tencent-cloud"],
        ),
    ];
    for documents in &renderings {
        for key in env(documents).keys() {
            set_somewhere.insert(key.clone());
            assert!(
                operator.contains_key(key)
                    || credentials.contains(&key.as_str())
                    || other.contains(&key.as_str())
                    || key == "HTTPS_PROXY",
                "the chart sets {key}, which the operator does not read; its variables: {:?}",
                operator.keys()
            );
        }
    }
    // Every setting of the operator is a value of the chart (except the two that
    // make no sense in a pod).
    for key in operator.keys() {
        if key == "KUBECONFIG" || key == "EDGEONE_ALLOW_INSECURE_HTTP" {
            continue;
        }
        assert!(
            set_somewhere.contains(key),
            "the operator reads {key} but no chart value sets it"
        );
    }
    for key in credentials {
        assert!(set_somewhere.contains(key), "no chart value sets {key}");
    }
    // The chart's defaults are the operator's.
    let defaults = &renderings[0];
    for (key, default) in &operator {
        let (Some(default), Some(chart)) = (default, env_value(defaults, key)) else {
            continue;
        };
        assert_eq!(
            &chart, default,
            "the chart's default for {key} differs from the operator's"
        );
    }
}

// ---------------------------------------------------------------------------------
// On the apiserver
// ---------------------------------------------------------------------------------

/// `helm get manifest` of a release, as a file for `kubectl get -f`.
fn release_manifest(
    cp: &testbed::ControlPlane,
    release: &str,
    namespace: &str,
) -> (String, PathBuf) {
    let manifest = run_ok(
        cp.helm()
            .args(["get", "manifest", release, "-n", namespace]),
    );
    let path = std::env::temp_dir().join(format!("helm-chart-{namespace}-{release}.yaml"));
    std::fs::write(&path, &manifest).expect("write the manifest");
    (manifest, path)
}

/// Names (`kind/name`) of the manifest's objects that exist on the apiserver.
fn existing_objects(cp: &testbed::ControlPlane, manifest: &Path) -> BTreeSet<String> {
    let out = run_ok(
        cp.kubectl()
            .args(["get", "--ignore-not-found", "-o", "json", "-f"])
            .arg(manifest),
    );
    if out.trim().is_empty() {
        return BTreeSet::new();
    }
    let list: Value = serde_json::from_str(&out).expect("kubectl get -o json");
    let items = match list["kind"].as_str() {
        Some("List") => list["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![list],
    };
    items
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or("?"), name(o)))
        .collect()
}

#[tokio::test]
async fn install_upgrade_and_uninstall_on_the_apiserver() {
    let cp = common::install_crd();
    let client = cp.kube_client().await.expect("kube client");
    let namespace = testbed::fresh_namespace(&client, "helm-lifecycle")
        .await
        .expect("namespace");
    let release = "lifecycle";

    // A bad value fails the install before anything is created.
    let out = run(cp.helm().args(["install", "refused"]).arg(chart()).args([
        "-n",
        &namespace,
        "--set",
        "logFormat=xml",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("/logFormat"),
        "helm install with logFormat=xml: expected a schema error naming /logFormat; stderr:\n{stderr}"
    );

    // Non-default values that need no extra CRDs: credentials from values, a
    // NetworkPolicy, one namespace.
    run_ok(cp.helm().args(["install", release]).arg(chart()).args([
        "-n",
        &namespace,
        "--set",
        "credentials.secretId=AKIDexample",
        "--set",
        "credentials.secretKey=example-key",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        &format!("watchNamespace={namespace}"),
    ]));
    let (manifest, manifest_path) = release_manifest(cp, release, &namespace);
    let rendered: BTreeSet<String> = kinds(&parse_documents(&manifest, "helm get manifest"))
        .into_iter()
        .collect();
    for expected in [
        "Deployment/lifecycle-edgeone-cert-operator",
        "ServiceAccount/lifecycle-edgeone-cert-operator",
        "Secret/lifecycle-edgeone-cert-operator-credentials",
        "Role/lifecycle-edgeone-cert-operator",
        "Role/lifecycle-edgeone-cert-operator-leader-election",
        "Service/lifecycle-edgeone-cert-operator-metrics",
        "PodDisruptionBudget/lifecycle-edgeone-cert-operator",
        "NetworkPolicy/lifecycle-edgeone-cert-operator",
    ] {
        assert!(
            rendered.contains(expected),
            "the release renders {expected}: {rendered:?}"
        );
    }
    let existing = existing_objects(cp, &manifest_path);
    assert_eq!(
        existing,
        rendered,
        "every object of the release exists on the apiserver (manifest: {})",
        manifest_path.display()
    );

    // Upgrade with a changed value.
    run_ok(cp.helm().args(["upgrade", release]).arg(chart()).args([
        "-n",
        &namespace,
        "--reuse-values",
        "--set",
        "edgeone.driftInterval=30m",
        "--set",
        "replicas=3",
    ]));
    let deployment: Value = serde_json::from_str(&run_ok(cp.kubectl().args([
        "get",
        "deployment",
        "lifecycle-edgeone-cert-operator",
        "-n",
        &namespace,
        "-o",
        "json",
    ])))
    .expect("deployment json");
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "the upgrade changed replicas"
    );
    let drift = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "EDGEONE_DRIFT_INTERVAL")
        .map(|e| e["value"].clone());
    assert_eq!(
        drift,
        Some(json!("30m")),
        "the upgrade changed the drift interval"
    );
    let status: Value = serde_json::from_str(&run_ok(
        cp.helm()
            .args(["status", release, "-n", &namespace, "-o", "json"]),
    ))
    .expect("helm status json");
    assert_eq!(status["version"], 2, "revision 2 after the upgrade");

    // Uninstall removes every object.
    run_ok(cp.helm().args(["uninstall", release, "-n", &namespace]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = existing_objects(cp, &manifest_path);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after helm uninstall these objects remain: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn deploy_manifests_apply_with_kubectl() {
    let cp = common::install_crd();
    let out = run_ok(cp.kubectl().args(["apply", "-f"]).arg(repo_path("deploy")));
    assert!(
        out.contains("deployment.apps/edgeone-cert-operator"),
        "kubectl apply -f deploy/ created the Deployment: {out}"
    );
    // Every object exists.
    let documents = parse_documents(
        &std::fs::read_to_string(repo_path(DEPLOY_FILE)).expect("deploy/"),
        DEPLOY_FILE,
    );
    let existing = existing_objects(cp, &repo_path(DEPLOY_FILE));
    assert_eq!(
        existing,
        kinds(&documents).into_iter().collect::<BTreeSet<_>>(),
        "every object of {DEPLOY_FILE} exists after kubectl apply"
    );
}

/// A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token.
fn service_account_kubeconfig(
    cp: &testbed::ControlPlane,
    namespace: &str,
    account: &str,
) -> String {
    let token = run_ok(cp.kubectl().args([
        "create",
        "token",
        account,
        "-n",
        namespace,
        "--duration",
        "1h",
    ]));
    let admin: Value = serde_saphyr::from_str(cp.kubeconfig_yaml()).expect("admin kubeconfig");
    let ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("the cluster CA in the admin kubeconfig");
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {account}
  user:
    token: {token}
contexts:
- name: {account}
  context:
    cluster: testbed
    user: {account}
    namespace: {namespace}
current-context: {account}
",
        server = cp.server_url(),
        token = token.trim(),
    )
}

async fn client_for(kubeconfig: &str) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("the SA kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a config from the SA kubeconfig");
    Client::try_from(config).expect("a client")
}

fn assert_forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => {
            panic!("{what}: expected 403 Forbidden for the chart's ServiceAccount, got {other:?}")
        }
    }
}

async fn wait_for<T>(what: &str, log: &Path, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + common::WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; operator log: {}\n{}",
            log.display(),
            testbed::process::log_tail(log)
        );
        tokio::time::sleep(common::POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_is_sufficient_for_the_operator_and_no_broader() {
    common::install_cert_manager_crds();
    let cp = testbed::shared();
    let admin = cp.kube_client().await.expect("kube client");
    let namespace = testbed::fresh_namespace(&admin, "helm-rbac")
        .await
        .expect("namespace");
    let release = "rbac";
    let account = "rbac-edgeone-cert-operator";
    // Defaults: all namespaces, leader election (two replicas), no credentials.
    run_ok(
        cp.helm()
            .args(["install", release])
            .arg(chart())
            .args(["-n", &namespace]),
    );
    let kubeconfig = service_account_kubeconfig(cp, &namespace, account);
    let kubeconfig_path =
        std::env::temp_dir().join(format!("helm-chart-{namespace}-sa.kubeconfig"));
    std::fs::write(&kubeconfig_path, &kubeconfig).expect("write the SA kubeconfig");

    // The operator with nothing but the ServiceAccount's token.
    let seed: Seed =
        serde_json::from_str(include_str!("../emulator/seeds/demo.json")).expect("seed");
    let mut state = State::from_seed(&seed).expect("state");
    state.settings.deploy_delay_ms = 300;
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), state)
        .await
        .expect("emulator");
    let url = emulator.url();
    let health_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let log = std::env::temp_dir().join(format!("edgeone-cert-operator-{namespace}-rbac.log"));
    let file = std::fs::File::create(&log).expect("operator log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeone-cert-operator"));
    command
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig_path)
        .args([
            "--health-addr",
            &health_addr,
            "--leader-elect",
            "--leader-election-namespace",
            &namespace,
            "--leader-election-id",
            account,
            "--deploy-poll",
            "300ms",
            "--log-level",
            "info,edgeone_cert_operator=debug",
            "--teo-endpoint",
            &url,
            "--ssl-endpoint",
            &url,
            "--sts-endpoint",
            &url,
        ])
        .env("TENCENTCLOUD_SECRET_ID", common::SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", common::SECRET_KEY)
        .env_remove("TENCENTCLOUD_SESSION_TOKEN")
        .env_remove("KUBECONFIG")
        .env_remove("WATCH_NAMESPACE")
        .env("POD_NAME", "rbac-operator-0")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    let child = testbed::process::spawn_bound_to_us(command).expect("start the operator");
    let _operator = common::Operator {
        child,
        log: log.clone(),
        health_addr,
    };

    // It takes the Lease (leases get/create/update in the release namespace).
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &namespace);
    wait_for("the operator to hold the Lease", &log, async || {
        let lease = leases.get_opt(account).await.ok()??;
        lease
            .spec?
            .holder_identity
            .filter(|h| h == "rbac-operator-0")
    })
    .await;

    // A binding becomes Ready (watch, finalizer patch, status patch, events, Secrets
    // watch, cert-manager Certificates list).
    let bindings: Api<EdgeOneCertificateBinding> = Api::namespaced(admin.clone(), &namespace);
    let binding = common::binding(
        "abc",
        json!({
            "zoneId": common::ZONE,
            "hosts": ["abc.test.com"],
            "mode": "sslcert",
            "serverCertificates": [{"certId": "cert-244ffgv7m17xw"}],
        }),
    );
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create the binding");
    wait_for("the binding to become Ready=True", &log, async || {
        let status = bindings.get("abc").await.ok()?.status?;
        (common::condition(&status, "Ready") == Some("True")).then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(admin.clone(), &namespace);
    wait_for("an event from the operator", &log, async || {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reporting_component.as_deref() == Some("edgeone-cert-operator"))
    })
    .await;

    // A certificate-driven binding: created by server-side apply, deleted when the
    // annotation goes (bindings create and delete).
    let certificate = format!(
        "apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
  namespace: {namespace}
  annotations:
    edgeone.operators.dev/zone-id: {zone}
spec:
  secretName: web-tls
  dnsNames: [www.test.com]
  issuerRef: {{name: example, kind: Issuer}}
",
        zone = common::ZONE
    );
    let certificate_path =
        std::env::temp_dir().join(format!("helm-chart-{namespace}-certificate.yaml"));
    std::fs::write(&certificate_path, certificate).expect("write the Certificate");
    run_ok(cp.kubectl().arg("apply").arg("-f").arg(&certificate_path));
    wait_for("the certificate-driven binding web", &log, async || {
        bindings.get_opt("web").await.ok()?
    })
    .await;
    run_ok(cp.kubectl().args([
        "annotate",
        "certificate",
        "web",
        "-n",
        &namespace,
        "edgeone.operators.dev/zone-id-",
    ]));
    wait_for(
        "the certificate-driven binding web to be deleted",
        &log,
        async || match bindings.get_opt("web").await {
            Ok(None) => Some(()),
            _ => None,
        },
    )
    .await;

    // Nothing the operator did was refused.
    let text = std::fs::read_to_string(&log).expect("operator log");
    assert!(
        !text.to_lowercase().contains("forbidden"),
        "the operator was refused something with the chart's RBAC; log: {}\n{}",
        log.display(),
        testbed::process::log_tail(&log)
    );

    // And the ServiceAccount can do nothing else.
    let sa = client_for(&kubeconfig).await;
    let secrets: Api<Secret> = Api::namespaced(sa.clone(), &namespace);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "planted"},
        "stringData": {"x": "y"},
    }))
    .expect("secret");
    assert_forbidden(
        secrets.create(&PostParams::default(), &secret).await,
        "creating a Secret",
    );
    Api::<Secret>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the admin creates a Secret");
    assert!(
        secrets.get("planted").await.is_ok(),
        "the ServiceAccount reads Secrets (it must)"
    );
    assert_forbidden(
        secrets.delete("planted", &DeleteParams::default()).await,
        "deleting a Secret",
    );
    assert_forbidden(
        Api::<Pod>::namespaced(sa.clone(), &namespace)
            .list(&ListParams::default())
            .await,
        "listing pods",
    );
    let cluster_roles: Api<ClusterRole> = Api::all(sa.clone());
    let mut own_role = Api::<ClusterRole>::all(admin.clone())
        .get(account)
        .await
        .expect("the chart's ClusterRole");
    own_role.rules.get_or_insert_with(Vec::new).push(
        serde_json::from_value(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}))
            .expect("rule"),
    );
    assert_forbidden(
        cluster_roles
            .replace(account, &PostParams::default(), &own_role)
            .await,
        "widening its own ClusterRole",
    );
    assert_forbidden(
        Api::<Lease>::namespaced(sa.clone(), "default")
            .get_opt("edgeone-cert-operator")
            .await,
        "reading a Lease outside the release namespace",
    );
    assert_forbidden(
        Api::<Lease>::namespaced(sa.clone(), &namespace)
            .get_opt("someone-elses-lease")
            .await,
        "reading another Lease in the release namespace",
    );
    run_ok(cp.helm().args(["uninstall", release, "-n", &namespace]));
}
