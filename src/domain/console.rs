//! Out-of-band host keys from the EC2 console output (spec ec2-instance-connect.md §C.3, §C.4).
//! Pure: the decoded `GetConsoleOutput` bytes in, the KEYS and FINGERPRINTS blocks out, and the
//! verdict for the host key a server presents. The adapter (`adapters::console`) fetches.

use sha2::{Digest, Sha256};

/// Everything the console shows about host keys, in the order it appears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Console {
    pub keys_blocks: Vec<KeysBlock>,
    pub fingerprint_blocks: Vec<FingerprintBlock>,
}

/// A `-----BEGIN SSH HOST KEY KEYS-----` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysBlock {
    /// The END marker was seen (false: the 64 KB window or a reboot cut the block).
    pub complete: bool,
    pub keys: Vec<ConsoleKey>,
    /// Non-empty lines inside the block that are not valid keys.
    pub ignored_lines: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleKey {
    /// The SSH key type name, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// The key blob as printed (canonical padded base64).
    pub base64: String,
    /// The decoded blob.
    pub blob: Vec<u8>,
    pub comment: String,
    /// `SHA256:` + unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it.
    pub sha256: String,
}

/// A `-----BEGIN SSH HOST KEY FINGERPRINTS-----` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintBlock {
    pub complete: bool,
    pub entries: Vec<FingerprintEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintEntry {
    pub bits: u32,
    /// `SHA256:…` or `MD5:xx:…` (a bare MD5 form gets the prefix).
    pub fingerprint: String,
    pub comment: String,
    /// The `(LABEL)` at the end: `ECDSA`, `ED25519`, `RSA`, `DSA`, `ED25519-SK`, `ECDSA-SK`.
    pub label: String,
}

impl FingerprintEntry {
    /// The SSH key type this entry stands for, if the label is known.
    pub fn key_type(&self) -> Option<&'static str> {
        match (self.label.as_str(), self.bits) {
            ("RSA", _) => Some("ssh-rsa"),
            ("DSA", _) => Some("ssh-dss"),
            ("ED25519", _) => Some("ssh-ed25519"),
            ("ECDSA", 256) => Some("ecdsa-sha2-nistp256"),
            ("ECDSA", 384) => Some("ecdsa-sha2-nistp384"),
            ("ECDSA", 521) => Some("ecdsa-sha2-nistp521"),
            ("ED25519-SK", _) => Some("sk-ssh-ed25519@openssh.com"),
            ("ECDSA-SK", _) => Some("sk-ecdsa-sha2-nistp256@openssh.com"),
            _ => None,
        }
    }
}

/// The verdict of §C.4 for one presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one candidate for the type and it is the presented key.
    Verified { fingerprint: String },
    /// Exactly one candidate and it differs: refuse like a changed key.
    Mismatch { console: String, presented: String },
    /// More than one distinct candidate for the type: no automatic trust.
    Ambiguous { candidates: Vec<String> },
    /// No candidate for the type: the ordinary unknown-key policy.
    Unavailable,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Verified { .. } => "verified",
            Verdict::Mismatch { .. } => "mismatch",
            Verdict::Ambiguous { .. } => "ambiguous",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// The key types rule 5 recognises.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "ssh-dss",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

const KEYS_BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
const KEYS_END: &str = "-----END SSH HOST KEY KEYS-----";
const FP_BEGIN: &str = "-----BEGIN SSH HOST KEY FINGERPRINTS-----";
const FP_END: &str = "-----END SSH HOST KEY FINGERPRINTS-----";

enum Open {
    None,
    Keys(KeysBlock),
    Fingerprints(FingerprintBlock),
}

/// Parses decoded console bytes by the rules of §C.3.
pub fn parse(output: &[u8]) -> Console {
    let text = strip_controls(&String::from_utf8_lossy(output));
    let mut console = Console::default();
    let mut open = Open::None;
    let close = |open: Open, console: &mut Console, complete: bool| match open {
        Open::None => {}
        Open::Keys(mut b) => {
            b.complete = complete;
            console.keys_blocks.push(b);
        }
        Open::Fingerprints(mut b) => {
            b.complete = complete;
            console.fingerprint_blocks.push(b);
        }
    };
    for line in text.split('\n') {
        if line.contains(KEYS_BEGIN) {
            close(std::mem::replace(&mut open, Open::Keys(KeysBlock::default())), &mut console, false);
            continue;
        }
        if line.contains(FP_BEGIN) {
            close(std::mem::replace(&mut open, Open::Fingerprints(FingerprintBlock::default())), &mut console, false);
            continue;
        }
        match &mut open {
            Open::Keys(_) if line.contains(KEYS_END) => {
                close(std::mem::replace(&mut open, Open::None), &mut console, true)
            }
            Open::Fingerprints(_) if line.contains(FP_END) => {
                close(std::mem::replace(&mut open, Open::None), &mut console, true)
            }
            Open::Keys(b) => match key_line(line) {
                Some(k) => b.keys.push(k),
                None if !line.trim().is_empty() => b.ignored_lines += 1,
                None => {}
            },
            Open::Fingerprints(b) => {
                if let Some(e) = fingerprint_line(line) {
                    b.entries.push(e);
                }
            }
            Open::None => {}
        }
    }
    close(open, &mut console, false);
    console
}

