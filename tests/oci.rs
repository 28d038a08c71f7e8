//! `push` and `pull` against a real registry: the Debian `docker-registry` package (CNCF
//! distribution 2.8), started on 127.0.0.1 with a temporary storage directory and killed on
//! drop. Without the binary the tests skip with a reason, unless `CI` is set: then they fail.

mod cli_harness;
mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_harness::{assert_two_lines as assert_failure, Out};
use common::{World, CREATED};
use modelseal::error::{OciError, TrustError, VerifyError};
use modelseal::oci::{self, ClientOptions, Reference};
use modelseal::open::{Decryption, ModelChecks, OpenOutput, ReadOptions};
use modelseal::seal::{CompressionChoice, Recipient};
use modelseal::state::RollbackState;
use modelseal::{Error, Limits};

const BINARY: &str = "docker-registry";

fn find_binary() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(BINARY))
            .find(|c| c.is_file())
    })
}

/// A running registry; stopped (killed) on drop, its storage removed with the tempdir.
struct Registry {
    child: Child,
    storage: PathBuf,
    addr: String,
    _dir: tempfile::TempDir,
}

/// `ci` / `s3cret-pass` in the registry's htpasswd file (bcrypt, cost 5).
const HTPASSWD: &str = "ci:$2b$05$abcdefghijklmnopqrstuuV7fpPozvyqJfnY19y0802WTlXUm6Rjy\n";

impl Registry {
    fn start() -> Option<Registry> {
        Registry::start_with(None)
    }

    /// A registry that requires the basic credentials of `htpasswd` when given.
    fn start_with(htpasswd: Option<&str>) -> Option<Registry> {
        let Some(bin) = find_binary() else {
            if std::env::var_os("CI").is_some() {
                panic!("{BINARY} is not installed and CI is set: .ci/run installs it");
            }
            eprintln!("skipped: {BINARY} not installed (apt-get install docker-registry)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        for _ in 0..10 {
            // A free port: bind :0, read it, release it; retry if the registry loses the race.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            let auth = match htpasswd {
                Some(users) => {
                    let file = dir.path().join("htpasswd");
                    std::fs::write(&file, users).unwrap();
                    format!(
                        "auth:\n  htpasswd:\n    realm: modelseal-test\n    path: {}\n",
                        file.display()
                    )
                }
                None => String::new(),
            };
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                    storage.display()
                ),
            )
            .unwrap();
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: the port was taken; try another
                }
                let up = match ureq::get(&format!("http://{addr}/v2/")).call() {
                    Ok(r) => r.status().as_u16() == 200,
                    Err(ureq::Error::StatusCode(401)) => htpasswd.is_some(),
                    Err(_) => false,
                };
                if up {
                    return Some(Registry {
                        child,
                        storage,
                        addr,
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{BINARY} did not start");
    }

    fn reference(&self, repo_tag: &str) -> Reference {
        Reference::parse(&format!("{}/{repo_tag}", self.addr)).unwrap()
    }

    /// The stored file of a blob.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sealed(w: &World, version: (u64, u64, u64), out: &str) -> PathBuf {
    let input = w.write(
        &format!("{out}.in/model.bin"),
        &common::bytes(4096, version.1 as u8),
    );
    let reader = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&reader)], CompressionChoice::Auto);
    opts.version = semver::Version::new(version.0, version.1, version.2);
    w.seal_with(&[input], out, opts)
}

fn read_opts<'a>(
    trust: &'a modelseal::trust::TrustStore,
    state: Option<&'a RollbackState>,
) -> ReadOptions<'a> {
    ReadOptions {
        now: Some(CREATED + 10),
        state,
        ..ReadOptions::new(trust)
    }
}

fn client() -> ClientOptions {
    ClientOptions::default()
}

