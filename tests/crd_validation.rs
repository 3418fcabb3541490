//! The CRD in crds/ on a real kube-apiserver, driven with kubectl the way users drive it:
//! it installs and becomes Established, the apiserver stores the schema we generate, good
//! bindings are accepted, bad ones are refused by `kubectl apply` with a message naming
//! the field and what to change, and `kubectl get eocb` shows the printer columns.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use edgeone_cert_operator::api::{CRD_FILE, crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use serde_json::{Value, json};

const CRD_NAME: &str = "edgeonecertificatebindings.edgeone.operators.dev";

/// Applies crds/ once per test binary with kubectl and waits until it is Established.
fn install_crd() -> &'static testbed::ControlPlane {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let control_plane = testbed::shared();
    let installed = INSTALLED.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_FILE);
        let apply = run(
            control_plane
                .kubectl()
                .arg("apply")
                .arg("--filename")
                .arg(&path),
            None,
        )
        .map_err(|e| format!("{e:#}"))?;
        if !apply.status.success() {
            return Err(format!(
                "kubectl apply -f {CRD_FILE} failed: {}",
                stderr(&apply)
            ));
        }
        let wait = run(
            control_plane.kubectl().args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("customresourcedefinition/{CRD_NAME}"),
            ]),
            None,
        )
        .map_err(|e| format!("{e:#}"))?;
        if !wait.status.success() {
            return Err(format!(
                "the CRD did not become Established: {}",
                stderr(&wait)
            ));
        }
        Ok(())
    });
    if let Err(error) = installed {
        panic!("{error}");
    }
    control_plane
}

fn run(command: &mut Command, stdin: Option<&str>) -> Result<Output> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("cannot run kubectl")?;
    let mut pipe = child.stdin.take().context("kubectl has no stdin")?;
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes())?;
    }
    drop(pipe);
    Ok(child.wait_with_output()?)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A binding manifest (JSON is YAML) with the given spec.
fn binding(namespace: &str, name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "edgeone.operators.dev/v1alpha1",
        "kind": "EdgeOneCertificateBinding",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    })
    .to_string()
}

/// `kubectl apply -f -` of one binding.
fn apply(control_plane: &testbed::ControlPlane, manifest: &str) -> Result<Output> {
    run(
        control_plane.kubectl().args(["apply", "--filename", "-"]),
        Some(manifest),
    )
}

/// The apiserver's note after a schema error (missing field, unknown enum value, list too
/// long): it skips the CEL rules of that object. Not a field error of its own.
const RULES_NOT_CHECKED: &str =
    "some validation rules were not checked because the object was invalid";

/// The individual field errors of a rejected object, as kubectl prints them: one per
/// `* ` line, or the single error after `is invalid: `; without [`RULES_NOT_CHECKED`].
fn field_errors(stderr: &str) -> Vec<String> {
    let Some((_, errors)) = stderr.split_once("is invalid: ") else {
        return vec![stderr.trim().to_owned()];
    };
    let bulleted: Vec<String> = errors
        .lines()
        .filter_map(|line| line.strip_prefix("* "))
        .filter(|error| !error.contains(RULES_NOT_CHECKED))
        .map(str::to_owned)
        .collect();
    if bulleted.is_empty() {
        vec![errors.trim().to_owned()]
    } else {
        bulleted
    }
}

/// A spec that is valid as it is; the invalid cases each break one thing.
fn valid_sslcert() -> Value {
    json!({
        "zoneId": "zone-2fgd17m17xw",
        "hosts": ["abc.test.com"],
        "mode": "sslcert",
        "serverCertificates": [{ "certId": "cert-244ffgv7m17xw" }],
    })
}

fn with(mut spec: Value, field: &str, value: Value) -> Value {
    spec[field] = value;
    spec
}

fn without(mut spec: Value, field: &str) -> Value {
    spec.as_object_mut()
        .expect("a spec is an object")
        .remove(field);
    spec
}

#[tokio::test]
async fn the_apiserver_stores_the_generated_schema() -> Result<()> {
    let control_plane = install_crd();
    let client = control_plane.kube_client().await?;
    let stored = Api::<CustomResourceDefinition>::all(client)
        .get(CRD_NAME)
        .await?;
    let generated = crd();
    // What kubectl read from the YAML file is what the Rust types generate.
    assert_eq!(
        serde_json::to_value(&stored.spec.versions)?,
        serde_json::to_value(&generated.spec.versions)?,
        "the stored CRD differs from the generated one; run `make crds`"
    );
    assert_eq!(stored.spec.names.short_names, Some(vec!["eocb".to_owned()]));
    assert_eq!(
        stored.spec.names.categories,
        Some(vec!["edgeone".to_owned()])
    );
    Ok(())
}

