//! Limits per client IP address: open connections (`c2s.max_connections_per_ip`) and the
//! in-band registration rate (`auth.registration_interval`). One address must not be able to
//! take every connection permit (`c2s.max_connections`) or create accounts in bulk.
//!
//! Addresses in `c2s.per_ip_exempt` and `http.trusted_proxies` are never limited: this
//! host's own clients, and proxies whose many users share one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::config::{C2sConfig, Config, HttpConfig};
use crate::http::safety::Network;
use crate::live::Live;

/// The networks the per-address limits skip.
#[derive(Debug, Default)]
struct Exempt(Vec<Network>);

impl Exempt {
    fn from_config(c2s: &C2sConfig, http: &HttpConfig) -> Exempt {
        // Config validation has checked every entry.
        let networks = c2s
            .per_ip_exempt
            .iter()
            .chain(&http.trusted_proxies)
            .filter_map(|n| Network::parse(n))
            .collect();
        Exempt(networks)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// An IPv4 client on an IPv6 socket (`::ffff:a.b.c.d`) counts as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open connections per address.
#[derive(Debug)]
pub struct IpConnections {
    max: AtomicUsize,
    exempt: RwLock<Exempt>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the slot back.
#[must_use]
#[derive(Debug)]
pub struct IpPermit {
    held: Option<(Arc<IpConnections>, IpAddr)>,
}

impl IpConnections {
    pub fn new(config: &Config) -> IpConnections {
        IpConnections {
            max: AtomicUsize::new(config.c2s.max_connections_per_ip),
            exempt: RwLock::new(Exempt::from_config(&config.c2s, &config.http)),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A reload's limits, for connections opened from now on; an address over a lowered
    /// limit keeps what it has open.
    pub fn update(&self, live: &Live) {
        self.max
            .store(live.c2s.max_connections_per_ip, Ordering::Relaxed);
        *self.exempt.write().unwrap_or_else(|p| p.into_inner()) =
            Exempt::from_config(&live.c2s, &live.http);
    }

    /// A slot for one more connection from `ip`, or `None` when it has `max` open already.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let ip = canonical(ip);
        let max = self.max.load(Ordering::Relaxed);
        let exempt = self
            .exempt
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(ip);
        if max == 0 || exempt {
            return Some(IpPermit { held: None });
        }
        let mut open = lock(&self.open);
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            held: Some((self.clone(), ip)),
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        if let Some((limit, ip)) = self.held.take() {
            let mut open = lock(&limit.open);
            if let Some(count) = open.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

/// When each address last registered an account in-band.
#[derive(Debug)]
pub struct RegistrationRate {
    interval: RwLock<(Duration, Exempt)>,
    last: Mutex<HashMap<IpAddr, Instant>>,
}

impl RegistrationRate {
    pub fn new(config: &Config) -> RegistrationRate {
        RegistrationRate {
            interval: RwLock::new((
                config.auth.registration_interval,
                Exempt::from_config(&config.c2s, &config.http),
            )),
            last: Mutex::new(HashMap::new()),
        }
    }

    /// A reload's interval and exemptions, for registrations from now on.
    pub fn update(&self, live: &Live) {
        *self.interval.write().unwrap_or_else(|p| p.into_inner()) = (
            live.auth.registration_interval,
            Exempt::from_config(&live.c2s, &live.http),
        );
    }

    /// Takes `ip`'s registration slot for this interval; `false` when it was used already.
    /// Taken before the account is created, so two concurrent requests can't both pass;
    /// [`RegistrationRate::release`] gives it back when no account was made.
    pub fn try_take(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let interval = {
            let (interval, exempt) = &*self.interval.read().unwrap_or_else(|p| p.into_inner());
            if interval.is_zero() || exempt.contains(ip) {
                return true;
            }
            *interval
        };
        let now = Instant::now();
        let mut last = lock(&self.last);
        // Forget addresses whose interval is over, so the map holds only recent ones.
        last.retain(|_, at| now.duration_since(*at) < interval);
        if last.contains_key(&ip) {
            return false;
        }
        last.insert(ip, now);
        true
    }

    /// The registration from `ip` failed (conflict, storage): its slot is free again.
    pub fn release(&self, ip: IpAddr) {
        lock(&self.last).remove(&canonical(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max: usize, exempt: &[&str]) -> Config {
        let mut config = Config::default();
        config.c2s.max_connections_per_ip = max;
        config.c2s.per_ip_exempt = exempt.iter().map(|s| s.to_string()).collect();
        config
    }

    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        let limit = Arc::new(IpConnections::new(&config(2, &["10.9.0.0/16"])));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limit.try_acquire(a).unwrap();
        let _second = limit.try_acquire(a).unwrap();
        assert!(limit.try_acquire(a).is_none());
        // The mapped IPv6 form is the same address.
        assert!(limit
            .try_acquire("::ffff:10.0.0.1".parse().unwrap())
            .is_none());
        assert!(limit.try_acquire(b).is_some());
        drop(first);
        assert!(limit.try_acquire(a).is_some());
        let exempt: IpAddr = "10.9.1.1".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| limit.try_acquire(exempt)).collect();
        assert!(held.iter().all(Option::is_some));
    }

    #[test]
    fn registration_slot_per_interval() {
        let mut config = config(0, &[]);
        config.auth.registration_interval = Duration::from_secs(600);
        let rate = RegistrationRate::new(&config);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(rate.try_take(ip));
        assert!(!rate.try_take(ip));
        assert!(rate.try_take("192.0.2.2".parse().unwrap()));
        rate.release(ip);
        assert!(rate.try_take(ip));
    }
}
