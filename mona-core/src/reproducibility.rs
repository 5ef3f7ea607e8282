//! A run's seed and its promise of reproducibility: mmdet's `--seed` and `--deterministic`.
//!
//! mmcv configs may carry top-level `seed` and `deterministic` keys. The command line wins over
//! them, and a key given only in the config is honoured rather than ignored.
//!
//! On the `flex` CPU backend a run is bit-reproducible for a seed with or without the flag:
//! the loader draws every sample's randomness from (seed, epoch, index), samplers from (seed,
//! epoch, batch), and the kernels are fixed, so `deterministic` there states what already
//! holds. burn's cubecl backends (CUDA, cubecl-cpu) pick kernels by timing them (autotune), and
//! CUDA sums the backward of gathers with float atomics, so two runs may round differently.
//! There the flag is refused, not promised and broken.

use crate::config::{Config, ConfigError};

/// Why the seed or the promise cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "deterministic training is not available on {device}: burn's cubecl kernels are chosen by timing them (autotune) and CUDA sums gradients with float atomics, so runs may round differently; train on flex (the CPU default, bit-reproducible for a seed) or drop `deterministic`"
    )]
    Device { device: String },
}

/// The seed of a run and whether it was asked to be bit-reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reproducibility {
    pub seed: u64,
    pub deterministic: bool,
}

impl Reproducibility {
    /// `--seed` (else the config's `seed`, else 0) and `--deterministic` (else the config's
    /// `deterministic`), checked against the device named on the command line.
    pub fn resolve(
        cfg: &Config,
        cli_seed: Option<u64>,
        cli_deterministic: bool,
        device: &str,
    ) -> Result<Self, ReproError> {
        let seed = match cli_seed {
            Some(seed) => seed,
            None => cfg
                .get("seed")
                .map(|n| n.extract::<u64>())
                .transpose()?
                .unwrap_or(0),
        };
        let deterministic = cli_deterministic
            || cfg
                .get("deterministic")
                .map(|n| n.extract::<bool>())
                .transpose()?
                .unwrap_or(false);
        if deterministic && !matches!(device, "flex" | "cpu") {
            return Err(ReproError::Device {
                device: device.to_string(),
            });
        }
        Ok(Self {
            seed,
            deterministic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        text: &str,
        seed: Option<u64>,
        flag: bool,
        device: &str,
    ) -> Result<Reproducibility, String> {
        let cfg = Config::from_str_at(text, "configs/run.toml").unwrap();
        Reproducibility::resolve(&cfg, seed, flag, device).map_err(|e| e.to_string())
    }

    #[test]
    fn the_command_line_wins_over_the_config() {
        let both = "seed = 7\ndeterministic = true\n";
        assert_eq!(
            resolve(both, None, false, "flex"),
            Ok(Reproducibility {
                seed: 7,
                deterministic: true
            })
        );
        assert_eq!(
            resolve(both, Some(3), false, "flex"),
            Ok(Reproducibility {
                seed: 3,
                deterministic: true
            })
        );
        assert_eq!(
            resolve("", None, true, "cpu"),
            Ok(Reproducibility {
                seed: 0,
                deterministic: true
            })
        );
        assert_eq!(
            resolve("", None, false, "cuda:0"),
            Ok(Reproducibility {
                seed: 0,
                deterministic: false
            })
        );
    }

    #[test]
    fn a_cubecl_device_refuses_the_promise() {
        for (text, flag) in [("", true), ("deterministic = true\n", false)] {
            for device in ["cuda:0", "cubecl-cpu"] {
                let e = resolve(text, None, flag, device).unwrap_err();
                assert!(
                    e.starts_with(&format!(
                        "deterministic training is not available on {device}: "
                    )),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_seed_of_the_wrong_type_names_its_key() {
        let e = resolve("seed = \"one\"\n", None, false, "flex").unwrap_err();
        assert!(e.contains("configs/run.toml") && e.contains("seed"), "{e}");
        let e = resolve("deterministic = 1\n", None, false, "flex").unwrap_err();
        assert!(e.contains("deterministic"), "{e}");
    }
}
