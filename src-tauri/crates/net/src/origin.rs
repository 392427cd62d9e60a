//! Origins of URLs (scheme, host, port), for the rules that keep credentials with the server
//! they were configured for: a polled feed follows links only to its own origin and the ones
//! its configuration lists, and a secret is never configured to travel over plain HTTP off the
//! machine.

use url::Url;

/// `scheme://host:port` of a URL, with the scheme's default port filled in, or `None` when the
/// text is not an absolute http(s) URL.
pub fn origin(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        host.to_ascii_lowercase(),
        u.port_or_known_default()?
    ))
}

/// True when the URL's host is this machine: `localhost` or a loopback address.
pub fn is_loopback(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else { return false };
    match u.host() {
        Some(url::Host::Domain(d)) => host_is_loopback(d),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// True when a host name or address is this machine.
pub fn host_is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost"),
    }
}

/// Why a secret may not be sent to `url`, if it may not: plain `http` to another machine
/// carries it readable by anyone on the path.
pub fn secret_over_plain_http(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    (u.scheme() == "http" && !is_loopback(url)).then(|| {
        format!("{url:?} would carry a credential over plain http to {}; use https (plain http is allowed only to this machine)", u.host_str().unwrap_or("?"))
    })
}

/// The origins a feed may follow links to: its own URLs' and the listed ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed(Vec<String>);

impl Allowed {
    /// The origins of `urls` (the feed's own) and of `extra` (listed in its configuration).
    pub fn new<'a>(urls: impl IntoIterator<Item = &'a str>, extra: impl IntoIterator<Item = &'a str>) -> Allowed {
        let mut v: Vec<String> = urls.into_iter().chain(extra).filter_map(origin).collect();
        v.sort();
        v.dedup();
        Allowed(v)
    }

    /// True when `url` is on one of the allowed origins.
    pub fn allows(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| self.0.binary_search(&o).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Allowed::new(["http://127.0.0.1:8080/v1.1/Things"], ["https://data.example.org"]);
        assert!(a.allows("http://127.0.0.1:8080/v1.1/Observations?$skip=10"));
        assert!(a.allows("https://DATA.example.org:443/x"), "default port and host case");
        assert!(
            !a.allows("http://127.0.0.1:8081/v1.1/Observations"),
            "another port is another origin"
        );
        assert!(!a.allows("https://127.0.0.1:8080/"), "another scheme is another origin");
        assert!(!a.allows("http://data.example.org/x"), "https was listed, not http");
        assert!(!a.allows("file:///etc/passwd"));
        assert!(!a.allows("not a url"));
    }

    #[test]
    fn plain_http_is_refused_for_secrets_off_the_machine() {
        assert!(secret_over_plain_http("http://127.0.0.1:8311").is_none());
        assert!(secret_over_plain_http("http://localhost:9000/hooks").is_none());
        assert!(secret_over_plain_http("http://[::1]:9000/").is_none());
        assert!(secret_over_plain_http("https://works.example.org").is_none());
        let why = secret_over_plain_http("http://works.example.org/open311").unwrap();
        assert!(why.contains("works.example.org") && why.contains("https"), "{why}");
        assert!(secret_over_plain_http("http://10.0.0.5/").is_some());
        assert!(
            host_is_loopback("127.0.0.1")
                && host_is_loopback("::1")
                && host_is_loopback("[::1]")
                && host_is_loopback("LOCALHOST")
        );
        assert!(!host_is_loopback("broker.example.org") && !host_is_loopback("10.0.0.5"));
    }
}
