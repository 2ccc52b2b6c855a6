//! One optimiser interface for every trainer (after candle-nn's `Optimizer`): a step over named
//! parameters, a learning rate that can be read and set, and the state as named tensors in one
//! format, so that a checkpoint holds it and a resumed run continues exactly.
//!
//! The state format: per-variable slots as `<slot>.<variable>` (`m.d.down0.weight`,
//! `momentum.head.fc1.bias`) and counters by their name (`step`), saved under a prefix of the
//! trainer's choosing ([`save_state`], [`load_state`]).
//!
//! Three implementations, each with the update of its PyTorch namesake: [`Adam`] (libtorch's
//! fused kernel, one step count for all its variables: the GANs), [`AdamW`] and [`Sgd`]
//! (per-variable state created at a variable's first gradient, so unfreezing a backbone adds
//! variables mid-run: the classifiers).

use std::collections::HashMap;

use tch::{Kind, Tensor};

use crate::{Result, TrainError};

/// A variable's name (as in its `VarStore`) and the variable.
pub type NamedTensor = (String, Tensor);

/// What every optimiser offers a trainer.
pub trait Optimizer: std::fmt::Debug {
    /// The optimiser's name (`adam`, `adamw`, `sgd`), for errors.
    fn name(&self) -> &'static str;

    /// One update of every parameter of `params` that has a gradient, at the current learning
    /// rate.
    fn step(&mut self, params: &[NamedTensor]) -> Result<()>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate of the next steps (schedules, per-group rates).
    fn set_learning_rate(&mut self, lr: f64);

    /// The state as named tensors (see the module documentation for the keys).
    fn state(&self) -> Vec<NamedTensor>;

    /// Restores what [`Optimizer::state`] gave, from tensors keyed the same way. A missing or
    /// mis-shaped entry is a [`TrainError::OptimizerState`] naming it.
    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()>;
}

/// Clears the gradients of `params`.
pub fn zero_grad(params: &[NamedTensor]) -> Result<()> {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_detach_()?.f_zero_()?;
        }
    }
    Ok(())
}

/// `opt`'s state with every key under `prefix.` (for a checkpoint holding several optimisers).
pub fn save_state(opt: &dyn Optimizer, prefix: &str) -> Vec<NamedTensor> {
    opt.state()
        .into_iter()
        .map(|(k, t)| (format!("{prefix}.{k}"), t))
        .collect()
}

/// Restores `opt` from the tensors of `saved` under `prefix.` (what [`save_state`] wrote).
pub fn load_state(
    opt: &mut dyn Optimizer,
    prefix: &str,
    saved: &HashMap<String, Tensor>,
) -> Result<()> {
    let start = format!("{prefix}.");
    let mine: HashMap<String, Tensor> = saved
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix(&start)
                .map(|rest| (rest.to_string(), t.shallow_clone()))
        })
        .collect();
    opt.load_state(&mine)
}

fn state_error(optimizer: &'static str, key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::OptimizerState {
        optimizer,
        key: key.into(),
        reason: reason.into(),
    }
}

/// Copies `src` into `dst` after checking its shape.
fn copy_checked(optimizer: &'static str, key: &str, dst: &mut Tensor, src: &Tensor) -> Result<()> {
    if src.size() != dst.size() {
        return Err(state_error(
            optimizer,
            key,
            format!("shape {:?}, expected {:?}", src.size(), dst.size()),
        ));
    }
    tch::no_grad(|| dst.f_copy_(src))?;
    Ok(())
}

/// Adam (`torch.optim.Adam`'s update, no weight decay) over a fixed set of variables, by
/// libtorch's fused kernel ([`ganaug_ops::adam_step`]); one step count for all of them. State:
/// `m.<variable>`, `v.<variable>`, `step`.
#[derive(Debug)]
pub struct Adam {
    /// First and second moments by variable name.
    moments: HashMap<String, (Tensor, Tensor)>,
    step: i64,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
}

