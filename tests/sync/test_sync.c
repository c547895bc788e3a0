/* SPDX-License-Identifier: MIT */
/* test_sync.c: unit tests of shared/sync.c, the clock-sync estimator, against
 * a simulated client and server: the client's clock is offset by 12345.678 s
 * and runs 100 ppm fast, one-way delays have a base and exponential jitter
 * from a seeded PRNG (each run is the same), the server answers 20 µs after
 * receipt. Checks: offset error after the first series, drift from the
 * second series on and after the long window, the start-up ramp of fast
 * series, monotonic sync time and the slew rate across a server clock
 * correction, a local clock that stood still, the inverse, tt_sync_due,
 * timeouts and refused pongs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "sync.h"

#define assert_near(a, b, tol)                                                          \
	do {                                                                            \
		double a_ = (a), b_ = (b), t_ = (tol);                                  \
		if (!(fabs(a_ - b_) <= t_))                                             \
			fail_msg("%s = %.9g, expected %.9g within %.3g (off by %.3g)", #a,   \
				 a_, b_, t_, a_ - b_);                                  \
	} while (0)

#define assert_int(a, b)                                                                \
	do {                                                                            \
		long long a_ = (long long)(a), b_ = (long long)(b);                     \
		if (a_ != b_)                                                           \
			fail_msg("%s = %lld, expected %lld", #a, a_, b_);               \
	} while (0)

#define OFFSET 12345.678
#define DRIFT 100e-6

typedef struct sim {
	tt_sync s;
	double tau;       /* true time: the server's clock before any step */
	double step;      /* added to the server's clock */
	uint32_t rng;
	double base;      /* one-way delay floor, s */
	double jitter;    /* mean of the exponential excess, s */
	unsigned drop_every; /* drop every n-th pong (0: none) */
	unsigned n_sent;
	bool pending;
	double pong_at;   /* true time of arrival */
	uint32_t id;
	double ct, recv, send;
	unsigned reports;
} sim;

static double local_of(double tau)
{
	return OFFSET + tau * (1 + DRIFT);
}

static double tau_of(double local)
{
	return (local - OFFSET) / (1 + DRIFT);
}

static double unif(sim *m)
{
	uint32_t x = m->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	m->rng = x;
	return ((double)x + 0.5) / 4294967296.0;
}

static double delay(sim *m)
{
	double d = m->base - m->jitter * log(unif(m));
	if (unif(m) < 0.05) /* a busy machine: now and then a slow trip */
		d += 0.005 * unif(m);
	return d;
}

static void sim_init(sim *m, const tt_sync_options *o)
{
	memset(m, 0, sizeof(*m));
	assert_int(tt_sync_init(&m->s, o), 0);
	m->rng = 12345;
	m->base = 0.0004;
	m->jitter = 0.0002;
}

/* Server time now (true). */
static double server_now(const sim *m)
{
	return m->tau + m->step;
}

/* Advance to true time until; each(m) is called every `every` s of true time
 * (0: never). */
static void run(sim *m, double until, double every, void (*each)(sim *))
{
	double next_each = every > 0 ? m->tau + every : INFINITY;
	for (;;) {
		double t_ping = tau_of(tt_sync_next_ping_due(&m->s));
		if (t_ping < m->tau)
			t_ping = m->tau;
		double t_pong = m->pending ? m->pong_at : INFINITY;
		double next = TT_MIN(TT_MIN(t_ping, t_pong), TT_MIN(next_each, until));
		m->tau = next;
		if (next == t_pong) {
			m->pending = false;
			bool rep;
			int rc = tt_sync_on_pong(&m->s, m->id, m->ct, m->recv, m->send,
						 local_of(m->tau), &rep);
			if (rc == -TT_BAD_REQUEST)
				continue; /* arrived after its timeout */
			assert_int(rc, 0);
			m->reports += rep;
		} else if (next == t_ping) {
			uint32_t id;
			double now = local_of(m->tau);
			if (now < tt_sync_next_ping_due(&m->s))
				now = tt_sync_next_ping_due(&m->s); /* rounding */
			assert_int(tt_sync_ping(&m->s, now, &id), 0);
			m->n_sent++;
			if (m->drop_every && m->n_sent % m->drop_every == 0)
				continue;
			double up = delay(m), down = delay(m);
			m->pending = true;
			m->id = id;
			m->ct = now;
			m->recv = server_now(m) + up;
			m->send = m->recv + 20e-6;
			m->pong_at = m->tau + up + 20e-6 + down;
		} else if (next == next_each) {
			each(m);
			next_each += every;
		} else {
			return;
		}
	}
}