/// The verdict of §C.4 for the presented key of type `key_type` with blob `blob`.
pub fn verdict(console: &Console, key_type: &str, blob: &[u8]) -> Verdict {
    let mut candidates: Vec<String> = Vec::new();
    let mut add = |fp: &str| {
        if !candidates.iter().any(|c| c == fp) {
            candidates.push(fp.to_string());
        }
    };
    for k in console.keys_blocks.iter().flat_map(|b| &b.keys) {
        if k.key_type == key_type {
            add(&k.sha256);
        }
    }
    for e in console.fingerprint_blocks.iter().flat_map(|b| &b.entries) {
        if e.key_type() == Some(key_type) && e.fingerprint.starts_with("SHA256:") {
            add(&e.fingerprint);
        }
    }
    let presented = sha256_fingerprint(blob);
    match candidates.len() {
        0 => Verdict::Unavailable,
        1 if candidates[0] == presented => Verdict::Verified { fingerprint: presented },
        1 => Verdict::Mismatch { console: candidates.remove(0), presented },
        _ => Verdict::Ambiguous { candidates },
    }
}

/// The host-key algorithms the console lists (KEYS blocks, then FINGERPRINTS entries), first
/// appearance first, no duplicates: put these first in the client's preferred list so the
/// server presents a key hop can check.
pub fn listed_key_types(console: &Console) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let keys = console.keys_blocks.iter().flat_map(|b| &b.keys).filter_map(|k| known_type(&k.key_type));
    let fps = console.fingerprint_blocks.iter().flat_map(|b| &b.entries).filter_map(|e| e.key_type());
    for t in keys.chain(fps) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// `SHA256:` + unpadded base64 of SHA-256(blob).
pub fn sha256_fingerprint(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    let mut b = base64_encode(&digest);
    while b.ends_with('=') {
        b.pop();
    }
    format!("SHA256:{b}")
}

fn known_type(t: &str) -> Option<&'static str> {
    KEY_TYPES.iter().copied().find(|k| *k == t)
}

/// Rule 2: drops CSI, OSC (ended by BEL or ST, never past a newline), other `ESC x`, every C0
/// byte except TAB and LF, and DEL.
pub fn strip_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            match it.peek().copied() {
                Some('[') => {
                    it.next();
                    // parameters and intermediates, then one final byte 0x40..=0x7e
                    while let Some(&n) = it.peek() {
                        if n == '\n' {
                            break;
                        }
                        it.next();
                        if ('\u{40}'..='\u{7e}').contains(&n) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    it.next();
                    while let Some(&n) = it.peek() {
                        if n == '\n' {
                            break;
                        }
                        it.next();
                        if n == '\u{07}' {
                            break;
                        }
                        if n == '\u{1b}' && it.peek() == Some(&'\\') {
                            it.next();
                            break;
                        }
                    }
                }
                Some(n) if n != '\n' => {
                    it.next();
                }
                _ => {}
            }
            continue;
        }
        if (c < ' ' && c != '\t' && c != '\n') || c == '\u{7f}' {
            continue;
        }
        out.push(c);
    }
    out
}

/// Rule 5: `[prefix…] TYPE BASE64 [comment]`, the blob well-formed and of that type.
fn key_line(line: &str) -> Option<ConsoleKey> {
    let tokens = tokens_with_ends(line);
    for (i, (tok, _)) in tokens.iter().enumerate() {
        let Some(key_type) = known_type(tok) else { continue };
        let (b64, end) = tokens.get(i + 1)?;
        let blob = base64_decode(b64)?;
        if !blob_is(key_type, &blob) {
            return None;
        }
        return Some(ConsoleKey {
            key_type: key_type.to_string(),
            base64: b64.to_string(),
            sha256: sha256_fingerprint(&blob),
            blob,
            comment: line[*end..].trim().to_string(),
        });
    }
    None
}

