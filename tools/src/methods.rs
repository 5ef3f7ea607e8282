//! The methods of the paper's comparison and how a config is switched to another method.

use mona_core::config::{Config, ConfigError};
use mona_core::methods::MethodEntry;

/// The nine methods of the paper's comparison, in the order of its table.
pub const PAPER_METHODS: [&str; 9] = [
    "mona",
    "adapter",
    "adaptformer",
    "lora",
    "bitfit",
    "norm_tuning",
    "partial_1",
    "fixed",
    "full",
];

/// The name the paper uses for a registered method (`norm_tuning` → `NormTuning`);
/// other methods keep their registered name.
pub fn display_name(method: &str) -> &str {
    match method {
        "mona" => "Mona",
        "adapter" => "Adapter",
        "adaptformer" => "AdaptFormer",
        "lora" => "LoRA",
        "bitfit" => "BitFit",
        "norm_tuning" => "NormTuning",
        "partial_1" => "Partial-1",
        "fixed" => "Fixed",
        "full" => "Full",
        other => other,
    }
}

/// Every registered method: the paper's nine in table order, then any other (plugins) by name.
pub fn all_methods() -> Vec<&'static str> {
    let registered = mona_core::registry::names::<MethodEntry>();
    let mut out: Vec<&'static str> = PAPER_METHODS
        .iter()
        .copied()
        .filter(|m| registered.contains(m))
        .collect();
    out.extend(
        registered
            .into_iter()
            .filter(|m| !PAPER_METHODS.contains(m)),
    );
    out
}

/// `config` with the method table at `<backbone_key>.method` replaced by `{ type = method }`
/// (the method's own keys take their defaults), as
/// `--cfg-options <key>.method=None <key>.method.type=<method>` would do.
pub fn with_method(
    config: &Config,
    backbone_key: &str,
    method: &str,
) -> Result<Config, ConfigError> {
    let mut swapped = config.clone();
    swapped.apply_options(&[
        format!("{backbone_key}.method=None"),
        format!("{backbone_key}.method.type={method}"),
    ])?;
    Ok(swapped)
}
