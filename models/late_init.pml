/*
 * late_init.pml -- ptkit "eager" kernel-half propagation under x86-TSO.
 *
 * Protocol being checked
 * ----------------------
 * Every address space (mm) has a root table whose top-level "kernel half"
 * entries must equal the reference root's.  Reference entries are only ever
 * added, never cleared.
 *
 *   creator (new mm):                 extender (adds reference entry k):
 *     zero new root                     ref[k] = E              (store)
 *     publish mm in the registry        FULL BARRIER   <-- pairs with (C)
 *     FULL BARRIER   (C)                for each mm in the registry:
 *     for each k:                          if (root[k] == 0)     (load)
 *       if (ref[k] != 0)     (load)           root[k] = E        (store)
 *         root[k] = ref[k]   (store)
 *
 * Both sides are "store, then load something the other side stored": the
 * store-buffering (SB) pattern.  Without a full barrier on BOTH sides the
 * creator can read ref[k] == 0 while the extender's registry walk does not
 * yet see the new mm, and the new root never gets entry k.  A write barrier
 * (smp_wmb) orders store against store only; under TSO stores already
 * leave the store buffer in order, so it is a no-op here (-DWMB_ONLY).
 *
 * Memory model: x86-TSO, explicitly.  Each process has a FIFO store buffer.
 * A store appends (addr, value) to the issuing process's buffer; a separate
 * "memory" process drains the OLDEST entry of any non-empty buffer to
 * memory at a nondeterministic moment.  A load returns the value of the
 * NEWEST buffered store to the same address in the loader's own buffer
 * (store forwarding), else the value in memory.  A full barrier (mfence /
 * locked instruction / smp_mb) blocks until the issuer's buffer is empty.
 *
 * Build switches:
 *   -DNO_CREATOR_MB   drop the creator's full barrier       (must fail)
 *   -DNO_EXTENDER_MB  drop the extender's full barrier      (must fail)
 *   -DWMB_ONLY        both barriers become write barriers  (must fail)
 *   -DTWO_EXTENDERS   two extenders adding different entries (concurrently)
 *   -DREACH           non-vacuity check on the correct protocol: assert that
 *                     the creator never reads a reference entry as empty
 *                     although it ends up set.  Must fail: shows the
 *                     interleaving where the extender's walk is what fills
 *                     the new root is explored.
 *
 * Property: once every process has finished and every store buffer has
 * drained, the new root holds every reference entry that exists.
 */

#define EMPTY     0
#define ENTRY     1     /* any non-empty top-level entry value */

#ifdef TWO_EXTENDERS
#define NEXT      2     /* extenders; extender k adds reference entry k */
#else
#define NEXT      1
#endif
#define NKERN     NEXT  /* modelled kernel-half slots, one per extender */

/* memory addresses */
#define A_REF(k)  (k)                 /* reference root, kernel slot k    */
#define A_ROOT(k) (NKERN + (k))       /* the new mm's root, kernel slot k */
#define A_REG     (2 * NKERN)         /* registry: "new mm is published"  */
#define NADDR     (2 * NKERN + 1)

/* processes that own a store buffer: 0 = creator, 1.. = extenders */
#define CREATOR   0
#define NPROC     (1 + NEXT)
#define SBSZ      (NKERN + 2)         /* store buffer entries; a store to
                                       * a full buffer stalls until the
                                       * memory process drains one */

byte mem[NADDR];

/* store buffers, flattened: entry j of process p is at p * SBSZ + j,
 * entry 0 is the oldest */
byte sb_addr[NPROC * SBSZ];
byte sb_val[NPROC * SBSZ];
byte sb_len[NPROC];

byte finished;                        /* processes that ran to completion */
bool creator_saw_empty[NKERN];        /* ghost: late init read ref[k] == 0 */

#ifdef TWO_EXTENDERS
#define ALL_DRAINED (sb_len[0] == 0 && sb_len[1] == 0 && sb_len[2] == 0)
#else
#define ALL_DRAINED (sb_len[0] == 0 && sb_len[1] == 0)
#endif

/* store: append to own buffer (stall while it is full) */
inline store(p, a, v)
{
	atomic {
		sb_len[p] < SBSZ ->
		sb_addr[p * SBSZ + sb_len[p]] = a;
		sb_val[p * SBSZ + sb_len[p]] = v;
		sb_len[p]++
	}
}

/* load: newest matching entry of own buffer, else memory (one step) */
inline load(p, a, r)
{
	d_step {
		i = sb_len[p];
		hit = false;
		do
		:: i > 0 && !hit ->
			i--;
			if
			:: sb_addr[p * SBSZ + i] == a ->
				r = sb_val[p * SBSZ + i];
				hit = true
			:: else -> skip
			fi
		:: else -> break
		od;
		if
		:: !hit -> r = mem[a]
		:: else -> skip
		fi;
		i = 0;
		hit = false
	}
}