fn tokens_with_ends(line: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((&line[s..i], i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((&line[s..], line.len()));
    }
    out
}

/// Rule 6: `(\d+)\s+(FP)\s+(.*?)\s*\(([A-Z0-9-]+)\)\s*$`, anywhere in the line.
fn fingerprint_line(line: &str) -> Option<FingerprintEntry> {
    let body = line.trim_end();
    let body = body.strip_suffix(')')?;
    let open = body.rfind('(')?;
    let label = &body[open + 1..];
    if label.is_empty() || !label.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
        return None;
    }
    let head = &body[..open];
    let tokens = tokens_with_ends(head);
    for i in 1..tokens.len() {
        let (fp_tok, fp_end) = tokens[i];
        let Some(fingerprint) = fingerprint_token(fp_tok) else { continue };
        let (bits_tok, _) = tokens[i - 1];
        // \d+ then \s+: the digits end the token (whatever precedes them in it).
        let digits: String =
            bits_tok.chars().rev().take_while(|c| c.is_ascii_digit()).collect::<String>().chars().rev().collect();
        if digits.is_empty() {
            continue;
        }
        let Ok(bits) = digits.parse::<u32>() else { continue };
        // `\s+` after the fingerprint: there must be at least one blank before the label.
        if fp_end >= head.len() {
            continue;
        }
        return Some(FingerprintEntry {
            bits,
            fingerprint,
            comment: head[fp_end..].trim().to_string(),
            label: label.to_string(),
        });
    }
    None
}

