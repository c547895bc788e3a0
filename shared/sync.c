/* SPDX-License-Identifier: MIT */
/* sync.c: clock-sync estimator for native clients (libtutti core, no I/O).
 * Mirrors web/sync.js line for line where it can; see sync.h for the
 * contracts and web/sync.js for why it departs from @ircam/sync. */
#include "sync.h"

#include <math.h>
#include <string.h>

#include "common.h"

void tt_sync_options_default(tt_sync_options *out)
{
	memset(out, 0, sizeof(*out));
	out->series_len = 10;
	out->ping_period = 0.25;
	out->series_delay_min = 10;
	out->series_delay_max = 20;
	out->ramp_ratio = 0.1;
	out->ramp_ping_period = 0.05;
	out->ping_timeout = 1;
	out->ping_timeout_max = 30;
	out->training_duration = 0;
	out->window = 900;
	out->max_drift = 500e-6;
	out->drift_scale = 100e-6;
	out->slew_rate = 1000e-6;
	out->step_forward = 0.1;
	out->ping_id_base = UINT32_C(1) << 30;
	out->seed = 1;
}

static bool nonneg(double x)
{
	return x >= 0 && isfinite(x);
}

int tt_sync_init(tt_sync *s, const tt_sync_options *opts)
{
	tt_sync_options o;
	if (opts)
		o = *opts;
	else
		tt_sync_options_default(&o);
	memset(s, 0, sizeof(*s));
	if (o.startup_series_len == 0)
		o.startup_series_len = o.series_len;
	if (o.series_len < 1 || o.series_len > TT_SYNC_MAX_SERIES ||
	    o.startup_series_len > TT_SYNC_MAX_SERIES || !nonneg(o.ping_period) ||
	    !nonneg(o.series_delay_min) || !nonneg(o.series_delay_max) ||
	    o.series_delay_max < o.series_delay_min || !nonneg(o.ramp_ratio) ||
	    !nonneg(o.ramp_ping_period) || !nonneg(o.ping_timeout) ||
	    !(o.ping_timeout > 0) || !nonneg(o.ping_timeout_max) ||
	    o.ping_timeout_max < o.ping_timeout || !nonneg(o.training_duration) ||
	    !nonneg(o.window) || !nonneg(o.max_drift) || !nonneg(o.slew_rate) ||
	    !(o.slew_rate < 0.5) || !(o.drift_scale >= 0) || /* drift_scale and */
	    !(o.step_forward >= 0)) /* step_forward may be inf */
		return -TT_BAD_VALUE;
	s->opt = o;
	s->status = TT_SYNC_NEW;
	s->timeout = o.ping_timeout;
	s->next_id = o.ping_id_base;
	s->rng = o.seed ? o.seed : 1;
	s->due = -INFINITY;
	s->R = 1;
	s->fast = o.ramp_ratio > 0;
	s->drift_unc = o.drift_scale;
	return 0;
}

/* xorshift32 in [0, 1): pauses are reproducible for a given seed. */
static double rnd(tt_sync *s)
{
	uint32_t x = s->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	s->rng = x;
	return (double)x / 4294967296.0;
}

double tt_sync_next_ping_due(const tt_sync *s)
{
	return s->due;
}

int tt_sync_ping(tt_sync *s, double now, uint32_t *out_ping_id)
{
	*out_ping_id = 0;
	if (now < s->due)
		return -TT_NOT_READY;
	if (s->status == TT_SYNC_NEW) {
		s->status = TT_SYNC_STARTUP;
		s->status_since = now;
		s->connection_since = now;
		s->ramp_since = now;
	}
	if (s->inflight) { /* timed out */
		s->timeout = TT_MIN(s->opt.ping_timeout_max, s->timeout * 2);
		if (s->online) {
			s->online = false;
			s->connection_since = now;
		}
	}
	s->inflight = true;
	s->inflight_id = s->next_id;
	s->inflight_time = now;
	s->next_id = s->next_id == UINT32_MAX ? s->opt.ping_id_base : s->next_id + 1;
	s->due = now + s->timeout;
	*out_ping_id = s->inflight_id;
	return 0;
}

static double estimate_at(const tt_sync *s, double t)
{
	return s->T0 + s->R * (t - s->t0);
}

static double sign(double x)
{
	return x < 0 ? -1.0 : 1.0;
}

double tt_sync_time(const tt_sync *s, double local)
{
	if (!s->have)
		return local;
	if (s->c0 == 0)
		return estimate_at(s, local);
	double d = local - s->tu;
	if (d <= 0)
		return s->a + s->R * d;
	double k = s->opt.slew_rate;
	if (d >= fabs(s->c0) / k)
		return estimate_at(s, local);
	return s->a + (s->R - sign(s->c0) * k) * d;
}

