//! The `verdict` binary: parses the command line and hands over to
//! [`verdict::cli`]. Exit codes: 0 success, 1 failure, 2 bad input.

fn main() {
    std::process::exit(verdict::cli::main());
}