static double err_now(const sim *m)
{
	return tt_sync_time(&m->s, local_of(m->tau)) - server_now(m);
}

/* -- tests ------------------------------------------------------------------ */

static void test_options(void **state)
{
	(void)state;
	tt_sync s;
	tt_sync_options o;
	tt_sync_options_default(&o);
	assert_int(tt_sync_init(&s, &o), 0);
	assert_int(s.opt.series_len, 10);
	o.series_len = 0;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	assert_int(s.opt.series_len, 0); /* zeroed */
	tt_sync_options_default(&o);
	o.series_len = TT_SYNC_MAX_SERIES + 1;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.startup_series_len = TT_SYNC_MAX_SERIES + 1;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	o.startup_series_len = 0; /* same as series_len */
	assert_int(tt_sync_init(&s, &o), 0);
	assert_int(s.opt.startup_series_len, 10);
	tt_sync_options_default(&o);
	o.series_delay_max = 1;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.ping_timeout = 0;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.window = NAN;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.slew_rate = 0.5;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.step_forward = INFINITY;
	assert_int(tt_sync_init(&s, &o), 0);
	o.drift_scale = INFINITY; /* no shrinking */
	assert_int(tt_sync_init(&s, &o), 0);
	o.drift_scale = NAN;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	o.ramp_ratio = -1;
	assert_int(tt_sync_init(&s, &o), -TT_BAD_VALUE);
	tt_sync_options_default(&o);
	assert_true(o.slew_rate > o.max_drift);
	assert_string_equal(tt_sync_status_name(TT_SYNC_TRAINING), "training");
}

static void test_ping_pong_contract(void **state)
{
	(void)state;
	tt_sync s;
	assert_int(tt_sync_init(&s, NULL), 0);
	struct tt_sync_report r;
	tt_sync_report(&s, 5, &r);
	assert_int(r.status, TT_SYNC_NEW);
	assert_near(tt_sync_time(&s, 7.5), 7.5, 0); /* identity before the first series */
	assert_near(tt_sync_local_time(&s, 7.5), 7.5, 0);

	/* a hint until the first pong */
	tt_sync_hint(&s, 2.9, 99.9);
	assert_near(tt_sync_time(&s, 100), 3.0, 1e-12);
	assert_near(tt_sync_local_time(&s, 3.0), 100, 1e-12);
	uint32_t id;
	assert_int(tt_sync_ping(&s, 100, &id), 0);
	assert_int(id, UINT32_C(1) << 30);
	tt_sync_report(&s, 100, &r);
	assert_int(r.status, TT_SYNC_STARTUP);
	/* not due again before the timeout */
	assert_int(tt_sync_ping(&s, 100.5, &id), -TT_NOT_READY);
	assert_int(id, 0);
	assert_near(tt_sync_next_ping_due(&s), 101, 1e-12);
	/* pongs that do not answer the ping in flight change nothing */
	bool rep = true;
	assert_int(tt_sync_on_pong(&s, 7, 100, 3, 3.1, 100.2, &rep), -TT_BAD_REQUEST);
	assert_false(rep);
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 99, 3, 3.1, 100.2, NULL), -TT_BAD_REQUEST);
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 100, 3.1, 3, 100.2, NULL), -TT_BAD_VALUE);
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 100, NAN, 3, 100.2, NULL), -TT_BAD_VALUE);
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 100, 3, 3.1, 99, NULL), -TT_BAD_VALUE);
	/* the right one: online, next ping after ping_period */
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 100, 3, 3.0001, 100.2, &rep), 0);
	assert_true(rep);
	/* a provisional estimate from that one pong: offset (3.00005) - (100.1) */
	assert_near(tt_sync_time(&s, 100.2), 100.2 + 3.00005 - 100.1, 1e-9);
	tt_sync_hint(&s, 50, 100.2); /* ignored once a pong came */
	assert_near(tt_sync_time(&s, 100.2), 100.2 + 3.00005 - 100.1, 1e-9);
	tt_sync_report(&s, 100.2, &r);
	assert_true(r.online);
	assert_near(tt_sync_next_ping_due(&s), 100.25, 1e-12); /* the ramp: 50 ms */
	/* the same pong twice: refused */
	assert_int(tt_sync_on_pong(&s, UINT32_C(1) << 30, 100, 3, 3.0001, 100.3, NULL), -TT_BAD_REQUEST);
}

