//! A sharded evaluation across the processes of a run, as mmdet's `multi_gpu_test`: every
//! rank predicts its share of the set, the predictions are gathered on rank 0 in the set's
//! order (mmcv's `collect_results`, whose `--gpu-collect` and temporary-directory variants
//! differ only in transport), rank 0 computes the metrics, and every rank receives them.
//!
//! Unlike mmcv's distributed sampler no rank is padded with repeated samples: ranks may hold
//! one item more than others, and the gathered set is each item exactly once, so the metrics
//! are those of one process over the whole set.

use std::iter::StepBy;
use std::ops::Range;

use super::wire::{WireReader, WireWriter};
use super::{DistError, ProcessGroup, SharedGroup};
use crate::runner::Metrics;

/// The indices `0..len` this process predicts: rank `r` of `W` takes `r`, `r + W`, ... (mmcv's
/// distributed test sampler without its padding); a process alone takes all.
pub fn shard(len: usize, group: Option<&SharedGroup>) -> StepBy<Range<usize>> {
    let (rank, world) = group.map_or((0, 1), |g| (g.rank(), g.world()));
    (rank.min(len)..len).step_by(world.max(1))
}

/// Gathers every rank's `(index, item)` pairs on rank 0 and returns there the items of the
/// whole set `0..len` in index order (`None` on the other ranks). Every index must come from
/// exactly one rank; `what` names the exchange in errors.
pub fn collect_indexed<T>(
    group: &dyn ProcessGroup,
    what: &str,
    len: usize,
    mine: Vec<(usize, T)>,
    encode: impl Fn(&T, &mut WireWriter),
    decode: impl Fn(&mut WireReader) -> Result<T, DistError>,
) -> Result<Option<Vec<T>>, DistError> {
    // rank 0 keeps its own items and sends nothing
    let sent = if group.rank() == 0 {
        Vec::new()
    } else {
        let mut w = WireWriter::new();
        w.usize(mine.len());
        for (idx, item) in &mine {
            w.usize(*idx);
            encode(item, &mut w);
        }
        w.finish()
    };
    let Some(parts) = group.gather_bytes(what, &sent)? else {
        return Ok(None);
    };
    let mut slots: Vec<Option<T>> = (0..len).map(|_| None).collect();
    let duplicate = |idx: usize, rank: usize| DistError::Coverage {
        what: what.to_string(),
        message: format!("rank {rank} sent item {idx}, which is outside 0..{len} or came twice"),
    };
    let mut place = |idx: usize, item: T, rank: usize| -> Result<(), DistError> {
        match slots.get_mut(idx) {
            Some(slot @ None) => {
                *slot = Some(item);
                Ok(())
            }
            _ => Err(duplicate(idx, rank)),
        }
    };
    for (idx, item) in mine {
        place(idx, item, 0)?;
    }
    for (rank, part) in parts.iter().enumerate().skip(1) {
        let mut r = WireReader::new(what, part);
        for _ in 0..r.usize()? {
            let idx = r.usize()?;
            let item = decode(&mut r)?;
            place(idx, item, rank)?;
        }
        if !r.is_done() {
            return Err(r.error(format!("rank {rank} sent trailing bytes")));
        }
    }
    let missing = slots.iter().filter(|s| s.is_none()).count();
    if missing > 0 {
        return Err(DistError::Coverage {
            what: what.to_string(),
            message: format!("{missing} of {len} items came from no rank"),
        });
    }
    Ok(Some(slots.into_iter().flatten().collect()))
}

/// [`collect_indexed`] over `process`'s ranks; a process alone already holds the whole set
/// (`mine` covers `0..len` in order) and returns it.
pub fn collect_shares<T>(
    process: Option<&SharedGroup>,
    what: &str,
    len: usize,
    mine: Vec<(usize, T)>,
    encode: impl Fn(&T, &mut WireWriter),
    decode: impl Fn(&mut WireReader) -> Result<T, DistError>,
) -> Result<Option<Vec<T>>, DistError> {
    match process {
        Some(group) => collect_indexed(&**group, what, len, mine, encode, decode),
        None => Ok(Some(mine.into_iter().map(|(_, item)| item).collect())),
    }
}

/// Rank 0's metrics on every rank (`metrics` is `Some` on rank 0, ignored elsewhere), so that
/// every rank of a run sees the same evaluation.
pub fn share_metrics(
    group: &dyn ProcessGroup,
    metrics: Option<Metrics>,
) -> Result<Metrics, DistError> {
    const WHAT: &str = "evaluation metrics";
    let mut bytes = Vec::new();
    if group.rank() == 0 {
        let metrics = metrics.unwrap_or_default();
        let mut w = WireWriter::new();
        w.usize(metrics.len());
        for (k, v) in &metrics {
            w.str(k).f64(*v);
        }
        bytes = w.finish();
        group.broadcast_bytes(WHAT, &mut bytes)?;
        return Ok(metrics);
    }
    group.broadcast_bytes(WHAT, &mut bytes)?;
    let mut r = WireReader::new(WHAT, &bytes);
    let mut out = Metrics::new();
    for _ in 0..r.usize()? {
        let k = r.str()?;
        out.insert(k, r.f64()?);
    }
    Ok(out)
}

