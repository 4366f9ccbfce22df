/* mLSTM's recurrence in input coordinates, forward and backward: the compiled path of
   lstmkit/nn/mlstm_narrow.py (see _mlstm_kernel.py, which builds and loads it).

   A template: the part after the "typed part" line is written out twice, with REAL float and
   SFX f32, then with REAL double and SFX f64. One lane per (batch, head), N = B * NH lanes, the
   lane index innermost in every array so that the loops over lanes vectorise. Layouts
   (row-major, contiguous):
     x  (T, B, p)      the input x' (with its column of ones); lane l reads batch l / NH
     P  (T, p, N)      P_t = A_k^T A_q x'_t per lane
     ip, lf (T, N)     i~ and log f (a padded step: i~ = -inf, log f = 0)
     m0 (N)            the incoming stabiliser
   Per lane and step (G p x p, g p, alpha and m scalars; G_0 = 0, g_0 = 0, alpha_0 = 1):
     m_t = max(lf_t + m_{t-1}, ip_t),  a = e^(lf_t + m_{t-1} - m_t),  b = e^(ip_t - m_t)
     G_t = a G_{t-1} + b x' x'^T,  g_t = a g_{t-1} + b x',  alpha_t = a alpha_{t-1}
     u_t = G_t P_t,  den_t = g_t . P_t
   The backward is the reverse pass of exactly these operations; the maximum passes its
   gradient to the larger argument, half to each on a tie (as torch.maximum). */
#include <stdint.h>
#include <string.h>

int64_t lstmkit_mlstm_abi(void) { return ABI_VERSION; }

/* LSTMKIT_FAST_EXP: _fast_exp.c is put here when the source is assembled */

/* ---- typed part: REAL, SFX ---- */
/* e^z for z <= 0, exactly 0 below the exp's clamp (so e^-inf = 0: a padded step writes nothing) */
static inline REAL expz_SFX(REAL z) {
    const REAL low = sizeof(REAL) == 4 ? (REAL)-87 : (REAL)-708;
    REAL s, q;
    exp_parts_SFX(z, &s, &q);
    return z < low ? (REAL)0 : s + s * q;
}

static inline void gather_SFX(int64_t t, int64_t B, int64_t NH, int64_t p, const REAL *restrict x,
                              REAL *restrict xs) {
    const int64_t N = B * NH;
    for (int64_t i = 0; i < p; i++)
        for (int64_t b = 0; b < B; b++) {
            const REAL v = x[(t * B + b) * p + i];
            for (int64_t h = 0; h < NH; h++)
                xs[i * N + b * NH + h] = v;
        }
}

/* Outputs u (T, p, N), den, alpha, m (T, N), and the states it keeps for the backward:
   Gs (T, p, p, N), gs (T, p, N). work: (p + 2) N. */
void lstmkit_mlstm_forward_SFX(int64_t T, int64_t B, int64_t NH, int64_t p, const REAL *restrict x,
                               const REAL *restrict P, const REAL *restrict ip, const REAL *restrict lf,
                               const REAL *restrict m0, REAL *restrict u, REAL *restrict den, REAL *restrict alpha,
                               REAL *restrict m, REAL *restrict Gs, REAL *restrict gs, REAL *restrict work) {
    const int64_t N = B * NH, pp = p * p;
    REAL *xs = work, *av = xs + p * N, *bv = av + N;
    for (int64_t t = 0; t < T; t++) {
        gather_SFX(t, B, NH, p, x, xs);
        const REAL *mp = t ? m + (t - 1) * N : m0, *ipt = ip + t * N, *lft = lf + t * N, *Pt = P + t * p * N;
        REAL *mt = m + t * N, *alt = alpha + t * N;
        for (int64_t l = 0; l < N; l++) {
            const REAL A = lft[l] + mp[l], I = ipt[l];
            const REAL mn = A >= I ? A : I;
            av[l] = expz_SFX(A - mn);
            bv[l] = expz_SFX(I - mn);
            mt[l] = mn;
            alt[l] = (t ? alpha[(t - 1) * N + l] : (REAL)1) * av[l];
        }
        REAL *G = Gs + t * pp * N, *g = gs + t * p * N;
        for (int64_t i = 0; i < p; i++) {
            const REAL *xi = xs + i * N;
            for (int64_t j = 0; j < p; j++) {
                const REAL *xj = xs + j * N;
                REAL *Gij = G + (i * p + j) * N;
                if (t) {
                    const REAL *Gp = Gij - pp * N;
                    for (int64_t l = 0; l < N; l++)
                        Gij[l] = av[l] * Gp[l] + bv[l] * xi[l] * xj[l];
                } else {
                    for (int64_t l = 0; l < N; l++)
                        Gij[l] = bv[l] * xi[l] * xj[l];
                }
            }
            REAL *gi = g + i * N;
            if (t) {
                const REAL *gpi = gi - p * N;
                for (int64_t l = 0; l < N; l++)
                    gi[l] = av[l] * gpi[l] + bv[l] * xi[l];
            } else {
                for (int64_t l = 0; l < N; l++)
                    gi[l] = bv[l] * xi[l];
            }
        }
        REAL *ut = u + t * p * N, *dt = den + t * N;
        for (int64_t l = 0; l < N; l++)
            dt[l] = 0;
        for (int64_t i = 0; i < p; i++) {
            REAL *ui = ut + i * N;
            for (int64_t l = 0; l < N; l++)
                ui[l] = 0;
            for (int64_t j = 0; j < p; j++) {
                const REAL *Gij = G + (i * p + j) * N, *Pj = Pt + j * N;
                for (int64_t l = 0; l < N; l++)
                    ui[l] += Gij[l] * Pj[l];
            }
            const REAL *gi = g + i * N, *Pi = Pt + i * N;
            for (int64_t l = 0; l < N; l++)
                dt[l] += gi[l] * Pi[l];
        }
    }
}

