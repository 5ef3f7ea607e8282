//! `plugin-infer`: mona's `infer` with this plugin's method and heads registered.

fn main() -> std::process::ExitCode {
    mona_plugin_adapter::link();
    mona_tools::entry::infer::main()
}
