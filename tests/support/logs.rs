//! Every log line written while a test holds a `Capture`: one subscriber for the whole test
//! binary, installed by the first capture, with the deployed functions' filter
//! (`idv::logging::filter`) at `trace` (whatever level an operator may set) and their JSON
//! format, writing into memory. Everything in the process logs through it: the gateway, the
//! simulators beside it, and any test running at the same time (a capture holds at least what
//! its own test wrote).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;

/// Lines kept while at least one capture is held (none otherwise: a binary's other tests are not
/// buffered for nothing).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOLDERS: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The log lines written from `start` until the capture is read.
pub struct Capture {
    from: usize,
}

impl Capture {
    /// Starts capturing. Panics if another subscriber took the process first: a capture that
    /// sees nothing would let any check on it pass.
    pub fn start() -> Capture {
        let installed = *INSTALLED.get_or_init(|| {
            tracing_subscriber::fmt()
                .with_env_filter(idv::logging::filter("trace"))
                .with_writer(Lines)
                .json()
                .try_init()
                .is_ok()
        });
        assert!(
            installed,
            "another tracing subscriber is installed: logs cannot be captured"
        );
        HOLDERS.fetch_add(1, Ordering::SeqCst);
        Capture {
            from: lines().len(),
        }
    }

    /// Every line written since `start` (this test's, and those of tests running meanwhile).
    pub fn lines(&self) -> Vec<String> {
        lines()[self.from..].to_vec()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        HOLDERS.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lines() -> std::sync::MutexGuard<'static, Vec<String>> {
    LINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// `MakeWriter` for the subscriber: one buffer per event, kept as one line when it is dropped.
struct Lines;

struct Line(Vec<u8>);

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if HOLDERS.load(Ordering::SeqCst) > 0 && !self.0.is_empty() {
            lines().push(String::from_utf8_lossy(&self.0).into_owned());
        }
    }
}
