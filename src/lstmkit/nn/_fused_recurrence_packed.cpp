// The second half of lstmkit's fused CPU recurrence: fused_recurrence.source() appends this file to
// _fused_recurrence.cpp (one translation unit, inside its anonymous namespace), so it uses that
// file's helpers; it ends with the op registration of both halves.

// -- packed sequences (lengths=, plain LSTM) ---------------------------------------------------
// Rows sorted longest first and stored step after step with no padding, as torch's
// PackedSequence: step t holds batch_sizes[t] rows from row offset[t]. The input product is
// fused into the recurrent one: each step multiplies [x_t | h_{t-1}] (n, D + H) by
// [W_ih | W_hh]^T, so no (T, B, 4H) input projection is made, and in the backward the input
// gradient comes from the same product; the weight gradient is one product over the valid rows.

std::vector<int64_t> offsets_of(const int64_t* bs, int64_t T) {
    std::vector<int64_t> off(T + 1, 0);
    for (int64_t t = 0; t < T; ++t) off[t + 1] = off[t] + bs[t];
    return off;
}

// out_index: N int64 row numbers in [0, rows).
const int64_t* index_ptr(const OptT& index, int64_t N, int64_t rows) {
    if (!on(index)) return nullptr;
    TORCH_CHECK(index->scalar_type() == at::kLong && index->is_contiguous() && index->numel() == N,
                "lstmkit packed recurrence: out_index must be a contiguous int64 tensor of N entries");
    const int64_t* p = index->data_ptr<int64_t>();
    for (int64_t r = 0; r < N; ++r)
        TORCH_CHECK(p[r] >= 0 && p[r] < rows, "lstmkit packed recurrence: out_index out of range");
    return p;
}

template <typename T>
std::vector<Tensor> packed_forward_impl(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_cat,
                                        const OptT& bias, const Tensor& bs_, bool save, int64_t small_rows,
                                        const OptT& out_index, int64_t out_rows) {
    const int64_t N = x.size(0), D = x.size(1), B = h0.size(0), H = h0.size(1), G = 4 * H, K = D + H;
    const int64_t Ts = bs_.numel();
    const int64_t* bs = batch_sizes_ptr(bs_, Ts);
    const std::vector<int64_t> off = offsets_of(bs, Ts);
    TORCH_CHECK(off[Ts] == N && (Ts == 0 || bs[0] <= B) && w_cat.size(0) == G && w_cat.size(1) == K,
                "lstmkit packed recurrence: sizes do not match batch_sizes");
    auto opt = x.options();
    const T* bp = ptr<T>(bias);
    // out_index (N,): the output row of each packed row in a zero-padded (out_rows, H) output, written
    // here instead of a packed (N, H) one that the caller would scatter (lengths=, last layer).
    const int64_t* oi = index_ptr(out_index, N, out_rows);
    Tensor out = oi ? at::zeros({out_rows, H}, opt) : at::empty({N, H}, opt);
    Tensor hst = h0.clone(), cst = c0.clone();
    Tensor xh = at::empty({save ? N : 2 * B, K}, opt), acts = at::empty({save ? N : B, G}, opt);
    Tensor cs = save ? at::empty({N, H}, opt) : Tensor(), tcs = at::empty({save ? N : B, H}, opt);
    const Tensor w_t = w_cat.t();
    if (small_rows < 0) small_rows = MM_SMALL_ROWS;  // the build's own threshold
    std::optional<Panels<T>> panels;  // steps with at most small_rows rows: the small-row product
    if (small_rows > 0) panels.emplace(w_t, bp);
    Window w_xh(xh, K), w_act(acts, G);
    const T* xp = x.data_ptr<T>();
    T *outp = out.data_ptr<T>(), *hp = hst.data_ptr<T>(), *cp = cst.data_ptr<T>(), *xhp = xh.data_ptr<T>();
    T *actp = acts.data_ptr<T>(), *csp = save ? cs.data_ptr<T>() : nullptr, *tcp = tcs.data_ptr<T>();
    auto xrow = [&](int64_t t) { return save ? off[t] : (t & 1) * B; };
    auto srow = [&](int64_t t) { return save ? off[t] : int64_t(0); };
    if (Ts > 0) {
        for (int64_t b = 0; b < bs[0]; ++b) {
            T* r = xhp + (xrow(0) + b) * K;
            std::memcpy(r, xp + b * D, D * sizeof(T));
            std::memcpy(r + D, hp + b * H, H * sizeof(T));
        }
    }
    for (int64_t t = 0; t < Ts; ++t) {
        const int64_t n = bs[t];
        if (n == 0) continue;
        const int64_t nn = t + 1 < Ts ? bs[t + 1] : 0;
        T* act = actp + srow(t) * G;
        if (n <= small_rows) {
            small_mm<T>(n, xhp + xrow(t) * K, K, *panels, act, G);
        } else if (bp) {
            Tensor& z = w_act.at(srow(t), n);
            for (int64_t b = 0; b < n; ++b) std::memcpy(act + b * G, bp, G * sizeof(T));
            addmm_into(z, z, w_xh.at(xrow(t), n), w_t);
        } else {
            mm_into(w_act.at(srow(t), n), w_xh.at(xrow(t), n), w_t);
        }
        T* xh_next = xhp + (t + 1 < Ts ? xrow(t + 1) : 0) * K;
        const T* x_next = xp + (t + 1 < Ts ? off[t + 1] : 0) * D;
        rows(n, G, [&](int64_t b) {
            T* a = act + b * G;
            T* c = cp + b * H;
            T* tr = tcp + (srow(t) + b) * H;
            for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigm(a[j]);
            for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);
            for (int64_t j = 3 * H; j < G; ++j) a[j] = sigm(a[j]);
            for (int64_t j = 0; j < H; ++j) c[j] = a[H + j] * c[j] + a[j] * a[2 * H + j];
            for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(c[j]);
            T* h = hp + b * H;
            const T* o = a + 3 * H;
            for (int64_t j = 0; j < H; ++j) h[j] = o[j] * tr[j];
            std::memcpy(outp + (oi ? oi[off[t] + b] : off[t] + b) * H, h, H * sizeof(T));
            if (save) std::memcpy(csp + (off[t] + b) * H, c, H * sizeof(T));
            if (b < nn) {
                std::memcpy(xh_next + b * K, x_next + b * D, D * sizeof(T));
                std::memcpy(xh_next + b * K + D, h, H * sizeof(T));
            }
        });
    }
    std::vector<Tensor> result{out, hst, cst};
    if (save) result.insert(result.end(), {xh, acts, cs, tcs});
    return result;
}