fn fingerprint_token(t: &str) -> Option<String> {
    if let Some(rest) = t.strip_prefix("SHA256:") {
        let ok = rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        return ok.then(|| t.to_string());
    }
    let (hex, prefixed) = match t.strip_prefix("MD5:") {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    let parts: Vec<&str> = hex.split(':').collect();
    let ok = parts.len() == 16 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    match (ok, prefixed) {
        (false, _) => None,
        (true, true) => Some(t.to_string()),
        (true, false) => Some(format!("MD5:{t}")),
    }
}

/// Reads SSH wire strings from a blob.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.0.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < n {
            return None;
        }
        let (s, tail) = rest.split_at(n);
        self.0 = tail;
        Some(s)
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A well-formed SSH public-key blob of exactly `key_type`, nothing after it.
pub fn blob_is(key_type: &str, blob: &[u8]) -> bool {
    let mut w = Wire(blob);
    if w.string() != Some(key_type.as_bytes()) {
        return false;
    }
    let ecdsa = |w: &mut Wire, curve: &str, coord: usize| {
        w.string() == Some(curve.as_bytes()) && matches!(w.string(), Some(p) if p.len() == 1 + 2 * coord && p[0] == 4)
    };
    let mpint = |w: &mut Wire| matches!(w.string(), Some(v) if !v.is_empty());
    let ok = match key_type {
        "ssh-ed25519" => matches!(w.string(), Some(k) if k.len() == 32),
        "ecdsa-sha2-nistp256" => ecdsa(&mut w, "nistp256", 32),
        "ecdsa-sha2-nistp384" => ecdsa(&mut w, "nistp384", 48),
        "ecdsa-sha2-nistp521" => ecdsa(&mut w, "nistp521", 66),
        "ssh-rsa" => mpint(&mut w) && mpint(&mut w),
        "ssh-dss" => (0..4).all(|_| mpint(&mut w)),
        "sk-ssh-ed25519@openssh.com" => matches!(w.string(), Some(k) if k.len() == 32) && w.string().is_some(),
        "sk-ecdsa-sha2-nistp256@openssh.com" => ecdsa(&mut w, "nistp256", 32) && w.string().is_some(),
        _ => false,
    };
    ok && w.done()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Canonical padded base64 only (length a multiple of 4, padding only at the end, unused bits
/// zero); anything else is None.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&b| b == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && ci + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        match pad {
            0 => out.extend_from_slice(&got),
            1 if got[2] == 0 => out.extend_from_slice(&got[..2]),
            2 if got[1] == 0 && got[2] == 0 => out.push(got[0]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_non_canonical() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            if !data.is_empty() {
                assert_eq!(base64_decode(&base64_encode(data)).as_deref(), Some(data));
            }
        }
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm9="), None, "unused bits must be zero");
        assert_eq!(base64_decode("Zm8"), None, "padding required");
        assert_eq!(base64_decode("Zm=8"), None);
        assert_eq!(base64_decode("Zm8=Zm8="), None, "padding only at the end");
    }

    #[test]
    fn controls_are_stripped_and_an_unterminated_osc_stops_at_the_newline() {
        assert_eq!(strip_controls("a\u{1b}[0;1;39mb\u{1b}[0m\r\n"), "ab\n");
        assert_eq!(strip_controls("\u{1b}[!p\u{1b}]104\u{1b}\\x\u{7}\u{7f}"), "x");
        assert_eq!(strip_controls("\u{1b}]0;title\nkept"), "\nkept");
        assert_eq!(strip_controls("\u{1b}cz\ty"), "z\ty", "a two-byte ESC x");
    }

    #[test]
    fn fingerprint_lines() {
        let e =
            fingerprint_line("ec2: 256 SHA256:TL867NghmgC1vAue2OjSlninrnP0n4+1hyUtUyo+me8 no comment (ECDSA)").unwrap();
        assert_eq!((e.bits, e.comment.as_str(), e.label.as_str()), (256, "no comment", "ECDSA"));
        assert_eq!(e.key_type(), Some("ecdsa-sha2-nistp256"));
        let md5 = fingerprint_line("1024 26:dd:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:db  root@host (DSA)").unwrap();
        assert_eq!(md5.fingerprint, "MD5:26:dd:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:db");
        assert_eq!(md5.key_type(), Some("ssh-dss"));
        assert!(fingerprint_line("256 SHA256:short root (ECDSA)").is_none());
        assert!(fingerprint_line("#############").is_none());
    }

    #[test]
    fn lines_outside_blocks_and_broken_keys_are_ignored() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbDDoVGFjujC3ZQFvstTDHc9nnnaoKxnJxbONlyAh6b c";
        let text = format!("{ed}\n-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa {}\n{ed}\n", &ed[12..]);
        let c = parse(text.as_bytes());
        assert_eq!(c.keys_blocks.len(), 1);
        let b = &c.keys_blocks[0];
        assert!(!b.complete);
        assert_eq!(b.keys.len(), 1, "an ed25519 blob under ssh-rsa is not a key");
        assert_eq!(b.ignored_lines, 1);
        assert_eq!(listed_key_types(&c), vec!["ssh-ed25519"]);
    }

    fn vectors() -> serde_json::Value {
        let text = include_str!("../../tests/data/ec2-instance-connect-vectors.json");
        serde_json::from_str::<serde_json::Value>(text).unwrap()["console_output"].clone()
    }

    fn as_json(c: &Console) -> serde_json::Value {
        serde_json::json!({
            "keys_blocks": c.keys_blocks.iter().map(|b| serde_json::json!({
                "complete": b.complete,
                "keys": b.keys.iter().map(|k| serde_json::json!({
                    "type": k.key_type, "base64": k.base64, "comment": k.comment, "sha256": k.sha256,
                })).collect::<Vec<_>>(),
                "ignored_lines": b.ignored_lines,
            })).collect::<Vec<_>>(),
            "fingerprint_blocks": c.fingerprint_blocks.iter().map(|b| serde_json::json!({
                "complete": b.complete,
                "entries": b.entries.iter().map(|e| serde_json::json!({
                    "bits": e.bits, "fingerprint": e.fingerprint, "comment": e.comment, "label": e.label,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    fn sample_bytes(s: &serde_json::Value) -> Vec<u8> {
        let bytes = base64_decode(s["output_base64"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8_lossy(&bytes), s["decoded_text"].as_str().unwrap(), "{}", s["name"]);
        bytes
    }

    #[test]
    fn every_vector_sample_parses_to_its_expected_result() {
        let v = vectors();
        let samples = v["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 5);
        for s in samples {
            let got = as_json(&parse(&sample_bytes(s)));
            assert_eq!(got, s["expected"], "sample {}", s["name"]);
        }
    }

    #[test]
    fn every_vector_verification_case_gets_its_verdict() {
        let v = vectors();
        let samples = v["samples"].as_array().unwrap();
        let cases = v["verification_cases"].as_array().unwrap();
        assert_eq!(cases.len(), 13);
        for case in cases {
            let name = case["console"].as_str().unwrap();
            let sample = samples.iter().find(|s| s["name"] == name).unwrap();
            let console = parse(&sample_bytes(sample));
            let mut presented = case["presented_key"].as_str().unwrap().split_whitespace();
            let (ty, b64) = (presented.next().unwrap(), presented.next().unwrap());
            let blob = base64_decode(b64).unwrap();
            assert_eq!(sha256_fingerprint(&blob), case["presented_sha256"].as_str().unwrap());
            let verdict = verdict(&console, ty, &blob);
            assert_eq!(verdict.name(), case["expected"].as_str().unwrap(), "{name} {ty}: {verdict:?}");
        }
    }
}
