#!/usr/bin/env python3
"""Write the seed corpus of fuzz_as (tests/fuzz/corpus/seed-*).

Each operation is 8 bytes (layout in fuzz_as.c).  The seeds walk through
every operation at least once, on colliding ranges: huge anonymous blocks
split by protect/unmap/drop, special mappings with 2 MiB and 1 GiB leaves cut
inside the window, recreated 5-level spaces, and injected failures before
populate, unmap, protect, drop and special maps; explicit split and
collapse, pins kept across unmap and drop, kernel mappings with activation
and kernel faults, clones (fork) written on both sides, shared and private
mappings of objects (written through mappings and directly, truncated,
punched, cloned), and software-TLB translation, the last under every
design (a trailing byte after the last whole operation picks kernel_sync,
walk_mode, gather_mode and tlb_mode).  Run from anywhere:
    python3 tests/fuzz/make_seeds.py
"""
import os
import random
import struct

(MAP_ANON, MAP_SPECIAL, MAP_1G, UNMAP, PROTECT, DROP, FAULT, WRITE, POPULATE,
 TRANSLATE, RECREATE, INJECT, SPLIT, COLLAPSE, PIN, UNPIN, KMAP, KUNMAP,
 ACTIVATE, TLB, CLONE, MAP_OBJECT, TRUNCATE, PUNCH, OBJ_WRITE,
 OBJ_READ) = range(26)
FIXED, NOREPLACE, HUGE, POPULATE_F = 1, 2, 4, 8
R, W = 1, 2


def op(code, asi=0, page=0, length=0, prot=0, flags=0, aligned=False,
       bad=None, misc=0):
    b6 = (1 if aligned else 0) | (2 if bad is not None else 0)
    if bad is not None:
        misc = bad
    return struct.pack('<BBHBBBB', code, asi, page, length,
                       prot | (flags << 3), b6, misc)


def pages(n):          # class 0: 1..16 pages
    return n - 1


def huge(n):           # class 2: n x 2 MiB (1..4)
    return 0x80 | (n - 1)


