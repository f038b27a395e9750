/*
 * test_boot.c - proves the boot configuration and init: a valid
 * configuration starts its tasks with exactly the capabilities it names
 * (badges, rights, read-only mappings); each kind of bad configuration is
 * refused with "FILE:LINE: problem" and creates nothing; ferry-sim refuses a
 * wrong command line and a bad file, and runs the demo to a clean stop.
 */
#include <boot.h>
#include <check.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char cfg_path[64];

static void write_cfg(const char *text)
{
    snprintf(cfg_path, sizeof cfg_path, "/tmp/ferry-boot-%d.cfg", (int)getpid());
    FILE *f = fopen(cfg_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* ---- Test components ------------------------------------------------------ */

static int t_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep, shm;
    if (mk_cap_lookup("svc", &ep) || mk_cap_lookup("mem", &shm))
        return 10;
    const volatile uint8_t *p;
    if (mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, NULL) != MK_ERIGHTS)
        return 11; /* the configuration gave it "r" */
    if (mk_shm_map(shm, MK_RIGHT_READ, (void **)&p, NULL) != MK_OK)
        return 12;
    mk_msg_t m;
    mk_recv_info_t info;
    mk_word_t badges = 0;
    for (int i = 0; i < 2; i++) {
        if (mk_recv(ep, &m, &info, 5000000000ull) != MK_OK)
            return 13;
        badges |= info.badge;
        m.mr[0] = p[0];
        m.words = 1;
        if (mk_reply(info.reply, &m) != MK_OK)
            return 14;
    }
    return badges == (2 | 4) ? 0 : 15;
}

static int t_client(int argc, char **argv)
{
    mk_cap_t ep, shm;
    if (argc != 2 || mk_cap_lookup("svc", &ep) || mk_cap_lookup("mem", &shm))
        return 20;
    mk_cap_t other;
    if (mk_cap_lookup("nothing-else", &other) != MK_ENOENT)
        return 21;
    volatile uint8_t *p;
    if (mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, NULL) != MK_OK)
        return 22;
    p[0] = 99;
    mk_msg_t m = {.label = 1};
    if (mk_recv(ep, &m, &(mk_recv_info_t){0}, MK_NOWAIT) != MK_ERIGHTS)
        return 23; /* a client cannot receive */
    if (mk_call(ep, &m, 5000000000ull) != MK_OK || m.mr[0] != 99)
        return 24;
    return atoi(argv[1]);
}

static const boot_component_t test_components[] = {
    {"t-server", t_server, "test server"},
    {"t-client", t_client, "test client"},
    {NULL, NULL, NULL},
};

