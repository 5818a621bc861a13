//! Owns known_hosts trust decisions: OpenSSH-compatible matching of host keys (hashed entries,
//! `[host]:port`, `*`/`?`/`!` patterns, `@revoked`, `@cert-authority`) and the lines hop appends.
//!
//! The rules follow OpenSSH 9.x (`hostfile.c`, `match.c`, `sshconnect.c`), checked against the real
//! `ssh`/`ssh-keygen` 9.2. The ssh-key crate's own `known_hosts` parser is not used for lines: it
//! splits fields on single spaces only (OpenSSH takes runs of spaces and tabs), treats a `#`
//! anywhere as a comment, needs the whole file to be UTF-8 and forgets line numbers, which the
//! "changed key" error must name. Keys themselves are decoded by ssh-key.
//!
//! Nothing here reads files except [`KnownHostsFile::read`]; everything else works on bytes, so no
//! file content can make it fail: a line it cannot parse is skipped (and still counted), as
//! OpenSSH does.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
// The only place the ssh-key crate is named (hop reaches it as `russh::keys::ssh_key`).
use russh::keys::ssh_key::{
    Algorithm, Certificate, HashAlg, PublicKey,
    certificate::CertType,
    encoding::base64::{Base64, Encoding},
    public::KeyData,
};

/// OpenSSH's `HASH_MAGIC`: the only hashed-name format there is (HMAC-SHA1).
const HASH_MAGIC: &[u8] = b"|1|";
/// Salt and HMAC-SHA1 output length; OpenSSH rejects hashed names whose salt is any other size.
const SHA1_LEN: usize = 20;
/// `match_pattern_list` copies each sub-pattern into a 1024-byte buffer; one of 1023 bytes or more
/// makes the whole list fail to match, even if an earlier pattern matched.
const MAX_SUBPATTERN: usize = 1023;

/// One known_hosts file as read by the caller; a missing file is an empty one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHostsFile {
    pub path: PathBuf,
    /// Raw bytes: OpenSSH does not require UTF-8 (a Latin-1 comment must not hide the file).
    pub contents: Vec<u8>,
}

impl KnownHostsFile {
    pub fn new(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        KnownHostsFile { path: path.into(), contents: contents.into() }
    }

    /// Read `path`; a missing file is empty (as for ssh). Any other error is returned rather than
    /// ignored, because an unreadable file may hold the `@revoked` line that matters.
    pub fn read(path: &Path) -> Result<Self, KnownHostsError> {
        match std::fs::read(path) {
            Ok(contents) => Ok(KnownHostsFile::new(path, contents)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownHostsFile::new(path, Vec::new())),
            Err(source) => Err(KnownHostsError::Read { path: path.to_path_buf(), source }),
        }
    }
}

/// The files ssh reads by default, in its order: the user's, then the system's. The order matters
/// only for which line a verdict names.
pub fn default_paths(home: &Path) -> Vec<PathBuf> {
    vec![
        home.join(".ssh/known_hosts"),
        home.join(".ssh/known_hosts2"),
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts2"),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A plain (unhashed) entry for this name would be read back as a pattern or as several
    /// names, so it would not mean what was accepted.
    #[error("{0:?} cannot be written to known_hosts as a plain name")]
    UnsafeName(String),
    #[error("cannot encode the {algorithm} key: {message}")]
    Encoding { algorithm: String, message: String },
}

/// The name a host's keys are filed under, as OpenSSH builds it: the host (or HostKeyAlias)
/// lowercased, as `[host]:port` when the port is not 22.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostName {
    host: String,
    port: u16,
}

impl HostName {
    /// `host` reached on `port`, as ssh looks it up without HostKeyAlias.
    pub fn new(host: &str, port: u16) -> Self {
        // ssh lowercases the host name and the alias before lookup (and before hashing: an entry
        // hashed from "web.example.com" matches `ssh Web.Example.COM`). ASCII only, as C's tolower.
        HostName { host: host.to_ascii_lowercase(), port }
    }

    /// A HostKeyAlias: looked up as is, never with a port (hop files hosts under the instance id).
    pub fn alias(alias: &str) -> Self {
        HostName::new(alias, 22)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The string matched against known_hosts (OpenSSH's `put_host_port`).
    pub fn lookup(&self) -> String {
        if self.has_port() { format!("[{}]:{}", self.host, self.port) } else { self.host.clone() }
    }

    fn has_port(&self) -> bool {
        self.port != 22 && self.port != 0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lookup())
    }
}

/// What known_hosts says about a presented host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A plain entry for one of the names holds exactly this key (for a certificate: a
    /// `@cert-authority` line holds its valid signer).
    Known { path: PathBuf, line: usize },
    /// No plain entry for any of the names: ask, or refuse.
    Unknown,
    /// The names have plain entries, none with this key. `path:line` is the first entry of the
    /// presented key's algorithm, else the first entry of another algorithm. OpenSSH treats a host
    /// whose only known keys are of another type as changed too (verified with ssh 9.2: "REMOTE
    /// HOST IDENTIFICATION HAS CHANGED ... Offending RSA key"), never as unknown: otherwise an
    /// attacker who cannot present the known key type would get a trust-on-first-use prompt.
    /// `algorithm` is the stored key's; compare it with the presented one to word the error.
    Changed { path: PathBuf, line: usize, expected: String, algorithm: Algorithm },
    /// A `@revoked` line for one of the names holds this key (or the certificate's CA). Always
    /// refused; takes precedence over everything else.
    Revoked { path: PathBuf, line: usize },
}

/// Check a plain host key presented by the server under `names` (normally one: the alias).
///
/// OpenSSH's rules (`check_hostkeys_by_key_or_type`): `@revoked` wins; then any plain entry with
/// this key is Known, even if other entries disagree; then any other plain entry means Changed.
/// `@cert-authority` lines are not host keys and play no part here. With several names (an alias
/// and an address, like CheckHostIP) a revocation or a change under any of them counts.
pub fn check(files: &[KnownHostsFile], names: &[HostName], key: &PublicKey) -> Verdict {
    combine(names.iter().map(|name| check_name(files, name, key.key_data())))
}

/// Check a host certificate, as ssh does: revoked if its key or its CA is `@revoked`; Known if a
/// `@cert-authority` line for the names holds its signer and the certificate is a valid host
/// certificate for one of the names at `now` (Unix seconds); otherwise the certificate is dropped
/// and its plain key is checked with [`check`].
pub fn check_certificate(files: &[KnownHostsFile], names: &[HostName], cert: &Certificate, now: u64) -> Verdict {
    for key in [cert.public_key(), cert.signature_key()] {
        if let Some(hit) = entries(files, names).find(|e| e.marker == Marker::Revoked && e.key.key_data() == key) {
            return Verdict::Revoked { path: hit.path.to_path_buf(), line: hit.line };
        }
    }
    let ca =
        entries(files, names).find(|e| e.marker == Marker::CertAuthority && e.key.key_data() == cert.signature_key());
    if let Some(ca) = ca
        && host_certificate_valid(cert, names, now)
    {
        return Verdict::Known { path: ca.path.to_path_buf(), line: ca.line };
    }
    check(files, names, &PublicKey::from(cert.public_key().clone()))
}

/// The `@cert-authority` keys trusted for `names`, with where each is, in file order.
#[cfg(test)]
pub fn cert_authorities(files: &[KnownHostsFile], names: &[HostName]) -> Vec<(PublicKey, PathBuf, usize)> {
    entries(files, names)
        .filter(|e| e.marker == Marker::CertAuthority)
        .map(|e| (e.key, e.path.to_path_buf(), e.line))
        .collect()
}

