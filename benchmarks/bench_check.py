"""How checking time grows with the number of diagrams in one file (issue 12: 10,000 took 9 s).

Run on a quiet machine: ``.venv/bin/python benchmarks/bench_check.py``. Prints CPU seconds per
size (median of 3) and the time per diagram; linear growth keeps the last column flat.
"""

from __future__ import annotations

import statistics
import time

import fusiondsl


def many(n: int) -> str:
    return "".join(f"diagram d{i}(x: 4x1o, y: 1o) -> z: 4x0e + 4x1e "
                   f"{{ z = fuse(x, y) weights uvu }}\n" for i in range(n))


def seconds(n: int) -> float:
    text = many(n)
    start = time.process_time()
    assert len(fusiondsl.loads(text).names) == n
    return time.process_time() - start


def main() -> None:
    seconds(50)  # warm: parser tables, coefficient caches
    print(f"{'diagrams':>9} {'cpu s':>8} {'ms/diagram':>11}")
    for n in (500, 2500, 10000):
        t = statistics.median(seconds(n) for _ in range(3))
        print(f"{n:>9} {t:>8.2f} {1000 * t / n:>11.3f}")


if __name__ == "__main__":
    main()
