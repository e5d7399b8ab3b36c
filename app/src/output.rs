//! How reports reach stdout: for people, or as JSON (`--output json`), the
//! Solana CLI's convention. Every command returns a [`Report`]; the binary
//! prints it once, here, so no command writes its result itself.

use std::fmt::Display;
use std::io::{self, Write};

use clap::ValueEnum;
use serde::{Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people.
    #[default]
    Display,
    /// Pretty-printed JSON.
    Json,
    /// JSON on one line.
    JsonCompact,
}

/// What a command returns: text for people ([`Display`]) and JSON
/// ([`Serialize`]). Object-safe, so the dispatcher hands back one boxed
/// report whatever the command; every `Display + Serialize` type is one.
pub trait Report: Display {
    /// Writes the report as JSON, pretty or on one line.
    fn write_json(&self, out: &mut dyn Write, pretty: bool) -> serde_json::Result<()>;
}

impl<T: Display + Serialize> Report for T {
    fn write_json(&self, out: &mut dyn Write, pretty: bool) -> serde_json::Result<()> {
        if pretty {
            serde_json::to_writer_pretty(out, self)
        } else {
            serde_json::to_writer(out, self)
        }
    }
}

/// Prints `report` in `format`, followed by a newline.
pub fn print(report: &dyn Report, format: OutputFormat) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match format {
        OutputFormat::Display => writeln!(stdout, "{report}"),
        OutputFormat::Json | OutputFormat::JsonCompact => {
            report.write_json(&mut stdout, format == OutputFormat::Json)?;
            writeln!(stdout)
        }
    }
}

/// Serde helper: any value by its `Display` (addresses, signatures).
pub(crate) fn display<T: Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Serde helper: an optional value by its `Display`.
pub(crate) fn display_option<T: Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = amp_sdk::client::spend::civil_from_days(unix.div_euclid(86_400));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `3600` as `3600 s (1 h)`.
pub(crate) fn seconds(s: u32) -> String {
    let unit = [(86_400, "d"), (3_600, "h"), (60, "min")]
        .into_iter()
        .find(|(size, _)| s >= *size && s.is_multiple_of(*size));
    match unit {
        Some((size, name)) => format!("{s} s ({} {name})", s / size),
        None => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }
}