WHOLE = 0xc0
seeds = {
    'huge-anon': [
        op(MAP_ANON, 0, 1024, huge(4), R | W, FIXED | HUGE, True),
        op(POPULATE, 0, 1024, huge(2), flags=1, aligned=True),
        op(WRITE, 0, 1030, pages(8)),
        op(PROTECT, 0, 1100, pages(3), R),
        op(WRITE, 0, 1099, pages(4)),
        op(UNMAP, 0, 1500, huge(1)),
        op(DROP, 0, 1024, huge(1), aligned=True),
        op(FAULT, 0, 2048, pages(4), flags=0),
        op(TRANSLATE, 0, 2049),
    ],
    'special': [
        op(MAP_SPECIAL, 1, 512, huge(2), R | W, FIXED | HUGE, True, misc=2),
        op(PROTECT, 1, 700, pages(5), R),
        op(UNMAP, 1, 900, pages(16)),
        op(MAP_ANON, 1, 512, pages(4), R | W, FIXED),
        op(WRITE, 1, 512, pages(4)),
        op(DROP, 1, 500, huge(1)),
        op(FAULT, 1, 1000, pages(2), flags=1),
    ],
    'special-1g': [
        op(MAP_1G, 2, 0, 0, R | W, misc=0),
        op(UNMAP, 2, 2050, pages(3)),
        op(PROTECT, 2, 2600, huge(1), R),
        op(MAP_ANON, 2, 3000, pages(9), R | W, FIXED),
        op(WRITE, 2, 3000, pages(9)),
        op(TRANSLATE, 2, 3001),
        op(MAP_1G, 2, 0, 0, R, misc=3),
    ],
    'recreate-hint': [
        op(RECREATE, 0, misc=1),
        op(MAP_ANON, 0, 100, pages(16), R | W, 0),
        op(MAP_ANON, 0, 100, pages(16), R | W, HUGE),
        op(MAP_ANON, 0, 100, pages(4), R | W, NOREPLACE),
        op(MAP_ANON, 0, 3000, 0x40 | 20, R | W, FIXED | POPULATE_F),
        op(WRITE, 0, 3000, pages(16)),
        op(RECREATE, 0, misc=0),
        op(MAP_ANON, 0, 0, WHOLE, R, FIXED | HUGE | POPULATE_F, True),
        op(PROTECT, 0, 0, WHOLE, R | W, aligned=True),
        op(WRITE, 0, 4000, pages(16)),
    ],
    'inject': [
        op(MAP_ANON, 0, 1024, huge(2), R | W, FIXED | HUGE, True),
        op(INJECT, prot=0, misc=0),          # data, 1st
        op(POPULATE, 0, 1024, huge(2), flags=1, aligned=True),
        op(INJECT, prot=1, misc=0),          # table, 1st
        op(UNMAP, 0, 1100, pages(2)),
        op(INJECT, prot=1, misc=0),
        op(PROTECT, 0, 1600, pages(2), R),
        op(INJECT, prot=1, misc=0),
        op(DROP, 0, 1700, pages(2)),
        op(INJECT, prot=3, misc=1),          # batch, 2nd
        op(UNMAP, 0, 1024, huge(2), aligned=True),
        op(INJECT, prot=1, misc=2),
        op(MAP_SPECIAL, 1, 512, huge(1), R, FIXED | HUGE, True, misc=0),
        op(INJECT, prot=6, misc=0),
        op(RECREATE, 2),
        op(INJECT, prot=0, misc=3),
        op(MAP_ANON, 1, 2000, pages(16), R | W, FIXED | POPULATE_F),
    ],
    'bad-args': [op(c, 0, 100 + c, pages(3), R | W, FIXED, bad=k)
                 for c in (MAP_ANON, MAP_SPECIAL, UNMAP, PROTECT, DROP, FAULT,
                           POPULATE, TRANSLATE) for k in range(7)],
}



def design(ksync=0, ipi=0, gather_legacy=0, tlb_lazy=0):
    return bytes([ksync | ipi << 2 | gather_legacy << 3 | tlb_lazy << 4])