/// The directory pulls write into, empty at first.
fn pulls(w: &World) -> PathBuf {
    let d = w.path("pulls");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn push_then_pull_verifies_and_writes_the_same_bytes() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = reg.reference("models/iris:1.0.0");
    let pushed = oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    assert!(pushed.uploaded);
    // Pushing again finds the blob already there.
    assert!(
        !oci::push_file(&archive, &r, &client(), &Limits::default())
            .unwrap()
            .uploaded
    );

    let listing = oci::describe(&r, &client()).unwrap();
    assert_eq!(listing.manifest_digest, pushed.manifest_digest);
    assert_eq!(
        listing.annotations["org.opencontainers.image.title"],
        "iris-tree"
    );
    assert_eq!(
        listing.annotations["org.opencontainers.image.version"],
        "1.0.0"
    );
    assert_eq!(
        listing.annotations["vnd.modelseal.signer"],
        w.author.public().key_id().to_string()
    );

    let trust = w.trust();
    let state = RollbackState::at(w.path("state.json"));
    let out = pulls(&w).join("got.mseal");
    let (report, _) =
        oci::pull_file(&r, &out, false, &read_opts(&trust, Some(&state)), &client()).unwrap();
    assert_eq!(report.header.get().model_version, "1.0.0");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    assert_eq!(entries(&pulls(&w)), vec!["got.mseal"]);

    // By digest too, and an existing output is refused without force.
    let by_digest = Reference::parse(&format!(
        "{}/models/iris@{}",
        reg.addr, pushed.manifest_digest
    ))
    .unwrap();
    let e =
        oci::pull_file(&by_digest, &out, false, &read_opts(&trust, None), &client()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Usage(modelseal::error::UsageError::OutputExists { .. })
        ),
        "{e:?}"
    );
    oci::pull_file(&by_digest, &out, true, &read_opts(&trust, None), &client()).unwrap();

    // pull --open straight into a directory.
    let dir = pulls(&w).join("opened");
    let (opened, _) = oci::pull_open(
        &r,
        Decryption::Identity(&w.reader),
        &dir,
        OpenOutput::default(),
        &read_opts(&trust, None),
        &ModelChecks::default(),
        &client(),
    )
    .unwrap();
    assert_eq!(opened.header.get().model_name, "iris-tree");
    assert_eq!(
        std::fs::read(dir.join("model.bin")).unwrap(),
        common::bytes(4096, 0)
    );
    assert_eq!(entries(&pulls(&w)), vec!["got.mseal", "opened"]);
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_left() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = reg.reference("models/iris:1.0.0");
    let pushed = oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    // Flip one byte of the stored blob, same length.
    let blob = reg.blob_file(&pushed.layer.digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();

    let trust = w.trust();
    let dir = pulls(&w);
    let e = oci::pull_file(
        &r,
        &dir.join("got.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::DigestMismatch { .. })),
        "{e:?}"
    );
    assert!(e.is_refusal());
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
    let e = oci::pull_open(
        &r,
        Decryption::Identity(&w.reader),
        &dir.join("opened"),
        OpenOutput::default(),
        &read_opts(&trust, None),
        &ModelChecks::default(),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::DigestMismatch { .. })),
        "{e:?}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));

    // The CLI: exit 1, one error: line and one hint: line, nothing beside -o.
    let o = Command::new(env!("CARGO_BIN_EXE_modelseal"))
        .current_dir(w.dir.path())
        .env("XDG_STATE_HOME", w.path(".state"))
        .env("DOCKER_CONFIG", w.path(".docker"))
        .args(["pull", "-q", &r.to_string(), "-t"])
        .arg(write_pub(&w))
        .args(["-o", "pulls/got.mseal"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("error: archive blob: registry served bytes with digest"),
        "{stderr}"
    );
    assert!(lines[1].starts_with("hint: "), "{stderr}");
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
}

fn write_pub(w: &World) -> PathBuf {
    let p = w.path("author.pub");
    std::fs::write(&p, w.author.public().to_line() + "\n").unwrap();
    p
}

#[test]
fn a_wrong_signer_is_refused_and_nothing_is_left() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = reg.reference("models/iris:1.0.0");
    oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    let mut trust = modelseal::trust::TrustStore::new();
    trust.add(w.stranger.public());
    let dir = pulls(&w);
    let e = oci::pull_file(
        &r,
        &dir.join("got.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Verify(VerifyError::UntrustedSigner { .. })),
        "{e:?}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
}

#[test]
fn re_tagging_an_older_version_is_a_rollback_with_state() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let v1 = sealed(&w, (1, 0, 0), "v1.mseal");
    let v2 = sealed(&w, (2, 0, 0), "v2.mseal");
    let stable = reg.reference("models/iris:stable");
    let trust = w.trust();
    let state = RollbackState::at(w.path("state.json"));
    let dir = pulls(&w);
    oci::push_file(&v1, &stable, &client(), &Limits::default()).unwrap();
    oci::pull_file(
        &stable,
        &dir.join("a.mseal"),
        false,
        &read_opts(&trust, Some(&state)),
        &client(),
    )
    .unwrap();
    oci::push_file(&v2, &stable, &client(), &Limits::default()).unwrap();
    oci::pull_file(
        &stable,
        &dir.join("b.mseal"),
        false,
        &read_opts(&trust, Some(&state)),
        &client(),
    )
    .unwrap();
    // The older archive re-tagged as stable.
    oci::push_file(&v1, &stable, &client(), &Limits::default()).unwrap();
    let e = oci::pull_file(
        &stable,
        &dir.join("c.mseal"),
        false,
        &read_opts(&trust, Some(&state)),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Trust(TrustError::Rollback { .. })),
        "{e:?}"
    );
    assert_eq!(entries(&dir), vec!["a.mseal", "b.mseal"]);
    // Without state (--no-state) it is accepted.
    oci::pull_file(
        &stable,
        &dir.join("c.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap();
}

#[test]
fn another_artifact_type_not_found_and_unreachable_are_typed() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = reg.reference("models/iris:1.0.0");
    let pushed = oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    // A manifest of another artifact type over the same blobs.
    let mut m: serde_json::Value = serde_json::from_slice(
        &ureq::get(&format!(
            "http://{}/v2/models/iris/manifests/1.0.0",
            reg.addr
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap(),
    )
    .unwrap();
    m["artifactType"] = "application/vnd.example.other.v1".into();
    let resp = ureq::put(&format!(
        "http://{}/v2/models/iris/manifests/other",
        reg.addr
    ))
    .content_type("application/vnd.oci.image.manifest.v1+json")
    .send(serde_json::to_vec(&m).unwrap())
    .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let trust = w.trust();
    let dir = pulls(&w);
    let other = reg.reference("models/iris:other");
    let e = oci::pull_file(
        &other,
        &dir.join("x.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::WrongArtifactType { .. })),
        "{e:?}"
    );
    assert!(e.is_refusal());
    let e = oci::describe(&other, &client()).unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::WrongArtifactType { .. })),
        "{e:?}"
    );

    let missing = reg.reference("models/iris:9.9.9");
    let e = oci::pull_file(
        &missing,
        &dir.join("x.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Oci(OciError::NotFound { .. })), "{e:?}");
    assert!(!e.is_refusal());

    // A digest reference whose manifest is not what it names.
    let wrong = Reference::parse(&format!(
        "{}/models/iris@sha256:{}",
        reg.addr,
        "0".repeat(64)
    ))
    .unwrap();
    let e = oci::pull_file(
        &wrong,
        &dir.join("x.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Oci(OciError::NotFound { .. })), "{e:?}");
    let _ = pushed;

    // Nothing listens on port 1.
    let dead = Reference::parse("127.0.0.1:1/models/iris:1.0.0").unwrap();
    let e = oci::pull_file(
        &dead,
        &dir.join("x.mseal"),
        false,
        &read_opts(&trust, None),
        &client(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::Unreachable { .. })),
        "{e:?}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
}

/// The CLI in the world's directory, with a Docker config directory of its own.
fn cli(w: &World, args: &[&str]) -> Out {
    cli_harness::ms(w.dir.path())
        .env("DOCKER_CONFIG", w.path(".docker"))
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn cli_push_pull_ls_and_environment_errors_exit_2() {
    let w = World::new();
    let pubkey = write_pub(&w);
    let pubkey = pubkey.to_str().unwrap();
    std::fs::create_dir_all(w.path("pulls")).unwrap();
    // No registry listens on port 1: exit 2, the hint names --plain-http.
    let o = cli(
        &w,
        &[
            "pull",
            "127.0.0.1:1/models/iris:1.0.0",
            "-t",
            pubkey,
            "-o",
            "pulls/x.mseal",
        ],
    );
    assert_failure(&o, 2, "unreachable");
    assert!(o.stderr.contains("--plain-http"), "{}", o.stderr);
    let o = cli(
        &w,
        &[
            "pull",
            "127.0.0.1:1/Models/iris",
            "-t",
            pubkey,
            "-o",
            "pulls/x.mseal",
        ],
    );
    assert_failure(&o, 2, "invalid OCI reference");
    assert!(entries(&w.path("pulls")).is_empty());

    let Some(reg) = Registry::start() else { return };
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = format!("oci://{}/models/iris:1.0.0", reg.addr);
    let o = cli(&w, &["push", archive.to_str().unwrap(), &r]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("pushed "), "{}", o.stdout);
    let o = cli(&w, &["ls", &r]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("UNVERIFIED"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("org.opencontainers.image.title: iris-tree"),
        "{}",
        o.stdout
    );
    let o = cli(
        &w,
        &[
            "pull",
            "-q",
            &r,
            "-t",
            pubkey,
            "--no-state",
            "-o",
            "pulls/got.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        std::fs::read(w.path("pulls/got.mseal")).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    let sig = w.write("model.sig", b"{}");
    let o = cli(&w, &["attach", &r, sig.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("attached "), "{}", o.stdout);
    let o = cli(&w, &["ls", &r]);
    assert!(
        o.stdout.contains("referrer sha256:")
            && o.stdout
                .contains("application/vnd.dev.sigstore.bundle.v0.3+json"),
        "{}",
        o.stdout
    );
    let missing = format!("{}/models/iris:9.9.9", reg.addr);
    let o = cli(&w, &["pull", &missing, "-t", pubkey, "-o", "pulls/x.mseal"]);
    assert_failure(&o, 2, "not found");
    assert_eq!(entries(&w.path("pulls")), vec!["got.mseal"]);
}

#[test]
fn an_attached_bundle_is_found_through_the_fallback_tag() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let r = reg.reference("models/iris:1.0.0");
    let pushed = oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    assert!(oci::referrers::referrers(&r, &client()).unwrap().is_empty());
    let bundle = w.write(
        "model.sig",
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
    );
    let d =
        oci::referrers::attach_file(&r, &bundle, oci::referrers::SIGSTORE_BUNDLE_TYPE, &client())
            .unwrap();
    // Distribution 2.8 has no referrers API: the fallback tag sha256-HEX holds the index.
    let tag = pushed.manifest_digest.replace(':', "-");
    let idx: serde_json::Value = serde_json::from_slice(
        &ureq::get(&format!(
            "http://{}/v2/models/iris/manifests/{tag}",
            reg.addr
        ))
        .header("Accept", "application/vnd.oci.image.index.v1+json")
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(idx["manifests"][0]["digest"], d.as_str());
    // Attaching twice lists it once; a second attachment is added beside it.
    oci::referrers::attach_file(&r, &bundle, oci::referrers::SIGSTORE_BUNDLE_TYPE, &client())
        .unwrap();
    let other = w.write("other.sig", b"detached");
    oci::referrers::attach_file(
        &r,
        &other,
        "application/vnd.modelseal.signature.v1",
        &client(),
    )
    .unwrap();
    let refs = oci::referrers::referrers(&r, &client()).unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert_eq!(
        refs[0].artifact_type.as_deref(),
        Some(oci::referrers::SIGSTORE_BUNDLE_TYPE)
    );
    let got = oci::referrers::fetch_attachment(&r, &refs[0], &client()).unwrap();
    assert_eq!(got, std::fs::read(&bundle).unwrap());
    // The fallback tag is not an archive: pulling it is a typed refusal.
    let e = oci::describe(&reg.reference(&format!("models/iris:{tag}")), &client()).unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::BadManifest { .. })),
        "{e:?}"
    );
}

#[test]
fn a_detached_co_signature_attached_as_a_referrer_counts_for_k_of_n() {
    use modelseal::detached::{self, DetachedSignature, Skipped, DETACHED_SIGNATURE_TYPE};
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let bob = modelseal::keys::SecretKey::generate();
    let archive = sealed(&w, (1, 0, 0), "iris.mseal");
    let original = std::fs::read(&archive).unwrap();
    let r = reg.reference("models/iris:1.0.0");
    oci::push_file(&archive, &r, &client(), &Limits::default()).unwrap();
    let mut trust = w.trust();
    trust.add(bob.public());
    trust.require_signers(vec!["*".into()], 2);
    let dir = pulls(&w);
    let out = dir.join("got.mseal");
    // One signature: refused, nothing left.
    let e = oci::pull_file(&r, &out, false, &read_opts(&trust, None), &client()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Trust(TrustError::TooFewSignatures {
                required: 2,
                found: 1,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));

    // Hostile or useless referrers of the signature type first: garbage, a signature by a key
    // outside the trust store, one by a trusted key over another archive, and a forged one by
    // bob. None is added and none makes the pull fail by itself.
    let (_, good) = detached::sign_file(&archive, &bob, &Limits::default()).unwrap();
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        original,
        "signing detached changed the archive"
    );
    let stranger = detached::sign_file(&archive, &w.stranger, &Limits::default())
        .unwrap()
        .1;
    let other_archive = sealed(&w, (2, 0, 0), "other.mseal");
    let elsewhere = detached::sign_file(&other_archive, &bob, &Limits::default())
        .unwrap()
        .1;
    let mut forged = good.clone();
    forged.entry.signature[10] ^= 1;
    let attach = |name: &str, bytes: &[u8]| {
        let f = w.write(name, bytes);
        oci::referrers::attach_file(&r, &f, DETACHED_SIGNATURE_TYPE, &client()).unwrap();
    };
    attach("garbage.sig", b"MSEALSIG not really");
    attach("stranger.sig", &stranger.to_bytes());
    attach("elsewhere.sig", &elsewhere.to_bytes());
    attach("forged.sig", &forged.to_bytes());
    let e = oci::pull_file(&r, &out, false, &read_opts(&trust, None), &client()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Trust(TrustError::TooFewSignatures { found: 1, .. })
        ),
        "{e:?}"
    );
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));

    // Bob's real co-signature, written by the CLI and attached with the default artifact type.
    let sig = w.path("bob.sig");
    detached::write_file(&sig, &good, false).unwrap();
    assert_eq!(
        DetachedSignature::parse(&std::fs::read(&sig).unwrap()).unwrap(),
        good
    );
    assert_eq!(
        oci::referrers::default_artifact_type(&sig).unwrap(),
        DETACHED_SIGNATURE_TYPE
    );
    oci::referrers::attach_file(&r, &sig, DETACHED_SIGNATURE_TYPE, &client()).unwrap();
    let state = RollbackState::at(w.path("state.json"));
    let (report, listing) =
        oci::pull_file(&r, &out, false, &read_opts(&trust, Some(&state)), &client()).unwrap();
    assert_eq!(report.header.cosigners().len(), 1, "{:?}", report.header);
    let c = &listing.co_signatures;
    assert_eq!(c.added, vec![bob.public().key_id()]);
    assert_eq!(c.unusable, 1, "the garbage referrer");
    let why: Vec<Skipped> = c.skipped.iter().map(|(_, w)| *w).collect();
    assert_eq!(
        why,
        [
            Skipped::UntrustedKey,
            Skipped::OtherArchive,
            Skipped::BadSignature
        ]
    );
    // The written archive carries bob's signature and verifies on its own, 2-of-2.
    let got = std::fs::read(&out).unwrap();
    assert_ne!(got, original);
    let opts = read_opts(&trust, None);
    modelseal::open::verify_reader(got.as_slice(), &opts).unwrap();
    // Pulling again: bob's signature is already there, so nothing is added twice.
    std::fs::remove_file(&out).unwrap();
    let state2 = RollbackState::at(w.path("state2.json"));
    let (_, listing) = oci::pull_file(
        &r,
        &out,
        false,
        &read_opts(&trust, Some(&state2)),
        &client(),
    )
    .unwrap();
    assert_eq!(listing.co_signatures.added.len(), 1);
}

#[test]
fn cli_sign_detached_attach_and_pull_for_two_of_two() {
    let Some(reg) = Registry::start() else { return };
    let w = World::new();
    let d = w.dir.path();
    for k in ["alice", "bob"] {
        assert_eq!(cli(&w, &["keygen", "-o", k]).code, 0);
    }
    std::fs::write(d.join("model.bin"), b"weights").unwrap();
    let o = cli(
        &w,
        &[
            "seal",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "iris",
            "--model-version",
            "1.0.0",
            "-o",
            "iris.mseal",
            "model.bin",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let store = d.join("store");
    std::fs::create_dir(&store).unwrap();
    for k in ["alice", "bob"] {
        std::fs::copy(d.join(format!("{k}.pub")), store.join(format!("{k}.pub"))).unwrap();
    }
    std::fs::write(
        store.join("policy.toml"),
        "[[threshold]]\nmodels = [\"*\"]\nsigners = 2\n",
    )
    .unwrap();
    let r = format!("{}/models/iris:1.0.0", reg.addr);
    assert_eq!(cli(&w, &["push", "iris.mseal", &r]).code, 0);
    let o = cli(
        &w,
        &["pull", "-t", "store", "--no-state", "-o", "got.mseal", &r],
    );
    assert_failure(&o, 1, "needs 2 distinct trusted signers");
    assert!(!d.join("got.mseal").exists());
    let o = cli(
        &w,
        &[
            "sign",
            "--detached",
            "bob.sig",
            "-k",
            "bob.key",
            "iris.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    // The detached file is not replaced without --force.
    let sign = [
        "sign",
        "--detached",
        "bob.sig",
        "-k",
        "bob.key",
        "iris.mseal",
    ];
    assert_failure(&cli(&w, &sign), 1, "bob.sig: already exists");
    let o = cli(&w, &[&sign[..], &["--force"]].concat());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(cli(&w, &["attach", &r, "bob.sig"]).code, 0);
    let o = cli(
        &w,
        &["pull", "-t", "store", "--no-state", "-o", "got.mseal", &r],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("co-signature by"), "{}", o.stdout);
    let o = cli(&w, &["verify", "-t", "store", "--no-state", "got.mseal"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn basic_credentials_from_the_docker_config_file_reach_a_registry_that_requires_them() {
    let Some(reg) = Registry::start_with(Some(HTPASSWD)) else {
        return;
    };
    let w = World::new();
    sealed(&w, (1, 0, 0), "iris.mseal");
    let r = format!("{}/models/iris:1.0.0", reg.addr);
    // No credentials: 401, exit 2, one error line and one hint line, nothing pushed or pulled.
    let o = cli(&w, &["push", "iris.mseal", &r]);
    assert_failure(&o, 2, "401");
    let docker = w.path(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = |user_pass: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
        std::fs::write(
            docker.join("config.json"),
            format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.addr),
        )
        .unwrap();
    };
    config("ci:wrong");
    assert_failure(&cli(&w, &["push", "iris.mseal", &r]), 2, "401");
    config("ci:s3cret-pass");
    let o = cli(&w, &["push", "iris.mseal", &r]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stdout.contains("s3cret") && !o.stderr.contains("s3cret"));
    std::fs::write(w.path("author.pub"), w.author.public().to_line()).unwrap();
    let pull = [
        "pull",
        "-t",
        "author.pub",
        "--no-state",
        "-o",
        "got.mseal",
        &r,
    ];
    let o = cli(&w, &pull);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        std::fs::read(w.path("got.mseal")).unwrap(),
        std::fs::read(w.path("iris.mseal")).unwrap()
    );
    // The library's own loading of the file, and its refusal without it.
    let creds = oci::auth::credentials_for(&docker.join("config.json"), &reg.addr).unwrap();
    assert!(!creds.is_anonymous());
    assert!(!format!("{creds:?}").contains("s3cret"), "{creds:?}");
    let e = oci::describe(&reg.reference("models/iris:1.0.0"), &client()).unwrap_err();
    assert!(
        matches!(e, Error::Oci(OciError::Unauthorized { .. })),
        "{e:?}"
    );
    let with = ClientOptions {
        credentials: creds,
        ..client()
    };
    oci::describe(&reg.reference("models/iris:1.0.0"), &with).unwrap();
}
