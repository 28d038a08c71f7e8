//! PKCS#11 token keys (issue 15 §1, keys/README.md) on a real SoftHSM2 token, no mocks: each
//! test makes its own token in a temporary directory with its own `SOFTHSM2_CONF`. keygen on the
//! token, seal with the token key and verify with its signing-only `.pub`, `pubkey` export,
//! `sign --add` with a second token key for a 2-of-2 policy, and every refusal with its exact
//! error, one `error:` line, one `hint:` line and no output left behind.
//!
//! Without SoftHSM2 the tests skip with a printed reason, unless `CI` is set: then they fail.

use std::path::{Path, PathBuf};

mod cli_harness;
use cli_harness::Out;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "123456";

fn available() -> bool {
    let ok = Path::new(MODULE).is_file()
        && std::process::Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "SoftHSM2 ({MODULE}, softhsm2-util) is missing and CI is set: install softhsm2"
        );
        eprintln!("skipped: SoftHSM2 ({MODULE}, softhsm2-util) is not installed");
    }
    ok
}

/// A fresh SoftHSM2 token in a temporary directory.
struct Hsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pin: PathBuf,
    label: String,
}

fn secret_file(p: &Path, body: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, body).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Hsm {
    fn new(label: &str) -> Hsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let o = std::process::Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                "654321",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let pin = dir.path().join("pin");
        secret_file(&pin, &format!("{PIN}\n"), 0o600);
        Hsm {
            dir,
            conf,
            pin,
            label: label.into(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={MODULE}&pin-source=file:{}",
            self.label,
            self.pin.display()
        )
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_env(&[], args)
    }

    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut c = cli_harness::ms(self.path());
        c.env_remove("MODELSEAL_PKCS11_MODULE")
            .env_remove("MODELSEAL_PKCS11_PIN_FILE")
            .env_remove("MODELSEAL_SIGNING_KEY_FILE")
            .env("SOFTHSM2_CONF", &self.conf);
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args)
            .write_stdin(Vec::new())
            .output()
            .unwrap()
            .into()
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        o
    }

    /// A model file and a file-key recipient.
    fn model(&self) {
        std::fs::write(self.path().join("w.bin"), b"weights").unwrap();
        self.ok(&["keygen", "-o", "bob"]);
    }

    fn seal(&self, key: &str, out: &str) -> Out {
        self.run(&[
            "seal",
            "-k",
            key,
            "-r",
            "bob.pub",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            out,
            "w.bin",
        ])
    }
}

/// Exactly one `error:` line containing `error`, one `hint:` line, the exit code `code`, and
/// never the PIN.
fn assert_refused(o: &Out, code: i32, error: &str) {
    cli_harness::assert_two_lines(o, code, error);
    assert!(!o.stderr.contains(PIN), "the PIN leaked: {}", o.stderr);
}