seeds['split-collapse'] = [
    op(MAP_ANON, 0, 1024, huge(2), R | W, FIXED | HUGE, True),
    op(POPULATE, 0, 1024, huge(1), flags=1, aligned=True),
    op(WRITE, 0, 1030, pages(4)),
    op(SPLIT, 0, 1030),
    op(WRITE, 0, 1040, pages(2)),
    op(COLLAPSE, 0, 1024, aligned=True),          # one huge frame: collapses
    op(SPLIT, 0, 1024, aligned=True),
    op(PROTECT, 0, 1100, pages(2), R),
    op(COLLAPSE, 0, 1024, aligned=True),          # mixed protection: -EBUSY
    op(PROTECT, 0, 1100, pages(2), R | W),
    op(COLLAPSE, 0, 1030, misc=1),                # unaligned: -EINVAL
    op(COLLAPSE, 0, 1536, aligned=True),          # no table: -ENOENT
    op(DROP, 0, 1050, pages(3)),
    op(COLLAPSE, 0, 1024, aligned=True),          # a hole: -EBUSY
    op(MAP_SPECIAL, 1, 512, huge(2), R | W, FIXED | HUGE, True, misc=2),
    op(SPLIT, 1, 520),
    op(COLLAPSE, 1, 512, aligned=True),           # contiguous frames: collapses
    op(MAP_1G, 2, 0, 0, R | W, misc=0),
    op(SPLIT, 2, 2048, aligned=True),             # 1 GiB -> 2 MiB
    op(SPLIT, 2, 2100),                           # 2 MiB -> 4 KiB
    op(COLLAPSE, 2, 2048, aligned=True),
    op(SPLIT, 0, 3000),                           # nothing: -ENOENT
]
seeds['pin'] = [
    op(MAP_ANON, 0, 100, pages(16), R | W, FIXED),
    op(WRITE, 0, 100, pages(8)),
    op(PIN, 0, 100, pages(8), flags=1, misc=1),   # fast, write
    op(PIN, 0, 104, pages(12), flags=0, misc=0),  # full: faults the rest in
    op(UNMAP, 0, 100, pages(4)),
    op(DROP, 0, 104, pages(4)),
    op(WRITE, 0, 104, pages(4)),
    op(UNPIN, misc=0),
    op(MAP_ANON, 1, 1024, huge(1), R | W, FIXED | HUGE | POPULATE_F, True),
    op(WRITE, 1, 1030, pages(2)),
    op(PIN, 1, 1030, pages(4), misc=1),
    op(UNMAP, 1, 1024, huge(1), aligned=True),
    op(MAP_SPECIAL, 2, 600, pages(4), R | W, FIXED, misc=4),
    op(PIN, 2, 600, pages(2), misc=0),            # special: -EFAULT
    op(PROTECT, 0, 110, pages(4), R),
    op(PIN, 0, 110, pages(4), flags=1, misc=0),   # write on read-only: -EACCES
    op(UNPIN, misc=1),
]
kernel_ops = [
    op(KMAP, 0, 0, pages(8), R | W, misc=2),                      # special
    op(KMAP, 0, 100, pages(16), R, misc=1),                       # anon
    op(KMAP, 0, 512, huge(1), R | W, HUGE, True, misc=4),         # 2 MiB leaf at 1 GiB
    op(ACTIVATE, 0, misc=2),                                      # ptk_kernel_sync
    op(ACTIVATE, 1, misc=0),
    op(ACTIVATE, 2, 104, misc=1),                                 # kernel fault
    op(TLB, 0, 0, pages(4), misc=1),
    op(KMAP, 1, 4, pages(2), R, misc=3),                          # -EEXIST
    op(KUNMAP, 0, 2, pages(4)),
    op(KUNMAP, 0, 520, pages(2)),                                 # splits the 2 MiB leaf
    op(TLB, 0, 0, pages(8)),
    op(RECREATE, 1, misc=1),                                      # 5 levels: no kernel half
    op(ACTIVATE, 1, 104, misc=1),
    op(RECREATE, 2, misc=0),
    op(KMAP, 0, 200, pages(4), R | W, misc=5),
    op(TLB, 2, 200, pages(4), misc=3),
    op(KUNMAP, 0, 0, WHOLE),
]
tlb_ops = [
    op(MAP_ANON, 0, 100, pages(16), R | W, FIXED),
    op(WRITE, 0, 100, pages(8)),
    op(TLB, 0, 100, pages(16), misc=1),
    op(PROTECT, 0, 102, pages(2), R),
    op(TLB, 0, 100, pages(8)),
    op(UNMAP, 0, 104, pages(2)),
    op(DROP, 0, 106, pages(2)),
    op(TLB, 0, 100, pages(16)),
    op(MAP_ANON, 0, 1024, huge(1), R | W, FIXED | HUGE | POPULATE_F, True),
    op(TLB, 0, 1024, pages(16)),
    op(SPLIT, 0, 1024, aligned=True),
    op(UNMAP, 0, 1026, pages(1)),
    op(TLB, 0, 1024, pages(4), misc=2),
    op(TLB, 1, 0, pages(1)),
    op(RECREATE, 0),
    op(TLB, 0, 100, pages(4)),
]
clone_ops = [
    op(MAP_ANON, 0, 100, pages(16), R | W, FIXED),
    op(WRITE, 0, 100, pages(8)),
    op(MAP_ANON, 0, 1024, huge(1), R | W, FIXED | HUGE | POPULATE_F, True),
    op(WRITE, 0, 1030, pages(2)),
    op(MAP_SPECIAL, 0, 600, pages(4), R | W, FIXED, misc=4),
    op(PIN, 0, 102, pages(2), misc=0),
    op(CLONE, 0),                                 # space 0 -> 1
    op(WRITE, 1, 100, pages(4)),                  # copies in the child
    op(WRITE, 0, 102, pages(4)),                  # copies in the parent
    op(WRITE, 1, 1031, pages(1)),                 # splits the shared 2 MiB leaf
    op(TLB, 0, 100, pages(16), misc=1),
    op(PROTECT, 0, 100, pages(8), R),
    op(PROTECT, 0, 100, pages(8), R | W),         # COW leaves stay read-only
    op(WRITE, 0, 106, pages(2)),
    op(CLONE, 1),                                 # space 1 -> 2: a chain
    op(WRITE, 2, 100, pages(16)),
    op(DROP, 1, 100, pages(4)),
    op(UNMAP, 0, 100, pages(8)),
    op(RECREATE, 1),                              # a parent goes first
    op(TLB, 2, 100, pages(8)),
    op(UNPIN, misc=1),
    op(INJECT, 0, prot=0, misc=3),
    op(CLONE, 2),                                 # a clone that may fail
    op(WRITE, 2, 1024, pages(4)),
]


