//! Helpers shared by the library's unit tests.

use burn::prelude::*;

/// The CPU device the unit tests run on.
pub(crate) fn device() -> Device {
    Device::flex()
}

/// A tensor's values as f32, in row-major order.
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}
