//! `plugin-list-registry`: mona's `list-registry` with this plugin's method and head registered.

fn main() -> std::process::ExitCode {
    mona_plugin_adapter::link();
    mona_tools::entry::list_registry::main()
}
