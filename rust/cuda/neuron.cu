// snnrs CUDA kernels: IF / LIF / PLIF forward, BPTT backward and rate-mode forward.
//
// These are line-for-line twins of the CPU kernels in rust/neuron.rs (the math is docs/neurons.md's):
// same `Consts`, same charge / reset / reset-derivative expressions in the same order, the same
// surrogate formulas as rust/surrogate.rs. Compiled by NVRTC (rust/cuda/nvrtc.rs) with
// `--fmad=false`, so float32 rounds exactly as the CPU kernels do (only `expf` in the sigmoid
// surrogate differs by an ulp or two). Storage types are float32, float16 and bfloat16;
// arithmetic is always float32, and the charge sequence `H` is always stored in float32.
//
// Layout: `[T, N]` time-first buffers, `[N]` states. Each thread owns `V` consecutive neurons and
// runs the whole time loop over them, prefetching step t+1 while computing step t:
//   * `_vec` kernels: V = 16 / sizeof(T) (4 for float32, 8 for half types), one 16-byte access per
//     row of the storage type (two for H with half types). The launcher picks them only when every
//     pointer is 16-byte aligned and N is a multiple of V, so every row stays aligned.
//   * `_scalar` kernels: V = 1, one thread per neuron; correct for any alignment.
// Either way a warp's accesses to one row are contiguous (coalesced).
//
// Kernel arguments are one struct passed by value; rust/cuda/plan.rs mirrors each (repr(C)) and
// both sides assert its size. SNNRS_BLOCK (threads per block) comes from the launcher.

#ifndef SNNRS_BLOCK
#error "compile with -DSNNRS_BLOCK=<threads per block> (rust/cuda/plan.rs passes it)"
#endif

typedef unsigned short u16;
typedef unsigned long long u64;

// ---------------------------------------------------------------------------------------------
// Storage types and their conversions (round to nearest even, as torch's `.to()`).