/* From the gradients of u, den, alpha, m (each may be NULL: zero) and of the final G and g
   (dGT (p, p, N), dgT (p, N), each may be NULL): dx (T, B, p), dP (T, p, N), dip, dlf (T, N),
   dm0 (N). work: (p * p + 2 p + 6) N. */
void lstmkit_mlstm_backward_SFX(int64_t T, int64_t B, int64_t NH, int64_t p, const REAL *restrict x,
                                const REAL *restrict P, const REAL *restrict ip, const REAL *restrict lf,
                                const REAL *restrict m0, const REAL *restrict alpha, const REAL *restrict m,
                                const REAL *restrict Gs, const REAL *restrict gs, const REAL *restrict du,
                                const REAL *restrict dden, const REAL *restrict dalpha, const REAL *restrict dm,
                                const REAL *restrict dGT, const REAL *restrict dgT, REAL *restrict dx,
                                REAL *restrict dP, REAL *restrict dip, REAL *restrict dlf, REAL *restrict dm0,
                                REAL *restrict work) {
    const int64_t N = B * NH, pp = p * p;
    REAL *Gb = work, *gb = Gb + pp * N, *xs = gb + p * N, *ab = xs + p * N, *mb = ab + N;
    REAL *av = mb + N, *bv = av + N, *abar = bv + N, *bbar = abar + N;
    if (dGT)
        memcpy(Gb, dGT, pp * N * sizeof(REAL));
    else
        memset(Gb, 0, pp * N * sizeof(REAL));
    if (dgT)
        memcpy(gb, dgT, p * N * sizeof(REAL));
    else
        memset(gb, 0, p * N * sizeof(REAL));
    memset(ab, 0, 2 * N * sizeof(REAL)); /* ab, mb */
    memset(dx, 0, T * B * p * sizeof(REAL));
    for (int64_t t = T - 1; t >= 0; t--) {
        gather_SFX(t, B, NH, p, x, xs);
        const REAL *Pt = P + t * p * N, *G = Gs + t * pp * N, *g = gs + t * p * N;
        const REAL *Gp = t ? G - pp * N : NULL, *gp = t ? g - p * N : NULL;
        const REAL *mp = t ? m + (t - 1) * N : m0, *ipt = ip + t * N, *lft = lf + t * N, *mt = m + t * N;
        const REAL *dut = du ? du + t * p * N : NULL, *ddt = dden ? dden + t * N : NULL;
        /* the outputs' gradients: u = G P, den = g . P, alpha, m */
        for (int64_t l = 0; l < N; l++) {
            ab[l] += dalpha ? dalpha[t * N + l] : (REAL)0;
            mb[l] += dm ? dm[t * N + l] : (REAL)0;
        }
        REAL *dPt = dP + t * p * N;
        for (int64_t j = 0; j < p; j++) {
            REAL *dPj = dPt + j * N;
            const REAL *Pj = Pt + j * N, *gj = g + j * N;
            for (int64_t l = 0; l < N; l++)
                dPj[l] = ddt ? ddt[l] * gj[l] : (REAL)0;
            if (ddt)
                for (int64_t l = 0; l < N; l++)
                    gb[j * N + l] += ddt[l] * Pj[l];
            if (dut)
                for (int64_t i = 0; i < p; i++) {
                    const REAL *Gij = G + (i * p + j) * N, *dui = dut + i * N;
                    REAL *Gbij = Gb + (i * p + j) * N;
                    for (int64_t l = 0; l < N; l++) {
                        dPj[l] += Gij[l] * dui[l];
                        Gbij[l] += dui[l] * Pj[l];
                    }
                }
        }
        /* back through G_t = a G_{t-1} + b x x^T, g_t = a g_{t-1} + b x, alpha_t = a alpha_{t-1} */
        for (int64_t l = 0; l < N; l++) {
            const REAL A = lft[l] + mp[l], I = ipt[l];
            av[l] = expz_SFX(A - mt[l]);
            bv[l] = expz_SFX(I - mt[l]);
            abar[l] = ab[l] * (t ? alpha[(t - 1) * N + l] : (REAL)1);
            bbar[l] = 0;
        }
        for (int64_t i = 0; i < p; i++) {
            const REAL *xi = xs + i * N, *gbi = gb + i * N;
            if (t) {
                const REAL *gpi = gp + i * N;
                for (int64_t l = 0; l < N; l++)
                    abar[l] += gbi[l] * gpi[l];
            }
            for (int64_t l = 0; l < N; l++)
                bbar[l] += gbi[l] * xi[l];
            for (int64_t j = 0; j < p; j++) {
                const REAL *Gbij = Gb + (i * p + j) * N, *xj = xs + j * N;
                if (t) {
                    const REAL *Gpij = Gp + (i * p + j) * N;
                    for (int64_t l = 0; l < N; l++)
                        abar[l] += Gbij[l] * Gpij[l];
                }
                for (int64_t l = 0; l < N; l++)
                    bbar[l] += xi[l] * Gbij[l] * xj[l];
            }
        }
        /* dx' = b (Gb + Gb^T) x' + b gb, summed over the heads of each batch element */
        for (int64_t b = 0; b < B; b++) {
            REAL *dxr = dx + (t * B + b) * p;
            for (int64_t l = b * NH; l < (b + 1) * NH; l++)
                for (int64_t i = 0; i < p; i++) {
                    REAL acc = gb[i * N + l];
                    for (int64_t j = 0; j < p; j++)
                        acc += (Gb[(i * p + j) * N + l] + Gb[(j * p + i) * N + l]) * xs[j * N + l];
                    dxr[i] += bv[l] * acc;
                }
        }
        /* the exponents, then the maximum */
        REAL *dipt = dip + t * N, *dlft = dlf + t * N;
        for (int64_t l = 0; l < N; l++) {
            const REAL A = lft[l] + mp[l], I = ipt[l];
            const REAL za = abar[l] * av[l], zb = bbar[l] * bv[l];
            const REAL rest = mb[l] - za - zb; /* the gradient reaching m_t */
            const REAL toA = A > I ? rest : A < I ? (REAL)0 : rest * (REAL)0.5;
            dlft[l] = za + toA;
            dipt[l] = zb + (rest - toA);
            mb[l] = za + toA; /* m_{t-1} enters only through A */
            ab[l] *= av[l];
        }
        for (int64_t k = 0; k < pp; k++)
            for (int64_t l = 0; l < N; l++)
                Gb[k * N + l] *= av[l];
        for (int64_t k = 0; k < p; k++)
            for (int64_t l = 0; l < N; l++)
                gb[k * N + l] *= av[l];
    }
    memcpy(dm0, mb, N * sizeof(REAL));
}

