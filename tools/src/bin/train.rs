//! `train`: see [`mona_tools::entry::train`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::train::main()
}
