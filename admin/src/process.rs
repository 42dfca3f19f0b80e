//! The process's own figures on every scrape, under the names Prometheus's client libraries
//! use (`process_resident_memory_bytes`, `process_open_fds`, ...), so existing dashboards and
//! alerts apply.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads memory and open files from `/proc/self` on each scrape (Linux; elsewhere it adds
/// nothing).
#[derive(Debug)]
pub struct ProcessCollector;

/// A snapshot of the figures; each is `None` where the platform does not tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessFigures {
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
}

impl ProcessFigures {
    /// Reads the figures now.
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status.lines().find_map(|l| {
                let v = l.strip_prefix(key)?.trim().strip_suffix("kB")?;
                v.trim().parse::<u64>().ok().map(|k| k * 1024)
            })
        };
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let max_fds = max_fds();
        Self {
            resident_bytes: kib("VmRSS:"),
            virtual_bytes: kib("VmSize:"),
            open_fds,
            max_fds,
        }
    }
}

/// The soft limit on open files (Unix; Windows has no such limit to report).
#[cfg(unix)]
fn max_fds() -> Option<u64> {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    limit.map(|(soft, _)| soft)
}

#[cfg(not(unix))]
fn max_fds() -> Option<u64> {
    None
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let f = ProcessFigures::read();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                f.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                f.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                f.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                f.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            let Some(v) = value else { continue };
            let gauge = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let f = ProcessFigures::read();
        assert!(f.resident_bytes.unwrap_or(0) > 1024 * 1024, "{f:?}");
        assert!(f.open_fds.unwrap_or(0) >= 3, "{f:?}");
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(out.contains("\nprocess_resident_memory_bytes "), "{out}");
        assert!(out.contains("# TYPE process_open_fds gauge"), "{out}");
    }
}
