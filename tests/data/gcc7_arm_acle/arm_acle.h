/* A stand-in for the <arm_acle.h> of GCC 7 (arm-none-eabi-gcc 7-2017q4, the Arduino mbed cores'
 * compiler): its ACLE header declares the CRC32 intrinsics (__crc32b ... __crc32cd, only where
 * __ARM_FEATURE_CRC32) and the coprocessor intrinsics (__arm_cdp, __arm_mcr, ...) and nothing else:
 * no SIMD32 or DSP intrinsic (__smlad, __sxtb16, __sadd16, __ssub8, __sel, __smlabb, ...), which GCC
 * added in version 10. Tests put this folder first on the include path so that code reaching for one
 * of those fails to compile, as it would in the Arduino IDE. Written for tinyprune's tests. */
#ifndef TP_TEST_GCC7_ARM_ACLE_H
#define TP_TEST_GCC7_ARM_ACLE_H

#include <stdint.h>

#if defined(__ARM_FEATURE_CRC32) && __ARM_FEATURE_CRC32
static inline uint32_t __crc32b(uint32_t crc, uint8_t data) { return __builtin_arm_crc32b(crc, data); }
static inline uint32_t __crc32h(uint32_t crc, uint16_t data) { return __builtin_arm_crc32h(crc, data); }
static inline uint32_t __crc32w(uint32_t crc, uint32_t data) { return __builtin_arm_crc32w(crc, data); }
static inline uint32_t __crc32cb(uint32_t crc, uint8_t data) { return __builtin_arm_crc32cb(crc, data); }
static inline uint32_t __crc32ch(uint32_t crc, uint16_t data) { return __builtin_arm_crc32ch(crc, data); }
static inline uint32_t __crc32cw(uint32_t crc, uint32_t data) { return __builtin_arm_crc32cw(crc, data); }
#endif

#endif /* TP_TEST_GCC7_ARM_ACLE_H */
