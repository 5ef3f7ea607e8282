//! Name-based registries, one per extension point (backbone, tuning method, neck, head, model,
//! dataset, transform, optimizer, LR schedule, metric).
//!
//! A registry is a type of registration record collected with [`inventory`]. Every crate that
//! owns an extension point declares its registry with [`declare_registry!`]; every crate that
//! provides an implementation submits a record with `inventory::submit!`. The core never names a
//! task crate: `mona-seg` declares its head registry here-style and registers its heads into it,
//! and a plugin crate does the same without touching the core.
//!
//! Lookup is by the `type` string of a config node. An unknown name is an error that names the
//! config file, the dotted key and the registered names closest to it.

use crate::config::ConfigNode;

/// A registration record of one extension point, made by [`declare_registry!`].
pub trait Registration: Sync + 'static {
    /// The extension point ("backbone", "head", ...), used in error messages and listings.
    const KIND: &'static str;
    /// The name this entry answers to in a config's `type` field.
    fn name(&self) -> &'static str;
}

/// Every registry declared anywhere in the linked program, so tools and tests can list them.
pub struct RegistryInfo {
    /// The extension point.
    pub kind: &'static str,
    /// The Rust type of the registration record (disambiguates two registries of one kind,
    /// e.g. the classification and the detection necks).
    pub record: &'static str,
    /// Names currently registered in it.
    pub names: fn() -> Vec<&'static str>,
}
inventory::collect!(RegistryInfo);

/// An unknown `type`: where it was asked for and what exists.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}: {key}: unknown {kind} type \"{name}\"{}; registered: {}",
    suggestion_text(suggestions),
    registered.join(", ")
)]
pub struct UnknownType {
    pub kind: &'static str,
    pub name: String,
    pub file: String,
    pub key: String,
    pub suggestions: Vec<&'static str>,
    pub registered: Vec<&'static str>,
}

/// The error of a failed lookup.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Boxed: registry errors travel inside every builder's `Result`.
    #[error(transparent)]
    Unknown(Box<UnknownType>),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// ` (did you mean A or B?)`, or nothing without suggestions.
pub(crate) fn suggestion_text(suggestions: &[&'static str]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(" or "))
    }
}

/// All entries of registry `R`, sorted by name.
pub fn entries<R: Registration + inventory::Collect>() -> Vec<&'static R> {
    let mut all: Vec<&'static R> = inventory::iter::<R>.into_iter().collect();
    all.sort_by_key(|r| r.name());
    all
}

/// Names registered in `R`, sorted.
pub fn names<R: Registration + inventory::Collect>() -> Vec<&'static str> {
    entries::<R>().into_iter().map(|r| r.name()).collect()
}

/// The entry of `R` named `name`, if any.
pub fn find<R: Registration + inventory::Collect>(name: &str) -> Option<&'static R> {
    inventory::iter::<R>.into_iter().find(|r| r.name() == name)
}

/// The entry of `R` named by the `type` field of `node`; errors name file, key and near names.
pub fn lookup<R: Registration + inventory::Collect>(
    node: &ConfigNode<'_>,
) -> Result<&'static R, RegistryError> {
    let name = node.type_name()?;
    // The file that set the `type` (a child config, `--cfg-options`), not the one that
    // declared the table.
    let file = node.get("type").map_or_else(|| node.file(), |t| t.file());
    lookup_name::<R>(name, &file.display().to_string(), &type_key(node.key()))
}

/// Like [`lookup`] for a name that does not come from a config node (a command-line flag).
pub fn lookup_name<R: Registration + inventory::Collect>(
    name: &str,
    file: &str,
    key: &str,
) -> Result<&'static R, RegistryError> {
    if let Some(entry) = find::<R>(name) {
        return Ok(entry);
    }
    Err(unknown_type(R::KIND, name, file, key, names::<R>()))
}

/// The error of a `type` that is none of `registered` (a registry's names, or the fixed set
/// of implementations of a component), with the names closest to it.
pub fn unknown_type(
    kind: &'static str,
    name: &str,
    file: &str,
    key: &str,
    registered: Vec<&'static str>,
) -> RegistryError {
    RegistryError::Unknown(Box::new(UnknownType {
        kind,
        name: name.to_string(),
        file: file.to_string(),
        key: key.to_string(),
        suggestions: closest(name, &registered),
        registered,
    }))
}

fn type_key(node_key: &str) -> String {
    if node_key.is_empty() {
        "type".to_string()
    } else {
        format!("{node_key}.type")
    }
}

/// Up to three registered names close to `name` (case-insensitive Jaro-Winkler or substring).
pub fn closest(name: &str, registered: &[&'static str]) -> Vec<&'static str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(f64, &'static str)> = registered
        .iter()
        .map(|r| {
            let rl = r.to_lowercase();
            let mut score = strsim::jaro_winkler(&lower, &rl);
            if !lower.is_empty() && (rl.contains(&lower) || lower.contains(&rl)) {
                score = score.max(0.9);
            }
            (score, *r)
        })
        .filter(|(s, _)| *s >= 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Every registry of the linked program with its names, sorted by kind then record type.
pub fn all_registries() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut all: Vec<_> = inventory::iter::<RegistryInfo>
        .into_iter()
        .map(|info| (info.kind, info.record, (info.names)()))
        .collect();
    all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    all
}

/// Declares a registry: a registration record type holding a name and a builder, collected by
/// `inventory` and listed in [`all_registries`].
///
/// ```ignore
/// mona_core::declare_registry! {
///     /// Decode heads of segmentors.
///     pub struct SegHeadEntry: "head" => fn(&ConfigNode<'_>, &Device) -> Result<SegHead, BuildError>;
/// }
/// inventory::submit! { SegHeadEntry::new("UPerHead", build_uper) }
/// ```
#[macro_export]
macro_rules! declare_registry {
    ($(#[$meta:meta])* $vis:vis struct $name:ident : $kind:literal => $builder:ty ;) => {
        $(#[$meta])*
        $vis struct $name {
            /// The config `type` this entry answers to.
            pub name: &'static str,
            /// Builds the object.
            pub build: $builder,
        }
        impl $name {
            /// A record for `inventory::submit!`.
            pub const fn new(name: &'static str, build: $builder) -> Self {
                Self { name, build }
            }
        }
        impl $crate::registry::Registration for $name {
            const KIND: &'static str = $kind;
            fn name(&self) -> &'static str {
                self.name
            }
        }
        $crate::inventory::collect!($name);
        $crate::inventory::submit! {
            $crate::registry::RegistryInfo {
                kind: $kind,
                record: stringify!($name),
                names: $crate::registry::names::<$name>,
            }
        }
    };
}

/// The error of building a registered object from its config node.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

impl BuildError {
    /// An invalid value at `node` (or one of its fields). The file named is the one that set
    /// the field (a child config, `--cfg-options`), not the one that declared the table.
    pub fn invalid(node: &ConfigNode<'_>, field: Option<&str>, message: impl Into<String>) -> Self {
        let key = match field {
            Some(f) if node.key().is_empty() => f.to_string(),
            Some(f) => format!("{}.{f}", node.key()),
            None => node.key().to_string(),
        };
        let file = field
            .and_then(|f| node.get(f))
            .map_or_else(|| node.file(), |child| child.file());
        BuildError::Invalid {
            file: file.display().to_string(),
            key,
            message: message.into(),
        }
    }
}
