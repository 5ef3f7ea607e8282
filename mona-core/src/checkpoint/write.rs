use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use burn::tensor::TensorData;

use super::CheckpointError;

/// Writes f32 tensors and string metadata as safetensors, atomically: the bytes go to a
/// temporary file in the same folder, are synced, and the file is renamed over `path`, so a
/// crash never leaves a truncated file where a good one was.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, TensorData)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    let owned: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, d)| {
            let values: Vec<f32> = d
                .clone()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default();
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (k.clone(), bytes, d.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(k, b, s)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| CheckpointError::Format {
                    path: path.to_path_buf(),
                    message: format!("{k}: {e}"),
                })
        })
        .collect::<Result<_, _>>()?;
    let format_err = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| format_err(e.to_string()))?;
    let bytes = sorted_header(bytes).map_err(format_err)?;
    write_atomic(path, &bytes).map_err(io)
}

/// The safetensors file `bytes` with its header's keys in sorted order.
///
/// safetensors writes `__metadata__` in `HashMap` order, which differs from one process to
/// the next, so two identical runs wrote different bytes. Readers locate tensors by their
/// offsets, not by the order of the header, so reordering it changes nothing else; the header
/// keeps safetensors' padding to a multiple of 8 bytes.
fn sorted_header(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Header {
        #[serde(
            rename = "__metadata__",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        metadata: Option<BTreeMap<String, String>>,
        #[serde(flatten)]
        tensors: BTreeMap<String, serde_json::Value>,
    }
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("no header length")?;
    let n = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|e| e.to_string())?;
    let body = bytes.get(8..8 + n).ok_or("header past the end")?;
    let header: Header = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string(&header).map_err(|e| e.to_string())?;
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(bytes.len() - n + text.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Temp file in the destination folder, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Atomically replaces a small text file.
pub fn write_atomic_text(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::StateDict;

    #[test]
    fn the_same_checkpoint_is_the_same_bytes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![
            (
                "b.weight".to_string(),
                TensorData::new(vec![1.0f32, 2.0, 3.0], [3]),
            ),
            ("a.bias".to_string(), TensorData::new(vec![-0.5f32], [1])),
        ];
        let metadata = || -> HashMap<String, String> {
            (0..8)
                .map(|i| (format!("key{i}"), format!("value {i}")))
                .collect()
        };
        let (one, two) = (
            dir.path().join("one.safetensors"),
            dir.path().join("two.safetensors"),
        );
        // each HashMap has its own random order; the files must not
        write_safetensors(&one, &tensors, metadata()).unwrap();
        write_safetensors(&two, &tensors, metadata()).unwrap();
        let bytes = std::fs::read(&one).unwrap();
        assert!(bytes == std::fs::read(&two).unwrap());
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "the header keeps safetensors' padding");
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let keys: Vec<usize> = (0..8)
            .map(|i| header.find(&format!("\"key{i}\"")).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{header}");
        let read = StateDict::read_raw(&one).unwrap();
        assert_eq!(read.tensors["b.weight"], tensors[0].1);
        assert_eq!(read.tensors["a.bias"], tensors[1].1);
        assert_eq!(read.metadata["key3"], "value 3");
    }
}
