//! `raiiaf` as a standalone binary; the Python package installs the same
//! command as a console script.
fn main() {
    std::process::exit(raiiaf_cli::main(std::env::args()));
}
