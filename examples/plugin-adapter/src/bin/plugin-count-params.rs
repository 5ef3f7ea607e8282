//! `plugin-count-params`: mona's `count-params` with this plugin's method and head registered.

fn main() -> std::process::ExitCode {
    mona_plugin_adapter::link();
    mona_tools::entry::count_params::main()
}
