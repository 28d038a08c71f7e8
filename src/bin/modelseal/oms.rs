//! `modelseal oms sign` and `modelseal oms verify`: drop-in for `model_signing sign key` and
//! `model_signing verify key` (the same flags, either spelling), over the library's `oms` module.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use modelseal::oms::{self, EcSigningKey, EcVerifyingKey, GitPaths, Ignore};
use modelseal::Error;

use crate::render::esc;

#[derive(Subcommand)]
pub(crate) enum OmsCommand {
    /// Sign a model (a file or a directory) into an OpenSSF Model Signing bundle with a P-256
    /// key, as `model_signing sign key` does.
    Sign {
        /// The signer's P-256 private key, PEM (SEC1 or PKCS#8).
        #[arg(
            long = "private-key",
            visible_alias = "private_key",
            value_name = "PRIVATE_KEY"
        )]
        private_key: PathBuf,
        /// Where to write the bundle (replaced atomically).
        #[arg(long, value_name = "SIGNATURE_PATH", default_value = "model.sig")]
        signature: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Verify a model against an OpenSSF Model Signing bundle and a P-256 public key, as
    /// `model_signing verify key` does.
    Verify {
        /// The signer's P-256 public key, PEM (SPKI).
        #[arg(
            long = "public-key",
            visible_alias = "public_key",
            value_name = "PUBLIC_KEY"
        )]
        public_key: PathBuf,
        /// The bundle to check.
        #[arg(long, value_name = "SIGNATURE_PATH")]
        signature: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
}

#[derive(Args)]
pub(crate) struct ModelArgs {
    /// A path to leave out (relative to the current directory, as model_signing takes it);
    /// repeatable.
    #[arg(
        long = "ignore-paths",
        visible_alias = "ignore_paths",
        value_name = "IGNORE_PATHS"
    )]
    ignore_paths: Vec<PathBuf>,
    /// Leave out .git, .gitattributes, .github and .gitignore (the default).
    #[arg(
        long = "ignore-git-paths",
        visible_alias = "ignore_git_paths",
        overrides_with = "no_ignore_git_paths"
    )]
    ignore_git_paths: bool,
    /// Sign and check git's files like any other.
    #[arg(
        long = "no-ignore-git-paths",
        visible_alias = "no_ignore_git_paths",
        overrides_with = "ignore_git_paths"
    )]
    no_ignore_git_paths: bool,
    /// The model: a file or a directory.
    #[arg(value_name = "MODEL_PATH")]
    model_path: PathBuf,
}

impl ModelArgs {
    /// model_signing's rule: the given paths and the signature file, where they fall inside the
    /// model, are left out.
    fn ignore(&self, signature: &std::path::Path) -> Ignore {
        let git = if self.no_ignore_git_paths {
            GitPaths::Include
        } else {
            GitPaths::Ignore
        };
        let mut paths = self.ignore_paths.clone();
        paths.push(signature.to_path_buf());
        Ignore::from_cwd(&self.model_path, &paths, git)
    }
}

pub(crate) fn run(cmd: OmsCommand) -> Result<(), Error> {
    match cmd {
        OmsCommand::Sign {
            private_key,
            signature,
            model,
        } => {
            let key = EcSigningKey::read(&private_key)?;
            let ignore = model.ignore(&signature);
            let bundle = oms::sign(&model.model_path, &key, &ignore)?;
            oms::write_bundle(&signature, &bundle)?;
            outln!(
                "signed {} with key {} into {}",
                esc(&model.model_path.display().to_string()),
                key.verifying_key().hint(),
                esc(&signature.display().to_string())
            );
            Ok(())
        }
        OmsCommand::Verify {
            public_key,
            signature,
            model,
        } => {
            let key = EcVerifyingKey::read(&public_key)?;
            let bundle = oms::read_bundle(&signature)?;
            let ignore = model.ignore(&signature);
            let v = oms::verify(&model.model_path, &bundle, &key, &ignore)?;
            outln!(
                "verified {} file{} of {} with key {}",
                v.files.len(),
                if v.files.len() == 1 { "" } else { "s" },
                esc(&model.model_path.display().to_string()),
                v.key_hint
            );
            Ok(())
        }
    }
}
