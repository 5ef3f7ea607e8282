//! `infer`: see [`mona_tools::entry::infer`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::infer::main()
}
