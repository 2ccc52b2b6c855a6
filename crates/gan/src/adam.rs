//! Adam whose state can be saved: exact resume needs the moment estimates, which tch's
//! optimiser keeps inside libtorch out of reach. Same update as `torch.optim.Adam`.

use std::collections::HashMap;

use tch::{nn, Tensor};

use crate::{GanError, Result};

/// Adam over the trainable variables of a `VarStore` whose names start with a prefix.
#[derive(Debug)]
pub(crate) struct Adam {
    names: Vec<String>,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: i64,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
}

impl Adam {
    pub(crate) fn new(vs: &nn::VarStore, prefix: &str, lr: f64, betas: (f64, f64)) -> Result<Self> {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(n, t)| n.starts_with(prefix) && t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |t: &Tensor| t.f_zeros_like();
        Ok(Adam {
            m: named
                .iter()
                .map(|(_, t)| zeros(t))
                .collect::<std::result::Result<_, _>>()?,
            v: named
                .iter()
                .map(|(_, t)| zeros(t))
                .collect::<std::result::Result<_, _>>()?,
            names: named.iter().map(|(n, _)| n.clone()).collect(),
            params: named.into_iter().map(|(_, t)| t).collect(),
            step: 0,
            lr,
            betas,
            eps: 1e-8,
        })
    }

    pub(crate) fn zero_grad(&mut self) -> Result<()> {
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_detach_()?.f_zero_()?;
            }
        }
        Ok(())
    }

    pub(crate) fn step(&mut self) -> Result<()> {
        self.step += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        tch::no_grad(|| -> Result<()> {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.f_mul_scalar_(b1)?.f_add_(&g.f_mul_scalar(1.0 - b1)?)?;
                let _ = v
                    .f_mul_scalar_(b2)?
                    .f_add_(&g.f_square()?.f_mul_scalar(1.0 - b2)?)?;
                let denom = v
                    .f_sqrt()?
                    .f_div_scalar(bc2.sqrt())?
                    .f_add_scalar(self.eps)?;
                let _ = p.f_sub_(&m.f_div(&denom)?.f_mul_scalar(self.lr / bc1)?)?;
            }
            Ok(())
        })
    }

    /// Moments and step count as named tensors under `prefix`.
    pub(crate) fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len() + 1);
        for ((n, m), v) in self.names.iter().zip(&self.m).zip(&self.v) {
            out.push((format!("{prefix}.m.{n}"), m.shallow_clone()));
            out.push((format!("{prefix}.v.{n}"), v.shallow_clone()));
        }
        out.push((format!("{prefix}.step"), Tensor::from_slice(&[self.step])));
        out
    }

    /// Restores what [`Adam::state`] saved.
    pub(crate) fn load_state(
        &mut self,
        prefix: &str,
        saved: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let missing =
            |k: &str| GanError::config("checkpoint", format!("optimizer state {k} missing"));
        for ((n, m), v) in self.names.iter().zip(&mut self.m).zip(&mut self.v) {
            for (key, dst) in [
                (format!("{prefix}.m.{n}"), &mut *m),
                (format!("{prefix}.v.{n}"), &mut *v),
            ] {
                let src = saved.get(&key).ok_or_else(|| missing(&key))?;
                if src.size() != dst.size() {
                    return Err(GanError::config(
                        "checkpoint",
                        format!("{key} has shape {:?}", src.size()),
                    ));
                }
                tch::no_grad(|| dst.f_copy_(src))?;
            }
        }
        let key = format!("{prefix}.step");
        self.step = saved
            .get(&key)
            .ok_or_else(|| missing(&key))?
            .f_int64_value(&[0])?;
        Ok(())
    }
}
