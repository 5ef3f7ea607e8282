//! The replicas of data-parallel training, one thread each (see [`super::parallel`]).
//!
//! The first device's replica is the model the training loop owns; every other device gets
//! a worker thread that owns a fork of the model and a copy of the optimizer. Each
//! iteration the loop sends every worker its batch, runs its own, and collects the
//! workers' losses while the gradients are averaged; then every replica takes the same
//! optimizer step. A worker that dies (a panic, an out-of-memory device) closes its
//! channel, and the loop reports it instead of waiting for it.
//!
//! The replicas form a [`ReplicaGroup`] that every thread joins for the run, through which
//! SyncBN layers sum their batch statistics mid-pass. A rank that stops stops the group, so
//! no rank waits in an exchange for one that is gone.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use burn::optim::GradientsParams;
use burn::tensor::{Device, TensorData};

use super::TrainModel;
use super::all_reduce::{HostGrads, grads_from_host, grads_to_host, mean_of, nccl_mean};
use super::error::TrainError;
use super::optim::Optimizer;
use super::parallel::{AllReduce, DataParallel};
use super::schedule::{LrSchedule, Progress};
use super::step::{StepValues, forward_backward};
use crate::params::param_data;
use crate::replica_sync::{Membership, ReplicaGroup};

enum Job<B> {
    Step {
        batch: B,
        seed: u64,
        progress: Progress,
    },
    /// Report the trainable parameters and stop.
    Finish,
}

enum Reply {
    Step {
        values: StepValues,
        /// The gradients, for the host reduction.
        grads: Option<HostGrads>,
    },
    Params(Vec<(String, TensorData)>),
}

struct Worker<B> {
    jobs: Option<Sender<Job<B>>>,
    replies: Receiver<Reply>,
    means: Option<Sender<Arc<HostGrads>>>,
    handle: Option<JoinHandle<()>>,
}

/// The worker threads of the devices besides the first.
pub(super) struct Replicas<B: Send + 'static> {
    workers: Vec<Worker<B>>,
    all_reduce: AllReduce,
    /// Every replica's device, the first one's included, in rank order.
    devices: Vec<Device>,
    /// Whether `finish` ran (every worker has stopped).
    finished: bool,
    group: Arc<ReplicaGroup>,
    /// The first device's thread (this one) as rank 0.
    _membership: Membership,
}

