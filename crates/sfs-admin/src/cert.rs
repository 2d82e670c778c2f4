//! `cert init`: a local CA and a server certificate signed by it.
//!
//! The client verifies the server against `ca.pem` by default (docs/PROTOCOL.md
//! section 2), so the server certificate must name every address and name a client
//! may dial:
//! each `--san` becomes an IP address SAN if it parses as one, a DNS name otherwise.
//! Keys are ECDSA P-256, written with mode 0600; certificates are 0644.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use sfs_state::durable::write_atomic;
use sfs_state::time::format_timestamp;

/// Arguments of `cert init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// An address or name the server is reached at; repeat for each (every server
    /// address of a multi-homed setup).
    #[arg(long = "san", value_name = "ADDR_OR_NAME", required = true)]
    sans: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "certs", value_name = "DIR")]
    out: PathBuf,
    /// Years the certificates stay valid.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    years: u16,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// The files `cert init` writes, inside the output folder.
pub const FILES: [&str; 4] = ["ca.pem", "ca.key", "server.pem", "server.key"];

/// Creates the CA and the server certificate.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the folder {}", args.out.display()))?;
    if !args.force {
        for name in FILES {
            let path = args.out.join(name);
            if path.exists() {
                bail!("{} exists (use --force to replace it)", path.display());
            }
        }
    }
    let year = current_year();
    let not_before = date_time_ymd(year - 1, 1, 1);
    let not_after = date_time_ymd(year + i32::from(args.years), 12, 31);

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = distinguished_name("SFS local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA")?;

    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server_params = CertificateParams::new(args.sans.clone())
        .context("a --san is neither an IP address nor a valid DNS name")?;
    server_params.distinguished_name =
        distinguished_name(args.sans.first().map_or("sfs-server", String::as_str));
    server_params.is_ca = IsCa::ExplicitNoCa;
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    server_params.not_before = not_before;
    server_params.not_after = not_after;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    write(&args.out.join("ca.key"), issuer_key_pem(&issuer), 0o600)?;
    write(&args.out.join("ca.pem"), ca_pem, 0o644)?;
    write(
        &args.out.join("server.key"),
        server_key.serialize_pem(),
        0o600,
    )?;
    write(&args.out.join("server.pem"), server_cert.pem(), 0o644)?;
    println!(
        "wrote {} (CA) and {} (server, SANs: {})",
        args.out.join("ca.pem").display(),
        args.out.join("server.pem").display(),
        args.sans.join(", ")
    );
    println!(
        "clients verify the server with --ca {}",
        args.out.join("ca.pem").display()
    );
    Ok(())
}

fn issuer_key_pem(issuer: &Issuer<'_, KeyPair>) -> String {
    issuer.key().serialize_pem()
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "SFS");
    name
}

fn write(path: &Path, contents: String, mode: u32) -> anyhow::Result<()> {
    write_atomic(path, contents.as_bytes(), mode)
        .with_context(|| format!("writing {}", path.display()))
}

fn current_year() -> i32 {
    // "YYYY-..." from the audit module's RFC 3339 formatter.
    format_timestamp(SystemTime::now())
        .get(..4)
        .and_then(|year| year.parse().ok())
        .unwrap_or(2026)
}
