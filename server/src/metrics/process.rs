//! The process's memory and open descriptors, read from `/proc/self` at each scrape (Linux;
//! elsewhere these series are left out). Named as Prometheus' client libraries name them, so
//! the usual dashboards find them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Writes `process_*` at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

/// Resident and virtual size in bytes: `/proc/self/statm` counts pages (proc(5)).
fn memory() -> Option<(u64, u64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut fields = statm.split_ascii_whitespace().map(str::parse::<u64>);
    let size = fields.next()?.ok()?;
    let resident = fields.next()?.ok()?;
    let page = page_size();
    Some((resident * page, size * page))
}

/// The kernel's page size: Linux gives it to every process in its auxiliary vector, which
/// `/proc/self/auxv` shows (AT_PAGESZ = 6); 4096 when it can't be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|(key, _)| *key == AT_PAGESZ)
        .map_or(4096, |(_, value)| value)
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some((resident, virtual_size)) = memory() {
            for (name, help, value) in [
                ("process_resident_memory", "Resident memory size.", resident),
                (
                    "process_virtual_memory",
                    "Virtual memory size.",
                    virtual_size,
                ),
            ] {
                encoder
                    .encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Gauge)?
                    .encode_gauge(&value)?;
            }
        }
        if let Some(fds) = open_fds() {
            encoder
                .encode_descriptor(
                    "process_open_fds",
                    "Open file descriptors (sockets included).",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&fds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let (resident, virtual_size) = memory().expect("/proc/self/statm");
        assert!(resident > 0 && virtual_size >= resident);
        assert!(open_fds().expect("/proc/self/fd") >= 3);
        assert!(page_size().is_power_of_two());
    }
}
