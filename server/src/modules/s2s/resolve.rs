//! Finding a peer (RFC 6120 §3.2): the static map in the config first, then DNS. SRV
//! records of `_xmpp-server._tcp` (STARTTLS) and `_xmpps-server._tcp` (XEP-0368, TLS from
//! the first byte) are tried in priority and weight order (RFC 2782); a single `.` target
//! says the service is decidedly not offered; with no SRV record at all the domain's own
//! A/AAAA records on port 5269 are the fallback (§3.2.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use rand::Rng;
use tokio::net::TcpStream;

use super::config::S2sConfig;

/// RFC 6120 §3.2.2: the fallback port when a domain has no SRV record.
const DEFAULT_PORT: u16 = 5269;

/// Why no connection to a domain could be made.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no address found for {0}")]
    NoAddress(String),
    /// RFC 6120 §3.2.1: the SRV answer was a single `.` target.
    #[error("{0} says it offers no server-to-server service")]
    NoService(String),
    #[error("no address of {domain} accepted a connection: {last}")]
    Unreachable {
        domain: String,
        last: std::io::Error,
    },
}

/// One place to connect to, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// XEP-0368: TLS from the first byte (ALPN `xmpp-server`), no STARTTLS.
    direct_tls: bool,
}

/// A connection to the peer and how the stream on it starts.
pub struct Connected {
    pub tcp: TcpStream,
    pub addr: SocketAddr,
    /// TLS before the stream header (XEP-0368), rather than STARTTLS.
    pub direct_tls: bool,
}

/// The DNS side: hickory's resolver with the configured nameservers, or the system's.
pub struct Resolver {
    /// `None` when no nameserver is known (no resolv.conf): only the static map works.
    dns: Option<TokioResolver>,
}

impl Resolver {
    pub fn new(config: &S2sConfig) -> Resolver {
        let builder = if config.resolvers.is_empty() {
            TokioResolver::builder_tokio()
        } else {
            let mut servers = NameServerConfigGroup::new();
            for addr in &config.resolvers {
                servers.push(NameServerConfig::new(*addr, Protocol::Udp));
                servers.push(NameServerConfig::new(*addr, Protocol::Tcp));
            }
            let config = ResolverConfig::from_parts(None, Vec::new(), servers);
            let mut options = ResolverOpts::default();
            // Configured nameservers are the whole truth (a test's, or a split horizon's).
            options.use_hosts_file = ResolveHosts::Never;
            options.timeout = Duration::from_secs(2);
            Ok(
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                    .with_options(options),
            )
        };
        let dns = match builder {
            Ok(builder) => Some(builder.build()),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver: only [modules.s2s] peers are reachable");
                None
            }
        };
        Resolver { dns }
    }

    /// A connection to `domain`'s server: the static map's address, else the SRV targets
    /// in order, else its A/AAAA on 5269. RFC 6120 §3.2.1: once SRV records were found,
    /// failing to connect to all of them does not fall back to A/AAAA.
    pub async fn connect(&self, config: &S2sConfig, domain: &str) -> Result<Connected, FindError> {
        if let Some(addr) = config.peer(domain) {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|last| FindError::Unreachable {
                    domain: domain.to_owned(),
                    last,
                })?;
            return Ok(Connected {
                tcp,
                addr,
                direct_tls: false,
            });
        }
        let Some(dns) = &self.dns else {
            return Err(FindError::NoAddress(domain.to_owned()));
        };
        let targets = match self.srv_targets(dns, domain).await? {
            Some(targets) => targets,
            None => vec![Target {
                host: domain.to_owned(),
                port: DEFAULT_PORT,
                direct_tls: false,
            }],
        };
        let mut last = None;
        for target in targets {
            let ips: Vec<IpAddr> = match dns.lookup_ip(format!("{}.", target.host)).await {
                Ok(found) => found.iter().collect(),
                Err(e) => {
                    tracing::debug!(host = %target.host, error = %e, "no address for an s2s target");
                    continue;
                }
            };
            for ip in ips {
                let addr = SocketAddr::new(ip, target.port);
                match TcpStream::connect(addr).await {
                    Ok(tcp) => {
                        return Ok(Connected {
                            tcp,
                            addr,
                            direct_tls: target.direct_tls,
                        })
                    }
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "s2s target refused");
                        last = Some(e);
                    }
                }
            }
        }
        Err(match last {
            Some(last) => FindError::Unreachable {
                domain: domain.to_owned(),
                last,
            },
            None => FindError::NoAddress(domain.to_owned()),
        })
    }

    /// Both SRV services of `domain`, ordered; `None` when neither has a record (the
    /// A/AAAA fallback applies); `NoService` when what exists is only `.` targets.
    async fn srv_targets(
        &self,
        dns: &TokioResolver,
        domain: &str,
    ) -> Result<Option<Vec<Target>>, FindError> {
        let (tls_name, starttls_name) = (
            format!("_xmpps-server._tcp.{domain}."),
            format!("_xmpp-server._tcp.{domain}."),
        );
        let (tls, starttls) =
            tokio::join!(srv(dns, &tls_name, true), srv(dns, &starttls_name, false),);
        let (records, refused) =
            [tls, starttls]
                .into_iter()
                .fold(
                    (Vec::new(), false),
                    |(mut all, refused), found| match found {
                        Srv::Records(mut records) => {
                            all.append(&mut records);
                            (all, refused)
                        }
                        Srv::NotOffered => (all, true),
                        Srv::None => (all, refused),
                    },
                );
        if records.is_empty() {
            return if refused {
                Err(FindError::NoService(domain.to_owned()))
            } else {
                Ok(None)
            };
        }
        Ok(Some(order(records, &mut rand::thread_rng())))
    }
}

