//! Convolution, transposed convolution and dense layers with an optional bf16 compute mode,
//! autocast-style: weights stay `f32` (the optimiser updates full-precision masters), each
//! product casts its inputs to bf16 and its output back to `f32`; everything else (batch norm,
//! activations, the loss) stays `f32`. Variables are named `p.weight` / `p.bias`, as PyTorch and
//! torchvision name them.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::{Result, BF16};

/// Whether a layer computes its product in `f32` or bf16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Full precision (the default everywhere).
    #[default]
    F32,
    /// bf16 products with `f32` weights, bias and output.
    Bf16,
}

impl Precision {
    /// `Bf16` when `bf16` is true.
    pub fn from_bf16(bf16: bool) -> Self {
        if bf16 {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    fn cast(self, t: &Tensor) -> Tensor {
        match self {
            Precision::F32 => t.shallow_clone(),
            Precision::Bf16 => t.to_kind(BF16),
        }
    }

    fn back(self, t: Tensor) -> Tensor {
        match self {
            Precision::F32 => t,
            Precision::Bf16 => t.to_kind(Kind::Float),
        }
    }
}

/// A 2-D convolution.
#[derive(Debug)]
pub struct Conv {
    /// `[C_out, C_in / groups, k, k]`.
    pub ws: Tensor,
    /// `[C_out]`.
    pub bs: Option<Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
    precision: Precision,
}

/// The shape of a (transposed) convolution: `c_in` → `c_out` channels, a `k × k` kernel,
/// and (builder methods) its stride (1), padding (0), groups (1) and bias (yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Kernel side.
    pub k: i64,
    /// Stride.
    pub stride: i64,
    /// Zero padding on each side.
    pub padding: i64,
    /// Channel groups (depthwise: `c_in`).
    pub groups: i64,
    /// Whether it has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// `c_in` → `c_out` channels through a `k × k` kernel, stride 1, no padding, one group, a
    /// bias.
    pub fn new(c_in: i64, c_out: i64, k: i64) -> Self {
        ConvSpec {
            c_in,
            c_out,
            k,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }

    /// With this stride.
    pub fn stride(self, stride: i64) -> Self {
        ConvSpec { stride, ..self }
    }

    /// With this padding.
    pub fn padding(self, padding: i64) -> Self {
        ConvSpec { padding, ..self }
    }

    /// With this many channel groups.
    pub fn groups(self, groups: i64) -> Self {
        ConvSpec { groups, ..self }
    }

    /// Without a bias.
    pub fn no_bias(self) -> Self {
        ConvSpec {
            bias: false,
            ..self
        }
    }
}

/// Builds a convolution whose variables are `p.weight` (and `p.bias`).
pub fn conv(p: nn::Path, spec: ConvSpec, precision: Precision) -> Conv {
    let cfg = nn::ConvConfig {
        stride: spec.stride,
        padding: spec.padding,
        groups: spec.groups,
        bias: spec.bias,
        ..Default::default()
    };
    let c = nn::conv2d(p, spec.c_in, spec.c_out, spec.k, cfg);
    Conv::new(
        c.ws,
        c.bs,
        spec.stride,
        spec.padding,
        spec.groups,
        precision,
    )
}

impl Conv {
    /// A convolution over existing variables (`ws` `[C_out, C_in / groups, k, k]`, `bs`
    /// `[C_out]`), e.g. ones built by `tch::nn::conv2d` with a custom initialisation.
    pub fn new(
        ws: Tensor,
        bs: Option<Tensor>,
        stride: i64,
        padding: i64,
        groups: i64,
        precision: Precision,
    ) -> Self {
        Conv {
            ws,
            bs,
            stride,
            padding,
            groups,
            precision,
        }
    }

    /// Switches the compute precision (the variables are unchanged).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Tensor {
        let pr = self.precision;
        let bs = self.bs.as_ref().map(|b| pr.cast(b));
        let (s, p) = ([self.stride; 2], [self.padding; 2]);
        pr.back(
            pr.cast(x)
                .conv2d(&pr.cast(&self.ws), bs.as_ref(), s, p, [1, 1], self.groups),
        )
    }
}

/// Input maps of at least this many pixels take [`crate::conv_transpose2d_nchw_wgrad`]'s weight
/// gradient: below it the NCHW copies cost what they save (measured: `docs/performance.md`).
const NCHW_WGRAD_MIN_PIXELS: i64 = 32 * 32;

/// A 2-D transposed convolution (`p.weight` `[C_in, C_out, k, k]`, `p.bias` `[C_out]`).
///
/// The bias is added after the product rather than inside it: oneDNN's CPU backward of a
/// transposed convolution with a bias spends longer on the bias gradient (a plain sum) than a
/// separate addition and its gradient take (`docs/performance.md`).
/// On large maps the weight gradient comes from [`crate::conv_transpose2d_nchw_wgrad`].
#[derive(Debug)]
pub struct ConvTranspose {
    /// `[C_in, C_out, k, k]`.
    pub ws: Tensor,
    /// `[C_out]`.
    pub bs: Option<Tensor>,
    stride: i64,
    padding: i64,
    precision: Precision,
}

/// Builds a transposed convolution of shape `spec` (one group) whose variables are `p.weight`
/// (and `p.bias`), initialised by `init` (PyTorch's default when `None`).
pub fn conv_transpose(
    p: nn::Path,
    spec: ConvSpec,
    init: Option<nn::Init>,
    precision: Precision,
) -> ConvTranspose {
    let mut cfg = nn::ConvTransposeConfig {
        stride: spec.stride,
        padding: spec.padding,
        bias: spec.bias,
        ..Default::default()
    };
    if let Some(init) = init {
        cfg.ws_init = init;
    }
    let c = nn::conv_transpose2d(p, spec.c_in, spec.c_out, spec.k, cfg);
    ConvTranspose {
        ws: c.ws,
        bs: c.bs,
        stride: spec.stride,
        padding: spec.padding,
        precision,
    }
}

impl ConvTranspose {
    /// Switches the compute precision (the variables are unchanged).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}

impl ConvTranspose {
    /// Applies the layer; a shape libtorch refuses is an error, not a panic.
    ///
    /// # Shapes
    /// `x: [N, C_in, H, W]` → `[N, C_out, (H − 1)·stride − 2·padding + k, …]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.without_bias(x)?;
        Ok(match &self.bs {
            Some(b) => y.f_add(&b.f_view([1, -1, 1, 1])?)?,
            None => y,
        })
    }

