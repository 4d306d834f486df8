/* Checked number parsing. The only way numbers are read from the network or the config file
 * (libcyaml/strtoul accept "-5" and wrap it). Every function rejects empty input, signs,
 * leading/trailing spaces or garbage, and values above max; each returns 0 or -1. */
#ifndef LIGHTR_STRCONV_H
#define LIGHTR_STRCONV_H

#include <stdint.h>

#include "slice.h"

/* Decimal digits only. */
int strconv_u64(struct slice s, uint64_t max, uint64_t *v_r);
/* A size: digits with an optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB (all binary, 1024-based;
 * case-insensitive), e.g. "25MiB", "512k", "1000". */
int strconv_size(struct slice s, uint64_t max, uint64_t *v_r);
/* A duration in seconds: digits with an optional unit s, m, h, d, w, e.g. "5d", "30s", "90". */
int strconv_duration(struct slice s, uint64_t max, uint64_t *v_r);
/* "true"/"false"/"yes"/"no"/"on"/"off" (case-insensitive). */
int strconv_bool(struct slice s, int *v_r);

#endif
