"""The manual pages against the code (issue 9).

- Every directive of palyrad.conf that the parser knows (the directive
  tables of common/config*.c) is documented in palyrad.conf(5) as an
  item, `.It Ic NAME ...`.
- Every palyractl command and subcommand that `palyractl help` lists, and
  every long option it shows, is documented in palyractl(1): commands as
  items of its COMMANDS section (`.It Cm token create ...`), options as
  `Fl Fl NAME`.
- Every palyrad flag of its usage line is documented in palyrad(8).
- `mandoc -T lint -W warning` is clean on every page.

The sources and the built binaries are read as they are, so that a new
directive, command or option without documentation fails here.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import PALYRACTL, PALYRAD, REPO, _require_binaries

MAN = os.path.join(REPO, "man")
CONF_PAGE = os.path.join(MAN, "palyrad.conf.5")
CTL_PAGE = os.path.join(MAN, "palyractl.1")
DAEMON_PAGE = os.path.join(MAN, "palyrad.8")

# A mdoc macro name (Ic, Cm, Fl, Ar, Op, Ns, Brq, ...) among the words of
# a macro line.
MACRO = re.compile(r"^[A-Z][a-z]{1,2}$")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# -- palyrad.conf(5)

def strip_c_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", " ", src)


def parser_directives():
    """{table name: [directive, ...]} from every `struct directive X[]`
    table of the parser's sources."""
    tables = {}
    for path in sorted(glob.glob(os.path.join(REPO, "common", "config*.c"))):
        src = strip_c_comments(read(path))
        for m in re.finditer(r"struct\s+directive\s+(\w+)\s*\[\s*\]\s*=\s*"
                             r"\{(.*?)\}\s*;", src, flags=re.S):
            names = re.findall(r'\{\s*"([^"]+)"\s*,', m.group(2))
            tables[f"{os.path.basename(path)}:{m.group(1)}"] = names
    return tables


def documented_items(page, macro):
    """Every word following `macro` on an item line (.It) of page, the
    words of `.It Xo` ... `.Xc` heads included."""
    words = set()
    for head in item_heads(read(page).splitlines()):
        words.update(macro_words(head, macro))
    return words


def item_heads(lines):
    """The heads of a page's items: `.It` lines, an Xo head with every
    line up to its `.Xc` joined."""
    heads, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(".It"):
            head = line[3:]
            if re.search(r"\bXo\b", line):
                while i + 1 < len(lines) and not lines[i + 1].startswith(".Xc"):
                    i += 1
                    head += " " + lines[i].lstrip(".")
            heads.append(head)
        i += 1
    return heads


def macro_words(head, macro):
    """The arguments of each `macro` in one item head, up to the next
    macro: `Cm runs show Ns | Ns Cm abort` gives runs, show and abort."""
    out, words, taking = [], head.replace("\\", " ").split(), False
    for w in words:
        if MACRO.match(w) or w in ("|", ";"):
            taking = w == macro
            continue
        if taking:
            out.extend(x for x in w.split("|") if x)
    return out


def test_parser_tables_found():
    # The extraction itself must see the parser: the top level, its
    # blocks and the tenant and agent directives.
    tables = parser_directives()
    assert len(tables) >= 8, tables
    names = {n for v in tables.values() for n in v}
    for known in ("state-dir", "listen", "provider", "tenant", "agent",
                  "api-key", "durability", "max-redirects", "budget"):
        assert known in names, sorted(names)


def test_every_directive_documented():
    documented = documented_items(CONF_PAGE, "Ic")
    missing = sorted({f"{name} ({table})"
                      for table, names in parser_directives().items()
                      for name in names if name not in documented})
    assert not missing, ("directives the parser knows that palyrad.conf(5) "
                         f"does not document as .It Ic NAME: {missing}")


# -- palyractl(1)

def ctl_help():
    _require_binaries()
    r = subprocess.run([PALYRACTL, "help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r
    return r.stdout


def ctl_commands(text):
    """[(command, subcommand or None)] of the commands: section of
    `palyractl help`."""
    out, in_commands = [], False
    for line in text.splitlines():
        if line.strip() == "commands:":
            in_commands = True
            continue
        # A command starts at two spaces; more is a continuation.
        m = re.match(r"^  ([a-z][a-z-]*)(?:\s+(\S+))?", line)
        if not in_commands or m is None:
            continue
        sub = m.group(2)
        if sub is None or not re.match(r"^[a-z][a-z-]*(\|[a-z][a-z-]*)*$",
                                       sub):
            out.append((m.group(1), None))
        else:
            out.extend((m.group(1), s) for s in sub.split("|"))
    return out


def commands_section(page):
    text = read(page)
    m = re.search(r"^\.Sh COMMANDS\n(.*?)^\.Sh ", text, flags=re.S | re.M)
    assert m, "palyractl(1) has no COMMANDS section"
    return m.group(1).splitlines()


def documented_commands(page):
    """{(command, subcommand)} and {(command, None)} of the items of the
    COMMANDS section."""
    out = set()
    for head in item_heads(commands_section(page)):
        words = macro_words(head, "Cm")
        if not words:
            continue
        out.add((words[0], None))
        out.update((words[0], w) for w in words[1:])
    return out


def test_help_lists_commands():
    cmds = ctl_commands(ctl_help())
    assert ("token", "create") in cmds and ("health", None) in cmds, cmds
    assert len(cmds) >= 30, cmds


def test_every_command_documented():
    documented = documented_commands(CTL_PAGE)
    missing = sorted({f"{c} {s}" if s else c
                      for c, s in ctl_commands(ctl_help())
                      if (c, s) not in documented})
    assert not missing, ("palyractl commands without an item in the "
                         f"COMMANDS section of palyractl(1): {missing}")


def test_every_long_option_documented():
    text = read(CTL_PAGE)
    options = sorted(set(re.findall(r"--([a-z][a-z-]*)", ctl_help())))
    assert "tenant" in options and "json" in options, options
    missing = [o for o in options
               if not re.search(rf"\bFl Fl {re.escape(o)}\b(?!-)", text)]
    assert not missing, f"palyractl options not in palyractl(1): {missing}"


# -- palyrad(8)

def test_every_daemon_flag_documented():
    _require_binaries()
    r = subprocess.run([PALYRAD, "-?"], capture_output=True, text=True,
                       timeout=10)
    usage = re.search(r"^usage: palyrad .*$", r.stderr, flags=re.M)
    assert r.returncode == 2 and usage, r
    flags = set()
    for group in re.findall(r"\[-([A-Za-z]+)", usage.group(0)):
        flags.update(group)
    assert {"d", "f", "n", "v"} <= flags, r.stderr
    documented = documented_items(DAEMON_PAGE, "Fl")
    missing = sorted(flags - documented)
    assert not missing, f"palyrad flags not in palyrad(8): {missing}"


# -- mandoc

@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc missing")
def test_mandoc_lint_clean():
    pages = sorted(glob.glob(os.path.join(MAN, "*.[158]")))
    assert len(pages) >= 3, pages
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", *pages],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout + r.stderr) == (0, ""), r.stdout + r.stderr
