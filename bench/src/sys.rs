//! The few libc calls the harness needs (file-descriptor limit, signals, clock ticks, source-port
//! binding). Kept in one module so the `unsafe` is in one place.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// Raise `RLIMIT_NOFILE`'s soft limit to the hard limit. Returns the (soft, hard) now in force.
pub fn raise_nofile() -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write/read a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return (0, 0);
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    (r.rlim_cur as u64, r.rlim_max as u64)
}

/// Raise `RLIMIT_NOFILE` so that at least `want` descriptors can be open: the hard limit too if
/// it is lower (needs CAP_SYS_RESOURCE; children inherit both), else the soft limit to the hard
/// one. Returns the (soft, hard) now in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn raise_nofile_to(want: u64) -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write/read a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && (r.rlim_max as u64) < want {
            let more = libc::rlimit { rlim_cur: want as libc::rlim_t, rlim_max: want as libc::rlim_t };
            libc::setrlimit(libc::RLIMIT_NOFILE, &more);
        }
    }
    raise_nofile()
}

/// Timer slack of the calling thread in nanoseconds (default 50 µs: sleeps end up to that late).
pub fn set_timer_slack_ns(ns: u64) {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes a plain integer and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong);
    }
}

/// Send `sig` to one process id. False if it does not exist (any more).
pub fn kill(pid: u32, sig: i32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill(2) with a positive pid targets exactly that process.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

pub const SIGTERM: i32 = libc::SIGTERM;
pub const SIGKILL: i32 = libc::SIGKILL;

/// Clock ticks per second for /proc/PID/stat CPU times.
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// `IP_BIND_ADDRESS_NO_PORT`: bind a client socket to a source address without reserving a port
/// until `connect` (so many source addresses do not each exhaust the ephemeral range).
pub fn set_bind_address_no_port<S: AsRawFd>(s: &S) -> std::io::Result<()> {
    const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (a c_int we own) for the given length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Make a child process receive SIGKILL when the thread that spawned it (our main thread) dies,
/// so an interrupted or crashed benchmark never leaves gateways behind.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn cpu_set(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes one bit of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Pin the calling thread (and the threads it starts afterwards) to `cpu`.
pub fn pin_current_thread(cpu: usize) {
    let set = cpu_set(cpu);
    // SAFETY: reads `set` only.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Start the child pinned to `cpu` (every thread it ever starts inherits it).
pub fn pin_child(cmd: &mut std::process::Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(cpu);
    // SAFETY: sched_setaffinity is async-signal-safe and reads a copy of `set` only.
    unsafe {
        cmd.pre_exec(move || {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}
