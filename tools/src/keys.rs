//! Presenting long key lists: grouping per-block keys into patterns, and number formatting.

/// Keys that share a pattern (block and stage indices collapsed), with their sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGroup {
    /// The keys with every index that varies within the group replaced by `*`; an index
    /// that is the same for every key stays (`layers.3.blocks.1.attn.qkv.weight`).
    pub pattern: String,
    /// How many keys (tensors) the group holds.
    pub tensors: usize,
    /// Their total number of elements.
    pub params: usize,
}

/// One group while collecting: the segments and, per index position, the value seen
/// (`None` once two keys disagree).
struct Collecting {
    shape: Vec<Option<String>>,
    values: Vec<Option<Option<String>>>,
    tensors: usize,
    params: usize,
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Groups `(key, numel)` pairs by their pattern, in order of first appearance.
pub fn group_keys<'a>(keys: impl IntoIterator<Item = (&'a str, usize)>) -> Vec<KeyGroup> {
    let mut groups: Vec<Collecting> = Vec::new();
    for (key, numel) in keys {
        let segments: Vec<&str> = key.split('.').collect();
        let shape: Vec<Option<String>> = segments
            .iter()
            .map(|s| (!is_index(s)).then(|| s.to_string()))
            .collect();
        let group = match groups.iter().position(|g| g.shape == shape) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Collecting {
                    values: segments
                        .iter()
                        .map(|s| is_index(s).then(|| Some(s.to_string())))
                        .collect(),
                    shape,
                    tensors: 0,
                    params: 0,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        for (slot, segment) in group.values.iter_mut().zip(&segments) {
            if let Some(seen) = slot
                && seen.as_deref() != Some(*segment)
            {
                *seen = None;
            }
        }
        group.tensors += 1;
        group.params += numel;
    }
    groups
        .into_iter()
        .map(|g| KeyGroup {
            pattern: g
                .shape
                .iter()
                .zip(&g.values)
                .map(|(name, value)| match (name, value) {
                    (Some(name), _) => name.clone(),
                    (None, Some(Some(index))) => index.clone(),
                    (None, _) => "*".to_string(),
                })
                .collect::<Vec<_>>()
                .join("."),
            tensors: g.tensors,
            params: g.params,
        })
        .collect()
}

/// `n` with thousands separators: `3667456` → `3,667,456`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Groups as aligned lines: pattern, key count, parameters.
pub fn format_groups(groups: &[KeyGroup], indent: &str) -> String {
    let width = groups.iter().map(|g| g.pattern.len()).max().unwrap_or(0);
    groups
        .iter()
        .map(|g| {
            format!(
                "{indent}{:<width$}  x{:<4} {:>12}\n",
                g.pattern,
                g.tensors,
                thousands(g.params)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(86_745_016), "86,745,016");
    }

    #[test]
    fn varying_indices_collapse_constant_ones_stay() {
        let keys = [
            ("layers.0.blocks.0.my_module_1.gamma", 4),
            ("layers.0.blocks.1.my_module_1.gamma", 4),
            ("layers.1.blocks.0.my_module_1.gamma", 8),
            ("norm0.weight", 4),
            ("layers.3.blocks.1.attn.qkv.weight", 10),
            ("layers.3.blocks.1.attn.qkv.bias", 3),
        ];
        let groups = group_keys(keys.iter().map(|(k, n)| (*k, *n)));
        let patterns: Vec<(&str, usize, usize)> = groups
            .iter()
            .map(|g| (g.pattern.as_str(), g.tensors, g.params))
            .collect();
        assert_eq!(
            patterns,
            vec![
                ("layers.*.blocks.*.my_module_1.gamma", 3, 16),
                ("norm0.weight", 1, 4),
                ("layers.3.blocks.1.attn.qkv.weight", 1, 10),
                ("layers.3.blocks.1.attn.qkv.bias", 1, 3),
            ]
        );
    }
}
