// lstmkit's fused CPU recurrence: the whole-sequence LSTM loop of recurrence.py (same equations,
// same arguments) in one compiled forward and one compiled backward. See fused_recurrence.py for
// the build, the cache and the autograd wrapper. The packed (lengths=) path and the op registration
// follow in _fused_recurrence_packed.cpp, appended to this file into one translation unit.
//
// Per step the recurrent matrix products go through ATen's CPU kernels (at::cpu::addmm_out /
// mm_out: MKL or oneDNN, no dispatcher); everything element-wise (gates, peepholes, layer norm,
// zoneout, the recurrent dropout mask, padding) is one pass over each row in this file.
// Parameter gradients are single products / reductions over all steps at the end.
//
// batch_sizes (optional, int64 (T,)): rows b >= batch_sizes[t] are finished at step t (the rows
// are sorted by length, longest first): their state is carried unchanged, their output is zero
// and nothing flows into their gate pre-activations. The matrix products run on the active rows
// only, which is what makes padded batches cheap.
#include <ATen/ATen.h>
#include <ATen/CPUFunctions.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

namespace {

using at::Tensor;
using OptT = std::optional<Tensor>;

constexpr double LN_EPS = 1e-5;

bool on(const OptT& t) { return t.has_value() && t->defined(); }

// e^x = s (1 + q) for x <= 0, as in _stream_kernel.c: branch-free so that the gate loops vectorise.
inline void exp_parts(float x, float& s, float& q) {
    x = x < -87.0f ? -87.0f : x;
    const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    q = r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
        + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const int32_t bits = ((int32_t)k + 127) << 23;
    std::memcpy(&s, &bits, sizeof bits);
}

inline void exp_parts(double x, double& s, double& q) {
    x = x < -708.0 ? -708.0 : x;
    const double k = (x * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    const double r = (x - k * 6.93145751953125e-1) - k * 1.42860682030941723212e-6;
    q = r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
        + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800
        + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))))));
    const int64_t bits = ((int64_t)(int32_t)k + 1023) << 52;
    std::memcpy(&s, &bits, sizeof bits);
}

template <typename T>
inline T sigm(T z) {
    T s, q;
    exp_parts(z < 0 ? z : -z, s, q);
    const T e = s + s * q;  // e^-|z|
    return (z < 0 ? e : T(1)) / (T(1) + e);
}

template <typename T>
inline T tanh_(T z) {
    T s, q;
    exp_parts(z < 0 ? 2 * z : -2 * z, s, q);
    const T m = (s - 1) + s * q;  // expm1(-2|z|)
    const T t = -m / (2 + m);
    return z < 0 ? -t : t;
}

