/* The branch-free exp shared by lstmkit's C kernels (_stream_kernel.c, _scan_kernel.c): their
   Python modules put this text where the LSTMKIT_FAST_EXP line stands. */

/* e^x = s (1 + q) for x <= 0 (clamped so that s = 2^k stays normal): x = k ln2 + r,
   |r| <= ln2 / 2, q = expm1(r) by its Taylor series (truncation below half an ulp). Written
   without calls or branches so that the gate loops vectorise. */
static inline void exp_parts_f32(float x, float *s, float *q) {
    x = x < -87.0f ? -87.0f : x;
    const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln2) */
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    *q = r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
         + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const int32_t bits = ((int32_t)k + 127) << 23;
    memcpy(s, &bits, sizeof bits);
}

static inline void exp_parts_f64(double x, double *s, double *q) {
    x = x < -708.0 ? -708.0 : x;
    const double k = (x * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    const double r = (x - k * 6.93145751953125e-1) - k * 1.42860682030941723212e-6;
    *q = r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
         + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800
         + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))))));
    const int64_t bits = ((int64_t)(int32_t)k + 1023) << 52;
    memcpy(s, &bits, sizeof bits);
}