static void test_timeouts(void **state)
{
	(void)state;
	tt_sync s;
	assert_int(tt_sync_init(&s, NULL), 0);
	uint32_t id;
	bool rep;
	assert_int(tt_sync_ping(&s, 0, &id), 0);
	assert_int(tt_sync_on_pong(&s, id, 0, 50, 50, 0.001, &rep), 0);
	assert_int(tt_sync_ping(&s, 0.251, &id), 0);
	/* no pong: at the timeout a new ping goes, the connection is offline */
	assert_int(tt_sync_ping(&s, 1.0, &id), -TT_NOT_READY);
	assert_int(tt_sync_ping(&s, 1.251, &id), 0);
	struct tt_sync_report r;
	tt_sync_report(&s, 1.251, &r);
	assert_false(r.online);
	assert_near(r.connection_timeout, 2, 0);
	assert_near(tt_sync_next_ping_due(&s), 3.251, 1e-12);
	assert_int(tt_sync_ping(&s, 3.251, &id), 0);
	tt_sync_report(&s, 3.251, &r);
	assert_near(r.connection_timeout, 4, 0);
	/* a pong brings it back, the timeout shrinks, never below the initial */
	assert_int(tt_sync_on_pong(&s, id, 3.251, 53, 53, 3.252, &rep), 0);
	assert_true(rep);
	tt_sync_report(&s, 3.3, &r);
	assert_true(r.online);
	assert_near(r.connection_timeout, 3, 0);
	for (int i = 0; i < 10; i++) {
		double now = tt_sync_next_ping_due(&s);
		assert_int(tt_sync_ping(&s, now, &id), 0);
		assert_int(tt_sync_on_pong(&s, id, now, 50 + now, 50 + now, now + 0.001, NULL), 0);
	}
	tt_sync_report(&s, 10, &r);
	assert_near(r.connection_timeout, 1, 0);
	assert_int(r.series, 1);
}

static void test_first_series(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	m.tau = 1000; /* the server has been up for a while */
	struct tt_sync_report r;
	while (1) {
		run(&m, m.tau + 0.05, 0, NULL);
		tt_sync_report(&m.s, local_of(m.tau), &r);
		if (r.status != TT_SYNC_STARTUP && r.status != TT_SYNC_NEW)
			break;
		if (m.s.series_n > 0) /* provisional: within the round trip */
			assert_near(err_now(&m), 0, 0.010);
		assert_true(m.tau < 1010);
	}
	assert_int(r.status, TT_SYNC_TRAINING);
	assert_int(r.series, 1);
	assert_near(r.frequency_ratio, 1, 0);
	assert_near(r.time_offset, -OFFSET - 1000 * DRIFT, 0.0005);
	assert_true(r.round_trip_min >= 0.0008 && r.round_trip_min <= r.round_trip_mean &&
		    r.round_trip_mean <= r.round_trip_max);
	/* the estimate right after the series */
	assert_near(err_now(&m), 0, 0.0005);
	/* the inverse */
	double local = local_of(m.tau);
	assert_near(tt_sync_local_time(&m.s, tt_sync_time(&m.s, local)), local, 1e-9);
}

static void test_longer_first_series(void **state)
{
	(void)state;
	tt_sync_options o;
	tt_sync_options_default(&o);
	o.startup_series_len = 20;
	sim m;
	sim_init(&m, &o);
	while (m.s.n_series == 0)
		run(&m, m.tau + 0.01, 0, NULL);
	assert_true(m.tau > 19 * 0.05); /* twenty pings, 50 ms apart (the ramp) */
	assert_near(err_now(&m), 0, 0.0005);
	while (m.s.n_series == 1)
		run(&m, m.tau + 0.01, 0, NULL);
	assert_int(m.s.series_n, 0); /* later series have ten */
}

static double worst_late_err;

static void note_err(sim *m)
{
	double e = fabs(err_now(m));
	if (e > worst_late_err)
		worst_late_err = e;
}