static const boot_component_t *test_lookup(const char *name)
{
    for (const boot_component_t *c = test_components; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static const char *good =
    "tasks = (\n"
    "  { name = \"srv\"; component = \"t-server\"; },\n"
    "  { name = \"c1\"; component = \"t-client\"; args = [ \"0\" ]; },\n"
    "  { name = \"c2\"; component = \"t-client\"; args = [ \"0\" ]; }\n"
    ");\n"
    "endpoints = ( { name = \"svc\"; server = \"srv\";\n"
    "  clients = ( { task = \"c1\"; badge = 2; }, { task = \"c2\"; badge = 4; } ); } );\n"
    "shm = ( { name = \"mem\"; size = 4096;\n"
    "  map = ( { task = \"srv\"; rights = \"r\"; }, { task = \"c1\"; rights = \"rw\"; },\n"
    "          { task = \"c2\"; rights = \"rw\"; } ); } );\n";

START_TEST(test_good_config_boots)
{
    write_cfg(good);
    char err[256] = "";
    boot_config_t *cfg;
    ck_assert_msg(boot_load(cfg_path, test_lookup, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg->ntasks, 3);
    ck_assert_int_eq(cfg->nobjs, 2);
    ck_assert_int_eq(sim_init(), MK_OK);
    ck_assert_int_eq(boot_start(cfg), MK_OK);
    ck_assert_int_eq(boot_wait_all(cfg, 10000000000ull), 0);
    for (int i = 0; i < cfg->ntasks; i++)
        ck_assert_msg(cfg->tasks[i].status == 0, "task %s exited with %d", cfg->tasks[i].name, cfg->tasks[i].status);
    /* init kept no capability to the objects. */
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_SHM), 0);
    boot_free(cfg);
    sim_shutdown();
    unlink(cfg_path);
}
END_TEST

/* Bad configurations: the text, and the exact error after "PATH:". */
static const struct bad {
    const char *text;
    const char *error;
} bad[] = {
    {"tasks = (\n  { name = \"a\"; component = ; }\n);\n", "2: syntax error"},
    {"endpoints = ();\n", " no 'tasks' list"},
    {"tasks = ();\n", "1: 'tasks' is empty: nothing to boot"},
    {"tasks = { name = \"a\"; };\n", "1: 'tasks' must be a list ( { ... }, ... )"},
    {"tasks = (\n  { name = \"a\"; component = \"nope\"; }\n);\n",
     "2: task 'a': unknown component 'nope' (ferry-sim --components lists them)"},
    {"tasks = (\n  { name = \"a\"; component = \"t-server\"; },\n  { name = \"a\"; component = \"t-client\"; }\n);\n",
     "3: task 'a': a task of that name already exists"},
    {"tasks = (\n  { name = \"a\";\n    componnet = \"t-server\"; }\n);\n", "3: task: unknown setting 'componnet'"},
    {"tasks = (\n  { component = \"t-server\"; }\n);\n", "2: task: missing 'name'"},
    {"tasks = ( { name = \"a-name-much-longer-than-thirty-one\"; component = \"t-server\"; } );\n",
     "1: task: 'name' must have 1 to 31 characters"},
    {"tasks = ( { name = \"a b\"; component = \"t-server\"; } );\n",
     "1: task: 'name' has a character other than letters, digits, '-', '_', '.', '/'"},
    {"tasks = ( { name = \"a\"; component = \"t-client\";\n  args = [ \"x\", 3 ]; } );\n",
     "2: mismatched element type in array"},
    {"tasks = ( { name = \"a\"; component = \"t-client\";\n  args = 3; } );\n",
     "2: task 'a': 'args' must be a list of strings [ \"...\", ... ]"},
    {"tasks = ( { name = \"a\"; component = \"t-client\";\n  args = ( \"x\", 3 ); } );\n",
     "2: task 'a': argument 2 is not a string"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\nendpoints = (\n  { name = \"e\"; server = \"zz\"; clients = (); }\n);\n",
     "3: endpoint 'e': no task named 'zz'"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; },\n { name = \"b\"; component = \"t-client\"; },\n"
     " { name = \"c\"; component = \"t-client\"; } );\n"
     "endpoints = ( { name = \"e\"; server = \"a\";\n  clients = ( { task = \"b\"; badge = 1; },\n"
     "    { task = \"c\"; badge = 1; } ); } );\n",
     "6: endpoint 'e': badge 1 is used twice"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\n"
     "endpoints = ( { name = \"e\"; server = \"a\"; clients = ( { task = \"a\"; badge = 1; } ); } );\n",
     "2: endpoint 'e': task 'a' is named twice"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\n"
     "endpoints = ( { name = \"e\"; server = \"a\"; clients = ( { task = \"a\"; badge = -5; } ); } );\n",
     "2: endpoint 'e': task 'a' is named twice"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; }, { name = \"b\"; component = \"t-server\"; } );\n"
     "endpoints = ( { name = \"e\"; server = \"a\";\n   clients = ( { task = \"b\"; badge = 0; } ); } );\n",
     "3: endpoint 'e': badge must be a positive integer"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\nshm = (\n  { name = \"m\";\n    size = 0; map = (); }\n);\n",
     "4: shm 'm': size must be between 1 and 1073741824 bytes"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\nshm = ( { name = \"m\"; size = 4096;\n"
     "  map = ( { task = \"a\"; rights = \"x\"; } ); } );\n",
     "3: shm 'm': 'rights' must be \"r\" or \"rw\""},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\n"
     "notifications = ( { name = \"m\"; waiter = \"a\"; signallers = (); } );\n"
     "shm = (\n { name = \"m\"; size = 4096; map = (); } );\n",
     "4: shm 'm': an object of that name already exists"},
    {"tasks = ( { name = \"a\"; external = true; } );\n", "1: external tasks need a 'listen' socket path"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\nrestart = \"always\";\n",
     "2: configuration: unknown setting 'restart'"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; } );\n"
     "notifications = ( { name = \"n\"; waiter = \"a\"; } );\n",
     "2: notification 'n': missing 'signallers'"},
    {"tasks = ( { name = \"a\"; component = \"t-server\"; }, { name = \"b\"; component = \"t-server\"; },\n"
     " { name = \"c\"; component = \"t-server\"; } );\n"
     "notifications = ( { name = \"n\"; waiter = \"a\";\n"
     "  signallers = ( { task = \"b\"; badge = 3; },\n  { task = \"c\"; badge = 6; } ); } );\n",
     "5: notification 'n': badge 0x6 shares bits with another signaller's"},
};

START_TEST(test_bad_config)
{
    const struct bad *b = &bad[_i];
    write_cfg(b->text);
    ck_assert_int_eq(sim_init(), MK_OK);
    char err[512] = "", want[512];
    boot_config_t *cfg = (boot_config_t *)1;
    ck_assert_int_eq(boot_load(cfg_path, test_lookup, &cfg, err, sizeof err), -1);
    ck_assert_ptr_null(cfg);
    snprintf(want, sizeof want, "%s:%s", cfg_path, b->error);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_TASK), 0); /* nothing was created */
    sim_shutdown();
    unlink(cfg_path);
}
END_TEST

START_TEST(test_missing_file)
{
    char err[256];
    boot_config_t *cfg;
    ck_assert_int_eq(boot_load("/nonexistent/ferry.cfg", test_lookup, &cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "/nonexistent/ferry.cfg: cannot read the file");
}
END_TEST

/* ---- ferry-sim, the program ------------------------------------------------- */

static int run(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_ferry_sim_cli)
{
    const char *sim = getenv("FERRY_SIM");
    const char *demo = getenv("FERRY_DEMO_CFG");
    ck_assert_ptr_nonnull(sim);
    ck_assert_ptr_nonnull(demo);
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "%s 2>&1", sim);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "usage: ferry-sim"));
    snprintf(cmd, sizeof cmd, "%s --bogus %s 2>&1", sim, demo);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unexpected argument '--bogus'"));
    snprintf(cmd, sizeof cmd, "%s --run-for -3 %s 2>&1", sim, demo);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    write_cfg("tasks = (\n  { name = \"x\"; component = \"no-such\"; }\n);\n");
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", sim, cfg_path);
    ck_assert_int_eq(run(cmd, out, sizeof out), 1);
    char want[256];
    snprintf(want, sizeof want, "ferry-sim: %s:2: task 'x': unknown component 'no-such'", cfg_path);
    ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);
    ck_assert_ptr_null(strstr(out, "[init] started")); /* nothing started */
    unlink(cfg_path);
    snprintf(cmd, sizeof cmd, "%s --check %s 2>&1", sim, demo);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "ok (2 tasks, 3 objects)"));
    /* The demo runs, logs with task names on every line, and stops cleanly. */
    snprintf(cmd, sizeof cmd, "%s --run-for 2.5 %s 2>&1", sim, demo);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "[ping] wrote \"hello #2 from ping\"") != NULL, "got: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "checksum"));
    ck_assert_ptr_null(strstr(out, "MISMATCH"));
    ck_assert_ptr_nonnull(strstr(out, "[init] stopping"));
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(line[0] == '[', "line without a task name: %s", line);
}
END_TEST

START_TEST(test_ferry_sim_sigterm)
{
    const char *sim = getenv("FERRY_SIM");
    const char *demo = getenv("FERRY_DEMO_CFG");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(sim, sim, demo, (char *)NULL);
        _exit(127);
    }
    usleep(700000);
    kill(pid, SIGTERM);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static Suite *boot_suite(void)
{
    Suite *s = suite_create("boot");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_good_config_boots);
    tcase_add_loop_test(tc, test_bad_config, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_missing_file);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("program");
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, test_ferry_sim_cli);
    tcase_add_test(tp, test_ferry_sim_sigterm);
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(boot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