#[tokio::test]
async fn valid_bindings_are_accepted_and_listed_with_their_columns() -> Result<()> {
    let control_plane = install_crd();
    let client = control_plane.kube_client().await?;
    let namespace = testbed::fresh_namespace(&client, "crd-valid").await?;

    let valid = [
        ("sslcert-cert-id", valid_sslcert()),
        (
            "eofreecert",
            json!({
                "zoneId": "zone-2fgd17m17xw",
                "hosts": ["free.test.com", "*.wild.test.com"],
                "mode": "eofreecert",
            }),
        ),
        (
            "edge-mtls",
            json!({
                "zoneId": "zone-2fgd17m17xw",
                "hosts": ["mtls.test.com"],
                "mode": "sslcert",
                "serverCertificates": [{ "secretRef": { "name": "mtls-tls" } }],
                "clientAuthentication": {
                    "enabled": true,
                    "caCertificates": [
                        { "certId": "J2JqATrt" },
                        { "secretRef": { "name": "client-ca", "key": "ca.pem" } },
                    ],
                },
            }),
        ),
        (
            "everything",
            json!({
                "zoneId": "zone-2fgd17m17xw",
                "hosts": ["origin.test.com", "www.test.com"],
                "mode": "sslcert",
                "serverCertificates": [
                    { "certificateRef": { "name": "www" } },
                    { "certId": "cert-ecdsa1" },
                ],
                "clientAuthentication": { "enabled": false },
                "upstream": {
                    "mutualTLS": { "enabled": true, "certificates": [{ "secretRef": { "name": "origin-client" } }] },
                    "certificateVerify": { "mode": "custom_ca", "caCertificates": [{ "secretRef": { "name": "origin-ca" } }] },
                },
                "credentialsRef": { "name": "tencent-credentials" },
                "deletionPolicy": "Disable",
            }),
        ),
        (
            "eofreecert-manual",
            json!({
                "zoneId": "zone-2fgd17m17xw",
                "hosts": ["manual.test.com"],
                "mode": "eofreecert_manual",
                "upstream": { "certificateVerify": { "mode": "disable" } },
            }),
        ),
        (
            "disable",
            json!({ "zoneId": "zone-1", "hosts": ["off.test.com"], "mode": "disable" }),
        ),
        (
            // `null` means absent: pruned, so it does not count as a second source.
            "null-is-absent",
            with(
                valid_sslcert(),
                "serverCertificates",
                json!([{ "certId": "cert-1", "secretRef": null, "certificateRef": null }]),
            ),
        ),
    ];
    for (name, spec) in valid {
        let output = apply(control_plane, &binding(&namespace, name, spec))?;
        assert!(
            output.status.success(),
            "the valid binding {name} was refused: {}",
            stderr(&output)
        );
    }

    // Defaults are applied by the apiserver.
    let get = run(
        control_plane.kubectl().args([
            "get",
            "eocb",
            "eofreecert",
            "--namespace",
            &namespace,
            "--output",
            "jsonpath={.spec.deletionPolicy}",
        ]),
        None,
    )?;
    assert_eq!(stdout(&get), "Retain", "{}", stderr(&get));

    // The status subresource, and what `kubectl get` makes of it.
    let status = json!({ "status": {
        "observedGeneration": 1,
        "requestId": "5e0a2b4e-df6f-4c1c-b0c8-0d6d0a1b6b2c",
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Applied", "message": "EdgeOne matches the spec",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
        }],
    }});
    let patch = run(
        control_plane.kubectl().args([
            "patch",
            "eocb",
            "sslcert-cert-id",
            "--namespace",
            &namespace,
            "--subresource=status",
            "--type=merge",
            "--patch",
            &status.to_string(),
        ]),
        None,
    )?;
    assert!(patch.status.success(), "{}", stderr(&patch));

    let table = run(
        control_plane
            .kubectl()
            .args(["get", "eocb", "--namespace", &namespace]),
        None,
    )?;
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "ZONE", "HOSTS", "MODE", "AGE"],
        "{table}"
    );
    let row = table
        .lines()
        .find(|line| line.starts_with("sslcert-cert-id "))
        .unwrap_or_else(|| panic!("no row for sslcert-cert-id in\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        [
            "sslcert-cert-id",
            "True",
            "zone-2fgd17m17xw",
            r#"["abc.test.com"]"#,
            "sslcert"
        ],
        "{table}"
    );
    let free = table
        .lines()
        .find(|line| line.starts_with("eofreecert "))
        .unwrap_or_else(|| panic!("no row for eofreecert in\n{table}"));
    assert!(
        free.contains(r#"["free.test.com","*.wild.test.com"]"#) && free.contains(" eofreecert "),
        "{table}"
    );

    let wide = run(
        control_plane.kubectl().args([
            "get",
            "eocb",
            "sslcert-cert-id",
            "--namespace",
            &namespace,
            "--output",
            "wide",
        ]),
        None,
    )?;
    let wide = stdout(&wide);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "ZONE", "HOSTS", "MODE", "REQUESTID", "AGE"],
        "{wide}"
    );
    assert!(
        wide.contains(" 5e0a2b4e-df6f-4c1c-b0c8-0d6d0a1b6b2c "),
        "{wide}"
    );

    // The category and the full name find the same objects.
    let by_category = run(
        control_plane.kubectl().args([
            "get",
            "edgeone",
            "--namespace",
            &namespace,
            "--output",
            "name",
        ]),
        None,
    )?;
    assert_eq!(
        stdout(&by_category).lines().count(),
        7,
        "{}",
        stderr(&by_category)
    );
    Ok(())
}

