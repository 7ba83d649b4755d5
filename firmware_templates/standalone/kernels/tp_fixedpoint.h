/* gemmlowp's fixed-point exp and reciprocal, which TFLM's int8 SOFTMAX, LOGISTIC and TANH use, operation
 * for operation (raw int32 values; "Qm" = m integer bits, 31 - m fractional). */
#ifndef TP_FIXEDPOINT_H
#define TP_FIXEDPOINT_H

#include "tp_arith.h"

/* x * 2^exponent saturated to int32 (SaturatingRoundingMultiplyByPOT, exponent > 0). */
static inline int32_t tp_saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0 in and out: a Taylor expansion around -1/8. */
static inline int32_t tp_exp_near_zero(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tp_doubling_high_mul(x, x);
    const int32_t x3 = tp_doubling_high_mul(x2, x);
    const int32_t x4 = tp_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tp_rounding_divide_by_pot(x4, 2);
    const int32_t polynomial =
        tp_rounding_divide_by_pot(tp_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tp_doubling_high_mul(exp_minus_one_eighth, x + polynomial);
}

/* exp(a) for a <= 0 in Q`integer_bits` (at most 5); the result in Q0. */
static inline int32_t tp_exp_on_negative_values(int32_t a, int integer_bits)
{
    static const int32_t exp_of_minus_powers_of_two[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result =
        tp_exp_near_zero((int32_t)((uint32_t)a_mod_quarter_minus_one_quarter << integer_bits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int exponent = -2; exponent <= 4 && exponent < integer_bits; ++exponent) {
        if (remainder & (1 << (fractional_bits + exponent))) {
            result = tp_doubling_high_mul(result, exp_of_minus_powers_of_two[exponent + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* Three Newton-Raphson steps towards 1 / (1 + a) for a in [0, 1) in Q0, the estimate in Q2. */
static inline int32_t tp_reciprocal_of_one_plus_q2(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t one_q2 = 1 << 29;
    int32_t x = 1515870810 /* 48/17 */ + tp_doubling_high_mul(half_denominator, -1010580540 /* -32/17 */);
    for (int i = 0; i < 3; ++i) {
        const int32_t error = one_q2 - tp_doubling_high_mul(half_denominator, x);
        x = x + tp_saturating_shift_left(tp_doubling_high_mul(x, error), 2);
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1), Q0 in and out. */
static inline int32_t tp_one_over_one_plus_x(int32_t a)
{
    return tp_saturating_shift_left(tp_reciprocal_of_one_plus_q2(a), 1);
}

/* (1 - a) / (1 + a) for a in [0, 1), Q0 in and out. */
static inline int32_t tp_one_minus_x_over_one_plus_x(int32_t a)
{
    return tp_saturating_shift_left(tp_reciprocal_of_one_plus_q2(a) - (1 << 29), 2);
}

#endif /* TP_FIXEDPOINT_H */