template <typename T>
inline T lerp(T a, T b, T w) {  // torch.lerp's formula, so both paths round alike
    return (w < T(0.5) && w > T(-0.5)) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// A (T, B, K) tensor that may be broadcast (stride 0) along any axis.
template <typename T>
struct View3 {
    const T* p = nullptr;
    int64_t st = 0, sb = 0, sk = 0;
    View3() = default;
    explicit View3(const OptT& x) {
        if (on(x)) {
            TORCH_CHECK(x->dim() == 3, "lstmkit fused recurrence: masks must be 3-D");
            if (x->scalar_type() == at::kByte)
                p8 = x->data_ptr<uint8_t>();  // 0/1 zoneout masks (forward only): select, no conversion
            else
                p = x->data_ptr<T>();
            st = x->stride(0), sb = x->stride(1), sk = x->stride(2);
        }
    }
    const uint8_t* p8 = nullptr;
    const T* at(int64_t t, int64_t b) const { return p + t * st + b * sb; }
    const uint8_t* at8(int64_t t, int64_t b) const { return p8 + t * st + b * sb; }
};

template <typename T>
const T* ptr(const OptT& t) { return on(t) ? t->data_ptr<T>() : nullptr; }

// Sums in P interleaved partial sums, so that they vectorise and, with several vectors of
// partials, do not wait on one add chain (a row of 4H = 256 floats is then 2 dependent adds deep).
constexpr int P = 32;

template <typename T>
inline T fold(const T* part) {
    T s[8];
    for (int k = 0; k < 8; ++k) s[k] = (part[k] + part[k + 8]) + (part[k + 16] + part[k + 24]);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Sum of x[j] (y = nullptr) or of x[j] * y[j].
template <typename T>
inline T dot(const T* x, const T* y, int64_t n) {
    T part[P] = {};
    int64_t j = 0;
    if (y) {
        for (; j + P <= n; j += P)
            for (int k = 0; k < P; ++k) part[k] += x[j + k] * y[j + k];
    } else {
        for (; j + P <= n; j += P)
            for (int k = 0; k < P; ++k) part[k] += x[j + k];
    }
    T s = fold(part);
    for (; j < n; ++j) s += y ? x[j] * y[j] : x[j];
    return s;
}

// Row-wise layer norm statistics of x[0..n): mean and 1 / sqrt(var + eps) (biased variance).
template <typename T>
inline void row_stats(const T* x, int64_t n, T& mean, T& rstd) {
    mean = dot<T>(x, nullptr, n) / T(n);
    T part[P] = {};
    int64_t j = 0;
    for (; j + P <= n; j += P)
        for (int k = 0; k < P; ++k) part[k] += (x[j + k] - mean) * (x[j + k] - mean);
    T v = fold(part);
    for (; j < n; ++j) v += (x[j] - mean) * (x[j] - mean);
    rstd = T(1) / std::sqrt(v / T(n) + T(LN_EPS));
}

template <typename T>
inline void ln_backward_row(T* g, const T* xhat, const T* w, T rstd, int64_t n) {
    for (int64_t j = 0; j < n; ++j) g[j] *= w[j];
    const T m1 = dot<T>(g, nullptr, n) / T(n), m2 = dot<T>(g, xhat, n) / T(n);
    for (int64_t j = 0; j < n; ++j) g[j] = rstd * (g[j] - m1 - xhat[j] * m2);
}

// at::cpu::* skip the dispatcher; their out argument must be an lvalue.
inline void mm_into(Tensor out, const Tensor& a, const Tensor& b) { at::cpu::mm_out(out, a, b); }
inline void addmm_into(Tensor out, const Tensor& c, const Tensor& a, const Tensor& b) { at::cpu::addmm_out(out, c, a, b); }

// A (rows, cols) window onto a contiguous buffer, moved each step by rewriting its offset and
// size instead of building new view tensors (select/narrow cost ~1 us each, per step).
struct Window {
    Tensor t;
    int64_t cols;
    Window() = default;
    Window(const Tensor& base, int64_t cols_) : t(base.as_strided({1, cols_}, {cols_, 1}, 0)), cols(cols_) {}
    Tensor& at(int64_t row0, int64_t n) {  // rows row0 .. row0 + n of the buffer seen as (*, cols)
        const int64_t sizes[2] = {n, cols}, strides[2] = {cols, 1};
        t.unsafeGetTensorImpl()->set_sizes_and_strides(c10::IntArrayRef(sizes, 2), c10::IntArrayRef(strides, 2),
                                                       std::optional<int64_t>(row0 * cols));
        return t;
    }
};

template <typename F>
inline void rows(int64_t n, int64_t width, const F& f) {
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width));
    at::parallel_for(0, n, grain, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) f(b);
    });
}

struct Sizes {
    int64_t T, B, G, H, R;
};

const int64_t* batch_sizes_ptr(const OptT& bs, int64_t T) {
    if (!on(bs)) return nullptr;
    TORCH_CHECK(bs->scalar_type() == at::kLong && bs->is_contiguous() && bs->numel() == T,
                "lstmkit fused recurrence: batch_sizes must be a contiguous int64 tensor of T entries");
    return bs->data_ptr<int64_t>();
}

