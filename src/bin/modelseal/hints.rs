//! The CLI's names for the options and commands the library's hints refer to.

use modelseal::error::{Term, Vocabulary};

/// The `modelseal` command's vocabulary: flags and subcommands.
pub(crate) struct Cli;

impl Vocabulary for Cli {
    fn term(&self, term: Term) -> &'static str {
        match term {
            Term::Force => "--force",
            Term::Recipients => "-r RECIPIENT.pub",
            Term::SharedKey => "--shared-key FILE",
            Term::Identity => "-i IDENTITY.key",
            Term::SigningKey => "-k KEY",
            Term::Trust => "-t TRUST",
            Term::KeygenShared => "`modelseal keygen --shared`",
            Term::KeyPrefix => "-o prefix",
            Term::AllowGlobals => "--allow-globals",
            Term::NoState => "--no-state",
            Term::VersionPolicy => "a relaxed VersionPolicy in the library",
            Term::TrustAdd => "`modelseal trust add`",
            Term::CoSign => "`modelseal sign --add` (or `sign --detached` and `attach` for an archive in a registry)",
            Term::OpenUnchecked => "`modelseal open` without --allow-globals",
            Term::OutputDir => "give -o DIR (./- for a directory named -)",
            Term::StreamOut => {
                "redirect the archive to a file or pipe it on (`... -o - > model.mseal`), or give -o FILE"
            }
            Term::StreamIn => {
                "pipe an archive in (`curl ... | modelseal verify -t KEY -`), or name the archive's file"
            }
            Term::TrustHelp => "`modelseal trust --help` and SECURITY.md",
            Term::ExpiryForms => "a duration (90d, 12h, 30m) or an RFC 3339 time in the future",
            Term::CompressionForms => {
                "--compression takes auto, zstd (level 3), none, or zstd:LEVEL with LEVEL 1-19"
            }
            Term::Public => "--public",
            Term::OmsKey => "`modelseal seal --oms-key EC.pem`",
            Term::PlainHttp => "--plain-http",
            Term::TokenKeygen => "`modelseal keygen --pkcs11 URI -o PREFIX`",
            Term::Help => "`modelseal help`",
        }
    }
}

/// The hint line for `e`, in the CLI's words.
pub(crate) fn hint(e: &modelseal::Error) -> String {
    e.hint(&Cli)
}
