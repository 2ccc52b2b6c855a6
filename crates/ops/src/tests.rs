use super::*;
use tch::nn::{Module, VarStore};
use tch::Device;

/// Serialises the tests: they draw from libtorch's one global generator, and the dropout test
/// reseeds it and expects the same mask again, which a parallel test's draw in between broke
/// (about one run in forty).
fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn leaky_relu_has_the_slope_asked_for_and_its_gradient() {
    let _rng = rng_lock();
    let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.5, 3.0]).set_requires_grad(true);
    let y = leaky_relu(&x, 0.2).expect("leaky_relu");
    let want = Tensor::from_slice(&[-0.4f32, -0.1, 0.0, 0.5, 3.0]);
    assert!(max_abs(&y, &want) < 1e-7, "{y}");
    y.sum(Kind::Float).backward();
    let grad_want = Tensor::from_slice(&[0.2f32, 0.2, 0.2, 1.0, 1.0]);
    // At 0 libtorch takes the negative side's slope.
    assert!(max_abs(&x.grad(), &grad_want) < 1e-7, "{}", x.grad());
}

#[test]
fn leaky_relu_reports_libtorch_errors() {
    let _rng = rng_lock();
    let ints = Tensor::from_slice(&[1i64, -2]);
    let err = leaky_relu(&ints, 0.2).expect_err("integer input");
    assert!(err.to_string().contains("leaky_relu"), "{err}");
}

#[test]
fn conv2d_one_output_matches_the_convolution_and_its_gradients() {
    let _rng = rng_lock();
    tch::manual_seed(1);
    let opts = (Kind::Float, Device::Cpu);
    for (k, c, h, w, cl) in [
        (7, 5, 9, 11, true),
        (7, 5, 9, 11, false),
        (3, 2, 4, 4, true),
        (1, 3, 2, 5, false),
    ] {
        let x = Tensor::randn([2, c, h, w], opts);
        let x = if cl {
            to_channels_last(&x).expect("layout")
        } else {
            x
        };
        let x = x.set_requires_grad(true);
        let wt = Tensor::randn([1, c, k, k], opts).set_requires_grad(true);
        let b = Tensor::randn([1], opts).set_requires_grad(true);
        let reference = x.conv2d(&wt, Some(&b), [1, 1], [k / 2, k / 2], [1, 1], 1);
        let ours = conv2d_one_output(&x, &wt, Some(&b)).expect("conv");
        assert_eq!(ours.size(), [2, 1, h, w]);
        assert!(max_abs(&ours, &reference) < 1e-4, "k={k}");
        let upstream = Tensor::randn([2, 1, h, w], opts);
        let grads = |y: &Tensor| {
            Tensor::run_backward(
                &[(y * &upstream).sum(Kind::Float)],
                &[&x, &wt, &b],
                false,
                false,
            )
        };
        let ours_grads = grads(&ours);
        for (g, r) in ours_grads.iter().zip(grads(&reference).iter()) {
            assert!(
                max_abs(g, r) < 1e-3 * (1.0 + r.abs().max().double_value(&[])),
                "k={k}, channels-last {cl}"
            );
        }
        // The input gradient keeps the input's layout (no conversion before the layer below).
        assert_eq!(is_channels_last(&ours_grads[0]), cl, "k={k}");
    }
}

#[test]
fn conv2d_one_output_rejects_other_shapes() {
    let _rng = rng_lock();
    let opts = (Kind::Float, Device::Cpu);
    let x = Tensor::zeros([1, 3, 4, 4], opts);
    for w in [[2, 3, 3, 3], [1, 2, 3, 3], [1, 3, 2, 2], [1, 3, 3, 5]] {
        assert!(
            conv2d_one_output(&x, &Tensor::zeros(w, opts), None).is_err(),
            "{w:?}"
        );
    }
    assert!(conv2d_one_output(
        &Tensor::zeros([3, 4, 4], opts),
        &Tensor::zeros([1, 3, 3, 3], opts),
        None
    )
    .is_err());
}

