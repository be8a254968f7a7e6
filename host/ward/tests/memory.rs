//! Freed heap goes back to the kernel (`ward::memory`). One test per
//! process: it reads the process's resident set.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

/// Resident set of this process, in bytes.
fn rss() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no resident field in /proc/self/statm: {statm}"))?
        .parse()?;
    Ok(pages * 4096)
}

const MIB: u64 = 1 << 20;

#[test]
fn heap_freed_by_a_worker_thread_is_released_by_a_trim() -> anyhow::Result<()> {
    let before = rss()?;
    // A worker thread (its own arena, as a tokio worker's) allocates 96 MiB
    // in 1 KiB blocks and frees all but every 32nd: the live blocks keep
    // the arena from shrinking, as the daemon's long-lived state does.
    let kept = std::thread::spawn(|| {
        let mut blocks: Vec<Box<[u8; 1024]>> =
            (0..96 * 1024).map(|_| Box::new([1u8; 1024])).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 32 == 0 {
                kept.push(block);
            }
        }
        kept
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the allocating thread panicked"))?;
    let freed = rss()?;
    assert!(
        freed >= before + 64 * MIB,
        "glibc already returned the freed blocks ({} → {} MiB): the trimmer is not needed here",
        before / MIB,
        freed / MIB
    );
    assert!(
        ward::memory::release_free_heap(),
        "the trim released nothing"
    );
    let trimmed = rss()?;
    assert!(
        trimmed + 64 * MIB <= freed,
        "the trim kept the free heap: {} MiB before, {} MiB after",
        freed / MIB,
        trimmed / MIB
    );
    assert_eq!(kept.len(), 3 * 1024, "live blocks are untouched");
    assert!(kept.iter().all(|b| b.iter().all(|&x| x == 1)));
    Ok(())
}
