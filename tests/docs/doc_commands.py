#!/usr/bin/python3
"""Docs are code: every bpfix-exporter and bpfix-collector command line shown
in README.md and docs/*.md (fenced blocks) is accepted by the program's
command-line parser: each flag and subcommand exists and takes the value
shown. A flag that was renamed or removed (`--mtu`) fails this test.

Each line runs from a scratch directory with the build's binaries:
daemon lines with --check-config appended (so nothing starts, binds or
sends), subcommand lines (`pcap`, `replay`) and `--read` with their data
paths moved into the scratch directory, where nothing exists (so they stop
at their first check). What the program itself then refuses on this host
(no eth0, no such file, a placeholder time `...`) is printed, not failed:
that is the configuration's business, checked by the tiers that run it.

usage: doc_commands.py SOURCE_DIR BUILD_DIR
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

PROGRAMS = ("bpfix-exporter", "bpfix-collector")
SUBCOMMANDS = ("pcap", "replay")
# Options whose value is a path the line reads or writes: moved into the
# scratch directory for subcommand and --read lines.
PATH_OPTIONS = ("--data-dir", "-w", "--read", "-r")


def fenced_lines(path):
    """(line number, command text) of each line in fenced blocks, with
    backslash continuations joined."""
    out, fenced, shell, pending, start = [], False, False, "", 0
    for no, line in enumerate(open(path).read().split("\n"), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            shell = fenced and line.strip()[3:].strip() in ("", "sh", "bash")
            pending = ""
            continue
        if not shell:
            continue
        if not pending:
            start = no
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def segments(text):
    """The simple commands of a line: split on |, &&, ||, ; and cut at
    redirections; comments dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars="|&;<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    words = list(lex)
    cmds, cur, skip = [], [], False
    for w in words:
        if w in ("|", "||", "&&", ";", "&"):
            cmds.append(cur)
            cur, skip = [], False
        elif w in (">", ">>", "<", "2>"):
            skip = True  # the redirection's target, then the rest of this command
        elif not skip:
            cur.append(w)
    cmds.append(cur)
    return [c for c in cmds if c]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    docs = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    scratch = tempfile.mkdtemp(prefix="bpfix-doc-commands-")
    failures, checked, refused = [], 0, 0
    try:
        for doc in docs:
            rel = os.path.relpath(doc, src)
            for no, text in fenced_lines(doc):
                try:
                    cmds = segments(text)
                except ValueError as e:
                    failures.append(f"{rel}:{no}: the shell could not parse this line ({e}): {text.strip()}")
                    continue
                for argv in cmds:
                    while argv and (argv[0] == "sudo" or re.match(r"^[A-Z_]+=", argv[0])):
                        argv = argv[1:]
                    if not argv or os.path.basename(argv[0]) not in PROGRAMS:
                        continue
                    prog = os.path.join(build, "bin", os.path.basename(argv[0]))
                    args = argv[1:]
                    sub = args and args[0] in SUBCOMMANDS
                    if sub or "--read" in args or "-r" in args and os.path.basename(argv[0]) == "bpfix-collector":
                        for i, a in enumerate(args[:-1]):
                            if a in PATH_OPTIONS and args[i + 1] != "-":
                                args[i + 1] = os.path.join(scratch, "nothing-here", os.path.basename(args[i + 1]))
                    elif "--check-config" not in args:
                        args = args + ["--check-config"]
                    r = subprocess.run([prog] + args, cwd=scratch, capture_output=True, text=True, timeout=30,
                                       stdin=subprocess.DEVNULL)
                    checked += 1
                    said = (r.stdout + r.stderr).strip()
                    ours = f"{os.path.basename(prog)}: error:" in said or f"{os.path.basename(prog)}: pcap:" in said
                    if r.returncode == 0:
                        continue
                    if ours:
                        refused += 1
                        print(f"{rel}:{no}: parsed; the program refused it here: {said.splitlines()[-1][:160]}")
                        continue
                    failures.append(f"{rel}:{no}: the command-line parser refused `{' '.join(argv)}` (exit "
                                    f"{r.returncode}): {said[-300:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if failures:
        return 1
    if checked < 10:
        print(f"FAIL only {checked} command lines found in README.md and docs/: the extraction is broken")
        return 1
    print(f"ok docs: {checked} bpfix command lines in README.md and docs/ parse ({refused} then refused by the "
          "program on this host, shown above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
