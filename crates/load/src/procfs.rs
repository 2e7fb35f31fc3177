//! Reading a process's CPU time, memory, threads and UDP socket drops from /proc (Linux).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::time::Instant;

/// Clock ticks per second of the times in /proc/PID/stat.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (clock ticks) and the command name of a /proc/.../stat line.
fn parse_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the command: state (field 3) is index 0, utime (14) index 11, stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// One reading of a process.
#[derive(Debug, Clone)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, KiB.
    pub rss_kb: u64,
    /// CPU ticks per thread name (threads of one name, e.g. `tokio-runtime-w`, added up).
    pub threads: BTreeMap<String, u64>,
    /// Nanoseconds its threads spent runnable but waiting for a CPU (/proc/.../schedstat):
    /// how much other work on the machine delayed it.
    pub runqueue_wait_ns: u64,
}

impl ProcSample {
    /// Read `/proc/<pid>` (`None`: this process).
    pub fn take(pid: Option<u32>) -> io::Result<ProcSample> {
        let dir = match pid {
            Some(p) => format!("/proc/{p}"),
            None => "/proc/self".to_string(),
        };
        let at = Instant::now();
        let stat = fs::read_to_string(format!("{dir}/stat"))?;
        let (_, cpu_ticks) = parse_stat(&stat)
            .ok_or_else(|| io::Error::other(format!("unexpected {dir}/stat: {stat}")))?;
        let status = fs::read_to_string(format!("{dir}/status"))?;
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut threads = BTreeMap::new();
        let mut runqueue_wait_ns = 0;
        if let Ok(tasks) = fs::read_dir(format!("{dir}/task")) {
            for task in tasks.flatten() {
                if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
                    // run time, wait time (ns), time slices
                    runqueue_wait_ns += text
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
                let Ok(text) = fs::read_to_string(task.path().join("stat")) else {
                    continue;
                };
                if let Some((comm, ticks)) = parse_stat(&text) {
                    *threads.entry(comm).or_insert(0) += ticks;
                }
            }
        }
        Ok(ProcSample {
            at,
            cpu_ticks,
            rss_kb,
            threads,
            runqueue_wait_ns,
        })
    }

    /// CPU cores used between `earlier` and `self` (1.0 = one core busy all the time).
    pub fn cores_since(&self, earlier: &ProcSample) -> f64 {
        let secs = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.cpu_seconds_since(earlier) / secs
    }

    /// Share of the time between `earlier` and `self` that its threads waited for a CPU
    /// while runnable (in cores: 0.05 = 5 % of one core's time).
    pub fn waited_since(&self, earlier: &ProcSample) -> f64 {
        let secs = self
            .at
            .saturating_duration_since(earlier.at)
            .as_secs_f64()
            .max(1e-9);
        self.runqueue_wait_ns
            .saturating_sub(earlier.runqueue_wait_ns) as f64
            / 1e9
            / secs
    }

    /// CPU seconds used between `earlier` and `self`.
    pub fn cpu_seconds_since(&self, earlier: &ProcSample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / clock_ticks_per_second() as f64
    }

    /// CPU cores per thread name between `earlier` and `self`.
    pub fn thread_cores_since(&self, earlier: &ProcSample) -> BTreeMap<String, f64> {
        let secs = self
            .at
            .saturating_duration_since(earlier.at)
            .as_secs_f64()
            .max(1e-9);
        let tck = clock_ticks_per_second() as f64;
        self.threads
            .iter()
            .map(|(name, ticks)| {
                let before = earlier.threads.get(name).copied().unwrap_or(0);
                (
                    name.clone(),
                    ticks.saturating_sub(before) as f64 / tck / secs,
                )
            })
            .filter(|(_, c)| *c > 0.0)
            .collect()
    }
}

/// Busy CPU time of the whole machine (all CPUs: user, nice, system, irq, softirq, steal), in
/// clock ticks, from /proc/stat.
pub fn machine_busy_ticks() -> Option<u64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(&text)
}

fn parse_machine_busy(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    busy_of(line)
}

/// Busy time of each CPU (`cpu0`, `cpu1`, ...), in clock ticks, from /proc/stat.
pub fn per_cpu_busy_ticks() -> Vec<u64> {
    let Ok(text) = fs::read_to_string("/proc/stat") else {
        return vec![];
    };
    parse_per_cpu_busy(&text)
}

fn parse_per_cpu_busy(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(busy_of)
        .collect()
}

fn busy_of(line: &str) -> Option<u64> {
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    Some(
        v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).copied().unwrap_or(0),
    )
}

/// Inodes of the sockets a process has open.
pub fn socket_inodes(pid: Option<u32>) -> HashSet<u64> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/fd"),
        None => "/proc/self/fd".to_string(),
    };
    let mut inodes = HashSet::new();
    if let Ok(fds) = fs::read_dir(dir) {
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    if let Ok(n) = n.parse() {
                        inodes.insert(n);
                    }
                }
            }
        }
    }
    inodes
}

/// Datagrams the kernel dropped (full receive buffer) on UDP sockets with these inodes,
/// from /proc/net/udp and /proc/net/udp6.
pub fn udp_drops(inodes: &HashSet<u64>) -> u64 {
    let mut drops = 0;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        drops += parse_udp_drops(&text, inodes);
    }
    drops
}

fn parse_udp_drops(text: &str, inodes: &HashSet<u64>) -> u64 {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            let inode: u64 = f.get(9)?.parse().ok()?;
            let drops: u64 = f.get(12)?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

/// The kernel's UDP counters (`/proc/net/snmp`): (InErrors, RcvbufErrors, SndbufErrors).
pub fn udp_snmp() -> (u64, u64, u64) {
    let Ok(text) = fs::read_to_string("/proc/net/snmp") else {
        return (0, 0, 0);
    };
    parse_snmp(&text)
}

fn parse_snmp(text: &str) -> (u64, u64, u64) {
    let udp: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    if udp.len() < 2 {
        return (0, 0, 0);
    }
    let names: Vec<&str> = udp[0].split_whitespace().collect();
    let values: Vec<&str> = udp[1].split_whitespace().collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("InErrors"), get("RcvbufErrors"), get("SndbufErrors"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_spaces_in_the_name() {
        let line = "1234 (sfu worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("sfu worker".into(), 300)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let s = ProcSample::take(None).unwrap();
        assert!(s.rss_kb > 0);
        assert!(!s.threads.is_empty());
    }

    #[test]
    fn udp_drops_and_snmp_parse() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 1: 0100007F:1EC2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5555 2 0000000000000000 7\n\
 2: 0100007F:1EC3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6666 2 0000000000000000 3\n";
        let inodes: HashSet<u64> = [5555].into_iter().collect();
        assert_eq!(parse_udp_drops(udp, &inodes), 7);
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 0 4 9 3 1\n";
        assert_eq!(parse_snmp(snmp), (4, 3, 1));
        let stat = "cpu  10 1 5 100 7 2 3 4 0 0\ncpu0 5 0 2 50 3 1 1 2 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(10 + 1 + 5 + 2 + 3 + 4));
        assert_eq!(parse_per_cpu_busy(stat), vec![5 + 2 + 1 + 1 + 2]);
    }
}
