/* calendar.h: the proleptic Gregorian calendar counted in days since
 * 1970-01-01 (Howard Hinnant's days_from_civil and civil_from_days), which
 * the daemon's UTC periods and the command's dates both use, so that no
 * time zone or libc quirk is involved. No I/O. */
#ifndef DF_CALENDAR_H
#define DF_CALENDAR_H

#include <stdint.h>

/* Days since 1970-01-01 of year y, month m (1..12), day d, and back (d may
 * be NULL), for any day an int64 of ms can hold. */
int64_t df_days_from_civil(int64_t y, int64_t m, int64_t d);
void df_civil_from_days(int64_t days, int64_t *y, int64_t *m, int64_t *d);

#endif