/// The line to append for `key` under `name` (no newline), as ssh writes it: `name algo base64`,
/// or `|1|salt|hash algo base64` when a salt is given (HashKnownHosts).
pub fn entry_line(name: &HostName, key: &PublicKey, salt: Option<&[u8; 20]>) -> Result<String, KnownHostsError> {
    let lookup = name.lookup();
    // Even hashed, a name ssh could never look up (blank, spaces, control bytes) is a caller bug.
    if lookup.is_empty() || lookup.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(KnownHostsError::UnsafeName(lookup));
    }
    let algorithm = key.algorithm();
    let blob = key
        .to_bytes()
        .map_err(|e| KnownHostsError::Encoding { algorithm: algorithm.as_str().to_owned(), message: e.to_string() })?;
    let hosts = match salt {
        Some(salt) => hashed_name(salt, &lookup),
        None if is_plain_safe(&lookup) => lookup,
        None => return Err(KnownHostsError::UnsafeName(lookup)),
    };
    Ok(format!("{hosts} {} {}", algorithm.as_str(), Base64::encode_string(&blob)))
}

/// The fingerprint as ssh prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

// ---------------------------------------------------------------------------------------------
// Verdicts

/// One name's verdict, with OpenSSH's retry "without port identifier": for `[host]:port` with
/// nothing on file, an entry for the bare host with this key is accepted (only Known counts; ssh
/// then prompts). Aliases have no port, so never fall back (ssh skips it under HostKeyAlias).
fn check_name(files: &[KnownHostsFile], name: &HostName, key: &KeyData) -> Verdict {
    let verdict = check_lookup(files, &name.lookup(), key);
    if verdict != Verdict::Unknown || !name.has_port() {
        return verdict;
    }
    match check_lookup(files, &name.host, key) {
        // ssh 9.2 only warns about a key revoked under the bare host and then asks as for a new
        // host; refusing is the safer reading of an explicit revocation.
        v @ (Verdict::Known { .. } | Verdict::Revoked { .. }) => v,
        Verdict::Unknown | Verdict::Changed { .. } => Verdict::Unknown,
    }
}

fn check_lookup(files: &[KnownHostsFile], lookup: &str, key: &KeyData) -> Verdict {
    let mut known = None;
    let mut same_algorithm = None;
    let mut other_algorithm = None;
    for e in entries_for(files, lookup) {
        match e.marker {
            // A revocation anywhere wins, even over a Known line earlier in the files.
            Marker::Revoked if e.key.key_data() == key => {
                return Verdict::Revoked { path: e.path.to_path_buf(), line: e.line };
            }
            Marker::Revoked | Marker::CertAuthority => {}
            Marker::None if e.key.key_data() == key => {
                known.get_or_insert((e.path, e.line));
            }
            Marker::None if e.key.algorithm() == key.algorithm() => {
                same_algorithm.get_or_insert(e);
            }
            Marker::None => {
                other_algorithm.get_or_insert(e);
            }
        }
    }
    if let Some((path, line)) = known {
        return Verdict::Known { path: path.to_path_buf(), line };
    }
    // ssh names the last mismatching line of any type; the first one of the presented key's type
    // is the one the user most likely has to fix.
    match same_algorithm.or(other_algorithm) {
        Some(e) => Verdict::Changed {
            path: e.path.to_path_buf(),
            line: e.line,
            expected: fingerprint(&e.key),
            algorithm: e.key.algorithm(),
        },
        None => Verdict::Unknown,
    }
}

/// Several names: Revoked under any, else Changed under any, else Known under any.
fn combine(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let rank = |v: &Verdict| match v {
        Verdict::Revoked { .. } => 3,
        Verdict::Changed { .. } => 2,
        Verdict::Known { .. } => 1,
        Verdict::Unknown => 0,
    };
    // Strictly greater: among equal verdicts the first name's is kept.
    verdicts.fold(Verdict::Unknown, |best, v| if rank(&v) > rank(&best) { v } else { best })
}

/// `sshkey_cert_check_host` with ssh's defaults: a host certificate, signed (by an algorithm
/// CASignatureAlgorithms allows) by the CA, valid now, no critical options, and naming one of
/// the hosts among its principals (none listed means any host). Principals are compared exactly:
/// ssh 9.2 refused both `i-0*` and `I-0ABC` for alias `i-0abc`.
fn host_certificate_valid(cert: &Certificate, names: &[HostName], now: u64) -> bool {
    if cert.cert_type() != CertType::Host || !cert.critical_options().is_empty() {
        return false;
    }
    // RSA signatures with SHA-1 ("ssh-rsa") are not in ssh's default CASignatureAlgorithms.
    if cert.signature().algorithm() == (Algorithm::Rsa { hash: None }) {
        return false;
    }
    let ca = cert.signature_key().fingerprint(HashAlg::Sha256);
    if cert.validate_at(now, [&ca]).is_err() {
        return false;
    }
    let principals = cert.valid_principals();
    principals.is_empty() || names.iter().any(|n| principals.iter().any(|p| p.as_str() == n.host()))
}

// ---------------------------------------------------------------------------------------------
// Lines

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

/// A parsed line whose host field matched.
struct Entry<'f> {
    path: &'f Path,
    line: usize,
    marker: Marker,
    key: PublicKey,
}

/// Entries matching `lookup`, in file and line order.
fn entries_for<'f>(files: &'f [KnownHostsFile], lookup: &str) -> impl Iterator<Item = Entry<'f>> {
    let lookup = lookup.to_owned();
    scan(files, move |hosts| hosts_match(hosts, &lookup))
}

/// Entries matching any of `names`, each line once.
fn entries<'f>(files: &'f [KnownHostsFile], names: &[HostName]) -> impl Iterator<Item = Entry<'f>> {
    let lookups: Vec<String> = names.iter().map(HostName::lookup).collect();
    scan(files, move |hosts| lookups.iter().any(|l| hosts_match(hosts, l)))
}

fn scan<'f>(files: &'f [KnownHostsFile], matches: impl Fn(&[u8]) -> bool) -> impl Iterator<Item = Entry<'f>> {
    files
        .iter()
        // Line numbers count every line, blank, comment or malformed, as ssh's do.
        .flat_map(|file| {
            file.contents.split(|&b| b == b'\n').enumerate().map(|(i, text)| (file.path.as_path(), i + 1, text))
        })
        .filter_map(move |(path, line, text)| {
            let fields = split_line(text)?;
            // Decoding a key costs more than matching names, so only lines for this host are parsed.
            if !matches(fields.hosts) {
                return None;
            }
            let key = parse_key(fields.key)?;
            Some(Entry { path, line, marker: fields.marker, key })
        })
}

struct Fields<'a> {
    marker: Marker,
    hosts: &'a [u8],
    /// From the key type on (the comment, if any, is still attached).
    key: &'a [u8],
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_blank(b)).count();
    &s[n..]
}

/// Split a line as `hostkeys_foreach` does; None for comments, blank and malformed lines.
fn split_line(line: &[u8]) -> Option<Fields<'_>> {
    // C string handling ends a line at a NUL byte (ssh reads on past a NUL that ends the host
    // field, from its line buffer; no writer produces such lines, so they are just cut).
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    // CRLF files: ssh keeps the '\r' but its base64 decoder skips it; dropping it is equivalent.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = skip_blanks(line);
    if rest.is_empty() || rest[0] == b'#' {
        return None;
    }
    let mut marker = Marker::None;
    while rest.first() == Some(&b'@') {
        // `check_markers`: one marker only, ended by the first space of the line (or, if there is
        // none, the first tab), 2 to 31 bytes long; an unknown marker makes the line invalid.
        if marker != Marker::None {
            return None;
        }
        let end = rest.iter().position(|&b| b == b' ').or_else(|| rest.iter().position(|&b| b == b'\t'))?;
        if !(2..32).contains(&end) {
            return None;
        }
        marker = match &rest[..end] {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        rest = skip_blanks(&rest[end..]);
    }
    let end = rest.iter().position(|&b| is_blank(b))?;
    let hosts = &rest[..end];
    let key = skip_blanks(&rest[end..]);
    if key.is_empty() || key[0] == b'#' || hosts.is_empty() {
        return None;
    }
    Some(Fields { marker, hosts, key })
}

