//! The CLI's exact output, as snapshots: each `tests/cmd/NAME.toml` runs `modelseal` with its
//! arguments in `tests/vectors/` (the conformance archives and test keys) and compares the exit
//! code, standard output and standard error with `NAME.stdout` / `NAME.stderr`, the two lines
//! (`error:`, `hint:`) of every refusal included. `TRYCMD=overwrite cargo test --test
//! cli_snapshots` rewrites them after a deliberate change; review the diff.

#[test]
fn cli_output_matches_the_snapshots() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
