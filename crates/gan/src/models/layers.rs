//! Building blocks shared by the generator and the discriminator.

use ganaug_ops::{Conv, ConvTranspose};
use tch::nn::{self};
use tch::Tensor;

use crate::Result;

use super::GanConfig;

/// LeakyReLU with slope 0.2 (tch's own `leaky_relu` has a fixed 0.01; `max(x, 0.2x)` is six
/// times slower than libtorch's fused kernel, which `ganaug-ops` calls).
pub(crate) fn leaky(x: &Tensor) -> Result<Tensor> {
    Ok(ganaug_ops::leaky_relu(x, 0.2)?)
}

pub(crate) fn conv_layer(
    p: nn::Path,
    cfg: &GanConfig,
    (c_in, c_out, k): (i64, i64, i64),
    (stride, padding): (i64, i64),
    conv_cfg: nn::ConvConfig,
) -> Result<Conv> {
    let conv_cfg = nn::ConvConfig {
        stride,
        padding,
        ..conv_cfg
    };
    let c = nn::conv2d(p, c_in, c_out, k, conv_cfg);
    cfg.layout_weight(&c.ws)?;
    Ok(Conv::new(c.ws, c.bs, stride, padding, 1, cfg.precision()))
}

pub(crate) fn up_layer(
    p: nn::Path,
    cfg: &GanConfig,
    (c_in, c_out): (i64, i64),
    (stride, padding): (i64, i64),
    bias: bool,
    init: Option<nn::Init>,
) -> Result<ConvTranspose> {
    let mut spec = ganaug_ops::ConvSpec::new(c_in, c_out, 4)
        .stride(stride)
        .padding(padding);
    if !bias {
        spec = spec.no_bias();
    }
    let layer = ganaug_ops::conv_transpose(p, spec, init, cfg.precision());
    cfg.layout_weight(&layer.ws)?;
    Ok(layer)
}

/// Batch norm with DCGAN's initialisation (scale ~ N(1, 0.02)).
pub(crate) fn dcgan_batch_norm(p: &nn::Path, channels: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, cfg)
}

pub(crate) fn dcgan_conv_config() -> nn::ConvConfig {
    nn::ConvConfig {
        bias: false,
        ws_init: dcgan_init(),
        ..Default::default()
    }
}

pub(crate) fn dcgan_init() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

/// A stride-2, kernel-4, padding-1 transposed convolution, by the configured method.
pub(crate) fn up(cfg: &GanConfig, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
    if cfg.subpixel {
        crate::subpixel::conv_transpose_s2k4(h, &conv.ws, conv.bs.as_ref())
    } else {
        conv.forward(h).map_err(Into::into)
    }
}

/// [`up`] followed by LeakyReLU(0.2), bias and activation fused where they can be.
pub(crate) fn up_leaky(cfg: &GanConfig, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
    if cfg.subpixel {
        leaky(&up(cfg, conv, h)?)
    } else {
        Ok(conv.forward_leaky_relu(h, 0.2)?)
    }
}
