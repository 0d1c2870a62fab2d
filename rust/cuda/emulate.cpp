// Host emulation of neuron.cu, for tests on machines without a GPU (tests/test_cuda.py).
//
// Compiles the kernels unchanged as C++ for the CPU (g++ -std=c++20 -ffp-contract=off, so float
// arithmetic rounds as on the GPU with --fmad=false) and runs a launch block by block, each
// block's SNNRS_BLOCK threads as real threads, with `__syncthreads` a block barrier and warp
// shuffles through shared slots and a warp barrier. It checks the kernels' arithmetic, indexing, vector packing, time loops
// and block reduction; not the driver, streams or timing. The one difference in the source:
// float16 conversions use the compiler's _Float16 (round to nearest even) instead of PTX `cvt`.

#include <barrier>
#include <cmath>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static  // blocks run one after another

struct uint4 { unsigned x, y, z, w; };
struct Dim { unsigned x; };
static thread_local Dim blockIdx, threadIdx;
static std::barrier<>* block_barrier;
static std::deque<std::barrier<>>* warp_barriers;  // one per warp: shuffles sync a warp only

inline uint4 __ldg(const uint4* p) { return *p; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float snnrs_host_f16_to_float(unsigned short bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return (float)h;
}
inline unsigned short snnrs_host_float_to_f16(float v) {
    _Float16 h = (_Float16)v;
    unsigned short bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline double __shfl_down_sync(unsigned, double v, int off) {
    static double slots[SNNRS_BLOCK];
    const unsigned t = threadIdx.x, lane = t & 31u;
    std::barrier<>& warp = (*warp_barriers)[t / 32];
    slots[t] = v;
    warp.arrive_and_wait();
    const double r = lane + off < 32 ? slots[t + off] : v;
    warp.arrive_and_wait();
    return r;
}

#define SNNRS_HOST_EMULATION
#include "neuron.cu"

// Runs `kernel` (an entry point of neuron.cu, found by name with dlsym / ctypes) over `grid`
// blocks; `op` says which argument struct `args` points to: 0 forward, 1 backward, 2 rate,
// 3 spikes (the pack and unpack kernels).
extern "C" void snnrs_emulate(const void* kernel, int op, unsigned grid, const void* args) {
    for (unsigned b = 0; b < grid; ++b) {
        std::barrier<> bar(SNNRS_BLOCK);
        std::deque<std::barrier<>> warps;  // barriers cannot move: no vector
        for (int w = 0; w < SNNRS_BLOCK / 32; ++w) warps.emplace_back(32);
        block_barrier = &bar;
        warp_barriers = &warps;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < SNNRS_BLOCK; ++t) {
            threads.emplace_back([=] {
                blockIdx.x = b;
                threadIdx.x = t;
                if (op == 0) ((void (*)(ForwardArgs))kernel)(*(const ForwardArgs*)args);
                if (op == 1) ((void (*)(BackwardArgs))kernel)(*(const BackwardArgs*)args);
                if (op == 2) ((void (*)(RateArgs))kernel)(*(const RateArgs*)args);
                if (op == 3) ((void (*)(SpikeArgs))kernel)(*(const SpikeArgs*)args);
            });
        }
        for (auto& th : threads) th.join();
    }
}
