//! `plugin-train`: mona's `train` with this plugin's method and head registered.

fn main() -> std::process::ExitCode {
    mona_plugin_adapter::link();
    mona_tools::entry::train::main()
}
