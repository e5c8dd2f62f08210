/* deny_trace: runs a command where tracing is not allowed, as a container's security policy
 * or a kernel without seccomp would make it (issue 13, "Limits, said plainly"). It installs a
 * seccomp filter (libseccomp) on itself, which every process it starts inherits, then execs
 * the command:
 *   deny_trace ptrace    -- CMD...   ptrace(2) fails with EPERM (a policy denying ptrace)
 *   deny_trace seccomp   -- CMD...   seccomp(2) and prctl(PR_SET_SECCOMP) fail with EPERM
 *                                    (no further filter may be installed)
 *   deny_trace noseccomp -- CMD...   seccomp(2) fails with ENOSYS, prctl(PR_SET_SECCOMP) with
 *                                    EINVAL (what a kernel without seccomp filters answers)
 * No privilege: the filter needs no_new_privs, which it sets (and which stays set). */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: deny_trace ptrace|seccomp|noseccomp -- CMD [ARGS...]\n");
        return 2;
    }
    const char* what = argv[1];
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return fprintf(stderr, "deny_trace: seccomp_init failed\n"), 2;
    int rc = 0;
    if (strcmp(what, "ptrace") == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0);
    } else if (strcmp(what, "seccomp") == 0 || strcmp(what, "noseccomp") == 0) {
        int none = strcmp(what, "noseccomp") == 0;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(none ? ENOSYS : EPERM), SCMP_SYS(seccomp), 0);
        if (!rc)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(none ? EINVAL : EPERM), SCMP_SYS(prctl), 1,
                                  SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP));
    } else {
        fprintf(stderr, "deny_trace: what to deny: ptrace, seccomp or noseccomp, not \"%s\"\n", what);
        return 2;
    }
    if (rc) return fprintf(stderr, "deny_trace: seccomp_rule_add: %s\n", strerror(-rc)), 2;
    /* libseccomp sets no_new_privs itself (SCMP_FLTATR_CTL_NNP, on by default); said here too. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return perror("deny_trace: PR_SET_NO_NEW_PRIVS"), 2;
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc) return fprintf(stderr, "deny_trace: seccomp_load: %s\n", strerror(-rc)), 2;
    execvp(argv[3], argv + 3);
    fprintf(stderr, "deny_trace: cannot run %s: %s\n", argv[3], strerror(errno));
    return 127;
}