impl Adam {
    /// Adam for `params` (zero moments) with learning rate `lr` and `betas`.
    pub fn new(params: &[NamedTensor], lr: f64, betas: (f64, f64)) -> Result<Self> {
        let moments = params
            .iter()
            .map(|(n, t)| Ok((n.clone(), (t.f_zeros_like()?, t.f_zeros_like()?))))
            .collect::<Result<_>>()?;
        Ok(Adam {
            moments,
            step: 0,
            lr,
            betas,
            eps: 1e-8,
        })
    }

    fn unknown(name: &str) -> TrainError {
        state_error(
            "adam",
            name,
            "not one of the variables this optimiser was built for",
        )
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn step(&mut self, params: &[NamedTensor]) -> Result<()> {
        self.step += 1;
        let n = params.len();
        let (mut p, mut g, mut m, mut v) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (name, param) in params {
            let grad = param.grad();
            if grad.defined() {
                let (exp_avg, exp_avg_sq) =
                    self.moments.get(name).ok_or_else(|| Adam::unknown(name))?;
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
        Ok(tch::no_grad(|| {
            ganaug_ops::adam_step(&p, &g, &m, &v, self.step, hyper)
        })?)
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Vec<NamedTensor> {
        let mut names: Vec<&String> = self.moments.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(2 * names.len() + 1);
        for n in names {
            let (m, v) = &self.moments[n];
            out.push((format!("m.{n}"), m.shallow_clone()));
            out.push((format!("v.{n}"), v.shallow_clone()));
        }
        out.push(("step".into(), Tensor::from_slice(&[self.step])));
        out
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let get = |key: &str| {
            saved
                .get(key)
                .ok_or_else(|| state_error("adam", key, "missing"))
        };
        for (n, (m, v)) in self.moments.iter_mut() {
            let key = format!("m.{n}");
            copy_checked("adam", &key, m, get(&key)?)?;
            let key = format!("v.{n}");
            copy_checked("adam", &key, v, get(&key)?)?;
        }
        self.step = get("step")?.f_int64_value(&[0])?;
        Ok(())
    }
}

/// Calls `update(name, parameter, gradient)` for every parameter of `params` that has a
/// gradient, outside autograd.
fn each_with_grad(
    params: &[NamedTensor],
    mut update: impl FnMut(&str, &Tensor, Tensor) -> Result<()>,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, p) in params {
            let g = p.grad();
            if g.defined() {
                update(name, p, g)?;
            }
        }
        Ok(())
    })
}

/// Per-variable state keyed `<slot>.<variable>`, as AdamW and SGD keep it.
#[derive(Debug, Default)]
struct Slots(HashMap<String, Tensor>);

impl Slots {
    fn get(&self, slot: &str, var: &str) -> Option<Tensor> {
        self.0
            .get(&format!("{slot}.{var}"))
            .map(Tensor::shallow_clone)
    }

    fn insert(&mut self, slot: &str, var: &str, t: Tensor) {
        self.0.insert(format!("{slot}.{var}"), t);
    }

    fn named(&self) -> Vec<NamedTensor> {
        let mut out: Vec<NamedTensor> = self
            .0
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Copies of the saved entries whose slot is one of `slots` (those of `on_cpu`, on the
    /// CPU); an entry of another slot is refused.
    fn load(
        optimizer: &'static str,
        saved: &HashMap<String, Tensor>,
        slots: &[&str],
        on_cpu: &[&str],
    ) -> Result<Self> {
        let mut out = HashMap::new();
        for (k, t) in saved {
            let slot = k.split('.').next().unwrap_or_default();
            if !slots.contains(&slot) {
                return Err(state_error(
                    optimizer,
                    k,
                    format!("not a slot of {optimizer} ({})", slots.join(", ")),
                ));
            }
            let t = if on_cpu.contains(&slot) {
                t.f_to_device(tch::Device::Cpu)?
            } else {
                t.shallow_clone()
            };
            out.insert(k.clone(), t.f_detach_copy()?);
        }
        Ok(Slots(out))
    }
}

/// AdamW (`torch.optim.AdamW`'s update: decoupled weight decay, bias-corrected moments) with a
/// step count per variable. State: `m.<variable>`, `v.<variable>`, `t.<variable>` (a 0-d f64
/// tensor on the CPU).
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
    lr: f64,
    slots: Slots,
}

impl AdamW {
    /// AdamW with these settings, learning rate `lr` and empty state.
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            lr,
            slots: Slots::default(),
        }
    }

