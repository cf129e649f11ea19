// bnlab's fused CPU kernels: moves 1 and 3 of batch norm, forward and backward, one call each.
//
// A tensor of shape (N, C, *spatial) is seen as (N, C, S), S = prod(spatial), in one of two
// dense layouts:
//   NCS (contiguous):          element (n, c, s) at (n*C + c)*S + s   -- rows of S per channel
//   NSC (channels-last, 2-D):  element (n, c, s) at (n*S + s)*C + c   -- rows of C channels
// Anything else is made dense by the caller first.
//
// Accuracy.  Statistics are per block, "corrected two-pass" (Chan, Golub & LeVeque 1983):
// pass 1 gives an approximate block mean m in the block dtype; pass 2 sums d = x - m and d^2,
// and the block's mean is m + sum(d)/n, its M2 = sum(d^2) - sum(d)^2/n.  The deviations are
// small, so float32 accumulation inside a block loses nothing that matters, even for
// x = 10^4 + N(0, 1); blocks are merged in double with Chan's formula.  Never E[x^2] - E[x]^2.
// The apply step forms x - mu before scaling, with mu split into hi + lo floats, so that
// (x - hi) is exact and the output does not inherit mu's rounding (|mu| >> sigma).
//
// Threads.  OpenMP, linked to the libgomp torch has already loaded (one thread pool for torch's
// ops and these kernels).  Two strategies per call:
//   "channels": NCS with C divisible among the threads: each thread owns whole channels, and
//              reduces then applies a channel while it is still in its core's cache;
//   "rows":     every other case: each thread owns a slice of rows, reduces it into per-channel
//              partials, one thread combines them, then each applies to its own slice.
//
// dtypes: float32 and float64; bfloat16 and float16 are widened to float32 per element, and
// accumulate as float32 does.  Per-channel tensors (weight, bias, running statistics, mean,
// invstd, sums) are in the accumulate dtype: float for all but float64.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <omp.h>
#include <type_traits>
#include <vector>

typedef int64_t i64;

struct bf16 { uint16_t bits; };

static inline float widen(float v) { return v; }
static inline double widen(double v) { return v; }
static inline float widen(bf16 v) {
    uint32_t u = (uint32_t)v.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline float widen(_Float16 v) { return (float)v; }

static inline void narrow(float v, float* p) { *p = v; }
static inline void narrow(double v, double* p) { *p = v; }
static inline void narrow(float v, bf16* p) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // round to nearest even
    uint32_t quiet = (u >> 16) | 0x40u;                            // NaN stays NaN
    p->bits = (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? quiet : rounded);
}
static inline void narrow(float v, _Float16* p) { *p = (_Float16)v; }

template <class T> struct acc { typedef float type; };
template <> struct acc<double> { typedef double type; };

// One 64-byte vector of accumulators (16 floats or 8 doubles).  Partial sums carried down
// many rows must live in registers: as arrays indexed in a `simd` loop they went through the
// stack on every row, a store-to-load chain that cost more than the arithmetic.
template <class A>
struct Vec {
    typedef A type __attribute__((vector_size(64)));
    static constexpr int lanes = 64 / sizeof(A);
};

template <class A, class T>
static inline typename Vec<A>::type vload(const T* p) {
    typename Vec<A>::type v;
    if constexpr (std::is_same<T, A>::value) {
        std::memcpy(&v, p, sizeof v);
    } else {
        for (int l = 0; l < Vec<A>::lanes; ++l) v[l] = widen(p[l]);
    }
    return v;
}

template <class V>
static inline auto hsum(const V& v) {
    auto s = v[0];
    for (int l = 1; l < (int)(sizeof(V) / sizeof(v[0])); ++l) s += v[l];
    return s;
}

static const i64 BLOCK = 4096;        // elements of one row block in NCS (fits in L1)
static const i64 CL_BLOCK = 65536;    // elements of one row block in NSC (fits in L2)

