"""The functions with the most self time in a V8 .cpuprofile (deno run --cpu-prof).

    python3 scripts/cpuprofile_top.py FILE.cpuprofile [N]

Prints the top N (default 25) as milliseconds, percent of the profile, and
function, file and line; Deno's WebGPU ops show as functions without a file.
"""

import collections
import json
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(path, encoding="utf-8") as f:
        prof = json.load(f)
    nodes = {n["id"]: n["callFrame"] for n in prof["nodes"]}
    self_us = collections.Counter()
    for node, dt in zip(prof["samples"], prof["timeDeltas"]):
        cf = nodes[node]
        self_us[(cf["functionName"] or "(anonymous)", cf["url"].rsplit("/", 1)[-1], cf["lineNumber"] + 1)] += dt
    total = sum(self_us.values()) or 1
    print(f"{total / 1000:.0f} ms sampled")
    for (fn, url, line), us in self_us.most_common(top):
        where = f"{url}:{line}" if url else ""
        print(f"{us / 1000:9.1f} ms {100 * us / total:5.1f}%  {fn} {where}")


if __name__ == "__main__":
    main()
