//! How the native binaries ask the C allocator for memory.
//!
//! glibc's malloc serves every block above its mmap threshold (32 MB once it has adapted)
//! with a fresh `mmap` and unmaps it on free, so each large activation tensor of a 256 px batch
//! pays its page faults again on every pass: relu on a 33.5 MB tensor measured 14.4 ms against
//! 0.6 ms on a 16.8 MB one (`train/examples/profile_ops.rs`). Keeping freed memory in the heap
//! for reuse made batch-8 generation and the GAN-INT-CLS training step 1.12-1.19x faster on
//! flex (`tools/bench_vs_pytorch.py`). The price is that the process keeps its peak heap.

/// Serve large blocks from the heap and keep freed memory for reuse (glibc only; elsewhere a
/// no-op). Call first thing in `main`, before any tensor is allocated.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads
    // exist and with values glibc documents for these options.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
