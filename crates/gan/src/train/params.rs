//! Which variables of a GAN train, and freezing some of them for part of a step.

use tch::nn;

use ganaug_train::optim::NamedTensor;

/// The trainable variables of `vs` under `prefix`, sorted by name.
pub(crate) fn trainable(vs: &nn::VarStore, prefix: &str) -> Vec<NamedTensor> {
    let mut named: Vec<NamedTensor> = vs
        .variables()
        .into_iter()
        .filter(|(n, t)| n.starts_with(prefix) && t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Turns gradient tracking off for some variables while alive, back on when dropped.
pub(crate) struct Frozen<'a>(&'a [NamedTensor]);

impl<'a> Frozen<'a> {
    pub(crate) fn new(vars: &'a [NamedTensor]) -> Self {
        for (_, v) in vars {
            let _ = v.set_requires_grad(false);
        }
        Frozen(vars)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        for (_, v) in self.0 {
            let _ = v.set_requires_grad(true);
        }
    }
}
