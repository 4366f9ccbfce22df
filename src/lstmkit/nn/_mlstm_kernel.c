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
        for (int64_t l = 0; l < N; l++)
            xs[i * N + l] = x[(t * B + l / NH) * p + i];
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
        for (int64_t l = 0; l < N; l++) {
            REAL *dxr = dx + (t * B + l / NH) * p;
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