template <typename T>
std::vector<Tensor> forward_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                 const OptT& w_hr, const OptT& peep, const OptT& lnh_w, const OptT& lnh_b,
                                 const OptT& lnc_w, const OptT& lnc_b, const OptT& u_c_, const OptT& u_h_,
                                 const OptT& valid_, const OptT& m_rec_, const OptT& bs_, const OptT& lni_w,
                                 const OptT& lni_b, bool save) {
    const Sizes S{xp.size(0), xp.size(1), xp.size(2), xp.size(2) / 4, h0.size(1)};
    // lni_w/lni_b (inference only): xp holds W_ih x without biases and each row is layer-normed
    // here, LN(xp_t) * lni_w + lni_b, instead of in a separate pass over the whole (T, B, 4H) tensor.
    const T *gi = ptr<T>(lni_w), *bi = ptr<T>(lni_b);
    TORCH_CHECK(!gi || (!save && on(lnh_w) && bi), "lstmkit fused recurrence: lni_w needs layer norm, lni_b and save=False");
    const int64_t H = S.H, G = S.G, R = S.R, B = S.B;
    const bool proj = on(w_hr), ln = on(lnh_w);
    const T* pe = ptr<T>(peep);
    const T *gh = ptr<T>(lnh_w), *bh = ptr<T>(lnh_b), *gc = ptr<T>(lnc_w), *bc = ptr<T>(lnc_b);
    const T* mrec = ptr<T>(m_rec_);
    const View3<T> u_c(u_c_), u_h(u_h_), valid(valid_);
    const int64_t* bs = batch_sizes_ptr(bs_, S.T);
    auto opt = xp.options();
    const int64_t slots = save ? S.T : 1;
    Tensor out = at::empty({S.T, B, R}, opt);
    Tensor hs = at::empty({save ? S.T + 1 : 2, B, R}, opt), cs = at::empty({save ? S.T + 1 : 2, B, H}, opt);
    hs[0].copy_(h0);
    cs[0].copy_(c0);
    Tensor acts = at::empty({slots, B, G}, opt), tcs = at::empty({slots, B, H}, opt);
    Tensor zhat, rh, nhat, rc, raw, qs, rbuf;
    if (ln) {
        zhat = at::empty({slots, B, G}, opt), rh = at::empty({slots, B}, opt);
        nhat = at::empty({slots, B, H}, opt), rc = at::empty({slots, B}, opt);
        raw = at::empty({B, G}, opt);
    }
    if (proj) qs = at::empty({slots, B, H}, opt);
    if (mrec) rbuf = at::empty({B, R}, opt);
    const Tensor w_hh_t = w_hh.t();
    const Tensor w_hr_t = proj ? w_hr->t() : Tensor();
    Window w_act(acts, G), w_hs(hs, R), w_rb, w_raw, w_q;
    if (mrec) w_rb = Window(rbuf, R);
    if (ln) w_raw = Window(raw, G);
    if (proj) w_q = Window(qs, H);
    const T* xpp = xp.data_ptr<T>();
    T *outp = out.data_ptr<T>(), *hsp = hs.data_ptr<T>(), *csp = cs.data_ptr<T>();
    T *actp = acts.data_ptr<T>(), *tcp = tcs.data_ptr<T>();
    T* qp = proj ? qs.data_ptr<T>() : nullptr;
    T *zhp = ln ? zhat.data_ptr<T>() : nullptr, *rhp = ln ? rh.data_ptr<T>() : nullptr;
    T *nhp = ln ? nhat.data_ptr<T>() : nullptr, *rcp = ln ? rc.data_ptr<T>() : nullptr;
    T* rawp = ln ? raw.data_ptr<T>() : nullptr;
    T* rbp = mrec ? rbuf.data_ptr<T>() : nullptr;

    for (int64_t t = 0; t < S.T; ++t) {
        const int64_t n = bs ? bs[t] : B;
        const int64_t sl = save ? t : 0, ip = save ? t : (t & 1), in = save ? t + 1 : ((t + 1) & 1);
        T *hp = hsp + ip * B * R, *hn = hsp + in * B * R, *cp = csp + ip * B * H, *cn = csp + in * B * H;
        T *act = actp + sl * B * G, *tc = tcp + sl * B * H, *q = proj ? qp + sl * B * H : nullptr;
        T* o_t = outp + t * B * R;
        if (n > 0) {
            Tensor* r = &w_hs.at(ip * B, n);
            if (mrec) {
                rows(n, R, [&](int64_t b) {
                    for (int64_t j = 0; j < R; ++j) rbp[b * R + j] = hp[b * R + j] * mrec[b * R + j];
                });
                r = &w_rb.at(0, n);
            }
            if (!ln) {  // z = xp_t + r W_hh^T, accumulated in place
                std::memcpy(act, xpp + t * B * G, n * G * sizeof(T));
                Tensor& z = w_act.at(sl * B, n);
                addmm_into(z, z, *r, w_hh_t);
            } else {
                mm_into(w_raw.at(0, n), *r, w_hh_t);
                rows(n, G, [&](int64_t b) {
                    const T* x = rawp + b * G;
                    T mean, rstd;
                    row_stats(x, G, mean, rstd);
                    T* zh = zhp + (sl * B + b) * G;
                    T* zr = act + b * G;
                    const T* xr = xpp + (t * B + b) * G;
                    for (int64_t j = 0; j < G; ++j) zh[j] = (x[j] - mean) * rstd;
                    if (gi) {
                        T mi, ri;
                        row_stats(xr, G, mi, ri);
                        for (int64_t j = 0; j < G; ++j) zr[j] = (zh[j] * gh[j] + bh[j]) + ((xr[j] - mi) * ri * gi[j] + bi[j]);
                    } else {
                        for (int64_t j = 0; j < G; ++j) zr[j] = (zh[j] * gh[j] + bh[j]) + xr[j];
                    }
                    rhp[sl * B + b] = rstd;
                });
            }
            rows(n, G, [&](int64_t b) {
                T* a = act + b * G;
                const T* c0r = cp + b * H;
                T* c1r = cn + b * H;
                if (pe) {
                    for (int64_t j = 0; j < H; ++j) {
                        a[j] += pe[j] * c0r[j];
                        a[H + j] += pe[H + j] * c0r[j];
                    }
                }
                for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigm(a[j]);
                for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);
                for (int64_t j = 0; j < H; ++j) c1r[j] = a[H + j] * c0r[j] + a[j] * a[2 * H + j];
                if (u_c.p) {
                    const T* u = u_c.at(t, b);
                    for (int64_t j = 0; j < H; ++j) c1r[j] = lerp(c0r[j], c1r[j], u[j * u_c.sk]);
                } else if (u_c.p8) {  // lerp with a weight of exactly 0 or 1
                    const uint8_t* u = u_c.at8(t, b);
                    for (int64_t j = 0; j < H; ++j) c1r[j] = u[j * u_c.sk] ? c1r[j] : c0r[j];
                }
                if (pe) {
                    for (int64_t j = 0; j < H; ++j) a[3 * H + j] += pe[2 * H + j] * c1r[j];
                }
                for (int64_t j = 3 * H; j < G; ++j) a[j] = sigm(a[j]);
                T* tr = tc + b * H;
                if (gc) {
                    T mean, rstd;
                    row_stats(c1r, H, mean, rstd);
                    T* nh = save ? nhp + (sl * B + b) * H : tr;
                    for (int64_t j = 0; j < H; ++j) nh[j] = (c1r[j] - mean) * rstd;
                    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(nh[j] * gc[j] + bc[j]);
                    rcp[sl * B + b] = rstd;
                } else {
                    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(c1r[j]);
                }
                const T* o = a + 3 * H;
                T* dst = proj ? q + b * H : hn + b * R;
                for (int64_t j = 0; j < H; ++j) dst[j] = o[j] * tr[j];
            });
            if (proj) {
                Tensor& qv = w_q.at(sl * B, n);
                mm_into(w_hs.at(in * B, n), qv, w_hr_t);
            }
            rows(n, R, [&](int64_t b) {
                T* h1 = hn + b * R;
                const T* h0r = hp + b * R;
                if (u_h.p) {
                    const T* u = u_h.at(t, b);
                    for (int64_t j = 0; j < R; ++j) h1[j] = lerp(h0r[j], h1[j], u[j * u_h.sk]);
                } else if (u_h.p8) {
                    const uint8_t* u = u_h.at8(t, b);
                    for (int64_t j = 0; j < R; ++j) h1[j] = u[j * u_h.sk] ? h1[j] : h0r[j];
                }
                T* y = o_t + b * R;
                if (valid.p) {
                    const T v = *valid.at(t, b);
                    for (int64_t j = 0; j < R; ++j) y[j] = h1[j] * v;
                } else {
                    std::memcpy(y, h1, R * sizeof(T));
                }
            });
        }
        for (int64_t b = n; b < B; ++b) {  // finished rows: carry the state, output zero
            std::memcpy(hn + b * R, hp + b * R, R * sizeof(T));
            std::memcpy(cn + b * H, cp + b * H, H * sizeof(T));
            std::memset(o_t + b * R, 0, R * sizeof(T));
            if (save) {  // what the backward's reductions read over all rows must be finite
                if (proj) std::memset(q + b * H, 0, H * sizeof(T));
                if (ln) {
                    std::memset(zhp + (sl * B + b) * G, 0, G * sizeof(T));
                    std::memset(nhp + (sl * B + b) * H, 0, H * sizeof(T));
                }
            }
        }
    }
    const int64_t last = save ? S.T : (S.T & 1);
    std::vector<Tensor> result{out, hs[last].clone(), cs[last].clone()};
    if (save) {
        Tensor none = at::empty({0}, opt);
        for (const Tensor& t : {hs, cs, acts, tcs, ln ? zhat : none, ln ? rh : none, ln ? nhat : none,
                                ln ? rc : none, proj ? qs : none})
            result.push_back(t);
    }
    return result;
}

