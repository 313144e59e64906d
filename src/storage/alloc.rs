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
