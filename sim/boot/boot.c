/*
 * boot.c - boot configuration (libconfig) and init.
 *
 * Loading is two-phase: parse and check everything into a boot_config_t
 * (pure: no kernel call), then boot_start() creates the system. Every check
 * names the file and the line of the offending setting.
 */
#include "boot.h"

#include <ferry/sim.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHM_MAX (1ull << 30)

typedef struct ctx {
    const char *path;
    char *err;
    size_t errlen;
    boot_config_t *cfg;
    const boot_component_t *(*lookup)(const char *);
} ctx_t;

__attribute__((format(printf, 3, 4))) static int fail(ctx_t *c, const config_setting_t *s, const char *fmt, ...)
{
    int n;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line)
        n = snprintf(c->err, c->errlen, "%s:%u: ", c->path, line);
    else
        n = snprintf(c->err, c->errlen, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Every member of group `g` must be one of `allowed` (catches typos). */
static int only_keys(ctx_t *c, const config_setting_t *g, const char *what, const char *const *allowed)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = name && strcmp(name, *a) == 0;
        if (!ok)
            return fail(c, m, "%s: unknown setting '%s'", what, name ? name : "?");
    }
    return 0;
}

/* A required or optional string member, 1..max-1 characters. */
static int get_name(ctx_t *c, const config_setting_t *g, const char *key, const char *what,
                    char *out, size_t max, bool required)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    if (s == NULL) {
        if (required)
            return fail(c, g, "%s: missing '%s'", what, key);
        out[0] = '\0';
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(c, s, "%s: '%s' must be a string", what, key);
    const char *v = config_setting_get_string(s);
    if (v[0] == '\0' || strlen(v) >= max)
        return fail(c, s, "%s: '%s' must have 1 to %zu characters", what, key, max - 1);
    for (const char *p = v; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || *p == '/' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return fail(c, s, "%s: '%s' has a character other than letters, digits, '-', '_', '.', '/'", what, key);
    strcpy(out, v);
    return 0;
}

static int find_task(const boot_config_t *cfg, const char *name)
{
    for (int i = 0; i < cfg->ntasks; i++)
        if (strcmp(cfg->tasks[i].name, name) == 0)
            return i;
    return -1;
}

static int parse_task(ctx_t *c, const config_setting_t *g, boot_task_t *t)
{
    static const char *const keys[] = {"name", "component", "args", "external", NULL};
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return fail(c, g, "tasks: each entry must be a group { name = ...; component = ...; }");
    if (only_keys(c, g, "task", keys) || get_name(c, g, "name", "task", t->name, sizeof t->name, true))
        return -1;
    char what[64];
    snprintf(what, sizeof what, "task '%s'", t->name);
    if (find_task(c->cfg, t->name) >= 0)
        return fail(c, g, "%s: a task of that name already exists", what);
    const config_setting_t *ext = config_setting_get_member(g, "external");
    if (ext && config_setting_type(ext) != CONFIG_TYPE_BOOL)
        return fail(c, ext, "%s: 'external' must be true or false", what);
    t->external = ext ? config_setting_get_bool(ext) : 0;
    if (get_name(c, g, "component", what, t->component, sizeof t->component, !t->external))
        return -1;
    if (!t->external) {
        const boot_component_t *bc = c->lookup(t->component);
        if (bc == NULL)
            return fail(c, config_setting_get_member(g, "component"),
                        "%s: unknown component '%s' (ferry-sim --components lists them)", what, t->component);
        t->main = bc->main;
    }
    t->argv[0] = strdup(t->name);
    t->argc = 1;
    const config_setting_t *args = config_setting_get_member(g, "args");
    if (args) {
        if (config_setting_type(args) != CONFIG_TYPE_ARRAY && config_setting_type(args) != CONFIG_TYPE_LIST)
            return fail(c, args, "%s: 'args' must be a list of strings [ \"...\", ... ]", what);
        int n = config_setting_length(args);
        if (n > BOOT_MAX_ARGS)
            return fail(c, args, "%s: more than %d arguments", what, BOOT_MAX_ARGS);
        for (int i = 0; i < n; i++) {
            const config_setting_t *a = config_setting_get_elem(args, (unsigned)i);
            if (config_setting_type(a) != CONFIG_TYPE_STRING)
                return fail(c, a, "%s: argument %d is not a string", what, i + 1);
            t->argv[t->argc++] = strdup(config_setting_get_string(a));
        }
    }
    return 0;
}

/* One user entry: { task = "x"; badge = N; } or { task = "x"; rights = "r"; } */
static int parse_user(ctx_t *c, const config_setting_t *g, boot_obj_t *o, const char *what,
                      bool want_badge, bool want_rights, uint32_t rights)
{
    static const char *const badge_keys[] = {"task", "badge", NULL};
    static const char *const rights_keys[] = {"task", "rights", NULL};
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return fail(c, g, "%s: each entry must be a group { task = \"...\"; ... }", what);
    if (only_keys(c, g, what, want_rights ? rights_keys : badge_keys))
        return -1;
    char tname[32];
    if (get_name(c, g, "task", what, tname, sizeof tname, true))
        return -1;
    int ti = find_task(c->cfg, tname);
    if (ti < 0)
        return fail(c, g, "%s: no task named '%s'", what, tname);
    for (int i = 0; i < o->nusers; i++)
        if (o->users[i].task == ti)
            return fail(c, g, "%s: task '%s' is named twice", what, tname);
    if (o->nusers >= BOOT_MAX_USERS)
        return fail(c, g, "%s: more than %d tasks", what, BOOT_MAX_USERS);
    boot_user_t *u = &o->users[o->nusers];
    u->task = ti;
    u->rights = rights;
    u->badge = 0;
    if (want_badge) {
        const config_setting_t *b = config_setting_get_member(g, "badge");
        /* Default: the position (server/waiter is 0); for a notification,
         * whose badges are ORed together, bit (position - 1). */
        bool bits = o->kind == BOOT_NOTIFICATION;
        if (bits && !b && o->nusers > 64)
            return fail(c, g, "%s: more than 64 signallers need explicit badges", what);
        long long v = bits ? (long long)(1ull << (o->nusers - 1)) : o->nusers;
        if (b) {
            if (config_setting_type(b) != CONFIG_TYPE_INT && config_setting_type(b) != CONFIG_TYPE_INT64)
                return fail(c, b, "%s: 'badge' must be an integer", what);
            v = config_setting_get_int64(b);
        }
        if (v == 0 || (!bits && v < 0))
            return fail(c, b ? b : g, "%s: badge must be a positive integer", what);
        for (int i = 0; i < o->nusers; i++) {
            if (o->users[i].badge == (mk_badge_t)v)
                return fail(c, b ? b : g, "%s: badge %lld is used twice", what, v);
            if (bits && (o->users[i].badge & (mk_badge_t)v))
                return fail(c, b ? b : g, "%s: badge %#llx shares bits with another signaller's", what,
                            (unsigned long long)v);
        }
        u->badge = (mk_badge_t)v;
    }
    if (want_rights) {
        const config_setting_t *r = config_setting_get_member(g, "rights");
        const char *rs = r && config_setting_type(r) == CONFIG_TYPE_STRING ? config_setting_get_string(r) : NULL;
        if (rs == NULL || (strcmp(rs, "r") != 0 && strcmp(rs, "rw") != 0))
            return fail(c, r ? r : g, "%s: 'rights' must be \"r\" or \"rw\"", what);
        u->rights = MK_RIGHT_READ | (rs[1] == 'w' ? MK_RIGHT_WRITE : 0);
    }
    o->nusers++;
    return 0;
}

static int parse_users(ctx_t *c, const config_setting_t *g, const char *key, boot_obj_t *o,
                       const char *what, bool badge, bool rights_field, uint32_t rights, bool required)
{
    const config_setting_t *l = config_setting_get_member(g, key);
    if (l == NULL)
        return required ? fail(c, g, "%s: missing '%s'", what, key) : 0;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return fail(c, l, "%s: '%s' must be a list ( { task = \"...\"; }, ... )", what, key);
    for (int i = 0; i < config_setting_length(l); i++)
        if (parse_user(c, config_setting_get_elem(l, (unsigned)i), o, what, badge, rights_field, rights))
            return -1;
    return 0;
}

/* The single task in `key` (server/waiter) becomes user 0 with `rights`. */
static int parse_owner(ctx_t *c, const config_setting_t *g, const char *key, boot_obj_t *o,
                       const char *what, uint32_t rights)
{
    char tname[32];
    if (get_name(c, g, key, what, tname, sizeof tname, true))
        return -1;
    int ti = find_task(c->cfg, tname);
    if (ti < 0)
        return fail(c, config_setting_get_member(g, key), "%s: no task named '%s'", what, tname);
    o->users[0] = (boot_user_t){.task = ti, .rights = rights};
    o->nusers = 1;
    return 0;
}

static int parse_obj(ctx_t *c, const config_setting_t *g, enum boot_obj_kind kind)
{
    static const char *const ep_keys[] = {"name", "server", "clients", NULL};
    static const char *const nt_keys[] = {"name", "waiter", "signallers", NULL};
    static const char *const shm_keys[] = {"name", "size", "map", NULL};
    static const char *const kinds[] = {"endpoint", "notification", "shm"};
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return fail(c, g, "%ss: each entry must be a group { name = ...; }", kinds[kind]);
    if (c->cfg->nobjs >= BOOT_MAX_OBJS)
        return fail(c, g, "more than %d objects", BOOT_MAX_OBJS);
    boot_obj_t *o = &c->cfg->objs[c->cfg->nobjs];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    const char *const *keys = kind == BOOT_ENDPOINT ? ep_keys : kind == BOOT_NOTIFICATION ? nt_keys : shm_keys;
    if (only_keys(c, g, kinds[kind], keys) || get_name(c, g, "name", kinds[kind], o->name, sizeof o->name, true))
        return -1;
    char what[64];
    snprintf(what, sizeof what, "%s '%s'", kinds[kind], o->name);
    for (int i = 0; i < c->cfg->nobjs; i++)
        if (strcmp(c->cfg->objs[i].name, o->name) == 0)
            return fail(c, g, "%s: an object of that name already exists", what);
    int r;
    if (kind == BOOT_ENDPOINT) {
        r = parse_owner(c, g, "server", o, what, MK_RIGHT_RECV) ||
            parse_users(c, g, "clients", o, what, true, false, MK_RIGHT_SEND, true);
    } else if (kind == BOOT_NOTIFICATION) {
        r = parse_owner(c, g, "waiter", o, what, MK_RIGHT_RECV) ||
            parse_users(c, g, "signallers", o, what, true, false, MK_RIGHT_SEND, true);
    } else {
        const config_setting_t *sz = config_setting_get_member(g, "size");
        if (sz == NULL)
            return fail(c, g, "%s: missing 'size'", what);
        if (config_setting_type(sz) != CONFIG_TYPE_INT && config_setting_type(sz) != CONFIG_TYPE_INT64)
            return fail(c, sz, "%s: 'size' must be an integer", what);
        long long v = config_setting_get_int64(sz);
        if (v <= 0 || (unsigned long long)v > SHM_MAX)
            return fail(c, sz, "%s: size must be between 1 and %llu bytes", what, (unsigned long long)SHM_MAX);
        o->size = (uint64_t)v;
        r = parse_users(c, g, "map", o, what, false, true, 0, true);
    }
    if (r)
        return -1;
    c->cfg->nobjs++;
    return 0;
}

static int parse_list(ctx_t *c, config_t *cf, const char *key, enum boot_obj_kind kind, bool tasks)
{
    const config_setting_t *l = config_lookup(cf, key);
    if (l == NULL)
        return tasks ? fail(c, NULL, "no 'tasks' list") : 0;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return fail(c, l, "'%s' must be a list ( { ... }, ... )", key);
    int n = config_setting_length(l);
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        if (tasks) {
            if (c->cfg->ntasks >= BOOT_MAX_TASKS)
                return fail(c, g, "more than %d tasks", BOOT_MAX_TASKS);
            boot_task_t *t = &c->cfg->tasks[c->cfg->ntasks];
            if (parse_task(c, g, t)) {
                for (int a = 0; a < t->argc; a++)
                    free(t->argv[a]); /* not yet counted, so boot_free skips it */
                return -1;
            }
            c->cfg->ntasks++;
        } else if (parse_obj(c, g, kind)) {
            return -1;
        }
    }
    if (tasks && n == 0)
        return fail(c, l, "'tasks' is empty: nothing to boot");
    return 0;
}

