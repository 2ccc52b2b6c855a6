//! Generator and discriminator networks: the paper's GAN, Radford's DCGAN, a small FastGAN
//! and FastGAN's generator against a projected discriminator, each optionally conditioned on
//! a class label (Mirza & Osindero).

mod config;
mod dcgan;
mod discriminator;
mod family;
mod fastgan;
mod generator;
mod layers;
mod paper;
mod projected;

pub use config::{Arch, Conditioning, GanConfig};
pub use discriminator::Discriminator;
pub(crate) use discriminator::Reconstruction;
pub use generator::Generator;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GanError;
    use tch::nn;
    use tch::{Device, Kind, Tensor};

    fn shapes(cfg: GanConfig) {
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
        let d = Discriminator::new(&(vs.root() / "d"), &cfg).expect("discriminator");
        let z = Tensor::randn([3, cfg.latent_dim], (Kind::Float, Device::Cpu));
        let y = cfg.n_classes.map(|_| Tensor::from_slice(&[0i64, 1, 0]));
        let x = g.forward_t(&z, y.as_ref(), true).expect("generate");
        assert_eq!(x.size(), [3, cfg.channels, cfg.size, cfg.size], "{cfg:?}");
        assert!(x.min().double_value(&[]) >= 0.0 && x.max().double_value(&[]) <= 1.0);
        assert_eq!(
            d.forward_t(&x, y.as_ref(), true).expect("score").size(),
            [3],
            "{cfg:?}"
        );
    }

    #[test]
    fn output_shapes_at_several_resolutions() {
        for size in [8, 28, 64] {
            shapes(GanConfig {
                arch: Arch::Paper,
                size,
                ..Default::default()
            });
        }
        for size in [16, 32, 64] {
            shapes(GanConfig {
                arch: Arch::Dcgan { ngf: 8, ndf: 8 },
                size,
                ..Default::default()
            });
        }
        shapes(GanConfig {
            arch: Arch::Paper,
            size: 16,
            n_classes: Some(2),
            ..Default::default()
        });
        shapes(GanConfig {
            arch: Arch::Dcgan { ngf: 8, ndf: 8 },
            size: 32,
            n_classes: Some(3),
            ..Default::default()
        });
        // RGB: three output channels, a three-channel (+ label plane) discriminator input.
        for (arch, size, n_classes) in [
            (Arch::Paper, 16, None),
            (Arch::Paper, 16, Some(3)),
            (Arch::Dcgan { ngf: 8, ndf: 8 }, 32, Some(4)),
        ] {
            shapes(GanConfig {
                arch,
                size,
                channels: 3,
                n_classes,
                ..Default::default()
            });
        }
        // FastGAN: 32² (no excitation), 64² (4² → 64²), 128² (and 8² → 128²); conditional both
        // ways, gray and RGB.
        let fast = Arch::FastGan { ngf: 4, ndf: 4 };
        for (size, channels, n_classes, conditioning) in [
            (32, 1, None, Conditioning::Concat),
            (64, 3, Some(3), Conditioning::Concat),
            (128, 1, Some(2), Conditioning::Projection),
        ] {
            shapes(GanConfig {
                arch: fast,
                size,
                channels,
                n_classes,
                conditioning,
                ..Default::default()
            });
        }
        for size in [16, 48] {
            let bad = GanConfig {
                arch: fast,
                size,
                ..Default::default()
            };
            assert!(ganaug_train::Validate::validate(&bad).is_err(), "{size}");
        }
        let two = GanConfig {
            channels: 2,
            ..Default::default()
        };
        assert!(ganaug_train::Validate::validate(&two).is_err());
    }

    #[test]
    fn paper_generator_has_the_papers_dense_layer_at_256() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _g = Generator::new(&(vs.root() / "g"), &GanConfig::default()).expect("generator");
        let fc = &vs.variables()["g.fc.weight"];
        assert_eq!(fc.size(), [262_144, 100]);
    }

    #[test]
    fn bad_configs_and_inputs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = GanConfig {
            size: 30,
            ..Default::default()
        };
        assert!(Generator::new(&vs.root(), &bad).is_err());
        let bad = GanConfig {
            arch: Arch::Dcgan { ngf: 8, ndf: 8 },
            size: 48,
            ..Default::default()
        };
        assert!(Discriminator::new(&vs.root(), &bad).is_err());
        let cfg = GanConfig {
            size: 8,
            ..Default::default()
        };
        let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
        let z = Tensor::zeros([2, 7], (Kind::Float, Device::Cpu));
        assert!(matches!(
            g.forward_t(&z, None, false),
            Err(GanError::Shape { .. })
        ));
        let z = Tensor::zeros([2, 100], (Kind::Float, Device::Cpu));
        assert!(g
            .forward_t(&z, Some(&Tensor::from_slice(&[0i64, 1])), false)
            .is_err());
    }

    #[test]
    fn bf16_networks_match_f32_up_to_bf16_rounding() {
        for arch in [Arch::Paper, Arch::Dcgan { ngf: 8, ndf: 8 }] {
            let base = GanConfig {
                arch,
                size: 16,
                latent_dim: 16,
                paper_fc_channels: 16,
                ..Default::default()
            };
            let build = |bf16: bool| {
                let vs = nn::VarStore::new(Device::Cpu);
                let cfg = GanConfig {
                    bf16,
                    ..base.clone()
                };
                let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
                let d = Discriminator::new(&(vs.root() / "d"), &cfg).expect("discriminator");
                (vs, g, d)
            };
            let ((v32, g32, d32), (mut v16, g16, d16)) = (build(false), build(true));
            // Same weights; only the compute precision differs.
            v16.copy(&v32).expect("copy weights");
            let z = Tensor::randn([4, 16], (Kind::Float, Device::Cpu));
            let (x32, x16) = (
                g32.forward_t(&z, None, false).expect("f32"),
                g16.forward_t(&z, None, false).expect("bf16"),
            );
            assert_eq!(x16.kind(), Kind::Float);
            let dx = (&x32 - &x16).abs().max().double_value(&[]);
            assert!(dx > 0.0 && dx < 0.03, "{arch:?}: images differ by {dx}");
            let (s32, s16) = (
                d32.forward_t(&x32, None, false).expect("f32"),
                d16.forward_t(&x32, None, false).expect("bf16"),
            );
            let ds = (&s32 - &s16).abs().max().double_value(&[]);
            // A logit sums a thousand bf16-rounded products: near-zero scores still carry
            // ~0.01 of rounding, so the tolerance has a floor (0.1 flaked at 0.007).
            let scale = s32.abs().max().double_value(&[]).max(0.5);
            assert!(
                ds > 0.0 && ds < 0.05 * scale,
                "{arch:?}: scores differ by {ds}"
            );
        }
    }
}