#[test]
fn a_token_key_seals_and_its_signing_only_pub_verifies() {
    if !available() {
        return;
    }
    let h = Hsm::new("ci");
    h.model();
    let uri = h.uri("model-signer");
    let o = h.ok(&["keygen", "--pkcs11", &uri, "-o", "signer"]);
    assert!(o.stdout.contains("signer.pub"), "{}", o.stdout);
    assert!(!h.path().join("signer.key").exists());
    let public = std::fs::read_to_string(h.path().join("signer.pub")).unwrap();
    assert!(
        public
            .lines()
            .any(|l| l.starts_with("modelseal-sign-pub-v1:")),
        "{public}"
    );
    // The exported public key is keygen's, byte for byte.
    h.ok(&["pubkey", &uri, "-o", "exported.pub"]);
    assert_eq!(
        std::fs::read_to_string(h.path().join("exported.pub")).unwrap(),
        public
    );
    // The token's public object is not private: exporting needs no PIN.
    let no_pin = format!("pkcs11:token=ci;object=model-signer?module-path={MODULE}");
    h.ok(&["pubkey", &no_pin, "-o", "nopin.pub"]);

    h.ok(&[
        "seal",
        "-k",
        &uri,
        "-r",
        "bob.pub",
        "--name",
        "m",
        "--model-version",
        "1.0.0",
        "-o",
        "m.mseal",
        "w.bin",
    ]);
    h.ok(&["verify", "-t", "signer.pub", "m.mseal"]);
    h.ok(&[
        "open",
        "-t",
        "exported.pub",
        "-i",
        "bob.key",
        "-o",
        "opened",
        "m.mseal",
    ]);
    assert_eq!(
        std::fs::read(h.path().join("opened/w.bin")).unwrap(),
        b"weights"
    );
    // The module and PIN file also come from the environment.
    let bare = "pkcs11:token=ci;object=model-signer";
    let pin = h.pin.to_str().unwrap().to_owned();
    let o = h.run_env(
        &[
            ("MODELSEAL_PKCS11_MODULE", MODULE),
            ("MODELSEAL_PKCS11_PIN_FILE", &pin),
        ],
        &[
            "seal",
            "-k",
            bare,
            "--public",
            "--name",
            "m",
            "--model-version",
            "1.0.1",
            "-o",
            "p.mseal",
            "w.bin",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    h.ok(&["verify", "-t", "signer.pub", "p.mseal"]);
    // train -k takes the token key too.
    h.ok(&[
        "train",
        "--dataset",
        "iris",
        "-k",
        &uri,
        "-r",
        "bob.pub",
        "--name",
        "iris-tree",
        "--model-version",
        "1.0.0",
        "-o",
        "iris.mseal",
    ]);
    h.ok(&["verify", "-t", "signer.pub", "iris.mseal"]);
    // Another key does not verify it.
    h.ok(&["keygen", "-o", "mallory"]);
    assert_eq!(h.run(&["verify", "-t", "mallory.pub", "m.mseal"]).code, 1);
}

#[test]
fn two_token_keys_co_sign_for_a_two_of_two_policy() {
    if !available() {
        return;
    }
    let h = Hsm::new("ci");
    h.model();
    let (a, b) = (h.uri("signer-a"), h.uri("signer-b"));
    h.ok(&["keygen", "--pkcs11", &a, "-o", "a"]);
    h.ok(&["keygen", "--pkcs11", &b, "-o", "b"]);
    let store = h.path().join("store");
    std::fs::create_dir(&store).unwrap();
    for k in ["a.pub", "b.pub"] {
        std::fs::copy(h.path().join(k), store.join(k)).unwrap();
    }
    std::fs::write(
        store.join("policy.toml"),
        "[[threshold]]\nmodels = [\"*\"]\nsigners = 2\n",
    )
    .unwrap();
    assert_eq!(h.seal(&a, "m.mseal").code, 0);
    assert_eq!(h.run(&["verify", "-t", "store", "m.mseal"]).code, 1);
    h.ok(&["sign", "--add", "-k", &b, "m.mseal"]);
    h.ok(&["verify", "-t", "store", "m.mseal"]);
    // Adding the same token key again is refused.
    assert_eq!(h.run(&["sign", "--add", "-k", &a, "m.mseal"]).code, 1);
}

#[test]
fn every_refusal_is_typed_with_one_error_and_one_hint_and_leaves_nothing() {
    if !available() {
        return;
    }
    let h = Hsm::new("ci");
    h.model();
    let uri = h.uri("model-signer");
    h.ok(&["keygen", "--pkcs11", &uri, "-o", "signer"]);
    let pin = h.pin.display().to_string();
    let wrong = h.path().join("wrong-pin");
    secret_file(&wrong, "000000\n", 0o600);
    let shared = h.path().join("shared-pin");
    secret_file(&shared, &format!("{PIN}\n"), 0o644);
    let with = |token: &str, object: &str, module: &str, pin: &str| {
        format!("pkcs11:token={token};object={object}?module-path={module}&pin-source=file:{pin}")
    };
    let cases: Vec<(String, i32, &str)> = vec![
        (
            with("ci", "model-signer", MODULE, &wrong.display().to_string()),
            2,
            "refused the PIN",
        ),
        (
            with("ci", "nope", MODULE, &pin),
            2,
            "has no public key labelled \"nope\"",
        ),
        (
            with("ci", "model-signer", "/nonexistent/libpkcs11.so", &pin),
            2,
            "cannot load the PKCS#11 module /nonexistent/libpkcs11.so",
        ),
        (
            with("absent", "model-signer", MODULE, &pin),
            2,
            "no token labelled \"absent\"",
        ),
        (
            format!("pkcs11:token=ci;object=model-signer?module-path={MODULE}&pin-value={PIN}"),
            2,
            "carries a pin-value",
        ),
        (
            with("ci", "model-signer", MODULE, &shared.display().to_string()),
            1,
            "shared-pin",
        ),
        (
            format!("pkcs11:token=ci;object=model-signer;serial=1?module-path={MODULE}"),
            2,
            "invalid pkcs11 key URI",
        ),
        (
            format!("pkcs11:token=ci;object=model-signer?module-path={MODULE}"),
            2,
            "no PIN for token \"ci\"",
        ),
        (
            "pkcs11:token=ci;object=model-signer".into(),
            2,
            "no PKCS#11 module",
        ),
    ];
    for (key, code, error) in &cases {
        let o = h.seal(key, "m.mseal");
        assert_refused(&o, *code, error);
        assert!(!h.path().join("m.mseal").exists(), "{key}");
        // Exporting the public key needs no PIN: only the other refusals apply to it.
        let o = h.run(&["pubkey", key, "-o", "x.pub"]);
        if o.code == 0 {
            assert!(error.contains("PIN") || *error == "shared-pin", "{key}");
            std::fs::remove_file(h.path().join("x.pub")).unwrap();
        } else {
            assert_refused(&o, *code, error);
            assert!(!h.path().join("x.pub").exists(), "{key}");
        }
    }
    // A signing-only .pub cannot be a recipient.
    let o = h.run(&[
        "seal",
        "-k",
        "bob.key",
        "-r",
        "signer.pub",
        "--name",
        "m",
        "--model-version",
        "1.0.0",
        "-o",
        "m.mseal",
        "w.bin",
    ]);
    assert_refused(&o, 1, "a signing-only public key cannot be a recipient");
    assert!(!h.path().join("m.mseal").exists());
    // keygen over an existing label.
    let o = h.run(&["keygen", "--pkcs11", &uri, "-o", "again"]);
    assert_refused(&o, 2, "already holds an object labelled \"model-signer\"");
    assert!(!h.path().join("again.pub").exists());
    // keygen with a wrong PIN creates nothing.
    let o = h.run(&[
        "keygen",
        "--pkcs11",
        &with("ci", "new", MODULE, &wrong.display().to_string()),
        "-o",
        "new",
    ]);
    assert_refused(&o, 2, "refused the PIN");
    assert!(!h.path().join("new.pub").exists());
}

/// Two keys on one token in one process: each signature opens, logs in and closes its own
/// session, so one key's logout never breaks the other. The only test here that loads the
/// module in-process (the module reads `SOFTHSM2_CONF` once per process).
#[test]
fn two_keys_on_one_token_sign_in_turn_in_one_process() {
    use modelseal::keys::{Pkcs11Signer, Signer};
    if !available() {
        return;
    }
    let h = Hsm::new("lib");
    // SAFETY-free in edition 2021: this is the only test of this binary that reads it.
    std::env::set_var("SOFTHSM2_CONF", &h.conf);
    let a = Pkcs11Signer::generate(&h.uri("a")).unwrap();
    let b = Pkcs11Signer::generate(&h.uri("b")).unwrap();
    assert_ne!(a.key_id(), b.key_id());
    for i in 0..3u8 {
        let sa = a.sign_header(&[i; 40]).unwrap();
        let sb = b.sign_header(&[i; 40]).unwrap();
        assert_ne!(sa, sb);
    }
    let again = Pkcs11Signer::open(&h.uri("a")).unwrap();
    assert_eq!(again.public(), a.public());
    let wrong = Pkcs11Signer::generate(&h.uri("a")).unwrap_err();
    assert!(
        matches!(
            wrong,
            modelseal::Error::Pkcs11(modelseal::error::Pkcs11Error::ObjectExists { .. })
        ),
        "{wrong:?}"
    );
}
