//! `test`: see [`mona_tools::entry::test`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::test::main()
}
