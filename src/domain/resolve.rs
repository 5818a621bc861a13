//! Name resolution: turn what the user typed (Name tag, instance id, IP, or the `NAME-ID` alias
//! `hop config` gives duplicates) into exactly one instance, or say why not.

use super::inventory::Instance;

#[derive(Debug)]
pub enum Resolution<'a> {
    Found(&'a Instance),
    /// Several instances answer to the name; never pick one silently.
    Ambiguous(Vec<&'a Instance>),
    /// Nothing matched; close names, best first.
    NotFound {
        suggestions: Vec<String>,
    },
}

/// Resolve `target` among `instances`. With `newest`, an ambiguous name resolves to the most
/// recently launched candidate (ties broken by id, so the choice is stable).
pub fn resolve<'a>(instances: &'a [Instance], target: &str, newest: bool) -> Resolution<'a> {
    if let Some(i) = instances.iter().find(|i| i.id == target) {
        return Resolution::Found(i);
    }
    let by_ip: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.private_ip.as_deref() == Some(target) || i.public_ip.as_deref() == Some(target))
        .collect();
    let mut matches = if by_ip.is_empty() {
        instances.iter().filter(|i| i.name.as_deref() == Some(target)).collect::<Vec<_>>()
    } else {
        by_ip
    };
    if matches.is_empty() {
        // `NAME-i-0123…`: the alias `hop config` writes for duplicate names.
        if let Some(i) = instances.iter().find(|i| i.name.as_ref().is_some_and(|n| target == duplicate_alias(n, &i.id)))
        {
            return Resolution::Found(i);
        }
    }
    match matches.len() {
        0 => Resolution::NotFound { suggestions: suggestions(instances, target) },
        1 => Resolution::Found(matches[0]),
        _ if newest => {
            matches.sort_by(|a, b| (&a.launch_time, &a.id).cmp(&(&b.launch_time, &b.id)));
            Resolution::Found(matches[matches.len() - 1])
        }
        _ => {
            matches.sort_by(|a, b| (&a.launch_time, &a.id).cmp(&(&b.launch_time, &b.id)));
            Resolution::Ambiguous(matches)
        }
    }
}

/// The host alias for an instance whose Name is shared with others: stable (it only depends on
/// the name and the id) and resolvable by `hop` itself.
pub fn duplicate_alias(name: &str, id: &str) -> String {
    format!("{name}-{id}")
}

/// Up to five names close to `target`: case-insensitive equality first, then substring
/// matches, then small edit distances.
fn suggestions(instances: &[Instance], target: &str) -> Vec<String> {
    let t = target.to_lowercase();
    let mut scored: Vec<(u8, usize, &str)> = Vec::new();
    for name in instances.iter().filter_map(|i| i.name.as_deref()) {
        let n = name.to_lowercase();
        let score = if n == t {
            Some((0, 0))
        } else if n.contains(&t) || t.contains(&n) {
            Some((1, n.len().abs_diff(t.len())))
        } else {
            // Optimal string alignment: a swapped pair of letters counts as one typo.
            let d = strsim::osa_distance(&n, &t);
            (d <= (t.len() / 4).max(1)).then_some((2, d))
        };
        if let Some((tier, d)) = score {
            scored.push((tier, d, name));
        }
    }
    scored.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, _, name) in scored {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        if out.len() == 5 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixture::{instance, public};

    fn inventory() -> Vec<Instance> {
        let mut api1 = instance("i-api1", Some("sample-api"), "vpc-1", "us-east-1a");
        api1.launch_time = Some("2026-01-02T00:00:00Z".into());
        api1.private_ip = Some("10.0.1.20".into());
        let mut api2 = instance("i-api2", Some("sample-api"), "vpc-1", "us-east-1b");
        api2.launch_time = Some("2026-01-03T00:00:00Z".into());
        api2.private_ip = Some("10.0.2.20".into());
        vec![
            {
                let mut b =
                    public(instance("i-bastion", Some("sample-bastion"), "vpc-1", "us-east-1a"), "203.0.113.10");
                b.private_ip = Some("10.0.0.4".into());
                b
            },
            instance("i-web", Some("sample-web"), "vpc-1", "us-east-1a"),
            api2,
            api1,
        ]
    }

    fn found(target: &str, newest: bool) -> Option<String> {
        let inv = inventory();
        match resolve(&inv, target, newest) {
            Resolution::Found(i) => Some(i.id.clone()),
            _ => None,
        }
    }

    #[test]
    fn resolves_by_name_id_and_ip() {
        let table = [
            ("sample-web", Some("i-web")),
            ("i-web", Some("i-web")),
            ("10.0.1.10", Some("i-web")),
            ("203.0.113.10", Some("i-bastion")),
            ("10.0.2.20", Some("i-api2")),
            ("i-api1", Some("i-api1")),
            ("sample-api-i-api1", Some("i-api1")),
            ("sample-api", None),
            ("sample", None),
        ];
        for (target, want) in table {
            assert_eq!(found(target, false).as_deref(), want, "target {target}");
        }
    }

    #[test]
    fn ambiguous_lists_every_candidate_oldest_first() {
        let inv = inventory();
        match resolve(&inv, "sample-api", false) {
            Resolution::Ambiguous(c) => {
                assert_eq!(c.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i-api1", "i-api2"])
            }
            other => panic!("expected ambiguous, got {other:?}"),
        }
    }

    #[test]
    fn newest_picks_the_latest_launch() {
        assert_eq!(found("sample-api", true).as_deref(), Some("i-api2"));
    }

    #[test]
    fn unknown_names_suggest_close_matches() {
        let inv = inventory();
        let table: [(&str, &[&str]); 4] = [
            ("sample-wbe", &["sample-web"]),
            ("SAMPLE-WEB", &["sample-web"]),
            ("web", &["sample-web"]),
            ("zzzzzzzzzz", &[]),
        ];
        for (target, want) in table {
            match resolve(&inv, target, false) {
                Resolution::NotFound { suggestions } => assert_eq!(suggestions, want, "target {target}"),
                other => panic!("{target}: expected not found, got {other:?}"),
            }
        }
    }
}
