//! The request log: one JSON line per request received on a socket, written and flushed
//! before the response is sent, so "no mutating request was sent" is assertable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// Appends request records to a file.
#[derive(Debug)]
pub struct RequestLog {
    file: Mutex<File>,
}

/// One logged request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    /// Raw path and query as received.
    pub path: String,
    pub status: u16,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    /// `google` or the cluster name.
    pub server: String,
}

impl RequestRecord {
    /// Whether the request could change state (anything but GET/HEAD/OPTIONS, and not the
    /// read-only POSTs of the Google APIs).
    pub fn is_mutating(&self) -> bool {
        let path = self.path.split('?').next().unwrap_or_default();
        match self.method.as_str() {
            "GET" | "HEAD" | "OPTIONS" => false,
            "POST" => {
                !(path.ends_with(":getIamPolicy")
                    || path.ends_with(":testIamPermissions")
                    || path.ends_with("/selfsubjectaccessreviews")
                    || path.ends_with("/selfsubjectreviews")
                    || path.contains("dryRun=All")
                    || self.path.contains("dryRun=All"))
            }
            _ => !self.path.contains("dryRun=All"),
        }
    }
}

impl RequestLog {
    pub fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening request log {}", path.display()))?;
        Ok(RequestLog {
            file: Mutex::new(file),
        })
    }

    /// Writes and flushes one record.
    pub fn record(&self, server: &str, method: &str, path: &str, status: u16) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let rec = RequestRecord {
            method: method.to_string(),
            path: path.to_string(),
            status,
            ts,
            server: server.to_string(),
        };
        let Ok(mut line) = serde_json::to_vec(&rec) else {
            return;
        };
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        // A log that cannot be written must not take the simulator down.
        let _ = file.write_all(&line).and_then(|()| file.flush());
    }
}

/// Reads a request log back (for tests and tools).
pub fn read(path: &Path) -> Result<Vec<RequestRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad request log line {l:?}")))
        .collect()
}
