use std::collections::HashMap;
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
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_atomic(path, &bytes).map_err(io)
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
