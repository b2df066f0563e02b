//! `raiiaf` as a standalone binary; the Python package installs the same
//! command as a console script.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    raiiaf_cli::keep_freed_memory();
    std::process::exit(raiiaf_cli::main(std::env::args()));
}
