use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::pytorch_reader::{DType, PytorchReader};
use burn::tensor::TensorData;

use super::CheckpointError;

/// The metadata `format` of our training checkpoints starts with this.
const TRAINING_FORMAT_PREFIX: &str = "mona-checkpoint/";
/// Where a training checkpoint keeps the model's tensors.
const TRAINING_MODEL_PREFIX: &str = "state_dict.";

/// The float tensors of a checkpoint by key, plus what was set aside.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    pub path: PathBuf,
    /// Float tensors as f32, keyed without `module.` prefixes.
    pub tensors: BTreeMap<String, TensorData>,
    /// Non-float entries (integer buffers such as `relative_position_index`).
    pub non_float: Vec<String>,
    /// Which top-level key held the weights (`state_dict`, `model`), if any.
    pub top_level_key: Option<String>,
    /// safetensors metadata, when the file is safetensors.
    pub metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// The model weights of a checkpoint: safetensors (by the `.safetensors` extension or by
    /// the file's header), anything else as a PyTorch file, trying the `state_dict` key, then
    /// `model`, then the root dict. Our training checkpoints store the model under
    /// `state_dict.` beside the optimizer state; like a `.pth` with a `state_dict` key, only
    /// that part is returned, without the prefix (`top_level_key` says so). [`Self::read_raw`]
    /// keeps every tensor.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let mut sd = Self::read_raw(path)?;
        if sd.is_training_checkpoint() {
            sd.tensors = sd.with_prefix_stripped(TRAINING_MODEL_PREFIX);
            sd.non_float = sd
                .non_float
                .iter()
                .filter_map(|k| k.strip_prefix(TRAINING_MODEL_PREFIX).map(str::to_string))
                .collect();
            sd.top_level_key = Some("state_dict".into());
            if sd.tensors.is_empty() {
                return Err(CheckpointError::Empty { path: sd.path });
            }
        }
        Ok(sd)
    }

    /// Whether the file is one of our training checkpoints (metadata `format` =
    /// `mona-checkpoint/…`).
    pub fn is_training_checkpoint(&self) -> bool {
        self.metadata
            .get("format")
            .is_some_and(|f| f.starts_with(TRAINING_FORMAT_PREFIX))
    }

    /// Every float tensor of the file under its stored key (a training checkpoint's
    /// `state_dict.` and `optimizer.` parts included).
    pub fn read_raw(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(CheckpointError::Format {
                path: path.to_path_buf(),
                message: "is a directory".into(),
            });
        }
        let sd = if path.extension().is_some_and(|e| e == "safetensors")
            || has_safetensors_header(path, meta.len())
        {
            Self::read_safetensors(path)?
        } else {
            Self::read_pytorch(path)?
        };
        if sd.tensors.is_empty() {
            return Err(CheckpointError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(sd)
    }

    fn read_pytorch(path: &Path) -> Result<Self, CheckpointError> {
        let fmt = |e: &dyn std::fmt::Display| CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut last_err = None;
        for key in [Some("state_dict"), Some("model"), None] {
            let reader = match key {
                Some(k) => PytorchReader::with_top_level_key(path, k),
                None => PytorchReader::new(path),
            };
            match reader {
                Ok(reader) if !reader.is_empty() => {
                    let mut sd = StateDict {
                        path: path.to_path_buf(),
                        top_level_key: key.map(str::to_string),
                        ..Default::default()
                    };
                    for (name, tensor) in reader.into_tensors() {
                        let name = strip_module_prefix(&name);
                        let shape = tensor.shape().to_vec();
                        let dtype = tensor.dtype();
                        if !matches!(dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16) {
                            sd.non_float.push(name);
                            continue;
                        }
                        let bytes = tensor.read().map_err(|e| fmt(&e))?;
                        let values = floats_from_bytes(&bytes, dtype);
                        sd.tensors.insert(name, TensorData::new(values, shape));
                    }
                    sd.non_float.sort();
                    return Ok(sd);
                }
                Ok(_) => {}
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        Err(CheckpointError::Format {
            path: path.to_path_buf(),
            message: last_err.unwrap_or_else(|| "no tensors found".into()),
        })
    }

    fn read_safetensors(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let fmt = |e: &dyn std::fmt::Display| CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fmt(&e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fmt(&e))?;
        let mut sd = StateDict {
            path: path.to_path_buf(),
            metadata: header
                .metadata()
                .clone()
                .map(|m| m.into_iter().collect())
                .unwrap_or_default(),
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            let name = strip_module_prefix(&name);
            let dtype = match view.dtype() {
                safetensors::Dtype::F64 => DType::F64,
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                _ => {
                    sd.non_float.push(name);
                    continue;
                }
            };
            let values = floats_from_bytes(view.data(), dtype);
            sd.tensors
                .insert(name, TensorData::new(values, view.shape().to_vec()));
        }
        sd.non_float.sort();
        Ok(sd)
    }

    /// Keys under `prefix` with the prefix removed (e.g. the `backbone.` part of an mmdet file).
    pub fn with_prefix_stripped(&self, prefix: &str) -> BTreeMap<String, TensorData> {
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
            .collect()
    }
}

/// Whether the file starts like safetensors whatever its extension: a little-endian u64
/// header length that fits the file, then the JSON header's `{`. PyTorch files start with a
/// ZIP (`PK..`) or pickle (`0x80`) header, whose first 8 bytes never give such a length.
fn has_safetensors_header(path: &Path, file_len: u64) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    if read.is_err() {
        return false;
    }
    let header_len = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    head[8] == b'{' && header_len >= 2 && header_len <= file_len.saturating_sub(8)
}

fn strip_module_prefix(name: &str) -> String {
    name.strip_prefix("module.").unwrap_or(name).to_string()
}

fn floats_from_bytes(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => Vec::new(),
    }
}