/// The metrics every rank reports: rank 0's in a sharded evaluation (`metrics` is `Some`
/// there), a process's own when alone.
pub fn shared_metrics(
    process: Option<&SharedGroup>,
    metrics: Option<Metrics>,
) -> Result<Metrics, DistError> {
    match process {
        Some(group) => share_metrics(&**group, metrics),
        None => Ok(metrics.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier, Mutex};

    use super::*;

    /// Ranks as threads that meet at a barrier: the gather and broadcast of a process group.
    struct ThreadGroup {
        rank: usize,
        world: usize,
        barrier: Arc<Barrier>,
        slots: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl ProcessGroup for ThreadGroup {
        fn rank(&self) -> usize {
            self.rank
        }
        fn world(&self) -> usize {
            self.world
        }
        fn local_rank(&self) -> usize {
            self.rank
        }
        fn all_reduce_sum_f32(&self, _: &str, _: &mut [f32]) -> Result<(), DistError> {
            unreachable!("not used here")
        }
        fn all_reduce_sum_f64(&self, _: &str, _: &mut [f64]) -> Result<(), DistError> {
            unreachable!("not used here")
        }
        fn barrier(&self, _: &str) -> Result<(), DistError> {
            self.barrier.wait();
            Ok(())
        }
        fn gather_bytes(&self, _: &str, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
            self.slots.lock().unwrap()[self.rank] = bytes.to_vec();
            self.barrier.wait();
            let out = (self.rank == 0).then(|| self.slots.lock().unwrap().clone());
            self.barrier.wait();
            Ok(out)
        }
        fn broadcast_bytes(&self, _: &str, bytes: &mut Vec<u8>) -> Result<(), DistError> {
            if self.rank == 0 {
                self.slots.lock().unwrap()[0] = bytes.clone();
            }
            self.barrier.wait();
            if self.rank != 0 {
                *bytes = self.slots.lock().unwrap()[0].clone();
            }
            self.barrier.wait();
            Ok(())
        }
        fn abort(&self, code: i32) -> ! {
            panic!("abort {code}")
        }
    }

    /// Runs `body(group)` on `world` threads and returns each rank's result.
    fn on_ranks<T: Send + 'static>(
        world: usize,
        body: impl Fn(&dyn ProcessGroup) -> T + Send + Sync + 'static,
    ) -> Vec<T> {
        let barrier = Arc::new(Barrier::new(world));
        let slots = Arc::new(Mutex::new(vec![Vec::new(); world]));
        let body = Arc::new(body);
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let group = ThreadGroup {
                    rank,
                    world,
                    barrier: barrier.clone(),
                    slots: slots.clone(),
                };
                let body = body.clone();
                std::thread::spawn(move || body(&group))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    // an encoder takes `&T`, here `&Vec<f32>`
    #[allow(clippy::ptr_arg)]
    fn enc(v: &Vec<f32>, w: &mut WireWriter) {
        w.f32s(v);
    }

    fn dec(r: &mut WireReader) -> Result<Vec<f32>, DistError> {
        r.f32s()
    }

    #[test]
    fn shards_cover_the_set_once_and_are_gathered_in_order() {
        let len = 10;
        let got = on_ranks(3, move |g| {
            let (rank, world) = (g.rank(), g.world());
            let mine: Vec<(usize, Vec<f32>)> = (rank..len)
                .step_by(world)
                .map(|i| (i, vec![i as f32; i % 3]))
                .collect();
            collect_indexed(g, "test predictions", len, mine, enc, dec).unwrap()
        });
        let want: Vec<Vec<f32>> = (0..len).map(|i| vec![i as f32; i % 3]).collect();
        assert_eq!(got[0].as_ref(), Some(&want));
        assert!(got[1].is_none() && got[2].is_none());
        // the shard of each rank: 4, 3 and 3 of 10
        assert_eq!(shard(10, None).count(), 10);
        assert_eq!(shard(2, None).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn an_item_sent_twice_or_never_is_an_error() {
        let twice = on_ranks(2, |g| {
            collect_indexed(g, "test predictions", 2, vec![(0, vec![1.0])], enc, dec)
                .map_err(|e| e.to_string())
        });
        assert_eq!(
            twice[0].as_ref().unwrap_err(),
            "test predictions: rank 1 sent item 0, which is outside 0..2 or came twice"
        );
        let missing = on_ranks(2, |g| {
            collect_indexed(g, "test predictions", 3, vec![(g.rank(), vec![])], enc, dec)
                .map_err(|e| e.to_string())
        });
        assert_eq!(
            missing[0].as_ref().unwrap_err(),
            "test predictions: 1 of 3 items came from no rank"
        );
    }

    #[test]
    fn every_rank_receives_rank_0s_metrics() {
        let got = on_ranks(3, |g| {
            let own = Metrics::from([("mAP".to_string(), 0.25 + g.rank() as f64)]);
            share_metrics(g, Some(own)).unwrap()
        });
        let want = Metrics::from([("mAP".to_string(), 0.25)]);
        assert!(got.iter().all(|m| *m == want), "{got:?}");
    }
}
