#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write N objects of 2 KiB (hex text) under ROOT, 1,000 per directory:
the many-small-objects archive of bench/local.sh and bench/memory.sh.
usage: bench/many_objects.py ROOT N"""
import os
import random
import sys

root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(n)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "obj-%06d.txt" % i), "wb") as f:
        f.write(rnd.randbytes(1024).hex().encode())
