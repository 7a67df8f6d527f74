//! The `actforge` binary: a thin entry point over [`actforge::cli`].

fn main() {
    std::process::exit(actforge::cli::main());
}
