//! The process's allocator, mimalloc, and the one setting it runs with.

use std::ffi::{c_int, c_long};

// glibc's malloc spent a fifth of ingest's CPU (`_int_malloc`, in a profile
// of the replay) once the batch's large allocations had fragmented its
// arenas; mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long freed memory stays with the process before mimalloc returns
/// it to the kernel (milliseconds). At mimalloc's default of 1 s, the
/// replay's stages handed pages back and faulted them in again (the
/// kernel zeroing fresh huge pages was 7% of ingest's samples); at 5 s the
/// default shop's replay used 55.7-58.3 s of CPU instead of 61.4-62.2 s,
/// for 20-50 MB more peak RSS (docs/benchmarks.md).
pub const PURGE_DELAY_MS: c_long = 5_000;

/// The mimalloc release whose option numbering [`PURGE_DELAY`] is taken
/// from (`MI_MALLOC_VERSION` in the `mimalloc.h` that `libmimalloc-sys`
/// builds); under any other release the option is left alone.
const VERSION: c_int = 30302;

/// `mi_option_purge_delay` in that release's `mi_option_e`: the Rust
/// bindings do not name it.
const PURGE_DELAY: c_int = 15;

/// That release's default for it, which the `MIMALLOC_PURGE_DELAY`
/// environment variable overrides.
const DEFAULT_PURGE_DELAY: c_long = 1_000;

unsafe extern "C" {
    fn mi_version() -> c_int;
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// Sets the purge delay to [`PURGE_DELAY_MS`], unless mimalloc is another
/// release than the one checked or `MIMALLOC_PURGE_DELAY` chose a value
/// (then that value stays). Returns the delay in force.
pub fn tune() -> c_long {
    // SAFETY: plain integer calls into the allocator the process links
    // (mimalloc's global allocator above); an option index is valid for
    // the release it was read from, which is checked first.
    unsafe {
        if mi_version() != VERSION {
            tracing::debug!(
                version = mi_version(),
                "Another mimalloc release: its purge delay left as it is."
            );
            return -1;
        }
        if mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY {
            mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
        }
        mi_option_get(PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_set_in_the_mimalloc_release_we_build() {
        // Fails when `libmimalloc-sys` brings another release: check
        // `mi_option_e` in its mimalloc.h, then `PURGE_DELAY` and
        // `VERSION`.
        // SAFETY: as in `tune`.
        assert_eq!(unsafe { mi_version() }, VERSION);
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(v) => assert_eq!(tune().to_string(), v.trim()),
            Err(_) => assert_eq!(tune(), PURGE_DELAY_MS),
        }
    }
}
