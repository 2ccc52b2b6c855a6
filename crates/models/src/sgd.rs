//! SGD with momentum and weight decay whose state can be saved (exact resume), with the update
//! of `torch.optim.SGD`.

use std::collections::HashMap;

use tch::Tensor;

use crate::Result;

/// SGD (`torch.optim.SGD`'s update) whose momentum buffers are keyed by variable name, so the
/// parameter set may grow (unfreezing) and the state can be saved. What [`fit`](crate::fit)
/// uses; public for benchmarks and custom loops.
#[derive(Debug, Default)]
pub struct Sgd {
    /// Momentum (0: plain SGD).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    buffers: HashMap<String, Tensor>,
}

impl Sgd {
    /// SGD with `momentum` and `weight_decay`.
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: HashMap::new(),
        }
    }

    /// Clears the gradients of `params`.
    pub fn zero_grad(params: &[(String, Tensor)]) -> Result<()> {
        for (_, p) in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_detach_()?.f_zero_()?;
            }
        }
        Ok(())
    }

    /// One update of `params` with learning rate `lr`.
    pub fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (name, p) in params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut d = if self.weight_decay != 0.0 {
                    g.f_add(&p.f_mul_scalar(self.weight_decay)?)?
                } else {
                    g
                };
                if self.momentum != 0.0 {
                    d = match self.buffers.get_mut(name) {
                        Some(buf) => {
                            let _ = buf.f_mul_scalar_(self.momentum)?.f_add_(&d)?;
                            buf.shallow_clone()
                        }
                        None => {
                            let buf = d.f_detach_copy()?;
                            self.buffers.insert(name.clone(), buf.shallow_clone());
                            buf
                        }
                    };
                }
                let _ = p.shallow_clone().f_sub_(&d.f_mul_scalar(lr)?)?;
            }
            Ok(())
        })
    }

    /// Momentum buffers as named tensors under `prefix`.
    pub(crate) fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        named_state(&self.buffers, prefix)
    }

    /// Restores what [`Sgd::state`] saved.
    pub(crate) fn load_state(
        &mut self,
        prefix: &str,
        saved: &HashMap<String, Tensor>,
    ) -> Result<()> {
        self.buffers = load_named_state(saved, prefix, |_| false)?;
        Ok(())
    }
}

/// An optimiser's per-variable state as named tensors under `prefix` (for a checkpoint).
pub(crate) fn named_state(
    buffers: &HashMap<String, Tensor>,
    prefix: &str,
) -> Vec<(String, Tensor)> {
    buffers
        .iter()
        .map(|(n, t)| (format!("{prefix}{n}"), t.shallow_clone()))
        .collect()
}

/// The tensors of `saved` under `prefix`, copied (those `on_cpu` names, to the CPU).
pub(crate) fn load_named_state(
    saved: &HashMap<String, Tensor>,
    prefix: &str,
    on_cpu: impl Fn(&str) -> bool,
) -> Result<HashMap<String, Tensor>> {
    saved
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix(prefix).map(|n| {
                let t = if on_cpu(n) {
                    t.f_to_device(tch::Device::Cpu)?
                } else {
                    t.shallow_clone()
                };
                Ok((n.to_string(), t.f_detach_copy()?))
            })
        })
        .collect()
}
