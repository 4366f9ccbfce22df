/* minLSTM's linear scan, forward and backward, with all its element-wise gate work: the compiled
   path of lstmkit/nn/minlstm.py's mode="scan" (see _scan_kernel.py, which builds and loads it).

   A template: the part after the "typed part" line is written out twice, with REAL float and
   SFX f32, then with REAL double and SFX f64. Layouts (row-major, contiguous):
     z   (T*B, 3H)  pre-activations, columns f~ (H), i~ (H), h~ (H)
     h0  (B, H)     initial state;  h (T*B, H) the states h_1..h_T
     pad (T*B)      1 where a step is padding (identity: a = 1, b = 0), or NULL
   Per lane: f = sigmoid(f~), i = sigmoid(i~), s = f + i, g = h~ + 1/2 (h~ >= 0) else sigmoid(h~),
   a = f / s, b = i g / s, h_t = a h_{t-1} + b. Backward: G_t = dh_t + a_{t+1} G_{t+1};
   w = (G h_{t-1} - G g) / s^2; df~ = w f i (1 - f); di~ = -w f i (1 - i); dh~ = G (i / s) g'(h~). */
#include <stdint.h>
#include <string.h>

int64_t lstmkit_scan_abi(void) { return ABI_VERSION; }

/* LSTMKIT_FAST_EXP: _fast_exp.c is put here when the source is assembled */

/* ---- typed part: REAL, SFX ---- */
static inline REAL sigmoid_SFX(REAL z) {
    REAL s, q;
    exp_parts_SFX(z < 0 ? z : -z, &s, &q);
    const REAL e = s + s * q; /* e^-|z| */
    return (z < 0 ? e : (REAL)1) / ((REAL)1 + e);
}

/* the gates of one lane: a, b, and what the backward needs (f, i, 1/s, g, g') */
static inline void gates_SFX(REAL pf, REAL pi, REAL ph, REAL *f, REAL *i, REAL *inv, REAL *g, REAL *dg) {
    *f = sigmoid_SFX(pf);
    *i = sigmoid_SFX(pi);
    *inv = (REAL)1 / (*f + *i);
    const REAL sg = sigmoid_SFX(ph < 0 ? ph : (REAL)0);
    *g = ph >= 0 ? ph + (REAL)0.5 : sg;
    *dg = ph >= 0 ? (REAL)1 : sg - sg * sg;
}

/* The row's pre-activations: z + row * 3H when z is given, else computed into scratch from x
   (the input projection done here, for a narrow input: out[j] = bias[j] + sum_k wt[k, j] x[k]). */
static inline const REAL *zrow_SFX(int64_t row, int64_t H, int64_t D, const REAL *restrict z, const REAL *restrict x,
                                   const REAL *restrict wt, const REAL *restrict bias, REAL *restrict scratch) {
    if (z)
        return z + row * 3 * H;
    const REAL *xr = x + row * D;
    for (int64_t j = 0; j < 3 * H; j++)
        scratch[j] = bias ? bias[j] : (REAL)0;
    for (int64_t k = 0; k < D; k++) {
        const REAL xk = xr[k], *w = wt + k * 3 * H;
        for (int64_t j = 0; j < 3 * H; j++)
            scratch[j] += w[j] * xk;
    }
    return scratch;
}

/* One step's lanes of the backward: G = d + a_next G, the gradients of the three
   pre-activations, and a (kept for the step before). */
static inline void lanes_backward_SFX(int64_t H, const REAL *restrict zf, const REAL *restrict zi,
                                      const REAL *restrict zh, const REAL *restrict prev, const REAL *restrict d,
                                      REAL *restrict gb, REAL *restrict ab, REAL *restrict df, REAL *restrict di,
                                      REAL *restrict dhh) {
    for (int64_t j = 0; j < H; j++) {
        REAL f, i, inv, g, dg;
        gates_SFX(zf[j], zi[j], zh[j], &f, &i, &inv, &g, &dg);
        const REAL Gt = d[j] + ab[j] * gb[j];
        const REAL w = (Gt * prev[j] - Gt * g) * inv * inv;
        const REAL wfi = w * f * i;
        df[j] = wfi - wfi * f;
        di[j] = -(wfi - wfi * i);
        dhh[j] = Gt * i * inv * dg;
        gb[j] = Gt;
        ab[j] = f * inv;
    }
}

/* Either z (T*B, 3H) is given, or x (T*B, D), wt (D, 3H) = W^T and bias (3H) | NULL, with
   scratch (3H). */