// Statistics of one set of values: count, mean, M2 = sum of squared deviations.
struct Moments {
    double n = 0, mean = 0, m2 = 0;
    inline void merge(double nb, double mb, double m2b) {
        if (nb == 0) return;
        if (n == 0) {  // the first block: nothing to merge with (most channels of a small batch)
            n = nb;
            mean = mb;
            m2 = m2b;
            return;
        }
        double total = n + nb;
        double delta = mb - mean;
        double frac = nb / total;
        if (std::isfinite(mean) && std::isfinite(mb)) {
            mean += delta * frac;
        } else {  // an inf or a NaN: the weighted sum, which keeps an inf as torch's mean does
            mean = mean * (n / total) + mb * frac;
        }
        m2 += m2b + delta * delta * n * frac;
        n = total;
    }
};

// A block's mean from its approximate mean m and the sum d1 of the deviations from it: m itself
// where m is not finite (an inf in the block makes d1 NaN, but the mean is that inf).
static inline double corrected_mean(double m, double d1, double n) {
    return std::isfinite(m) ? m + d1 / n : m;
}

// Corrected two-pass moments of p[0..len), contiguous.
template <class T>
static inline void block_moments(const T* p, i64 len, Moments& out) {
    typedef typename acc<T>::type A;
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 i = 0; i < len; ++i) s += widen(p[i]);
    A m = s / (A)len;
    A d1 = 0, d2 = 0;
#pragma omp simd reduction(+ : d1, d2)
    for (i64 i = 0; i < len; ++i) {
        A d = widen(p[i]) - m;
        d1 += d;
        d2 += d * d;
    }
    double dn = (double)len;
    out.merge(dn, corrected_mean((double)m, (double)d1, dn),
              (double)d2 - (double)d1 * (double)d1 / dn);
}

// Corrected two-pass moments of `rows` rows of `len` elements each, row r at p + r*stride: many
// short rows (a channel of a small feature map) merge once per group, not once per row.
template <class T>
static inline void rows_moments(const T* p, i64 rows, i64 stride, i64 len, Moments& out) {
    typedef typename acc<T>::type A;
    typedef typename Vec<A>::type V;
    constexpr int L = Vec<A>::lanes;
    // one vector of partial sums carried across the rows (a horizontal sum per row would cost
    // more than the row itself when rows are short: 8x8 feature maps)
    V v1 = {};
    A t1 = 0;
    for (i64 r = 0; r < rows; ++r) {
        const T* q = p + r * stride;
        i64 i = 0;
        for (; i + L <= len; i += L) v1 += vload<A>(q + i);
        for (; i < len; ++i) t1 += widen(q[i]);
    }
    t1 += hsum(v1);
    const double dn = (double)rows * (double)len;
    const A m = (A)((double)t1 / dn);
    V v2 = {}, v3 = {};
    A d1 = 0, d2 = 0;
    for (i64 r = 0; r < rows; ++r) {
        const T* q = p + r * stride;
        i64 i = 0;
        for (; i + L <= len; i += L) {
            V d = vload<A>(q + i) - m;
            v2 += d;
            v3 += d * d;
        }
        for (; i < len; ++i) {
            A d = widen(q[i]) - m;
            d1 += d;
            d2 += d * d;
        }
    }
    d1 += hsum(v2);
    d2 += hsum(v3);
    out.merge(dn, corrected_mean((double)m, (double)d1, dn),
              (double)d2 - (double)d1 * (double)d1 / dn);
}

// sum(dy) and sum(dy * (x - mu)) over `rows` rows of `len` elements (row r at offset r*stride),
// added into double: a vector carried across rows, as rows_moments.
template <class T, class A>
static inline void rows_grad_sums(const T* x, const T* dy, i64 rows, i64 stride, i64 len, A mu,
                                  double& sdy, double& sdxc) {
    typedef typename Vec<A>::type V;
    constexpr int L = Vec<A>::lanes;
    V v1 = {}, v2 = {};
    A t1 = 0, t2 = 0;
    for (i64 r = 0; r < rows; ++r) {
        const T* xq = x + r * stride;
        const T* gq = dy + r * stride;
        i64 i = 0;
        for (; i + L <= len; i += L) {
            V g = vload<A>(gq + i);
            v1 += g;
            v2 += g * (vload<A>(xq + i) - mu);
        }
        for (; i < len; ++i) {
            A g = widen(gq[i]);
            t1 += g;
            t2 += g * (widen(xq[i]) - mu);
        }
    }
    sdy += (double)(t1 + hsum(v1));
    sdxc += (double)(t2 + hsum(v2));
}