int boot_load(const char *path, const boot_component_t *(*lookup)(const char *),
              boot_config_t **out, char *err, size_t errlen)
{
    static const char *const top_keys[] = {"listen", "tasks", "endpoints", "notifications", "shm", NULL};
    ctx_t c = {.path = path, .err = err, .errlen = errlen, .lookup = lookup};
    *out = NULL;
    config_t cf;
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read the file", path);
        else
            snprintf(err, errlen, "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
                     config_error_line(&cf), config_error_text(&cf));
        config_destroy(&cf);
        return -1;
    }
    c.cfg = calloc(1, sizeof *c.cfg);
    int r = c.cfg ? 0 : fail(&c, NULL, "out of memory");
    if (r == 0) {
        snprintf(c.cfg->path, sizeof c.cfg->path, "%s", path);
        r = only_keys(&c, config_root_setting(&cf), "configuration", top_keys);
    }
    if (r == 0) {
        const config_setting_t *l = config_lookup(&cf, "listen");
        if (l && (config_setting_type(l) != CONFIG_TYPE_STRING ||
                  strlen(config_setting_get_string(l)) >= sizeof c.cfg->listen ||
                  config_setting_get_string(l)[0] == '\0'))
            r = fail(&c, l, "'listen' must be a unix socket path of 1 to %zu characters", sizeof c.cfg->listen - 1);
        else if (l)
            strcpy(c.cfg->listen, config_setting_get_string(l));
    }
    r = r || parse_list(&c, &cf, "tasks", BOOT_ENDPOINT, true) ||
        parse_list(&c, &cf, "endpoints", BOOT_ENDPOINT, false) ||
        parse_list(&c, &cf, "notifications", BOOT_NOTIFICATION, false) ||
        parse_list(&c, &cf, "shm", BOOT_SHM, false);
    if (r == 0) {
        bool any_external = false;
        for (int i = 0; i < c.cfg->ntasks; i++)
            any_external |= c.cfg->tasks[i].external != 0;
        if (any_external && c.cfg->listen[0] == '\0')
            r = fail(&c, config_lookup(&cf, "tasks"), "external tasks need a 'listen' socket path");
    }
    config_destroy(&cf);
    if (r) {
        boot_free(c.cfg);
        return -1;
    }
    *out = c.cfg;
    return 0;
}

