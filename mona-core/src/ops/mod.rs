//! Tensor operations the heads of several tasks rely on, written once for every backend
//! (burn 0.22.1 lacks them or gets them subtly different from PyTorch); detection's own are in
//! `mona-det`. Each is checked against the `ops` fixture group of the same name.

pub mod cross_entropy;
pub mod pool;
pub mod resize;
