//! Forwarding specs, as OpenSSH spells them: `-L`-style `[BIND:]PORT`, `[BIND:]LPORT:RPORT`,
//! `[BIND:]LPORT:HOST:RPORT`, `-D [BIND:]PORT` and `-R [BIND:]RPORT:HOST:PORT`. BIND is an
//! address (`127.0.0.1`, `[::1]`, `*` for every address); without it, loopback only.

use std::fmt;
use std::str::FromStr;

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// 127.0.0.1: the default, as with ssh (GatewayPorts no).
    Loopback,
    /// `*`: every address.
    Any,
    /// An explicit address (IPv6 without brackets).
    Address(String),
}

impl Bind {
    /// The address to bind a socket to.
    pub fn host(&self) -> &str {
        match self {
            Bind::Loopback => "127.0.0.1",
            Bind::Any => "0.0.0.0",
            Bind::Address(a) => a,
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Any => f.write_str("*"),
            b if b.host().contains(':') => write!(f, "[{}]", b.host()),
            b => f.write_str(b.host()),
        }
    }
}

/// A local forward: connections to BIND:LPORT go to HOST:RPORT as seen from the target
/// (`localhost` meaning the target itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalForward {
    pub bind: Bind,
    pub listen_port: u16,
    pub host: String,
    pub port: u16,
}

/// `-D`: a SOCKS proxy on BIND:PORT whose connections leave from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicForward {
    pub bind: Bind,
    pub listen_port: u16,
}

/// `-R`: the target listens on BIND:RPORT and its connections come back to HOST:PORT here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteForward {
    pub bind: Bind,
    pub remote_port: u16,
    pub host: String,
    pub port: u16,
}

const LOCAL_FORMS: &str =
    "PORT, LPORT:RPORT, LPORT:HOST:RPORT, each optionally prefixed by BIND: (127.0.0.1, [::1], *)";

/// Split on `:` outside `[...]`, so `[::1]:8080` is two fields.
fn fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            ':' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced brackets".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    out.push(cur);
    Ok(out)
}

fn port(s: &str, what: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{what} {s:?} is not a port (1-65535)")),
        Ok(p) => Ok(p),
    }
}

fn unbracket(s: &str) -> &str {
    s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s)
}

fn bind(s: &str) -> Result<Bind, String> {
    match s {
        "" | "localhost" => Ok(Bind::Loopback),
        "*" => Ok(Bind::Any),
        a => {
            let a = unbracket(a);
            a.parse::<std::net::IpAddr>().map_err(|_| format!("bind address {s:?} is not an IP address or *"))?;
            Ok(Bind::Address(a.to_string()))
        }
    }
}

fn host(s: &str) -> Result<String, String> {
    let h = unbracket(s);
    if h.is_empty() || h.starts_with('-') || h.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("{s:?} is not a host name or address"));
    }
    Ok(h.to_string())
}

impl FromStr for LocalForward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| format!("invalid forward {s:?}: {why}; accepted: {LOCAL_FORMS}");
        let f = fields(s).map_err(bad)?;
        let f: Vec<&str> = f.iter().map(String::as_str).collect();
        let (b, lport, h, rport) = match f.as_slice() {
            [p] => ("", *p, "localhost", *p),
            [l, r] => ("", *l, "localhost", *r),
            [b, l, h, r] => (*b, *l, *h, *r),
            // Three fields: BIND:LPORT:RPORT is not an ssh form either; LPORT:HOST:RPORT is.
            [l, h, r] => ("", *l, *h, *r),
            _ => return Err(bad("too many fields".into())),
        };
        Ok(LocalForward {
            bind: bind(b).map_err(bad)?,
            listen_port: port(lport, "local port").map_err(bad)?,
            host: host(h).map_err(bad)?,
            port: port(rport, "remote port").map_err(bad)?,
        })
    }
}

impl FromStr for DynamicForward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| format!("invalid SOCKS listener {s:?}: {why}; accepted: [BIND:]PORT");
        let f = fields(s).map_err(bad)?;
        let (b, p) = match f.as_slice() {
            [p] => ("", p.as_str()),
            [b, p] => (b.as_str(), p.as_str()),
            _ => return Err(bad("too many fields".into())),
        };
        Ok(DynamicForward { bind: bind(b).map_err(bad)?, listen_port: port(p, "port").map_err(bad)? })
    }
}

impl FromStr for RemoteForward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| format!("invalid remote forward {s:?}: {why}; accepted: [BIND:]RPORT:HOST:PORT");
        let f = fields(s).map_err(bad)?;
        let f: Vec<&str> = f.iter().map(String::as_str).collect();
        let (b, r, h, p) = match f.as_slice() {
            [r, h, p] => ("", *r, *h, *p),
            [b, r, h, p] => (*b, *r, *h, *p),
            _ => return Err(bad("expected 3 or 4 fields".into())),
        };
        Ok(RemoteForward {
            bind: bind(b).map_err(bad)?,
            remote_port: port(r, "remote port").map_err(bad)?,
            host: host(h).map_err(bad)?,
            port: port(p, "port").map_err(bad)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> Result<(String, u16, String, u16), ()> {
        s.parse::<LocalForward>().map(|f| (f.bind.to_string(), f.listen_port, f.host, f.port)).map_err(|_| ())
    }

    #[test]
    fn local_forms() {
        let ok = |b: &str, l, h: &str, r| Ok((b.to_string(), l, h.to_string(), r));
        let table = [
            ("8080", ok("127.0.0.1", 8080, "localhost", 8080)),
            ("9000:80", ok("127.0.0.1", 9000, "localhost", 80)),
            ("5432:db.internal:5432", ok("127.0.0.1", 5432, "db.internal", 5432)),
            ("*:8080:localhost:80", ok("*", 8080, "localhost", 80)),
            ("0.0.0.0:8080:web:80", ok("0.0.0.0", 8080, "web", 80)),
            ("[::1]:8080:localhost:80", ok("[::1]", 8080, "localhost", 80)),
            ("8080:[fd00::5]:80", ok("127.0.0.1", 8080, "fd00::5", 80)),
            ("localhost:8080:x:80", ok("127.0.0.1", 8080, "x", 80)),
            ("0", Err(())),
            ("70000", Err(())),
            ("http", Err(())),
            ("8080:", Err(())),
            ("a:b:c:d:e", Err(())),
            ("nowhere:8080:x:80", Err(())),
            ("[::1:8080", Err(())),
            ("8080:-oProxyCommand=x:80", Err(())),
        ];
        for (s, want) in table {
            assert_eq!(local(s), want, "{s}");
        }
        let err = "8080:".parse::<LocalForward>().unwrap_err();
        assert!(err.contains("accepted: PORT, LPORT:RPORT, LPORT:HOST:RPORT"), "{err}");
    }

    #[test]
    fn dynamic_and_remote_forms() {
        assert_eq!("1080".parse(), Ok(DynamicForward { bind: Bind::Loopback, listen_port: 1080 }));
        assert_eq!("*:1080".parse(), Ok(DynamicForward { bind: Bind::Any, listen_port: 1080 }));
        assert!("1080:x".parse::<DynamicForward>().is_err());
        assert_eq!(
            "9000:localhost:3000".parse(),
            Ok(RemoteForward { bind: Bind::Loopback, remote_port: 9000, host: "localhost".into(), port: 3000 })
        );
        assert_eq!("*:9000:localhost:3000".parse::<RemoteForward>().map(|r| r.bind), Ok(Bind::Any));
        assert!("9000:3000".parse::<RemoteForward>().is_err());
    }
}
