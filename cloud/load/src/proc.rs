//! Reading another process's memory (VmRSS from /proc/PID/status) and CPU time (the first
//! field of each thread's /proc/PID/task/TID/schedstat, in nanoseconds).

use std::time::Duration;

/// The resident set of process `pid`, in bytes.
pub fn rss(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_rss(&status).ok_or_else(|| format!("{path}: no VmRSS line"))
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// CPU time used so far by the live threads of process `pid`.
pub fn cpu(pid: u32) -> Result<Duration, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it is simply not counted.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\txmidt\nVmPeak:\t  200 kB\nVmRSS:\t   1234 kB\nThreads:\t2\n";
        assert_eq!(parse_rss(status), Some(1234 * 1024));
        assert_eq!(parse_rss("Name:\tx\n"), None);
        assert!(rss(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(cpu(std::process::id()).unwrap() > before);
    }
}
