//! mmcv's `TextLoggerHook`: the losses averaged over a window of iterations, written as a
//! `log.jsonl` record and an mmcv-style `train.log` line.

use serde_json::{Map, json};

use super::{Hook, IterOutcome, RunState};
use crate::runner::error::TrainError;
use crate::runner::logger::memory_mb;
use crate::runner::optim::Optimizer;

fn format_eta(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Logs every `interval` iterations and at the last one.
pub struct LoggerHook {
    interval: usize,
    /// On a terminal the bar shows progress; elsewhere the line also goes to the console.
    interactive: bool,
    /// The loss and its parts summed since the last record, in first-seen order.
    window: Vec<(String, f64)>,
    window_n: usize,
    data_time: f64,
}

impl LoggerHook {
    pub fn new(interval: usize, interactive: bool) -> Self {
        Self {
            interval,
            interactive,
            window: Vec::new(),
            window_n: 0,
            data_time: 0.0,
        }
    }
}

impl<M> Hook<M> for LoggerHook {
    fn after_iter(
        &mut self,
        run: &mut RunState,
        _: &M,
        optimizer: &Optimizer,
        step: &IterOutcome,
    ) -> Result<(), TrainError> {
        if self.window.is_empty() {
            self.window.push(("loss".into(), 0.0));
            for (k, _) in &step.parts {
                self.window.push((k.clone(), 0.0));
            }
        }
        self.window[0].1 += step.loss;
        for (k, v) in &step.parts {
            if let Some(slot) = self.window.iter_mut().find(|(n, _)| n == k) {
                slot.1 += v;
            }
        }
        self.window_n += 1;
        self.data_time += step.data_time;

        let (iter, g) = (run.iter, run.geometry);
        if !(iter.is_multiple_of(self.interval) || iter == g.max_iters) {
            return Ok(());
        }
        // The lr of the step that just ran, as the LR schedule's hook set it.
        let lr = optimizer.current_lr();
        let elapsed = run.started.elapsed().as_secs_f64();
        let per_iter = elapsed / (iter - run.start_iter).max(1) as f64;
        let data_time = self.data_time / self.window_n as f64;
        let mut rec = Map::new();
        rec.insert("mode".into(), json!("train"));
        rec.insert("epoch".into(), json!(iter.div_ceil(g.epoch_len)));
        rec.insert("iter".into(), json!(iter));
        rec.insert("lr".into(), json!(lr));
        let mut human_losses = String::new();
        for (k, v) in &self.window {
            let mean = v / self.window_n as f64;
            rec.insert(k.clone(), json!(mean));
            human_losses.push_str(&format!(", {k}: {mean:.4}"));
        }
        rec.insert("grad_norm".into(), json!(step.grad_norm));
        rec.insert("time".into(), json!(step.started.elapsed().as_secs_f64()));
        rec.insert("data_time".into(), json!(data_time));
        rec.insert("memory".into(), json!(memory_mb().round()));
        let eta = format_eta(per_iter * (g.max_iters - iter) as f64);
        let human = if g.by_epoch {
            format!(
                "Epoch [{}][{}/{}]\tlr: {lr:.3e}, eta: {eta}, time: {per_iter:.3}, data_time: {data_time:.3}, memory: {:.0}{human_losses}",
                iter.div_ceil(g.epoch_len),
                (iter - 1) % g.epoch_len + 1,
                g.epoch_len,
                memory_mb()
            )
        } else {
            format!(
                "Iter [{iter}/{}]\tlr: {lr:.3e}, eta: {eta}, time: {per_iter:.3}, data_time: {data_time:.3}, memory: {:.0}{human_losses}",
                g.max_iters,
                memory_mb()
            )
        };
        if !self.interactive {
            tracing::info!("{human}");
        }
        run.log.record(rec, &human).map_err(run.log_err())?;
        self.window.clear();
        self.window_n = 0;
        self.data_time = 0.0;
        Ok(())
    }
}