impl<B: Send + 'static> Replicas<B> {
    /// Forks `model` (with the state of `optimizer`) onto every replica device.
    pub fn start<M: TrainModel<Batch = B>>(
        model: &M,
        optimizer: &Optimizer,
        schedule: &LrSchedule,
        grad_clip: Option<f64>,
        main: &Device,
        parallel: &DataParallel,
    ) -> Result<Self, TrainError> {
        let mut devices = vec![main.clone()];
        devices.extend(parallel.replicas.iter().cloned());
        let (state, steps) = optimizer.state_dict();
        let state = state.into_iter().collect();
        let group = ReplicaGroup::new(devices.len());
        let mut replicas = Replicas {
            workers: Vec::new(),
            all_reduce: parallel.all_reduce,
            devices: devices.clone(),
            finished: false,
            group: group.clone(),
            _membership: Membership::join(group.clone(), 0),
        };
        for (rank, device) in devices.iter().enumerate().skip(1) {
            let replica = model.clone().fork(device);
            let mut optim = optimizer.clone();
            optim.load_state_dict(&state, &steps, device);
            let (job_tx, job_rx) = channel();
            let (reply_tx, reply_rx) = channel();
            let (mean_tx, mean_rx) = channel();
            let ctx = WorkerCtx {
                group: group.clone(),
                rank,
                device: device.clone(),
                devices: devices.clone(),
                all_reduce: parallel.all_reduce,
                schedule: schedule.clone(),
                grad_clip,
            };
            let handle = std::thread::Builder::new()
                .name(format!("replica-{rank}"))
                .spawn(move || ctx.run(replica, optim, job_rx, reply_tx, mean_rx))
                .map_err(|e| TrainError::Replica {
                    rank,
                    message: format!("cannot start its thread: {e}"),
                })?;
            replicas.workers.push(Worker {
                jobs: Some(job_tx),
                replies: reply_rx,
                means: Some(mean_tx),
                handle: Some(handle),
            });
        }
        Ok(replicas)
    }

    /// The device of worker `k` (rank `k + 1`).
    pub fn device(&self, k: usize) -> &Device {
        &self.devices[k + 1]
    }

    /// Hands worker `k` (rank `k + 1`) its batch for this iteration.
    pub fn send(
        &mut self,
        k: usize,
        batch: B,
        seed: u64,
        progress: Progress,
    ) -> Result<(), TrainError> {
        let sent = self.workers[k].jobs.as_ref().is_some_and(|jobs| {
            jobs.send(Job::Step {
                batch,
                seed,
                progress,
            })
            .is_ok()
        });
        if sent { Ok(()) } else { Err(self.failure(k)) }
    }

    /// Runs the first replica's forward and backward pass (`step`). A worker that stops while
    /// this one waits for it in a SyncBN exchange makes the exchange panic: that is reported
    /// as the worker's failure, like a worker that stops at any other time.
    pub fn guard<T>(&mut self, step: impl FnOnce() -> T) -> Result<T, TrainError> {
        match catch_unwind(AssertUnwindSafe(step)) {
            Ok(out) => Ok(out),
            Err(panic) => match self.group.stopped() {
                Some(rank) if rank > 0 => Err(self.failure(rank - 1)),
                _ => resume_unwind(panic),
            },
        }
    }

    /// Averages the first replica's `grads` with the workers' (which must all have been
    /// sent their batch) and returns them with every replica's logged values, in rank order.
    pub fn reduce<M: TrainModel<Batch = B>>(
        &mut self,
        model: &M,
        values: StepValues,
        grads: GradientsParams,
    ) -> Result<(Vec<StepValues>, GradientsParams), TrainError> {
        let mut all_values = vec![values];
        match self.all_reduce {
            AllReduce::Host => {
                let mut parts = vec![grads_to_host(model, grads)];
                for k in 0..self.workers.len() {
                    match self.workers[k].replies.recv() {
                        Ok(Reply::Step {
                            values,
                            grads: Some(g),
                        }) => {
                            all_values.push(values);
                            parts.push(g);
                        }
                        _ => return Err(self.failure(k)),
                    }
                }
                let mean = Arc::new(mean_of(&parts));
                for k in 0..self.workers.len() {
                    let sent = self.workers[k]
                        .means
                        .as_ref()
                        .is_some_and(|m| m.send(mean.clone()).is_ok());
                    if !sent {
                        return Err(self.failure(k));
                    }
                }
                Ok((all_values, grads_from_host(model, &mean, &self.devices[0])))
            }
            AllReduce::Nccl => {
                let grads = nccl_mean(model, grads, &self.devices);
                for k in 0..self.workers.len() {
                    match self.workers[k].replies.recv() {
                        Ok(Reply::Step { values, .. }) => all_values.push(values),
                        _ => return Err(self.failure(k)),
                    }
                }
                Ok((all_values, grads))
            }
        }
    }

    /// Stops the workers and returns the largest difference between their trainable
    /// parameters and `model`'s (0 when the replicas stayed in step, as they should).
    pub fn finish<M: TrainModel<Batch = B>>(mut self, model: &M) -> Result<f32, TrainError> {
        let mine: std::collections::BTreeMap<String, Vec<f32>> =
            param_data(model, &|k| model.trainable(k))
                .into_iter()
                .map(|(k, d)| (k, host_f32(d)))
                .collect();
        let mut worst = 0f32;
        for k in 0..self.workers.len() {
            let sent = self.workers[k]
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(Job::Finish).is_ok());
            let Some(Reply::Params(theirs)) =
                sent.then(|| self.workers[k].replies.recv().ok()).flatten()
            else {
                return Err(self.failure(k));
            };
            self.workers[k].jobs = None;
            for (key, data) in theirs {
                let Some(a) = mine.get(&key) else { continue };
                for (x, y) in a.iter().zip(host_f32(data)) {
                    worst = worst.max((x - y).abs());
                }
            }
        }
        self.finished = true;
        Ok(worst)
    }

    /// The error for a worker whose channel closed: joins it for its panic message.
    fn failure(&mut self, k: usize) -> TrainError {
        let worker = &mut self.workers[k];
        worker.jobs = None;
        worker.means = None;
        let message = match worker.handle.take().map(JoinHandle::join) {
            Some(Err(panic)) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "it panicked".into()),
            _ => "it stopped".into(),
        };
        TrainError::Replica {
            rank: k + 1,
            message,
        }
    }
}