struct f16 { u16 bits; };
struct bf16 { u16 bits; };

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(f16 v) {
#ifdef SNNRS_HOST_EMULATION  // emulate.cpp: these kernels compiled for the CPU, for tests
    return snnrs_host_f16_to_float(v.bits);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
#endif
}
__device__ __forceinline__ float to_float(bf16 v) { return __uint_as_float(((unsigned)v.bits) << 16); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ f16 from_float<f16>(float v) {
    f16 r;
#ifdef SNNRS_HOST_EMULATION
    r.bits = snnrs_host_float_to_f16(v);
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(v));
#endif
    return r;
}
template <> __device__ __forceinline__ bf16 from_float<bf16>(float v) {
    unsigned u = __float_as_uint(v);
    bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = 0x7fc0;  // NaN, as c10::BFloat16
    } else {
        r.bits = (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    return r;
}

// Neurons per thread of the `_vec` kernels: one 16-byte access of the storage type.
template <typename T> constexpr int VEC = 16 / sizeof(T);

// `V` consecutive elements at `p` to / from float32. Groups of 16 bytes go through one vector
// access (the launcher guarantees their alignment); anything smaller goes element by element.
template <typename T, int V>
__device__ __forceinline__ void load(const T* __restrict__ p, float (&out)[V]) {
    constexpr int P = 16 / sizeof(T);
    if constexpr (V % P == 0) {
        union Pack { uint4 raw; T v[P]; };
#pragma unroll
        for (int c = 0; c < V / P; ++c) {
            Pack pk;
            pk.raw = __ldg(reinterpret_cast<const uint4*>(p) + c);
#pragma unroll
            for (int j = 0; j < P; ++j) out[c * P + j] = to_float(pk.v[j]);
        }
    } else {
#pragma unroll
        for (int j = 0; j < V; ++j) out[j] = to_float(p[j]);
    }
}

template <typename T, int V>
__device__ __forceinline__ void store(T* __restrict__ p, const float (&in)[V]) {
    constexpr int P = 16 / sizeof(T);
    if constexpr (V % P == 0) {
        union Pack { uint4 raw; T v[P]; };
#pragma unroll
        for (int c = 0; c < V / P; ++c) {
            Pack pk;
#pragma unroll
            for (int j = 0; j < P; ++j) pk.v[j] = from_float<T>(in[c * P + j]);
            reinterpret_cast<uint4*>(p)[c] = pk.raw;
        }
    } else {
#pragma unroll
        for (int j = 0; j < V; ++j) p[j] = from_float<T>(in[j]);
    }
}

// ---------------------------------------------------------------------------------------------
// Constants of the recurrences (rust/neuron.rs `Consts`), computed by the launcher in float64 and
// rounded once, exactly as the CPU kernels do.

struct Consts {
    float leak;        // 1 / tau (0 for IF)
    float decay;       // dH/dV = 1 - leak
    float input_gain;  // dH/dx: leak with decay_input, else 1
    float threshold;
    float v_rest;      // v_reset, or 0 for soft reset
    float reset_grad;  // 0 with detach_reset, else 1
    float sg_a;        // the surrogate's two constants (see the functors below)
    float sg_b;
    unsigned decay_input;
    unsigned hard;     // hard reset to v_rest, else soft (subtract the threshold)
};
static_assert(sizeof(Consts) == 40, "Consts layout must match rust/cuda/plan.rs");

// PLIF: leak = sigmoid(w) lives on the device (no host sync); `leak_ptr` overrides `leak`.
__device__ __forceinline__ Consts resolve(Consts c, const float* leak_ptr) {
    if (leak_ptr != nullptr) {
        const float l = *leak_ptr;
        c.leak = l;
        c.decay = 1.0f - l;  // rounds once, like the CPU's (1.0 - leak) in float64 then f32
        if (c.decay_input) c.input_gain = l;
    }
    return c;
}

__device__ __forceinline__ float charge(const Consts& c, float v, float x) {
    return c.decay_input ? v + (x - (v - c.v_rest)) * c.leak : v - (v - c.v_rest) * c.leak + x;
}

__device__ __forceinline__ float fire(const Consts& c, float h) {
    return h >= c.threshold ? 1.0f : 0.0f;
}

__device__ __forceinline__ float reset(const Consts& c, float h, float s) {
    return c.hard ? h * (1.0f - s) + c.v_rest * s : h - c.threshold * s;
}

// dV_t / dH_t with surrogate value sg (the reset's own term vanishes when detached).
__device__ __forceinline__ float reset_derivative(const Consts& c, float h, float s, float sg) {
    return c.hard ? (1.0f - s) + (c.v_rest - h) * sg * c.reset_grad
                  : 1.0f - c.threshold * sg * c.reset_grad;
}

// ---------------------------------------------------------------------------------------------
// Surrogates sg(u), u = H - v_threshold (rust/surrogate.rs; constants from `Consts::sg_a/sg_b`).

struct Sigmoid {  // a * s * (1 - s), s = sigmoid(-a|u|)
    float a;
    __device__ explicit Sigmoid(const Consts& c) : a(c.sg_a) {}
    __device__ __forceinline__ float operator()(float u) const {
        const float s = 1.0f / (1.0f + expf(a * fabsf(u)));
        return a * s * (1.0f - s);
    }
};
struct Atan {  // (a / 2) / (1 + (pi / 2 * a * u)^2)
    float half_a, scale;
    __device__ explicit Atan(const Consts& c) : half_a(c.sg_a), scale(c.sg_b) {}
    __device__ __forceinline__ float operator()(float u) const {
        const float z = scale * u;
        return half_a / (1.0f + z * z);
    }
};
struct Triangle {  // max(0, g - |u|) / g^2
    float g, inv_g2;
    __device__ explicit Triangle(const Consts& c) : g(c.sg_a), inv_g2(c.sg_b) {}
    __device__ __forceinline__ float operator()(float u) const {
        const float d = g - fabsf(u);
        return d > 0.0f ? d * inv_g2 : 0.0f;
    }
};
struct Rectangle {  // (1 / w) * [|u| < w / 2]
    float half_w, inv_w;
    __device__ explicit Rectangle(const Consts& c) : half_w(c.sg_a), inv_w(c.sg_b) {}
    __device__ __forceinline__ float operator()(float u) const {
        return fabsf(u) < half_w ? inv_w : 0.0f;
    }
};
struct FastSigmoid {  // 1 / (1 + k|u|)^2
    float k;
    __device__ explicit FastSigmoid(const Consts& c) : k(c.sg_a) {}
    __device__ __forceinline__ float operator()(float u) const {
        const float d = 1.0f + k * fabsf(u);
        return 1.0f / (d * d);
    }
};

// ---------------------------------------------------------------------------------------------
// Kernel arguments. Pointers are device addresses of torch tensors; optional ones are null.

struct ForwardArgs {
    const void* x;         // [T, N] T
    const void* v0;        // [N] T
    void* spikes;          // [T, N] T
    float* h_seq;          // [T, N] float32
    void* v;               // [N] T
    const float* leak_ptr; // PLIF's sigmoid(w), or null
    u64 steps, n;
    Consts c;
};
static_assert(sizeof(ForwardArgs) == 104, "ForwardArgs layout must match rust/cuda/plan.rs");

struct BackwardArgs {
    const void* grad_spikes;  // [T, N] T
    const void* grad_v;       // [N] T, or null (dL/dv_T = 0)
    const float* h_seq;       // [T, N] float32
    const void* v0;           // [N] T, or null: no leak gradient (not PLIF)
    void* grad_x;             // [T, N] T
    void* grad_v0;            // [N] T
    double* partials;         // [gridDim.x]: each block's sum of dL/d(leak) (with v0)
    const float* leak_ptr;
    u64 steps, n;
    Consts c;
};
static_assert(sizeof(BackwardArgs) == 120, "BackwardArgs layout must match rust/cuda/plan.rs");

struct RateArgs {
    const void* x;         // [T, N] T
    const void* v0;        // [N] T
    void* spikes;          // [T, N] T
    void* v;               // [N] T
    void* rate;            // [N] T
    void* eligibility;     // [N] T
    const float* leak_ptr;
    u64 steps, n;
    Consts c;
};
static_assert(sizeof(RateArgs) == 112, "RateArgs layout must match rust/cuda/plan.rs");

// The first neuron of this thread: V consecutive neurons per thread.
template <int V> __device__ __forceinline__ u64 first_neuron() {
    return ((u64)blockIdx.x * SNNRS_BLOCK + threadIdx.x) * V;
}

template <int V> __device__ __forceinline__ void copy(float (&dst)[V], const float (&src)[V]) {
#pragma unroll
    for (int j = 0; j < V; ++j) dst[j] = src[j];
}

// ---------------------------------------------------------------------------------------------
// Forward: spikes S, charges H (saved for backward) and the final state v_T.

template <typename T, int V> __device__ __forceinline__ void forward_kernel(const ForwardArgs& a) {
    const u64 n = a.n, i0 = first_neuron<V>();
    if (i0 >= n) return;
    const Consts c = resolve(a.c, a.leak_ptr);
    const T* x = static_cast<const T*>(a.x) + i0;
    T* s_out = static_cast<T*>(a.spikes) + i0;
    float* h_out = a.h_seq + i0;
    float v[V], xt[V], xn[V] = {};
    load<T, V>(static_cast<const T*>(a.v0) + i0, v);
    load<T, V>(x, xt);
    for (u64 t = 0; t < a.steps; ++t) {
        if (t + 1 < a.steps) load<T, V>(x + n, xn);  // in flight while step t computes
        float s[V], h[V];
#pragma unroll
        for (int j = 0; j < V; ++j) {
            h[j] = charge(c, v[j], xt[j]);
            s[j] = fire(c, h[j]);
            v[j] = reset(c, h[j], s[j]);
        }
        store<T, V>(s_out, s);
        store<float, V>(h_out, h);
        x += n;
        s_out += n;
        h_out += n;
        copy<V>(xt, xn);
    }
    store<T, V>(static_cast<T*>(a.v) + i0, v);
}

// ---------------------------------------------------------------------------------------------
// Backward (BPTT from H alone). With v0 (PLIF) it also sums dL/d(leak): per thread in float64,
// then per block (warp shuffles, then one shared-memory pass), one value per block.

__device__ __forceinline__ void block_sum(double acc, double* out) {
    __shared__ double warp_sums[SNNRS_BLOCK / 32];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < SNNRS_BLOCK / 32 ? warp_sums[lane] : 0.0;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
        if (lane == 0) out[blockIdx.x] = acc;
    }
}