static void test_drift_after_window(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	struct tt_sync_report r;
	run(&m, 5, 0, NULL);
	tt_sync_report(&m.s, local_of(m.tau), &r);
	assert_int(r.status, TT_SYNC_SYNC); /* drift from the second series on */
	assert_true(r.series >= 3);
	worst_late_err = 0;
	run(&m, 120, 0.05, note_err);
	tt_sync_report(&m.s, local_of(m.tau), &r);
	print_message("from 5 s to 120 s: worst error %.1f us, drift %.3f +- %.3f ppm\n",
		      worst_late_err * 1e6, r.drift * 1e6, r.drift_uncertainty * 1e6);
	assert_true(worst_late_err <= 0.0001);
	assert_near(r.frequency_ratio, 1 / (1 + DRIFT), 5e-6);
	assert_true(r.drift_uncertainty > 0 && r.drift_uncertainty < 5e-6);
	run(&m, 1000, 0, NULL);
	tt_sync_report(&m.s, local_of(m.tau), &r);
	assert_int(r.status, TT_SYNC_SYNC);
	/* local runs 100 ppm fast: d(server)/d(local) = 1 / (1 + 1e-4) */
	assert_near(r.frequency_ratio, 1 / (1 + DRIFT), 2e-6);
	assert_true(r.entries >= 40 && r.entries <= 120);
	worst_late_err = 0;
	run(&m, 1500, 0.1, note_err);
	print_message("drift %.3f ppm (true %.3f), worst error in sync %.1f us, %u entries\n",
		      r.drift * 1e6, (1 / (1 + DRIFT) - 1) * 1e6, worst_late_err * 1e6, r.entries);
	assert_true(worst_late_err <= 0.0002);
}

static void test_ramp(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	/* fast series at first: 10 pings 50 ms apart, short pauses */
	unsigned n0 = m.n_sent;
	run(&m, 10, 0, NULL);
	assert_true(m.n_sent - n0 >= 80);
	/* pauses grow with age: 0.1 x the time since the first ping */
	run(&m, 50, 0, NULL);
	unsigned n = m.s.n_series;
	while (m.s.n_series == n)
		run(&m, m.tau + 0.01, 0, NULL);
	double pause = tt_sync_next_ping_due(&m.s) - local_of(m.tau);
	assert_near(pause, 0.1 * (local_of(m.tau) - local_of(0)), 0.05);
	/* steady state after ~100 s: ~0.6 pings/s (10 per 12.5-22.5 s) */
	run(&m, 200, 0, NULL);
	n0 = m.n_sent;
	run(&m, 400, 0, NULL);
	double rate = (m.n_sent - n0) / 200.0;
	print_message("steady state: %.2f pings/s\n", rate);
	assert_true(rate > 0.4 && rate < 0.85);
}

static double last_sync, last_local;
static unsigned n_back, n_checks;
static double worst_inverse, worst_rate;

static void check_monotonic(sim *m)
{
	double local = local_of(m->tau);
	double T = tt_sync_time(&m->s, local);
	if (m->s.have) {
		if (T < last_sync)
			n_back++;
		/* the sync clock's rate: R +- slew_rate at most */
		if (m->s.status != TT_SYNC_STARTUP && last_local > 0) {
			double rate = fabs((T - last_sync) / (local - last_local) - m->s.R);
			if (rate > worst_rate)
				worst_rate = rate;
		}
		last_sync = T;
		last_local = m->s.status != TT_SYNC_STARTUP ? local : 0;
		double inv = fabs(tt_sync_local_time(&m->s, T) - local);
		if (inv > worst_inverse)
			worst_inverse = inv;
	}
	n_checks++;
}

static void test_monotonic_across_correction(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	last_sync = -INFINITY;
	last_local = 0;
	n_back = n_checks = 0;
	worst_inverse = worst_rate = 0;
	/* every 3 ms of a 3000 s run, through training, sync, and a correction
	 * of the server's clock by -20 ms at 1000 s (the estimate then moves
	 * back: the shown time must slow down, not step) */
	run(&m, 1000, 0.003, check_monotonic);
	assert_near(err_now(&m), 0, 0.0002);
	m.step = -0.020;
	run(&m, 1100, 0.003, check_monotonic);
	double mid_err = err_now(&m);
	run(&m, 3000, 0.003, check_monotonic);
	struct tt_sync_report r;
	tt_sync_report(&m.s, local_of(m.tau), &r);
	print_message("%u checks, %u steps back, error 100 s after the correction %.3f ms, "
		      "at the end %.1f us, status %s, worst inverse %.3g s, largest rate change %.0f ppm\n",
		      n_checks, n_back, mid_err * 1e3, err_now(&m) * 1e6,
		      tt_sync_status_name(r.status), worst_inverse, worst_rate * 1e6);
	assert_int(n_back, 0);
	assert_true(n_checks > 900000);
	/* the regression over the 900 s window absorbs a step slowly */
	assert_true(mid_err > 0.001);
	/* corrections slewed faster than the largest drift allowed */
	assert_true(worst_rate > 100e-6 && worst_rate <= 1000e-6 + 1e-9);
	assert_near(err_now(&m), 0, 0.0005);
	assert_int(r.status, TT_SYNC_SYNC);
	assert_true(worst_inverse < 1e-8);
}

