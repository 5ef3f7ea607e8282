//! The end of a data-parallel run: how far the replicas' trainable parameters drifted from the
//! first device's (0 when they stayed in step), as a `replicas` record and a warning if not 0.

use serde_json::{Map, json};

use super::{Hook, RunState};
use crate::runner::error::TrainError;

/// Logs [`RunState::replica_diff`], which the loop sets when it stops the replicas.
pub struct ReplicaSummaryHook {
    pub devices: usize,
}

impl<M> Hook<M> for ReplicaSummaryHook {
    fn after_run(&mut self, run: &mut RunState, _: &M) -> Result<(), TrainError> {
        let Some(diff) = run.replica_diff else {
            return Ok(());
        };
        let line = format!(
            "data-parallel replicas: largest difference from the first device's trainable parameters {diff:e}"
        );
        if diff > 0.0 {
            tracing::warn!("{line}");
        }
        let mut rec = Map::new();
        rec.insert("mode".into(), json!("replicas"));
        rec.insert("iter".into(), json!(run.iter));
        rec.insert("devices".into(), json!(self.devices));
        rec.insert("max_diff".into(), json!(diff));
        run.log.record(rec, &line).map_err(run.log_err())?;
        run.summary.replica_max_diff = Some(diff);
        Ok(())
    }
}