// The moments of channel c of an NCS tensor.
template <class T>
static inline Moments channel_moments(const T* x, i64 N, i64 C, i64 S, i64 c) {
    Moments m;
    if (S >= BLOCK) {
        for (i64 n = 0; n < N; ++n) {
            const T* row = x + (n * C + c) * S;
            for (i64 s0 = 0; s0 < S; s0 += BLOCK) block_moments(row + s0, std::min(BLOCK, S - s0), m);
        }
    } else {
        const i64 group = std::max<i64>(1, BLOCK / S);
        for (i64 n0 = 0; n0 < N; n0 += group)
            rows_moments(x + (n0 * C + c) * S, std::min(group, N - n0), C * S, S, m);
    }
    return m;
}

// The per-channel constants of the forward apply: y = ((x - hi) - lo) * scale + shift.
template <class A>
struct FwdCoef { A hi, lo, scale, shift; };

template <class A>
static inline FwdCoef<A> forward_coef(double mean, A invstd, const A* w, const A* b, i64 c) {
    FwdCoef<A> k;
    k.hi = (A)mean;
    k.lo = std::isfinite(mean) ? (A)(mean - (double)k.hi) : (A)0;  // inf - inf would be NaN
    k.scale = w ? invstd * w[c] : invstd;
    k.shift = b ? b[c] : (A)0;
    return k;
}

// Per channel: from (count, mean, M2) to mean/invstd outputs and the running statistics update.
template <class A>
static inline A finish_stats(i64 c, const Moments& m, double eps, double momentum, A* rm, A* rv,
                             A* mean_out, A* invstd_out, A* var_out) {
    A mean = (A)m.mean;
    A var = (A)(m.m2 / m.n);
    A invstd = (A)1 / std::sqrt(var + (A)eps);
    mean_out[c] = mean;
    invstd_out[c] = invstd;
    if (var_out) var_out[c] = var;
    if (rm) rm[c] = rm[c] * (A)(1.0 - momentum) + mean * (A)momentum;
    if (rv) {
        A unbiased = (A)(m.m2 / (m.n - 1));
        rv[c] = rv[c] * (A)(1.0 - momentum) + unbiased * (A)momentum;
    }
    return invstd;
}

// The same constants as arrays, for the channels-last loops (one vector load per constant).
template <class A>
struct FwdCoefs {
    std::vector<A> hi, lo, scale, shift;
    explicit FwdCoefs(i64 C) : hi(C), lo(C), scale(C), shift(C) {}
    inline void set(i64 c, const FwdCoef<A>& k) {
        hi[c] = k.hi; lo[c] = k.lo; scale[c] = k.scale; shift[c] = k.shift;
    }
};

// One channels-last row of C channels: y = ((x - hi) - lo) * scale + shift.
template <class T, class A>
static inline void apply_cl_row(const T* __restrict x, T* __restrict y, i64 C,
                                const FwdCoefs<A>& k) {
    const A* __restrict hi = k.hi.data();
    const A* __restrict lo = k.lo.data();
    const A* __restrict sc = k.scale.data();
    const A* __restrict sh = k.shift.data();
#pragma omp simd
    for (i64 c = 0; c < C; ++c) narrow(((widen(x[c]) - hi[c]) - lo[c]) * sc[c] + sh[c], y + c);
}

template <class T, class A>
static inline void apply_row(const T* x, T* y, i64 len, const FwdCoef<A>& k) {
#pragma omp simd
    for (i64 i = 0; i < len; ++i) narrow(((widen(x[i]) - k.hi) - k.lo) * k.scale + k.shift, y + i);
}

// Backward per-channel constants: dx = dy * a + ((x - hi) - lo) * b + k.
template <class A>
struct BwdCoef { A hi, lo, a, b, k; };