impl<B: Send + 'static> Drop for Replicas<B> {
    fn drop(&mut self) {
        // A run that stops early (an error of the loop) must not leave workers waiting in a
        // SyncBN exchange for this rank.
        if !self.finished {
            self.group.stop(0);
        }
        // Closing the channels ends every worker's loop.
        for worker in &mut self.workers {
            worker.jobs = None;
            worker.means = None;
        }
        // A run that failed part-way under NCCL may leave workers waiting in a collective
        // for a rank that will never join it: leave them to the process's exit rather than
        // hang here. After `finish`, and with the host reduction, every worker has ended or
        // ends once its channel closes.
        if self.all_reduce == AllReduce::Nccl && !self.finished {
            return;
        }
        for worker in &mut self.workers {
            if let Some(handle) = worker.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

fn host_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// What a worker thread needs besides its replica and channels.
struct WorkerCtx {
    group: Arc<ReplicaGroup>,
    rank: usize,
    device: Device,
    devices: Vec<Device>,
    all_reduce: AllReduce,
    schedule: LrSchedule,
    grad_clip: Option<f64>,
}

impl WorkerCtx {
    fn run<M: TrainModel>(
        self,
        mut model: M,
        mut optimizer: Optimizer,
        jobs: Receiver<Job<M::Batch>>,
        replies: Sender<Reply>,
        means: Receiver<Arc<HostGrads>>,
    ) {
        // For the thread's whole life: a panic anywhere in it stops the group.
        let _membership = Membership::join(self.group.clone(), self.rank);
        while let Ok(job) = jobs.recv() {
            let (batch, seed, progress) = match job {
                Job::Step {
                    batch,
                    seed,
                    progress,
                } => (batch, seed, progress),
                Job::Finish => {
                    let params = param_data(&model, &|k| model.trainable(k));
                    let _ = replies.send(Reply::Params(params));
                    return;
                }
            };
            // A batch this replica cannot take travels as its panics do: the group stops (no
            // rank is left waiting in a collective) and the first device reports
            // `TrainError::Replica` with this rank and the message.
            let (values, grads) = forward_backward(&model, &batch, seed, 1, &self.device)
                .unwrap_or_else(|e| panic!("{e}"));
            let grads = match self.all_reduce {
                AllReduce::Host => {
                    let grads = Some(grads_to_host(&model, grads));
                    if replies.send(Reply::Step { values, grads }).is_err() {
                        return;
                    }
                    let Ok(mean) = means.recv() else { return };
                    grads_from_host(&model, &mean, &self.device)
                }
                AllReduce::Nccl => {
                    let grads = nccl_mean(&model, grads, &self.devices);
                    if replies
                        .send(Reply::Step {
                            values,
                            grads: None,
                        })
                        .is_err()
                    {
                        return;
                    }
                    grads
                }
            };
            // The replica's own LR schedule hook: the lr the main process's sets.
            optimizer.set_lr(&|base: f64| self.schedule.lr(base, &progress));
            model = optimizer.step(model, grads, self.grad_clip).0;
        }
    }
}
