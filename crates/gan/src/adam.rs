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

    /// The variables this optimiser updates.
    pub(crate) fn params(&self) -> &[Tensor] {
        &self.params
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

    /// One update of every parameter that has a gradient, by libtorch's fused Adam kernel
    /// (see [`ganaug_ops::adam_step`]).
    pub(crate) fn step(&mut self) -> Result<()> {
        self.step += 1;
        let (mut p, mut g, mut m, mut v) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((param, exp_avg), exp_avg_sq) in self.params.iter().zip(&self.m).zip(&self.v) {
            let grad = param.grad();
            if grad.defined() {
                p.push(param.shallow_clone());
                g.push(grad);
                m.push(exp_avg.shallow_clone());
                v.push(exp_avg_sq.shallow_clone());
            }
        }
        let hyper = ganaug_ops::AdamHyper {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
        };
        tch::no_grad(|| ganaug_ops::adam_step(&p, &g, &m, &v, self.step, hyper))?;
        Ok(())
    }

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