    /// `leaky_relu(self.forward(x), slope)`, with the bias and the activation fused into one
    /// pass each way where [`crate::bias_leaky_relu`] can.
    pub fn forward_leaky_relu(&self, x: &Tensor, slope: f64) -> Result<Tensor> {
        crate::bias_leaky_relu(&self.without_bias(x)?, self.bs.as_ref(), slope)
    }

    /// The transposed convolution without the bias, in `f32`.
    fn without_bias(&self, x: &Tensor) -> Result<Tensor> {
        let pr = self.precision;
        let (x, w) = (pr.cast(x), pr.cast(&self.ws));
        let size = x.size();
        let y = if size.len() == 4 && size[2] * size[3] >= NCHW_WGRAD_MIN_PIXELS {
            crate::conv_transpose2d_nchw_wgrad(&x, &w, self.stride, self.padding)?
        } else {
            let (s, p) = ([self.stride; 2], [self.padding; 2]);
            x.f_conv_transpose2d(&w, None::<&Tensor>, s, p, [0, 0], 1, [1, 1])?
        };
        Ok(pr.back(y))
    }
}

/// A dense layer (`p.weight` `[out, in]`, `p.bias` `[out]`).
#[derive(Debug)]
pub struct Dense {
    /// `[out, in]`.
    pub ws: Tensor,
    /// `[out]`.
    pub bs: Option<Tensor>,
    precision: Precision,
}

/// Builds a dense layer with PyTorch's default initialisation.
pub fn dense(p: nn::Path, c_in: i64, c_out: i64, precision: Precision) -> Dense {
    let l = nn::linear(p, c_in, c_out, Default::default());
    Dense {
        ws: l.ws,
        bs: l.bs,
        precision,
    }
}

impl Dense {
    /// Switches the compute precision (the variables are unchanged).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Tensor {
        let pr = self.precision;
        let bs = self.bs.as_ref().map(|b| pr.cast(b));
        pr.back(pr.cast(x).linear(&pr.cast(&self.ws), bs.as_ref()))
    }
}
