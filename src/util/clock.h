/* Time helpers: a monotonic clock for deadlines, wall time for records. */
#ifndef LIGHTR_CLOCK_H
#define LIGHTR_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC; for deadlines and durations. */
int64_t clock_mono_ms(void);
/* Seconds since the epoch (wall clock). */
int64_t clock_now(void);

#endif
