//! `raiiaf` as a standalone binary; the Python package installs the same
//! command as a console script.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (mimalloc.h), linked in with the allocator.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (its 16th option): how many
/// milliseconds freed memory stays mapped before it is given back to the OS.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() {
    // mimalloc gives freed memory back after 10 ms by default; `raiiaf index` frees and
    // allocates its Parquet buffers every few tens of milliseconds, and the kernel spent a fifth
    // of the run zeroing the pages it was handed again. A second keeps them for the next batch.
    // SAFETY: an option setter with no preconditions, called before any thread starts.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    std::process::exit(raiiaf_cli::main(std::env::args()));
}
