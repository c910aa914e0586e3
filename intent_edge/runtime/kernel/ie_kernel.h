/* intent-edge network kernel: the layers of a session model, in portable C99.
 *
 * One source serves two builds: the runtime's native backend (intent_edge/runtime/_native.c) includes
 * it, and `intent-edge export --format c` copies it byte for byte beside the generated library. Every
 * function is static, so two generated libraries link into one program without clashing.
 *
 * Arithmetic: each output unit's sum starts from its bias and adds input i's product for i = 0, 1, ...
 * in that order, in float, with contraction into fused multiply-adds switched off (the pragma below;
 * GCC ignores it, so build with -ffp-contract=off). The vector path (GCC and Clang vector types) works
 * across output units, so every sum keeps its order and the scalar path (-DIE_SCALAR) gives the same
 * bits. Zero inputs and, in a sparse layer, zero weights are skipped: adding 0 * x to a finite sum
 * leaves it as it was (but for the sign of a zero sum, which no activation here can see), so the
 * sparse layer gives the dense layer's bits.
 */
#ifndef IE_KERNEL_H
#define IE_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* a library uses the layer kinds its network has; the others are not warned of */
#if defined(__GNUC__)
#define IE_MAYBE_UNUSED __attribute__((unused))
#else
#define IE_MAYBE_UNUSED
#endif

#define IE_CHUNK 256 /* inputs whose zeros are sorted out at a time (a fixed stack array): one pass for most layers */
#define IE_ACTIVATION_NONE 0
#define IE_ACTIVATION_RELU 1
#define IE_ACTIVATION_SIGMOID 2

#if defined(__GNUC__) && !defined(IE_SCALAR)
#define IE_VECTOR_WIDTH 4  /* 128 bits: SSE2 and NEON registers, so no target flag is needed */
typedef float ie_vector __attribute__((vector_size(IE_VECTOR_WIDTH * sizeof(float))));
/* int8 layers, 16 inputs at a time: the even and the odd bytes of 16 are sign-extended to 16-bit lanes by
 * shifts (SSE2 and NEON have them; a byte-to-short conversion compiles to much slower code under GCC),
 * their products (at most 255 * 128 in size) fit in 16 bits, and are summed as 32-bit halves. Integer
 * sums do not depend on their order, so this gives the scalar loop's result. */
typedef int16_t ie_shorts __attribute__((vector_size(16)));
typedef uint16_t ie_ushorts __attribute__((vector_size(16)));
typedef int32_t ie_ints __attribute__((vector_size(16)));
typedef uint32_t ie_uints __attribute__((vector_size(16)));
#define IE_EVEN_BYTES(v) ((ie_shorts)((ie_ushorts)(v) << 8) >> 8)
#define IE_ODD_BYTES(v) ((v) >> 8)
#define IE_HALVES_SUM(v) (((ie_ints)((ie_uints)(v) << 16) >> 16) + ((ie_ints)(v) >> 16))
#endif

/* The ReLU masks the bits instead of branching: about half the units of a layer are cut to zero, in no
 * pattern a branch predictor learns, and a mispredicted branch per unit cost more than the layer's
 * arithmetic (compilers keep the branch of `x > 0 ? x : 0` for NaN's sake). With vectors, a vector of
 * units at a time (a comparison gives the mask). NaN, -0 and negatives all become +0, as before. */
IE_MAYBE_UNUSED static void ie_activate(float *out, int outputs, int activation)
{
    int j;
    if (activation == IE_ACTIVATION_RELU) {
        j = 0;
#ifdef IE_VECTOR_WIDTH
        for (; j + IE_VECTOR_WIDTH <= outputs; j += IE_VECTOR_WIDTH) {
            const ie_vector zero = {0.0f, 0.0f, 0.0f, 0.0f};
            ie_vector value;
            ie_ints bits;
            memcpy(&value, out + j, sizeof value);
            bits = (ie_ints)value & (value > zero);
            memcpy(out + j, &bits, sizeof bits);
        }
#endif
        for (; j < outputs; j++) {
            uint32_t bits;
            memcpy(&bits, &out[j], sizeof bits);
            bits &= 0u - (uint32_t)(out[j] > 0.0f);
            memcpy(&out[j], &bits, sizeof bits);
        }
    } else if (activation == IE_ACTIVATION_SIGMOID) {
        for (j = 0; j < outputs; j++) out[j] = (float)(1.0 / (1.0 + exp(-(double)out[j])));
    }
}