/// `sshkey_read`: a type name, blanks, base64 of the key blob, then anything. The type name must
/// be the blob's exact algorithm name (ssh 9.2 ignores `ED25519 AAAA…` and `ssh-rsa <ed25519>`).
fn parse_key(text: &[u8]) -> Option<PublicKey> {
    let type_end = text.iter().position(|&b| is_blank(b))?;
    let algorithm = &text[..type_end];
    let rest = skip_blanks(&text[type_end..]);
    let blob_end = rest.iter().position(|&b| is_blank(b)).unwrap_or(rest.len());
    let blob = Base64::decode_vec(std::str::from_utf8(&rest[..blob_end]).ok()?).ok()?;
    let key = PublicKey::from_bytes(&blob).ok()?;
    (key.algorithm().as_str().as_bytes() == algorithm).then_some(key)
}

// ---------------------------------------------------------------------------------------------
// Host matching

/// `lookup` is lowercase already (built by [`HostName`]), as ssh's is when it hashes it.
fn hosts_match(hosts: &[u8], lookup: &str) -> bool {
    // A field starting with '|' is one hashed name; commas are not split there (`match_maybe_hashed`).
    if hosts.first() == Some(&b'|') {
        hashed_match(hosts, lookup)
    } else {
        match_pattern_list(lookup.as_bytes(), hosts) == PatternMatch::Positive
    }
}

/// ssh recomputes `|1|salt|hash` for the looked-up name with the entry's salt and compares the
/// text, so only a 20-byte salt and canonical base64 can ever match.
fn hashed_match(field: &[u8], lookup: &str) -> bool {
    let Some(rest) = field.strip_prefix(HASH_MAGIC) else { return false };
    let Some(end) = rest.iter().position(|&b| b == b'|') else { return false };
    let Ok(salt_b64) = std::str::from_utf8(&rest[..end]) else { return false };
    let Ok(salt) = Base64::decode_vec(salt_b64) else { return false };
    let Ok(salt) = <[u8; SHA1_LEN]>::try_from(salt.as_slice()) else { return false };
    hashed_name(&salt, lookup).as_bytes() == field
}

