/* lstmkit's streaming LSTM step: the "c" backend of lstmkit/nn/stream.py (see its docstring).

   A template that c_source() in _stream_kernel.py fills in before compiling it into one shared
   library: the ABI version number comes from there, and the part after the "typed part" line
   is written out twice, with REAL float and SFX f32, then with REAL double and SFX f64, BLOCK
   being the number of REAL in its BLOCK_BYTES (the columns of z accumulated at once). */
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t batch, input_size, hidden, out_size, layers, ld, zld, pld;
    void *x, *buf, *c, *z, *hh, *pz;
    void **w, **wr;
} lstm_stream;

int64_t lstmkit_stream_abi(void) { return 1000 * ABI_VERSION + (int64_t)sizeof(lstm_stream); }

/* LSTMKIT_FAST_EXP: _fast_exp.c is put here when the source is assembled */

/* ---- typed part: REAL, SFX, BLOCK ---- */
static inline REAL sigmoid_SFX(REAL z) {
    REAL s, q;
    exp_parts_SFX(z < 0 ? z : -z, &s, &q);
    const REAL e = s + s * q; /* e^-|z| */
    return (z < 0 ? e : (REAL)1) / ((REAL)1 + e);
}

static inline REAL tanh_SFX(REAL z) {
    REAL s, q;
    exp_parts_SFX(z < 0 ? 2 * z : -2 * z, &s, &q);
    const REAL m = (s - 1) + s * q; /* expm1(-2|z|), no cancellation */
    const REAL t = -m / (2 + m);
    return z < 0 ? -t : t;
}

/* out[b, :n] = in[b, :K] @ W for b < rows, with W (K, n) stored in column blocks, wt
   (n / BLOCK, K, BLOCK), so that each block is read front to back. A block is accumulated in
   vectors (GCC/Clang vector extensions, so they stay in registers) over the whole k loop, each
   element summed in the order k = 0 .. K-1. */
typedef REAL vec_SFX __attribute__((vector_size(32)));
static void gemv_SFX(int64_t rows, const REAL *restrict in, int64_t in_ld, int64_t K,
                     const REAL *restrict wt, int64_t n, REAL *restrict out, int64_t out_ld) {
    enum { lanes = sizeof(vec_SFX) / sizeof(REAL) };
    for (int64_t j0 = 0; j0 < n; j0 += BLOCK) {
        for (int64_t b = 0; b < rows; b++) {
            const REAL *v = in + b * in_ld, *w = wt + j0 * K;
            vec_SFX acc[BLOCK / lanes] = {0};
            for (int64_t k = 0; k < K; k++, w += BLOCK) {
                const vec_SFX vk = (vec_SFX){0} + v[k];
                for (int u = 0; u < BLOCK / lanes; u++) {
                    vec_SFX wu;
                    memcpy(&wu, w + u * lanes, sizeof wu);
                    acc[u] += wu * vk;
                }
            }
            memcpy(out + b * out_ld + j0, acc, sizeof acc);
        }
    }
}

/* z = (z_i, z_f, z_g, z_o), each H wide -> c (updated in place) and h = o tanh(c). */
static void gates_SFX(int64_t H, const REAL *restrict z, REAL *restrict c, REAL *restrict h) {
    for (int64_t j = 0; j < H; j++) {
        const REAL i = sigmoid_SFX(z[j]), f = sigmoid_SFX(z[H + j]);
        const REAL g = tanh_SFX(z[2 * H + j]), o = sigmoid_SFX(z[3 * H + j]);
        const REAL c_new = f * c[j] + i * g;
        c[j] = c_new;
        h[j] = o * tanh_SFX(c_new);
    }
}

/* Advance `steps` steps over x (steps, B, D), writing the top layer's h to y (steps, B, R)
   unless y is NULL. Returns the number of steps taken: fewer when the next step's input has a
   NaN or an infinity (checked before that step touches the state). */
int64_t lstmkit_stream_run_SFX(const lstm_stream *s, const REAL *x, REAL *y, int64_t steps) {
    const int64_t B = s->batch, D = s->input_size, H = s->hidden, R = s->out_size, ld = s->ld;
    REAL *buf = s->buf, *c = s->c, *z = s->z, *hh = s->hh, *pz = s->pz;
    for (int64_t t = 0; t < steps; t++) {
        const REAL *xt = x + t * B * D;
        int bad = 0;
        for (int64_t i = 0; i < B * D; i++) bad |= !(xt[i] - xt[i] == 0); /* NaN for NaN and inf */
        if (bad) return t;
        for (int64_t b = 0; b < B; b++) memcpy(buf + b * ld, xt + b * D, D * sizeof(REAL));
        for (int64_t l = 0; l < s->layers; l++) {
            const int64_t one = D + l * (1 + R), in_off = l == 0 ? 0 : one - R;
            gemv_SFX(B, buf + in_off, ld, one + 1 + R - in_off, s->w[l], s->zld, z, s->zld);
            for (int64_t b = 0; b < B; b++)
                gates_SFX(H, z + b * s->zld, c + (l * B + b) * H, s->pld ? hh + b * H : buf + b * ld + one + 1);
            if (s->pld) {
                gemv_SFX(B, hh, H, H, s->wr[l], s->pld, pz, s->pld);
                for (int64_t b = 0; b < B; b++) memcpy(buf + b * ld + one + 1, pz + b * s->pld, R * sizeof(REAL));
            }
        }
        if (y) {
            const int64_t top = D + (s->layers - 1) * (1 + R) + 1;
            for (int64_t b = 0; b < B; b++) memcpy(y + (t * B + b) * R, buf + b * ld + top, R * sizeof(REAL));
        }
    }
    return steps;
}

int64_t lstmkit_stream_step_SFX(const lstm_stream *s) { return lstmkit_stream_run_SFX(s, s->x, 0, 1); }