/// One invalid binding and the field errors `kubectl apply` must print for it, each
/// identified by fragments that must all appear in one error line.
struct Invalid {
    name: &'static str,
    spec: Value,
    errors: &'static [&'static [&'static str]],
}

fn invalid_cases() -> Vec<Invalid> {
    let many_hosts: Vec<String> = (0..101).map(|i| format!("h{i}.test.com")).collect();
    let many_certs: Vec<Value> = (0..11)
        .map(|i| json!({ "certId": format!("cert-{i}") }))
        .collect();
    vec![
        Invalid {
            name: "zone-id-pattern",
            spec: with(valid_sslcert(), "zoneId", json!("2fgd17m17xw")),
            errors: &[&[
                r#"spec.zoneId: Invalid value: "2fgd17m17xw""#,
                "should match '^zone-[0-9a-z]+$'",
            ]],
        },
        Invalid {
            name: "zone-id-missing",
            spec: without(valid_sslcert(), "zoneId"),
            errors: &[&["spec.zoneId: Required value"]],
        },
        Invalid {
            name: "hosts-empty",
            spec: with(valid_sslcert(), "hosts", json!([])),
            errors: &[&[
                "spec.hosts: Invalid value: 0",
                "should have at least 1 items",
            ]],
        },
        Invalid {
            name: "hosts-too-many",
            spec: with(valid_sslcert(), "hosts", json!(many_hosts)),
            errors: &[&["spec.hosts: Too many: 101: must have at most 100 items"]],
        },
        Invalid {
            name: "host-uppercase",
            spec: with(
                valid_sslcert(),
                "hosts",
                json!(["ok.test.com", "WWW.test.com"]),
            ),
            errors: &[&[
                r#"spec.hosts[1]: Invalid value: "WWW.test.com""#,
                "should match",
            ]],
        },
        Invalid {
            name: "host-wildcard-inside",
            spec: with(valid_sslcert(), "hosts", json!(["www.*.test.com"])),
            errors: &[&[
                r#"spec.hosts[0]: Invalid value: "www.*.test.com""#,
                "should match",
            ]],
        },
        Invalid {
            name: "host-duplicate",
            spec: with(
                valid_sslcert(),
                "hosts",
                json!(["a.test.com", "a.test.com"]),
            ),
            errors: &[&[r#"spec.hosts[1]: Duplicate value: "a.test.com""#]],
        },
        Invalid {
            name: "mode-unknown",
            spec: with(valid_sslcert(), "mode", json!("ssl")),
            errors: &[&[
                r#"spec.mode: Unsupported value: "ssl": supported values: "sslcert", "eofreecert", "eofreecert_manual", "disable""#,
            ]],
        },
        Invalid {
            name: "sslcert-without-certificates",
            spec: without(valid_sslcert(), "serverCertificates"),
            errors: &[&[
                "spec.serverCertificates: Required value: serverCertificates is required when mode is sslcert",
            ]],
        },
        Invalid {
            name: "sslcert-with-empty-certificates",
            spec: with(valid_sslcert(), "serverCertificates", json!([])),
            errors: &[&[
                "spec.serverCertificates: Required value: serverCertificates is required when mode is sslcert",
            ]],
        },
        Invalid {
            name: "eofreecert-with-certificates",
            spec: with(valid_sslcert(), "mode", json!("eofreecert")),
            errors: &[&[
                "spec.serverCertificates: Forbidden: serverCertificates must be empty unless mode is sslcert",
            ]],
        },
        Invalid {
            name: "certificate-two-sources",
            spec: with(
                valid_sslcert(),
                "serverCertificates",
                json!([{ "certId": "cert-1", "secretRef": { "name": "tls" } }]),
            ),
            errors: &[&[
                "spec.serverCertificates[0]: Invalid value",
                "set exactly one of certId, secretRef or certificateRef",
            ]],
        },
        Invalid {
            name: "certificate-no-source",
            spec: with(
                valid_sslcert(),
                "serverCertificates",
                json!([{}, { "certId": "cert-1" }]),
            ),
            errors: &[&[
                "spec.serverCertificates[0]: Invalid value",
                "set exactly one of certId, secretRef or certificateRef",
            ]],
        },
        Invalid {
            name: "certificates-too-many",
            spec: with(valid_sslcert(), "serverCertificates", json!(many_certs)),
            errors: &[&["spec.serverCertificates: Too many: 11: must have at most 10 items"]],
        },
        Invalid {
            name: "secret-ref-empty-name",
            spec: with(
                valid_sslcert(),
                "serverCertificates",
                json!([{ "secretRef": { "name": "" } }]),
            ),
            errors: &[&[
                "spec.serverCertificates[0].secretRef.name: Required value: name must not be empty",
            ]],
        },
        Invalid {
            name: "client-auth-without-ca",
            spec: with(
                valid_sslcert(),
                "clientAuthentication",
                json!({ "enabled": true }),
            ),
            errors: &[&[
                "spec.clientAuthentication.caCertificates: Required value: caCertificates must list at least one CA certificate when enabled is true",
            ]],
        },
        Invalid {
            name: "ca-two-sources",
            spec: with(
                valid_sslcert(),
                "clientAuthentication",
                json!({ "enabled": true, "caCertificates": [{ "certId": "J2JqATrt", "secretRef": { "name": "ca" } }] }),
            ),
            errors: &[&[
                "spec.clientAuthentication.caCertificates[0]: Invalid value",
                "set exactly one of certId or secretRef",
            ]],
        },
        Invalid {
            name: "ca-secret-key-invalid",
            spec: with(
                valid_sslcert(),
                "clientAuthentication",
                json!({ "enabled": true, "caCertificates": [{ "secretRef": { "name": "ca", "key": "ca crt" } }] }),
            ),
            errors: &[&[
                r#"spec.clientAuthentication.caCertificates[0].secretRef.key: Invalid value: "ca crt""#,
                "should match",
            ]],
        },
        Invalid {
            name: "custom-ca-without-ca",
            spec: with(
                valid_sslcert(),
                "upstream",
                json!({ "certificateVerify": { "mode": "custom_ca" } }),
            ),
            errors: &[&[
                "spec.upstream.certificateVerify.caCertificates: Required value: caCertificates must list at least one CA certificate when mode is custom_ca",
            ]],
        },
        Invalid {
            name: "verify-disable-with-ca",
            spec: with(
                valid_sslcert(),
                "upstream",
                json!({ "certificateVerify": { "mode": "disable", "caCertificates": [{ "certId": "J2JqATrt" }] } }),
            ),
            errors: &[&[
                "spec.upstream.certificateVerify.caCertificates: Forbidden: caCertificates must be empty when mode is disable",
            ]],
        },
        Invalid {
            name: "verify-mode-unknown",
            spec: with(
                valid_sslcert(),
                "upstream",
                json!({ "certificateVerify": { "mode": "custom" } }),
            ),
            errors: &[&[
                r#"spec.upstream.certificateVerify.mode: Unsupported value: "custom": supported values: "disable", "custom_ca""#,
            ]],
        },
        Invalid {
            name: "upstream-mtls-without-certificate",
            spec: with(
                valid_sslcert(),
                "upstream",
                json!({ "mutualTLS": { "enabled": true } }),
            ),
            errors: &[&[
                "spec.upstream.mutualTLS.certificates: Required value: certificates must list at least one client certificate when enabled is true",
            ]],
        },
        Invalid {
            name: "upstream-empty",
            spec: with(valid_sslcert(), "upstream", json!({})),
            errors: &[&[
                "spec.upstream: Required value: upstream must set mutualTLS or certificateVerify",
            ]],
        },
        Invalid {
            name: "credentials-ref-empty-name",
            spec: with(valid_sslcert(), "credentialsRef", json!({ "name": "" })),
            errors: &[&[
                "spec.credentialsRef.name: Required value: name must not be empty: set it to the name of an object in this namespace",
            ]],
        },
        Invalid {
            name: "deletion-policy-unknown",
            spec: with(valid_sslcert(), "deletionPolicy", json!("Delete")),
            errors: &[&[
                r#"spec.deletionPolicy: Unsupported value: "Delete": supported values: "Retain", "Disable""#,
            ]],
        },
        Invalid {
            name: "several-mistakes",
            spec: json!({
                "zoneId": "zone-1",
                "hosts": ["a.test.com"],
                "mode": "sslcert",
                "clientAuthentication": { "enabled": true },
            }),
            errors: &[
                &[
                    "spec.serverCertificates: Required value: serverCertificates is required when mode is sslcert",
                ],
                &["spec.clientAuthentication.caCertificates: Required value"],
            ],
        },
    ]
}

#[tokio::test]
async fn invalid_bindings_are_refused_with_a_message_saying_what_to_fix() -> Result<()> {
    let control_plane = install_crd();
    let client = control_plane.kube_client().await?;
    let namespace = testbed::fresh_namespace(&client, "crd-invalid").await?;

    let mut failures = Vec::new();
    for case in invalid_cases() {
        let output = apply(control_plane, &binding(&namespace, case.name, case.spec))?;
        let message = stderr(&output);
        if output.status.success() {
            failures.push(format!("{}: accepted, but must be refused", case.name));
            continue;
        }
        let errors = field_errors(&message);
        for expected in case.errors {
            if !errors
                .iter()
                .any(|error| expected.iter().all(|fragment| error.contains(fragment)))
            {
                failures.push(format!(
                    "{}: no error contains all of {expected:?}; kubectl said:\n{message}",
                    case.name
                ));
            }
        }
        if errors.len() != case.errors.len() {
            failures.push(format!(
                "{}: {} errors instead of {}; kubectl said:\n{message}",
                case.name,
                errors.len(),
                case.errors.len()
            ));
        }
    }

    // Nothing was created.
    let listed = run(
        control_plane.kubectl().args([
            "get",
            "eocb",
            "--namespace",
            &namespace,
            "--output",
            "name",
        ]),
        None,
    )?;
    if !stdout(&listed).trim().is_empty() {
        failures.push(format!("objects were created: {}", stdout(&listed)));
    }
    if !failures.is_empty() {
        bail!(
            "{} problem(s):\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}

/// References name a Secret or Certificate of the binding's own namespace: there is no
/// field to name another one, and kubectl's strict field validation refuses one added.
#[tokio::test]
async fn references_cannot_name_another_namespace() -> Result<()> {
    let control_plane = install_crd();
    let client = control_plane.kube_client().await?;
    let namespace = testbed::fresh_namespace(&client, "crd-crossns").await?;
    let cases = [
        (
            "secret-ref",
            json!([{"secretRef": {"name": "tls", "namespace": "kube-system"}}]),
            "spec.serverCertificates[0].secretRef.namespace",
        ),
        (
            "certificate-ref",
            json!([{"certificateRef": {"name": "web", "namespace": "kube-system"}}]),
            "spec.serverCertificates[0].certificateRef.namespace",
        ),
    ];
    let mut failures = Vec::new();
    for (name, certificates, field) in cases {
        let spec = with(valid_sslcert(), "serverCertificates", certificates);
        let output = apply(control_plane, &binding(&namespace, name, spec))?;
        let message = stderr(&output);
        if output.status.success() || !message.contains(&format!("unknown field \"{field}\"")) {
            failures.push(format!(
                "{name}: expected `unknown field \"{field}\"`; kubectl said: {message}"
            ));
        }
    }
    let mut spec = valid_sslcert();
    spec["credentialsRef"] = json!({"name": "tencent", "namespace": "kube-system"});
    let output = apply(control_plane, &binding(&namespace, "credentials-ref", spec))?;
    let message = stderr(&output);
    if output.status.success()
        || !message.contains("unknown field \"spec.credentialsRef.namespace\"")
    {
        failures.push(format!(
            "credentials-ref: expected an unknown field error; kubectl said: {message}"
        ));
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}