template <typename T, int V, typename SG>
__device__ __forceinline__ void backward_kernel(const BackwardArgs& a) {
    const u64 n = a.n, i0 = first_neuron<V>();
    const bool leak_grad = a.v0 != nullptr;  // uniform over the grid
    double acc = 0.0;
    if (i0 < n) {
        const Consts c = resolve(a.c, a.leak_ptr);
        const SG sg(c);
        const u64 last = (a.steps - 1) * n;
        const T* gs_p = static_cast<const T*>(a.grad_spikes) + last + i0;
        const float* h_p = a.h_seq + last + i0;
        T* gx_p = static_cast<T*>(a.grad_x) + last + i0;
        float gv[V] = {}, gs[V], h[V], gs_prev[V] = {}, h_prev[V] = {}, v_prev[V] = {};
        if (a.grad_v != nullptr) load<T, V>(static_cast<const T*>(a.grad_v) + i0, gv);
        load<T, V>(gs_p, gs);
        load<float, V>(h_p, h);
        for (u64 k = a.steps; k-- > 0;) {  // k = t, from T-1 down to 0
            if (k > 0) {  // step t-1, in flight while step t computes; H_{t-1} also gives V_{t-1}
                load<T, V>(gs_p - n, gs_prev);
                load<float, V>(h_p - n, h_prev);
            }
            if (leak_grad) {
                if (k > 0) {
#pragma unroll
                    for (int j = 0; j < V; ++j) v_prev[j] = reset(c, h_prev[j], fire(c, h_prev[j]));
                } else {
                    load<T, V>(static_cast<const T*>(a.v0) + i0, v_prev);
                }
            }
            float gx[V];
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const float s = fire(c, h[j]);
                const float sgv = sg(h[j] - c.threshold);
                const float gh = gs[j] * sgv + gv[j] * reset_derivative(c, h[j], s, sgv);
                gx[j] = gh * c.input_gain;
                gv[j] = gh * c.decay;
                if (leak_grad) {
                    // dH/d(leak): x - (V - v_rest) = (H - V) / leak with decay_input,
                    // else -(V - v_rest).
                    const float dh = c.decay_input ? (h[j] - v_prev[j]) / c.leak
                                                   : c.v_rest - v_prev[j];
                    acc += (double)(gh * dh);
                }
            }
            store<T, V>(gx_p, gx);
            if (k > 0) {
                gs_p -= n;
                h_p -= n;
                gx_p -= n;
                copy<V>(gs, gs_prev);
                copy<V>(h, h_prev);
            }
        }
        store<T, V>(static_cast<T*>(a.grad_v0) + i0, gv);
    }
    if (leak_grad) block_sum(acc, a.partials);  // every thread of the block takes part
}

