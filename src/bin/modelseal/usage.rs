//! clap's command-line errors as the two lines every failure prints.

use std::io::Write;
use std::process::ExitCode;

/// A command-line error from clap as the two lines every failure prints (help and version
/// requests print as clap renders them, exit 0).
pub(crate) fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: no command given");
        let _ = writeln!(
            err,
            "hint: run `modelseal help` for the commands, or `modelseal demo` to see them at work"
        );
        return ExitCode::from(2);
    }
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The first line, with the lines that continue it (the missing arguments) folded in.
    let mut first = lines
        .first()
        .copied()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    let more: Vec<&str> = lines
        .iter()
        .skip(1)
        .take_while(|l| {
            !l.starts_with("Usage:") && !l.starts_with("tip:") && !l.starts_with("For more")
        })
        .copied()
        .collect();
    if !more.is_empty() {
        first = format!("{} {}", first, more.join(", "));
    }
    let tip = lines
        .iter()
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned);
    let hint = tip.unwrap_or_else(|| match e.kind() {
        ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand => {
            "run `modelseal help` or add --help to the command to see what it needs".into()
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            "run the command with --help to see the values it accepts".into()
        }
        _ => "run `modelseal help` or add --help to the command for its usage".into(),
    });
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {first}");
    let _ = writeln!(err, "hint: {hint}");
    ExitCode::from(2)
}