double tt_sync_local_time(const tt_sync *s, double sync_time)
{
	if (!s->have)
		return sync_time;
	if (s->c0 == 0)
		return s->t0 + (sync_time - s->T0) / s->R;
	if (sync_time <= s->a)
		return s->tu + (sync_time - s->a) / s->R;
	double k = s->opt.slew_rate;
	double dur = fabs(s->c0) / k;
	double slope = s->R - sign(s->c0) * k;
	if (sync_time < s->a + slope * dur)
		return s->tu + (sync_time - s->a) / slope;
	return s->t0 + (sync_time - s->T0) / s->R;
}

/* Install a new estimate at local time now: S kept continuous when smooth,
 * else applied at once (the provisional estimates of the first series, and
 * the end of that series). */
static void set_estimate(tt_sync *s, double t0, double T0, double R, double now, bool smooth)
{
	bool had = s->have && smooth;
	double before = had ? tt_sync_time(s, now) : 0;
	s->have = true;
	s->t0 = t0;
	s->T0 = T0;
	s->R = R;
	double e = estimate_at(s, now);
	double c0 = had ? before - e : 0;
	if (!(s->opt.slew_rate > 0) || (c0 < 0 && -c0 > s->opt.step_forward))
		c0 = 0;
	s->tu = now;
	s->c0 = c0;
	s->a = e + c0;
}

void tt_sync_hint(tt_sync *s, double server_time, double local)
{
	if ((s->status != TT_SYNC_NEW && s->status != TT_SYNC_STARTUP) || s->series_n > 0 ||
	    !isfinite(server_time) || !isfinite(local))
		return;
	set_estimate(s, local, server_time, 1, local, false);
}

/* Variance of a series' offset error. The offset is the midpoint of the
 * fastest trip each way, so its error is half the difference of their excess
 * delays; the gap between the fastest and the second fastest trip of a
 * direction has the scale of that excess, hence (gap_up² + gap_down²) / 8.
 * With one trip (or an empty bracket), uniform within half the round trip. */
static double series_noise(unsigned n, double width, double gap_up, double gap_down)
{
	double v = n >= 2 ? (gap_up * gap_up + gap_down * gap_down) / 8 : width * width / 12;
	return v + TT_SYNC_NOISE_FLOOR * TT_SYNC_NOISE_FLOOR;
}

/* Offset of the series from the fastest trip each way (the causality bracket
 * of T - R·t), or from the fastest round trip when the bracket is empty;
 * reference point at the mean mid-time of the pings; *out_noise its
 * variance (series_noise). */
static void series_estimate(const tt_sync *s, double *out_rt, double *out_t, double *out_T,
			    double *out_noise)
{
	double R = s->R;
	double hi = INFINITY, hi2 = INFINITY, lo = -INFINITY, lo2 = -INFINITY;
	double tsum = 0, tsum_travel = 0;
	double tmin = INFINITY, tmax = -INFINITY;
	unsigned best = 0;
	for (unsigned i = 0; i < s->series_n; i++) {
		const double *e = s->series[i];
		double travel = (e[1] - e[0]) * R - (e[3] - e[2]);
		tsum_travel += travel;
		if (travel > tmax)
			tmax = travel;
		if (travel < tmin) {
			tmin = travel;
			best = i;
		}
		double up = e[2] - R * e[0], down = e[3] - R * e[1];
		if (up < hi) {
			hi2 = hi;
			hi = up;
		} else if (up < hi2) {
			hi2 = up;
		}
		if (down > lo) {
			lo2 = lo;
			lo = down;
		} else if (down > lo2) {
			lo2 = down;
		}
		tsum += (e[0] + e[1]) / 2;
	}
	double n = (double)s->series_n;
	double t = tsum / n, offset;
	if (lo <= hi) {
		offset = (lo + hi) / 2;
		*out_noise = series_noise(s->series_n, hi - lo, hi2 - hi, lo - lo2);
	} else {
		const double *e = s->series[best];
		offset = (e[2] + e[3]) / 2 - R * (e[0] + e[1]) / 2;
		*out_noise = series_noise(1, tmin, 0, 0);
	}
	if (out_rt) { /* min, mean, max */
		out_rt[0] = tmin;
		out_rt[1] = tsum_travel / n;
		out_rt[2] = tmax;
	}
	*out_t = t;
	*out_T = offset + R * t;
}

static const double *lt_at(const tt_sync *s, unsigned i)
{
	return s->lt[(s->lt_head + i) % TT_SYNC_MAX_ENTRIES];
}

