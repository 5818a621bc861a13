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

/// Questions from the SSH transport answered on the controlling terminal (`/dev/tty`, as ssh
/// does, so they work with stdin and stdout redirected). None when there is no terminal: the
/// transport then refuses instead of asking. Ctrl-C at a question answers
/// [`Answer::Interrupted`] at once, with the terminal restored.
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
                match read_line(&mut tty, &prompt, true) {
                    Line::Interrupted => Answer::Interrupted,
                    Line::Text(a) if a.trim().eq_ignore_ascii_case("yes") => Answer::Yes,
                    Line::Text(_) | Line::Failed => Answer::No,
                }
            }
            Question::Passphrase { path } => {
                // The file name may come from the instance's key pair name.
                let prompt = format!("Enter passphrase for key '{}': ", escape(&path.display().to_string()));
                // Echo was off, so Enter moved nowhere: end the prompt's line (a Ctrl-C did).
                match read_line(&mut tty, &prompt, false) {
                    Line::Interrupted => Answer::Interrupted,
                    Line::Text(secret) => {
                        let _ = write!(tty, "\r\n");
                        Answer::Secret(secret)
                    }
                    Line::Failed => {
                        let _ = write!(tty, "\r\n");
                        Answer::Secret(String::new())
                    }
                }
            }
        }
    }))
}

/// What reading an answer from the terminal gave.
enum Line {
    Text(String),
    /// Ctrl-C (SIGINT) while waiting.
    Interrupted,
    Failed,
}

/// The read end of a pipe written to by a SIGINT handler (chained with the runtime's own, which
/// still sees every SIGINT): a question waits on it beside the terminal. The runtime's handler
/// cannot wake a question: the question blocks the runtime's only thread.
fn interrupts() -> Option<i32> {
    static PIPE: std::sync::OnceLock<Option<i32>> = std::sync::OnceLock::new();
    *PIPE.get_or_init(|| {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two descriptors; both are ours for the life of the process.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return None;
        }
        let write_end = fds[1];
        // SAFETY: the action only calls write(2) on a non-blocking pipe, which is
        // async-signal-safe; a full pipe (many Ctrl-Cs) loses nothing that matters.
        let registered = unsafe {
            signal_hook_registry::register(libc::SIGINT, move || {
                libc::write(write_end, b"i".as_ptr().cast(), 1);
            })
        };
        registered.ok().map(|_| fds[0])
    })
}

/// Show `prompt` and read one line from the terminal; with `echo` false, typed characters are
/// not shown: echo goes off *before* the prompt appears, so a fast typist (or a script
/// answering the prompt) never sees the secret echoed. The wait ends on Enter or on Ctrl-C;
/// the mode is restored before returning, in every case.
fn read_line(tty: &mut std::fs::File, prompt: &str, echo: bool) -> Line {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    let interrupt = interrupts();
    // A Ctrl-C from before this question was the runtime's to handle: start afresh.
    if let Some(r) = interrupt {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a local buffer from our non-blocking pipe.
        while unsafe { libc::read(r, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
    }
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
    // The terminal stays in canonical mode (the kernel edits the line); a read returns a whole
    // line. poll(2) waits for it or for the interrupt pipe.
    let mut line = Vec::new();
    let result = loop {
        let mut fds = [
            libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: interrupt.unwrap_or(-1), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfd entries (a negative fd is ignored by poll).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break Line::Failed;
        }
        if fds[1].revents != 0 {
            break Line::Interrupted;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut chunk = [0u8; 1024];
        match tty.read(&mut chunk) {
            Ok(0) => break Line::Text(String::from_utf8_lossy(&line).into_owned()),
            Ok(k) => {
                line.extend_from_slice(&chunk[..k]);
                if line.ends_with(b"\n") {
                    break Line::Text(String::from_utf8_lossy(&line).into_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break Line::Failed,
        }
    };
    if have_mode && !echo {
        // SAFETY: restores the mode read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    match result {
        Line::Text(t) => Line::Text(t.trim_end_matches(['\r', '\n']).to_string()),
        Line::Interrupted => {
            // The ^C the terminal echoed ends the prompt's line.
            let _ = tty.write_all(b"\r\n");
            Line::Interrupted
        }
        other => other,
    }
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
