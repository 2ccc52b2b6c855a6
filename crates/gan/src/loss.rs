//! The adversarial losses: the binary cross-entropy of the paper's GAN and DCGAN (with an
//! optional one-sided smoothed real target), and the hinge loss of FastGAN (with its
//! discriminator's reconstruction error) and of the projected pair.

use tch::{Kind, Reduction, Tensor};

use crate::models::Reconstruction;
use crate::{GanConfig, GanError, Result};

/// Label smoothing belongs to the cross-entropy: a hinge-loss pair refuses a real target
/// other than 1.
pub(crate) fn check_real_label(gan: &GanConfig, real_label: f64) -> Result<()> {
    if gan.arch.hinge_loss() && real_label != 1.0 {
        return Err(GanError::config(
            "real_label",
            format!(
                "{real_label}: label smoothing belongs to the cross-entropy loss; the hinge \
                 loss (FastGAN, projected) has no label target (leave it at 1)"
            ),
        ));
    }
    Ok(())
}

/// The discriminator's loss from its logits on a real and a fake batch. Cross-entropy:
/// `BCE(D(real), real_label) + BCE(D(fake), 0)`. Hinge: `mean relu(1 − D(real)) + mean relu(1 +
/// D(fake))`, plus the mean squared error of the reconstruction when there is one.
pub(crate) fn discriminator_loss(
    hinge: bool,
    real_label: f64,
    d_real: &Tensor,
    d_fake: &Tensor,
    recon: Option<Reconstruction>,
) -> Result<Tensor> {
    if !hinge {
        let real_target = d_real.f_full_like(real_label)?;
        return Ok(bce(d_real, &real_target)?.f_add(&bce(d_fake, &d_fake.f_zeros_like()?)?)?);
    }
    let real = d_real
        .f_neg()?
        .f_add_scalar(1.0)?
        .f_relu()?
        .f_mean(Kind::Float)?;
    let fake = d_fake.f_add_scalar(1.0)?.f_relu()?.f_mean(Kind::Float)?;
    let loss = real.f_add(&fake)?;
    Ok(match recon {
        Some(r) => loss.f_add(&r.image.f_mse_loss(&r.target, Reduction::Mean)?)?,
        None => loss,
    })
}

/// The generator's loss from the discriminator's logits on its images: `BCE(D(G(z)), 1)`, or
/// for the hinge loss `−mean D(G(z))`.
pub(crate) fn generator_loss(hinge: bool, d_gen: &Tensor) -> Result<Tensor> {
    if hinge {
        Ok(d_gen.f_mean(Kind::Float)?.f_neg()?)
    } else {
        bce(d_gen, &d_gen.f_ones_like()?)
    }
}

fn bce(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(logits.f_binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Mean)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hinge_and_cross_entropy_values() {
        let real = Tensor::from_slice(&[2.0f32, 0.5]);
        let fake = Tensor::from_slice(&[-2.0f32, 0.0]);
        // hinge: real relu(1 − [2, 0.5]) = [0, 0.5] → 0.25; fake relu(1 + [−2, 0]) = [0, 1] → 0.5
        let d = discriminator_loss(true, 1.0, &real, &fake, None).expect("loss");
        assert!((d.double_value(&[]) - 0.75).abs() < 1e-6);
        let recon = Reconstruction {
            image: Tensor::from_slice(&[0.0f32, 1.0]),
            target: Tensor::from_slice(&[0.0f32, 0.0]),
        };
        let d = discriminator_loss(true, 1.0, &real, &fake, Some(recon)).expect("loss");
        assert!((d.double_value(&[]) - 1.25).abs() < 1e-6);
        let g = generator_loss(true, &fake).expect("loss");
        assert!((g.double_value(&[]) - 1.0).abs() < 1e-6);
        // cross-entropy at logit 0 is ln 2 per term
        let zero = Tensor::from_slice(&[0.0f32]);
        let d = discriminator_loss(false, 1.0, &zero, &zero, None).expect("loss");
        assert!((d.double_value(&[]) - 2.0 * 2f64.ln()).abs() < 1e-6);
        let g = generator_loss(false, &zero).expect("loss");
        assert!((g.double_value(&[]) - 2f64.ln()).abs() < 1e-6);
    }
}
