# SPDX-License-Identifier: Apache-2.0
"""The library's layout holds as docs/architecture.md draws it: every
include in lib/ names its own folder, the root or a lower layer (aws <
archive < storage, queue, metrics < core < serve; the root's files include
no layer), only lib/ is on the include path (includes name their folder),
the core and the service reach backends only through their vtables, and
no library file holds two concepts' worth of lines (700)."""

import os
import re

from util import REPO

LIB = os.path.join(REPO, "lib")
RANK = {"aws": 1, "archive": 2, "storage": 3, "queue": 3, "metrics": 3, "core": 4, "serve": 5}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(top=LIB):
    for d, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def layer_problems(path, text):
    """Why the includes of one file (under lib/) break the layering."""
    own = os.path.relpath(os.path.dirname(path), LIB)
    here = os.listdir(os.path.dirname(path))
    problems = []
    for inc in INCLUDE.findall(text):
        if inc.startswith("trs/") or inc.startswith("trs."):
            continue  # the public headers
        if inc.startswith("."):
            problems.append("%s: relative include %s" % (path, inc))
            continue
        if "/" not in inc:
            if inc not in here and not os.path.exists(os.path.join(LIB, inc)):
                problems.append("%s: %s is neither in its folder nor in lib/" % (path, inc))
            continue
        folder = inc.split("/")[0]
        if own == ".":
            problems.append("%s: the root includes the %s layer (%s)" % (path, folder, inc))
        elif folder != own and RANK.get(folder, 99) >= RANK.get(own, 0):
            problems.append("%s: %s includes %s, a layer not below it" % (path, own, inc))
    return problems


def test_every_include_points_to_its_folder_the_root_or_a_lower_layer():
    problems = []
    for path in sources():
        problems += layer_problems(path, open(path, encoding="utf-8").read())
    assert not problems, "\n".join(problems)


def test_the_layer_check_catches_what_it_should():
    core = os.path.join(LIB, "core", "x.c")
    assert layer_problems(core, '#include "serve/serve_internal.h"\n')
    assert layer_problems(core, '#include "../serve/serve_internal.h"\n')
    assert layer_problems(os.path.join(LIB, "x.c"), '#include "aws/http.h"\n')
    assert layer_problems(os.path.join(LIB, "aws", "x.c"), '#include "storage/storage_s3.h"\n')
    assert layer_problems(core, '#include "sigv4.h"\n')  # a header of another folder, by its name alone
    assert not layer_problems(core, '#include "storage/storage_fs.h"\n#include "pipeline.h"\n#include "util.h"\n')


def test_only_lib_is_on_the_include_path():
    meson = open(os.path.join(LIB, "meson.build"), encoding="utf-8").read()
    m = re.search(r"lib_inc\s*=\s*include_directories\(([^)]*)\)", meson)
    assert m and [a.strip() for a in m.group(1).split(",")] == ["'.'"], m and m.group(0)


def test_the_core_and_the_service_reach_backends_only_through_their_vtables():
    problems = []
    for folder in ("core", "serve"):
        for path in sources(os.path.join(LIB, folder)):
            text = open(path, encoding="utf-8").read()
            for name in re.findall(r"\btrs__(?:fs|s3|sqs|cw)_[a-z_]+", text):
                problems.append("%s calls %s" % (os.path.relpath(path, REPO), name))
            for inc in INCLUDE.findall(text):
                if re.match(r"(storage|queue)/(storage|queue)_\w+\.h$", inc) or re.match(r"storage/(fs|s3)_", inc):
                    problems.append("%s includes %s" % (os.path.relpath(path, REPO), inc))
    for path in sources():
        for m in re.finditer(r"->\s*(put|get|send|receive)\s*[!=]=\s*\w+", open(path, encoding="utf-8").read()):
            problems.append("%s recognises a backend by a function pointer: %s" % (os.path.relpath(path, REPO),
                                                                                   m.group(0)))
    assert not problems, "\n".join(problems)


def test_no_library_file_passes_700_lines():
    long = []
    for path in sources():
        n = sum(1 for _ in open(path, encoding="utf-8"))
        if n > 700:
            long.append("%s: %d lines" % (os.path.relpath(path, REPO), n))
    assert not long, "\n".join(long)
