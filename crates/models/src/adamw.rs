//! AdamW (`torch.optim.AdamW`'s update: decoupled weight decay, bias-corrected moments) whose
//! state is keyed by variable name, like [`crate::Sgd`], so unfreezing can add parameters and a
//! checkpoint can continue exactly.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use crate::Result;

/// AdamW with per-variable first and second moments and step counts.
#[derive(Debug)]
pub struct AdamW {
    /// First-moment decay (torch: 0.9).
    pub beta1: f64,
    /// Second-moment decay (torch: 0.999).
    pub beta2: f64,
    /// Denominator term (torch: 1e-8).
    pub eps: f64,
    /// Decoupled weight decay (torch: 0.01).
    pub weight_decay: f64,
    /// `m.<name>`, `v.<name>`, `t.<name>` (step count, a 0-d f64 tensor).
    buffers: HashMap<String, Tensor>,
}

impl AdamW {
    /// AdamW with these settings and empty state.
    pub fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            buffers: HashMap::new(),
        }
    }

    /// One update of `params` with learning rate `lr`.
    pub fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (name, p) in params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let key = |what: &str| format!("{what}.{name}");
                if !self.buffers.contains_key(&key("m")) {
                    self.buffers.insert(key("m"), p.f_zeros_like()?);
                    self.buffers.insert(key("v"), p.f_zeros_like()?);
                    self.buffers.insert(
                        key("t"),
                        Tensor::f_zeros([], (Kind::Double, tch::Device::Cpu))?,
                    );
                }
                let t = self.buffers[&key("t")].f_double_value(&[])? + 1.0;
                let _ = self.buffers[&key("t")].shallow_clone().f_fill_(t)?;
                let mut p = p.shallow_clone();
                if self.weight_decay != 0.0 {
                    let _ = p.f_mul_scalar_(1.0 - lr * self.weight_decay)?;
                }
                let m = self.buffers[&key("m")].shallow_clone();
                let v = self.buffers[&key("v")].shallow_clone();
                let _ = m
                    .shallow_clone()
                    .f_mul_scalar_(self.beta1)?
                    .f_add_(&g.f_mul_scalar(1.0 - self.beta1)?)?;
                let _ = v
                    .shallow_clone()
                    .f_mul_scalar_(self.beta2)?
                    .f_add_(&g.f_mul(&g)?.f_mul_scalar(1.0 - self.beta2)?)?;
                let c1 = 1.0 - self.beta1.powf(t);
                let c2 = 1.0 - self.beta2.powf(t);
                let denom = v.f_div_scalar(c2)?.f_sqrt()?.f_add_scalar(self.eps)?;
                let _ = p.f_sub_(&m.f_div(&denom)?.f_mul_scalar(lr / c1)?)?;
            }
            Ok(())
        })
    }

    /// The state as named tensors under `prefix`.
    pub(crate) fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        crate::sgd::named_state(&self.buffers, prefix)
    }

    /// Restores what [`AdamW::state`] saved (step counts stay on the CPU).
    pub(crate) fn load_state(
        &mut self,
        prefix: &str,
        saved: &HashMap<String, Tensor>,
    ) -> Result<()> {
        self.buffers = crate::sgd::load_named_state(saved, prefix, |n| n.starts_with("t."))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps on f(p) = ½‖p‖² from p = [1, −2] match torch.optim.AdamW(lr=0.1,
    /// weight_decay=0.01) (values computed by hand from its update rule).
    #[test]
    fn matches_torch_adamw_update() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        let mut opt = AdamW::new(0.9, 0.999, 1e-8, 0.01);
        let mut expect = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
            (&p * &p).sum(Kind::Double).divide_scalar(2.0).backward();
            opt.step(&params, 0.1).expect("step");
            for i in 0..2 {
                let grad = expect[i];
                expect[i] *= 1.0 - 0.1 * 0.01;
                m[i] = 0.9 * m[i] + 0.1 * grad;
                v[i] = 0.999 * v[i] + 0.001 * grad * grad;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                expect[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got: Vec<f64> = Vec::try_from(&p.detach()).expect("values");
        for i in 0..2 {
            assert!((got[i] - expect[i]).abs() < 1e-12, "{got:?} vs {expect:?}");
        }
    }
}