    fn update(&mut self, name: &str, p: &Tensor, g: &Tensor) -> Result<()> {
        let lr = self.lr;
        if self.slots.get("m", name).is_none() {
            self.slots.insert("m", name, p.f_zeros_like()?);
            self.slots.insert("v", name, p.f_zeros_like()?);
            let t = Tensor::f_zeros([], (Kind::Double, tch::Device::Cpu))?;
            self.slots.insert("t", name, t);
        }
        let (m, v, count) = match (
            self.slots.get("m", name),
            self.slots.get("v", name),
            self.slots.get("t", name),
        ) {
            (Some(m), Some(v), Some(t)) => (m, v, t),
            _ => return Err(state_error("adamw", name, "incomplete state")),
        };
        let t = count.f_double_value(&[])? + 1.0;
        let _ = count.shallow_clone().f_fill_(t)?;
        let mut p = p.shallow_clone();
        if self.weight_decay != 0.0 {
            let _ = p.f_mul_scalar_(1.0 - lr * self.weight_decay)?;
        }
        let _ = m
            .shallow_clone()
            .f_mul_scalar_(self.beta1)?
            .f_add_(&g.f_mul_scalar(1.0 - self.beta1)?)?;
        let _ = v
            .shallow_clone()
            .f_mul_scalar_(self.beta2)?
            .f_add_(&g.f_mul(g)?.f_mul_scalar(1.0 - self.beta2)?)?;
        let c1 = 1.0 - self.beta1.powf(t);
        let c2 = 1.0 - self.beta2.powf(t);
        let denom = v.f_div_scalar(c2)?.f_sqrt()?.f_add_scalar(self.eps)?;
        let _ = p.f_sub_(&m.f_div(&denom)?.f_mul_scalar(lr / c1)?)?;
        Ok(())
    }
}

impl Optimizer for AdamW {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn step(&mut self, params: &[NamedTensor]) -> Result<()> {
        each_with_grad(params, |name, p, g| self.update(name, p, &g))
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Vec<NamedTensor> {
        self.slots.named()
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        self.slots = Slots::load("adamw", saved, &["m", "v", "t"], &["t"])?;
        Ok(())
    }
}

/// SGD (`torch.optim.SGD`'s update) with momentum and L2 weight decay; momentum buffers per
/// variable. State: `momentum.<variable>`.
#[derive(Debug, Default)]
pub struct Sgd {
    /// Momentum (0: plain SGD).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    lr: f64,
    slots: Slots,
}

impl Sgd {
    /// SGD with learning rate `lr`, `momentum` and `weight_decay`.
    pub fn new(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            lr,
            slots: Slots::default(),
        }
    }

