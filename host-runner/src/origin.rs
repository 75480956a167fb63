//! A URL's origin (scheme, host, port): the unit the outbound policy allows.

use std::fmt;
use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an `http` or `https` URL with a host; `None` otherwise.
    pub fn of(url: &Url) -> Option<Origin> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let host = match url.host()? {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => format!("[{ip}]"),
        };
        Some(Origin {
            scheme: scheme.to_string(),
            host,
            port: url.port_or_known_default()?,
        })
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Option<Origin> {
        Origin::of(&Url::parse(s).unwrap())
    }

    #[test]
    fn default_ports_make_equal_origins() {
        assert_eq!(
            origin("https://Cloud.Example.com/a"),
            origin("https://cloud.example.com:443/b")
        );
        assert_ne!(
            origin("https://cloud.example.com"),
            origin("http://cloud.example.com")
        );
        assert_ne!(
            origin("https://cloud.example.com"),
            origin("https://cloud.example.com:8443")
        );
        assert_eq!(origin("ftp://x/").map(|o| o.to_string()), None);
        assert_eq!(
            origin("http://[::1]:8080/").unwrap().to_string(),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn loopback_hosts() {
        for s in ["http://localhost:1/", "http://127.0.0.5/", "http://[::1]/"] {
            assert!(is_loopback(&Url::parse(s).unwrap()), "{s}");
        }
        for s in [
            "http://example.com/",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback(&Url::parse(s).unwrap()), "{s}");
        }
    }
}
