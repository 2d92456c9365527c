/*
 * The keyed hash of the C tables' byte keys (pending.c pairing table, top.c top pieces).
 * With 128-bit multiplies it is the multiply-mix of wyhash, keyed from CPython's per-process
 * hash secret; otherwise CPython's own keyed hash of bytes. Either way a hostile log cannot
 * pick colliding keys without the secret.
 */
#include "hotpath.h"

/* CPython's keyed hash of bytes: public as Py_HashBuffer since 3.14, private before */
#if PY_VERSION_HEX >= 0x030E0000
#define hash_bytes Py_HashBuffer
#else
#define hash_bytes _Py_HashBytes
#endif

#ifdef __SIZEOF_INT128__
/* A keyed hash of the key bytes (the multiply-mix of wyhash), about 4x quicker than the
 * siphash CPython uses; the key comes from CPython's per-process hash secret. */
static uint64_t secret[2];

static inline uint64_t
mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

Py_hash_t
hash_key(const char *p, Py_ssize_t n)
{
    uint64_t h = secret[0] ^ (uint64_t)n, a = 0, b = 0;
    if (n > 16) {
        const char *end = p + n;
        for (; n > 16; n -= 16, p += 16) {
            memcpy(&a, p, 8);
            memcpy(&b, p + 8, 8);
            h = mix(a ^ secret[1] ^ h, b ^ secret[0]);
        }
        /* the last 1..16 bytes as the 16 bytes that end the key (as wyhash does): fixed
         * loads, not a copy of n bytes (that was ~40 of ~118 instructions a key) */
        memcpy(&a, end - 16, 8);
        memcpy(&b, end - 8, 8);
    }
    else { /* a short key: all of it, zero padded */
        memcpy(&a, p, n < 8 ? (size_t)n : 8);
        if (n > 8)
            memcpy(&b, p + 8, (size_t)(n - 8));
    }
    h = mix(a ^ secret[1] ^ h, b ^ secret[0]);
    return (Py_hash_t)mix(h ^ secret[0], secret[1]);
}

void
hash_init(void)
{
    secret[0] = (uint64_t)hash_bytes("exporter.pending.0", 18) | 1;
    secret[1] = (uint64_t)hash_bytes("exporter.pending.1", 18) | 1;
}
#else
Py_hash_t
hash_key(const char *p, Py_ssize_t n)
{
    return hash_bytes(p, n);
}

void
hash_init(void)
{
}
#endif
