//! `list-registry`: see [`mona_tools::entry::list_registry`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::list_registry::main()
}
