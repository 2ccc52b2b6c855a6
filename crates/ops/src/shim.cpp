// Operations libtorch has and tch's generated C API leaves without arguments this project needs.
// Tensors cross the boundary as `at::Tensor*`, the representation torch-sys uses for its
// `C_tensor`, so a returned pointer becomes a tch `Tensor` that owns (and later deletes) it.
// Errors never unwind into Rust: each function returns null on success or a heap-allocated
// message that the caller frees with `ganaug_free_error`.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <exception>
#include <vector>

namespace {
// Same element order in memory: equal sizes and equal strides on every dimension longer than
// one (a length-1 dimension's stride is arbitrary).
bool same_layout(const at::Tensor& a, const at::Tensor& b) {
    if (a.sizes() != b.sizes()) return false;
    for (int64_t d = 0; d < a.dim(); ++d) {
        if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
    }
    return true;
}

char* error_message(const char* what) {
    char* copy = static_cast<char*>(std::malloc(std::strlen(what) + 1));
    if (copy != nullptr) std::strcpy(copy, what);
    return copy;
}

// Runs `body`, turning any exception into a message for Rust (null when it succeeded).
template <typename F>
char* guarded(F&& body) {
    try {
        body();
        return nullptr;
    } catch (const c10::Error& e) {
        return error_message(e.what_without_backtrace());
    } catch (const std::exception& e) {
        return error_message(e.what());
    } catch (...) {
        return error_message("unknown C++ exception");
    }
}
}  // namespace

// A transposed convolution (no bias) whose CPU weight gradient is computed from NCHW copies of
// the input and the output gradient: oneDNN's channels-last weight-gradient kernel for
// transposed convolutions slows down sharply on large maps (the paper generator's last layer at
// 256²: 7.6 s against 2.8 s + 1.8 s of copies in NCHW, on the development CPU). Forward and
// input gradient are libtorch's, in the input's layout; on other devices so is everything.
struct ConvTransposeNchwWgrad : public torch::autograd::Function<ConvTransposeNchwWgrad> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                              const at::Tensor& w, int64_t stride, int64_t padding) {
        ctx->save_for_backward({x, w});
        ctx->saved_data["stride"] = stride;
        ctx->saved_data["padding"] = padding;
        return at::conv_transpose2d(x, w, {}, stride, padding);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor& x = saved[0];
        const at::Tensor& w = saved[1];
        const at::Tensor& g = grads[0];
        const int64_t s = ctx->saved_data["stride"].toInt();
        const int64_t p = ctx->saved_data["padding"].toInt();
        const bool want_x = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
        at::Tensor gx, gw;
        const auto backward = [&](const at::Tensor& go, const at::Tensor& in, const at::Tensor& wt,
                                  std::array<bool, 3> mask) {
            return at::convolution_backward(go, in, wt, std::nullopt, {s, s}, {p, p}, {1, 1},
                                            /*transposed=*/true, {0, 0}, 1, mask);
        };
        if (!x.device().is_cpu()) {
            auto r = backward(g, x, w, {want_x, want_w, false});
            gx = std::get<0>(r);
            gw = std::get<1>(r);
        } else {
            if (want_x) gx = std::get<0>(backward(g, x, w, {true, false, false}));
            if (want_w) {
                gw = std::get<1>(backward(g.contiguous(), x.contiguous(), w.contiguous(),
                                          {false, true, false}));
                gw = gw.contiguous(w.suggest_memory_format());
            }
        }
        return {gx, gw, at::Tensor(), at::Tensor()};
    }
};

