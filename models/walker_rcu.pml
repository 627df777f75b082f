/*
 * walker_rcu.pml -- lockless page-table walker vs. detach + deferred free.
 *
 * Protocol being checked
 * ----------------------
 *   walker (lockless, e.g. a fast lookup):
 *     rcu_read_lock()
 *     e = READ_ONCE(*parent)          -- read the parent entry exactly once
 *     if (e is a table pointer)
 *         read child entries through e   (possibly several reads)
 *     rcu_read_unlock()
 *
 *   writers (each under the page-table lock):
 *     unmapper:  if (*parent is a table) { *parent = EMPTY; retire(table) }
 *     collapser: if (*parent is a table) { *parent = HUGE;  retire(table) }
 *   retire(table) = call_rcu(table, free): the table is freed only after a
 *   grace period, i.e. after every RCU read-side section that was running
 *   when the grace period started has ended.  Any walker that could still
 *   hold the old pointer loaded it inside such a section (the entry was
 *   cleared before call_rcu), so it finishes before the free.
 *
 * A freed table frame may be handed out again by the allocator (REUSED),
 * after which a stale walker would interpret someone else's data as page
 * table entries.
 *
 * Memory model: sequential consistency.  The question here is lifetime, not
 * ordering: the ordering inside rcu_read_lock/unlock, READ_ONCE and
 * call_rcu is the RCU implementation's job and is assumed.
 *
 * Build switches:
 *   -DNO_GRACE_PERIOD  free the table as soon as it is detached (must fail:
 *                      a walker reads a freed or reused table)
 *   -DRELOAD           the walker re-reads the parent entry after checking
 *                      it and dereferences the second value as if it were
 *                      still the table it checked (must fail: it can be
 *                      EMPTY or a HUGE leaf by then)
 *   -DREACH            non-vacuity check on the correct protocol: assert
 *                      that no walker ever reads a table that is already
 *                      detached.  Must fail: shows the race is explored.
 */

/* parent entry values */
#define EMPTY     0
#define TABLE     1     /* points at the child table T */
#define HUGE      2     /* a huge leaf mapping, not a table */

/* life cycle of the child table T */
#define LIVE      0     /* linked from the parent entry */
#define DETACHED  1     /* unlinked, not yet freed: stale readers are fine */
#define FREED     2     /* returned to the allocator */
#define REUSED    3     /* reallocated for something else */

#define NW        2     /* walkers */
#define NWALKS    2     /* read-side sections per walker */

byte pe = TABLE;        /* the parent entry */
byte tstate = LIVE;     /* state of T */
bool ptl;               /* page-table lock (writers only) */

/* RCU bookkeeping: per-reader "inside a section" flag and a counter of the
 * sections it has started */
bool in_rcu[NW];
byte rcu_gen[NW];
bool cb_pending;        /* call_rcu() queued T's free */

byte writers_done;

inline spin_lock(l)   { atomic { !l -> l = true } }
inline spin_unlock(l) { l = false }

inline rcu_read_lock(me)
{
	d_step { in_rcu[me] = true; rcu_gen[me]++ }
}

inline rcu_read_unlock(me)
{
	in_rcu[me] = false
}

/* a read of one child entry through table pointer value v: it is only
 * valid if v really is a table pointer and T has not been freed */
inline read_child(v)
{
	d_step {
		assert(v == TABLE);                         /* RELOAD fails here */
		assert(tstate == LIVE || tstate == DETACHED); /* NO_GRACE_PERIOD */
#ifdef REACH
		assert(tstate != DETACHED)                  /* REACH fails here */
#else
		skip
#endif
	}
}

proctype walker(byte me)
{
	byte e, n;

	n = 0;
	do
	:: n < NWALKS ->
		rcu_read_lock(me);
		e = pe;                 /* READ_ONCE(*parent) */
		printf("walker %d: in RCU section, reads parent entry = %d\n",
		       me, e);
		if
		:: e == TABLE ->
#ifdef RELOAD
			/* the bug: the compiler (or the code) loads the parent
			 * entry again and uses that value, still assuming it is
			 * the table pointer checked above */
			e = pe;
			printf("walker %d: re-reads parent entry = %d\n",
			       me, e);
#endif
			printf("walker %d: reads child entry (table state %d)\n",
			       me, tstate);
			read_child(e);  /* first child entry */
			read_child(e)   /* descend further / next entry */
		:: else -> skip         /* EMPTY: nothing; HUGE: a leaf */
		fi;
		rcu_read_unlock(me);
		e = 0;
		n++
	:: else -> break
	od;
	n = 0
}

/* retire the detached table T */
inline retire()
{
#ifdef NO_GRACE_PERIOD
	d_step {
		assert(tstate == DETACHED);
		tstate = FREED
	};
	printf("writer: freed table immediately\n")
#else
	/* call_rcu(): only queue the free.  Writer side ordering: the
	 * parent entry was cleared (above) before the callback is queued,
	 * so a grace period that starts after this point waits for every
	 * walker that could have loaded the old pointer. */
	cb_pending = true
#endif
}

/* one writer; newval is EMPTY (unmap) or HUGE (collapse to a huge leaf) */
proctype writer(byte newval)
{
	bool detached = false;

	spin_lock(ptl);
	if
	:: pe == TABLE ->
		d_step {
			pe = newval;            /* unlink T from the tree */
			assert(tstate == LIVE);
			tstate = DETACHED
		};
		detached = true;
		printf("writer: detached table, parent entry now %d\n", pe)
	:: else -> skip                 /* the other writer got there first */
	fi;
	spin_unlock(ptl);
	if
	:: detached -> retire()
	:: else -> skip
	fi;
	detached = false;
	writers_done++
}

/* The RCU machinery: runs T's callback after a grace period.  A grace
 * period snapshots which readers are inside a section, then waits until
 * each of those has left that section (either it is no longer inside one,
 * or it has started a later one, which began after the snapshot). */
active proctype rcu_gp()
{
	bool snap_in[NW];
	byte snap_gen[NW];
	byte w;

end_idle:
	(cb_pending);               /* (never queued with NO_GRACE_PERIOD) */
	/* grace period start */
	printf("rcu: grace period starts\n");
	d_step {
		w = 0;
		do
		:: w < NW ->
			snap_in[w] = in_rcu[w];
			snap_gen[w] = rcu_gen[w];
			w++
		:: else -> break
		od;
		w = 0
	};
	w = 0;
	do
	:: w < NW ->
		(!snap_in[w] || !in_rcu[w] || rcu_gen[w] != snap_gen[w]);
		w++
	:: else -> break
	od;
	w = 0;
	/* grace period end: run the callback */
	d_step {
		assert(tstate == DETACHED);     /* freed exactly once */
		tstate = FREED;
		cb_pending = false
	};
	printf("rcu: grace period over, table freed\n")
}

/* the page allocator may hand a freed frame out again at any time */
active proctype allocator()
{
end_idle:
	(tstate == FREED) ->
	if
	:: tstate = REUSED
	:: skip
	fi
}

init
{
	atomic {
		run walker(0);
		run walker(1);
		run writer(EMPTY);
		run writer(HUGE)
	}
}
