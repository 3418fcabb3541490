//! One reconcile of one binding: resolve → observe → plan → apply → status, and the
//! finalizer that runs the deletion policy. Every Tencent call goes through `TeoApi`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::conditions::{self, READY, SYNCED};
use crate::api::{
    CertificateStatus, DeletionPolicy, EdgeOneCertificateBinding, EdgeOneCertificateBindingStatus,
    HostStatus,
};
use crate::controller::certmanager;
use crate::controller::plan::{DesiredConfig, MutualTls, ObservedHost, OriginVerify, Plan, plan};
use crate::controller::resolve::{
    CertificateSecrets, SecretSource, Uploaded, certificate_refs, desired_config, normalized_hosts,
    secret_sources,
};
use crate::controller::sources;
use crate::controller::status::{
    Failure, Outcome, Timing, check_expiry, events, jittered, next_status, requeue_after,
};
use crate::controller::uploads::UploadCache;
use crate::metrics::{CertificateLabels, Metrics, ReadyLabels};
use crate::tencent::coalesce::ModifyCoalescer;
use crate::tencent::credentials::{CredentialProvider, Credentials};
use crate::tencent::error::CallError;
use crate::tencent::error::ErrorClass;
use crate::tencent::ssl::SslApi;
use crate::tencent::teo::{self, AccelerationDomain, TeoApi};
use crate::tencent::zones::ZoneObserver;

/// Removed only after the deletion policy ran.
pub const FINALIZER: &str = "edgeone.operators.dev/cleanup";

/// Errors that stop a reconcile before it reached a verdict (the Kubernetes API failed,
/// or a deletion could not be carried out yet). They are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    #[error("deletion policy Disable could not be applied yet: {0}")]
    Cleanup(String),
    #[error("binding has no namespace")]
    NoNamespace,
}

/// How the operator talks to EdgeOne: grouped Modify calls and shared zone listings,
/// or (for comparison, as a per-host client would) neither.
pub struct EdgeOne {
    pub teo: TeoApi,
    pub ssl: SslApi,
    /// Every `ModifyHostsCertificate` goes through it.
    pub modifier: Arc<ModifyCoalescer>,
    /// `None`: each binding reads its own hosts.
    pub zones: Option<ZoneObserver>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub teo: TeoApi,
    pub ssl: SslApi,
    modifier: Arc<ModifyCoalescer>,
    zones: Option<ZoneObserver>,
    uploads: UploadCache,
    /// Every binding the controller watches (set when it starts).
    bindings: OnceLock<Store<EdgeOneCertificateBinding>>,
    /// Used by bindings without `credentialsRef`.
    pub default_credentials: Option<Arc<dyn CredentialProvider>>,
    pub recorder: Recorder,
    pub timing: Timing,
    pub metrics: Arc<Metrics>,
    /// Consecutive retryable failures per binding, for exponential backoff.
    failures: Mutex<HashMap<(String, String), u32>>,
    /// Each binding's Ready status as last reconciled, for the `bindings` gauge.
    ready: Mutex<HashMap<(String, String), bool>>,
    /// (SecretId, namespace, Secret) whose uploads were looked for unrecorded ones.
    swept: Mutex<std::collections::HashSet<(String, String, String)>>,
}

impl Context {
    pub fn new(
        client: Client,
        edgeone: EdgeOne,
        default_credentials: Option<Arc<dyn CredentialProvider>>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        timing: Timing,
    ) -> Self {
        Self {
            client,
            teo: edgeone.teo,
            ssl: edgeone.ssl,
            modifier: edgeone.modifier,
            zones: edgeone.zones,
            uploads: UploadCache::default(),
            bindings: OnceLock::new(),
            default_credentials,
            recorder,
            timing,
            metrics,
            failures: Mutex::default(),
            ready: Mutex::default(),
            swept: Mutex::default(),
        }
    }

    /// Gives the reconciles the controller's view of every binding.
    pub fn set_bindings(&self, store: Store<EdgeOneCertificateBinding>) {
        let _ = self.bindings.set(store);
    }

    /// Applies a Modify (grouped with others) and marks the zone's listing stale for its
    /// hosts.
    async fn modify(
        &self,
        creds: &Credentials,
        request: teo::ModifyHostsCertificateRequest,
    ) -> Result<String, CallError> {
        let zone_id = request.zone_id.clone();
        let hosts = request.hosts.clone();
        let reply = self.modifier.modify(creds, request).await;
        if let Some(zones) = &self.zones {
            zones.modified(&creds.secret_id, &zone_id, &hosts);
        }
        reply
    }

