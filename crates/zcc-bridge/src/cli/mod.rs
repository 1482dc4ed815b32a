//! How the command line shows results (the binary's, not the library's): tables with headers for people, JSON with
//! `--json` for scripts, progress on a terminal only. Nothing here writes colour or cursor codes into a pipe or a file.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{presets, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Human or machine output, chosen once by the global `--json`.
#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON (with `--json`) or runs `human`.
    pub fn show<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

/// A table with a header row, plain ASCII, as wide as its content (wrapped to the terminal when there is one).
pub fn table<const N: usize>(
    headers: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(if std::io::stdout().is_terminal() {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(headers);
    for row in rows {
        table.add_row(row);
    }
    // The NOTHING preset pads every cell with a space on both sides; lines keep no trailing blanks.
    table
        .lines()
        .map(|line| {
            line.trim_end()
                .strip_prefix(' ')
                .unwrap_or(line.trim_end())
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A spinner (no known total) or a bar (`len`) on standard error, drawn only when it is a terminal and not with
/// `--json`; otherwise hidden, and whatever calls it runs the same.
pub fn progress(output: Output, len: Option<u64>, message: &str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(message.to_string());
    if output.json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    bar
}

/// `-` for an absent value in a table.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_a_header_and_no_trailing_blanks() {
        let text = table(
            ["ID", "SINK"],
            [
                ["1".to_string(), "crm".to_string()],
                ["22".to_string(), "-".to_string()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("ID") && lines[0].contains("SINK"),
            "{text}"
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{text:?}");
        assert!(!text.contains('\u{1b}'), "no escape codes: {text:?}");
    }
}