/// One SRV lookup's outcome.
enum Srv {
    Records(Vec<(u16, u16, Target)>),
    /// RFC 2782: a single record whose target is `.`.
    NotOffered,
    /// No record (or no answer: DNS trouble is treated like absence, so the fallback runs).
    None,
}

async fn srv(dns: &TokioResolver, name: &str, direct_tls: bool) -> Srv {
    let found = match dns.srv_lookup(name).await {
        Ok(found) => found,
        Err(e) => {
            if !e.is_no_records_found() {
                tracing::debug!(%name, error = %e, "SRV lookup failed");
            }
            return Srv::None;
        }
    };
    let records: Vec<_> = found.iter().collect();
    if let [only] = records.as_slice() {
        if only.target().is_root() {
            return Srv::NotOffered;
        }
    }
    Srv::Records(
        records
            .into_iter()
            .filter(|r| !r.target().is_root())
            .map(|r| {
                let host = r.target().to_ascii();
                let target = Target {
                    host: host.trim_end_matches('.').to_owned(),
                    port: r.port(),
                    direct_tls,
                };
                (r.priority(), r.weight(), target)
            })
            .collect(),
    )
}

/// RFC 2782's order: lowest priority first; within one priority, a weighted random draw
/// (a weight of 0 has a small chance only when nothing heavier is left).
fn order(mut records: Vec<(u16, u16, Target)>, rng: &mut impl Rng) -> Vec<Target> {
    records.sort_by_key(|(priority, weight, _)| (*priority, *weight));
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].0;
        let end = records.iter().take_while(|r| r.0 == priority).count();
        let mut group: Vec<_> = records.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|(_, w, _)| u32::from(*w)).sum();
            let mut pick = rng.gen_range(0..=total);
            let index = group
                .iter()
                .position(|(_, w, _)| {
                    if pick <= u32::from(*w) {
                        true
                    } else {
                        pick -= u32::from(*w);
                        false
                    }
                })
                .unwrap_or(group.len() - 1);
            ordered.push(group.remove(index).2);
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn target(host: &str) -> Target {
        Target {
            host: host.to_owned(),
            port: 5269,
            direct_tls: false,
        }
    }

    #[test]
    fn lower_priority_first_whatever_the_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let ordered = order(
                vec![
                    (20, 100, target("backup")),
                    (10, 0, target("first")),
                    (30, 65535, target("last")),
                ],
                &mut rng,
            );
            let hosts: Vec<_> = ordered.iter().map(|t| t.host.as_str()).collect();
            assert_eq!(hosts, ["first", "backup", "last"]);
        }
    }

    #[test]
    fn weights_share_one_priority_in_proportion() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let ordered = order(
                vec![(10, 90, target("heavy")), (10, 10, target("light"))],
                &mut rng,
            );
            assert_eq!(ordered.len(), 2);
            if ordered[0].host == "heavy" {
                heavy_first += 1;
            }
        }
        // 90 % expected; far from both 50 % (weights ignored) and 100 % (sorted only).
        assert!((820..=970).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn zero_weights_all_come_out() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let ordered = order(
            vec![
                (0, 0, target("a")),
                (0, 0, target("b")),
                (0, 0, target("c")),
            ],
            &mut rng,
        );
        let mut hosts: Vec<_> = ordered.iter().map(|t| t.host.clone()).collect();
        hosts.sort();
        assert_eq!(hosts, ["a", "b", "c"]);
    }
}