#[test]
fn dropout_keeps_the_expected_share_and_scales_it() {
    let _rng = rng_lock();
    tch::manual_seed(2);
    let x = Tensor::ones([200_000], (Kind::Float, Device::Cpu));
    let y = dropout(&x, 0.4, true).expect("dropout");
    let kept = y
        .gt(0.0)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!((kept - 0.6).abs() < 0.01, "kept {kept}");
    // Kept values are scaled so the mean is unchanged.
    assert!((y.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 0.02);
    let nonzero = y.masked_select(&y.gt(0.0));
    assert!(max_abs(&nonzero, &Tensor::full_like(&nonzero, 1.0 / 0.6)) < 1e-4);
    // Seeded by libtorch's generator, and different at each call.
    tch::manual_seed(7);
    let a = dropout(&x, 0.4, true).expect("dropout");
    let b = dropout(&x, 0.4, true).expect("dropout");
    tch::manual_seed(7);
    assert_eq!(max_abs(&a, &dropout(&x, 0.4, true).expect("dropout")), 0.0);
    assert!(max_abs(&a, &b) > 0.0);
    // Neighbouring values are independent: the share of kept pairs is 0.6².
    let k = a.gt(0.0).to_kind(Kind::Float);
    let pairs = (k.narrow(0, 0, 199_999) * k.narrow(0, 1, 199_999)).mean(Kind::Float);
    assert!((pairs.double_value(&[]) - 0.36).abs() < 0.01);
    // The mask follows the input's layout.
    let cl = to_channels_last(&Tensor::ones([2, 3, 4, 5], (Kind::Float, Device::Cpu))).expect("cl");
    assert!(is_channels_last(&dropout_mask(&cl, 0.5).expect("mask")));
    assert!(max_abs(&dropout(&x, 0.4, false).expect("eval"), &x) == 0.0);
    assert!(dropout(&x, 1.0, true).is_err() && dropout(&x, -0.1, true).is_err());
}

#[test]
fn channels_last_copies_values_with_nhwc_strides() {
    let _rng = rng_lock();
    let x = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
    // A view with an offset: the copy must start at the view, not at its storage.
    let part = x.narrow(0, 1, 1);
    let cl = to_channels_last(&part).expect("layout");
    assert!(is_channels_last(&cl) && !is_channels_last(&part));
    assert_eq!(max_abs(&cl, &part), 0.0);
    assert!(to_channels_last(&Tensor::zeros([3, 4], (Kind::Float, Device::Cpu))).is_err());
    // In place: the same variable, now channels-last, values unchanged.
    let var = x.copy().set_requires_grad(true);
    let alias = var.shallow_clone();
    set_channels_last(&var).expect("in place");
    assert!(is_channels_last(&alias) && max_abs(&alias, &x) == 0.0 && alias.requires_grad());
}

#[test]
fn transposed_convolution_with_a_separate_bias_is_the_same_map() {
    let _rng = rng_lock();
    tch::manual_seed(3);
    let vs = VarStore::new(Device::Cpu);
    let spec = ConvSpec::new(4, 3, 4).stride(2).padding(1);
    let layer = conv_transpose(vs.root() / "up", spec, None, Precision::F32);
    let x = Tensor::randn([2, 4, 5, 5], (Kind::Float, Device::Cpu));
    let bs = layer.bs.as_ref().expect("bias");
    let reference = x.conv_transpose2d(&layer.ws, Some(bs), [2, 2], [1, 1], [0, 0], 1, [1, 1]);
    let y = layer.forward(&x).expect("forward");
    assert_eq!(y.size(), [2, 3, 10, 10]);
    assert!(max_abs(&y, &reference) < 1e-5);
    // Large maps take the NCHW weight-gradient path: same map, same gradients.
    let big = Tensor::randn([1, 4, 64, 64], (Kind::Float, Device::Cpu));
    let reference = big.conv_transpose2d(&layer.ws, Some(bs), [2, 2], [1, 1], [0, 0], 1, [1, 1]);
    let y = layer.forward(&big).expect("forward");
    // A wrong channel count is an error, not a panic.
    assert!(layer
        .forward(&Tensor::zeros([1, 3, 5, 5], (Kind::Float, Device::Cpu)))
        .is_err());
    assert!(max_abs(&y, &reference) < 1e-4);
    let w_grad = |y: &Tensor| {
        Tensor::run_backward(&[y.square().sum(Kind::Float)], &[&layer.ws], false, false)
    };
    assert!(max_abs(&w_grad(&y)[0], &w_grad(&reference)[0]) < 1e-2);
    let names: Vec<String> = vs.variables().into_keys().collect();
    assert!(names.contains(&"up.weight".to_string()) && names.contains(&"up.bias".to_string()));
}

#[test]
fn bf16_layers_stay_close_to_f32_and_return_f32() {
    let _rng = rng_lock();
    tch::manual_seed(4);
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let mut layer = conv(
        &root / "c",
        ConvSpec::new(3, 8, 3).padding(1),
        Precision::F32,
    );
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let a = layer.forward(&x);
    layer.set_precision(Precision::Bf16);
    let b = layer.forward(&x);
    assert_eq!(b.kind(), Kind::Float);
    let rel = max_abs(&a, &b) / a.abs().max().double_value(&[]);
    assert!(rel > 0.0 && rel < 2e-2, "bf16 relative error {rel}");
    let d = dense(&root / "d", 6, 2, Precision::Bf16);
    let out = d.forward(&Tensor::randn([4, 6], (Kind::Float, Device::Cpu)));
    assert_eq!((out.size(), out.kind()), (vec![4, 2], Kind::Float));
}

#[test]
fn fused_adam_step_is_torch_adams_update_for_any_layout() {
    let _rng = rng_lock();
    tch::manual_seed(5);
    let opts = (Kind::Float, Device::Cpu);
    let hyper = AdamHyper {
        lr: 2e-4,
        betas: (0.5, 0.999),
        eps: 1e-8,
    };
    let p0 = [
        Tensor::randn([3, 4], opts),
        to_channels_last(&Tensor::randn([2, 3, 4, 5], opts)).expect("layout"),
    ];
    let params: Vec<Tensor> = p0.iter().map(|t| t.copy()).collect();
    let m: Vec<Tensor> = params.iter().map(|t| t.zeros_like()).collect();
    let v: Vec<Tensor> = params.iter().map(|t| t.zeros_like()).collect();
    let (mut rm, mut rv, mut rp): (Vec<Tensor>, Vec<Tensor>, Vec<Tensor>) = (
        m.iter().map(Tensor::copy).collect(),
        v.iter().map(Tensor::copy).collect(),
        p0.iter().map(Tensor::copy).collect(),
    );
    for step in 1..=3i64 {
        let grads: Vec<Tensor> = params.iter().map(|t| t.randn_like()).collect();
        adam_step(&params, &grads, &m, &v, step, hyper).expect("adam");
        // The textbook update, one operation at a time.
        let (b1, b2) = hyper.betas;
        for i in 0..2 {
            let g = &grads[i];
            rm[i] = &rm[i] * b1 + g * (1.0 - b1);
            rv[i] = &rv[i] * b2 + g.square() * (1.0 - b2);
            let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
            let denom = (&rv[i] / c2).sqrt() + hyper.eps;
            rp[i] = &rp[i] - (&rm[i] / c1) / denom * hyper.lr;
        }
    }
    for i in 0..2 {
        assert!(max_abs(&params[i], &rp[i]) < 1e-6, "parameter {i}");
        assert!(max_abs(&m[i], &rm[i]) < 1e-6 && max_abs(&v[i], &rv[i]) < 1e-6);
        assert!(
            max_abs(&params[i], &p0[i]) > 1e-5,
            "parameter {i} did not move"
        );
    }
    assert!(is_channels_last(&params[1]));
    // A moment with another layout is refused rather than updated element-for-wrong-element.
    let nchw = params[1].contiguous().zeros_like();
    let err = adam_step(
        &params[1..],
        &[params[1].zeros_like()],
        &[nchw],
        &v[1..],
        4,
        hyper,
    );
    assert!(err.is_err());
    assert!(adam_step(&params, &[], &m, &v, 1, hyper).is_err());
}

#[test]
fn transposed_convolution_with_nchw_weight_gradient_has_libtorchs_gradients() {
    let _rng = rng_lock();
    tch::manual_seed(6);
    let opts = (Kind::Float, Device::Cpu);
    for (channels_last, stride, padding, k) in [(true, 2, 1, 4), (false, 2, 1, 4), (true, 1, 0, 4)]
    {
        let mut x = Tensor::randn([2, 5, 6, 7], opts);
        let mut w = Tensor::randn([5, 3, k, k], opts);
        if channels_last {
            x = to_channels_last(&x).expect("layout");
            w = to_channels_last(&w).expect("layout");
        }
        let (x, w) = (x.set_requires_grad(true), w.set_requires_grad(true));
        let reference = x.conv_transpose2d(
            &w,
            None::<&Tensor>,
            [stride; 2],
            [padding; 2],
            [0, 0],
            1,
            [1, 1],
        );
        let ours = conv_transpose2d_nchw_wgrad(&x, &w, stride, padding).expect("deconv");
        assert_eq!(ours.size(), reference.size());
        assert!(max_abs(&ours, &reference) < 1e-4);
        let upstream = Tensor::randn(ours.size(), opts);
        let grads = |y: &Tensor| {
            Tensor::run_backward(&[(y * &upstream).sum(Kind::Float)], &[&x, &w], false, false)
        };
        let (g, r) = (grads(&ours), grads(&reference));
        for (a, b) in g.iter().zip(r.iter()) {
            assert!(
                max_abs(a, b) < 1e-3,
                "channels_last {channels_last}, stride {stride}"
            );
        }
        // The weight gradient keeps the weight's layout (what the fused Adam step checks).
        assert_eq!(is_channels_last(&g[1]), channels_last);
    }
    // Only the input needs a gradient: the weight's is not computed.
    let x = Tensor::randn([1, 2, 3, 3], opts).set_requires_grad(true);
    let w = Tensor::randn([2, 2, 4, 4], opts);
    let y = conv_transpose2d_nchw_wgrad(&x, &w, 2, 1).expect("deconv");
    y.sum(Kind::Float).backward();
    assert!(x.grad().defined() && !w.grad().defined());
    let bad = conv_transpose2d_nchw_wgrad(&x, &Tensor::zeros([3, 2, 4, 4], opts), 2, 1);
    assert!(matches!(bad, Err(OpsError::Shim { .. })), "{bad:?}");
}

#[test]
fn fused_bias_leaky_relu_is_the_separate_ops_with_their_gradients() {
    let _rng = rng_lock();
    tch::manual_seed(4);
    let opts = (Kind::Float, Device::Cpu);
    // Channels-last and NCHW, a map large enough to split into several parallel tasks, and
    // slope 0 (plain ReLU) where the output's sign must still give the gradient.
    for (shape, cl, slope) in [
        ([3, 5, 7, 6], true, 0.2),
        ([3, 5, 7, 6], false, 0.2),
        ([4, 64, 24, 24], true, 0.2),
        ([4, 64, 24, 24], false, 0.0),
    ] {
        let x = Tensor::randn(shape, opts);
        let x = if cl {
            to_channels_last(&x).expect("layout")
        } else {
            x
        };
        let x = x.set_requires_grad(true);
        let b = Tensor::randn([shape[1]], opts).set_requires_grad(true);
        let ours = bias_leaky_relu(&x, Some(&b), slope).expect("fused");
        let reference = reference_leaky(&(&x + b.view([1, -1, 1, 1])), slope);
        assert_eq!(is_channels_last(&ours), cl, "{shape:?}");
        assert!(max_abs(&ours, &reference) < 1e-6, "{shape:?} cl {cl}");
        let upstream = Tensor::randn(shape, opts);
        let grads = |y: &Tensor| {
            Tensor::run_backward(&[(y * &upstream).sum(Kind::Float)], &[&x, &b], false, false)
        };
        for (g, r) in grads(&ours).iter().zip(grads(&reference).iter()) {
            let tol = 1e-5 * (1.0 + r.abs().max().double_value(&[]));
            assert!(max_abs(g, r) < tol, "{shape:?} cl {cl}: {}", max_abs(g, r));
        }
    }
    // Off the fused path (negative slope, no bias) it is still the same map.
    let x = Tensor::randn([2, 3, 4, 4], opts);
    let b = Tensor::randn([3], opts);
    let want = reference_leaky(&(&x + b.view([1, -1, 1, 1])), -0.1);
    let got = bias_leaky_relu(&x, Some(&b), -0.1).expect("negative slope");
    assert!(max_abs(&got, &want) < 1e-6);
    assert!(
        max_abs(
            &bias_leaky_relu(&x, None, 0.2).expect("no bias"),
            &leaky_relu(&x, 0.2).expect("leaky")
        ) < 1e-7
    );
    assert!(bias_leaky_relu(&x, Some(&Tensor::zeros([4], opts)), 0.2).is_err());
}

/// LeakyReLU from elementary libtorch operations, its gradient at 0 being the slope as in
/// libtorch's own kernel.
fn reference_leaky(x: &Tensor, slope: f64) -> Tensor {
    (x * slope).where_self(&x.le(0.0), x)
}
