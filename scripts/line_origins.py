"""Which issue brought each line of a folder's Python files, by ``git blame`` (whitespace and moves
ignored) and main's first-parent history since a base commit.

A line's commit is attributed to the first first-parent commit of main that contains it: a merge
named ``Merge issue N``, ``Merge branch 'iN...'`` or ``Merge hN-x`` gives issue N, a direct commit the first
``issue N`` in its subject; otherwise the subject's keywords (``backtest`` -> 23, ``classify/auto``
-> 19) and then ``--default``. Lines older than the base count as ``before``.

    python scripts/line_origins.py --base f2155aa^ --path src/lstmkit/tasks --default 18
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
from pathlib import Path

KEYWORDS = (("backtest", 23), ("classify/auto", 19))


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def issue_of(subject: str, default: int) -> int:
    merge = re.match(r"Merge (?:issue |branch '?)?[a-z]*(\d+)", subject)
    if merge:
        return int(merge.group(1))
    named = re.search(r"issue (\d+)", subject)
    if named:
        return int(named.group(1))
    return next((n for word, n in KEYWORDS if word in subject), default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="lines older than this commit count as 'before'")
    parser.add_argument("--path", required=True, help="folder whose *.py files are counted")
    parser.add_argument("--default", type=int, required=True, help="issue of commits naming none")
    args = parser.parse_args()
    owner: dict[str, int] = {}
    previous = git("rev-parse", args.base).strip()
    for line in git("log", "--first-parent", "--reverse", "--format=%H%x09%s", f"{args.base}..HEAD").splitlines():
        head, subject = line.split("\t", 1)
        for commit in git("rev-list", f"{previous}..{head}").split():
            owner[commit] = issue_of(subject, args.default)
        previous = head
    totals: collections.Counter = collections.Counter()
    for path in sorted(Path(args.path).glob("*.py")):
        blame = git("blame", "--line-porcelain", "-w", "-M", "-C", str(path))
        for commit in re.findall(r"^([0-9a-f]{40}) \d+ \d+(?: \d+)?$", blame, re.M):
            totals[owner.get(commit, "before")] += 1
    for origin, count in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{origin if origin == 'before' else f'issue {origin}'}\t{count}")
    print(f"total\t{sum(totals.values())}")


if __name__ == "__main__":
    main()