    /// The hosts' domains: from the zone's shared listing, or read for this binding
    /// alone. `max_age` is how old a shared listing may be.
    async fn observe(
        &self,
        creds: &Credentials,
        zone_id: &str,
        hosts: &[String],
        max_age: Duration,
    ) -> Result<(Vec<AccelerationDomain>, String), CallError> {
        match &self.zones {
            Some(zones) => zones.observe(creds, zone_id, hosts, max_age).await,
            None => self.teo.describe_domains(creds, zone_id, hosts).await,
        }
    }

    /// Records a binding's Ready status (`None`: it is gone) and updates the gauge.
    fn record_ready(&self, key: (String, String), ready: Option<bool>) {
        let mut states = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        match ready {
            Some(ready) => states.insert(key, ready),
            None => states.remove(&key),
        };
        let ready_count = states.values().filter(|r| **r).count() as i64;
        let total = states.len() as i64;
        self.metrics
            .bindings
            .get_or_create(&ReadyLabels {
                ready: "true".into(),
            })
            .set(ready_count);
        self.metrics
            .bindings
            .get_or_create(&ReadyLabels {
                ready: "false".into(),
            })
            .set(total - ready_count);
    }

    fn count_failure(&self, key: (String, String), failed: bool) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failed {
            let count = failures.entry(key).or_insert(0);
            *count += 1;
            *count
        } else {
            failures.remove(&key);
            0
        }
    }
}

