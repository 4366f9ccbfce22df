// Small-row matrix products for lstmkit's fused CPU recurrence: fused_recurrence.source() puts
// this file between _fused_recurrence.cpp and _fused_recurrence_packed.cpp (one translation unit,
// inside their anonymous namespace).
//
// The packed (lengths=) recurrence multiplies, at each step, the rows still running by the same
// weight matrix: out (n, N) = a (n, Kd) w (Kd, N). With few rows (the late steps of a batch with
// spread lengths) ATen's GEMM reaches a fraction of its large-matrix speed (on a Zen 4 core ~25
// GFLOP/s at 1 row, ~45 at 4, against ~90 at 32). Here the weight is packed once per call into
// panels of CB columns (Kd x CB each, contiguous, the last one zero-padded), and each block of up
// to RB rows times one panel is accumulated in registers: per k, CB / VL vector loads of the
// weight and one broadcast of each row's a[k], RB * CB / VL fused multiply-adds. The vectors are
// GCC/Clang vector extensions, so the compiler emits whatever the target has (AVX-512, AVX2,
// SSE2, NEON); the blocking follows the register file the flags give. Sums run over k in order,
// one multiply-add per term, like a naive product (a different rounding from MKL's, well within
// the tests' tolerances: float64 parity is checked at 1e-12).

// MM_SMALL_ROWS: up to how many rows a step takes this product when the caller passes
// small_rows < 0, measured on a Zen 4 core against MKL at (n, 136) x (136, 512), float32.
#if defined(__AVX512F__)
constexpr int MM_VEC_BYTES = 64, MM_ROWS = 6, MM_VECS = 4;  // 32 registers: 24 sums, 4 weights
constexpr int64_t MM_SMALL_ROWS = 48;                       // faster than MKL up to ~48 rows
#elif defined(__AVX__)
constexpr int MM_VEC_BYTES = 32, MM_ROWS = 4, MM_VECS = 3;  // 16 registers: 12 sums, 3 weights
constexpr int64_t MM_SMALL_ROWS = 24;                       // -march=haswell build: up to ~24 rows
#else
constexpr int MM_VEC_BYTES = 16, MM_ROWS = 4, MM_VECS = 3;
constexpr int64_t MM_SMALL_ROWS = 3;                        // the -O3 (SSE2) fallback build: 1-3 rows
#endif

// V: a vector of T; U: the same for unaligned loads and stores (through U*, not memcpy, so that the
// sums and weights stay in registers: GCC keeps arrays whose address is taken on the stack).
template <typename T>
struct MMVec;
template <>
struct MMVec<float> {
    typedef float V __attribute__((vector_size(MM_VEC_BYTES)));
    typedef float U __attribute__((vector_size(MM_VEC_BYTES), aligned(alignof(float)), may_alias));
};
template <>
struct MMVec<double> {
    typedef double V __attribute__((vector_size(MM_VEC_BYTES)));
    typedef double U __attribute__((vector_size(MM_VEC_BYTES), aligned(alignof(double)), may_alias));
};

template <typename T>
inline typename MMVec<T>::V mm_load(const T* p) { return *reinterpret_cast<const typename MMVec<T>::U*>(p); }

template <typename T>
inline void mm_store(T* p, typename MMVec<T>::V v) { *reinterpret_cast<typename MMVec<T>::U*>(p) = v; }

// The weight (Kd, N), any strides, as ceil(N / CB) panels of (Kd, CB) contiguous, zero-padded;
// and optionally a row `init` (N,) the products start from (the bias), padded alike.
template <typename T>
struct Panels {
    static constexpr int64_t VL = MM_VEC_BYTES / int64_t(sizeof(T)), CB = VL * MM_VECS;
    int64_t Kd = 0, N = 0, P = 0;
    std::vector<T> w, init;

    Panels(const Tensor& wt, const T* init_row) : Kd(wt.size(0)), N(wt.size(1)), P((N + CB - 1) / CB) {
        const T* src = wt.data_ptr<T>();
        const int64_t sk = wt.stride(0), sn = wt.stride(1);
        w.assign(size_t(P * Kd * CB), T(0));
        for (int64_t p = 0; p < P; ++p) {
            const int64_t cols = std::min<int64_t>(CB, N - p * CB);
            T* dst = w.data() + p * Kd * CB;
            for (int64_t k = 0; k < Kd; ++k)
                for (int64_t j = 0; j < cols; ++j) dst[k * CB + j] = src[k * sk + (p * CB + j) * sn];
        }
        if (init_row) {
            init.assign(size_t(P * CB), T(0));
            std::memcpy(init.data(), init_row, N * sizeof(T));
        }
    }
};

// RB rows of a (row stride lda) times one panel, into out (row stride ldo), `cols` valid columns.
template <typename T, int RB>
void panel_block(const T* a, int64_t lda, const T* wp, int64_t Kd, const T* init, T* out, int64_t ldo,
                 int64_t cols) {
    using V = typename MMVec<T>::V;
    constexpr int64_t VL = Panels<T>::VL, CB = Panels<T>::CB;
    V acc[RB][MM_VECS];
#pragma GCC unroll 8
    for (int v = 0; v < MM_VECS; ++v) {
        const V s = init ? mm_load(init + v * VL) : V{};
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) acc[r][v] = s;
    }
    for (int64_t k = 0; k < Kd; ++k) {
        V w[MM_VECS];
#pragma GCC unroll 8
        for (int v = 0; v < MM_VECS; ++v) w[v] = mm_load(wp + k * CB + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) {
            const T s = a[r * lda + k];
#pragma GCC unroll 8
            for (int v = 0; v < MM_VECS; ++v) acc[r][v] += s * w[v];
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
        if (cols == CB) {
#pragma GCC unroll 8
            for (int v = 0; v < MM_VECS; ++v) mm_store(out + r * ldo + v * VL, acc[r][v]);
        } else {
            T tmp[CB];
#pragma GCC unroll 8
            for (int v = 0; v < MM_VECS; ++v) mm_store(tmp + v * VL, acc[r][v]);
            std::memcpy(out + r * ldo, tmp, cols * sizeof(T));
        }
    }
}

template <typename T, int R>
void panel_rest(int64_t rest, const T* a, int64_t lda, const T* wp, int64_t Kd, const T* init, T* out,
                int64_t ldo, int64_t cols) {
    if constexpr (R > 0) {
        if (rest == R) return panel_block<T, R>(a, lda, wp, Kd, init, out, ldo, cols);
        panel_rest<T, R - 1>(rest, a, lda, wp, Kd, init, out, ldo, cols);
    }
}

// out (n, N) = init + a (n, Kd) w, rows of out ldo apart and of a lda apart.
template <typename T>
void small_mm(int64_t n, const T* a, int64_t lda, const Panels<T>& w, T* out, int64_t ldo) {
    const int64_t Kd = w.Kd, CB = Panels<T>::CB;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(1, n * Kd * CB));
    at::parallel_for(0, w.P, grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* wp = w.w.data() + p * Kd * CB;
            const T* init = w.init.empty() ? nullptr : w.init.data() + p * CB;
            const int64_t cols = std::min<int64_t>(CB, w.N - p * CB);
            T* o = out + p * CB;
            int64_t b = 0;
            for (; b + MM_ROWS <= n; b += MM_ROWS)
                panel_block<T, MM_ROWS>(a + b * lda, lda, wp, Kd, init, o + b * ldo, ldo, cols);
            panel_rest<T, MM_ROWS - 1>(n - b, a + b * lda, lda, wp, Kd, init, o + b * ldo, ldo, cols);
        }
    });
}
