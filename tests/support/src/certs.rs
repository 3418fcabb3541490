//! The PKI of a throw-away control plane: one CA that signs the apiserver's serving
//! certificate and the admin's client certificate, plus the key pair that signs
//! service-account tokens. Everything is generated fresh per control plane, so no
//! secret ever lives in the repository.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Names the apiserver must answer to: loopback for us, the in-cluster names and the
/// first service IP for anything that would talk to it the way a pod does.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// PEM material held in memory (for the kubeconfig) and written to disk (for the
/// apiserver's flags).
pub struct Pki {
    pub ca_cert_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    pub files: PkiFiles,
}

/// Where [`Pki::generate`] wrote the files kube-apiserver reads.
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_public_key: PathBuf,
    pub service_account_private_key: PathBuf,
}

impl Pki {
    /// Generates the CA, the serving and admin certificates and the service-account
    /// key pair, and writes the files the apiserver needs into `cert_dir`.
    pub fn generate(cert_dir: &Path) -> Result<Pki> {
        fs::create_dir_all(cert_dir).with_context(|| {
            format!("creating the certificate directory {}", cert_dir.display())
        })?;

        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testbed-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the CA certificate")?;
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().context("generating the serving key")?;
        let serving_names: Vec<String> = SERVING_NAMES.iter().map(|s| s.to_string()).collect();
        let mut serving_params = CertificateParams::new(serving_names)
            .context("building the serving certificate's names")?;
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving_params
            .signed_by(&serving_key, &ca)
            .context("signing the serving certificate")?;

        // The apiserver maps the client certificate's CN to the user name and each O to
        // a group; system:masters is bound to cluster-admin by the RBAC bootstrap policy.
        let admin_key = KeyPair::generate().context("generating the admin client key")?;
        let mut admin_params = CertificateParams::new(Vec::<String>::new())?;
        admin_params
            .distinguished_name
            .push(DnType::CommonName, "admin");
        admin_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin_params
            .signed_by(&admin_key, &ca)
            .context("signing the admin client certificate")?;

        let sa_key = KeyPair::generate().context("generating the service-account key")?;

        let files = PkiFiles {
            ca_cert: cert_dir.join("ca.crt"),
            serving_cert: cert_dir.join("apiserver.crt"),
            serving_key: cert_dir.join("apiserver.key"),
            service_account_public_key: cert_dir.join("sa.pub"),
            service_account_private_key: cert_dir.join("sa.key"),
        };
        write_file(&files.ca_cert, &ca_cert.pem())?;
        write_file(&files.serving_cert, &serving_cert.pem())?;
        write_file(&files.serving_key, &serving_key.serialize_pem())?;
        write_file(&files.service_account_public_key, &sa_key.public_key_pem())?;
        write_file(&files.service_account_private_key, &sa_key.serialize_pem())?;

        Ok(Pki {
            ca_cert_pem: ca_cert.pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            files,
        })
    }
}

/// Writes a file readable only by its owner: some of these are private keys.
pub(crate) fn write_file(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
