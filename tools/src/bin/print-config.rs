//! `print-config`: see [`mona_tools::entry::print_config`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::print_config::main()
}