// One row of one step of the backward: the gate gradients dz (4H) from d h (the running d h plus
// the output's gradient) and the running d c, which it updates. A function of its own with
// __restrict arguments: inline in the step loop GCC left it scalar.
template <typename T>
void packed_backward_row(const T* __restrict a, const T* __restrict tc, const T* __restrict c_prev,
                         const T* __restrict go, const T* __restrict dq, T* __restrict dcr, T* __restrict dzr,
                         int64_t H) {
    const T* __restrict o = a + 3 * H;
    for (int64_t j = 0; j < H; ++j) {
        const T d = dq[j] + go[j];
        const T dqo = d * o[j];
        const T dn = (dqo - (dqo * tc[j]) * tc[j]) + dcr[j];
        dzr[3 * H + j] = (d * tc[j]) * (o[j] - o[j] * o[j]);
        const T i = a[j], f = a[H + j], g = a[2 * H + j];
        dzr[j] = (dn * g) * (i - i * i);
        dzr[H + j] = (dn * c_prev[j]) * (f - f * f);
        dzr[2 * H + j] = (dn * i) * (T(1) - g * g);
        dcr[j] = dn * f;
    }
}

template <typename T>
std::vector<Tensor> packed_backward_impl(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT,
                                         const Tensor& c0, const Tensor& xh, const Tensor& acts, const Tensor& cs,
                                         const Tensor& tcs, const Tensor& w_cat, const Tensor& bs_,
                                         int64_t small_rows, const OptT& out_index) {
    const int64_t N = acts.size(0), G = acts.size(1), H = G / 4, K = xh.size(1), D = K - H, B = c0.size(0);
    const int64_t Ts = bs_.numel();
    const int64_t* bs = batch_sizes_ptr(bs_, Ts);
    const std::vector<int64_t> off = offsets_of(bs, Ts);
    auto opt = acts.options();
    Tensor dz = at::empty({N, G}, opt);
    Tensor dh = d_hT.contiguous().clone(), dc = d_cT.contiguous().clone();
    const Tensor dout = d_out.contiguous(), w_hh = w_cat.narrow(1, D, H);
    const int64_t* oi = index_ptr(out_index, N, dout.size(0));  // d_out is then the padded output's gradient
    TORCH_CHECK(dout.dim() == 2 && dout.size(1) == H && (oi || dout.size(0) == N),
                "lstmkit packed recurrence: d_out must be (N, H), or (rows, H) with out_index");
    if (small_rows < 0) small_rows = MM_SMALL_ROWS;
    std::optional<Panels<T>> panels;
    if (small_rows > 0) panels.emplace(w_hh, nullptr);
    Window w_dz(dz, G), w_dh(dh, H);
    const T *doutp = dout.data_ptr<T>(), *actp = acts.data_ptr<T>(), *csp = cs.data_ptr<T>();
    const T *tcp = tcs.data_ptr<T>(), *c0p = c0.data_ptr<T>();
    T *dzp = dz.data_ptr<T>(), *dhb = dh.data_ptr<T>(), *dcb = dc.data_ptr<T>();
    for (int64_t t = Ts - 1; t >= 0; --t) {
        const int64_t n = bs[t];
        if (n == 0) continue;
        const int64_t o0 = off[t];
        rows(n, G, [&](int64_t b) {
            const int64_t r = o0 + b;
            packed_backward_row<T>(actp + r * G, tcp + r * H, t > 0 ? csp + (off[t - 1] + b) * H : c0p + b * H,
                                   doutp + (oi ? oi[r] : r) * H, dhb + b * H, dcb + b * H, dzp + r * G, H);
        });
        if (n <= small_rows)  // d h_{t-1} = dz_t W_hh, into the running buffer
            small_mm<T>(n, dzp + o0 * G, G, *panels, dhb, H);
        else
            mm_into(w_dh.at(0, n), w_dz.at(o0, n), w_hh);
    }
    // d x = dz W_ih for all rows at once, as (W_ih^T dz^T)^T: the product with few outputs (D) is
    // fast in this orientation (as in inputs._Projection).
    Tensor dx = w_cat.narrow(1, 0, D).t().mm(dz.t()).t();
    // d W = dz^T xh, made as (xh^T dz)^T: MKL runs this orientation ~15% faster here (Zen 4)
    Tensor d_w = xh.t().mm(dz).t().contiguous();
    Tensor d_b = dz.sum(0);
    return {dx, dh, dc, d_w, d_b};
}

