//! Run logs: `log.jsonl` (one JSON object per logged iteration or evaluation, for plots),
//! `train.log` (the same in mmcv's human format) and `tracing` events for the console.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Appends JSON lines and human lines to the work dir's logs.
pub struct JsonLog {
    /// `log.jsonl` and `train.log`; none for a rank that does not write (distributed runs
    /// log on rank 0 only).
    files: Option<(BufWriter<File>, BufWriter<File>)>,
    path: PathBuf,
}

impl JsonLog {
    /// Opens (appending) `log.jsonl` and `train.log` in `work_dir`.
    pub fn open(work_dir: &Path) -> std::io::Result<Self> {
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(work_dir.join(name))
                .map(BufWriter::new)
        };
        Ok(Self {
            files: Some((open("log.jsonl")?, open("train.log")?)),
            path: work_dir.join("log.jsonl"),
        })
    }

    /// A log that writes nothing: the other ranks of a distributed run.
    pub fn discard(work_dir: &Path) -> Self {
        Self {
            files: None,
            path: work_dir.join("log.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record: the JSON line, and `human` to `train.log` and the console.
    pub fn record(&mut self, record: Map<String, Value>, human: &str) -> std::io::Result<()> {
        let Some((json, text)) = &mut self.files else {
            return Ok(());
        };
        serde_json::to_writer(&mut *json, &Value::Object(record))?;
        json.write_all(b"\n")?;
        json.flush()?;
        writeln!(text, "{human}")?;
        text.flush()?;
        Ok(())
    }

    /// A free-form line for `train.log` only.
    pub fn text(&mut self, line: &str) -> std::io::Result<()> {
        let Some((_, text)) = &mut self.files else {
            return Ok(());
        };
        writeln!(text, "{line}")?;
        text.flush()
    }
}

/// Resident memory of this process in MB (Linux `/proc/self/statm`), 0 where unknown.
/// A progress bar of `len` `unit`s on stderr when it is a terminal, hidden otherwise (a
/// redirected stderr gets no bar drawings).
pub fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn memory_mb() -> f64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0.0;
    };
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}
