//! Coalesced `ModifyHostsCertificate`: requests for the same account, zone and identical
//! certificate configuration that arrive within a short window go out as one call with
//! all their hosts, chunked at a maximum number of hosts per call.
//!
//! EdgeOne allows 20 Modify calls per second per account; a renewal wave or a cluster
//! restart that changes 1,000 hosts would take 50 s at one call per host. Grouped, the
//! cost follows the number of distinct configurations instead.
//!
//! When a grouped call fails for a reason that belongs to one request (a host that does
//! not exist, a certificate that does not cover a host), the others must not fail with
//! it: hosts the error message names are answered with the error and the rest is sent
//! again; an error that names no host is bisected until it is attributed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::credentials::Credentials;
use super::error::{CallError, ErrorClass};
use super::teo::{ModifyHostsCertificateRequest, TeoApi};

/// The largest `Hosts` list one call carries by default: a binding's own limit, so a
/// grouped call is never larger than a request a single binding may already make.
pub const DEFAULT_MAX_HOSTS_PER_CALL: usize = 100;

type Reply = Result<String, CallError>;
type SendFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
/// Sends one request (in production: [`TeoApi::modify_hosts_certificate`]).
pub type Sender =
    Arc<dyn Fn(Credentials, ModifyHostsCertificateRequest) -> SendFuture + Send + Sync>;

/// One caller's hosts (at most `max_hosts`) waiting for the group's call.
struct Waiter {
    hosts: Vec<String>,
    reply: oneshot::Sender<Reply>,
}

/// Requests that can share one call: same SecretId and the same request apart from hosts.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    secret_id: String,
    request: ModifyHostsCertificateRequest,
}

struct Group {
    creds: Credentials,
    waiters: Vec<Waiter>,
}

/// Groups Modify requests; cheap to share (`Arc`).
pub struct ModifyCoalescer {
    send: Sender,
    window: Duration,
    max_hosts: usize,
    open: Mutex<HashMap<GroupKey, Group>>,
}

impl ModifyCoalescer {
    /// `window` zero sends every request at once (still chunked); `max_hosts` 1 makes one
    /// call per host, as a per-host client would.
    pub fn new(teo: TeoApi, window: Duration, max_hosts: usize) -> Arc<Self> {
        let send: Sender = Arc::new(move |creds, request| {
            let teo = teo.clone();
            Box::pin(async move { teo.modify_hosts_certificate(&creds, &request).await })
        });
        Self::with_sender(send, window, max_hosts)
    }

    pub fn with_sender(send: Sender, window: Duration, max_hosts: usize) -> Arc<Self> {
        Arc::new(Self {
            send,
            window,
            max_hosts: max_hosts.max(1),
            open: Mutex::default(),
        })
    }

    /// Applies `request` (possibly together with others); returns the RequestId of the
    /// call that carried its hosts (the last one when they needed several).
    pub async fn modify(
        self: &Arc<Self>,
        creds: &Credentials,
        request: ModifyHostsCertificateRequest,
    ) -> Reply {
        let mut template = request;
        let hosts = std::mem::take(&mut template.hosts);
        let mut replies = Vec::new();
        for part in hosts.chunks(self.max_hosts) {
            let (reply, receiver) = oneshot::channel();
            let waiter = Waiter {
                hosts: part.to_vec(),
                reply,
            };
            if self.window.is_zero() {
                let this = Arc::clone(self);
                let (creds, template) = (creds.clone(), template.clone());
                tokio::spawn(async move { this.send_group(creds, template, vec![waiter]).await });
            } else {
                self.enqueue(creds, &template, waiter);
            }
            replies.push(receiver);
        }
        let mut request_id = Err(CallError::InvalidRequest {
            detail: "ModifyHostsCertificate needs at least one host".into(),
        });
        for receiver in replies {
            let reply = receiver.await.unwrap_or_else(|_| {
                Err(CallError::Network {
                    detail: "the grouped ModifyHostsCertificate call was abandoned".into(),
                })
            });
            request_id = Ok(reply?);
        }
        request_id
    }