/* out[j] = activation(bias[j] + sum over i of in[i] * weights[i * outputs + j]): weights row-major
 * [inputs][outputs], as ONNX MatMul stores them. The loop runs over inputs and, inside, over output
 * units, so the sums advance side by side (no long chain of dependent adds) and each keeps its order.
 * A zero input is skipped: most of an encoded row is one-hot zeros, and adding 0 * w leaves a sum as
 * it was (the sign of a zero sum aside, which neither activation can see). */
IE_MAYBE_UNUSED static void ie_dense(const float *in, int inputs, const float *weights, const float *bias,
                                     int outputs, int activation, float *out)
{
    int active[IE_CHUNK], start, count, k, j;
    memcpy(out, bias, sizeof(float) * (size_t)outputs);
    for (start = 0; start < inputs; start += IE_CHUNK) {
        const int stop = start + IE_CHUNK < inputs ? start + IE_CHUNK : inputs;
        /* the non-zero inputs of this chunk, listed without a branch: which inputs are zero changes
         * from record to record, and a mispredicted branch per input costs more than the work it saves */
        for (count = 0, k = start; k < stop; k++) {
            uint32_t bits; /* tested as an integer, which is quicker than a float compare: +0 and -0 skip */
            memcpy(&bits, &in[k], sizeof bits);
            active[count] = k;
            count += (bits << 1) != 0u;
        }
        j = 0;
#ifdef IE_VECTOR_WIDTH
        /* a tile of 8 vectors of output units stays in registers while the inputs stream past: 8
         * independent sums hide the latency of each add (fewer left the loop waiting on them) */
        for (; j + 8 * IE_VECTOR_WIDTH <= outputs; j += 8 * IE_VECTOR_WIDTH) {
            ie_vector s0, s1, s2, s3, s4, s5, s6, s7, w;
            memcpy(&s0, out + j, sizeof s0);
            memcpy(&s1, out + j + IE_VECTOR_WIDTH, sizeof s1);
            memcpy(&s2, out + j + 2 * IE_VECTOR_WIDTH, sizeof s2);
            memcpy(&s3, out + j + 3 * IE_VECTOR_WIDTH, sizeof s3);
            memcpy(&s4, out + j + 4 * IE_VECTOR_WIDTH, sizeof s4);
            memcpy(&s5, out + j + 5 * IE_VECTOR_WIDTH, sizeof s5);
            memcpy(&s6, out + j + 6 * IE_VECTOR_WIDTH, sizeof s6);
            memcpy(&s7, out + j + 7 * IE_VECTOR_WIDTH, sizeof s7);
            for (k = 0; k < count; k++) {
                const float x = in[active[k]];
                const float *row = weights + (long)active[k] * outputs + j;
                memcpy(&w, row, sizeof w);
                s0 += x * w;
                memcpy(&w, row + IE_VECTOR_WIDTH, sizeof w);
                s1 += x * w;
                memcpy(&w, row + 2 * IE_VECTOR_WIDTH, sizeof w);
                s2 += x * w;
                memcpy(&w, row + 3 * IE_VECTOR_WIDTH, sizeof w);
                s3 += x * w;
                memcpy(&w, row + 4 * IE_VECTOR_WIDTH, sizeof w);
                s4 += x * w;
                memcpy(&w, row + 5 * IE_VECTOR_WIDTH, sizeof w);
                s5 += x * w;
                memcpy(&w, row + 6 * IE_VECTOR_WIDTH, sizeof w);
                s6 += x * w;
                memcpy(&w, row + 7 * IE_VECTOR_WIDTH, sizeof w);
                s7 += x * w;
            }
            memcpy(out + j, &s0, sizeof s0);
            memcpy(out + j + IE_VECTOR_WIDTH, &s1, sizeof s1);
            memcpy(out + j + 2 * IE_VECTOR_WIDTH, &s2, sizeof s2);
            memcpy(out + j + 3 * IE_VECTOR_WIDTH, &s3, sizeof s3);
            memcpy(out + j + 4 * IE_VECTOR_WIDTH, &s4, sizeof s4);
            memcpy(out + j + 5 * IE_VECTOR_WIDTH, &s5, sizeof s5);
            memcpy(out + j + 6 * IE_VECTOR_WIDTH, &s6, sizeof s6);
            memcpy(out + j + 7 * IE_VECTOR_WIDTH, &s7, sizeof s7);
        }
        /* what is left, a vector at a time */
        for (; j + IE_VECTOR_WIDTH <= outputs; j += IE_VECTOR_WIDTH) {
            ie_vector sum, w;
            memcpy(&sum, out + j, sizeof sum);
            for (k = 0; k < count; k++) {
                memcpy(&w, weights + (long)active[k] * outputs + j, sizeof w);
                sum += in[active[k]] * w;
            }
            memcpy(out + j, &sum, sizeof sum);
        }
#endif
        for (; j < outputs; j++) {
            float sum = out[j];
            for (k = 0; k < count; k++) sum += in[active[k]] * weights[(long)active[k] * outputs + j];
            out[j] = sum;
        }
    }
    ie_activate(out, outputs, activation);
}

