//! Usage figures of a cgroup (what `lxc-info` shows) and the parsers for the kernel's stat files.

/// Usage of a container's cgroup; `None` where this host doesn't provide the figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`.
    pub memory_bytes: Option<u64>,
    /// v1 `memory.kmem.usage_in_bytes`, v2 `memory.stat` kernel memory.
    pub kmem_bytes: Option<u64>,
    /// v1 memsw usage minus memory usage, v2 `memory.swap.current`.
    pub swap_bytes: Option<u64>,
    /// CPU time in nanoseconds: v1 `cpuacct.usage`, v2 `cpu.stat` usage_usec.
    pub cpu_ns: Option<u64>,
    /// Bytes read and written: v1 blkio `Total`, v2 `io.stat` rbytes + wbytes.
    pub blkio_bytes: Option<u64>,
}

pub(super) fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat): the value of `key`.
fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse().ok()))?
    })
}

/// cgroup2 `cpu.stat`: `usage_usec` in nanoseconds.
pub(super) fn parse_v2_cpu_ns(text: &str) -> Option<u64> {
    flat_keyed(text, "usage_usec").map(|us| us.saturating_mul(1000))
}

/// cgroup2 `memory.stat`: kernel memory. `kernel` exists since Linux 5.18; before that, add up
/// the kernel-side entries it summarises.
pub(super) fn parse_v2_kmem(text: &str) -> Option<u64> {
    if let Some(k) = flat_keyed(text, "kernel") {
        return Some(k);
    }
    let parts: Vec<u64> = [
        "slab",
        "kernel_stack",
        "pagetables",
        "percpu",
        "sock",
        "vmalloc",
    ]
    .iter()
    .filter_map(|k| flat_keyed(text, k))
    .collect();
    (!parts.is_empty()).then(|| parts.iter().sum())
}

/// v1 `blkio.throttle.io_service_bytes`: the final `Total N` line.
pub(super) fn parse_v1_blkio_total(text: &str) -> Option<u64> {
    text.lines().rev().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("Total")).then(|| it.next().and_then(|v| v.parse().ok()))?
    })
}

/// cgroup2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=...` per device): all rbytes + wbytes.
pub(super) fn parse_v2_io_bytes(text: &str) -> u64 {
    text.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            matches!(k, "rbytes" | "wbytes")
                .then(|| v.parse::<u64>().ok())
                .flatten()
        })
        .fold(0u64, u64::saturating_add)
}

/// cgroup2 `cgroup.events`: is `frozen 1`?
pub(super) fn parse_v2_frozen(text: &str) -> bool {
    flat_keyed(text, "frozen") == Some(1)
}