std::vector<Tensor> packed_forward(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_cat,
                                   const OptT& bias, const Tensor& batch_sizes, bool save, int64_t small_rows,
                                   const OptT& out_index, int64_t out_rows) {
    TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && h0.dim() == 2 && c0.dim() == 2,
                "lstmkit packed recurrence: CPU tensors x (N, D), h0 and c0 (B, H)");
    TORCH_CHECK(x.is_contiguous() && h0.is_contiguous() && c0.is_contiguous() && w_cat.is_contiguous() &&
                (!on(bias) || bias->is_contiguous()), "lstmkit packed recurrence: inputs must be contiguous");
    at::NoGradGuard no_grad;
    std::vector<Tensor> out;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmkit_packed_forward", [&] {
        out = packed_forward_impl<scalar_t>(x, h0, c0, w_cat, bias, batch_sizes, save, small_rows, out_index,
                                            out_rows);
    });
    return out;
}

std::vector<Tensor> packed_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT, const Tensor& c0,
                                    std::vector<Tensor> saved, const Tensor& w_cat, const Tensor& batch_sizes,
                                    int64_t small_rows, const OptT& out_index) {
    TORCH_CHECK(saved.size() == 4, "lstmkit packed recurrence: backward needs the 4 saved tensors");
    at::NoGradGuard no_grad;
    std::vector<Tensor> out;
    AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "lstmkit_packed_backward", [&] {
        out = packed_backward_impl<scalar_t>(d_out, d_hT, d_cT, c0.contiguous(), saved[0], saved[1], saved[2],
                                             saved[3], w_cat, batch_sizes, small_rows, out_index);
    });
    return out;
}

void check_inputs(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh) {
    TORCH_CHECK(xp.device().is_cpu(), "lstmkit fused recurrence: CPU tensors only");
    TORCH_CHECK(xp.dim() == 3 && xp.size(2) % 4 == 0, "lstmkit fused recurrence: xp must be (T, B, 4H)");
    TORCH_CHECK(xp.is_contiguous() && h0.is_contiguous() && c0.is_contiguous() && w_hh.is_contiguous(),
                "lstmkit fused recurrence: xp, h0, c0 and weight_hh must be contiguous");
}

