//! Radford et al.'s DCGAN: 4×4 stride-2 (transposed) convolutions with batch norm, ReLU /
//! LeakyReLU(0.2), tanh output; binary cross-entropy. The size must be a power of two, at
//! least 16.

use ganaug_ops::{Conv, ConvTranspose};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::{GanError, Result};

use super::family::{DiscriminatorBody, GanFamily, GeneratorBody, Loss, Scores};
use super::layers::{
    conv_layer, dcgan_batch_norm, dcgan_conv_config, dcgan_init, leaky, up, up_layer,
};
use super::GanConfig;

/// DCGAN with generator width `ngf` (filters of its last hidden layer) and discriminator
/// width `ndf` (filters of its first layer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dcgan {
    pub(crate) ngf: i64,
    pub(crate) ndf: i64,
}

/// Doublings between 4² and `s`² (log2(s) − 2).
fn doublings(s: i64) -> i64 {
    (s as f64).log2() as i64 - 2
}

impl GanFamily for Dcgan {
    fn validate(&self, cfg: &GanConfig) -> Result<()> {
        if self.ngf < 1 || self.ndf < 1 {
            return Err(GanError::config("arch", "ngf and ndf must be positive"));
        }
        if cfg.size < 16 || (cfg.size & (cfg.size - 1)) != 0 {
            return Err(GanError::config(
                "size",
                format!(
                    "DCGAN needs a power-of-two size of at least 16, got {}",
                    cfg.size
                ),
            ));
        }
        Ok(())
    }

    fn generator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        z_in: i64,
    ) -> Result<Box<dyn GeneratorBody>> {
        let n_up = doublings(cfg.size);
        let mut ups = Vec::new();
        let mut c_in = z_in;
        for i in 0..=n_up {
            let last = i == n_up;
            let c_out = if last {
                cfg.channels
            } else {
                self.ngf << (n_up - 1 - i)
            };
            let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
            let conv = up_layer(
                p / format!("up{i}"),
                cfg,
                (c_in, c_out),
                (stride, padding),
                false,
                Some(dcgan_init()),
            )?;
            let bn = (!last).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
            ups.push((conv, bn));
            c_in = c_out;
        }
        Ok(Box::new(DcganGenerator { ups }))
    }

    fn hidden_width(&self, cfg: &GanConfig) -> Result<i64> {
        Ok(self.ndf << (doublings(cfg.size) - 1))
    }

    fn discriminator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        c_in: i64,
    ) -> Result<Box<dyn DiscriminatorBody>> {
        let mut downs = Vec::new();
        let mut c = c_in;
        for i in 0..doublings(cfg.size) {
            let c_out = self.ndf << i;
            let conv = conv_layer(
                p / format!("down{i}"),
                cfg,
                (c, c_out, 4),
                (2, 1),
                dcgan_conv_config(),
            )?;
            let bn = (i > 0).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
            downs.push((conv, bn));
            c = c_out;
        }
        let out = conv_layer(p / "out", cfg, (c, 1, 4), (1, 0), dcgan_conv_config())?;
        Ok(Box::new(DcganDiscriminator { downs, out }))
    }

    fn loss(&self) -> Loss {
        Loss::CrossEntropy
    }
}

#[derive(Debug)]
struct DcganGenerator {
    ups: Vec<(ConvTranspose, Option<nn::BatchNorm>)>,
}

impl GeneratorBody for DcganGenerator {
    fn forward(&self, cfg: &GanConfig, z: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = z.f_view([-1, z.size()[1], 1, 1])?;
        for (i, (conv, bn)) in self.ups.iter().enumerate() {
            // The first layer (1×1 → 4×4, stride 1) is not a stride-2 upsampling.
            h = if i == 0 {
                cfg.layout(&conv.forward(&h)?)?
            } else {
                up(cfg, conv, &h)?
            };
            if let Some(bn) = bn {
                h = bn.forward_t(&h, train).relu();
            }
        }
        // tanh output, mapped to the data range [0, 1].
        Ok((h.tanh() + 1.0) * 0.5)
    }
}

#[derive(Debug)]
struct DcganDiscriminator {
    downs: Vec<(Conv, Option<nn::BatchNorm>)>,
    out: Conv,
}

impl DiscriminatorBody for DcganDiscriminator {
    fn forward(
        &self,
        cfg: &GanConfig,
        x: &Tensor,
        _image: &Tensor,
        train: bool,
        _reconstruct: bool,
    ) -> Result<Scores> {
        // DCGAN works on [-1, 1] data.
        let mut h = cfg.layout(&(x * 2.0 - 1.0))?;
        for (conv, bn) in &self.downs {
            h = conv.forward(&h);
            if let Some(bn) = bn {
                h = bn.forward_t(&h, train);
            }
            h = leaky(&h)?;
        }
        let logits = self.out.forward(&h).view([-1]);
        Ok(Scores {
            logits,
            hidden: h,
            reconstruction: None,
        })
    }
}
