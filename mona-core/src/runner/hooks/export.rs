//! The trainable parameters of a finished run as an adapter file
//! (`adapter_final.safetensors`, with the method and config in its metadata).

use super::{Hook, RunState};
use crate::checkpoint::adapter_file;
use crate::runner::TrainModel;
use crate::runner::error::TrainError;

/// Exports at the end of a run that was not interrupted.
pub struct AdapterExportHook<'a> {
    pub method: &'a str,
    pub config_toml: &'a str,
    pub classes: &'a [String],
}

impl<M: TrainModel> Hook<M> for AdapterExportHook<'_> {
    fn after_run(&mut self, run: &mut RunState, model: &M) -> Result<(), TrainError> {
        if run.summary.interrupted {
            return Ok(());
        }
        let path = run.work_dir.join("adapter_final.safetensors");
        let n = adapter_file::save_adapter(
            model,
            &|k| model.trainable(k),
            &path,
            self.method,
            self.config_toml,
            self.classes,
        )?;
        let line = format!("exported {n} trainable tensors to {}", path.display());
        run.log.text(&line).map_err(run.log_err())?;
        run.summary.adapter_file = Some(path);
        Ok(())
    }
}
