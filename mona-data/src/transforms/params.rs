//! Argument parsing shared by transform builders: sizes given as an int or `[h, w]`, and the
//! `interpolation` / `backend` names.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;

use crate::ops::{Backend, Interpolation};

/// An mmcv size argument: `224` or `[h, w]` (`-1` allowed where the transform says so).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SizeArg {
    One(i64),
    Pair(Vec<i64>),
}

impl SizeArg {
    /// `(h, w)` with both values given as written (`n` means `(n, n)`); errors for lists that
    /// are not of length 2.
    pub(crate) fn pair(
        &self,
        node: &ConfigNode<'_>,
        field: &str,
    ) -> Result<(i64, i64), BuildError> {
        match self {
            SizeArg::One(n) => Ok((*n, *n)),
            SizeArg::Pair(v) if v.len() == 2 => Ok((v[0], v[1])),
            SizeArg::Pair(v) => Err(BuildError::invalid(
                node,
                Some(field),
                format!(
                    "expected an int or [h, w], found a list of {} values",
                    v.len()
                ),
            )),
        }
    }

    /// `(h, w)`, both positive.
    pub(crate) fn positive(
        &self,
        node: &ConfigNode<'_>,
        field: &str,
    ) -> Result<(usize, usize), BuildError> {
        let (h, w) = self.pair(node, field)?;
        match (usize::try_from(h), usize::try_from(w)) {
            (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
            _ => Err(BuildError::invalid(
                node,
                Some(field),
                format!("sizes must be positive, found [{h}, {w}]"),
            )),
        }
    }
}

/// Parses an `interpolation` name.
pub(crate) fn interpolation(
    node: &ConfigNode<'_>,
    name: &str,
) -> Result<Interpolation, BuildError> {
    Interpolation::parse(name).ok_or_else(|| {
        BuildError::invalid(
            node,
            Some("interpolation"),
            format!(
                "unsupported interpolation \"{name}\"; supported: {}",
                Interpolation::NAMES.join(", ")
            ),
        )
    })
}

/// Parses a `backend` name.
pub(crate) fn backend(node: &ConfigNode<'_>, name: &str) -> Result<Backend, BuildError> {
    Backend::parse(name).ok_or_else(|| {
        BuildError::invalid(
            node,
            Some("backend"),
            format!(
                "unsupported backend \"{name}\"; supported: {}",
                Backend::NAMES.join(", ")
            ),
        )
    })
}

pub(crate) fn default_interpolation() -> String {
    "bilinear".to_string()
}

pub(crate) fn default_backend() -> String {
    "cv2".to_string()
}
