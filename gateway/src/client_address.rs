//! The client's address, for the sign-in and sign-up limits.
//!
//! By default it is the address of the TCP peer, and `X-Forwarded-For` is ignored: anyone
//! can write that header, and believing it would let a client pick a fresh address per
//! request. Behind a reverse proxy the peer is the proxy, so `TRUSTED_PROXIES` lists the
//! proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed. The header is
//! read from the right, the end the trusted proxies appended to, skipping trusted hops; the
//! first address that is not a trusted proxy is the client. Anything to its left was written
//! by the client and is ignored.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR networks, e.g.
    /// `10.0.0.0/8, 192.168.1.7, fd00::/8`. Blank: no proxy is trusted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Every X-Forwarded-For header, in order, as one list; read from the right.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // Unreadable: stop at the last hop a trusted proxy vouched for.
                return client;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().expect("a header value"));
        }
        headers
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("an address")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(
            none.client_address(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").expect("valid");
        // The client wrote "1.1.1.1" itself; the proxies appended the rest.
        let forwarded = headers(&["1.1.1.1, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(
            proxies.client_address(ip("192.168.1.7"), &forwarded),
            ip("203.0.113.9")
        );
        // Not from a trusted proxy: the header is not believed.
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), &forwarded),
            ip("198.51.100.1")
        );
        // Garbage in the header stops the walk at the last trusted hop.
        let garbage = headers(&["not-an-address"]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), &garbage),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_reason() {
        let error = TrustedProxies::parse("10.0.0.0/8, nonsense").unwrap_err();
        assert!(error.contains("nonsense"), "{error}");
        assert!(TrustedProxies::parse(" ").is_ok());
    }
}
