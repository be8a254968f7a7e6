//! Address ranges and the guarded resolver: which destination addresses a
//! plugin may reach, and the one pooled client that connects only to
//! addresses that passed the check.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::EgressConfig;
use crate::RuntimeError;

/// How long an idle pooled provider connection is kept. The pool reaps on
/// an interval of the same length, so a connection lives at most twice
/// this long after its last use; pages of one backfill follow each other
/// within milliseconds, polls are a minute apart, so a connection kept
/// longer only holds buffers (about 100 KiB each with 1,000 tenant hosts).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// An address range in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether an address is one a connector must not reach by default:
/// loopback, private, link-local (cloud metadata lives there), CGNAT,
/// multicast, unspecified, documentation and reserved ranges.
pub fn is_restricted(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
                || o[0] >= 240
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 can reach anything
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only
                || (seg[0] == 0x2001 && seg[1] == 0) // Teredo tunnels to arbitrary IPv4
                // IPv4-compatible (deprecated) `::a.b.c.d`: routes to IPv4 on some stacks.
                || (seg[..6] == [0, 0, 0, 0, 0, 0])
                // 6to4 embeds an IPv4 address: judge that address.
                || (seg[0] == 0x2002
                    && is_restricted(IpAddr::V4(std::net::Ipv4Addr::new(
                        (seg[1] >> 8) as u8,
                        seg[1] as u8,
                        (seg[2] >> 8) as u8,
                        seg[2] as u8,
                    ))))
        }
    }
}

pub(crate) struct AddressPolicy {
    overrides: BTreeMap<String, SocketAddr>,
    allowed: Vec<Cidr>,
    /// The operator's DNS servers, when configured.
    resolver:
        Option<hickory_resolver::Resolver<hickory_resolver::net::runtime::TokioRuntimeProvider>>,
}

impl std::fmt::Debug for AddressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressPolicy")
            .field("overrides", &self.overrides)
            .field("allowed", &self.allowed)
            .field("own_nameservers", &self.resolver.is_some())
            .finish()
    }
}

fn nameserver_resolver(
    servers: &[SocketAddr],
) -> Result<
    Option<hickory_resolver::Resolver<hickory_resolver::net::runtime::TokioRuntimeProvider>>,
    RuntimeError,
> {
    use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
    if servers.is_empty() {
        return Ok(None);
    }
    let mut configs = Vec::new();
    for server in servers {
        let mut ns = NameServerConfig::udp(server.ip());
        for c in &mut ns.connections {
            c.port = server.port();
        }
        configs.push(ns);
    }
    let mut builder = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(configs),
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    );
    // The operator named the servers: answer from them only, not from the
    // machine's hosts file.
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map(Some)
        .map_err(|e| RuntimeError::Config(format!("egress.nameservers: {e}")))
}

impl AddressPolicy {
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        !is_restricted(ip) || self.allowed.iter().any(|c| c.contains(ip))
    }
}

/// Resolves once and filters: the addresses returned here are the ones
/// reqwest connects to, so a second lookup cannot swap in a private one.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let policy = self.policy.clone();
        Box::pin(async move {
            if let Some(addr) = policy.overrides.get(&host) {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(*addr));
                return Ok(addrs);
            }
            let lookup_failed = |e: &dyn std::fmt::Display| {
                Box::new(LookupFailed(format!("cannot resolve {host}: {e}")))
                    as Box<dyn std::error::Error + Send + Sync>
            };
            let found: Vec<SocketAddr> = match &policy.resolver {
                Some(resolver) => resolver
                    .lookup_ip(host.as_str())
                    .await
                    .map_err(|e| lookup_failed(&e))?
                    .iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| lookup_failed(&e))?
                    .collect(),
            };
            if found.is_empty() {
                return Err(lookup_failed(&"no address"));
            }
            let (ok, refused): (Vec<_>, Vec<_>) =
                found.into_iter().partition(|a| policy.permits(a.ip()));
            if ok.is_empty() {
                return Err(Box::new(RestrictedAddress(format!(
                    "{host} resolves only to restricted addresses {:?}; refused (an operator may allow a range with egress.allow_private)",
                    refused.iter().map(|a| a.ip()).collect::<Vec<_>>()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

#[derive(Debug)]
pub(crate) struct RestrictedAddress(String);

/// The name lookup of a provider host failed (no such name, no answer).
#[derive(Debug)]
pub(crate) struct LookupFailed(String);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LookupFailed {}

impl std::fmt::Display for RestrictedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RestrictedAddress {}

/// The daemon-wide HTTP client: one connection pool for every plugin.
#[derive(Clone)]
pub struct EgressClient {
    pub(crate) client: reqwest::Client,
    pub(crate) policy: Arc<AddressPolicy>,
}

impl std::fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl EgressClient {
    /// Builds the client from operator settings.
    pub fn new(config: &EgressConfig) -> Result<EgressClient, RuntimeError> {
        let allowed = config
            .allow_private
            .iter()
            .map(|c| Cidr::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RuntimeError::Config)?;
        let policy = Arc::new(AddressPolicy {
            overrides: config
                .resolve
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
            allowed,
            resolver: nameserver_resolver(&config.nameservers)?,
        });
        let mut roots = Vec::new();
        for pem in &config.extra_roots_pem {
            roots.push(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                RuntimeError::Config(format!("extra CA root is not a PEM certificate: {e}"))
            })?);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Shorter than the usual poll interval (60 s): with one tenant
            // host per instance, 1,000 instances would otherwise keep 1,000
            // idle TLS connections open between polls.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(16)
            .tls_certs_merge(roots)
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
            .build()
            .map_err(|e| RuntimeError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(EgressClient { client, policy })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn restricted_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "ff02::1",
            "239.255.255.250",
            "100.127.255.254",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "8.8.8.8",
            "2002:5db8:d822::1",
            "100.128.0.1",
        ] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.9.9.9".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
