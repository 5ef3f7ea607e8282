//! `convert-checkpoint`: see [`mona_tools::entry::convert_checkpoint`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::convert_checkpoint::main()
}
