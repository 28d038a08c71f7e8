//! `modelseal push`, `pull` and `ls`: sealed archives in OCI registries, over the library's
//! `oci` module.

use std::path::PathBuf;

use clap::Args;
use modelseal::oci::{self, ClientOptions, Credentials, Reference};
use modelseal::open::{Decryption, OpenOutput};
use modelseal::{Error, Limits};

use crate::cli::{OptionalKey, TrustArgs};
use crate::render::esc;

/// How to reach the registry.
#[derive(Args)]
pub(crate) struct RegistryArgs {
    /// Speak plain HTTP to a registry off the loopback interface (loopback hosts always get
    /// plain HTTP; every other host gets HTTPS unless this is given).
    #[arg(long = "plain-http")]
    plain_http: bool,
}

impl RegistryArgs {
    /// The client options for `r`, with credentials from the Docker config file (DOCKER_CONFIG,
    /// else ~/.docker/config.json), if it has any for the registry.
    fn options(&self, r: &Reference) -> Result<ClientOptions, Error> {
        let credentials = match oci::auth::docker_config_path() {
            Some(p) => oci::auth::credentials_for(&p, &r.registry)?,
            None => Credentials::anonymous(),
        };
        Ok(ClientOptions {
            plain_http: self.plain_http,
            credentials,
        })
    }
}

/// `modelseal push`.
#[derive(Args)]
pub(crate) struct PushArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The sealed archive.
    archive: PathBuf,
    /// Where to publish it: [oci://]HOST[:PORT]/REPO:TAG.
    reference: String,
}

/// `modelseal pull`.
#[derive(Args)]
pub(crate) struct PullArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    key: OptionalKey,
    /// Where to write the archive (a file; with --open, a directory). Written only after every
    /// check of `verify` (or `open`) passed.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Open the archive into the directory -o names, with `open`'s checks (needs -i or
    /// --shared-key unless the archive is public).
    #[arg(long)]
    open: bool,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
    /// With --open: the allowed pickle globals, as `open --allow-globals` takes them.
    #[arg(
        long = "allow-globals",
        value_name = "@sklearn|@FILE|NAME|PKG.*[,...]",
        value_delimiter = ',',
        requires = "open"
    )]
    allow_globals: Option<Vec<String>>,
    /// What to pull: [oci://]HOST[:PORT]/REPO:TAG or REPO@sha256:HEX.
    reference: String,
}

/// `modelseal attach`.
#[derive(Args)]
pub(crate) struct AttachArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The referrer's artifactType (default: a modelseal detached signature's own type for one
    /// made by `sign --detached`, which pull collects; else a Sigstore bundle, as an OMS bundle
    /// is).
    #[arg(long = "artifact-type", value_name = "MEDIA_TYPE")]
    artifact_type: Option<String>,
    /// The archive to attach to: [oci://]HOST[:PORT]/REPO:TAG or REPO@sha256:HEX.
    reference: String,
    /// The file to attach (at most 4 MiB: an OMS bundle, a detached signature).
    file: PathBuf,
}

/// `modelseal ls`.
#[derive(Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The artifact: [oci://]HOST[:PORT]/REPO:TAG or REPO@sha256:HEX.
    reference: String,
}

pub(crate) fn push(a: PushArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let opts = a.registry.options(&r)?;
    let p = oci::push_file(&a.archive, &r, &opts, &Limits::default())?;
    outln!(
        "pushed {} ({} bytes{}) as {}@{}",
        esc(&a.archive.display().to_string()),
        p.layer.size,
        if p.uploaded {
            ""
        } else {
            ", blob already there"
        },
        r.registry.clone() + "/" + &r.repository,
        p.manifest_digest
    );
    Ok(())
}

pub(crate) fn pull(a: PullArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let opts = a.registry.options(&r)?;
    let policy = a.trust.load()?;
    let read = policy.options();
    if a.open {
        let k = a.key.load()?;
        let checks = crate::commands::model_checks(a.allow_globals, &[])?;
        let (opened, listing) = oci::pull_open(
            &r,
            Decryption::from(k.as_ref()),
            &a.output,
            OpenOutput { force: a.force },
            &read,
            &checks,
            &opts,
        )?;
        print_co_signatures(&listing.co_signatures);
        let h = opened.header.get();
        outln!(
            "pulled {}@{} and opened {} {} signed by {} into {}",
            esc(&r.repository),
            listing.manifest_digest,
            h.model_name,
            h.model_version,
            opened.header.signer(),
            esc(&a.output.display().to_string())
        );
    } else {
        let (report, listing) = oci::pull_file(&r, &a.output, a.force, &read, &opts)?;
        print_co_signatures(&listing.co_signatures);
        let h = report.header.get();
        outln!(
            "pulled {}@{}: verified {} {} signed by {}; written to {}",
            esc(&r.repository),
            listing.manifest_digest,
            h.model_name,
            h.model_version,
            report.header.signer(),
            esc(&a.output.display().to_string())
        );
    }
    Ok(())
}

/// The co-signatures a pull collected from referrers, when there were any.
fn print_co_signatures(c: &oci::signatures::CoSignatures) {
    for id in &c.added {
        outln!("co-signature by {id} collected from the registry");
    }
    for (id, why) in &c.skipped {
        outln!("co-signature by {id} not used: {}", why.describe());
    }
    if c.unusable > 0 {
        outln!(
            "{} attached signature(s) could not be fetched or read",
            c.unusable
        );
    }
}

pub(crate) fn attach(a: AttachArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let opts = a.registry.options(&r)?;
    let artifact_type = match a.artifact_type {
        Some(t) => t,
        None => oci::referrers::default_artifact_type(&a.file)?.to_owned(),
    };
    let d = oci::referrers::attach_file(&r, &a.file, &artifact_type, &opts)?;
    outln!(
        "attached {} to {} as {}@{d}",
        esc(&a.file.display().to_string()),
        esc(&r.to_string()),
        esc(&r.repository)
    );
    Ok(())
}

pub(crate) fn ls(a: LsArgs) -> Result<(), Error> {
    let r = Reference::parse(&a.reference)?;
    let opts = a.registry.options(&r)?;
    let l = oci::describe(&r, &opts)?;
    let refs = oci::referrers::referrers(&r, &opts)?;
    if a.json {
        let v = serde_json::json!({
            "verified": false,
            "manifest_digest": l.manifest_digest,
            "blob_digest": l.layer.digest,
            "size": l.layer.size,
            "annotations": l.annotations,
            "referrers": refs,
        });
        outln!("{v}");
        return Ok(());
    }
    outln!("UNVERIFIED: the registry's annotations, as pushed; `modelseal pull` checks the archive itself");
    outln!("manifest {}", l.manifest_digest);
    outln!("blob     {} ({} bytes)", l.layer.digest, l.layer.size);
    for (k, v) in &l.annotations {
        outln!("  {}: {}", esc(k), esc(v));
    }
    for d in &refs {
        outln!(
            "referrer {} {}",
            d.digest,
            esc(d.artifact_type.as_deref().unwrap_or("(no artifactType)"))
        );
    }
    Ok(())
}
