//! Detections across the processes of a sharded evaluation: each rank's images gathered on
//! rank 0 in the dataset's order.
//!
//! Boxes and scores travel bit for bit. Masks travel as runs of equal bytes, the role of
//! mmdet's `encode_mask_results` before `collect_results`: a full-size bitmap per instance
//! would cost megabytes per image.

use image::GrayImage;
use mona_core::dist::collect::collect_shares;
use mona_core::dist::wire::{WireReader, WireWriter};
use mona_core::dist::{DistError, SharedGroup};

use crate::retina::Detections;

/// On rank 0 the detections of all `len` images in order, `None` on the other ranks; a
/// process alone has its own (`mine` then covers every image).
pub fn gather_detections(
    process: Option<&SharedGroup>,
    len: usize,
    mine: Vec<(usize, Detections)>,
) -> Result<Option<Vec<Detections>>, DistError> {
    collect_shares(
        process,
        "detection results",
        len,
        mine,
        encode_detections,
        decode_detections,
    )
}

fn encode_detections(d: &Detections, w: &mut WireWriter) {
    let flat: Vec<f32> = d.bboxes.iter().flatten().copied().collect();
    w.f32s(&flat).f32s(&d.scores).usize(d.labels.len());
    for &l in &d.labels {
        w.usize(l);
    }
    w.usize(d.masks.len());
    for m in &d.masks {
        w.usize(m.width() as usize)
            .usize(m.height() as usize)
            .bytes(&byte_runs(m.as_raw()));
    }
}

fn decode_detections(r: &mut WireReader) -> Result<Detections, DistError> {
    let flat = r.f32s()?;
    if !flat.len().is_multiple_of(4) {
        return Err(r.error(format!("{} box coordinates", flat.len())));
    }
    let bboxes = flat
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    let scores = r.f32s()?;
    let labels = (0..r.usize()?)
        .map(|_| r.usize())
        .collect::<Result<_, _>>()?;
    let mut masks = Vec::new();
    for _ in 0..r.usize()? {
        let (width, height) = (r.usize()?, r.usize()?);
        let raw = expand_runs(r.bytes()?, width * height).map_err(|m| r.error(m))?;
        let mask = GrayImage::from_raw(width as u32, height as u32, raw)
            .ok_or_else(|| r.error(format!("a {width}×{height} mask")))?;
        masks.push(mask);
    }
    Ok(Detections {
        bboxes,
        scores,
        labels,
        masks,
    })
}

/// `bytes` as runs of one value: 5 bytes per run (the value, then the length, little-endian).
fn byte_runs(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(&v) = rest.first() {
        let n = rest
            .iter()
            .take(u32::MAX as usize)
            .take_while(|&&b| b == v)
            .count();
        out.push(v);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        rest = &rest[n..];
    }
    out
}

/// The `len` bytes that [`byte_runs`] encoded.
fn expand_runs(runs: &[u8], len: usize) -> Result<Vec<u8>, String> {
    if !runs.len().is_multiple_of(5) {
        return Err(format!("{} bytes of mask runs", runs.len()));
    }
    let mut out = Vec::with_capacity(len);
    for run in runs.chunks_exact(5) {
        let n = u32::from_le_bytes([run[1], run[2], run[3], run[4]]) as usize;
        if out.len() + n > len {
            return Err(format!("mask runs longer than {len} pixels"));
        }
        out.resize(out.len() + n, run[0]);
    }
    if out.len() != len {
        return Err(format!("mask runs of {} of {len} pixels", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detections_with_masks_round_trip_exactly() {
        let mut mask = GrayImage::new(7, 3);
        for x in 2..5 {
            mask.put_pixel(x, 1, image::Luma([1]));
        }
        let d = Detections {
            bboxes: vec![[1.0, 2.5, 3.0, 4.0], [0.1, 0.2, 0.3, f32::MAX]],
            scores: vec![0.9, 0.05],
            labels: vec![3, 0],
            masks: vec![mask, GrayImage::new(7, 3)],
        };
        let mut w = WireWriter::new();
        encode_detections(&d, &mut w);
        encode_detections(&Detections::default(), &mut w);
        let bytes = w.finish();
        let mut r = WireReader::new("detection results", &bytes);
        assert_eq!(decode_detections(&mut r).unwrap(), d);
        assert_eq!(decode_detections(&mut r).unwrap(), Detections::default());
        assert!(r.is_done());
        // 3 runs for the drawn mask, 1 for the empty one
        assert_eq!(byte_runs(d.masks[0].as_raw()).len(), 3 * 5);
        assert_eq!(byte_runs(d.masks[1].as_raw()).len(), 5);
        assert_eq!(
            expand_runs(&byte_runs(&[0, 0, 1]), 4).unwrap_err(),
            "mask runs of 3 of 4 pixels"
        );
    }
}