void lstmkit_minscan_forward_SFX(int64_t T, int64_t B, int64_t H, int64_t D, const REAL *restrict z,
                                 const REAL *restrict x, const REAL *restrict wt, const REAL *restrict bias,
                                 const REAL *restrict h0, const uint8_t *restrict pad, REAL *restrict h,
                                 REAL *restrict scratch) {
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++) {
            const int64_t row = t * B + b;
            const REAL *prev = t ? h + (row - B) * H : h0 + b * H;
            REAL *out = h + row * H;
            if (pad && pad[row]) {
                memcpy(out, prev, H * sizeof(REAL));
                continue;
            }
            const REAL *zf = zrow_SFX(row, H, D, z, x, wt, bias, scratch), *zi = zf + H, *zh = zi + H;
            for (int64_t j = 0; j < H; j++) {
                REAL f, i, inv, g, dg;
                gates_SFX(zf[j], zi[j], zh[j], &f, &i, &inv, &g, &dg);
                out[j] = (f * inv) * prev[j] + (i * inv) * g;
            }
        }
    }
}

/* dh0 (B, H); work (2*B*H + 6H + (D+1)*3H) scratch. With z given, dz (T*B, 3H) receives the
   gradient of z; without, the projection's gradients are accumulated here: dx (T*B, D), dwt
   (D, 3H) and dbias (3H) (each may be NULL; each step's B rows summed in REAL, the steps in double). */
void lstmkit_minscan_backward_SFX(int64_t T, int64_t B, int64_t H, int64_t D, const REAL *restrict z,
                                  const REAL *restrict x, const REAL *restrict wt, const REAL *restrict bias,
                                  const REAL *restrict h0, const uint8_t *restrict pad, const REAL *restrict h,
                                  const REAL *restrict dh, REAL *restrict dz, REAL *restrict dh0, REAL *restrict dx,
                                  double *restrict dwt, double *restrict dbias, REAL *restrict work) {
    REAL *G = work, *anext = work + B * H, *scratch = work + 2 * B * H, *dzs = scratch + 3 * H;
    REAL *step_acc = dzs + 3 * H; /* (D+1, 3H): this step's dwt rows, then dbias */
    memset(work, 0, 2 * B * H * sizeof(REAL));
    if (dwt)
        memset(dwt, 0, D * 3 * H * sizeof(double));
    if (dbias)
        memset(dbias, 0, 3 * H * sizeof(double));
    for (int64_t t = T - 1; t >= 0; t--) {
        if (!z)
            memset(step_acc, 0, (D + 1) * 3 * H * sizeof(REAL));
        for (int64_t b = 0; b < B; b++) {
            const int64_t row = t * B + b;
            const REAL *prev = t ? h + (row - B) * H : h0 + b * H;
            const REAL *d = dh + row * H;
            REAL *gb = G + b * H, *ab = anext + b * H;
            if (pad && pad[row]) {
                for (int64_t j = 0; j < H; j++) {
                    gb[j] = d[j] + ab[j] * gb[j];
                    ab[j] = 1;
                }
                if (z)
                    memset(dz + row * 3 * H, 0, 3 * H * sizeof(REAL));
                else if (dx)
                    memset(dx + row * D, 0, D * sizeof(REAL));
                continue;
            }
            const REAL *zf = zrow_SFX(row, H, D, z, x, wt, bias, scratch), *zi = zf + H, *zh = zi + H;
            REAL *df = z ? dz + row * 3 * H : dzs, *di = df + H, *dhh = di + H;
            lanes_backward_SFX(H, zf, zi, zh, prev, d, gb, ab, df, di, dhh);
            if (z)
                continue;
            const REAL *xr = x + row * D;
            if (dbias) {
                REAL *acc = step_acc + D * 3 * H;
                for (int64_t j = 0; j < 3 * H; j++)
                    acc[j] += dzs[j];
            }
            for (int64_t k = 0; k < D; k++) {
                const REAL *w = wt + k * 3 * H;
                if (dx) { /* eight partial sums, so that the loop vectorises */
                    REAL acc[8] = {0};
                    int64_t j = 0;
                    for (; j + 8 <= 3 * H; j += 8)
                        for (int u = 0; u < 8; u++)
                            acc[u] += w[j + u] * dzs[j + u];
                    for (; j < 3 * H; j++)
                        acc[0] += w[j] * dzs[j];
                    dx[row * D + k] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                }
                if (dwt) {
                    REAL *acc = step_acc + k * 3 * H;
                    const REAL xk = xr[k];
                    for (int64_t j = 0; j < 3 * H; j++)
                        acc[j] += xk * dzs[j];
                }
            }
        }
        if (!z) {
            if (dwt)
                for (int64_t j = 0; j < D * 3 * H; j++)
                    dwt[j] += step_acc[j];
            if (dbias)
                for (int64_t j = 0; j < 3 * H; j++)
                    dbias[j] += step_acc[D * 3 * H + j];
        }
    }
    for (int64_t k = 0; k < B * H; k++)
        dh0[k] = anext[k] * G[k];
}
