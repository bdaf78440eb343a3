//! What the benchmarks print: latency samples and their quantiles, aligned tables, the
//! process's and the machine's CPU and memory from `/proc` (Linux), MET/MISSED verdicts.

use std::{fmt::Write as _, time::Duration};

/// The `q` quantile (0..=1) of sorted samples, nearest rank; `None` when there are none.
pub(crate) fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// Latency samples in microseconds.
#[derive(Default, Clone)]
pub(crate) struct Lat(pub(crate) Vec<u64>);

impl Lat {
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }
    pub(crate) fn extend(&mut self, other: Lat) {
        self.0.extend(other.0);
    }
    pub(crate) fn sorted(mut self) -> Lat {
        self.0.sort_unstable();
        self
    }
    /// The `q` quantile in ms, nearest rank; the samples must be sorted.
    pub(crate) fn q(&self, q: f64) -> f64 {
        nearest_rank(&self.0, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
    }
    pub(crate) fn mean(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0
    }
    pub(crate) fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        format!(
            "p50 {:>8.3}  p99 {:>8.3}  max {:>8.3}  mean {:>8.3}  (n={})",
            self.q(0.5),
            self.q(0.99),
            self.q(1.0),
            self.mean(),
            self.0.len()
        )
    }
}

/// A `key: value` block printed with aligned keys.
pub(crate) struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
        }
    }
    pub(crate) fn row(&mut self, k: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.rows.push((k.into(), v.into()));
        self
    }
    pub(crate) fn print(&self) {
        let w = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("\n== {} ==\n", self.title);
        for (k, v) in &self.rows {
            let _ = writeln!(out, "  {k:<w$}  {v}");
        }
        print!("{out}");
    }
}

/// `Some(kB)` of a `/proc/self/status` line such as `VmHWM` (Linux only).
pub(crate) fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) the process has used so far, from `/proc/self/stat`, and the
/// machine's busy and total CPU ticks from `/proc/stat` (Linux only; the kernel reports both in
/// USER_HZ = 100 ticks a second).
#[derive(Clone, Copy)]
pub(crate) struct CpuMark {
    process: Duration,
    machine_busy: u64,
    machine_total: u64,
    /// Time the hypervisor gave this machine's CPUs to others (counted in `machine_busy`).
    machine_steal: u64,
}

pub(crate) fn cpu_time() -> Option<CpuMark> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let f: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // "cpu  user nice system idle iowait irq softirq steal ...": idle and iowait are not busy.
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let all: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = all.iter().sum();
    let idle = all.get(3)? + all.get(4)?;
    Some(CpuMark {
        process: Duration::from_millis(ticks * 10),
        machine_busy: total - idle,
        machine_total: total,
        machine_steal: *all.get(7).unwrap_or(&0),
    })
}

/// CPU milliseconds per request over a phase, the rate all CPUs could sustain at that cost,
/// and how busy the whole machine was (the database server included, when it runs here).
pub(crate) fn cpu_per_request(before: Option<CpuMark>, requests: usize) -> String {
    let (Some(b), Some(a)) = (before, cpu_time()) else {
        return "n/a".into();
    };
    let per = (a.process - b.process).as_secs_f64() * 1000.0 / requests.max(1) as f64;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let total = a.machine_total.saturating_sub(b.machine_total).max(1) as f64;
    let busy = a.machine_busy.saturating_sub(b.machine_busy) as f64;
    let steal = a.machine_steal.saturating_sub(b.machine_steal) as f64;
    let machine_per = busy * 10.0 / requests.max(1) as f64;
    format!(
        "{per:.2} ms per request in this process (server and clients): CPU-bound ceiling about {:.0}/s on {cpus} CPUs; \
         whole machine {:.0} % busy ({:.0} % stolen by the hypervisor), {machine_per:.2} ms per request (ceiling about {:.0}/s)",
        cpus * 1000.0 / per,
        100.0 * busy / total,
        100.0 * steal / total,
        cpus * 1000.0 / machine_per.max(0.001)
    )
}

/// Resets the peak-RSS counter (`VmHWM`) to the current RSS (Linux 4.0+); false if refused.
pub(crate) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a (no /proc/self/status)".into())
}

pub(crate) fn verdict(ok: bool, how: String) -> String {
    if ok {
        format!("MET ({how})")
    } else {
        format!("MISSED ({how})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&s, 0.5), Some(50));
        assert_eq!(nearest_rank(&s, 0.99), Some(99));
        assert_eq!(nearest_rank(&s, 1.0), Some(100));
        assert_eq!(nearest_rank::<i64>(&[], 0.5), None);
    }
}