template <typename T>
std::vector<Tensor> backward_impl(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT,
                                  const std::vector<Tensor>& saved, const Tensor& w_hh, const OptT& w_hr,
                                  const OptT& peep, const OptT& lnh_w, const OptT& lnc_w, const OptT& u_c_,
                                  const OptT& u_h_, const OptT& valid_, const OptT& m_rec_, const OptT& bs_) {
    const Tensor &hs = saved[0], &cs = saved[1], &acts = saved[2], &tcs = saved[3];
    const Tensor &zhat = saved[4], &rh = saved[5], &nhat = saved[6], &rc = saved[7], &qs = saved[8];
    const Sizes S{acts.size(0), acts.size(1), acts.size(2), acts.size(2) / 4, hs.size(2)};
    const int64_t H = S.H, G = S.G, R = S.R, B = S.B;
    const bool proj = on(w_hr), ln = on(lnh_w);
    const T* pe = ptr<T>(peep);
    const T *gh = ptr<T>(lnh_w), *gc = ptr<T>(lnc_w);
    const T* mrec = ptr<T>(m_rec_);
    const View3<T> u_c(u_c_), u_h(u_h_), valid(valid_);
    TORCH_CHECK(!u_c.p8 && !u_h.p8 && !valid.p8, "lstmkit fused recurrence: 0/1 byte masks are for the forward only");
    const int64_t* bs = batch_sizes_ptr(bs_, S.T);
    auto opt = acts.options();
    Tensor dz = at::empty({S.T, B, G}, opt);
    Tensor dhp = ln ? at::empty({S.T, B, G}, opt) : dz;
    Tensor dht = proj ? at::empty({S.T, B, R}, opt) : Tensor();
    Tensor dcn = ln ? at::empty({S.T, B, H}, opt) : Tensor();
    Tensor dh = d_hT.contiguous().clone(), dc = d_cT.contiguous().clone();
    Tensor carry = at::empty({B, R}, opt), dhn = at::empty({B, R}, opt), dq = at::empty({B, H}, opt);
    Tensor dnb = at::empty({B, H}, opt), tmp = at::empty({B, R}, opt);
    const Tensor dout = d_out.contiguous();
    Window w_dq(dq, H), w_tmp(tmp, R), w_dhp(dhp, G), w_dht;
    if (proj) w_dht = Window(dht, R);
    const T *doutp = dout.data_ptr<T>(), *hsp = hs.data_ptr<T>(), *csp = cs.data_ptr<T>();
    const T *actp = acts.data_ptr<T>(), *tcp = tcs.data_ptr<T>();
    const T *zhp = ln ? zhat.data_ptr<T>() : nullptr, *rhp = ln ? rh.data_ptr<T>() : nullptr;
    const T *nhp = ln ? nhat.data_ptr<T>() : nullptr, *rcp = ln ? rc.data_ptr<T>() : nullptr;
    T *dzp = dz.data_ptr<T>(), *dhpp = dhp.data_ptr<T>(), *dhtp = proj ? dht.data_ptr<T>() : nullptr;
    T *dcnp = ln ? dcn.data_ptr<T>() : nullptr, *dhb = dh.data_ptr<T>(), *dcb = dc.data_ptr<T>();
    T *carp = carry.data_ptr<T>(), *dhnp = dhn.data_ptr<T>(), *dqp = dq.data_ptr<T>();
    T *dnp = dnb.data_ptr<T>(), *tmpp = tmp.data_ptr<T>();

    for (int64_t t = S.T - 1; t >= 0; --t) {
        const int64_t n = bs ? bs[t] : B;
        T* dz_t = dzp + t * B * G;
        for (int64_t b = n; b < B; ++b) {  // finished rows: no gradient into this step
            std::memset(dz_t + b * G, 0, G * sizeof(T));
            if (ln) {
                std::memset(dhpp + (t * B + b) * G, 0, G * sizeof(T));
                std::memset(dcnp + (t * B + b) * H, 0, H * sizeof(T));
            }
            if (proj) std::memset(dhtp + (t * B + b) * R, 0, R * sizeof(T));
        }
        if (n == 0) continue;
        T* dh_new = proj ? dhtp + t * B * R : dhnp;
        rows(n, R, [&](int64_t b) {
            T* d = dhb + b * R;
            const T* go = doutp + (t * B + b) * R;
            if (valid.p) {
                const T v = *valid.at(t, b);
                for (int64_t j = 0; j < R; ++j) d[j] += go[j] * v;
            } else {
                for (int64_t j = 0; j < R; ++j) d[j] += go[j];
            }
            T* dn = dh_new + b * R;
            if (u_h.p) {
                const T* u = u_h.at(t, b);
                T* ca = carp + b * R;
                for (int64_t j = 0; j < R; ++j) {
                    dn[j] = d[j] * u[j * u_h.sk];
                    ca[j] = d[j] - dn[j];
                }
            } else {
                std::memcpy(dn, d, R * sizeof(T));
            }
        });
        const T* dqs = dh_new;
        if (proj) {
            Tensor& dv = w_dht.at(t * B, n);
            mm_into(w_dq.at(0, n), dv, *w_hr);
            dqs = dqp;
        }
        rows(n, G, [&](int64_t b) {
            const T* a = actp + (t * B + b) * G;
            const T* o = a + 3 * H;
            const T* tc = tcp + (t * B + b) * H;
            const T* dqr = dqs + b * H;
            const T* c0r = csp + (t * B + b) * H;
            T* dn = dnp + b * H;
            T* dcr = dcb + b * H;
            T* dzr = dz_t + b * G;
            for (int64_t j = 0; j < H; ++j) {
                const T dqo = dqr[j] * o[j];
                dn[j] = dqo - (dqo * tc[j]) * tc[j];
            }
            if (gc) {
                std::memcpy(dcnp + (t * B + b) * H, dn, H * sizeof(T));
                ln_backward_row(dn, nhp + (t * B + b) * H, gc, rcp[t * B + b], H);
            }
            for (int64_t j = 0; j < H; ++j) {
                const T dzo = (dqr[j] * tc[j]) * (o[j] - o[j] * o[j]);
                dzr[3 * H + j] = dzo;
                dn[j] = pe ? dn[j] + dzo * pe[2 * H + j] : dn[j];
                dn[j] += dcr[j];  // dn is now dc_t
            }
            if (u_c.p) {
                const T* u = u_c.at(t, b);
                for (int64_t j = 0; j < H; ++j) {
                    const T dct = dn[j];
                    dn[j] = dct * u[j * u_c.sk];  // d c~
                    dcr[j] = dct - dn[j];  // carried past the update
                }
            } else {
                for (int64_t j = 0; j < H; ++j) dcr[j] = 0;
            }
            for (int64_t j = 0; j < H; ++j) {
                const T i = a[j], f = a[H + j], g = a[2 * H + j], d = dn[j];
                const T dzi = (d * g) * (i - i * i);
                const T dzf = (d * c0r[j]) * (f - f * f);
                dzr[j] = dzi;
                dzr[H + j] = dzf;
                dzr[2 * H + j] = (d * i) * (T(1) - g * g);
                T dcp = d * f;
                if (pe) dcp = dcp + dzi * pe[j] + dzf * pe[H + j];
                dcr[j] = dcp + dcr[j];
            }
        });
        if (ln) {
            rows(n, G, [&](int64_t b) {
                T* g = dhpp + (t * B + b) * G;
                std::memcpy(g, dz_t + b * G, G * sizeof(T));
                ln_backward_row(g, zhp + (t * B + b) * G, gh, rhp[t * B + b], G);
            });
        }
        Tensor& gv = w_dhp.at(t * B, n);
        mm_into(w_tmp.at(0, n), gv, w_hh);
        rows(n, R, [&](int64_t b) {
            T* d = dhb + b * R;
            const T* r = tmpp + b * R;
            const T* m = mrec ? mrec + b * R : nullptr;
            const T* ca = carp + b * R;
            for (int64_t j = 0; j < R; ++j) {
                T v = m ? r[j] * m[j] : r[j];
                d[j] = u_h.p ? v + ca[j] : v;
            }
        });
    }
    Tensor r_all = hs.narrow(0, 0, S.T);
    if (mrec) r_all = r_all * (*m_rec_);
    Tensor d_w_hh = dhp.reshape({S.T * B, G}).t().mm(r_all.reshape({S.T * B, R}));
    Tensor none = at::empty({0}, opt);
    Tensor d_w_hr = proj ? dht.reshape({S.T * B, R}).t().mm(qs.reshape({S.T * B, H})) : none;
    Tensor d_peep = none;
    if (pe) {
        const Tensor c_prev = cs.narrow(0, 0, S.T), c_all = cs.narrow(0, 1, S.T);
        d_peep = at::stack({(dz.narrow(2, 0, H) * c_prev).sum({0, 1}), (dz.narrow(2, H, H) * c_prev).sum({0, 1}),
                            (dz.narrow(2, 3 * H, H) * c_all).sum({0, 1})});
    }
    Tensor d_lnh_w = none, d_lnh_b = none, d_lnc_w = none, d_lnc_b = none;
    if (ln) {
        d_lnh_w = (dz * zhat).sum({0, 1}), d_lnh_b = dz.sum({0, 1});
        d_lnc_w = (dcn * nhat).sum({0, 1}), d_lnc_b = dcn.sum({0, 1});
    }
    return {dz, dh, dc, d_w_hh, d_w_hr, d_peep, d_lnh_w, d_lnh_b, d_lnc_w, d_lnc_b};
}

