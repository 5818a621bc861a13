//! Text from EC2 (tags, key names, ids) or the network (server banners and reasons, Session
//! Manager messages) made safe to show on a terminal.
//!
//! Anyone who can tag an instance writes into hop's output. A newline in a Name tag adds a fake
//! row to `hop ls`; an ESC, or U+009B (the one-character CSI of 8-bit terminals), starts an
//! escape sequence that can recolour, retitle or rewrite the screen; a bidi override makes
//! `evil` read as `live`. Like OpenSSH does for the strings a server sends, hop prints such
//! characters as visible escapes: `\n`, `\x1b`, `\u{202e}`. Everything else, Japanese names,
//! emoji and combining marks included, is printed as it is. `--json` output never goes through
//! here: serde escapes exactly, and scripts get the real value.
//!
//! Backslashes are left alone: the aim is a terminal that shows what was sent without obeying
//! it, not an unambiguous encoding (`--json` is that).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as itself: C0 controls (newline, carriage return and
/// tab included: each breaks a line or a table cell), DEL, C1 controls (8-bit CSI, OSC, …), the
/// bidi marks, embeddings, overrides and isolates, and the Unicode line and paragraph
/// separators.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'
            | '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// `s` with every unsafe character replaced by a visible escape; borrowed when nothing needed it.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `s` prints as itself (no character needs escaping).
pub fn is_plain(s: &str) -> bool {
    !s.chars().any(is_unsafe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_and_keeps_the_rest() {
        let table = [
            // Line breaks and table breakers.
            ("web\nfake-row", r"web\nfake-row"),
            ("a\rb", r"a\rb"),
            ("a\tb", r"a\tb"),
            ("\0", r"\x00"),
            // ESC starting a 7-bit CSI, BEL ending an OSC, DEL.
            ("\x1b[31mred", r"\x1b[31mred"),
            ("\x1b]0;title\x07", r"\x1b]0;title\x07"),
            ("a\x7fb", r"a\x7fb"),
            // C1: the 8-bit CSI and OSC, first and last of the block.
            ("\u{9b}31m", r"\u{9b}31m"),
            ("\u{9d}0;t", r"\u{9d}0;t"),
            ("\u{80}\u{9f}", r"\u{80}\u{9f}"),
            // Bidi: override, embedding, isolates, marks.
            ("evil\u{202e}txt.exe", r"evil\u{202e}txt.exe"),
            ("\u{202a}x\u{202c}", r"\u{202a}x\u{202c}"),
            ("\u{2066}x\u{2069}", r"\u{2066}x\u{2069}"),
            ("\u{2067}\u{2068}", r"\u{2067}\u{2068}"),
            ("\u{200e}\u{200f}\u{61c}", r"\u{200e}\u{200f}\u{61c}"),
            // Unicode line and paragraph separators.
            ("a\u{2028}b\u{2029}", r"a\u{2028}b\u{2029}"),
            // Unchanged: ASCII (backslashes included), Latin-1 letters, Japanese, emoji (ZWJ
            // sequences too), combining marks.
            ("sample-web i-0123 10.0.1.10", "sample-web i-0123 10.0.1.10"),
            (r"C:\path\n", r"C:\path\n"),
            ("café ñ ¡", "café ñ ¡"),
            ("本番サーバー", "本番サーバー"),
            ("🚀 web 👩\u{200d}💻", "🚀 web 👩\u{200d}💻"),
            ("e\u{301}", "e\u{301}"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(escape(input), want, "escape({input:?})");
            assert_eq!(is_plain(input), input == want, "is_plain({input:?})");
            // What is printed never contains anything unsafe.
            assert!(escape(input).chars().all(|c| !is_unsafe(c)), "{input:?}");
        }
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn every_control_character_is_escaped() {
        for c in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0).filter_map(char::from_u32) {
            let shown = escape(&c.to_string()).into_owned();
            assert!(shown.starts_with('\\') && shown.len() > 1, "{c:?} → {shown:?}");
            assert!(shown.is_ascii(), "{c:?} → {shown:?}");
        }
    }
}
