//! Uploads shared between bindings: a certificate (by SHA-256 fingerprint) is uploaded
//! once per account however many bindings use it, and bindings that ask at the same
//! time wait for that one upload. A renewal of one Secret used by ten bindings costs one
//! `UploadCertificate`, not ten. Deletions are shared the same way: when ten bindings
//! let go of the certificate a renewal replaced, one `DeleteCertificate` goes out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::tencent::error::CallError;

/// (SecretId, SHA-256 fingerprint).
type UploadKey = (String, String);

/// (SecretId, fingerprint) → the certificate id the upload got.
#[derive(Default)]
pub struct UploadCache {
    ids: Mutex<HashMap<UploadKey, Arc<OnceCell<String>>>>,
    /// (SecretId, certificate id) → done once the certificate is deleted.
    deletions: Mutex<HashMap<UploadKey, Arc<OnceCell<()>>>>,
}

impl UploadCache {
    /// The id of the account's upload of the certificate, uploading it with `upload`
    /// unless this process already did (or is doing) so. A failed upload is not kept:
    /// the next caller tries again.
    pub async fn get_or_upload<F, Fut>(
        &self,
        secret_id: &str,
        fingerprint: &str,
        upload: F,
    ) -> Result<String, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, CallError>>,
    {
        let cell = Arc::clone(
            self.ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((secret_id.to_owned(), fingerprint.to_owned()))
                .or_default(),
        );
        cell.get_or_try_init(upload).await.cloned()
    }

    /// Deletes the account's certificate with `delete` unless this process already did
    /// (or is doing) so: concurrent callers wait for the one call, later callers are
    /// answered at once. Returns whether this caller's `delete` ran. A failed delete is
    /// not kept: the next caller tries again.
    pub async fn delete_once<F, Fut>(
        &self,
        secret_id: &str,
        cert_id: &str,
        delete: F,
    ) -> Result<bool, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), CallError>>,
    {
        let cell = Arc::clone(
            self.deletions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((secret_id.to_owned(), cert_id.to_owned()))
                .or_default(),
        );
        let mut ran = false;
        cell.get_or_try_init(|| {
            ran = true;
            delete()
        })
        .await?;
        if ran {
            self.forget(secret_id, cert_id);
        }
        Ok(ran)
    }

    /// Forgets a certificate that was deleted, so that it is uploaded again if needed.
    pub fn forget(&self, secret_id: &str, cert_id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(account, _), cell| {
                account != secret_id || cell.get().is_none_or(|id| id != cert_id)
            });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_upload_per_account_and_fingerprint() {
        let cache = UploadCache::default();
        let uploads = AtomicUsize::new(0);
        let upload = || async {
            let n = uploads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, CallError>(format!("cert-{n}"))
        };
        let ids =
            futures::future::join_all((0..10).map(|_| cache.get_or_upload("AKID1", "fp1", upload)))
                .await;
        assert!(
            ids.iter().all(|id| matches!(id.as_deref(), Ok("cert-0"))),
            "{ids:?}"
        );
        // Another account uploads its own copy.
        assert_eq!(
            cache.get_or_upload("AKID2", "fp1", upload).await.unwrap(),
            "cert-1"
        );
        cache.forget("AKID1", "cert-0");
        assert_eq!(
            cache.get_or_upload("AKID1", "fp1", upload).await.unwrap(),
            "cert-2"
        );
    }

    #[tokio::test]
    async fn concurrent_and_later_deletes_of_one_certificate_make_one_call() {
        let cache = UploadCache::default();
        let deletes = AtomicUsize::new(0);
        let delete = || async {
            deletes.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, CallError>(())
        };
        let ran = futures::future::join_all(
            (0..10).map(|_| cache.delete_once("AKID1", "cert-0", delete)),
        )
        .await;
        assert_eq!(deletes.load(Ordering::SeqCst), 1);
        assert_eq!(ran.iter().filter(|r| matches!(r, Ok(true))).count(), 1);
        assert!(matches!(
            cache.delete_once("AKID1", "cert-0", delete).await,
            Ok(false)
        ));
        // Another account's certificate of the same id is its own.
        assert!(matches!(
            cache.delete_once("AKID2", "cert-0", delete).await,
            Ok(true)
        ));
        assert_eq!(deletes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_delete_is_retried_by_the_next_caller() {
        let cache = UploadCache::default();
        let failed = cache
            .delete_once("A", "c", || async {
                Err(CallError::Network {
                    detail: "reset".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        assert!(matches!(
            cache.delete_once("A", "c", || async { Ok(()) }).await,
            Ok(true)
        ));
    }

    #[tokio::test]
    async fn a_failed_upload_is_retried_by_the_next_caller() {
        let cache = UploadCache::default();
        let failed = cache
            .get_or_upload("A", "fp", || async {
                Err(CallError::Network {
                    detail: "reset".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        let id = cache
            .get_or_upload("A", "fp", || async { Ok("cert-x".to_owned()) })
            .await;
        assert_eq!(id.unwrap(), "cert-x");
    }
}