/* full barrier: wait until every earlier store of p is globally visible */
inline full_mb(p)
{
	(sb_len[p] == 0)
}

/* write barrier: orders stores against stores only.  Under TSO the store
 * buffer is already FIFO, so there is nothing to do; in particular it does
 * NOT make a later load wait for earlier stores. */
inline wmb(p)
{
	skip
}

#if defined(WMB_ONLY)
#define CREATOR_BARRIER(p)  wmb(p)
#define EXTENDER_BARRIER(p) wmb(p)
#else
#ifdef NO_CREATOR_MB
#define CREATOR_BARRIER(p)  skip
#else
#define CREATOR_BARRIER(p)  full_mb(p)
#endif
#ifdef NO_EXTENDER_MB
#define EXTENDER_BARRIER(p) skip
#else
#define EXTENDER_BARRIER(p) full_mb(p)
#endif
#endif

/* drain the oldest entry of p's buffer to memory (one step) */
inline drain(p)
{
	d_step {
		sb_len[p] > 0 ->
		mem[sb_addr[p * SBSZ]] = sb_val[p * SBSZ];
		j = 1;
		do
		:: j < sb_len[p] ->
			sb_addr[p * SBSZ + j - 1] = sb_addr[p * SBSZ + j];
			sb_val[p * SBSZ + j - 1] = sb_val[p * SBSZ + j];
			j++
		:: else -> break
		od;
		sb_len[p]--;
		sb_addr[p * SBSZ + sb_len[p]] = 0;
		sb_val[p * SBSZ + sb_len[p]] = 0;
		j = 0
	}
}

/* the memory subsystem: at any moment, may drain any non-empty buffer */
active proctype memory()
{
	byte j;
end:
	do
	:: drain(0)
	:: drain(1)
#ifdef TWO_EXTENDERS
	:: drain(2)
#endif
	od
}

active proctype creator()
{
	byte k, v, i;
	bool hit;

	/* a fresh root: zeroed (these stores may still be buffered) */
	k = 0;
	do
	:: k < NKERN -> store(CREATOR, A_ROOT(k), EMPTY); k++
	:: else -> break
	od;

	/* publish the new mm: from now on extender walks will visit it */
	store(CREATOR, A_REG, 1);
	printf("creator: publish mm (buffered, %d stores pending)\n", sb_len[CREATOR]);

	/* (C) full barrier: the publication must be visible before we read
	 * the reference root.  Pairs with the extender's barrier (X). */
	CREATOR_BARRIER(CREATOR);

	/* late init: copy every non-empty reference entry */
	k = 0;
	do
	:: k < NKERN ->
		load(CREATOR, A_REF(k), v);
		printf("creator: late init reads ref[%d] = %d\n", k, v);
		creator_saw_empty[k] = (v == EMPTY);
		if
		:: v != EMPTY -> store(CREATOR, A_ROOT(k), v)
		:: else -> skip
		fi;
		k++
	:: else -> break
	od;
	v = 0;
	k = 0;
	finished++
}

proctype extender(byte me; byte k)
{
	byte reg, cur, i;
	bool hit;

	/* install the new reference entry */
	store(me, A_REF(k), ENTRY);
	printf("extender %d: write ref[%d] (buffered)\n", me, k);

	/* (X) full barrier: the reference entry must be visible before we
	 * walk the registry.  Pairs with the creator's barrier (C). */
	EXTENDER_BARRIER(me);

	/* registry walk (only the new mm is modelled; older mms, already
	 * visible, cannot miss the entry) */
	load(me, A_REG, reg);
	printf("extender %d: registry walk sees new mm = %d\n", me, reg);
	if
	:: reg != 0 ->
		load(me, A_ROOT(k), cur);
		if
		:: cur == EMPTY -> store(me, A_ROOT(k), ENTRY)
		:: else -> skip
		fi
	:: else -> skip
	fi;
	reg = 0;
	cur = 0;
	finished++
}

init
{
	byte k = 0;
	atomic {
		do
		:: k < NEXT -> run extender(1 + k, k); k++
		:: else -> break
		od
	}
}

/* the property, checked once all processes are done and all stores are in
 * memory: the new root lacks no reference entry */
active proctype checker()
{
	byte k;
	atomic {
		finished == 1 + NEXT && ALL_DRAINED ->
		k = 0;
		do
		:: k < NKERN ->
			printf("final: ref[%d] = %d, new root[%d] = %d\n",
			       k, mem[A_REF(k)], k, mem[A_ROOT(k)]);
			assert(mem[A_REF(k)] == EMPTY ||
			       mem[A_ROOT(k)] == mem[A_REF(k)]);
#ifdef REACH
			assert(mem[A_REF(k)] == EMPTY || !creator_saw_empty[k]);
#endif
			k++
		:: else -> break
		od
	}
}
