//! The client's IP for limits and audit: the TCP peer, or the right-most
//! untrusted address of X-Forwarded-For when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trusted: &[IpAddr]) -> String {
    let Some(peer) = peer else { return "unknown".into() };
    let mut ip = peer.ip();
    if trusted.contains(&ip) {
        let chain: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        for hop in chain.iter().rev() {
            ip = *hop;
            if !trusted.contains(hop) {
                break;
            }
        }
    }
    ip.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let trusted = vec!["10.0.0.2".parse().unwrap()];
        assert_eq!(client_ip(&h("203.0.113.9"), Some(proxy), &trusted), "203.0.113.9");
        assert_eq!(
            client_ip(&h("1.1.1.1, 203.0.113.9"), Some(proxy), &trusted),
            "203.0.113.9",
            "right-most untrusted"
        );
        assert_eq!(
            client_ip(&h("203.0.113.9"), Some(proxy), &[]),
            "10.0.0.2",
            "untrusted peer: header ignored"
        );
        assert_eq!(client_ip(&HeaderMap::new(), Some(proxy), &trusted), "10.0.0.2");
    }
}
