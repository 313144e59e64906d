//! The allocator under the counting wrapper: mimalloc, called through its
//! plain entry points whenever the alignment allows.
//!
//! The `mimalloc` crate routes every allocation through `mi_malloc_aligned`,
//! whose fast path only covers power-of-two sizes; a `Vec<u8>` or `Bytes` of
//! any other size (most request arguments and replies) took the generic
//! aligned path, several times longer. mimalloc's blocks are always aligned
//! to at least 8 bytes, so plain `mi_malloc` serves every layout with an
//! alignment up to 8.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Alignment every mimalloc block has (its smallest size class is 8 bytes).
const MIN_ALIGN: usize = 8;

pub struct Mimalloc;

// SAFETY: each method forwards to the mimalloc function for the same
// operation; the aligned variants are used whenever the alignment exceeds
// what plain blocks guarantee.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

/// Bytes mimalloc has committed for its pages (its `current_commit`; on
/// Linux mimalloc also reports this as its resident size). The counted
/// `used_memory` is what it handed out of them.
pub fn committed() -> u64 {
    let mut commit: usize = 0;
    // SAFETY: mi_process_info takes nullable out-pointers and only writes
    // through the ones given; `commit` is a valid, writable usize.
    unsafe {
        mi::mi_process_info(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut commit,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
    commit as u64
}

/// Hands freed memory back to the system (after a FLUSHALL, a big DEL, the
/// end of a save), as jemalloc's decay does for Redis. mimalloc marks the
/// pages that became free for a purge after a delay, but purges them only
/// when some thread allocates or collects later: an idle server kept the RSS
/// of its largest dataset until its next requests. A thread of its own runs
/// mimalloc's ordinary collection once a second, which purges the pages whose
/// delay has passed (its own heap is empty, so that is all it does).
/// Once per process, however many servers it runs.
pub fn start_decay_thread() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("moonshard-decay".into()).spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            // SAFETY: mi_collect may run on any thread at any time and frees
            // nothing in use (see commands::memory::purge).
            unsafe { mi::mi_collect(false) };
        });
        drop(spawned);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_grows_with_allocations() {
        let before = super::committed();
        // Allocated through mimalloc directly: the test binary's global
        // allocator may be the system one.
        // SAFETY: plain mimalloc allocations, each written within its size
        // and freed once below.
        let blocks: Vec<*mut u8> = (0..64)
            .map(|_| unsafe {
                let b = super::mi::mi_malloc(1 << 20) as *mut u8;
                std::ptr::write_bytes(b, 1, 1 << 20);
                b
            })
            .collect();
        let after = super::committed();
        for b in blocks {
            // SAFETY: each block came from mi_malloc above and is freed once.
            unsafe { super::mi::mi_free(b as *mut std::ffi::c_void) };
        }
        assert!(after >= before + (32 << 20), "{before} then {after}");
    }
}
