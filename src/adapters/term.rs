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

/// Log fields as tracing's default formatter writes them (`message` bare, the others as
/// `name=value`), escaped like everything else hop prints: warnings quote tags, servers' reasons
/// and Session Manager's messages, and a newline in one must not forge a log line.
pub fn log_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = crate::domain::display::escape(&text);
        match field.name() {
            "message" => write!(w, "{text}"),
            name => write!(w, "{name}={text}"),
        }
    })
    .delimited(" ")
}

/// Questions from the SSH transport answered on the controlling terminal (`/dev/tty`, as ssh
/// does, so they work with stdin and stdout redirected). None when there is no terminal: the
/// transport then refuses instead of asking.
pub fn tty_asker() -> Option<crate::adapters::ssh::client::Ask> {
    use crate::adapters::ssh::client::{Answer, Question};
    use crate::domain::display::escape;
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
    Some(std::sync::Arc::new(|q: &Question| {
        let Ok(mut tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
            return Answer::No;
        };
        match q {
            // The label is a Name tag and the alias an id from EC2: escaped, so a tag cannot
            // rewrite the question (the fingerprint is computed here).
            Question::UnknownHostKey { label, alias, fingerprint } => {
                let (label, alias) = (escape(label), escape(alias));
                let prompt = format!(
                    "The authenticity of host '{label}' ({alias}) can't be established.\r\n\
                     Key fingerprint is {fingerprint}.\r\n\
                     Are you sure you want to continue connecting (yes/no)? "
                );
                let answer = read_line(&mut tty, &prompt, true).unwrap_or_default();
                if answer.trim().eq_ignore_ascii_case("yes") { Answer::Yes } else { Answer::No }
            }
            Question::Passphrase { path } => {
                // The file name may come from the instance's key pair name.
                let prompt = format!("Enter passphrase for key '{}': ", escape(&path.display().to_string()));
                let secret = read_line(&mut tty, &prompt, false).unwrap_or_default();
                let _ = write!(tty, "\r\n");
                Answer::Secret(secret)
            }
        }
    }))
}

/// Show `prompt` and read one line from the terminal; with `echo` false, typed characters are
/// not shown: echo goes off *before* the prompt appears, so a fast typist (or a script
/// answering the prompt) never sees the secret echoed. The mode is restored before returning.
fn read_line(tty: &mut std::fs::File, prompt: &str, echo: bool) -> std::io::Result<String> {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open terminal; tcgetattr only writes into `saved`.
    let have_mode = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_mode && !echo {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a termios derived from the current one.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let _ = tty.write_all(prompt.as_bytes());
    let _ = tty.flush();
    let mut line = String::new();
    let result = std::io::BufReader::new(&*tty).read_line(&mut line);
    if have_mode && !echo {
        // SAFETY: restores the mode read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    result.map(|_| line.trim_end_matches(['\r', '\n']).to_string())
}

/// The local terminal in raw mode for as long as this value lives: restored on drop, which
/// covers returning, errors and panics (unwinding). Signals that would kill hop are handled by
/// the session loop, which returns (and so drops this) instead.
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    /// Raw mode on stdin; None when stdin is not a terminal.
    pub fn enable() -> Option<RawMode> {
        let fd = libc::STDIN_FILENO;
        // SAFETY: tcgetattr writes into a zeroed termios; fd 0 is ours.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw edits the struct we pass; tcsetattr applies it to our terminal.
        unsafe {
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSADRAIN, &raw);
        }
        Some(RawMode { fd, saved })
    }

    /// The terminal's modes before raw mode, to send with the PTY request (as ssh does), as
    /// (opcode, value) pairs of RFC 4254 §8.
    pub fn modes(&self) -> Vec<(russh::Pty, u32)> {
        use russh::Pty;
        let t = &self.saved;
        let cc = |i: usize| t.c_cc[i] as u32;
        let flag = |set: libc::tcflag_t, bit: libc::tcflag_t| u32::from(set & bit != 0);
        vec![
            (Pty::VINTR, cc(libc::VINTR)),
            (Pty::VQUIT, cc(libc::VQUIT)),
            (Pty::VERASE, cc(libc::VERASE)),
            (Pty::VKILL, cc(libc::VKILL)),
            (Pty::VEOF, cc(libc::VEOF)),
            (Pty::VSUSP, cc(libc::VSUSP)),
            (Pty::VWERASE, cc(libc::VWERASE)),
            (Pty::ICRNL, flag(t.c_iflag, libc::ICRNL)),
            (Pty::IXON, flag(t.c_iflag, libc::IXON)),
            (Pty::IUTF8, flag(t.c_iflag, libc::IUTF8)),
            (Pty::ISIG, flag(t.c_lflag, libc::ISIG)),
            (Pty::ICANON, flag(t.c_lflag, libc::ICANON)),
            (Pty::ECHO, flag(t.c_lflag, libc::ECHO)),
            (Pty::ECHOE, flag(t.c_lflag, libc::ECHOE)),
            (Pty::ECHOK, flag(t.c_lflag, libc::ECHOK)),
            (Pty::OPOST, flag(t.c_oflag, libc::OPOST)),
            (Pty::ONLCR, flag(t.c_oflag, libc::ONLCR)),
        ]
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enable` on the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved) };
    }
}

/// The size of the terminal on stdin as (columns, rows), if it is one.
pub fn window_size() -> Option<(u32, u32)> {
    // SAFETY: TIOCGWINSZ fills a winsize; fd 0 is ours.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0)
        .then_some((ws.ws_col as u32, ws.ws_row as u32))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// What the subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_escape_what_they_quote() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::log_fields())
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let output = "bye\nWARN hop: forged line\u{9b}31m\u{202e}";
            tracing::warn!("Session Manager ended session s-1: {output}");
            tracing::warn!(reason = "a\rb", "plain");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            " WARN Session Manager ended session s-1: bye\\nWARN hop: forged line\\u{9b}31m\\u{202e}\n \
             WARN plain reason=\"a\\rb\"\n"
        );
    }
}