/* Run until the next series has ended. */
static void run_series(sim *m)
{
	unsigned n = m->s.n_series;
	while (m->s.n_series == n)
		run(m, m->tau + 0.01, 0, NULL);
}

static void test_big_forward_correction_steps(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	run(&m, 50, 0, NULL);
	run_series(&m);
	assert_near(err_now(&m), 0, 0.0001); /* drift corrected already */
	m.step = 1.0; /* the server's clock jumped 1 s ahead: catch up at once */
	run_series(&m);
	assert_near(err_now(&m), 0, 0.003);
	/* small forward corrections are slewed (1 ms/s): no jump */
	double before = err_now(&m);
	m.step = 1.005;
	run_series(&m);
	assert_true(err_now(&m) < before - 0.003);
	run(&m, m.tau + 6, 0, NULL);
	assert_near(err_now(&m), 0, 0.0005);
}

static void test_lost_pongs(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	m.drop_every = 5; /* at 1 in 3 the timeout grows to its maximum (x2 per loss, x0.75 per pong), as in IRCAM's */
	run(&m, 600, 0, NULL);
	struct tt_sync_report r;
	tt_sync_report(&m.s, local_of(m.tau), &r);
	print_message("%u series, error %.1f us, timeout %.2f s\n", r.series, err_now(&m) * 1e6,
		      r.connection_timeout);
	assert_true(r.series >= 25);
	assert_near(err_now(&m), 0, 0.0005);
	assert_near(r.connection_timeout, 1, 1); /* not stuck at the maximum */
}

static void test_due(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	run(&m, 30, 0, NULL);
	double local = local_of(m.tau), wait = -1;
	double T = tt_sync_time(&m.s, local);
	assert_true(tt_sync_due(&m.s, T, local, &wait));
	assert_near(wait, 0, 0);
	assert_true(tt_sync_due(&m.s, T - 1, local, NULL));
	assert_false(tt_sync_due(&m.s, T + 0.3, local, &wait));
	assert_near(wait, 0.3 / m.s.R, 1e-9);
	assert_false(tt_sync_due(&m.s, T + 1e-12, local, &wait));
	assert_true(wait >= 1e-6); /* never 0 while not due */
	assert_true(tt_sync_due(&m.s, NAN, local, &wait));
	assert_false(tt_sync_due(&m.s, INFINITY, local, &wait));
	assert_true(isinf(wait));
	/* the loop of a native client: sleep the wait (a timer that wakes up
	 * to 1.5 ms early), ask again, fire on true: never before `at` */
	uint32_t rng = 7;
	for (int i = 0; i < 1000; i++) {
		double at = tt_sync_time(&m.s, local) + 0.001 * (i % 300);
		double now = local;
		while (!tt_sync_due(&m.s, at, now, &wait)) {
			rng ^= rng << 13;
			rng ^= rng >> 17;
			rng ^= rng << 5;
			double early = 0.0015 * (double)rng / 4294967296.0;
			now += wait > early ? wait - early : wait;
		}
		assert_true(tt_sync_time(&m.s, now) >= at);
		assert_true(tt_sync_time(&m.s, now) - at < 1e-5);
	}
}

static void test_local_clock_stood_still(void **state)
{
	(void)state;
	sim m;
	sim_init(&m, NULL);
	run(&m, 300, 0, NULL);
	assert_int(m.s.status, TT_SYNC_SYNC);
	/* the local clock loses 5 s (it stood still while the device slept):
	 * seen as the server's clock jumping 5 s ahead */
	m.step = 5;
	run_series(&m);
	assert_int(m.s.status, TT_SYNC_TRAINING); /* implausible drift: reset */
	assert_true(m.s.fast);                    /* and the ramp again */
	run(&m, 340, 0, NULL);
	assert_int(m.s.status, TT_SYNC_SYNC);
	assert_near(err_now(&m), 0, 0.0002);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_ping_pong_contract),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_first_series),
		cmocka_unit_test(test_longer_first_series),
		cmocka_unit_test(test_drift_after_window),
		cmocka_unit_test(test_ramp),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_local_clock_stood_still),
		cmocka_unit_test(test_monotonic_across_correction),
		cmocka_unit_test(test_big_forward_correction_steps),
		cmocka_unit_test(test_lost_pongs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