pub async fn reconcile(
    binding: Arc<EdgeOneCertificateBinding>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = binding.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<EdgeOneCertificateBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, binding, |event| async {
        match event {
            finalizer::Event::Apply(b) => apply(&b, &ctx, &api).await,
            finalizer::Event::Cleanup(b) => {
                // Forget its backoff state and metrics: the binding is going away.
                let key = (b.namespace().unwrap_or_default(), b.name_any());
                ctx.count_failure(key.clone(), false);
                ctx.record_ready(key, None);
                cleanup(&b, &ctx).await
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(
    binding: Arc<EdgeOneCertificateBinding>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(binding = %binding.name_any(), namespace = ?binding.namespace(), %error, "reconcile failed; retrying");
    Action::requeue(jittered(Duration::from_secs(5), rand::random()))
}

async fn apply(
    binding: &EdgeOneCertificateBinding,
    ctx: &Context,
    api: &Api<EdgeOneCertificateBinding>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let synced = sync(binding, ctx).await;
    let result = match &synced {
        Ok(Synced {
            outcome: Outcome::Applied { .. },
            ..
        }) => "applied",
        Ok(Synced {
            outcome: Outcome::InSync { .. },
            ..
        }) => "in_sync",
        Ok(Synced {
            outcome: Outcome::Failed(_),
            ..
        }) => "failed",
        Err(_) => "error",
    };
    ctx.metrics.observe_reconcile(result, started.elapsed());
    let Synced {
        outcome,
        hash,
        certificates,
        creds,
    } = synced?;
    let key = (binding.namespace().unwrap_or_default(), binding.name_any());
    let failures = ctx.count_failure(
        key,
        matches!(&outcome, Outcome::Failed(f) if f.is_retryable()),
    );
    let old = binding.status.clone().unwrap_or_default();
    let mut new = next_status(
        &old,
        &outcome,
        binding.metadata.generation,
        hash.as_deref(),
        jiff::Timestamp::now(),
    );
    if let Some(certificates) = certificates {
        // Uploads that the current certificates replaced are deleted once EdgeOne serves
        // the new ones.
        for replaced in old
            .certificates
            .iter()
            .filter(|c| c.source.starts_with("secret/"))
        {
            if !certificates.iter().any(|c| c.cert_id == replaced.cert_id)
                && !new.pending_deletion.contains(&replaced.cert_id)
            {
                new.pending_deletion.push(replaced.cert_id.clone());
            }
        }
        new.certificates = certificates;
    }
    let expiring = check_expiry(&mut new, ctx.timing.expiry_warning, jiff::Timestamp::now());
    let in_sync = matches!(outcome, Outcome::InSync { .. });
    // In sync, the sync got as far as resolving the credentials.
    if let (true, Some(creds)) = (in_sync, &creds) {
        for id in unrecorded_uploads(binding, ctx, creds, &new.certificates).await {
            if !new.pending_deletion.contains(&id) {
                new.pending_deletion.push(id);
            }
        }
        if !new.pending_deletion.is_empty() {
            new.pending_deletion =
                delete_replaced(binding, ctx, creds, &new.pending_deletion).await;
        }
    }
    for (warning, reason, note) in events(&old, &outcome).into_iter().chain(expiring) {
        publish(ctx, binding, warning, reason, note).await;
    }
    if new != old {
        ctx.metrics.status_patches.inc();
        api.patch_status(
            &binding.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status_patch(&old, &new)),
        )
        .await?;
    }
    let key = (binding.namespace().unwrap_or_default(), binding.name_any());
    ctx.record_ready(
        key.clone(),
        Some(conditions::is_true(&new.conditions, READY)),
    );
    for cert in &new.certificates {
        if let Some(not_after) = cert
            .not_after
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            let labels = CertificateLabels {
                namespace: key.0.clone(),
                binding: key.1.clone(),
                cert_id: cert.cert_id.clone(),
            };
            ctx.metrics
                .certificate_expiry
                .get_or_create(&labels)
                .set(not_after.as_second());
        }
    }
    tracing::info!(binding = %binding.name_any(), outcome = ?outcome, "reconciled");
    let mut wait = requeue_after(&outcome, failures, &ctx.timing);
    if in_sync && !new.pending_deletion.is_empty() {
        // A delete that could not be done yet is retried well before the drift check.
        wait = wait.min(ctx.timing.deploy_poll * 15);
    }
    Ok(Action::requeue(jittered(wait, rand::random())))
}

/// Deletes replaced uploads (unless the binding opts out) that no other binding lists;
/// returns those still to delete. A failure never blocks the binding. For a binding
/// being deleted, uploads another binding still uses are left to that binding.
async fn delete_replaced(
    binding: &EdgeOneCertificateBinding,
    ctx: &Context,
    creds: &Credentials,
    pending: &[String],
) -> Vec<String> {
    if binding.spec.cleanup_replaced_certificates == Some(false) {
        return Vec::new();
    }
    // The controller's cache, not a list call: it is what the operator is allowed to
    // see (one namespace or all), and it costs nothing.
    let Some(others) = ctx.bindings.get().map(Store::state) else {
        return pending.to_vec();
    };
    let mut remaining = Vec::new();
    for id in pending {
        let used_elsewhere = others.iter().any(|b| {
            (b.namespace(), b.name_any()) != (binding.namespace(), binding.name_any())
                // One going away with Disable will not serve it either.
                && !(b.metadata.deletion_timestamp.is_some()
                    && b.spec.deletion_policy == DeletionPolicy::Disable)
                && b.status
                    .iter()
                    .flat_map(|s| &s.certificates)
                    .any(|c| &c.cert_id == id)
        });
        if used_elsewhere {
            // The other binding deletes it once it no longer needs it; a binding that
            // is going away leaves that to it.
            if binding.metadata.deletion_timestamp.is_none() {
                remaining.push(id.clone());
            }
            continue;
        }
        let deleted = ctx
            .uploads
            .delete_once(&creds.secret_id, id, || async {
                match ctx.ssl.delete_certificate(creds, id).await {
                    Err(e) if e.code() != Some("FailedOperation.CertificateNotFound") => Err(e),
                    _ => Ok(()),
                }
            })
            .await;
        match deleted {
            Ok(true) => {
                publish(
                    ctx,
                    binding,
                    false,
                    "CertificateDeleted",
                    format!("deleted the upload {id}, which no binding serves any more"),
                )
                .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::info!(certificate = %id, error = %e, "replaced upload not deleted yet");
                remaining.push(id.clone());
            }
        }
    }
    remaining
}

/// Uploads of the binding's Secrets that no status records and that are not the ones
/// it serves now. A crash between an upload and the status write that records it,
/// followed by a renewal of the Secret, leaves such an upload behind; the alias every
/// upload carries finds it. Looked for once per process, account and Secret, when a
/// binding of the Secret is in sync. They are then deleted like replaced uploads: not
/// while another binding lists them, and EdgeOne refuses while a host serves them.
async fn unrecorded_uploads(
    binding: &EdgeOneCertificateBinding,
    ctx: &Context,
    creds: &Credentials,
    current: &[CertificateStatus],
) -> Vec<String> {
    let secrets: Vec<&str> = current
        .iter()
        .filter_map(|c| c.source.strip_prefix("secret/"))
        .collect();
    if secrets.is_empty() {
        return Vec::new();
    }
    let namespace = binding.namespace().unwrap_or_default();
    let mut found = Vec::new();
    for secret in secrets {
        let key = (
            creds.secret_id.clone(),
            namespace.clone(),
            secret.to_owned(),
        );
        if !ctx
            .swept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            continue;
        }
        let prefix = sources::upload_alias_prefix(&namespace, secret);
        match ctx.ssl.describe_certificates(creds, &prefix).await {
            Ok(listed) => found.extend(
                listed
                    .into_iter()
                    .filter(|c| c.alias.as_deref().is_some_and(|a| a.starts_with(&prefix)))
                    .filter(|c| !current.iter().any(|k| k.cert_id == c.certificate_id))
                    .map(|c| c.certificate_id),
            ),
            Err(e) => {
                // Looked for again at the binding's next in-sync reconcile.
                ctx.swept
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                tracing::info!(secret, error = %e, "cannot list the Secret's uploads yet");
            }
        }
    }
    if !found.is_empty() {
        tracing::info!(binding = %binding.name_any(), certificates = ?found, "found uploads no status recorded; deleting them once unused");
    }
    found
}

/// A merge patch from `old` to `new` status. Fields that `new` no longer has are sent
/// as `null`, which is how a merge patch removes them (serde skips empty fields).
fn status_patch(
    old: &EdgeOneCertificateBindingStatus,
    new: &EdgeOneCertificateBindingStatus,
) -> serde_json::Value {
    let mut status = serde_json::to_value(new).unwrap_or_default();
    if let (Some(fields), serde_json::Value::Object(old_fields)) = (
        status.as_object_mut(),
        serde_json::to_value(old).unwrap_or_default(),
    ) {
        for key in old_fields.keys() {
            fields.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({ "status": status })
}

async fn publish(
    ctx: &Context,
    binding: &EdgeOneCertificateBinding,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    // An event that cannot be written must not fail the reconcile it describes.
    if let Err(error) = ctx.recorder.publish(&event, &binding.object_ref(&())).await {
        tracing::warn!(%error, reason, "could not publish event");
    }
}

/// What one sync produced: its outcome, the spec's digest, and the certificates the
/// binding now uses and the credentials it resolved (when it got that far).
struct Synced {
    outcome: Outcome,
    hash: Option<String>,
    certificates: Option<Vec<CertificateStatus>>,
    creds: Option<Credentials>,
}

impl Synced {
    fn failed(failure: Failure, hash: Option<String>) -> Self {
        Synced {
            outcome: Outcome::Failed(failure),
            hash,
            certificates: None,
            creds: None,
        }
    }
}

/// Checks and uploads the binding's Secret-backed certificates.
async fn upload_sources(
    binding: &EdgeOneCertificateBinding,
    ctx: &Context,
    creds: &Credentials,
    sources: &[SecretSource],
    certificate_secrets: &CertificateSecrets,
    hosts: &[String],
) -> Result<Result<(Uploaded, Vec<CertificateStatus>), Failure>, Error> {
    let namespace = binding.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let checked = match sources::read_and_check(&secrets, &namespace, sources).await? {
        Ok(checked) => checked,
        Err(failure) => return Ok(Err(failure)),
    };
    // Host coverage can be checked locally when every server certificate's names are
    // known, i.e. all of them come from Secrets.
    let server_secrets: Option<Vec<&String>> = binding
        .spec
        .server_certificates
        .iter()
        .map(|s| match (&s.secret_ref, &s.certificate_ref) {
            (Some(secret), _) => Some(&secret.name),
            (_, Some(certificate)) => certificate_secrets.get(&certificate.name),
            _ => None,
        })
        .collect();
    if let Some(names) = server_secrets.filter(|n| !n.is_empty()) {
        let servers: Vec<_> = checked
            .iter()
            .filter(|c| {
                matches!(c.source, SecretSource::Server { .. })
                    && names.iter().any(|n| n.as_str() == c.source.name())
            })
            .map(|c| &c.leaf)
            .collect();
        let uncovered = sources::uncovered_hosts(hosts, &servers);
        if !uncovered.is_empty() {
            let covered: Vec<String> = servers.iter().flat_map(|c| c.names()).collect();
            return Ok(Err(Failure::CertificateInvalid(format!(
                "the server certificates cover {covered:?} but not the hosts {uncovered:?}; issue a certificate for them or remove them from spec.hosts"
            ))));
        }
    }
    let known: BTreeMap<String, String> = binding
        .status
        .iter()
        .flat_map(|s| &s.certificates)
        .filter_map(|c| c.fingerprint_sha256.clone().map(|f| (f, c.cert_id.clone())))
        .collect();
    Ok(
        sources::upload(&ctx.ssl, &ctx.uploads, creds, &namespace, &checked, &known)
            .await
            .map_err(|e| failure(&e)),
    )
}

/// Resolves, observes, plans and applies.
async fn sync(binding: &EdgeOneCertificateBinding, ctx: &Context) -> Result<Synced, Error> {
    let spec = &binding.spec;
    let hosts = normalized_hosts(&spec.hosts);
    // Validate the spec before anything is read or uploaded, with placeholder ids.
    let placeholder_secrets: CertificateSecrets = certificate_refs(spec)
        .into_iter()
        .map(|name| (name.clone(), format!("certificate:{name}")))
        .collect();
    let placeholders: Uploaded = secret_sources(spec, &placeholder_secrets)
        .into_iter()
        .map(|s| (s, String::new()))
        .collect();
    if let Err(e) = desired_config(spec, &placeholders, &placeholder_secrets) {
        return Ok(Synced::failed(Failure::InvalidSpec(e.to_string()), None));
    }
    let namespace = binding.namespace().unwrap_or_default();
    let certificate_names = certificate_refs(spec);
    let certificate_secrets = if certificate_names.is_empty() {
        CertificateSecrets::new()
    } else {
        let api = certmanager::certificates(ctx.client.clone(), &namespace);
        match certmanager::resolve(&api, &namespace, &certificate_names).await? {
            Ok(secrets) => secrets,
            Err(waiting) => return Ok(Synced::failed(waiting, None)),
        }
    };
    let sources = secret_sources(spec, &certificate_secrets);
    let creds = match credentials(binding, ctx).await? {
        Ok(creds) => creds,
        Err(failure) => return Ok(Synced::failed(failure, None)),
    };
    let (uploaded, mut certificates) = if sources.is_empty() {
        (Uploaded::new(), Vec::new())
    } else {
        match upload_sources(binding, ctx, &creds, &sources, &certificate_secrets, &hosts).await? {
            Ok(found) => found,
            Err(failure) => return Ok(Synced::failed(failure, None)),
        }
    };
    let desired = match desired_config(spec, &uploaded, &certificate_secrets) {
        Ok(desired) => desired,
        Err(e) => return Ok(Synced::failed(Failure::InvalidSpec(e.to_string()), None)),
    };
    let hash = desired.hash(&spec.zone_id, &hosts);
    let by_id: Vec<CertificateStatus> = desired
        .server_cert_ids
        .iter()
        .filter(|id| !certificates.iter().any(|c| &c.cert_id == *id))
        .map(|id| CertificateStatus {
            cert_id: id.clone(),
            source: "certId".into(),
            fingerprint_sha256: None,
            not_after: None,
            subject_names: vec![],
        })
        .collect();
    certificates.extend(by_id);
    let synced = |outcome| Synced {
        outcome,
        hash: Some(hash.clone()),
        certificates: Some(certificates.clone()),
        creds: Some(creds.clone()),
    };
    // A new generation is compared with a listing that started after this reconcile
    // (it must not be declared in sync on what EdgeOne said before). A healthy
    // binding's drift check may use one up to half a drift interval old (the zone's
    // other bindings read it too); one still deploying, one as recent as its poll.
    // Any Modify of the zone makes older listings stale.
    let max_age = match binding.status.as_ref() {
        Some(s) if s.observed_generation != binding.metadata.generation => Duration::ZERO,
        Some(s) if conditions::is_true(&s.conditions, READY) => ctx.timing.drift_interval / 2,
        Some(_) => ctx.timing.deploy_poll,
        None => Duration::ZERO,
    };
    let (domains, describe_id) = match ctx.observe(&creds, &spec.zone_id, &hosts, max_age).await {
        Ok(found) => found,
        Err(e) => return Ok(synced(Outcome::Failed(failure(&e)))),
    };
    let observed = observed_hosts(&domains);
    let outcome = match plan(&desired, &hosts, &observed) {
        Plan::Modify { hosts: differing } => {
            let request = modify_request(&spec.zone_id, &differing, &desired);
            match ctx.modify(&creds, request).await {
                Ok(request_id) => {
                    let old = binding.status.clone().unwrap_or_default();
                    let drift = old.applied_hash.as_deref() == Some(hash.as_str())
                        && old.observed_generation == binding.metadata.generation
                        && conditions::is_true(&old.conditions, SYNCED);
                    Outcome::Applied {
                        request_id,
                        hosts: differing,
                        drift,
                    }
                }
                Err(e) => Outcome::Failed(failure(&e)),
            }
        }
        Plan::InSync(deployment) => Outcome::InSync {
            request_id: describe_id,
            deployment,
            hosts: host_statuses(&hosts, &observed),
        },
    };
    Ok(synced(outcome))
}

fn failure(error: &CallError) -> Failure {
    // Errors that never reached the API carry a code of ours in the same place, so
    // `status.lastError.code` always says what kind of failure it was.
    Failure::Tencent {
        class: error.class(),
        code: error.kind_code().to_owned(),
        message: error
            .api_error()
            .map_or_else(|| error.to_string(), |e| e.message.clone()),
        request_id: error.request_id().map(str::to_owned),
    }
}

/// The binding's credentials: its `credentialsRef` Secret, or the operator's default.
async fn credentials(
    binding: &EdgeOneCertificateBinding,
    ctx: &Context,
) -> Result<Result<Credentials, Failure>, Error> {
    let namespace = binding.namespace().unwrap_or_default();
    let Some(reference) = &binding.spec.credentials_ref else {
        let Some(provider) = &ctx.default_credentials else {
            return Ok(Err(Failure::CredentialsMissing(
                "spec.credentialsRef is not set and the operator has no default credentials (TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY or TKE pod identity); set one of them".into(),
            )));
        };
        return Ok(match provider.credentials().await {
            Ok(creds) => Ok(creds),
            Err(e) => Err(Failure::Tencent {
                class: ErrorClass::Auth,
                code: "CredentialsUnavailable".into(),
                message: format!("the operator's default credentials are unavailable: {e}"),
                request_id: None,
            }),
        });
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(secret) = secrets.get_opt(&reference.name).await? else {
        return Ok(Err(Failure::CredentialsMissing(format!(
            "Secret {namespace}/{} named by spec.credentialsRef does not exist; create it with keys secretId and secretKey (optional token)",
            reference.name
        ))));
    };
    let data = secret.data.unwrap_or_default();
    let value = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Ok(match (value("secretId"), value("secretKey")) {
        (Some(id), Some(key)) => Ok(Credentials::new(id, key, value("token"))),
        _ => Err(Failure::CredentialsMissing(format!(
            "Secret {namespace}/{} must have non-empty keys secretId and secretKey (optional token)",
            reference.name
        ))),
    })
}

fn ids(infos: &Option<Vec<teo::CertificateInfo>>) -> Vec<String> {
    let mut ids: Vec<String> = infos.iter().flatten().map(|c| c.cert_id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

fn observed_mtls(m: Option<&teo::MutualTls>) -> MutualTls {
    m.map_or_else(MutualTls::default, |m| MutualTls {
        enabled: m.switch == "on",
        cert_ids: ids(&m.cert_infos),
    })
}

/// What EdgeOne reported, per lower-case host name.
fn observed_hosts(domains: &[AccelerationDomain]) -> BTreeMap<String, ObservedHost> {
    domains
        .iter()
        .map(|domain| {
            let cert = domain.certificate.as_ref();
            let upstream = cert.and_then(|c| c.upstream_cert_info.as_ref());
            let observed = ObservedHost {
                mode: cert.and_then(|c| c.mode.clone()),
                server_certs: cert
                    .and_then(|c| c.list.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|info| (info.cert_id.clone(), info.status.clone()))
                    .collect(),
                client_mtls: observed_mtls(cert.and_then(|c| c.client_cert_info.as_ref())),
                upstream_mtls: observed_mtls(upstream.and_then(|u| u.upstream_mutual_tls.as_ref())),
                origin_verify: upstream
                    .and_then(|u| u.upstream_certificate_verify.as_ref())
                    .map(|v| OriginVerify {
                        mode: v.verification_mode.clone(),
                        ca_ids: ids(&v.custom_ca_certs),
                    }),
            };
            (domain.domain_name.to_ascii_lowercase(), observed)
        })
        .collect()
}

fn host_statuses(hosts: &[String], observed: &BTreeMap<String, ObservedHost>) -> Vec<HostStatus> {
    hosts
        .iter()
        .map(|host| {
            let have = observed.get(host);
            let statuses: Vec<&str> = have
                .into_iter()
                .flat_map(|h| h.server_certs.iter().filter_map(|(_, s)| s.as_deref()))
                .collect();
            // The host's status is its least advanced certificate's.
            let status = ["failed", "issued", "applying", "processing", "deployed"]
                .into_iter()
                .find(|s| statuses.contains(s))
                .map(str::to_owned);
            HostStatus {
                host: host.clone(),
                mode: have.and_then(|h| h.mode.clone()),
                cert_ids: have
                    .map(|h| h.server_certs.iter().map(|(id, _)| id.clone()).collect())
                    .unwrap_or_default(),
                status,
            }
        })
        .collect()
}

fn cert_infos(ids: &[String]) -> Vec<teo::CertificateInfo> {
    ids.iter()
        .map(|id| teo::CertificateInfo {
            cert_id: id.clone(),
            ..Default::default()
        })
        .collect()
}

fn request_mtls(m: &MutualTls) -> teo::MutualTls {
    teo::MutualTls {
        switch: if m.enabled { "on" } else { "off" }.into(),
        cert_infos: m.enabled.then(|| cert_infos(&m.cert_ids)),
    }
}

/// The `ModifyHostsCertificate` request that gives `hosts` the desired configuration.
/// Parts the binding does not manage are left out, so EdgeOne keeps them.
pub fn modify_request(
    zone_id: &str,
    hosts: &[String],
    desired: &DesiredConfig,
) -> teo::ModifyHostsCertificateRequest {
    let upstream =
        (desired.upstream_mtls.is_some() || desired.origin_verify.is_some()).then(|| {
            teo::UpstreamCertInfo {
                upstream_mutual_tls: desired.upstream_mtls.as_ref().map(request_mtls),
                upstream_certificate_verify: desired.origin_verify.as_ref().map(|v| {
                    teo::OriginCertificateVerify {
                        verification_mode: v.mode.clone(),
                        custom_ca_certs: (v.mode == "custom_ca").then(|| cert_infos(&v.ca_ids)),
                    }
                }),
            }
        });
    teo::ModifyHostsCertificateRequest {
        zone_id: zone_id.to_owned(),
        hosts: hosts.to_vec(),
        mode: Some(desired.mode.clone()),
        server_cert_info: (desired.mode == "sslcert").then(|| {
            desired
                .server_cert_ids
                .iter()
                .map(|id| teo::CertId {
                    cert_id: id.clone(),
                })
                .collect()
        }),
        client_cert_info: desired.client_mtls.as_ref().map(request_mtls),
        upstream_cert_info: upstream,
    }
}

/// The deletion policy. `Retain` leaves EdgeOne as it is; `Disable` turns the hosts'
/// certificate configuration off first, giving up (with an event) on hosts or zones
/// that no longer exist.
async fn cleanup(binding: &EdgeOneCertificateBinding, ctx: &Context) -> Result<Action, Error> {
    if binding.spec.deletion_policy == DeletionPolicy::Retain {
        return Ok(Action::await_change());
    }
    let spec = &binding.spec;
    let creds = match credentials(binding, ctx).await? {
        Ok(creds) => creds,
        Err(failure) => {
            return Err(Error::Cleanup(format!(
                "{failure:?}; fix the credentials or set deletionPolicy: Retain"
            )));
        }
    };
    let hosts = normalized_hosts(&spec.hosts);
    let existing: Vec<String> = match ctx
        .teo
        .describe_domains(&creds, &spec.zone_id, &hosts)
        .await
    {
        Ok((domains, _)) => {
            let found = observed_hosts(&domains);
            hosts
                .iter()
                .filter(|h| found.contains_key(*h))
                .cloned()
                .collect()
        }
        Err(e) if e.code() == Some("ResourceUnavailable.ZoneNotFound") => Vec::new(),
        Err(e) => return Err(Error::Cleanup(e.to_string())),
    };
    let gone: Vec<&String> = hosts.iter().filter(|h| !existing.contains(h)).collect();
    if !gone.is_empty() {
        let note = format!(
            "zone {} has no host {:?} any more; nothing to disable there",
            spec.zone_id, gone
        );
        publish(ctx, binding, true, "CleanupSkipped", note).await;
    }
    if !existing.is_empty() {
        let desired = DesiredConfig {
            mode: "disable".into(),
            server_cert_ids: vec![],
            client_mtls: None,
            upstream_mtls: None,
            origin_verify: None,
        };
        let request = modify_request(&spec.zone_id, &existing, &desired);
        match ctx.modify(&creds, request).await {
            Ok(request_id) => {
                let note = format!(
                    "deletionPolicy Disable: certificates disabled on {} (RequestId {request_id})",
                    existing.join(", ")
                );
                publish(ctx, binding, false, "Disabled", note).await;
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some("ResourceUnavailable.HostNotFound" | "ResourceUnavailable.ZoneNotFound")
                ) =>
            {
                publish(
                    ctx,
                    binding,
                    true,
                    "CleanupSkipped",
                    format!("{e}; nothing to disable"),
                )
                .await;
            }
            Err(e) => {
                return Err(Error::Cleanup(format!(
                    "{e}; it is retried, or set deletionPolicy: Retain to delete without it"
                )));
            }
        }
    }
    // The hosts no longer serve this binding's uploads: delete them (unless another
    // binding uses them, or the binding opts out), so that nothing the operator
    // uploaded outlives the bindings that asked for it. With Retain the hosts still
    // serve them, and EdgeOne would refuse.
    let status = binding.status.clone().unwrap_or_default();
    let uploads: Vec<String> = status
        .certificates
        .iter()
        .filter(|c| c.source.starts_with("secret/"))
        .map(|c| c.cert_id.clone())
        .chain(status.pending_deletion.iter().cloned())
        .collect();
    let left = delete_replaced(binding, ctx, &creds, &uploads).await;
    if !left.is_empty() {
        return Err(Error::Cleanup(format!(
            "the uploaded certificates {left:?} could not be deleted yet; it is retried, or set cleanupReplacedCertificates: false to keep them"
        )));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patch_removes_cleared_fields() {
        let old = EdgeOneCertificateBindingStatus {
            last_error: Some(crate::api::LastError {
                code: "X".into(),
                message: "m".into(),
                request_id: None,
                time: "t".into(),
            }),
            request_id: Some("r1".into()),
            ..Default::default()
        };
        let new = EdgeOneCertificateBindingStatus {
            request_id: Some("r2".into()),
            ..Default::default()
        };
        assert_eq!(
            status_patch(&old, &new),
            serde_json::json!({"status": {"requestId": "r2", "lastError": null}})
        );
    }

    #[test]
    fn seed_document_requests() {
        let ssl = DesiredConfig {
            mode: "sslcert".into(),
            server_cert_ids: vec!["cert-244ffgv7m17xw".into()],
            client_mtls: None,
            upstream_mtls: None,
            origin_verify: None,
        };
        let body = serde_json::to_value(modify_request(
            "zone-2fgd17m17xw",
            &["abc.test.com".into()],
            &ssl,
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ZoneId": "zone-2fgd17m17xw", "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "cert-244ffgv7m17xw"}]})
        );

        let free = DesiredConfig {
            mode: "eofreecert".into(),
            server_cert_ids: vec![],
            ..ssl.clone()
        };
        let body = serde_json::to_value(modify_request(
            "zone-2fgd17m17xw",
            &["abc.test.com".into()],
            &free,
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ZoneId": "zone-2fgd17m17xw", "Hosts": ["abc.test.com"], "Mode": "eofreecert"})
        );

        let mtls = DesiredConfig {
            client_mtls: Some(MutualTls {
                enabled: true,
                cert_ids: vec!["J2JqATrt".into()],
            }),
            ..free
        };
        let body = serde_json::to_value(modify_request(
            "zone-2fgd17m17xw",
            &["abc.test.com".into()],
            &mtls,
        ))
        .unwrap();
        assert_eq!(
            body["ClientCertInfo"],
            serde_json::json!({"Switch": "on", "CertInfos": [{"CertId": "J2JqATrt"}]})
        );
    }

    #[test]
    fn observation_round_trips_through_the_plan() {
        let domain: AccelerationDomain = serde_json::from_value(serde_json::json!({
            "ZoneId": "zone-1", "DomainName": "ABC.test.com",
            "Certificate": {"Mode": "sslcert", "List": [{"CertId": "c1", "Status": "deployed"}],
                            "ClientCertInfo": {"Switch": "off", "CertInfos": null},
                            "UpstreamCertInfo": {"UpstreamMutualTLS": {"Switch": "off"}, "UpstreamCertificateVerify": {"VerificationMode": "disable"}}}
        }))
        .unwrap();
        let observed = observed_hosts(&[domain]);
        let desired = DesiredConfig {
            mode: "sslcert".into(),
            server_cert_ids: vec!["c1".into()],
            client_mtls: Some(MutualTls::default()),
            upstream_mtls: None,
            origin_verify: None,
        };
        assert_eq!(
            plan(&desired, &["abc.test.com".into()], &observed),
            Plan::InSync(crate::controller::plan::Deployment::Deployed)
        );
        let statuses = host_statuses(&["abc.test.com".into()], &observed);
        assert_eq!(statuses[0].status.as_deref(), Some("deployed"));
        assert_eq!(statuses[0].cert_ids, ["c1"]);
    }
}
