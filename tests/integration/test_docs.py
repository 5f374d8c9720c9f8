# SPDX-License-Identifier: Apache-2.0
"""The documentation names only what exists.

- Every option and environment variable that `trs <command> --help` prints
  is in man/trs.1, in that command's section, and the man page documents no
  option the command does not have.
- docs/*.md, README.md, man/trs.1 and the public headers refer only to
  functions (trs_*()), repository files (docs/x.md, lib/x.c, scripts/x,
  bench/x, ...) and trs options that exist."""

import glob
import os
import re
import subprocess

import util

REPO = util.REPO
OPTION = r"--[a-z][a-z0-9-]*"
ENVVAR = r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b"


def _help(*args):
    p = subprocess.run([util.trs_bin()] + list(args) + ["--help"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    assert p.returncode == 0, "trs %s --help: exit %d" % (
        " ".join(args), p.returncode)
    return p.stdout.decode()


_commands = None


def commands():
    """{command: (options, environment variables)} from the --help texts."""
    global _commands
    if _commands is None:
        top = _help()
        block = top.split("commands:", 1)[1].split("\n\n", 1)[0]
        names = [m.group(1) for m in
                 re.finditer(r"^  ([a-z][a-z-]*) ", block, re.M)]
        assert len(names) >= 6, "commands in trs --help: %r" % names
        _commands = {}
        for name in names:
            text = _help(name)
            # The options: those of the usage line, and each option line's
            # (indented, starting with the option or "-o, --output").
            heads = [l for l in text.splitlines() if l.startswith("usage:")]
            for line in text.splitlines():
                m = re.match(r"^ {2}((?:-[a-zA-Z], )?%s)" % OPTION, line)
                if m:
                    heads.append(m.group(1))
            opts = set()
            for h in heads:
                opts.update(re.findall(r"(?<![\w-])(-[a-zA-Z]|%s)(?![\w-])" %
                                       OPTION, h))
            # Options the text only mentions (trs head: "what --dest was").
            mentioned = set(re.findall(r"(?<![\w-])(%s)" % OPTION, text))
            _commands[name] = (opts, set(re.findall(ENVVAR, text)), mentioned)
    return _commands


def all_options():
    opts = {"--help", "--version"}
    for o, _, _ in commands().values():
        opts |= o
    return opts


def _man_text():
    with open(os.path.join(REPO, "man", "trs.1"), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"^\.\\\".*$", "", text, flags=re.M)   # comments
    text = re.sub(r"\\f[BIRP]", "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    return text


def _man_sections(text):
    """{'trs process': text, ..., 'ENVIRONMENT': text, ...}"""
    out = {}
    for part in re.split(r"^(?=\.S[HS] )", text, flags=re.M):
        m = re.match(r'^\.S[HS] "?([^"\n]*)"?\n', part)
        if not m:
            continue
        title = m.group(1)
        key = " ".join(title.split()[:2]) if title.startswith("trs ") else title
        out[key] = out.get(key, "") + part
    return out


def _man_options(text):
    return set(re.findall(r"(?<![\w-])(%s|-[a-zA-Z])(?![\w-])" % OPTION,
                          text)) - {"-"}


def test_every_help_option_is_in_the_man_page_section_of_its_command():
    sections = _man_sections(_man_text())
    problems = []
    for name, (opts, _, mentioned) in sorted(commands().items()):
        sec = sections.get("trs " + name)
        if sec is None:
            problems.append("no section 'trs %s' in man/trs.1" % name)
            continue
        documented = _man_options(sec)
        for o in sorted(opts - documented):
            problems.append("trs %s %s: in --help, not in its man section" %
                            (name, o))
        for o in sorted(o for o in documented - opts - mentioned
                        if o.startswith("--") and o != "--help"):
            problems.append("trs %s %s: in the man page, not in --help" %
                            (name, o))
    synopsis = sections.get("SYNOPSIS", "")
    for name in commands():
        if not re.search(r"^\.B trs %s$" % re.escape(name), synopsis, re.M):
            problems.append("trs %s is not in the SYNOPSIS" % name)
    assert not problems, "\n".join(problems)


def test_every_help_environment_variable_is_in_the_man_page():
    env = _man_sections(_man_text()).get("ENVIRONMENT", "")
    named = set(re.findall(ENVVAR, env))
    missing = sorted({(v, n) for n, (_, vs, _) in commands().items()
                      for v in vs if v not in named})
    assert not missing, "environment variables of --help not in the man " \
        "page's ENVIRONMENT: %r" % missing


# ------------------------------------------------- stale references

def _doc_files():
    files = sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
    files.append(os.path.join(REPO, "README.md"))
    files.append(os.path.join(REPO, "man", "trs.1"))
    files += sorted(glob.glob(os.path.join(REPO, "include", "**", "*.h"),
                              recursive=True))
    return files


def _strip_c_comments(code):
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', code)


_functions = None


def defined_functions():
    """trs_ names declared, defined or #defined in the code (not comments)."""
    global _functions
    if _functions is None:
        names, idents = set(), set()
        for d in ("include", "lib", "cli"):
            for path in glob.glob(os.path.join(REPO, d, "**", "*.[ch]"),
                                  recursive=True):
                with open(path, encoding="utf-8") as f:
                    code = _strip_c_comments(f.read())
                names.update(re.findall(r"\b(trs_\w+)\s*\(", code))
                names.update(re.findall(r"#\s*define\s+(trs_\w+)", code))
                idents.update(re.findall(r"\b(trs_\w+)", code))
        assert len(names) > 50, "found only %d trs_ functions" % len(names)
        _functions = names
        _identifiers.update(idents)
    return _functions


_identifiers = set()


def identifiers():
    """Every trs_ name the code uses: functions, types, fields, macros."""
    defined_functions()
    return _identifiers


TREES = ("docs", "lib", "cli", "include", "scripts", "bench", "tests",
         "examples", "man", "fuzz", "debian", "pkgconfig")
PATH_RE = re.compile(r"(?<![\w./$<>~-])((?:%s)/[\w.*+/-]*[\w*])" %
                     "|".join(TREES))


def _path_exists(ref):
    if "*" in ref:
        return bool(glob.glob(os.path.join(REPO, ref)))
    return os.path.exists(os.path.join(REPO, ref))


def _spans(text, is_markdown):
    """Code a reader would type: backtick spans and code-block lines of a
    Markdown file (continuation lines joined)."""
    if not is_markdown:
        return []
    spans = []
    blocks = re.split(r"^```[^\n]*\n", text, flags=re.M)
    for i, chunk in enumerate(blocks):
        if i % 2 == 1:  # inside a fenced block
            spans += chunk.replace("\\\n", " ").splitlines()
        else:
            spans += re.findall(r"`([^`\n]+)`", chunk)
    return spans


def _span_problems(span, cmds, union):
    """Options of a trs command line must be that command's; an option on
    its own must be one of trs's."""
    s = span.strip()
    m = re.match(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*/)?trs\s+([a-z-]+)(.*)$", s)
    if m:
        cmd, rest = m.group(1), m.group(2)
        if cmd not in cmds:
            # A command line with an unknown command; not prose or program
            # output that starts with the word trs ("trs peak RSS ...").
            if cmd.startswith("-") or not re.search(OPTION, rest):
                return []
            return ["`%s`: trs has no command %s" % (s, cmd)]
        # Stop at a pipe or a shell comment: what follows is another program.
        rest = re.split(r"\s[|#;&]|\s&&\s", rest)[0]
        opts = set(re.findall(r"(?<![\w-])(%s)" % OPTION, rest))
        return ["`%s`: trs %s has no %s" % (s, cmd, o)
                for o in sorted(opts - cmds[cmd][0] - {"--help"})]
    m = re.match(r"^(%s)(?:[ =]\S+)?$" % OPTION, s)
    if m and m.group(1) not in union:
        return ["`%s`: no trs command has %s" % (s, m.group(1))]
    return []


def test_docs_refer_only_to_functions_files_and_options_that_exist():
    functions = defined_functions()
    cmds = commands()
    union = all_options()
    problems = []
    for path in _doc_files():
        rel = os.path.relpath(path, REPO)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if rel.endswith(".1"):
            text = _man_text()
        where = lambda i: "%s:%d" % (rel, text.count("\n", 0, i) + 1)
        # A call or a reference: the name right before "(" (a space before
        # it is prose: "trs_serve_options (strings ...)").
        for m in re.finditer(r"\b(trs_\w+)\(", text):
            if m.group(1) not in functions:
                problems.append("%s: %s() does not exist" % (
                    where(m.start()), m.group(1)))
        for m in re.finditer(r"(?<![\w/.-])(trs_\w*[a-z0-9])\b(?!\()", text):
            if m.group(1) not in identifiers():
                problems.append("%s: %s is nothing in the code" % (
                    where(m.start()), m.group(1)))
        for m in PATH_RE.finditer(text):
            ref = m.group(1).rstrip(".")
            if not _path_exists(ref):
                problems.append("%s: %s is not in the repository" % (
                    where(m.start()), ref))
        for m in re.finditer(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b", text):
            line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
            if "stack's" in line:  # a file of the sample stack's repository
                continue
            if not any(os.path.exists(os.path.join(REPO, d, m.group(1)))
                       for d in (".", "docs")):
                problems.append("%s: %s is not in the repository" % (
                    where(m.start()), m.group(1)))
        for span in _spans(text, rel.endswith(".md")):
            problems += ["%s: %s" % (rel, p)
                         for p in _span_problems(span, cmds, union)]
        if rel.endswith(".h"):
            for m in re.finditer(r"(?<![\w-])(%s)" % OPTION, text):
                if m.group(1) not in union:
                    problems.append("%s: %s is no trs option" % (
                        where(m.start()), m.group(1)))
    assert not problems, "%d stale references:\n%s" % (
        len(problems), "\n".join(problems))


def test_the_reference_check_catches_what_it_should():
    """The checks above would pass trivially if their patterns matched
    nothing: each kind of stale reference is caught in a sample."""
    cmds = commands()
    union = all_options()
    assert "trs_process" in defined_functions()
    assert "trs_log_set" not in defined_functions()
    assert "trs_log_set" not in identifiers() and "trs_ctx_options" in identifiers()
    assert _path_exists("docs/formats.md") and not _path_exists("docs/FORMAT.md")
    assert [m.group(1) for m in PATH_RE.finditer(
        "see lib/core/process.c, `scripts/demo` and /usr/lib/x86_64")] == \
        ["lib/core/process.c", "scripts/demo"]
    assert _span_problems("trs process a.tar.zst --no-such-flag", cmds, union)
    assert _span_problems("--no-such-flag", cmds, union)
    assert not _span_problems("trs process a.tar.zst --dest file://x | zstd --long",
                              cmds, union)
    assert _span_problems("trs restore --dest x", cmds, union)
    assert not _span_problems("trs peak RSS   54952 KiB", cmds, union)
    assert _span_problems("trs serve --to-bucket b", cmds, union), \
        "an option of another command passes"
