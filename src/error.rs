//! Errors callers branch on, each with its exit status (DESIGN §10) and `hint:` lines. Anything
//! else travels as `anyhow` context and exits 1.

use std::path::PathBuf;

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
