//! A gather of token rows (Swin's padding, cyclic shift and window partition, and their
//! inverse) as a cubecl kernel: one unit per output element, the row map uploaded once per
//! call as a `u32` tensor.

use burn::backend::tensor::FloatTensor;
use burn::tensor::DType;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{contiguous, elementwise, empty_like};
use crate::fused::{GatherRowsBackend, RowMap};

/// `out[b, j, ch] = x[b, map[j], ch]`, zero where `map[j]` is `u32::MAX`.
#[cube(launch)]
fn gather_kernel(
    x: &Tensor<f32>,
    map: &Tensor<u32>,
    out: &mut Tensor<f32>,
    rows_in: usize,
    c: usize,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let rows_out = map.len();
    let ch = i % c;
    let j = (i / c) % rows_out;
    let image = i / (c * rows_out);
    let src = map[j];
    let mut v = 0.0_f32;
    if src != u32::MAX {
        v = x[(image * rows_in + src as usize) * c + ch];
    }
    out[i] = v;
}

impl GatherRowsBackend for CubeBackend {
    fn gather_rows(x: FloatTensor<Self>, map: RowMap) -> FloatTensor<Self> {
        let x = contiguous(x);
        let dims = x.meta.shape().to_vec();
        assert_eq!(dims.len(), 3, "gather_rows: x is (B, rows, C)");
        let (b, rows_in, c) = (dims[0], dims[1], dims[2]);
        let sources = map.sources();
        let bytes: Vec<u8> = sources.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let handle = x.client.create_from_slice(&bytes);
        let map_tensor = CubeTensor::new_contiguous(
            x.client.clone(),
            x.device.clone(),
            [sources.len()].into(),
            handle,
            DType::U32,
        );
        let out = empty_like(&x, [b, sources.len(), c].into());
        let (count, dim) = elementwise(&x, b * sources.len() * c);
        gather_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            map_tensor.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            rows_in,
            c,
        );
        out
    }
}
