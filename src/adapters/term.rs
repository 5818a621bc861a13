//! The terminal: a spinner on stderr while discovery is slow, and ANSI colour when wanted.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Draws on stderr, only when stderr is a terminal and only after a short delay, so fast runs
/// and pipes never see it. Clears its line when dropped; dropping never waits for a frame.
pub struct Spinner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    pub fn start(message: String) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner { stop: None, thread: None };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // A message or a hang-up both mean stop.
            if rx.recv_timeout(Duration::from_millis(250)) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut n = 0;
            loop {
                let _ = write!(std::io::stderr(), "\r{} {message}", frames[n % frames.len()]);
                n += 1;
                if rx.recv_timeout(Duration::from_millis(80)) != Err(mpsc::RecvTimeoutError::Timeout) {
                    break;
                }
            }
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        });
        Spinner { stop: Some(tx), thread: Some(thread) }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wrap `s` in an SGR colour when `on`.
pub fn paint(s: &str, code: &str, on: bool) -> String {
    if on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
}