// ---------------------------------------------------------------------------------------------
// Rate mode (no gradient): spikes, v_T, rate = mean_t S_t, eligibility = mean_t k_t * sg_t.

template <typename T, int V, typename SG>
__device__ __forceinline__ void rate_kernel(const RateArgs& a) {
    const u64 n = a.n, i0 = first_neuron<V>();
    if (i0 >= n) return;
    const Consts c = resolve(a.c, a.leak_ptr);
    const SG sg(c);
    const T* x = static_cast<const T*>(a.x) + i0;
    T* s_out = static_cast<T*>(a.spikes) + i0;
    float v[V], xt[V], xn[V] = {}, rate[V], elig[V], k[V];
    load<T, V>(static_cast<const T*>(a.v0) + i0, v);
    load<T, V>(x, xt);
#pragma unroll
    for (int j = 0; j < V; ++j) {
        rate[j] = 0.0f;
        elig[j] = 0.0f;
        k[j] = c.input_gain;
    }
    for (u64 t = 0; t < a.steps; ++t) {
        if (t + 1 < a.steps) load<T, V>(x + n, xn);
        float s[V];
#pragma unroll
        for (int j = 0; j < V; ++j) {
            const float h = charge(c, v[j], xt[j]);
            s[j] = fire(c, h);
            const float sgv = sg(h - c.threshold);
            rate[j] = rate[j] + s[j];
            elig[j] = elig[j] + k[j] * sgv;
            k[j] = c.input_gain + c.decay * k[j] * reset_derivative(c, h, s[j], sgv);
            v[j] = reset(c, h, s[j]);
        }
        store<T, V>(s_out, s);
        x += n;
        s_out += n;
        copy<V>(xt, xn);
    }
    const float steps = (float)a.steps;
#pragma unroll
    for (int j = 0; j < V; ++j) {
        rate[j] = rate[j] / steps;
        elig[j] = elig[j] / steps;
    }
    store<T, V>(static_cast<T*>(a.v) + i0, v);
    store<T, V>(static_cast<T*>(a.rate) + i0, rate);
    store<T, V>(static_cast<T*>(a.eligibility) + i0, elig);
}

// ---------------------------------------------------------------------------------------------
// Entry points: snnrs_<op>_<dtype>[_<surrogate>]_<vec|scalar> (rust/cuda/plan.rs `Kernel::name`).

#define SNNRS_ENTRY(NAME, ARGS) extern "C" __global__ void __launch_bounds__(SNNRS_BLOCK) NAME(const ARGS a)