// A stride-1 "same" convolution from C channels to one (odd k), as batched matrix products and
// col2im / im2col with every layout chosen here: forward, each image's [k², C] × [C, H·W]
// product (a view of a channels-last or NCHW input, no copy) gives col2im its columns directly;
// backward, the input gradient comes out in the input's own layout and the weight gradient from
// the same columns. libtorch's generic matmul instead copies the columns (and their gradient)
// into place, and oneDNN's direct convolution is slower still for one output channel.
struct ConvOneOutput : public torch::autograd::Function<ConvOneOutput> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                              const at::Tensor& w) {
        const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3), k = w.size(2);
        const bool cl = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
        // Taps in col2im's order: col2im sums column (dy, dx) into pixel p + (dy, dx) - k/2, a
        // transposed correlation, so the kernel is flipped to make it a correlation again.
        const at::Tensor taps = w.flip({2, 3}).reshape({c, k * k}).t().contiguous();  // [k², C]
        // [N, C, H·W]: a view of either layout (strides (HWC, 1, C) when channels-last).
        const at::Tensor pixels = cl ? x.permute({0, 2, 3, 1}).reshape({n, h * wd, c}).transpose(1, 2)
                                     : x.reshape({n, c, h * wd});
        const at::Tensor cols = at::bmm(taps.expand({n, k * k, c}), pixels);  // [N, k², H·W]
        ctx->save_for_backward({pixels, taps});
        ctx->saved_data["h"] = h;
        ctx->saved_data["w"] = wd;
        ctx->saved_data["cl"] = cl;
        ctx->saved_data["k"] = k;
        return at::col2im(cols, {h, wd}, {k, k}, {1, 1}, {k / 2, k / 2}, {1, 1});
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor& pixels = saved[0];  // [N, C, H·W]
        const at::Tensor& taps = saved[1];    // [k², C]
        const int64_t h = ctx->saved_data["h"].toInt(), wd = ctx->saved_data["w"].toInt();
        const bool cl = ctx->saved_data["cl"].toBool();
        const int64_t n = pixels.size(0), c = pixels.size(1), kk = taps.size(0);
        const int64_t k = ctx->saved_data["k"].toInt();
        // [N, k², H·W]: the output gradient at every tap's offset.
        const at::Tensor gcols =
            at::im2col(grads[0].contiguous(), {k, k}, {1, 1}, {k / 2, k / 2}, {1, 1});
        at::Tensor gx, gw;
        if (ctx->needs_input_grad(0)) {
            if (cl) {  // [N, H·W, C] = channels-last memory
                gx = at::bmm(gcols.transpose(1, 2), taps.expand({n, kk, c}))
                         .view({n, h, wd, c})
                         .permute({0, 3, 1, 2});
            } else {  // [N, C, H·W]
                gx = at::bmm(taps.t().expand({n, c, kk}), gcols).view({n, c, h, wd});
            }
        }
        if (ctx->needs_input_grad(1)) {
            // Σ over images of [k², H·W] × [H·W, C], back to the weight's [1, C, k, k].
            gw = at::bmm(gcols, pixels.transpose(1, 2)).sum(0).t().reshape({1, c, k, k}).flip({2, 3});
        }
        return {gx, gw};
    }
};

namespace {
// Branch-free (vectorisable) inner loops of `BiasLeakyRelu`: random signs made the compiler's
// branchy version mispredict on every other value. For 0 ≤ s ≤ 1, leaky(v) = max(v, 0) +
// s·min(v, 0) exactly.
void bias_leaky_row(const float* __restrict x, const float* __restrict b, float* __restrict y,
                    int64_t len, float s) {
    for (int64_t k = 0; k < len; ++k) {
        const float v = x[k] + b[k];
        y[k] = std::max(v, 0.0f) + s * std::min(v, 0.0f);
    }
}

void bias_leaky_plane(const float* __restrict x, float b, float* __restrict y, int64_t len,
                      float s) {
    for (int64_t k = 0; k < len; ++k) {
        const float v = x[k] + b;
        y[k] = std::max(v, 0.0f) + s * std::min(v, 0.0f);
    }
}

// Gradient through the activation (the output's sign is the input's) and its running sum.
void leaky_grad_row(const float* __restrict out, const float* __restrict g, float* __restrict gx,
                    float* __restrict acc, int64_t len, float s) {
    for (int64_t k = 0; k < len; ++k) {
        const float m = out[k] > 0.0f ? 1.0f : s;  // a select of constants: vectorises
        const float v = g[k] * m;
        gx[k] = v;
        acc[k] += v;
    }
}

float leaky_grad_plane(const float* __restrict out, const float* __restrict g,
                       float* __restrict gx, int64_t len, float s) {
    float acc = 0.0f;
    for (int64_t k = 0; k < len; ++k) {
        const float m = out[k] > 0.0f ? 1.0f : s;  // a select of constants: vectorises
        const float v = g[k] * m;
        gx[k] = v;
        acc += v;
    }
    return acc;
}
}  // namespace

