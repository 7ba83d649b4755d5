/* The Arm SIMD32 instructions the kernels use (Cortex-M4, M7, M33 with the DSP extension), as inline
 * assembly of our own rather than <arm_acle.h>: GCC's header gained these intrinsics only in GCC 10,
 * and the Arduino mbed cores still ship GCC 7. TP_SIMD32 is 1 where they exist and the compiler takes
 * GNU inline assembly (GCC, clang, armclang); the kernels fall back to portable C elsewhere (M0+, M3,
 * ESP32, the host). Each wrapper is one instruction but the max / min ones (two, in one statement:
 * SEL reads the flags SSUB8 or SSUB16 sets, so nothing may come between them). */
#ifndef TP_SIMD_H
#define TP_SIMD_H

#include <stdint.h>

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32 && defined(__GNUC__)
#define TP_SIMD32 1

/* bytes 0 and 2 of x, sign-extended into the low and high 16-bit halves */
static inline int32_t tp_sxtb16(uint32_t x)
{
    int32_t result;
    __asm__("sxtb16 %0, %1" : "=r"(result) : "r"(x));
    return result;
}

/* bytes 1 and 3 of x, sign-extended into the low and high 16-bit halves */
static inline int32_t tp_sxtb16_ror8(uint32_t x)
{
    int32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
}

/* acc + a.low * b.low + a.high * b.high (16-bit halves, signed) */
static inline int32_t tp_smlad(int32_t a, int32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlad %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}

/* acc + a.low * b.low */
static inline int32_t tp_smlabb(int32_t a, int32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}

/* acc + a.low * b.high */
static inline int32_t tp_smlabt(int32_t a, int32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}

/* high + (a * b + 2^31) / 2^32 rounded down: the high word of a 64-bit product, rounded, plus `high` */
static inline int32_t tp_smmlar(int32_t a, int32_t b, int32_t high)
{
    int32_t result;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(high));
    return result;
}

/* x saturated to a signed 8-bit value */
static inline int32_t tp_ssat8(int32_t x)
{
    int32_t result;
    __asm__("ssat %0, #8, %1" : "=r"(result) : "r"(x));
    return result;
}

/* the low half of a, the low half of b as the high half */
static inline uint32_t tp_pkhbt(int32_t a, int32_t b)
{
    uint32_t result;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(result) : "r"(a), "r"(b));
    return result;
}

/* per byte, signed: the larger of a and b (SSUB8 sets a flag per byte where a >= b, SEL picks by it) */
static inline uint32_t tp_max_s8x4(uint32_t a, uint32_t b)
{
    uint32_t difference, result;
    __asm__("ssub8 %0, %2, %3\n\tsel %1, %2, %3" : "=&r"(difference), "=r"(result) : "r"(a), "r"(b) : "cc");
    (void)difference;
    return result;
}

/* per byte, signed: the smaller of a and b */
static inline uint32_t tp_min_s8x4(uint32_t a, uint32_t b)
{
    uint32_t difference, result;
    __asm__("ssub8 %0, %2, %3\n\tsel %1, %3, %2" : "=&r"(difference), "=r"(result) : "r"(a), "r"(b) : "cc");
    (void)difference;
    return result;
}

/* per signed 16-bit half: the larger of a and b */
static inline uint32_t tp_max_s16x2(uint32_t a, uint32_t b)
{
    uint32_t difference, result;
    __asm__("ssub16 %0, %2, %3\n\tsel %1, %2, %3" : "=&r"(difference), "=r"(result) : "r"(a), "r"(b) : "cc");
    (void)difference;
    return result;
}

/* per signed 16-bit half: the smaller of a and b */
static inline uint32_t tp_min_s16x2(uint32_t a, uint32_t b)
{
    uint32_t difference, result;
    __asm__("ssub16 %0, %2, %3\n\tsel %1, %3, %2" : "=&r"(difference), "=r"(result) : "r"(a), "r"(b) : "cc");
    (void)difference;
    return result;
}

#else
#define TP_SIMD32 0
#endif

#endif /* TP_SIMD_H */