fn hashed_name(salt: &[u8; SHA1_LEN], lookup: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail; an empty digest would just never match.
    let hash = match <Hmac<Sha1> as KeyInit>::new_from_slice(salt) {
        Ok(mut mac) => {
            mac.update(lookup.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    format!("|1|{}|{}", Base64::encode_string(salt), Base64::encode_string(&hash))
}

/// A name ssh reads back from a plain entry as exactly itself: not a marker, hash or comment,
/// not a negation, no wildcard, no comma (which would make it two names).
fn is_plain_safe(lookup: &str) -> bool {
    !lookup.starts_with(['@', '|', '#', '!']) && !lookup.contains([',', '*', '?'])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatternMatch {
    Negative,
    None,
    Positive,
}

/// `match_pattern_list(host, patterns, dolower=1)`: comma-separated patterns, each maybe negated
/// with `!`, matched case-insensitively (the host is already lowercased). A negated match ends
/// the scan as Negative, so it excludes the line whichever pattern comes first.
fn match_pattern_list(host: &[u8], list: &[u8]) -> PatternMatch {
    let mut positive = false;
    let mut i = 0;
    while i < list.len() {
        let negated = list[i] == b'!';
        if negated {
            i += 1;
        }
        let start = i;
        while i < list.len() && list[i] != b',' {
            i += 1;
        }
        let sub = &list[start..i];
        if sub.len() >= MAX_SUBPATTERN {
            return PatternMatch::None;
        }
        if i < list.len() {
            i += 1; // the comma
        }
        if glob(host, sub) {
            if negated {
                return PatternMatch::Negative;
            }
            positive = true;
        }
    }
    if positive { PatternMatch::Positive } else { PatternMatch::None }
}

/// `match_pattern` on a lowercase `s`, the pattern lowercased as it goes (ASCII, like ssh's
/// `tolower`): `*` any run of bytes, `?` one byte, everything else literal (no escapes, no
/// classes). Iterative with one backtrack point, so hostile patterns cannot blow the stack or
/// take exponential time; it accepts exactly the strings ssh's recursive matcher accepts.
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            pi += 1;
            star = Some((pi, si));
        } else if pi < p.len() && (p[pi] == b'?' || p[pi].to_ascii_lowercase() == s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((star_p, star_s)) = star {
            pi = star_p;
            si = star_s + 1;
            star = Some((star_p, si));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors made on 2026-11-23 with OpenSSH 9.2p1 (Debian 12):
    //   ssh-keygen -t ed25519 -N '' -C '' -f host_a      (likewise host_b, host_ca)
    //   ssh-keygen -t ecdsa -b 256 -N '' -C '' -f host_ec
    //   ssh-keygen -t rsa -b 2048 -N '' -C '' -f host_rsa
    // Fingerprints are what `ssh-keygen -lf` printed.
    const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTa";
    const FP_A: &str = "SHA256:M6WGhd4WsJMQg6IKhM8YCz4nStEoUe0gd3fhB0Xr3ZQ";
    const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOH156ABvC8V3aGVTKwii12/nLxecyGGti5kXMDdkS95";
    const FP_B: &str = "SHA256:Rm4ynj27zqrMclcA3CfGxn39rwt28tOhjKW63jNbypk";
    const KEY_CA: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWwVDYff0RFjngypz3rT5sX1ewxZ2UBT5qmuIZcn3GQ";
    const KEY_EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFG2IjFzqma76dCi60oLS4mSz32/HQthPpcR76QvYAwGS49qqnp4A+Ix2YFTNljCxtFLDPtpyv1RhLqhoB0b5fs=";
    const FP_EC: &str = "SHA256:QabR6HbEwNEmXU/3amSinzNheLIXRpXZ6azjeTygfyE";
    const KEY_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCUK7YLImF/TPZqTD7ad3Te09mDMc0aPXq0mv5Ow31ZEFCA7DWaZy2W0KNWzr25SHtBJaO+GmGywaw5o8NzDGbKn0wd0hKcFaVetaMY1RyEdsgof5xqyhiNXawv1vsJ+pGrq3XEWzKd6cnAMFOKb6Du5Q8J5toYs4FlXmj3JcAhtFtFKy/po1q4f/MJtTXonv5atyQGFe9cZedmmBgxLfZRLmCwoLGtHxs95pjk0Jk+Xx96JUPgQCwklExAmHHRZ2ZZQGWNnW3/iAfgsznMEMgDbOD+S2ieHCivadCN6Cc9spd3cvuhH2PLCvdBSZ5Eh/IWDSDLaYMHckVuL7NdhIAT";
    const FP_RSA: &str = "SHA256:4SSKBhqFejNiII+Kr4/uSGAANzSuM42BPCBQY77T3+8";

    // A file of plain lines, then `ssh-keygen -H -f FILE` (which lowercases before hashing):
    //   i-0abc123def4567890 KEY_A / [bastion.example.com]:2222 KEY_EC / Web.Example.COM KEY_A /
    //   multi.example.com,10.0.1.10 KEY_A (hashed into lines 4 and 5).
    // `ssh-keygen -F NAME -f FILE` found: i-0abc123def4567890 line 1, [bastion.example.com]:2222
    // line 2, web.example.com line 3 (not Web.Example.COM: -F does not lowercase), multi.example.com
    // line 4, 10.0.1.10 line 5, and nothing for bastion.example.com.
    const HASHED: &str = "\
|1|63aATeDjCYjho4uT3Ko4eJ6cZc0=|qtRGYZ8Bxu52Ai1SSr0n6jG8El0= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTa
|1|PvTriWbTsPqSfZd7w2VyZ9hgMng=|cGVcJWu5CPDGqbvrkFGX+zTL7dk= ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFG2IjFzqma76dCi60oLS4mSz32/HQthPpcR76QvYAwGS49qqnp4A+Ix2YFTNljCxtFLDPtpyv1RhLqhoB0b5fs=
|1|Am+uMIXIbb1uYMEpazGJOE3euD8=|pfy8n02yUethjbYs0I08UuiR0ZQ= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTa
|1|Se6BrMhD5F78fpx/JtAKTwJA+G4=|XNOc4EaUDl+qT2m9RnDuvTbUQR4= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTa
|1|UKpme7YNcdd0YVIJIrJG4jKRxRQ=|iXisGLjfWIrTSfjpUmo84ScwnOw= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTa
";

    // Host certificates for host_a's key, signed by host_ca:
    //   ssh-keygen -s host_ca -I hop-test -h -n i-0abc host_a.pub           (CERT_OK)
    //   ... -h -n i-0abc -V 20200101:20200102                                (CERT_EXPIRED)
    //   ... -n i-0abc  (no -h: a user certificate)                            (CERT_USER)
    //   ... -h  (no principals)                                               (CERT_NO_PRINCIPALS)
    //   ... -h -n i-0def                                                      (CERT_OTHER_HOST)
    //   ssh-keygen -s host_rsa -t ssh-rsa -I hop-test -h -n i-0abc            (CERT_RSA_SHA1)
    //   ssh-keygen -s host_rsa -t rsa-sha2-512 -I hop-test -h -n i-0abc       (CERT_RSA_SHA512)
    // With sshd presenting each and `@cert-authority i-0abc <CA>` in known_hosts, ssh 9.2 with
    // HostKeyAlias=i-0abc accepted CERT_OK, CERT_NO_PRINCIPALS and CERT_RSA_SHA512 and fell back
    // to the plain key for the others ("expired", "not a host certificate", "name is not a listed
    // principal", "signed with disallowed algorithm").
    const CERT_OK: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAICM+5WS0HeQLwjinpZXwQVbzEdsNWFBVZw2D7IaFCzkTAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAACgAAAAZpLTBhYmMAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACClsFQ2H39ERY54Mqc960+bF9XsMWdlAU+apriGXJ9xkAAAAFMAAAALc3NoLWVkMjU1MTkAAABAyCnwFU57JkzsT+tVKss9zY5UTfNFT7tID2AVCWFIRO4ofyUVNlJLf9ldvbIschYHCkDf9xligl4zQcL6M22BCg==";
    const CERT_EXPIRED: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIC5IjiY/kQBl/KY6zvTkxfk5mubA0H7manGf0ZwHuJu0AAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAACgAAAAZpLTBhYmMAAAAAXgvhAAAAAABeDTKAAAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACClsFQ2H39ERY54Mqc960+bF9XsMWdlAU+apriGXJ9xkAAAAFMAAAALc3NoLWVkMjU1MTkAAABADm1BM2gY+Iz02i+orxt61wQVZMyfc958v4P/S2RWUp7Gibfxb56Egxac5EH6mY5Bhl8+jXZ5EY8Xe0CTSewTCw==";
    const CERT_USER: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAICbSnx8vL3/LjLGIl2BYBYeaEp8WlcsACacSvWxkYiWFAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAABAAAACGhvcC10ZXN0AAAACgAAAAZpLTBhYmMAAAAAAAAAAP//////////AAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgpbBUNh9/REWOeDKnPetPmxfV7DFnZQFPmqa4hlyfcZAAAABTAAAAC3NzaC1lZDI1NTE5AAAAQA87HcrJgzGVW7YFJcjGrS+0n9m4fsOmelq5y7S46rD3jGAQbj75rSWAW9TMoLZjC7sRxiTad6f5Px4yCdf1egc=";
    const CERT_NO_PRINCIPALS: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIL9comjBgZARZOcSR0rU+e/WolW+U2qKOcUZk7fqzXiBAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAAAAAAAAAAAAAA//////////8AAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIKWwVDYff0RFjngypz3rT5sX1ewxZ2UBT5qmuIZcn3GQAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEAmIYHjLUFI7r1q66yZLRbC2416/JyIL8FrqTwJFGuSOZbDF9O/owkj2/IE6XXCQoHHFSBbwK96/I/+/9RyJV4M";
    const CERT_OTHER_HOST: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIJwDrZQn9nVqM+RuOZaqjGUTiuwGWBQLpTT1gsS1gy9LAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAACgAAAAZpLTBkZWYAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACClsFQ2H39ERY54Mqc960+bF9XsMWdlAU+apriGXJ9xkAAAAFMAAAALc3NoLWVkMjU1MTkAAABAh/B1CF5HT2rxwC0vJPxTPLmipY//V8tOXF2BrwCuR6CnrJf2itORv+zBqNOWOFy4bhjhbIazHQI2F6Y/ki4gBA==";
    const CERT_RSA_SHA1: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIB6lAUCQ6M1lY3JCXlbkwBm7yxlsy2yCGK5AqVHhoSvoAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAACgAAAAZpLTBhYmMAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAABFwAAAAdzc2gtcnNhAAAAAwEAAQAAAQEAlCu2CyJhf0z2akw+2nd03tPZgzHNGj16tJr+TsN9WRBQgOw1mmctltCjVs69uUh7QSWjvhphssGsOaPDcwxmyp9MHdISnBWlXrWjGNUchHbIKH+casoYjV2sL9b7CfqRq6t1xFsynenJwDBTim+g7uUPCebaGLOBZV5o9yXAIbRbRSsv6aNauH/zCbU16J7+WrckBhXvXGXnZpgYMS32US5gsKCxrR8bPeaY5NCZPl8feiVD4EAsJJRMQJhx0WdmWUBljZ1t/4gH4LM5zBDIA2zg/ktonhwor2nQjegnPbKXd3L7oR9jywr3QUmeRIfyFg0gy2mDB3JFbi+zXYSAEwAAAQ8AAAAHc3NoLXJzYQAAAQAqnCNQ6fWnzt6gDO0nUw+QOd+H7EiHe3rebMiIvIsxS0uSE9PxITE5AFXCe7ysiUb/VYG2BhORKrza0POVNEuNQqcJT8pOARStQhDoKd4GMxsf4hfk7OsAENsMeNEkigLxlOsvowISNHVbW2a5PmKZM0Vvk2VsGSRDVXpCxzH5Ej7xr3HoGDM2F9N0N5QOtIvvFvdVzCGX/jzPJATXs0/KHTY0rYsq3MSDgf32bHPjxPwkWi6KLSuVV9w6to6g/eNgBOV7iMHapIs6fPK6nLYJN27Rqp7yb8ru5fPpyFoGLht9oiCFlR1tpHhJzaxpr/yQbgSxL+Lt6Sry3+m7AOBf";
    const CERT_RSA_SHA512: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIDysmaY+B+dLihUIyCvNXr+GtEUwU1jiHhiIjfg/EEWkAAAAICmObWURtON2ivK+emG942IgRPEMOjGYstZLxIdNzkTaAAAAAAAAAAAAAAACAAAACGhvcC10ZXN0AAAACgAAAAZpLTBhYmMAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAABFwAAAAdzc2gtcnNhAAAAAwEAAQAAAQEAlCu2CyJhf0z2akw+2nd03tPZgzHNGj16tJr+TsN9WRBQgOw1mmctltCjVs69uUh7QSWjvhphssGsOaPDcwxmyp9MHdISnBWlXrWjGNUchHbIKH+casoYjV2sL9b7CfqRq6t1xFsynenJwDBTim+g7uUPCebaGLOBZV5o9yXAIbRbRSsv6aNauH/zCbU16J7+WrckBhXvXGXnZpgYMS32US5gsKCxrR8bPeaY5NCZPl8feiVD4EAsJJRMQJhx0WdmWUBljZ1t/4gH4LM5zBDIA2zg/ktonhwor2nQjegnPbKXd3L7oR9jywr3QUmeRIfyFg0gy2mDB3JFbi+zXYSAEwAAARQAAAAMcnNhLXNoYTItNTEyAAABAF2Y9kzfUXWTCkojwNBglKiL7WblgAXq3vbKnqXA/dYwlVVbKZb3G6PfItcMEqdSUxWs4frOyhPDN4Z8aJNWWWb9ndoI3DhRnkud+tjK2EIlFYi6mcimqiaClrfCrfXn4YW77NgQGnyPE6Ue6QYlNy3Ad43RjpNlXrnD6ztAKRWM7jq5K8DlJFUN6uPsGbZWxOzu7vBJwqb9duaUB4rnEecYtA2EKyPxDkUKJA/KMfnqquGvELXOwSz/6baKfiwieY1MDMX3PdO1XrraN5HDcju93MkK+1YAowsf1tE4cDRiKgnRa8gtpcNsdLh2W70SmvrgeGiMQDbmuFmMW7CqldI=";

    /// 2027-01-15, after CERT_EXPIRED's window.
    const NOW: u64 = 1_800_000_000;

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).expect("test key")
    }

    fn cert(text: &str) -> Certificate {
        Certificate::from_openssh(text).expect("test certificate")
    }

    fn file(path: &str, text: &str) -> KnownHostsFile {
        KnownHostsFile::new(path, text)
    }

    fn alias(name: &str) -> Vec<HostName> {
        vec![HostName::alias(name)]
    }

    fn known(path: &str, line: usize) -> Verdict {
        Verdict::Known { path: path.into(), line }
    }

    fn revoked(path: &str, line: usize) -> Verdict {
        Verdict::Revoked { path: path.into(), line }
    }

    fn changed(path: &str, line: usize, stored: &str) -> Verdict {
        let stored = key(stored);
        Verdict::Changed { path: path.into(), line, expected: fingerprint(&stored), algorithm: stored.algorithm() }
    }

    fn check_one(text: &str, names: &[HostName], presented: &str) -> Verdict {
        check(&[file("kh", text)], names, &key(presented))
    }

    #[test]
    fn lookup_names_are_built_like_openssh() {
        assert_eq!(HostName::alias("I-0ABC").lookup(), "i-0abc");
        assert_eq!(HostName::new("Bastion.Example.com", 22).lookup(), "bastion.example.com");
        assert_eq!(HostName::new("bastion", 2222).lookup(), "[bastion]:2222");
        assert_eq!(HostName::new("::1", 2222).lookup(), "[::1]:2222");
        assert_eq!(HostName::new("bastion", 0).lookup(), "bastion");
        assert_eq!(HostName::new("bastion", 2222).to_string(), "[bastion]:2222");
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen_match() {
        let cases = [
            (HostName::alias("i-0abc123def4567890"), KEY_A, known("kh", 1)),
            // ssh lowercases the alias before hashing the lookup.
            (HostName::alias("I-0ABC123DEF4567890"), KEY_A, known("kh", 1)),
            (HostName::new("bastion.example.com", 2222), KEY_EC, known("kh", 2)),
            (HostName::new("bastion.example.com", 22), KEY_EC, Verdict::Unknown),
            (HostName::new("Web.Example.COM", 22), KEY_A, known("kh", 3)),
            (HostName::new("multi.example.com", 22), KEY_A, known("kh", 4)),
            (HostName::new("10.0.1.10", 22), KEY_A, known("kh", 5)),
            (HostName::new("10.0.1.11", 22), KEY_A, Verdict::Unknown),
            (HostName::alias("i-0abc123def4567890"), KEY_B, changed("kh", 1, KEY_A)),
        ];
        for (name, presented, want) in cases {
            assert_eq!(check_one(HASHED, std::slice::from_ref(&name), presented), want, "{name}");
        }
    }

    #[test]
    fn hashed_names_need_the_exact_ssh_text() {
        let line1 = HASHED.lines().next().expect("line");
        let (hosts, rest) = line1.split_once(' ').expect("fields");
        let cases = [
            // A hashed field is one name: a comma does not start another pattern.
            format!("{hosts},i-0abc123def4567890 {rest}"),
            format!("!{hosts} {rest}"),
            format!("|2|{} {rest}", &hosts[3..]),
            // HMAC-SHA1 of "i-0abc" keyed with 19 and 21 bytes of 7 (made with Python's hmac):
            // ssh 9.2 ignored both and accepted the same with 20 bytes (HASHED_SALT_20).
            format!("|1|BwcHBwcHBwcHBwcHBwcHBwcHBw==|l1ggQcVkTn3sKp60tiRIdaWdvEA= {rest}"),
            format!("|1|BwcHBwcHBwcHBwcHBwcHBwcHBwcH|mzLa37rE8qr7O4QR3Xw2K7WujH0= {rest}"),
            "|1|| ".to_string() + rest,
            "|1|!!!|@@@ ".to_string() + rest,
            "| ".to_string() + rest,
        ];
        for text in cases {
            let names = [HostName::alias("i-0abc123def4567890"), HostName::alias("i-0abc")];
            assert_eq!(check_one(&text, &names, KEY_A), Verdict::Unknown, "{text}");
        }
        let salt_20 = format!("|1|BwcHBwcHBwcHBwcHBwcHBwcHBwc=|tivYDMFw1tFdZIhpOukvf/Gw16c= {KEY_A}");
        assert_eq!(check_one(&salt_20, &alias("i-0abc"), KEY_A), known("kh", 1));
        assert_eq!(entry_line(&HostName::alias("i-0abc"), &key(KEY_A), Some(&[7; 20])).expect("entry"), salt_20);
    }

    #[test]
    fn entry_line_reproduces_ssh_keygen_hashing() {
        for (line, name, presented) in [
            (0, HostName::alias("i-0abc123def4567890"), KEY_A),
            (1, HostName::new("bastion.example.com", 2222), KEY_EC),
            (2, HostName::new("Web.Example.COM", 22), KEY_A),
        ] {
            let want = HASHED.lines().nth(line).expect("line");
            let salt_b64 = want.split('|').nth(2).expect("salt");
            let salt: [u8; 20] = Base64::decode_vec(salt_b64).expect("b64").try_into().expect("20 bytes");
            assert_eq!(entry_line(&name, &key(presented), Some(&salt)).expect("entry"), want);
        }
    }

    #[test]
    fn entry_line_plain_and_refusals() {
        assert_eq!(
            entry_line(&HostName::alias("I-0abc"), &key(KEY_A), None).expect("entry"),
            format!("i-0abc {KEY_A}")
        );
        assert_eq!(
            entry_line(&HostName::new("bastion", 2222), &key(KEY_EC), None).expect("entry"),
            format!("[bastion]:2222 {KEY_EC}")
        );
        // Round trip: what we write is what we then find.
        let line = entry_line(&HostName::new("bastion", 2222), &key(KEY_RSA), None).expect("entry");
        assert_eq!(check_one(&line, &[HostName::new("bastion", 2222)], KEY_RSA), known("kh", 1));
        let line = entry_line(&HostName::alias("i-9"), &key(KEY_B), Some(&[42; 20])).expect("entry");
        assert_eq!(check_one(&line, &alias("i-9"), KEY_B), known("kh", 1));
        // Written plain, these would read back as patterns, several names, a marker or a comment.
        for bad in ["a,b", "*.example.com", "host?", "!host", "@revoked", "#x", "|1|x", "", "a b", "a\tb", "a\u{7}"] {
            let result = entry_line(&HostName::alias(bad), &key(KEY_A), None);
            assert!(matches!(result, Err(KnownHostsError::UnsafeName(_))), "{bad:?}: {result:?}");
        }
        assert!(entry_line(&HostName::alias(""), &key(KEY_A), Some(&[1; 20])).is_err());
        assert!(entry_line(&HostName::alias("*.example.com"), &key(KEY_A), Some(&[1; 20])).is_ok());
    }

    #[test]
    fn fingerprints_are_printed_like_ssh_keygen() {
        for (text, want) in [(KEY_A, FP_A), (KEY_B, FP_B), (KEY_EC, FP_EC), (KEY_RSA, FP_RSA)] {
            assert_eq!(fingerprint(&key(text)), want);
        }
    }

    /// Host-field rules, each row checked with `ssh-keygen -F NAME` on the same lines (and a
    /// 200-line random pattern file during development: all agreed).
    #[test]
    fn patterns_match_like_openssh() {
        let long = "x".repeat(1030);
        let max_ok = "x".repeat(1022);
        let too_long = "x".repeat(1023);
        let cases: Vec<(String, HostName, bool)> = vec![
            ("i-0abc".into(), HostName::alias("i-0abc"), true),
            ("I-0ABC".into(), HostName::alias("i-0abc"), true),
            ("i-0abc".into(), HostName::alias("i-0abcd"), false),
            ("i-0ab?".into(), HostName::alias("i-0abd"), true),
            ("i-0ab?".into(), HostName::alias("i-0ab"), false),
            ("i-*".into(), HostName::alias("i-0abc"), true),
            ("*".into(), HostName::new("10.0.1.10", 2222), true),
            ("?".into(), HostName::alias("x"), true),
            ("i-*,!i-0abc".into(), HostName::alias("i-0abc"), false),
            ("!i-0abc,i-*".into(), HostName::alias("i-0abc"), false),
            ("!i-0abc,i-*".into(), HostName::alias("i-0abd"), true),
            ("!i-0abc".into(), HostName::alias("i-0abd"), false),
            ("!!i-0abc".into(), HostName::alias("i-0abc"), false),
            ("*.example.com".into(), HostName::new("web.example.com", 22), true),
            ("*.EXAMPLE.com".into(), HostName::new("A.example.COM", 22), true),
            ("!*.example.com".into(), HostName::new("web.example.com", 22), false),
            ("web.*.com".into(), HostName::new("web.x.com", 22), true),
            ("*a*b*c".into(), HostName::alias("axbyc"), true),
            ("a**b".into(), HostName::alias("ab"), true),
            ("?b?".into(), HostName::alias("b"), false),
            ("i-0abc,".into(), HostName::alias("i-0abc"), true),
            (",i-0abc".into(), HostName::alias("i-0abc"), true),
            ("i-0abc#".into(), HostName::alias("i-0abc"), false),
            ("web.example.com,10.0.1.10".into(), HostName::new("10.0.1.10", 22), true),
            ("10.0.1.*,!10.0.1.10".into(), HostName::new("10.0.1.10", 22), false),
            ("10.0.1.*,!10.0.1.10".into(), HostName::new("10.0.1.11", 22), true),
            ("[i-0abc]:2222".into(), HostName::new("i-0abc", 2222), true),
            ("[I-0ABC]:2222".into(), HostName::new("i-0abc", 2222), true),
            ("[*]:2222".into(), HostName::new("i-0abd", 2222), true),
            ("*:2222".into(), HostName::new("i-0abd", 2222), true),
            ("[i-0abc]:*".into(), HostName::new("i-0abc", 2222), true),
            ("[10.0.1.*]:22".into(), HostName::new("10.0.1.10", 22), false),
            ("i-0abc".into(), HostName::alias("[i-0abc]:2222"), false),
            // A sub-pattern of 1023+ bytes makes the whole list fail, wherever it is.
            (format!("{long},i-0abc"), HostName::alias("i-0abc"), false),
            (format!("i-0abc,{too_long}"), HostName::alias("i-0abc"), false),
            (format!("i-0abc,{max_ok}"), HostName::alias("i-0abc"), true),
        ];
        for (hosts, name, matches) in cases {
            let want = if matches { known("kh", 1) } else { Verdict::Unknown };
            let text = format!("{hosts} {KEY_A}");
            assert_eq!(check_one(&text, std::slice::from_ref(&name), KEY_A), want, "{hosts:.40} vs {name}");
        }
    }

    #[test]
    fn glob_is_linear_on_hostile_patterns() {
        let pattern = "*a".repeat(500) + "b";
        let host = "a".repeat(2000);
        assert!(!glob(host.as_bytes(), pattern.as_bytes()));
        assert!(glob(b"", b"***"));
        assert!(!glob(b"", b"?"));
    }

    #[test]
    fn non_default_port_falls_back_to_the_bare_host_for_known_keys_only() {
        let name = [HostName::new("127.0.0.1", 42222)];
        // ssh 9.2, `ssh -p 42222 127.0.0.1`: a bare-host entry with the key is accepted ...
        assert_eq!(check_one(&format!("127.0.0.1 {KEY_A}"), &name, KEY_A), known("kh", 1));
        // ... a bare-host entry with another key is not a change, just unknown ...
        assert_eq!(check_one(&format!("127.0.0.1 {KEY_B}"), &name, KEY_A), Verdict::Unknown);
        // ... and a `[host]:port` entry with another key is a change, whatever the bare host has.
        let text = format!("[127.0.0.1]:42222 {KEY_B}\n127.0.0.1 {KEY_A}");
        assert_eq!(check_one(&text, &name, KEY_A), changed("kh", 1, KEY_B));
        // Revoked under the bare host: refused (ssh only warns and then asks as for a new host).
        let text = format!("127.0.0.1 {KEY_A}\n@revoked 127.0.0.1 {KEY_A}");
        assert_eq!(check_one(&text, &name, KEY_A), revoked("kh", 2));
        // An alias never falls back (ssh skips it under HostKeyAlias).
        assert_eq!(check_one(&format!("i-0abc {KEY_A}"), &[HostName::alias("[i-0abc]:2222")], KEY_A), Verdict::Unknown);
    }

    #[test]
    fn revoked_wins_and_is_scoped_to_the_names() {
        let a = alias("i-0abc");
        // Behaviours observed with ssh 9.2 (HostKeyAlias=i-0abc, server key A).
        let cases = [
            (format!("i-0abc {KEY_A}\n@revoked i-0abc {KEY_A}"), revoked("kh", 2)),
            (format!("@revoked i-0abc {KEY_A}\ni-0abc {KEY_A}"), revoked("kh", 1)),
            (format!("@revoked i-0abc {KEY_A}"), revoked("kh", 1)),
            (format!("i-0abc {KEY_A}\n@revoked * {KEY_A}"), revoked("kh", 2)),
            (format!("i-0abc {KEY_A}\n@revoked i-0* {KEY_A}"), revoked("kh", 2)),
            // `check_markers` ends a marker at the line's first space, or its first tab if it has
            // no space: a tab-only line is a revocation, a tab then spaces is a broken line.
            (format!("i-0abc {KEY_A}\n@revoked\ti-0abc\t{}", KEY_A.replace(' ', "\t")), revoked("kh", 2)),
            (format!("i-0abc {KEY_A}\n@revoked\ti-0abc {KEY_A}"), known("kh", 1)),
            // A revocation for another name does not apply here.
            (format!("i-0abc {KEY_A}\n@revoked other {KEY_A}"), known("kh", 1)),
            (format!("i-0abc {KEY_A}\n@revoked i-*,!i-0abc {KEY_A}"), known("kh", 1)),
            // Revoking another key changes nothing, and a @revoked line is not a stored key.
            (format!("i-0abc {KEY_A}\n@revoked i-0abc {KEY_B}"), known("kh", 1)),
            (format!("@revoked i-0abc {KEY_B}"), Verdict::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(check_one(&text, &a, KEY_A), want, "{text}");
        }
        // The system file's revocation beats the user file's entry.
        let files = [file("user", &format!("i-0abc {KEY_A}")), file("global", &format!("@revoked i-0abc {KEY_A}"))];
        assert_eq!(check(&files, &a, &key(KEY_A)), revoked("global", 1));
    }

    #[test]
    fn cert_authority_lines_are_not_host_keys() {
        let a = alias("i-0abc");
        // ssh 9.2: "No ED25519 host key is known for i-0abc".
        assert_eq!(check_one(&format!("@cert-authority i-0abc {KEY_A}"), &a, KEY_A), Verdict::Unknown);
        // ssh 9.2: "Offending ED25519 key in FILE:2".
        let text = format!("@cert-authority i-0abc {KEY_A}\ni-0abc {KEY_B}");
        assert_eq!(check_one(&text, &a, KEY_A), changed("kh", 2, KEY_B));

        let files = [
            file("user", &format!("# CAs\n@cert-authority *.example.com,i-0* {KEY_CA}\n@cert-authority other {KEY_B}")),
            file("global", &format!("i-0abc {KEY_A}\n@cert-authority i-0abc {KEY_RSA}")),
        ];
        let cas = cert_authorities(&files, &a);
        let got: Vec<(String, PathBuf, usize)> = cas.iter().map(|(k, p, l)| (fingerprint(k), p.clone(), *l)).collect();
        assert_eq!(
            got,
            vec![(fingerprint(&key(KEY_CA)), "user".into(), 2), (fingerprint(&key(KEY_RSA)), "global".into(), 2)]
        );
        assert!(cert_authorities(&files, &alias("nobody")).is_empty());
    }

    #[test]
    fn changed_names_the_right_file_and_line() {
        let a = alias("i-0abc");
        let files = [
            file("user", &format!("# first\n\nother {KEY_B}\ni-0abc {KEY_RSA}\ni-0abc {KEY_B}\n")),
            file("user2", &format!("i-0abc {KEY_B}")),
            file("global", &format!("i-* {KEY_EC}")),
        ];
        // The first entry of the presented key's type, even after an entry of another type (ssh
        // would name the last mismatching line, here global:1).
        assert_eq!(check(&files, &a, &key(KEY_A)), changed("user", 5, KEY_B));
        assert_eq!(check(&files, &a, &key(KEY_CA)), changed("user", 5, KEY_B));
        // Known anywhere beats mismatches anywhere.
        assert_eq!(check(&files, &a, &key(KEY_EC)), known("global", 1));
        assert_eq!(check(&files, &a, &key(KEY_B)), known("user", 5));
        // Only other types on file: the first of them.
        let files = [file("user", &format!("i-0abc {KEY_RSA}")), file("global", &format!("i-0abc {KEY_EC}"))];
        assert_eq!(check(&files, &a, &key(KEY_A)), changed("user", 1, KEY_RSA));
        // ssh 9.2, user file B and system file A: accepted.
        let files = [file("user", &format!("i-0abc {KEY_B}")), file("global", &format!("i-0abc {KEY_A}"))];
        assert_eq!(check(&files, &a, &key(KEY_A)), known("global", 1));
    }

    #[test]
    fn only_other_key_types_known_is_a_change() {
        // ssh 9.2 with only an RSA key on file and an Ed25519 server key: "REMOTE HOST
        // IDENTIFICATION HAS CHANGED ... Offending RSA key in FILE:1", refused even with
        // StrictHostKeyChecking=accept-new.
        let verdict = check_one(&format!("i-0abc {KEY_RSA}"), &alias("i-0abc"), KEY_A);
        assert_eq!(verdict, changed("kh", 1, KEY_RSA));
        let Verdict::Changed { algorithm, expected, .. } = verdict else { unreachable!() };
        assert_eq!((algorithm.as_str(), expected.as_str()), ("ssh-rsa", FP_RSA));
    }

    #[test]
    fn several_names_revoked_or_changed_under_any_wins() {
        let names = [HostName::alias("i-0abc"), HostName::new("10.0.1.10", 22)];
        let cases = [
            (format!("i-0abc {KEY_A}"), known("kh", 1)),
            (format!("10.0.1.10 {KEY_A}"), known("kh", 1)),
            (format!("i-0abc {KEY_A}\n10.0.1.10 {KEY_B}"), changed("kh", 2, KEY_B)),
            (format!("10.0.1.10 {KEY_A}\n@revoked i-0abc {KEY_A}"), revoked("kh", 2)),
            (format!("i-0abc {KEY_B}\n10.0.1.10 {KEY_EC}"), changed("kh", 1, KEY_B)),
            (format!("i-0abc,10.0.1.10 {KEY_A}"), known("kh", 1)),
            (String::new(), Verdict::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(check_one(&text, &names, KEY_A), want, "{text}");
        }
        assert_eq!(check_one(&format!("i-0abc {KEY_A}"), &[], KEY_A), Verdict::Unknown);
    }

    #[test]
    fn crlf_blanks_tabs_and_comments_keep_line_numbers() {
        let a = alias("i-0abc");
        let cases = [
            (format!("# comment\r\n\r\n   \r\ni-0abc {KEY_A}\r\n"), 4),
            (format!("x {KEY_B}\r\ni-0abc {KEY_A} a comment\r\n"), 2),
            (format!("\n\n\t  # indented comment\ni-0abc\t \t{}", KEY_A.replacen(' ', "\t  ", 1)), 4),
            (format!("   i-0abc {KEY_A}"), 1),
            (format!("@revoked\t\tnobody {KEY_A}\n\t@cert-authority  i-0abc {KEY_B}\ni-0abc {KEY_A} # c"), 3),
        ];
        for (text, line) in cases {
            assert_eq!(check_one(&text, &a, KEY_A), known("kh", line), "{text:?}");
        }
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let (algo, blob) = KEY_A.split_once(' ').expect("key");
        let bad_lines = [
            "i-0abc".to_string(),
            "i-0abc ".to_string(),
            "i-0abc # comment".to_string(),
            format!("i-0abc {algo}"),
            format!("i-0abc {algo} "),
            format!("i-0abc ED25519 {blob}"),
            format!("i-0abc ed25519 {blob}"),
            format!("i-0abc ssh-rsa {blob}"),
            format!("i-0abc {algo} {blob}#junk"),
            format!("i-0abc {algo} {}", &blob[..blob.len() - 4]),
            format!("i-0abc {algo} !!{blob}"),
            format!("i-0abc {algo} {}", Base64::encode_string(b"\0\0\0\x0bssh-ed25519\0\0\0\x01x")),
            format!("i-0abc {algo} AAAAB3NzaC1yc2E="),
            format!("@foo i-0abc {KEY_A}"),
            format!("@revoked @revoked i-0abc {KEY_A}"),
            format!("@ i-0abc {KEY_A}"),
            format!("@cert-authority{KEY_A}"),
            format!("@revoked\ti-0abc {KEY_A}"),
            format!("i-0abc#x {KEY_A}"),
            "2048 35 1234567 i-0abc".to_string(),
            "i-0abc 2048 35 1234567".to_string(),
            format!("\0i-0abc {KEY_A}"),
            format!("i-0abc {algo}\0 {blob}"),
            format!("i-0abc {CERT_OK}"),
        ];
        let mut text = bad_lines.join("\n");
        text.push_str(&format!("\ni-0abc {KEY_A}\n"));
        assert_eq!(check_one(&text, &alias("i-0abc"), KEY_A), known("kh", bad_lines.len() + 1));
        // None of them is a stored key either: a different key is unknown, not changed.
        assert_eq!(check_one(&bad_lines.join("\n"), &alias("i-0abc"), KEY_A), Verdict::Unknown);
        // A NUL ends the line, as for ssh, which accepts `KEY\0junk` ...
        assert_eq!(check_one(&format!("i-0abc {KEY_A}\0junk"), &alias("i-0abc"), KEY_A), known("kh", 1));
        // ... but a NUL right after the host field makes ssh 9.2 read on past it (a buffer quirk of
        // `hostkeys_foreach`) and accept the key; here the line is just cut there.
        assert_eq!(check_one(&format!("i-0abc\0 {KEY_A}"), &alias("i-0abc"), KEY_A), Verdict::Unknown);
    }

    #[test]
    fn non_utf8_bytes_do_not_hide_the_file() {
        let mut contents = b"caf\xe9 \xff\xfe garbage\n# r\xe9sum\xe9\n".to_vec();
        contents.extend_from_slice(format!("i-0abc {KEY_A} comment").as_bytes());
        contents.extend_from_slice(b" \xe9\xe9\n");
        let files = [KnownHostsFile::new("kh", contents)];
        assert_eq!(check(&files, &alias("i-0abc"), &key(KEY_A)), known("kh", 3));
    }

    #[test]
    fn certificates_follow_ssh() {
        let a = alias("i-0abc");
        let ca_only = format!("@cert-authority i-0abc {KEY_CA}");
        let with_a = format!("@cert-authority i-0abc {KEY_CA}\ni-0abc {KEY_A}");
        let with_b = format!("@cert-authority i-0abc {KEY_CA}\ni-0abc {KEY_B}");
        let rsa_ca = format!("@cert-authority i-0abc {KEY_RSA}");
        let cases = [
            (CERT_OK, ca_only.clone(), known("kh", 1)),
            (CERT_OK, format!("@cert-authority i-* {KEY_CA}"), known("kh", 1)),
            // A valid certificate wins over a mismatching plain key (ssh 9.2 accepted it).
            (CERT_OK, with_b.clone(), known("kh", 1)),
            (CERT_NO_PRINCIPALS, ca_only.clone(), known("kh", 1)),
            (CERT_RSA_SHA512, rsa_ca.clone(), known("kh", 1)),
            // Invalid certificates fall back to their plain key.
            (CERT_EXPIRED, ca_only.clone(), Verdict::Unknown),
            (CERT_EXPIRED, with_a.clone(), known("kh", 2)),
            (CERT_EXPIRED, with_b.clone(), changed("kh", 2, KEY_B)),
            (CERT_USER, ca_only.clone(), Verdict::Unknown),
            (CERT_OTHER_HOST, ca_only.clone(), Verdict::Unknown),
            (CERT_OTHER_HOST, with_a, known("kh", 2)),
            (CERT_RSA_SHA1, rsa_ca, Verdict::Unknown),
            // The CA must be trusted for this name, and be the signer.
            (CERT_OK, format!("@cert-authority other {KEY_CA}"), Verdict::Unknown),
            (CERT_OK, format!("@cert-authority i-0abc {KEY_B}"), Verdict::Unknown),
            (CERT_OK, format!("i-0abc {KEY_CA}"), changed("kh", 1, KEY_CA)),
            // Revoking the CA or the certified key refuses the certificate.
            (CERT_OK, format!("{ca_only}\n@revoked i-0abc {KEY_CA}"), revoked("kh", 2)),
            (CERT_OK, format!("{ca_only}\n@revoked i-0abc {KEY_A}"), revoked("kh", 2)),
            (CERT_OK, format!("{ca_only}\n@revoked other {KEY_A}"), known("kh", 1)),
        ];
        for (certificate, text, want) in cases {
            let got = check_certificate(&[file("kh", &text)], &a, &cert(certificate), NOW);
            assert_eq!(got, want, "{:.50} with {text}", &certificate[33..]);
        }
        // The principal is compared with the lowercased alias, exactly.
        let files = [file("kh", &ca_only)];
        assert_eq!(check_certificate(&files, &alias("I-0ABC"), &cert(CERT_OK), NOW), known("kh", 1));
        assert_eq!(check_certificate(&files, &alias("i-0abcd"), &cert(CERT_OK), NOW), Verdict::Unknown);
        assert_eq!(check_certificate(&files, &a, &cert(CERT_EXPIRED), 1_577_880_000), known("kh", 1));
    }

    #[test]
    fn read_treats_a_missing_file_as_empty() {
        let missing = Path::new("/nonexistent/hop/known_hosts");
        assert_eq!(KnownHostsFile::read(missing).expect("missing is empty"), KnownHostsFile::new(missing, ""));
        let dir = std::env::temp_dir().join(format!("hop-kh-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("known_hosts");
        std::fs::write(&path, format!("i-0abc {KEY_A}\n")).expect("write");
        let files = [KnownHostsFile::read(&path).expect("read")];
        assert_eq!(check(&files, &alias("i-0abc"), &key(KEY_A)), Verdict::Known { path: path.clone(), line: 1 });
        assert!(KnownHostsFile::read(&dir).is_err(), "a directory is an error, not an empty file");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let paths = default_paths(Path::new("/home/u"));
        assert_eq!(paths[0], Path::new("/home/u/.ssh/known_hosts"));
        assert_eq!(paths[3], Path::new("/etc/ssh/ssh_known_hosts2"));
    }

    /// Random bytes and mangled valid lines: never a panic, and never Known for a key that is not
    /// on file intact.
    #[test]
    fn arbitrary_content_never_panics() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            format!("i-0abc {KEY_A}"),
            format!("@revoked i-0abc {KEY_A}"),
            format!("@cert-authority i-* {KEY_CA}"),
            HASHED.lines().next().unwrap_or_default().to_string(),
            format!("[i-0abc]:2222,!x*,?-0abc {KEY_EC}"),
            format!("i-0abc {KEY_RSA}"),
        ];
        let alphabet = b" \t\r\n\0#@|!*?,[]:=+/AZaz09\xff";
        let names = [HostName::alias("i-0abc"), HostName::new("i-0abc", 2222), HostName::alias("")];
        let presented = key(KEY_B);
        let certificate = cert(CERT_OK);
        for round in 0..1000 {
            let mut contents = Vec::new();
            for _ in 0..(next() % 6) {
                let mut line = seeds[(next() % seeds.len() as u64) as usize].clone().into_bytes();
                for _ in 0..(next() % 4) {
                    if line.is_empty() {
                        break;
                    }
                    let at = (next() % line.len() as u64) as usize;
                    match next() % 4 {
                        0 => line[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                        1 => line.truncate(at),
                        2 => line.insert(at, (next() & 0xff) as u8),
                        _ => {
                            line.remove(at);
                        }
                    }
                }
                if round % 7 == 0 {
                    line = (0..(next() % 300)).map(|_| (next() & 0xff) as u8).collect();
                }
                if round % 5 == 0 {
                    // A well-formed line around a random key blob of a real algorithm, so the
                    // key decoders see hostile input too.
                    let algorithm = ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"]
                        [(next() % 4) as usize];
                    let mut blob = (algorithm.len() as u32).to_be_bytes().to_vec();
                    blob.extend_from_slice(algorithm.as_bytes());
                    for _ in 0..(next() % 4) {
                        let len = (next() % 80) as u32;
                        blob.extend_from_slice(&len.to_be_bytes());
                        blob.extend((0..len).map(|_| (next() & 0xff) as u8));
                    }
                    line = format!("i-0abc {algorithm} {}", Base64::encode_string(&blob)).into_bytes();
                }
                contents.extend_from_slice(&line);
                contents.push(b'\n');
            }
            let files = [KnownHostsFile::new("fuzz", contents)];
            let verdict = check(&files, &names, &presented);
            assert!(!matches!(verdict, Verdict::Known { .. }), "key B was never on file");
            let _ = check_certificate(&files, &names, &certificate, NOW);
            let _ = cert_authorities(&files, &names);
        }
    }
}
