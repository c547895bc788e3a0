/* SPDX-License-Identifier: MIT */
/* sync_replay.c: replays a trace of pings and pongs through shared/sync.c and
 * prints what it estimates, so 04-parity.test.mjs can check that the C and
 * JS estimators agree. Reads lines from stdin:
 *   opt SERIES STARTUP PERIOD DMIN DMAX RAMP RAMPPERIOD TIMEOUT TMAX TRAINING WINDOW
 *       MAXDRIFT DRIFTSCALE SLEW STEP
 *   ping NOW                   -> "ping ID" (the ping is sent at max(NOW, due))
 *   pong ID CT SR SS NOW       -> "pong RC"
 *   time LOCAL                 -> "time SYNC LOCAL_OF_SYNC"
 *   report NOW                 -> "report STATUS SERIES RATIO OFFSET DRIFT_UNCERTAINTY OFFSET_ERROR"
 *   due AT NOW                 -> "due 0|1 WAIT"
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "sync.h"

int main(void)
{
	tt_sync s;
	tt_sync_options o;
	tt_sync_options_default(&o);
	if (tt_sync_init(&s, &o) != 0)
		return 1;
	char line[512];
	while (fgets(line, sizeof(line), stdin)) {
		double a, b, c, d;
		unsigned long id;
		if (!strncmp(line, "opt ", 4)) {
			if (sscanf(line + 4,
				   "%u %u %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf",
				   &o.series_len, &o.startup_series_len, &o.ping_period,
				   &o.series_delay_min, &o.series_delay_max, &o.ramp_ratio,
				   &o.ramp_ping_period, &o.ping_timeout, &o.ping_timeout_max,
				   &o.training_duration, &o.window, &o.max_drift,
				   &o.drift_scale, &o.slew_rate, &o.step_forward) != 15 ||
			    tt_sync_init(&s, &o) != 0) {
				fprintf(stderr, "bad opt line: %s", line);
				return 1;
			}
		} else if (sscanf(line, "ping %lf", &a) == 1) {
			uint32_t pid;
			double due = tt_sync_next_ping_due(&s);
			/* the JS timers fire at the same local time, give or take rounding */
			if (a < due && due - a < 1e-6)
				a = due;
			int rc = tt_sync_ping(&s, a, &pid);
			printf("ping %d %lu\n", rc, (unsigned long)pid);
		} else if (sscanf(line, "pong %lu %lf %lf %lf %lf", &id, &a, &b, &c, &d) == 5) {
			/* the ping may have been moved to `due` above: same rounding */
			if (s.inflight && a != s.inflight_time && fabs(a - s.inflight_time) < 1e-6)
				a = s.inflight_time;
			printf("pong %d\n", tt_sync_on_pong(&s, (uint32_t)id, a, b, c, d, NULL));
		} else if (sscanf(line, "time %lf", &a) == 1) {
			double T = tt_sync_time(&s, a);
			printf("time %.17g %.17g\n", T, tt_sync_local_time(&s, T));
		} else if (sscanf(line, "report %lf", &a) == 1) {
			struct tt_sync_report r;
			tt_sync_report(&s, a, &r);
			printf("report %s %u %.17g %.17g %.17g %.17g\n", tt_sync_status_name(r.status),
			       r.series, r.frequency_ratio, r.time_offset, r.drift_uncertainty,
			       r.offset_error);
		} else if (sscanf(line, "due %lf %lf", &a, &b) == 2) {
			double wait;
			bool due = tt_sync_due(&s, a, b, &wait);
			printf("due %d %.17g\n", due, wait);
		} else {
			fprintf(stderr, "bad line: %s", line);
			return 1;
		}
	}
	return 0;
}