    fn update(&mut self, name: &str, p: &Tensor, g: Tensor) -> Result<()> {
        let mut d = if self.weight_decay != 0.0 {
            g.f_add(&p.f_mul_scalar(self.weight_decay)?)?
        } else {
            g
        };
        if self.momentum != 0.0 {
            d = match self.slots.get("momentum", name) {
                Some(buf) => {
                    let _ = buf
                        .shallow_clone()
                        .f_mul_scalar_(self.momentum)?
                        .f_add_(&d)?;
                    buf
                }
                None => {
                    let buf = d.f_detach_copy()?;
                    self.slots.insert("momentum", name, buf.shallow_clone());
                    buf
                }
            };
        }
        let _ = p.shallow_clone().f_sub_(&d.f_mul_scalar(self.lr)?)?;
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn step(&mut self, params: &[NamedTensor]) -> Result<()> {
        each_with_grad(params, |name, p, g| self.update(name, p, g))
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Vec<NamedTensor> {
        self.slots.named()
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        self.slots = Slots::load("sgd", saved, &["momentum"], &[])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadratic_grad(p: &Tensor) {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
        (p * p).sum(Kind::Double).divide_scalar(2.0).backward();
    }

    /// Two steps on f(p) = ½‖p‖² from p = [1, −2] match torch.optim.AdamW(lr=0.1,
    /// weight_decay=0.01) (values computed by hand from its update rule).
    #[test]
    fn adamw_matches_torch_update() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        let mut opt = AdamW::new(0.1, 0.9, 0.999, 1e-8, 0.01);
        let mut expect = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            quadratic_grad(&p);
            opt.step(&params).expect("step");
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

    /// SGD with momentum 0.9 on the same function: v ← 0.9·v + g, p ← p − lr·v.
    #[test]
    fn sgd_momentum_matches_torch_update() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        let mut opt = Sgd::new(0.1, 0.9, 0.0);
        let (mut expect, mut buf) = ([1.0f64, -2.0], [0.0f64; 2]);
        for _ in 0..3 {
            quadratic_grad(&p);
            opt.step(&params).expect("step");
            for i in 0..2 {
                buf[i] = 0.9 * buf[i] + expect[i];
                expect[i] -= 0.1 * buf[i];
            }
        }
        let got: Vec<f64> = Vec::try_from(&p.detach()).expect("values");
        for i in 0..2 {
            assert!((got[i] - expect[i]).abs() < 1e-12, "{got:?} vs {expect:?}");
        }
    }

    /// Every optimiser's state goes out and comes back under a prefix, and a resumed copy
    /// continues exactly as the original; a missing or foreign entry is refused by name.
    #[test]
    fn state_round_trips_and_bad_state_is_refused() {
        let fresh = || Tensor::from_slice(&[0.5f32, -1.5, 2.0]).set_requires_grad(true);
        let build = |which: usize, p: &Tensor| -> Box<dyn Optimizer> {
            let params = [("w".to_string(), p.shallow_clone())];
            match which {
                0 => Box::new(Adam::new(&params, 0.05, (0.5, 0.999)).expect("adam")),
                1 => Box::new(AdamW::new(0.05, 0.9, 0.999, 1e-8, 0.01)),
                _ => Box::new(Sgd::new(0.05, 0.9, 0.001)),
            }
        };
        for which in 0..3 {
            let (a, mut b) = (fresh(), fresh());
            let (mut oa, mut ob) = (build(which, &a), build(which, &b));
            let pa = [("w".to_string(), a.shallow_clone())];
            let pb = [("w".to_string(), b.shallow_clone())];
            for _ in 0..2 {
                quadratic_grad(&a);
                oa.step(&pa).expect("step");
            }
            let saved: HashMap<String, Tensor> =
                save_state(oa.as_ref(), "opt").into_iter().collect();
            assert!(
                saved.keys().all(|k| k.starts_with("opt.")),
                "{:?}",
                saved.keys()
            );
            tch::no_grad(|| b.f_copy_(&a)).expect("copy");
            load_state(ob.as_mut(), "opt", &saved).expect("load");
            quadratic_grad(&a);
            quadratic_grad(&b);
            oa.step(&pa).expect("step");
            ob.step(&pb).expect("step");
            assert!(a.equal(&b), "{} did not resume exactly", oa.name());

            let mut bad: HashMap<String, Tensor> = saved
                .iter()
                .map(|(k, t)| (k.clone(), t.shallow_clone()))
                .collect();
            bad.insert("opt.bogus.w".into(), Tensor::from_slice(&[0.0f32]));
            if which == 0 {
                bad.remove("opt.m.w");
            }
            let err = load_state(ob.as_mut(), "opt", &bad).expect_err("refused");
            assert!(
                matches!(err, TrainError::OptimizerState { .. }),
                "{}: {err}",
                oa.name()
            );
        }
    }
}