#define SNNRS_FORWARD(TN, T)                                                               \
    SNNRS_ENTRY(snnrs_forward_##TN##_vec, ForwardArgs) { forward_kernel<T, VEC<T>>(a); }   \
    SNNRS_ENTRY(snnrs_forward_##TN##_scalar, ForwardArgs) { forward_kernel<T, 1>(a); }

#define SNNRS_WITH_SURROGATE(TN, T, SN, SG)                                                  \
    SNNRS_ENTRY(snnrs_backward_##TN##_##SN##_vec, BackwardArgs) {                            \
        backward_kernel<T, VEC<T>, SG>(a);                                                   \
    }                                                                                        \
    SNNRS_ENTRY(snnrs_backward_##TN##_##SN##_scalar, BackwardArgs) {                         \
        backward_kernel<T, 1, SG>(a);                                                        \
    }                                                                                        \
    SNNRS_ENTRY(snnrs_rate_##TN##_##SN##_vec, RateArgs) { rate_kernel<T, VEC<T>, SG>(a); }   \
    SNNRS_ENTRY(snnrs_rate_##TN##_##SN##_scalar, RateArgs) { rate_kernel<T, 1, SG>(a); }

#define SNNRS_DTYPE(TN, T)                                        \
    SNNRS_FORWARD(TN, T)                                          \
    SNNRS_WITH_SURROGATE(TN, T, sigmoid, Sigmoid)                 \
    SNNRS_WITH_SURROGATE(TN, T, atan, Atan)                       \
    SNNRS_WITH_SURROGATE(TN, T, triangle, Triangle)               \
    SNNRS_WITH_SURROGATE(TN, T, rectangle, Rectangle)             \
    SNNRS_WITH_SURROGATE(TN, T, fast_sigmoid, FastSigmoid)

SNNRS_DTYPE(f32, float)
SNNRS_DTYPE(f16, f16)
SNNRS_DTYPE(bf16, bf16)

// ---------------------------------------------------------------------------------------------
// Spikes at one bit per element (rust/spikes.rs, the CPU twin): element k is bit k % 8 of byte
// k / 8, least significant first, padding bits 0. The kernels move bit patterns only, one per
// element width (u16: float16 and bfloat16, u32: float32, u64: float64); `one` is the pattern of
// +1.0 in the storage type. The pack sets `*flag = 1` when any element is neither +0.0's nor
// +1.0's pattern (the caller zeroes the flag first and discards the bits then); every writer
// stores the same value, so no atomic is needed.

struct SpikeArgs {
    const void* src;      // pack: n elements; unpack: ceil(n / 8) bytes
    void* dst;            // pack: ceil(n / 8) bytes; unpack: n elements
    unsigned char* flag;  // pack only
    u64 n;
    u64 one;
};
static_assert(sizeof(SpikeArgs) == 40, "SpikeArgs layout must match rust/cuda/plan.rs");

// One thread per output byte: its 8 elements (fewer in the last byte).
template <typename U>
__device__ __forceinline__ void pack_kernel(const SpikeArgs& a) {
    const u64 byte = (u64)blockIdx.x * SNNRS_BLOCK + threadIdx.x;
    const u64 first = byte * 8;
    if (first >= a.n) return;
    const U* __restrict__ x = static_cast<const U*>(a.src) + first;
    const U one = (U)a.one;
    const u64 count = a.n - first < 8 ? a.n - first : 8;
    unsigned bits = 0;
    bool bad = false;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        if ((u64)i < count) {
            const U v = x[i];
            bits |= (unsigned)(v == one) << i;
            bad |= v != one && v != (U)0;
        }
    }
    static_cast<unsigned char*>(a.dst)[byte] = (unsigned char)bits;
    if (bad) *a.flag = 1;
}

// One thread per output element (coalesced stores; eight threads read each byte).
template <typename U>
__device__ __forceinline__ void unpack_kernel(const SpikeArgs& a) {
    const u64 k = (u64)blockIdx.x * SNNRS_BLOCK + threadIdx.x;
    if (k >= a.n) return;
    const unsigned byte = static_cast<const unsigned char*>(a.src)[k >> 3];
    static_cast<U*>(a.dst)[k] = ((byte >> (k & 7)) & 1u) ? (U)a.one : (U)0;
}

#define SNNRS_SPIKES(BITS, U)                                                         \
    SNNRS_ENTRY(snnrs_pack_u##BITS, SpikeArgs) { pack_kernel<U>(a); }                 \
    SNNRS_ENTRY(snnrs_unpack_u##BITS, SpikeArgs) { unpack_kernel<U>(a); }

SNNRS_SPIKES(16, u16)
SNNRS_SPIKES(32, unsigned)
SNNRS_SPIKES(64, u64)