// leaky_relu(x + b[channel], slope) in one pass over a float CPU tensor (channels-last or
// NCHW-contiguous), and in the backward pass the input gradient and the bias gradient in one
// more: the separate bias addition, activation and bias reduction each read and wrote the whole
// map. Only the output is saved: for slope ≥ 0 its sign is the input's (zero counts as
// negative, as in libtorch's own backward).
struct BiasLeakyRelu : public torch::autograd::Function<BiasLeakyRelu> {
    // Rows of `c` contiguous channel values (channels-last) or planes of `hw` values of one
    // channel (NCHW); `grain` rows or planes per task.
    static constexpr int64_t kGrainValues = 1 << 15;

    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                              const at::Tensor& bias, double slope) {
        const bool cl = x.is_contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor xc = cl ? x : x.contiguous();
        const at::Tensor b = bias.contiguous();
        at::Tensor out = at::empty_like(xc);
        const int64_t n = xc.size(0), c = xc.size(1), hw = xc.size(2) * xc.size(3);
        const float* src = xc.const_data_ptr<float>();
        const float* bp = b.const_data_ptr<float>();
        float* dst = out.mutable_data_ptr<float>();
        const float s = static_cast<float>(slope);
        if (cl) {
            at::parallel_for(0, n * hw, std::max<int64_t>(1, kGrainValues / c), [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r) bias_leaky_row(src + r * c, bp, dst + r * c, c, s);
            });
        } else {
            at::parallel_for(0, n * c, std::max<int64_t>(1, kGrainValues / hw), [&](int64_t p0, int64_t p1) {
                for (int64_t p = p0; p < p1; ++p)
                    bias_leaky_plane(src + p * hw, bp[p % c], dst + p * hw, hw, s);
            });
        }
        ctx->save_for_backward({out});
        ctx->saved_data["slope"] = slope;
        return out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const at::Tensor out = ctx->get_saved_variables()[0];
        const float s = static_cast<float>(ctx->saved_data["slope"].toDouble());
        const bool cl = out.is_contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor g = grads[0].contiguous(cl ? at::MemoryFormat::ChannelsLast
                                                    : at::MemoryFormat::Contiguous);
        const int64_t n = out.size(0), c = out.size(1), hw = out.size(2) * out.size(3);
        at::Tensor gx = at::empty_like(out);
        const float* op = out.const_data_ptr<float>();
        const float* gp = g.const_data_ptr<float>();
        float* gxp = gx.mutable_data_ptr<float>();
        // Per-task partial sums of the bias gradient (float within a task, double across).
        std::vector<double> gb(c, 0.0);
        if (cl) {
            const int64_t rows = n * hw, grain = std::max<int64_t>(1, kGrainValues / c);
            const int64_t tasks = (rows + grain - 1) / grain;
            std::vector<float> partial(tasks * c, 0.0f);
            at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
                for (int64_t t = t0; t < t1; ++t) {
                    float* acc = partial.data() + t * c;
                    for (int64_t r = t * grain; r < std::min(rows, (t + 1) * grain); ++r)
                        leaky_grad_row(op + r * c, gp + r * c, gxp + r * c, acc, c, s);
                }
            });
            for (int64_t t = 0; t < tasks; ++t)
                for (int64_t k = 0; k < c; ++k) gb[k] += partial[t * c + k];
        } else {
            std::vector<double> partial(n * c, 0.0);
            at::parallel_for(0, n * c, std::max<int64_t>(1, kGrainValues / hw), [&](int64_t p0, int64_t p1) {
                for (int64_t p = p0; p < p1; ++p)
                    partial[p] = leaky_grad_plane(op + p * hw, gp + p * hw, gxp + p * hw, hw, s);
            });
            for (int64_t p = 0; p < n * c; ++p) gb[p % c] += partial[p];
        }
        at::Tensor gbias = at::empty({c}, out.options());
        float* gbp = gbias.mutable_data_ptr<float>();
        for (int64_t k = 0; k < c; ++k) gbp[k] = static_cast<float>(gb[k]);
        return {gx, gbias, at::Tensor()};
    }
};