template <class A>
static inline BwdCoef<A> backward_coef(A mean, A invstd, const A* w, i64 c, double sum_dy,
                                       double sum_dy_xc, double count, int batch_stats) {
    BwdCoef<A> k;
    k.hi = mean;
    k.lo = 0;
    double scale = (double)invstd * (w ? (double)w[c] : 1.0);
    k.a = (A)scale;
    if (batch_stats) {
        double is = (double)invstd;
        k.b = (A)(-scale * is * is * sum_dy_xc / count);  // -gamma*invstd * xhat-part
        k.k = (A)(-scale * sum_dy / count);
    } else {
        k.b = 0;
        k.k = 0;
    }
    return k;
}

template <class T, class A>
static inline void dx_row(const T* x, const T* dy, T* dx, i64 len, const BwdCoef<A>& k) {
#pragma omp simd
    for (i64 i = 0; i < len; ++i)
        narrow(widen(dy[i]) * k.a + ((widen(x[i]) - k.hi) - k.lo) * k.b + k.k, dx + i);
}

// sum(dy) and sum(dy * (x - mu)) over p[0..len), accumulated into double.
template <class T, class A>
static inline void grad_sums_row(const T* x, const T* dy, i64 len, A hi, A lo, double& sdy,
                                 double& sdxc) {
    A s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (i64 i = 0; i < len; ++i) {
        A g = widen(dy[i]);
        s1 += g;
        s2 += g * ((widen(x[i]) - hi) - lo);
    }
    sdy += (double)s1;
    sdxc += (double)s2;
}

// The "channels" strategy: contiguous, with the channels shared evenly among the threads.
static inline bool by_channels(int layout, i64 C, int nt) {
    return layout == 0 && (nt == 1 || C % nt == 0 || C >= 4 * nt);
}

static inline void split_range(i64 total, int parts, int idx, i64& lo, i64& hi) {
    i64 base = total / parts, rem = total % parts;
    lo = idx * base + std::min<i64>(idx, rem);
    hi = lo + base + (idx < rem ? 1 : 0);
}

// Channels-last: the moments of channels [c0, c0 + w) over rows [q0, q1) (an L2-sized block),
// merged into `out`.  A full chunk (w = one vector's lanes) keeps its partial sums in vector
// registers down the rows; the last, narrower chunk takes the scalar loop.
template <class T>
static inline void cl_chunk_moments(const T* x, i64 q0, i64 q1, i64 C, i64 c0, int w,
                                    Moments* out) {
    typedef typename acc<T>::type A;
    typedef typename Vec<A>::type V;
    constexpr int L = Vec<A>::lanes;
    V s = {}, d1 = {}, d2 = {};
    const A len = (A)(q1 - q0);
    if (w == L) {
        for (i64 q = q0; q < q1; ++q) s += vload<A>(x + q * C + c0);
        s /= len;  // the block's approximate means
        for (i64 q = q0; q < q1; ++q) {
            V d = vload<A>(x + q * C + c0) - s;
            d1 += d;
            d2 += d * d;
        }
    } else {
        for (i64 q = q0; q < q1; ++q)
            for (int l = 0; l < w; ++l) s[l] += widen(x[q * C + c0 + l]);
        for (int l = 0; l < w; ++l) s[l] /= len;
        for (i64 q = q0; q < q1; ++q)
            for (int l = 0; l < w; ++l) {
                A d = widen(x[q * C + c0 + l]) - s[l];
                d1[l] += d;
                d2[l] += d * d;
            }
    }
    const double dn = (double)(q1 - q0);
    for (int l = 0; l < w; ++l)
        out[c0 + l].merge(dn, corrected_mean((double)s[l], (double)d1[l], dn),
                          (double)d2[l] - (double)d1[l] * (double)d1[l] / dn);
}