/* The output gate and the map back to the heads, fused: per row r (a step of a sequence) and
   unit j of head h, out = sigmoid(A_o x'_r)_j * (sum_q Av[j, q] c[r, h, q] + extra[r, j]).
   aoT, avT (p, H) = A_o^T, A_v^T; c (R, NH, p); extra (R, H) or NULL. */
static inline REAL sigmoid_SFX(REAL z) {
    REAL s, q;
    exp_parts_SFX(z < 0 ? z : -z, &s, &q);
    const REAL e = s + s * q; /* e^-|z| */
    return (z < 0 ? e : (REAL)1) / ((REAL)1 + e);
}

/* sum_j a[j] b[j] in 32 partial sums (four independent vector chains), so that the loop
   vectorises and does not wait on one accumulator */
static inline REAL dot_SFX(int64_t n, const REAL *restrict a, const REAL *restrict b) {
    REAL acc[32] = {0};
    const int64_t full = n - n % 32;
    for (int64_t j = 0; j < full; j += 32)
        for (int u = 0; u < 32; u++)
            acc[u] += a[j + u] * b[j + u];
    for (int64_t j = full; j < n; j++)
        acc[j - full] += a[j] * b[j];
    for (int u = 0; u < 16; u++)
        acc[u] += acc[u + 16];
    for (int u = 0; u < 8; u++)
        acc[u] += acc[u + 8];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* this row's gate s and value v per unit (scratch s, v (H)) */
static inline void out_row_SFX(int64_t H, int64_t NH, int64_t p, const REAL *restrict xr, const REAL *restrict aoT,
                               const REAL *restrict cr, const REAL *restrict avT, const REAL *restrict er,
                               REAL *restrict s, REAL *restrict v) {
    const int64_t d = H / NH;
    for (int64_t j = 0; j < H; j++) {
        s[j] = 0;
        v[j] = er ? er[j] : (REAL)0;
    }
    for (int64_t k = 0; k < p; k++) {
        const REAL xk = xr[k], *a = aoT + k * H, *w = avT + k * H;
        for (int64_t j = 0; j < H; j++)
            s[j] += a[j] * xk;
        for (int64_t h = 0; h < NH; h++) {
            const REAL ck = cr[h * p + k];
            for (int64_t i = h * d; i < (h + 1) * d; i++)
                v[i] += w[i] * ck;
        }
    }
    for (int64_t j = 0; j < H; j++)
        s[j] = sigmoid_SFX(s[j]);
}

/* out (R, H); work (2H) */
void lstmkit_mlstm_out_forward_SFX(int64_t R, int64_t H, int64_t NH, int64_t p, const REAL *restrict x,
                                   const REAL *restrict aoT, const REAL *restrict c, const REAL *restrict avT,
                                   const REAL *restrict extra, REAL *restrict out, REAL *restrict work) {
    REAL *s = work, *v = work + H;
    for (int64_t r = 0; r < R; r++) {
        out_row_SFX(H, NH, p, x + r * p, aoT, c + r * NH * p, avT, extra ? extra + r * H : NULL, s, v);
        REAL *o = out + r * H;
        for (int64_t j = 0; j < H; j++)
            o[j] = s[j] * v[j];
    }
}

/* From dout (R, H): dx (R, p), dc (R, NH, p), dextra (R, H) or NULL, and daoT, davT (p, H) in
   double (rows summed in REAL in blocks of `block`, the blocks in double). work: (4 + 2p) H. */
void lstmkit_mlstm_out_backward_SFX(int64_t R, int64_t H, int64_t NH, int64_t p, int64_t block,
                                    const REAL *restrict x, const REAL *restrict aoT, const REAL *restrict c,
                                    const REAL *restrict avT, const REAL *restrict extra, const REAL *restrict dout,
                                    REAL *restrict dx, REAL *restrict dc, REAL *restrict dextra,
                                    double *restrict daoT, double *restrict davT, REAL *restrict work) {
    const int64_t d = H / NH;
    REAL *s = work, *v = s + H, *dh = v + H, *dz = dh + H, *acc_o = dz + H, *acc_v = acc_o + p * H;
    memset(daoT, 0, p * H * sizeof(double));
    memset(davT, 0, p * H * sizeof(double));
    memset(acc_o, 0, 2 * p * H * sizeof(REAL));
    for (int64_t r = 0; r < R; r++) {
        const REAL *xr = x + r * p, *cr = c + r * NH * p, *g = dout + r * H;
        out_row_SFX(H, NH, p, xr, aoT, cr, avT, extra ? extra + r * H : NULL, s, v);
        for (int64_t j = 0; j < H; j++) {
            dh[j] = g[j] * s[j];
            dz[j] = g[j] * v[j] * (s[j] - s[j] * s[j]);
        }
        if (dextra)
            memcpy(dextra + r * H, dh, H * sizeof(REAL));
        REAL *dcr = dc + r * NH * p;
        for (int64_t k = 0; k < p; k++) {
            const REAL xk = xr[k], *a = aoT + k * H, *w = avT + k * H;
            REAL *ao = acc_o + k * H, *av = acc_v + k * H;
            for (int64_t j = 0; j < H; j++)
                ao[j] += dz[j] * xk;
            dx[r * p + k] = dot_SFX(H, a, dz);
            for (int64_t h = 0; h < NH; h++) {
                const REAL ck = cr[h * p + k];
                REAL *avh = av + h * d;
                const REAL *dhh = dh + h * d;
                for (int64_t i = 0; i < d; i++)
                    avh[i] += dhh[i] * ck;
                dcr[h * p + k] = dot_SFX(d, w + h * d, dhh);
            }
        }
        if ((r + 1) % block == 0 || r == R - 1) {
            for (int64_t k = 0; k < p * H; k++) {
                daoT[k] += acc_o[k];
                davT[k] += acc_v[k];
            }
            memset(acc_o, 0, 2 * p * H * sizeof(REAL));
        }
    }
}