extern "C" {

// `conv_transpose2d(x, w, stride, padding)` through `ConvTransposeNchwWgrad` (autograd-aware).
char* ganaug_conv_transpose_nchw_wgrad(const at::Tensor* x, const at::Tensor* w, int64_t stride,
                                       int64_t padding, at::Tensor** out) {
    return guarded([&] {
        *out = new at::Tensor(ConvTransposeNchwWgrad::apply(*x, *w, stride, padding));
    });
}

// `conv2d(x, w, padding = k / 2)` for `w: [1, C, k, k]` through `ConvOneOutput` (autograd-aware).
char* ganaug_conv_one_output(const at::Tensor* x, const at::Tensor* w, at::Tensor** out) {
    return guarded([&] {
        TORCH_CHECK(x->dim() == 4 && w->dim() == 4 && w->size(0) == 1 && w->size(1) == x->size(1) &&
                        w->size(2) == w->size(3) && w->size(2) % 2 == 1,
                    "conv_one_output: x [N, C, H, W] and weight [1, C, k, k] with odd k expected");
        *out = new at::Tensor(ConvOneOutput::apply(*x, *w));
    });
}

// `leaky_relu(x + bias.view(1, -1, 1, 1), slope)` through `BiasLeakyRelu` (autograd-aware):
// float CPU tensors, `x` [N, C, H, W], `bias` [C], slope ≥ 0.
char* ganaug_bias_leaky_relu(const at::Tensor* x, const at::Tensor* bias, double slope,
                             at::Tensor** out) {
    return guarded([&] {
        TORCH_CHECK(x->dim() == 4 && bias->dim() == 1 && bias->size(0) == x->size(1),
                    "bias_leaky_relu: x [N, C, H, W] and bias [C] expected");
        TORCH_CHECK(x->device().is_cpu() && bias->device().is_cpu() &&
                        x->scalar_type() == at::kFloat && bias->scalar_type() == at::kFloat,
                    "bias_leaky_relu: float CPU tensors only");
        TORCH_CHECK(slope >= 0.0, "bias_leaky_relu: slope must be >= 0, got ", slope);
        *out = new at::Tensor(BiasLeakyRelu::apply(*x, *bias, slope));
    });
}

// `at::leaky_relu(x, slope)`: one fused kernel forward and backward (autograd records it like
// any other ATen call).
char* ganaug_leaky_relu(const at::Tensor* x, double slope, at::Tensor** out) {
    return guarded([&] {
        *out = new at::Tensor(at::leaky_relu(*x, slope));
    });
}

// One Adam step (PyTorch's update, no weight decay) over `n` parameters with libtorch's fused
// multi-tensor kernel: a single pass over each parameter, its gradient and both moments.
// `step` is the step number after this update (1 for the first).
// Adam's step count and hyperparameters, as `ffi.rs` lays them out.
struct GanaugAdamHyper {
    double step;
    double lr;
    double beta1;
    double beta2;
    double eps;
};

char* ganaug_adam_step(at::Tensor* const* params, const at::Tensor* const* grads,
                       at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs, int64_t n,
                       const GanaugAdamHyper* hyper) {
    const double step = hyper->step, lr = hyper->lr, beta1 = hyper->beta1,
                 beta2 = hyper->beta2, eps = hyper->eps;
    return guarded([&] {
        std::vector<at::Tensor> p, g, m, v, steps;
        for (int64_t i = 0; i < n; ++i) {
            const at::Tensor& param = *params[i];
            const at::Tensor* others[] = {grads[i], exp_avgs[i], exp_avg_sqs[i]};
            for (const at::Tensor* t : others) {
                TORCH_CHECK(same_layout(*t, param) && t->is_non_overlapping_and_dense(),
                            "adam: parameter ", i, " and its gradient or moments differ in shape "
                            "or layout");
            }
            TORCH_CHECK(param.is_non_overlapping_and_dense(), "adam: parameter ", i,
                        " is not dense");
            p.push_back(param);
            g.push_back(*grads[i]);
            m.push_back(*exp_avgs[i]);
            v.push_back(*exp_avg_sqs[i]);
            steps.push_back(at::full({}, step, param.options().dtype(at::kFloat)));
        }
        at::_fused_adam_(p, g, m, v, {}, steps, lr, beta1, beta2, /*weight_decay=*/0.0, eps,
                         /*amsgrad=*/false, /*maximize=*/false);
    });
}

// A dropout mask for a dense float CPU tensor shaped and laid out like `like`: each value is 0
// with probability t / 65536 (t = round(p * 65536)) and 65536 / (65536 - t) otherwise, so its
// mean is exactly 1. The bits come from SplitMix64 over (seed, block index), four 16-bit draws
// per 64-bit hash, with the seed taken from libtorch's default generator: seeded by
// `manual_seed`, identical for any thread count, and one multiply-xorshift chain per four
// values instead of libtorch's serial Mersenne Twister per value.
char* ganaug_dropout_mask(const at::Tensor* like, double p, at::Tensor** out) {
    return guarded([&] {
        TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
        TORCH_CHECK(like->device().is_cpu(), "dropout_mask: CPU tensors only");
        at::Tensor mask = at::empty_like(*like, like->options().dtype(at::kFloat));
        TORCH_CHECK(mask.is_non_overlapping_and_dense(), "dropout_mask: mask is not dense");
        const uint64_t seed = static_cast<uint64_t>(
            at::randint(std::numeric_limits<int64_t>::max(), {1}, at::kLong).item<int64_t>());
        const uint32_t t = static_cast<uint32_t>(std::lround(p * 65536.0));
        const float keep = static_cast<float>(65536.0 / (65536.0 - t));
        float* data = mask.data_ptr<float>();
        const int64_t n = mask.numel();
        const int64_t blocks = (n + 3) / 4;
        at::parallel_for(0, blocks, 4096, [&](int64_t begin, int64_t end) {
            for (int64_t b = begin; b < end; ++b) {
                uint64_t z = seed + static_cast<uint64_t>(b) * 0x9E3779B97F4A7C15ull;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                z ^= z >> 31;
                const int64_t base = b * 4;
                for (int64_t k = 0; k < 4 && base + k < n; ++k) {
                    const uint32_t r = static_cast<uint32_t>((z >> (16 * k)) & 0xFFFFu);
                    data[base + k] = r >= t ? keep : 0.0f;
                }
            }
        });
        *out = new at::Tensor(mask);
    });
}

void ganaug_free_error(char* message) { std::free(message); }

}  // extern "C"