// Channels-last backward: sum(dy) and sum(dy * (x - mu)) of channels [c0, c0 + w) over rows
// [q0, q1), added into double, the same way.
template <class T, class A>
static inline void cl_chunk_grad_sums(const T* x, const T* dy, i64 q0, i64 q1, i64 C, i64 c0,
                                      int w, const A* mean, double* sdy, double* sdxc) {
    typedef typename Vec<A>::type V;
    constexpr int L = Vec<A>::lanes;
    V s1 = {}, s2 = {}, mu = {};
    for (int l = 0; l < w; ++l) mu[l] = mean[c0 + l];
    if (w == L) {
        for (i64 q = q0; q < q1; ++q) {
            V g = vload<A>(dy + q * C + c0);
            s1 += g;
            s2 += g * (vload<A>(x + q * C + c0) - mu);
        }
    } else {
        for (i64 q = q0; q < q1; ++q)
            for (int l = 0; l < w; ++l) {
                A g = widen(dy[q * C + c0 + l]);
                s1[l] += g;
                s2[l] += g * (widen(x[q * C + c0 + l]) - mu[l]);
            }
    }
    for (int l = 0; l < w; ++l) {
        sdy[c0 + l] += (double)s1[l];
        sdxc[c0 + l] += (double)s2[l];
    }
}

// ---------------------------------------------------------------------------------- forward

template <class T>
static void forward(const T* x, T* y, i64 N, i64 C, i64 S, int layout, const void* wv,
                    const void* bv, void* rmv, void* rvv, int batch_stats, double momentum,
                    double eps, void* mean_v, void* invstd_v, void* var_v, int nt) {
    typedef typename acc<T>::type A;
    const A* w = (const A*)wv;
    const A* b = (const A*)bv;
    A* rm = (A*)rmv;
    A* rv = (A*)rvv;
    A* mean_out = (A*)mean_v;
    A* invstd_out = (A*)invstd_v;
    A* var_out = (A*)var_v;
    const bool update = batch_stats && rm && rv;

    if (!batch_stats) {  // running statistics: constants, one apply pass
        std::vector<FwdCoef<A>> k(C);
        FwdCoefs<A> ks(C);
        for (i64 c = 0; c < C; ++c) {
            A invstd = (A)1 / std::sqrt(rv[c] + (A)eps);
            mean_out[c] = rm[c];
            invstd_out[c] = invstd;
            if (var_out) var_out[c] = rv[c];
            k[c] = forward_coef<A>((double)rm[c], invstd, w, b, c);
            ks.set(c, k[c]);
        }
        if (layout == 0) {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
            for (i64 r = 0; r < N * C; ++r) apply_row(x + r * S, y + r * S, S, k[r % C]);
        } else {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
            for (i64 r = 0; r < N * S; ++r) apply_cl_row(x + r * C, y + r * C, C, ks);
        }
        return;
    }

    if (by_channels(layout, C, nt)) {
        // "channels": reduce a channel, then apply it while it is in cache
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (i64 c = 0; c < C; ++c) {
            Moments m = channel_moments(x, N, C, S, c);
            A invstd = finish_stats<A>(c, m, eps, momentum, update ? rm : nullptr,
                                       update ? rv : nullptr, mean_out, invstd_out, var_out);
            FwdCoef<A> k = forward_coef<A>(m.mean, invstd, w, b, c);
            for (i64 n = 0; n < N; ++n) apply_row(x + (n * C + c) * S, y + (n * C + c) * S, S, k);
        }
        return;
    }

    // "rows": per-thread partials, one combine, then each thread applies its slice
    std::vector<Moments> part((size_t)nt * C);
    std::vector<FwdCoef<A>> k(C);
    FwdCoefs<A> ks(C);
    const i64 rows = layout == 0 ? N * C : N * S;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num();
        int T_ = omp_get_num_threads();
        i64 r0, r1;
        split_range(rows, T_, t, r0, r1);
        Moments* mine = part.data() + (size_t)t * C;
        if (layout == 0) {
            for (i64 r = r0; r < r1; ++r) {
                const T* row = x + r * S;
                for (i64 s0 = 0; s0 < S; s0 += BLOCK)
                    block_moments(row + s0, std::min(BLOCK, S - s0), mine[r % C]);
            }
        } else {
            const i64 rb = std::max<i64>(1, CL_BLOCK / std::max<i64>(C, 1));
            for (i64 q0 = r0; q0 < r1; q0 += rb) {
                const i64 q1 = std::min(r1, q0 + rb);
                constexpr int L = Vec<A>::lanes;
                for (i64 c0 = 0; c0 < C; c0 += L)
                    cl_chunk_moments<T>(x, q0, q1, C, c0, (int)std::min<i64>(L, C - c0), mine);
            }
        }
#pragma omp barrier
#pragma omp single
        {
            for (i64 c = 0; c < C; ++c) {
                Moments m;
                for (int u = 0; u < T_; ++u) {
                    const Moments& p = part[(size_t)u * C + c];
                    m.merge(p.n, p.mean, p.m2);
                }
                A invstd = finish_stats<A>(c, m, eps, momentum, update ? rm : nullptr,
                                           update ? rv : nullptr, mean_out, invstd_out, var_out);
                k[c] = forward_coef<A>(m.mean, invstd, w, b, c);
                ks.set(c, k[c]);
            }
        }  // implicit barrier
        if (layout == 0) {
            for (i64 r = r0; r < r1; ++r) apply_row(x + r * S, y + r * S, S, k[r % C]);
        } else {
            for (i64 q = r0; q < r1; ++q) apply_cl_row(x + q * C, y + q * C, C, ks);
        }
    }
}