void boot_free(boot_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (int i = 0; i < cfg->ntasks; i++)
        for (int a = 0; a < cfg->tasks[i].argc; a++)
            free(cfg->tasks[i].argv[a]);
    free(cfg);
}

static mk_err_t create_obj(const boot_obj_t *o, mk_cap_t *cap)
{
    switch (o->kind) {
    case BOOT_ENDPOINT: return mk_ep_create(cap);
    case BOOT_NOTIFICATION: return mk_ntfn_create(cap);
    default: return mk_shm_create(o->size, cap);
    }
}

mk_err_t boot_start(boot_config_t *cfg)
{
    mk_err_t err = MK_OK;
    if (cfg->listen[0] && (err = sim_listen(cfg->listen)) != MK_OK) {
        mk_log("cannot listen on %s", cfg->listen);
        return err;
    }
    int created = 0;
    for (; created < cfg->ntasks && err == MK_OK; created++) {
        boot_task_t *t = &cfg->tasks[created];
        err = t->external ? sim_task_create_external(t->name, &t->cap) : mk_task_create(t->name, &t->cap);
    }
    for (int i = 0; i < cfg->nobjs && err == MK_OK; i++) {
        const boot_obj_t *o = &cfg->objs[i];
        mk_cap_t cap;
        if ((err = create_obj(o, &cap)) != MK_OK)
            break;
        for (int u = 0; u < o->nusers && err == MK_OK; u++) {
            const boot_user_t *us = &o->users[u];
            /* Users may pass these capabilities on in messages. */
            err = mk_task_give(cfg->tasks[us->task].cap, cap, us->rights | MK_RIGHT_GRANT, us->badge,
                               o->name, NULL);
        }
        mk_cap_delete(cap); /* init keeps nothing: the users own the objects */
    }
    if (err != MK_OK) {
        mk_log("boot failed: %s", mk_strerror(err));
        for (int i = 0; i < created; i++)
            mk_cap_delete(cfg->tasks[i].cap); /* never started: dropping them ends them */
        return err;
    }
    for (int i = 0; i < cfg->ntasks; i++) {
        boot_task_t *t = &cfg->tasks[i];
        if (t->external) {
            mk_log("task %s waits for a process to attach at %s", t->name, cfg->listen);
            continue;
        }
        if ((err = mk_task_start(t->cap, t->main, t->argc, t->argv)) != MK_OK) {
            mk_log("cannot start task %s: %s; stopping the tasks already started", t->name, mk_strerror(err));
            for (int k = 0; k < cfg->ntasks; k++)
                mk_task_kill(cfg->tasks[k].cap, -1);
            return err;
        }
        mk_log("started %s (component %s)", t->name, t->component);
    }
    return MK_OK;
}

int boot_wait_all(boot_config_t *cfg, uint64_t timeout_ns)
{
    uint64_t deadline = timeout_ns == MK_FOREVER ? MK_FOREVER : mk_time_ns() + timeout_ns;
    int running = 0;
    for (int i = 0; i < cfg->ntasks; i++) {
        if (cfg->tasks[i].external)
            continue;
        uint64_t now = mk_time_ns();
        uint64_t left = deadline == MK_FOREVER ? MK_FOREVER : (deadline > now ? deadline - now : 0);
        boot_task_t *t = &cfg->tasks[i];
        if (!t->exited && mk_task_wait(t->cap, &t->status, left) == MK_OK)
            t->exited = 1;
        running += !t->exited;
    }
    return running;
}