    /// Adds the waiter to its open group; the first one opens the group and schedules
    /// its flush at the end of the window.
    fn enqueue(
        self: &Arc<Self>,
        creds: &Credentials,
        template: &ModifyHostsCertificateRequest,
        waiter: Waiter,
    ) {
        let key = GroupKey {
            secret_id: creds.secret_id.clone(),
            request: template.clone(),
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(group) = open.get_mut(&key) {
            // The newest credentials sign the call (a rotated key replaces the old one).
            group.creds = creds.clone();
            group.waiters.push(waiter);
            return;
        }
        open.insert(
            key.clone(),
            Group {
                creds: creds.clone(),
                waiters: vec![waiter],
            },
        );
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(this.window).await;
            let group = this
                .open
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            if let Some(group) = group {
                for chunk in pack(group.waiters, this.max_hosts) {
                    let this = Arc::clone(&this);
                    let (creds, template) = (group.creds.clone(), key.request.clone());
                    tokio::spawn(async move { this.send_group(creds, template, chunk).await });
                }
            }
        });
    }

    /// Sends one call for the waiters' hosts and answers each of them; attributes an
    /// error that belongs to some of them (see the module documentation).
    fn send_group(
        self: Arc<Self>,
        creds: Credentials,
        template: ModifyHostsCertificateRequest,
        waiters: Vec<Waiter>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut request = template.clone();
            request.hosts = union_of_hosts(&waiters);
            let reply = (self.send)(creds.clone(), request).await;
            let error = match reply {
                Err(error) if waiters.len() > 1 && error.class() == ErrorClass::Terminal => error,
                reply => {
                    for waiter in waiters {
                        let _ = waiter.reply.send(reply.clone());
                    }
                    return;
                }
            };
            let message = error.api_error().map_or("", |e| e.message.as_str());
            let (named, rest): (Vec<Waiter>, Vec<Waiter>) = waiters
                .into_iter()
                .partition(|w| w.hosts.iter().any(|h| names_host(message, h)));
            let (failed, retry) = if !named.is_empty() && !rest.is_empty() {
                (named, vec![rest])
            } else {
                // The error names no host (or every one): bisect.
                let mut all = named;
                all.extend(rest);
                let right = all.split_off(all.len() / 2);
                (Vec::new(), vec![all, right])
            };
            for waiter in failed {
                let _ = waiter.reply.send(Err(error.clone()));
            }
            for part in retry {
                Arc::clone(&self)
                    .send_group(creds.clone(), template.clone(), part)
                    .await;
            }
        })
    }
}

/// Packs waiters (each at most `max_hosts` hosts) into calls of at most `max_hosts`
/// hosts, in arrival order.
fn pack(waiters: Vec<Waiter>, max_hosts: usize) -> Vec<Vec<Waiter>> {
    let mut chunks: Vec<Vec<Waiter>> = Vec::new();
    let mut size = 0;
    for waiter in waiters {
        let n = waiter.hosts.len();
        match chunks.last_mut() {
            Some(chunk) if size + n <= max_hosts => {
                chunk.push(waiter);
                size += n;
            }
            _ => {
                chunks.push(vec![waiter]);
                size = n;
            }
        }
    }
    chunks
}

/// The waiters' hosts, each once (host names are case-insensitive).
fn union_of_hosts(waiters: &[Waiter]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for host in waiters.iter().flat_map(|w| &w.hosts) {
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            hosts.push(host.clone());
        }
    }
    hosts
}