def obj(k, private=False, off8=0):
    """misc of MAP_OBJECT: object k, private or shared, offset off8 * 8 pages."""
    return k | (2 if private else 0) | off8 << 2


object_shared_ops = [
    op(MAP_OBJECT, 0, 100, pages(16), R | W, FIXED, misc=obj(0)),
    op(MAP_OBJECT, 1, 200, pages(16), R | W, FIXED, misc=obj(0)),
    op(WRITE, 0, 100, pages(8)),                  # into the object
    op(FAULT, 1, 200, pages(16), flags=0),        # the other space sees it
    op(OBJ_READ, 0, 0, 15),                       # pages 0..15 read back
    op(OBJ_WRITE, 0, 4, 3),                       # pages 4..7 written directly
    op(TLB, 1, 200, pages(16), misc=1),
    op(PIN, 0, 104, pages(4), misc=0),            # the object's frames
    op(OBJ_WRITE, 0, 5, 0),                       # a pinned frame changes
    op(PUNCH, 0, 2, pages(4)),                    # zaps both spaces
    op(TLB, 1, 200, pages(16)),
    op(FAULT, 0, 100, pages(8), flags=0),
    op(OBJ_READ, 0, 0, 15),
    op(TRUNCATE, 0, 8),                           # 8 pages left
    op(FAULT, 0, 100, pages(16), flags=1),        # -ENXIO beyond
    op(UNPIN, misc=1),
    op(TRUNCATE, 0, 256),                         # grows: holes
    op(WRITE, 1, 200, pages(16)),
    op(MAP_OBJECT, 2, 1000, 0x40 | 40, R | W, FIXED | POPULATE_F, misc=obj(1, False, 5)),
    op(MAP_OBJECT, 2, 1100, pages(4), R | W, NOREPLACE, misc=obj(1)),   # -EEXIST
    op(OBJ_WRITE, 0, 40, 3, misc=1),
    op(PROTECT, 2, 1000, pages(8), R),
    op(PROTECT, 2, 1000, pages(8), R | W),        # shared: write back
    op(WRITE, 2, 1000, pages(4)),
    op(DROP, 2, 1000, pages(16)),                 # the cache keeps the pages
    op(OBJ_READ, 0, 40, 15, misc=1),
    op(UNMAP, 0, 100, pages(8)),
    op(MAP_OBJECT, 0, 300, pages(4), R, FIXED, bad=2, misc=0),         # unaligned length
    op(MAP_OBJECT, 0, 300, WHOLE, R, FIXED, bad=3),                    # a stray flag
    op(TRUNCATE, 1, 9, bad=1),                    # unaligned size
    op(TRUNCATE, 1, 9, bad=3),                    # beyond the maximum
    op(PUNCH, 0, 9, pages(2), bad=1),             # empty
    op(OBJ_WRITE, 0, 300, 3),                     # beyond the size
    op(OBJ_READ, 0, 255, 2),
]
object_private_ops = [
    op(MAP_OBJECT, 0, 300, pages(16), R | W, FIXED, misc=obj(0, True)),
    op(MAP_OBJECT, 1, 300, pages(16), R | W, FIXED, misc=obj(0)),
    op(WRITE, 1, 300, pages(8)),                  # object contents
    op(FAULT, 0, 300, pages(16), flags=0),        # the object's frames, read-only
    op(WRITE, 0, 302, pages(4)),                  # private copies of 2..5
    op(OBJ_WRITE, 0, 0, 3),                       # 0..3: 0,1 show, 2,3 do not
    op(PUNCH, 0, 0, pages(8)),                    # private copies stay
    op(FAULT, 0, 300, pages(8), flags=0),
    op(PROTECT, 0, 300, pages(16), R),
    op(PROTECT, 0, 300, pages(16), R | W),        # copies stay read-only
    op(WRITE, 0, 304, pages(2)),                  # reused, not copied
    op(WRITE, 0, 310, pages(2)),                  # a hole: copied from zero
    op(MAP_OBJECT, 0, 400, pages(16), R | W, FIXED, misc=obj(1)),
    op(WRITE, 0, 400, pages(4)),
    op(PIN, 0, 302, pages(2), misc=0),
    op(CLONE, 0),                                 # 0 -> 1: private COW, shared not copied
    op(WRITE, 1, 300, pages(8)),
    op(WRITE, 1, 400, pages(2)),                  # the object: space 0 sees it
    op(FAULT, 0, 400, pages(4), flags=0),
    op(WRITE, 0, 303, pages(2)),
    op(TRUNCATE, 0, 3),                           # even private copies go
    op(FAULT, 0, 300, pages(8), flags=1),         # -ENXIO beyond
    op(TRUNCATE, 0, 256),
    op(FAULT, 1, 300, pages(8), flags=0),
    op(OBJ_READ, 0, 0, 15),
    op(INJECT, prot=1, misc=0),
    op(MAP_OBJECT, 2, 500, pages(16), R | W, FIXED | POPULATE_F, misc=obj(0, True)),
    op(INJECT, prot=0, misc=0),
    op(OBJ_WRITE, 0, 20, 3),
    op(INJECT, prot=0, misc=0),
    op(WRITE, 0, 306, pages(2)),
    op(CLONE, 1),
    op(DROP, 2, 300, pages(8)),
    op(UNMAP, 0, 300, pages(16)),
    op(RECREATE, 1),
    op(UNPIN, misc=1),
]
designs = {'default': design(), 'lazy-ksync': design(1), 'legacy-ksync': design(2),
           'old': design(2, 1, 1, 1), 'tlb-lazy': design(1, 0, 0, 1),
           'ipi-gather-legacy': design(0, 1, 1, 0)}
for name, d in designs.items():
    seeds['kernel-' + name] = kernel_ops + [d]
    seeds['tlb-' + name] = tlb_ops + [d]
seeds['clone'] = clone_ops
seeds['object-shared'] = object_shared_ops
seeds['object-private'] = object_private_ops
seeds['object-private-old'] = object_private_ops + [design(2, 1, 1, 1)]
seeds['clone-old'] = clone_ops + [design(2, 1, 1, 1)]
seeds['split-collapse-old'] = seeds['split-collapse'] + [design(2, 1, 1, 1)]
seeds['pin-old'] = seeds['pin'] + [design(1, 1, 1, 1)]

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus')
os.makedirs(out, exist_ok=True)
for name, ops in seeds.items():
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(b''.join(ops))
rng = random.Random(8)
for k in range(4):
    with open(os.path.join(out, 'seed-random-%d' % k), 'wb') as f:
        f.write(bytes(rng.randrange(256) for _ in range(8 * 64)))
