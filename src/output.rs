//! The one Printer: results to stdout, progress and diagnostics to stderr. Nothing else in
//! asm writes to the terminal.
//!
//! Colour as `--color`, `NO_COLOR` and `CLICOLOR_FORCE` decide (see
//! [`crate::environment::Environment::color_for`]). On a terminal's stderr, a live line at the
//! bottom shows what runs now ([`Printer::set_live`]); off a terminal, no control characters.
//! Writes ignore a closed pipe (`asm … | head` is not an error).

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::error::Error;

/// How chatty progress output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

type Stream = Arc<Mutex<Box<dyn Write + Send>>>;

/// Back to the start of the line and erase it (ANSI CSI `2K`).
const ERASE_LINE: &str = "\r\x1b[2K";

/// Shared handle to the process's output streams. Cheap to clone; safe across tasks.
#[derive(Clone)]
pub struct Printer {
    stdout: Stream,
    stderr: Stream,
    color: bool,
    verbosity: Verbosity,
    /// `stdout` is the process's own file descriptor 1 ([`Printer::stdio`]).
    process_stdout: bool,
    /// `--output-dir`'s log: every stderr line (details included), without colour.
    log: Option<(Stream, std::time::Instant)>,
    /// The live line on a terminal's stderr (what is running now), redrawn in place below
    /// the other lines; `None` off a terminal.
    live: Option<Arc<Mutex<Option<String>>>>,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("color", &self.color)
            .field("verbosity", &self.verbosity)
            .finish()
    }
}

impl Printer {
    /// A printer over the given streams.
    pub fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>, color: bool) -> Self {
        Printer {
            stdout: Arc::new(Mutex::new(stdout)),
            stderr: Arc::new(Mutex::new(stderr)),
            color,
            verbosity: Verbosity::Normal,
            process_stdout: false,
            log: None,
            live: None,
        }
    }

    /// With `on`, [`Printer::set_live`] keeps one line at the bottom of stderr, rewritten in
    /// place (carriage return and erase-line); for a terminal only.
    pub fn with_live_line(mut self, on: bool) -> Self {
        self.live = on.then(|| Arc::new(Mutex::new(None)));
        self
    }

    /// Whether a live line is shown (a terminal, and not `-q`).
    pub fn live_line_enabled(&self) -> bool {
        self.live.is_some() && self.verbosity >= Verbosity::Normal
    }

    /// Replaces the live line with `text` (`None` erases it).
    pub fn set_live(&self, text: Option<&str>) {
        let Some(live) = self.live.as_ref().filter(|_| self.live_line_enabled()) else {
            return;
        };
        let mut current = match live.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if current.as_deref() == text {
            return;
        }
        let mut bytes = String::new();
        if current.is_some() {
            bytes.push_str(ERASE_LINE);
        }
        if let Some(t) = text {
            bytes.push_str(t);
        }
        *current = text.map(str::to_string);
        write_all(&self.stderr, bytes.as_bytes());
    }

    /// Writes finished lines to stderr, above the live line if there is one.
    fn write_stderr(&self, text: &str) {
        let Some(live) = self.live.as_ref() else {
            write_all(&self.stderr, text.as_bytes());
            return;
        };
        let current = match live.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        match current.as_deref() {
            Some(line) => {
                write_all(&self.stderr, format!("{ERASE_LINE}{text}{line}").as_bytes());
            }
            None => write_all(&self.stderr, text.as_bytes()),
        }
    }

    /// With `color`, warnings, errors and symbols are painted.
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Also writes every stderr line, at any verbosity and without colour, to `log`, each
    /// prefixed with the seconds since this call.
    pub fn with_log(mut self, log: Box<dyn Write + Send>) -> Self {
        self.log = Some((Arc::new(Mutex::new(log)), std::time::Instant::now()));
        self
    }

    fn log_line(&self, line: &str) {
        if let Some((log, started)) = &self.log {
            let t = started.elapsed().as_secs_f64();
            let mut text = String::new();
            for l in strip_ansi(line).lines() {
                text.push_str(&format!("[{t:>8.3}s] {l}\n"));
            }
            write_all(log, text.as_bytes());
        }
    }

    /// The process's own stdout/stderr.
    pub fn stdio(color: bool) -> Self {
        Printer {
            process_stdout: true,
            ..Printer::new(
                Box::new(std::io::stdout()),
                Box::new(std::io::stderr()),
                color,
            )
        }
    }

    /// Ends the results: later results are discarded, and when stdout is the process's
    /// own, file descriptor 1 is pointed at `/dev/null`, so a reader of the pipe sees the
    /// end of the output while the process runs on (`eval "$(asm sandbox serve &)"`
    /// returns). Other streams are left as they are.
    pub fn close_stdout(&self) {
        let mut s = match self.stdout.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let _ = s.flush();
        *s = Box::new(std::io::sink());
        #[cfg(unix)]
        if self.process_stdout
            && let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null")
        {
            // dup2 onto fd 1 closes the pipe's write end held there.
            let _ = rustix::stdio::dup2_stdout(&null);
        }
    }

    pub fn with_verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Writes `text` to stdout as is, in one write (a result: a plan, JSON, exports).
    pub fn result(&self, text: &str) {
        write_all(&self.stdout, text.as_bytes());
    }

    /// One progress line on stderr (suppressed by `-q`).
    pub fn progress(&self, line: &str) {
        self.log_line(line);
        if self.verbosity >= Verbosity::Normal {
            self.write_stderr(&format!("{line}\n"));
        }
    }

    /// A detail line on stderr, shown with `-v` only.
    pub fn detail(&self, line: &str) {
        self.log_line(line);
        if self.verbosity >= Verbosity::Verbose {
            self.write_stderr(&format!("{line}\n"));
        }
    }

    /// A warning on stderr (always shown).
    pub fn warning(&self, message: &str) {
        self.log_line(&format!("warning: {message}"));
        let label = self.paint("warning", "33");
        self.write_stderr(&format!("{label}: {message}\n"));
    }

    /// An error with its code and hint on stderr.
    pub fn error(&self, err: &Error) {
        let label = self.paint(&format!("error[{}]", err.code), "31");
        let mut text = format!("{label}: {}\n", err.message);
        if let Some(hint) = &err.hint {
            text.push_str(&format!("  hint: {hint}\n"));
        }
        self.log_line(&strip_ansi(&text));
        self.write_stderr(&text);
    }

    /// Wraps `text` in an ANSI colour when colour is on.
    pub fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn write_all(stream: &Stream, bytes: &[u8]) {
    let mut s = match stream.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    // A closed pipe is the reader's choice, not an error of ours.
    let _ = s.write_all(bytes).and_then(|()| s.flush());
}

/// A Printer writing into shared buffers, for tests.
#[derive(Clone, Default, Debug)]
pub struct Captured {
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut v) => v.extend_from_slice(buf),
            Err(p) => p.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// A colourless Printer writing into these buffers.
    pub fn printer(&self) -> Printer {
        Printer::new(
            Box::new(SharedBuf(self.stdout.clone())),
            Box::new(SharedBuf(self.stderr.clone())),
            false,
        )
    }

    pub fn stdout_text(&self) -> String {
        self.stdout
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}