/// Whether an error message names `host` as a whole name (not as part of a longer one:
/// `a.example.com` is not named by a message about `www.a.example.com`).
fn names_host(message: &str, host: &str) -> bool {
    let message = message.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*');
    message.match_indices(&host).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + host.len()..].chars().next();
        !before.is_some_and(part_of_name)
            && !after.is_some_and(|c| part_of_name(c) && c != '.')
            && !message[at + host.len()..]
                .strip_prefix('.')
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::ApiError;

    /// A fake API that records every call's hosts and fails calls containing `bad` hosts.
    fn recording(
        bad: &'static [&'static str],
        name_the_host: bool,
    ) -> (Sender, Arc<Mutex<Vec<Vec<String>>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let send: Sender = Arc::new(move |_creds, request: ModifyHostsCertificateRequest| {
            let seen = Arc::clone(&seen);
            Box::pin(async move {
                let n = {
                    let mut calls = seen.lock().unwrap();
                    calls.push(request.hosts.clone());
                    calls.len()
                };
                match request.hosts.iter().find(|h| bad.contains(&h.as_str())) {
                    Some(host) => Err(CallError::Api(ApiError {
                        code: "InvalidParameter.CertNotMatchDomain".into(),
                        message: if name_the_host {
                            format!("The certificate does not match the domain name `{host}`.")
                        } else {
                            "Invalid edge HTTPS certificate configuration.".into()
                        },
                        request_id: format!("req-{n}"),
                    })),
                    None => Ok(format!("req-{n}")),
                }
            })
        });
        (send, calls)
    }

    fn creds() -> Credentials {
        Credentials::new("AKIDtest", "key", None)
    }

    fn request(hosts: &[&str], cert: &str) -> ModifyHostsCertificateRequest {
        ModifyHostsCertificateRequest {
            zone_id: "zone-1".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            mode: Some("sslcert".into()),
            server_cert_info: Some(vec![super::super::teo::CertId::new(cert)]),
            ..Default::default()
        }
    }

    async fn run_all(
        coalescer: &Arc<ModifyCoalescer>,
        requests: Vec<ModifyHostsCertificateRequest>,
    ) -> Vec<Reply> {
        let creds = creds();
        futures::future::join_all(requests.into_iter().map(|r| coalescer.modify(&creds, r))).await
    }

    #[tokio::test(start_paused = true)]
    async fn requests_with_the_same_configuration_share_one_call() {
        let (send, calls) = recording(&[], true);
        let coalescer = ModifyCoalescer::with_sender(send, Duration::from_millis(200), 100);
        let replies = run_all(
            &coalescer,
            vec![
                request(&["a.com", "b.com"], "c1"),
                request(&["c.com"], "c1"),
                request(&["d.com"], "c2"),
            ],
        )
        .await;
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls.contains(&vec!["a.com".into(), "b.com".into(), "c.com".into()]));
        assert!(calls.contains(&vec!["d.com".to_string()]));
        // Both requests of the shared call carry its RequestId.
        assert_eq!(replies[0].as_ref().unwrap(), replies[1].as_ref().unwrap());
        assert_ne!(replies[0].as_ref().unwrap(), replies[2].as_ref().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_chunked_and_a_per_host_mode_makes_one_call_per_host() {
        let (send, calls) = recording(&[], true);
        let coalescer = ModifyCoalescer::with_sender(send, Duration::from_millis(200), 3);
        let replies = run_all(
            &coalescer,
            vec![
                request(&["a", "b"], "c"),
                request(&["c", "d"], "c"),
                request(&["e", "f", "g", "h"], "c"),
            ],
        )
        .await;
        assert!(replies.iter().all(Result::is_ok));
        let calls = calls.lock().unwrap().clone();
        assert!(calls.iter().all(|c| c.len() <= 3), "{calls:?}");
        let mut hosts: Vec<String> = calls.concat();
        hosts.sort();
        assert_eq!(hosts, ["a", "b", "c", "d", "e", "f", "g", "h"]);

        let (send, calls) = recording(&[], true);
        let per_host = ModifyCoalescer::with_sender(send, Duration::ZERO, 1);
        run_all(
            &per_host,
            vec![request(&["a", "b"], "c"), request(&["c"], "c")],
        )
        .await;
        assert_eq!(calls.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_naming_a_host_fails_only_its_request() {
        let (send, calls) = recording(&["bad.com"], true);
        let coalescer = ModifyCoalescer::with_sender(send, Duration::from_millis(200), 100);
        let replies = run_all(
            &coalescer,
            vec![
                request(&["a.com"], "c"),
                request(&["x.bad.com", "bad.com"], "c"),
                request(&["b.com"], "c"),
            ],
        )
        .await;
        assert!(replies[0].is_ok() && replies[2].is_ok(), "{replies:?}");
        let error = replies[1].as_ref().unwrap_err();
        assert_eq!(error.code(), Some("InvalidParameter.CertNotMatchDomain"));
        // One grouped call, then one for the others.
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[1], ["a.com", "b.com"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_naming_no_host_is_bisected_to_its_request() {
        let (send, calls) = recording(&["bad.com"], false);
        let coalescer = ModifyCoalescer::with_sender(send, Duration::from_millis(200), 100);
        let mut requests: Vec<_> = (0..8)
            .map(|i| request(&[&format!("h{i}.com")], "c"))
            .collect();
        requests[5] = request(&["bad.com"], "c");
        let replies = run_all(&coalescer, requests).await;
        for (i, reply) in replies.iter().enumerate() {
            assert_eq!(reply.is_err(), i == 5, "request {i}: {reply:?}");
        }
        // 1 + 2 + 2 + 2 calls: log2(8) levels of halves.
        assert_eq!(calls.lock().unwrap().len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_not_bisected() {
        let send: Sender = Arc::new(|_, _| {
            Box::pin(async {
                Err(CallError::Api(ApiError {
                    code: "InternalError".into(),
                    message: "busy".into(),
                    request_id: "r".into(),
                }))
            })
        });
        let coalescer = ModifyCoalescer::with_sender(send, Duration::from_millis(200), 100);
        let replies = run_all(&coalescer, vec![request(&["a"], "c"), request(&["b"], "c")]).await;
        assert!(
            replies
                .iter()
                .all(|r| r.as_ref().unwrap_err().code() == Some("InternalError"))
        );
    }

    #[test]
    fn names_host_matches_whole_names_only() {
        let message = "The certificate does not match the domain name `www.a.com`.";
        assert!(names_host(message, "www.a.com"));
        assert!(names_host(message, "WWW.A.com"));
        assert!(!names_host(message, "a.com"));
        assert!(!names_host(message, "ww.a.com"));
        assert!(!names_host("host www.a.com.cn is wrong", "www.a.com"));
        assert!(names_host("host www.a.com. is wrong", "www.a.com"));
        assert!(names_host("`*.a.com` does not exist", "*.a.com"));
    }
}
