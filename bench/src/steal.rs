//! Host CPU steal: the share of this machine's CPU time that the hypervisor spent running
//! other guests instead. On a shared VM it is the run-to-run noise no benchmark setting can
//! remove, so every peer's traffic figures carry the steal measured while they ran.

use anyhow::{Context as _, Result};

/// The machine-wide CPU time counters of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    steal: u64,
    total: u64,
}

/// The counters now.
pub fn now() -> Result<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    parse(&stat).context("no aggregate cpu line in /proc/stat")
}

/// Percent of all CPU time between `before` and `after` that was stolen; `None` when no
/// time passed.
pub fn percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let steal = after.steal.checked_sub(before.steal)?;
    (total > 0).then(|| 100.0 * steal as f64 / total as f64)
}

/// The first line, `cpu  user nice system idle iowait irq softirq steal guest guest_nice`.
/// Guest time is already counted in user time, so the total is the first eight fields.
fn parse(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (fields.len() == 8).then(|| CpuTimes {
        steal: fields[7],
        total: fields.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_aggregate_line_and_takes_the_share() {
        let before = parse("cpu  100 0 50 800 0 0 0 50 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
            .expect("a full cpu line");
        let after = parse("cpu  200 0 100 1500 0 0 0 200 7 0\n").expect("a full cpu line");
        assert_eq!(before.total, 1000);
        // 150 of the 1,000 ticks that passed were stolen.
        assert_eq!(percent(before, after), Some(15.0));
        assert_eq!(percent(after, after), None);
    }

    #[test]
    fn short_or_garbled_lines_are_refused() {
        assert_eq!(parse("cpu  1 2 3\n"), None);
        assert_eq!(parse("cpu  1 2 3 x 5 6 7 8\n"), None);
        assert_eq!(parse("intr 5\n"), None);
    }
}
