//! Listing the registries of the linked program.

use mona_core::registry::all_registries;

/// One line per registry: `<kind> (<record type>): name, name, ...`.
pub fn registry_lines() -> Vec<String> {
    all_registries()
        .into_iter()
        .map(|(kind, record, names)| {
            let names = if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            };
            format!("{kind} ({record}): {names}")
        })
        .collect()
}