static void lt_push(tt_sync *s, double t, double T, double noise, double now)
{
	if (s->lt_n == TT_SYNC_MAX_ENTRIES) {
		s->lt_head = (s->lt_head + 1) % TT_SYNC_MAX_ENTRIES;
		s->lt_n--;
	}
	double *e = s->lt[(s->lt_head + s->lt_n) % TT_SYNC_MAX_ENTRIES];
	e[0] = t;
	e[1] = T;
	e[2] = noise;
	s->lt_n++;
	while (s->lt_n > 1 && lt_at(s, 0)[0] < now - s->opt.window) {
		s->lt_head = (s->lt_head + 1) % TT_SYNC_MAX_ENTRIES;
		s->lt_n--;
	}
}

/* Least squares T = T0 + R (t - t0) on centred values, the drift R - 1
 * shrunk towards 0 by drift_scale against the mean noise of the entries
 * (ridge regression; see web/sync.js regression()). False when t does not
 * vary. */
struct fit {
	double t0, T0, R, raw_drift, raw_unc, unc;
};

static bool regression(const tt_sync *s, struct fit *out)
{
	if (s->lt_n < 2)
		return false;
	double n = (double)s->lt_n;
	double mt = 0, mT = 0, noise = 0, v = 0, c = 0;
	for (unsigned i = 0; i < s->lt_n; i++) {
		mt += lt_at(s, i)[0];
		mT += lt_at(s, i)[1];
		noise += lt_at(s, i)[2];
	}
	mt /= n;
	mT /= n;
	noise /= n;
	/* the slope of the offset (T - t) on t: the drift, free of the large
	 * mean offset */
	for (unsigned i = 0; i < s->lt_n; i++) {
		double dt = lt_at(s, i)[0] - mt;
		v += dt * dt;
		c += dt * ((lt_at(s, i)[1] - mT) - dt);
	}
	if (!(v > 0))
		return false;
	double scale = s->opt.drift_scale;
	double lambda = isinf(scale) || !(noise > 0) ? 0 : noise / (scale * scale);
	double drift = scale == 0 ? 0 : c / (v + lambda);
	out->t0 = mt;
	out->T0 = mT;
	out->R = 1 + drift;
	out->raw_drift = c / v;
	out->raw_unc = sqrt(noise / v);
	out->unc = sqrt(noise / (v + lambda));
	return true;
}

static void set_status(tt_sync *s, tt_sync_status st, double now)
{
	if (s->status != st) {
		s->status = st;
		s->status_since = now;
	}
}

static void end_series(tt_sync *s, double now)
{
	double t, T, noise, rt[3];
	series_estimate(s, rt, &t, &T, &noise);
	s->rt_min = rt[0];
	s->rt_mean = rt[1];
	s->rt_max = rt[2];
	s->last_noise = noise;
	s->series_n = 0;
	s->n_series++;
	s->time_offset = T - t;
	lt_push(s, t, T, noise, now);
	bool first = s->status == TT_SYNC_STARTUP; /* replaces the provisional at once */
	if (first)
		set_status(s, TT_SYNC_TRAINING, now);
	bool training = s->status == TT_SYNC_TRAINING &&
			now - s->status_since < s->opt.training_duration;
	struct fit f;
	bool have_fit = !training && regression(s, &f);
	if (have_fit && fabs(f.raw_drift) > s->opt.max_drift + 6 * f.raw_unc) {
		/* implausible drift (a clock stepped, a device slept): train
		 * again, pinging fast as at the start */
		s->lt_head = (s->lt_head + s->lt_n - 1) % TT_SYNC_MAX_ENTRIES;
		s->lt_n = 1;
		set_status(s, TT_SYNC_TRAINING, now);
		s->status_since = now;
		s->ramp_since = now;
		have_fit = false;
	}
	if (have_fit) {
		set_status(s, TT_SYNC_SYNC, now);
		double m = s->opt.max_drift;
		double R = 1 + TT_MAX(-m, TT_MIN(m, f.R - 1));
		s->drift_unc = f.unc;
		set_estimate(s, f.t0, f.T0, R, now, true);
	} else {
		s->drift_unc = s->opt.drift_scale; /* offset only */
		set_estimate(s, t, T, 1, now, !first);
	}
}

/* The pause after a series: during the start-up ramp ramp_ratio times the
 * time since the first ping (series back to back at first, thinning out as
 * the estimate firms up, pinging every ramp_ping_period), then IRCAM's
 * pauses drawn in [series_delay_min, max]. */
