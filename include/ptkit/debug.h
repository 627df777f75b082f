/*
 * ptkit/debug.h - the two error classes, and contract checks.
 *
 * Resource failures (no frame, no memory, bad argument) are returned as a
 * negative errno.  A broken invariant is a bug: it aborts with
 * "function: reason" through PTK_BUG_ON(), in every build.
 *
 * PTK_CONTRACT() states a precondition (lock held, inside a read-side
 * section).  It is checked in debug builds (meson -Dcontracts=true, which
 * defines PTK_DEBUG) and compiles to nothing otherwise: release builds pay
 * nothing for it.
 */
#ifndef PTKIT_DEBUG_H
#define PTKIT_DEBUG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Print "func: reason" to stderr and abort.  Never returns. */
__attribute__((noreturn, cold))
void ptk_bug(const char *func, const char *reason);

#define PTK_BUG_ON(cond, reason) \
	do { if (__builtin_expect(!!(cond), 0)) ptk_bug(__func__, (reason)); } while (0)

#ifdef PTK_DEBUG
#define PTK_DEBUG_ENABLED 1
#define PTK_CONTRACT(cond, reason) PTK_BUG_ON(!(cond), (reason))
#else
#define PTK_DEBUG_ENABLED 0
#define PTK_CONTRACT(cond, reason) do { (void)sizeof(!(cond)); } while (0)
#endif

/* Whether this library was built with contract checks and poisoning. */
bool ptk_debug_build(void);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_DEBUG_H */