/* ie_dense with only the non-zero weights: input i's weights are values[starts[i] .. starts[i + 1]) for
 * output units columns[...] (ascending). */
IE_MAYBE_UNUSED static void ie_sparse(const float *in, int inputs, const int *starts,
                                      const unsigned short *columns, const float *values, const float *bias,
                                      int outputs, int activation, float *out)
{
    int i, k;
    memcpy(out, bias, sizeof(float) * (size_t)outputs);
    for (i = 0; i < inputs; i++) {
        const float x = in[i];
        if (x == 0.0f) continue;
        for (k = starts[i]; k < starts[i + 1]; k++) out[columns[k]] += x * values[k];
    }
    ie_activate(out, outputs, activation);
}

/* ---- int8: integer-only layers, from a LiteRT full-integer model's scales ------------------------- */

/* out[i] = clamp(round(in[i] / scale) + zero_point): a float row quantised to int8, halves rounded away
 * from zero as TFLite does, in double, so that every host gives the same result. */
IE_MAYBE_UNUSED static void ie_quantize(const float *in, int count, double scale, int zero_point, int8_t *out)
{
    int i;
    for (i = 0; i < count; i++) {
        const double q = round((double)in[i] / scale) + zero_point;
        out[i] = (int8_t)(q < -128.0 ? -128 : q > 127.0 ? 127 : (int)q);
    }
}

/* round(accumulator * multiplier * 2^(shift - 31)), halves rounded up: the fixed-point requantisation of
 * TFLite's single-rounding mode, in 64-bit integers, with a negative value divided rather than shifted
 * (shifting one is implementation-defined in C), so that every host gives the same result. */
IE_MAYBE_UNUSED static int32_t ie_requantize(int32_t accumulator, int32_t multiplier, int shift)
{
    const int right = 31 - shift;
    const int64_t value = (int64_t)accumulator * multiplier + ((int64_t)1 << (right - 1));
    return (int32_t)(value >= 0 ? value >> right : -((-value + (((int64_t)1 << right) - 1)) >> right));
}

/* out[o] = clamp(output_zero_point + requantize(bias[o] + sum over i of (in[i] - input_zero_point) *
 * weights[o * inputs + i])), weights row-major [outputs][inputs] as LiteRT stores them, one multiplier
 * and shift per output channel. The sums are int32 (a product is at most 255 * 127, so 66,000 inputs
 * fit) and integer sums do not depend on their order, so the compiler may vectorise them freely. */
IE_MAYBE_UNUSED static void ie_dense_int8(const int8_t *in, int inputs, int input_zero_point,
                                          const int8_t *weights, const int32_t *bias, const int32_t *multipliers,
                                          const int *shifts, int output_zero_point, int low, int high,
                                          int outputs, int8_t *out)
{
    int i, o;
    for (o = 0; o < outputs; o++) {
        const int8_t *row = weights + (long)o * inputs;
        int32_t sum = bias[o], value;
        i = 0;
#ifdef IE_VECTOR_WIDTH
        {
            const ie_shorts zero_point = (ie_shorts){0, 0, 0, 0, 0, 0, 0, 0} + (int16_t)input_zero_point;
            ie_ints sums = {0, 0, 0, 0};
            ie_shorts x, w;
            for (; i + 16 <= inputs; i += 16) {
                memcpy(&x, in + i, sizeof x);
                memcpy(&w, row + i, sizeof w);
                sums += IE_HALVES_SUM((IE_EVEN_BYTES(x) - zero_point) * IE_EVEN_BYTES(w));
                sums += IE_HALVES_SUM((IE_ODD_BYTES(x) - zero_point) * IE_ODD_BYTES(w));
            }
            sum += sums[0] + sums[1] + sums[2] + sums[3];
        }
#endif
        for (; i < inputs; i++) sum += (int32_t)(in[i] - input_zero_point) * row[i];
        value = output_zero_point + ie_requantize(sum, multipliers[o], shifts[o]);
        out[o] = (int8_t)(value < low ? low : value > high ? high : value);
    }
}

#endif /* IE_KERNEL_H */