static double next_pause(tt_sync *s, double now)
{
	double pause = (now - s->ramp_since) * s->opt.ramp_ratio;
	s->fast = s->opt.ramp_ratio > 0 && pause < s->opt.series_delay_min;
	if (s->fast)
		return pause;
	double lo = s->opt.series_delay_min, hi = s->opt.series_delay_max;
	return lo + (hi - lo) * rnd(s);
}

int tt_sync_on_pong(tt_sync *s, uint32_t ping_id, double client_time, double server_recv,
		    double server_send, double now, bool *out_report)
{
	if (out_report)
		*out_report = false;
	if (!s->inflight || ping_id != s->inflight_id || client_time != s->inflight_time)
		return -TT_BAD_REQUEST;
	if (!isfinite(server_recv) || !isfinite(server_send) || !isfinite(now) ||
	    server_send < server_recv || now < client_time)
		return -TT_BAD_VALUE;
	s->inflight = false;
	double *e = s->series[s->series_n++];
	e[0] = client_time;
	e[1] = now;
	e[2] = server_recv;
	e[3] = server_send;
	s->timeout = TT_MAX(s->opt.ping_timeout, s->timeout * 0.75);
	bool changed = false;
	if (!s->online) {
		s->online = true;
		s->connection_since = now;
		changed = true;
	}
	unsigned len = s->status == TT_SYNC_STARTUP ? s->opt.startup_series_len : s->opt.series_len;
	if (s->series_n >= len) {
		end_series(s, now);
		changed = true;
		s->due = now + next_pause(s, now);
	} else {
		if (s->status == TT_SYNC_STARTUP) { /* provisional, from the pongs so far */
			double t, T, noise; /* R is still 1 */
			series_estimate(s, NULL, &t, &T, &noise);
			set_estimate(s, t, T, 1, now, false);
		}
		s->due = now + (s->fast ? s->opt.ramp_ping_period : s->opt.ping_period);
	}
	if (out_report)
		*out_report = changed;
	return 0;
}

/* One standard error of the sync time at local time now: the offset's
 * (the last series' noise while training, the mean over the regression's
 * entries in sync), the drift's uncertainty carried from the estimate's
 * reference point to now, and the part of a correction not slewed in yet.
 * What an inspector shows as "within 1 ms". NAN before the first pong. */
static double offset_error(const tt_sync *s, double now)
{
	if (s->n_series == 0) {
		if (!s->series_n)
			return NAN;
		double t, T, noise;
		series_estimate(s, NULL, &t, &T, &noise);
		return sqrt(noise);
	}
	double noise = s->last_noise, n = 1;
	if (s->status == TT_SYNC_SYNC && s->lt_n > 1) {
		noise = 0;
		for (unsigned i = 0; i < s->lt_n; i++)
			noise += lt_at(s, i)[2];
		n = s->lt_n;
		noise /= n;
	}
	double drift = s->drift_unc * (now - s->t0);
	return sqrt(noise / n + drift * drift) + fabs(tt_sync_time(s, now) - estimate_at(s, now));
}

void tt_sync_report(const tt_sync *s, double now, struct tt_sync_report *out)
{
	memset(out, 0, sizeof(*out));
	out->status = s->status;
	out->status_duration = s->status == TT_SYNC_NEW ? 0 : now - s->status_since;
	out->time_offset = s->time_offset;
	out->frequency_ratio = s->R;
	out->drift = s->R - 1;
	out->drift_uncertainty = s->drift_unc;
	out->online = s->online;
	out->connection_duration = s->status == TT_SYNC_NEW ? 0 : now - s->connection_since;
	out->connection_timeout = s->timeout;
	out->round_trip_min = s->rt_min;
	out->round_trip_mean = s->rt_mean;
	out->round_trip_max = s->rt_max;
	out->series = s->n_series;
	out->entries = s->lt_n;
	out->offset_error = offset_error(s, now);
}

const char *tt_sync_status_name(tt_sync_status status)
{
	switch (status) {
	case TT_SYNC_NEW: return "new";
	case TT_SYNC_STARTUP: return "startup";
	case TT_SYNC_TRAINING: return "training";
	case TT_SYNC_SYNC: return "sync";
	}
	return "unknown";
}

bool tt_sync_due(const tt_sync *s, double at, double now, double *out_wait)
{
	if (isnan(at) || tt_sync_time(s, now) >= at) { /* NaN: never wait forever */
		if (out_wait)
			*out_wait = 0;
		return true;
	}
	if (out_wait) {
		double wait = tt_sync_local_time(s, at) - now;
		*out_wait = wait > 1e-6 ? wait : 1e-6; /* rounding: never 0 while not due */
	}
	return false;
}
