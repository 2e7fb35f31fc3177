//! The process's file-descriptor limit (`RLIMIT_NOFILE`), which the total connection cap must
//! stay below: past it, `accept` fails and the server cannot open files or sockets either.

use tracing::warn;

/// File descriptors kept for everything but the listener's connections: media sockets (a UDP
/// port range may have 1,024), ICE-TCP, the database, session apps' pipes, files.
pub const FD_RESERVE: u64 = 1024;

/// `max_connections` as the file-descriptor limit allows: the soft limit is raised towards the
/// hard one when `max_connections` plus [`FD_RESERVE`] need it; if even the hard limit is too
/// low, the cap is lowered to fit (with a warning naming the setting).
pub fn fit_max_connections(max_connections: usize) -> usize {
    let Some((soft, hard)) = nofile() else {
        return max_connections;
    };
    let needed = (max_connections as u64).saturating_add(FD_RESERVE);
    let soft = if soft < needed && soft < hard {
        let target = needed.min(hard);
        if raise_soft(target, hard) {
            target
        } else {
            soft
        }
    } else {
        soft
    };
    fit(max_connections, soft)
}

/// The cap that fits `soft` descriptors: `max_connections`, or what the soft limit leaves
/// after [`FD_RESERVE`] (at least half of it).
pub fn fit(max_connections: usize, soft: u64) -> usize {
    let usable = soft.saturating_sub(FD_RESERVE).max(soft / 2);
    if (max_connections as u64) <= usable {
        return max_connections;
    }
    let fitted = usable.max(1) as usize;
    warn!(
        max_connections,
        fitted,
        fd_limit = soft,
        "max_connections is above what the file-descriptor limit (ulimit -n, LimitNOFILE=) leaves; \
         using {fitted}. Raise the limit or lower max_connections"
    );
    fitted
}

// `rlim_t` is not `u64` everywhere: the casts are needed elsewhere.
#[allow(clippy::unnecessary_cast)]
fn nofile() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some((limit.rlim_cur as u64, limit.rlim_max as u64))
}

#[allow(clippy::unnecessary_cast)]
fn raise_soft(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_below_the_descriptor_limit() {
        assert_eq!(fit(10_000, 1_048_576), 10_000);
        assert_eq!(fit(10_000, 11_024), 10_000);
        assert_eq!(fit(10_000, 4_096), 4_096 - FD_RESERVE as usize);
        // A tiny limit still leaves half of it to connections.
        assert_eq!(fit(10_000, 1_024), 512);
        assert_eq!(fit(100, 1_024), 100);
    }

    #[test]
    fn the_soft_limit_is_raised_when_the_cap_needs_it() {
        let (_, hard) = nofile().expect("getrlimit");
        let wanted = (hard.min(1 << 20) as usize).saturating_sub(FD_RESERVE as usize + 1);
        let fitted = fit_max_connections(wanted);
        let (soft, _) = nofile().unwrap();
        assert_eq!(fitted, wanted, "soft {soft}, hard {hard}");
        assert!(soft >= wanted as u64 + FD_RESERVE || soft == hard);
    }
}
