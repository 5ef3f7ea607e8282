//! `count-params`: see [`mona_tools::entry::count_params`].

fn main() -> std::process::ExitCode {
    mona_tools::entry::count_params::main()
}
