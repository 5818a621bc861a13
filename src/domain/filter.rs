//! `hop ls` filters: a name pattern and `--tag KEY=VALUE`.

use std::str::FromStr;

use super::inventory::Instance;

/// `--tag KEY=VALUE` (or `KEY` for any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: Option<String>,
}

impl FromStr for TagFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(format!("invalid tag filter {s:?}: expected KEY=VALUE or KEY"));
        }
        Ok(TagFilter { key: key.to_string(), value })
    }
}

impl std::fmt::Display for TagFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

impl TagFilter {
    pub fn matches(&self, i: &Instance) -> bool {
        match (i.tag(&self.key), &self.value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// A name pattern: a glob when it has `*` or `?`, else a case-insensitive substring. Matches
/// the Name tag, the instance id and both IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: &str) -> Pattern {
        Pattern(p.to_lowercase())
    }

    pub fn matches(&self, i: &Instance) -> bool {
        let fields = [i.name.as_deref(), Some(i.id.as_str()), i.private_ip.as_deref(), i.public_ip.as_deref()];
        fields.into_iter().flatten().any(|f| {
            let f = f.to_lowercase();
            if self.0.contains(['*', '?']) { glob(self.0.as_bytes(), f.as_bytes()) } else { f.contains(&self.0) }
        })
    }
}

/// `*` and `?` glob over bytes, iterative with one backtrack point (linear in practice).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixture::instance;

    #[test]
    fn tag_filters_parse() {
        let table: [(&str, Result<TagFilter, ()>); 4] = [
            ("env=prod", Ok(TagFilter { key: "env".into(), value: Some("prod".into()) })),
            ("env", Ok(TagFilter { key: "env".into(), value: None })),
            ("k=a=b", Ok(TagFilter { key: "k".into(), value: Some("a=b".into()) })),
            ("=x", Err(())),
        ];
        for (s, want) in table {
            assert_eq!(s.parse::<TagFilter>().map_err(|_| ()), want, "{s}");
        }
    }

    #[test]
    fn patterns() {
        let web = instance("i-0abc", Some("Sample-Web"), "vpc", "az");
        let table = [
            ("web", true),
            ("sample-*", true),
            ("*-web", true),
            ("s?mple*", true),
            ("i-0a", true),
            ("10.0.1", true),
            ("db", false),
            ("web*", false),
        ];
        for (p, want) in table {
            assert_eq!(Pattern::new(p).matches(&web), want, "{p}");
        }
    }

    #[test]
    fn tag_filter_matches() {
        let mut i = instance("i-1", Some("x"), "v", "a");
        i.tags.insert("env".into(), "prod".into());
        assert!("env=prod".parse::<TagFilter>().unwrap().matches(&i));
        assert!("env".parse::<TagFilter>().unwrap().matches(&i));
        assert!(!"env=dev".parse::<TagFilter>().unwrap().matches(&i));
        assert!(!"team".parse::<TagFilter>().unwrap().matches(&i));
    }
}
