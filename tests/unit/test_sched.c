/* SPDX-License-Identifier: MIT */
/* test_sched.c: the pending-schedule container (server/src/sched.c): the
 * heap always yields the earliest (at, id), whatever the order of adds and
 * removes, and each state's list stays sorted; checked against a brute
 * force over thousands of random operations. */
#include "sched.h"
#include "tt_test.h"

#define N_LISTS 4
#define N_MAX 2000

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int before(const tt_sched *a, const tt_sched *b)
{
	return a->at < b->at || (a->at == b->at && a->id < b->id);
}

static void test_random(void **state)
{
	(void)state;
	tt_sched_list lists[N_LISTS];
	memset(lists, 0, sizeof(lists));
	tt_sched *live[N_MAX];
	uint32_t n = 0;
	uint64_t id = 1;
	for (int step = 0; step < 20000; step++) {
		bool add = n == 0 || (n < N_MAX && next_rand() % 3 != 0);
		if (add) {
			uint32_t l = (uint32_t)(next_rand() % N_LISTS);
			double at = (double)(next_rand() % 50); /* many ties */
			/* pool and size vary: the per-pool counts must follow */
			uint8_t pool = (uint8_t)(next_rand() % 2);
			live[n++] = tt_sched_add(&lists[l], (struct tt_state *)&lists[l], id++, at, 0,
						 pool, "\x80\x80\x80", 1 + pool * 2);
		} else {
			uint32_t i = (uint32_t)(next_rand() % n);
			tt_sched_remove(live[i]);
			live[i] = live[--n];
		}
		assert_int_equal(tt_sched_count(), n);
		/* the heap's first is the earliest of all */
		tt_sched *min = NULL;
		for (uint32_t i = 0; i < n; i++)
			if (!min || before(live[i], min))
				min = live[i];
		assert_ptr_equal(tt_sched_first(), min);
		if (step % 97 == 0) {
			uint32_t total = 0;
			for (int l = 0; l < N_LISTS; l++) {
				uint32_t k = 0, np[2] = {0, 0};
				size_t bp[2] = {0, 0};
				for (tt_sched *sc = lists[l].first; sc; sc = sc->next, k++) {
					np[sc->pool]++;
					bp[sc->pool] += sc->changes.len;
					assert_ptr_equal(sc->list, &lists[l]);
					if (sc->next)
						assert_true(before(sc, sc->next));
					else
						assert_ptr_equal(lists[l].last, sc);
				}
				assert_int_equal(k, lists[l].n);
				for (int p = 0; p < 2; p++) {
					assert_int_equal(np[p], lists[l].n_pool[p]);
					assert_int_equal(bp[p], lists[l].bytes_pool[p]);
				}
				total += k;
			}
			assert_int_equal(total, n);
		}
	}
	for (int l = 0; l < N_LISTS; l++)
		tt_sched_drop(&lists[l]);
	assert_int_equal(tt_sched_count(), 0);
	assert_null(tt_sched_first());
	tt_sched_free_all();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