// --------------------------------------------------------------------------------- backward

template <class T>
static void backward(const T* x, const T* dy, T* dx, i64 N, i64 C, i64 S, int layout,
                     const void* wv, const void* mean_v, const void* invstd_v, int batch_stats,
                     void* sum_dy_v, void* sum_dy_xhat_v, int nt) {
    typedef typename acc<T>::type A;
    const A* w = (const A*)wv;
    const A* mean = (const A*)mean_v;
    const A* invstd = (const A*)invstd_v;
    A* sum_dy_out = (A*)sum_dy_v;
    A* sum_dy_xhat_out = (A*)sum_dy_xhat_v;
    const double count = (double)N * (double)S;

    if (by_channels(layout, C, nt)) {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (i64 c = 0; c < C; ++c) {
            double sdy = 0, sdxc = 0;
            const i64 group = std::max<i64>(1, BLOCK / std::max<i64>(S, 1));  // float sums stay short
            for (i64 n0 = 0; n0 < N; n0 += group) {
                const i64 o = (n0 * C + c) * S;
                rows_grad_sums<T, A>(x + o, dy + o, std::min(group, N - n0), C * S, S, mean[c], sdy,
                                     sdxc);
            }
            sum_dy_out[c] = (A)sdy;
            sum_dy_xhat_out[c] = (A)(sdxc * (double)invstd[c]);
            if (dx) {
                BwdCoef<A> k = backward_coef<A>(mean[c], invstd[c], w, c, sdy, sdxc, count, batch_stats);
                for (i64 n = 0; n < N; ++n) {
                    i64 o = (n * C + c) * S;
                    dx_row(x + o, dy + o, dx + o, S, k);
                }
            }
        }
        return;
    }

    std::vector<double> part((size_t)nt * C * 2, 0.0);
    std::vector<BwdCoef<A>> k(C);
    std::vector<A> ka_(C), kb_(C), kk_(C);
    const i64 rows = layout == 0 ? N * C : N * S;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num();
        int T_ = omp_get_num_threads();
        i64 r0, r1;
        split_range(rows, T_, t, r0, r1);
        double* sdy = part.data() + (size_t)t * C * 2;
        double* sdxc = sdy + C;
        if (layout == 0) {
            for (i64 r = r0; r < r1; ++r) {
                i64 c = r % C;
                grad_sums_row<T, A>(x + r * S, dy + r * S, S, mean[c], (A)0, sdy[c], sdxc[c]);
            }
        } else {
            const i64 rb = std::max<i64>(1, CL_BLOCK / std::max<i64>(C, 1));
            for (i64 q0 = r0; q0 < r1; q0 += rb) {
                const i64 q1 = std::min(r1, q0 + rb);
                constexpr int L = Vec<A>::lanes;
                for (i64 c0 = 0; c0 < C; c0 += L)
                    cl_chunk_grad_sums<T, A>(x, dy, q0, q1, C, c0, (int)std::min<i64>(L, C - c0),
                                             mean, sdy, sdxc);
            }
        }
#pragma omp barrier
#pragma omp single
        {
            for (i64 c = 0; c < C; ++c) {
                double a = 0, b = 0;
                for (int u = 0; u < T_; ++u) {
                    a += part[(size_t)u * C * 2 + c];
                    b += part[(size_t)u * C * 2 + C + c];
                }
                sum_dy_out[c] = (A)a;
                sum_dy_xhat_out[c] = (A)(b * (double)invstd[c]);
                k[c] = backward_coef<A>(mean[c], invstd[c], w, c, a, b, count, batch_stats);
                ka_[c] = k[c].a;
                kb_[c] = k[c].b;
                kk_[c] = k[c].k;
            }
        }
        if (dx) {
            if (layout == 0) {
                for (i64 r = r0; r < r1; ++r) {
                    dx_row(x + r * S, dy + r * S, dx + r * S, S, k[r % C]);
                }
            } else {
                const A* __restrict ka = ka_.data();
                const A* __restrict kb = kb_.data();
                const A* __restrict kk = kk_.data();
                for (i64 q = r0; q < r1; ++q) {
                    const T* __restrict xr = x + q * C;
                    const T* __restrict gr = dy + q * C;
                    T* __restrict dr = dx + q * C;
#pragma omp simd
                    for (i64 c = 0; c < C; ++c)
                        narrow(widen(gr[c]) * ka[c] + (widen(xr[c]) - mean[c]) * kb[c] + kk[c],
                               dr + c);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ entry points

extern "C" {

// dtype: 0 float32, 1 float64, 2 bfloat16, 3 float16.  layout: 0 NCS, 1 NSC.
int bnlab_forward(int dtype, int layout, const void* x, void* y, i64 N, i64 C, i64 S,
                  const void* weight, const void* bias, void* running_mean, void* running_var,
                  int batch_stats, double momentum, double eps, void* mean, void* invstd,
                  void* var, int nthreads) {
    int nt = std::max(1, nthreads);
    switch (dtype) {
        case 0: forward((const float*)x, (float*)y, N, C, S, layout, weight, bias, running_mean,
                        running_var, batch_stats, momentum, eps, mean, invstd, var, nt); return 0;
        case 1: forward((const double*)x, (double*)y, N, C, S, layout, weight, bias, running_mean,
                        running_var, batch_stats, momentum, eps, mean, invstd, var, nt); return 0;
        case 2: forward((const bf16*)x, (bf16*)y, N, C, S, layout, weight, bias, running_mean,
                        running_var, batch_stats, momentum, eps, mean, invstd, var, nt); return 0;
        case 3: forward((const _Float16*)x, (_Float16*)y, N, C, S, layout, weight, bias,
                        running_mean, running_var, batch_stats, momentum, eps, mean, invstd, var,
                        nt); return 0;
    }
    return 1;
}

int bnlab_backward(int dtype, int layout, const void* x, const void* dy, void* dx, i64 N, i64 C,
                   i64 S, const void* weight, const void* mean, const void* invstd,
                   int batch_stats, void* sum_dy, void* sum_dy_xhat, int nthreads) {
    int nt = std::max(1, nthreads);
    switch (dtype) {
        case 0: backward((const float*)x, (const float*)dy, (float*)dx, N, C, S, layout, weight,
                         mean, invstd, batch_stats, sum_dy, sum_dy_xhat, nt); return 0;
        case 1: backward((const double*)x, (const double*)dy, (double*)dx, N, C, S, layout,
                         weight, mean, invstd, batch_stats, sum_dy, sum_dy_xhat, nt); return 0;
        case 2: backward((const bf16*)x, (const bf16*)dy, (bf16*)dx, N, C, S, layout, weight,
                         mean, invstd, batch_stats, sum_dy, sum_dy_xhat, nt); return 0;
        case 3: backward((const _Float16*)x, (const _Float16*)dy, (_Float16*)dx, N, C, S, layout,
                         weight, mean, invstd, batch_stats, sum_dy, sum_dy_xhat, nt); return 0;
    }
    return 1;
}

int bnlab_abi_version(void) { return 1; }

}  // extern "C"