std::vector<Tensor> fused_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                  const OptT& w_hr, const OptT& peep, const OptT& lnh_w, const OptT& lnh_b,
                                  const OptT& lnc_w, const OptT& lnc_b, const OptT& u_c, const OptT& u_h,
                                  const OptT& valid, const OptT& m_rec, const OptT& batch_sizes, const OptT& lni_w,
                                  const OptT& lni_b, bool save) {
    check_inputs(xp, h0, c0, w_hh);
    at::NoGradGuard no_grad;
    std::vector<Tensor> out;
    AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lstmkit_fused_forward", [&] {
        out = forward_impl<scalar_t>(xp, h0, c0, w_hh, w_hr, peep, lnh_w, lnh_b, lnc_w, lnc_b, u_c, u_h, valid,
                                     m_rec, batch_sizes, lni_w, lni_b, save);
    });
    return out;
}

std::vector<Tensor> fused_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT,
                                   std::vector<Tensor> saved, const Tensor& w_hh, const OptT& w_hr,
                                   const OptT& peep, const OptT& lnh_w, const OptT& lnc_w, const OptT& u_c,
                                   const OptT& u_h, const OptT& valid, const OptT& m_rec,
                                   const OptT& batch_sizes) {
    TORCH_CHECK(saved.size() == 9, "lstmkit fused recurrence: backward needs the 9 saved tensors");
    at::NoGradGuard no_grad;
    std::vector<Tensor> out;
    AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "lstmkit_fused_backward", [&] {
        out = backward_impl<scalar_t>(d_out, d_hT, d_cT, saved, w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h, valid,
                                      m_rec, batch_sizes);
    });
    return out;
}

// init (N,) + a (n, Kd) w (Kd, N) on the small-row product alone, for the tests.
Tensor small_product(const Tensor& a, const Tensor& w, const OptT& init) {
    TORCH_CHECK(a.device().is_cpu() && a.dim() == 2 && w.dim() == 2 && a.size(1) == w.size(0) &&
                a.scalar_type() == w.scalar_type() && (!on(init) || (init->numel() == w.size(1) &&
                init->scalar_type() == a.scalar_type())), "lstmkit small_product: a (n, Kd), w (Kd, N), init (N,)");
    const Tensor ac = a.contiguous(), ic = on(init) ? init->contiguous() : Tensor();
    Tensor out = at::empty({a.size(0), w.size(1)}, a.options());
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lstmkit_small_product", [&] {
        const Panels<scalar_t> panels(w, on(init) ? ic.data_ptr<scalar_t>() : nullptr);
        small_mm<scalar_t>(a.size(0), ac.data_ptr<scalar_t>(), a.size(1), panels, out.data_ptr<scalar_t>(), w.size(1));
    });
    return out;
}

int64_t abi_version() { return ABI_VERSION; }

}  // namespace

TORCH_LIBRARY(LIBRARY_NAME, m) {
    m.def("abi_version() -> int", &abi_version);
    m.def("forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, Tensor? peep, Tensor? lnh_w, "
          "Tensor? lnh_b, Tensor? lnc_w, Tensor? lnc_b, Tensor? u_c, Tensor? u_h, Tensor? valid, Tensor? m_rec, "
          "Tensor? batch_sizes, Tensor? lni_w, Tensor? lni_b, bool save) -> Tensor[]",
          &fused_forward);
    m.def("backward(Tensor d_out, Tensor d_hT, Tensor d_cT, Tensor[] saved, Tensor w_hh, Tensor? w_hr, "
          "Tensor? peep, Tensor? lnh_w, Tensor? lnc_w, Tensor? u_c, Tensor? u_h, Tensor? valid, Tensor? m_rec, "
          "Tensor? batch_sizes) -> Tensor[]",
          &fused_backward);
    m.def("packed_forward(Tensor x, Tensor h0, Tensor c0, Tensor w_cat, Tensor? bias, Tensor batch_sizes, bool save, "
          "int small_rows, Tensor? out_index, int out_rows) -> Tensor[]", &packed_forward);
    m.def("small_product(Tensor a, Tensor w, Tensor? init) -> Tensor", &small_product);
    m.def("packed_backward(Tensor d_out, Tensor d_hT, Tensor d_cT, Tensor c0, Tensor[] saved, Tensor w_cat, "
          "Tensor batch_sizes, int small_rows, Tensor? out_index) -> Tensor[]", &packed_backward);
}
