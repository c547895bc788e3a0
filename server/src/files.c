/* SPDX-License-Identifier: MIT */
/* files.c: the server's own files, and a piece folder from the template. */
#define _DEFAULT_SOURCE /* realpath */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TT_SOURCE_WEB
#define TT_SOURCE_WEB "web"
#endif

static bool is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *tt_files_web(void)
{
	static char found[PATH_MAX];
	static bool looked;
	if (looked)
		return found[0] ? found : NULL;
	looked = true;
	/* installed: <prefix>/bin/tutti-server and <prefix>/share/tutti/web */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			char p[PATH_MAX + 32];
			snprintf(p, sizeof(p), "%s/../share/tutti/web", exe);
			if (is_dir(p) && realpath(p, found))
				return found;
		}
	}
	if (is_dir(TT_SOURCE_WEB) && realpath(TT_SOURCE_WEB, found))
		return found;
	found[0] = '\0';
	return NULL;
}

static int copy_file(const char *from, const char *to, mode_t mode, tt_error *err)
{
	int in = open(from, O_RDONLY), out = -1;
	int rc = -TT_INTERNAL;
	if (in < 0) {
		tt_fail(err, TT_INTERNAL, "cannot read %s: %s", from, strerror(errno));
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL, mode & 0777);
	if (out < 0) {
		tt_fail(err, TT_INTERNAL, "cannot create %s: %s", to, strerror(errno));
		goto out;
	}
	char buf[16384];
	ssize_t r;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));
			if (w < 0) {
				tt_fail(err, TT_INTERNAL, "cannot write %s: %s", to, strerror(errno));
				goto out;
			}
			done += w;
		}
	if (r < 0) {
		tt_fail(err, TT_INTERNAL, "cannot read %s: %s", from, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = tt_fail(err, TT_INTERNAL, "cannot write %s: %s", to, strerror(errno));
	return rc;
}

static int copy_tree(const char *from, const char *to, int depth, tt_error *err)
{
	if (depth > 8)
		return tt_fail(err, TT_INTERNAL, "%s: the template is nested too deep", from);
	if (mkdir(to, 0755) != 0 && errno != EEXIST)
		return tt_fail(err, TT_INTERNAL, "cannot create %s: %s", to, strerror(errno));
	DIR *d = opendir(from);
	if (!d)
		return tt_fail(err, TT_INTERNAL, "cannot read %s: %s", from, strerror(errno));
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char a[PATH_MAX], b[PATH_MAX];
		struct stat sb;
		if ((size_t)snprintf(a, sizeof(a), "%s/%s", from, e->d_name) >= sizeof(a) ||
		    (size_t)snprintf(b, sizeof(b), "%s/%s", to, e->d_name) >= sizeof(b)) {
			rc = tt_fail(err, TT_INTERNAL, "%s: path too long", from);
			break;
		}
		if (stat(a, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			rc = copy_tree(a, b, depth + 1, err);
		else if (S_ISREG(sb.st_mode))
			rc = copy_file(a, b, sb.st_mode, err);
	}
	closedir(d);
	return rc;
}

int tt_files_init_piece(const char *dir, tt_error *err)
{
	const char *web = tt_files_web();
	char tpl[PATH_MAX];
	if (!web || (size_t)snprintf(tpl, sizeof(tpl), "%s/template", web) >= sizeof(tpl) ||
	    !is_dir(tpl))
		return tt_fail(err, TT_INTERNAL, "the piece template is not installed (looked for "
						 "web/template next to the server)");
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		bool empty = true;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				empty = false;
		closedir(d);
		if (!empty)
			return tt_fail(err, TT_INTERNAL,
				       "%s already exists and is not empty: nothing was written", dir);
	} else if (errno != ENOENT) {
		return tt_fail(err, TT_INTERNAL, "%s: %s", dir, strerror(errno));
	}
	return copy_tree(tpl, dir, 0, err);
}
