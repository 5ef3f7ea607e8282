//! The class names a model was trained on, stored with its weights, as mmdet stores
//! `meta['CLASSES']` and `init_detector` reads it: a checkpoint used away from its dataset
//! still names what it predicts.
//!
//! Training checkpoints hold them in their `meta` record (`classes`), adapter files under the
//! metadata key [`CLASSES_KEY`] (a JSON list). Only the safetensors header is read.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::CheckpointError;

/// Metadata key of an adapter file holding the class names (a JSON list of strings).
pub const CLASSES_KEY: &str = "classes";

/// The class names stored in the safetensors file at `path`; `None` when it stores none (an
/// older checkpoint, a `.pth`, a run without named classes).
pub fn stored_classes(path: &Path) -> Result<Option<Vec<String>>, CheckpointError> {
    let Some(metadata) = header_metadata(path)? else {
        return Ok(None);
    };
    let from_meta = metadata
        .get("meta")
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|m| serde_json::from_value::<Vec<String>>(m.get("classes")?.clone()).ok());
    let from_key = metadata
        .get(CLASSES_KEY)
        .and_then(|c| serde_json::from_str::<Vec<String>>(c).ok());
    Ok(from_meta.or(from_key).filter(|c| !c.is_empty()))
}

/// The `__metadata__` of a safetensors file's header, without reading its tensors; `None`
/// for a file that is not safetensors.
fn header_metadata(path: &Path) -> Result<Option<HashMap<String, String>>, CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    if file.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    let n = u64::from_le_bytes(len);
    let size = file.metadata().map_err(io)?.len();
    if n == 0 || n > size.saturating_sub(8) || n > 100 << 20 {
        return Ok(None);
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(io)?;
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: HashMap<String, String>,
    }
    Ok(serde_json::from_slice::<Header>(&header)
        .ok()
        .map(|h| h.metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::write_safetensors;
    use burn::tensor::TensorData;

    #[test]
    fn classes_come_from_a_meta_record_or_the_adapter_key() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![("w".to_string(), TensorData::new(vec![1.0f32], [1]))];
        let write = |name: &str, key: &str, value: &str| {
            let path = dir.path().join(name);
            let metadata = HashMap::from([(key.to_string(), value.to_string())]);
            write_safetensors(&path, &tensors, metadata).unwrap();
            path
        };
        let ckpt = write(
            "ckpt.safetensors",
            "meta",
            r#"{"iter": 3, "classes": ["tree", "car"]}"#,
        );
        assert_eq!(
            stored_classes(&ckpt).unwrap(),
            Some(vec!["tree".to_string(), "car".to_string()])
        );
        let adapter = write("adapter.safetensors", CLASSES_KEY, r#"["a", "b", "c"]"#);
        assert_eq!(stored_classes(&adapter).unwrap().unwrap().len(), 3);
        let older = write("older.safetensors", "meta", r#"{"iter": 3}"#);
        assert_eq!(stored_classes(&older).unwrap(), None);
        let pth = dir.path().join("model.pth");
        std::fs::write(&pth, b"PK\x03\x04 not safetensors").unwrap();
        assert_eq!(stored_classes(&pth).unwrap(), None);
        assert!(stored_classes(&dir.path().join("missing.safetensors")).is_err());
    }
}
